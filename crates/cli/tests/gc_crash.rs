//! Crash safety of the collector and of uploads (invariant 8): the real `shipshape` binary is
//! killed with SIGKILL in the middle of a GC run and in the middle of pushes, restarted on the
//! same data directory, and must lose nothing committed and leave nothing that a run (with a
//! storage sweep) and `shipshape check` cannot account for.

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::{BIN, Serve};
use common::{
    OCI_MANIFEST, bytes_and_objects, client, gc_run_to_end, header, image_manifest, oci_tags,
    poll_until, pull_every_tag, pull_verified, push_blob, put_manifest, random_bytes, run_tool,
    sha256,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shipshape_store::{BLOBS_PREFIX, UPLOADS_PREFIX};

const REPO: &str = "crash/app";

/// `shipshape serve` over the data directory `dir` as a child process, with the settings
/// these tests share (`extra` after them).
async fn start(dir: &Path, extra: &[&str]) -> Serve {
    let config = dir.with_extension("toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", dir.display().to_string()),
    )
    .unwrap();
    let mut args = vec![
        "--gc-review-delay",
        "0s",
        // No leases either: these runs must be able to take what was just pushed.
        "--gc-lease",
        "0s",
        "--gc-workers",
        "0",
        "--restore-window",
        "0s",
    ];
    args.extend(extra);
    Serve::start(&config, &args).await
}

/// Pushes an image of a config and two distinct layers of `layer_len` bytes under `tag`.
async fn push_distinct_image(base: &str, tag: &str, seed: u64, layer_len: usize) -> String {
    let c = client();
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
    let l1 = random_bytes(layer_len, seed * 2 + 1);
    let l2 = random_bytes(layer_len / 2, seed * 2 + 2);
    let cd = push_blob(&c, base, REPO, &config).await;
    let d1 = push_blob(&c, base, REPO, &l1).await;
    let d2 = push_blob(&c, base, REPO, &l2).await;
    let m = image_manifest((&cd, config.len()), &[(&d1, l1.len()), (&d2, l2.len())]);
    let resp = put_manifest(&c, base, REPO, tag, OCI_MANIFEST, &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "push {tag}");
    sha256(&m)
}

/// `shipshape check` over `dir`, reporting unknown objects of any age; must exit 0.
async fn check_clean(dir: &Path) {
    let out = run_tool(
        Path::new(BIN),
        &[
            "check",
            "--data-dir",
            dir.to_str().unwrap(),
            "--orphan-min-age",
            "0s",
        ],
        None,
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(" 0 problems"),
        "shipshape check found problems:\n{stdout}"
    );
}

/// The blob store holds exactly the blobs the remaining tags reference, byte for byte.
async fn assert_store_is_exactly_referenced(base: &str, dir: &Path, expected_tags: usize) {
    let (referenced, tags) = pull_every_tag(base).await;
    assert_eq!(tags, expected_tags, "tags that pull");
    let store = common::open_store(dir).await;
    let stored = bytes_and_objects(&*store, BLOBS_PREFIX).await;
    let want = (referenced.values().sum::<u64>(), referenced.len());
    assert_eq!(
        stored, want,
        "(bytes, objects) under blobs/ vs (bytes, blobs) the tags reference"
    );
}

fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    (tmp, dir)
}

/// When the GC run is killed.
#[derive(Clone, Copy, PartialEq)]
enum KillPoint {
    /// As soon as the start was answered.
    Started,
    /// Once the run has forgotten a blob (whose bytes are deleted only when the run drains
    /// storage at its end) and is still running.
    Midway,
}

async fn gc_run_killed(at: KillPoint) {
    let (_tmp, dir) = data_dir();
    let s = start(&dir, &[]).await;
    let mut kept = BTreeSet::new();
    for i in 0..40u64 {
        let tag = format!("t{i:02}");
        push_distinct_image(&s.base, &tag, 100 + i, 24 * 1024).await;
        if i % 2 == 1 {
            kept.insert(tag);
        }
    }
    let c = client();
    for i in (0..40).step_by(2) {
        let resp = c
            .delete(format!("{}/v2/{REPO}/manifests/t{i:02}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "delete t{i:02}");
    }
    let resp = c
        .post(format!("{}/api/v1/gc/runs", s.base))
        .json(&json!({"grace": "0s", "include_untagged_manifests": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let run: Value = resp.json().await.unwrap();
    let id = run["id"].as_i64().expect("run id");
    let status_url = format!("{}/api/v1/gc/runs/{id}", s.base);
    if at == KillPoint::Midway {
        // No pause between polls: the run is midway only for a moment.
        let (c, status_url) = (&c, &status_url);
        let what = format!("GC run {id} to delete a blob");
        poll_until(&what, Duration::ZERO, || async move {
            let v: Value = c
                .get(status_url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(
                v["state"], "running",
                "the run finished before it could be killed midway: give it more to do: {v}"
            );
            (v["figures"]["blobs_deleted"].as_u64().unwrap_or(0) > 0).then_some(())
        })
        .await;
    }
    s.kill();

    let s = start(&dir, &[]).await;
    let status_url = format!("{}/api/v1/gc/runs/{id}", s.base);
    let v: Value = client()
        .get(status_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["state"], "failed",
        "the run the kill interrupted (if it says succeeded, it finished before the kill: \
         give it more to do): {v}"
    );
    let tags: BTreeSet<String> = oci_tags(&s.base, REPO).await.unwrap().into_iter().collect();
    assert_eq!(tags, kept, "the tags that were not deleted");
    for tag in &kept {
        pull_verified(&s.base, REPO, tag).await;
    }

    let run = gc_run_to_end(
        &s.base,
        &json!({"grace": "0s", "include_untagged_manifests": true}),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run}");
    eprintln!(
        "interrupted run: {}\nrun after the restart ({} ms): {}",
        v["figures"], run["duration_ms"], run["figures"]
    );
    assert_store_is_exactly_referenced(&s.base, &dir, kept.len()).await;
    s.kill();
    check_clean(&dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gc_run_killed_as_it_starts_loses_nothing_and_a_new_run_finishes_the_job() {
    gc_run_killed(KillPoint::Started).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gc_run_killed_midway_loses_nothing_and_a_new_run_finishes_the_job() {
    gc_run_killed(KillPoint::Midway).await;
}

/// Writes a request head and part of its body on a raw connection and leaves it hanging.
fn half_sent(
    base: &str,
    method: &str,
    path: &str,
    total: usize,
    body: &[u8],
) -> std::net::TcpStream {
    let host = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {total}\r\n\r\n"
    )
    .unwrap();
    stream.write_all(body).unwrap();
    stream.flush().unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_killed_midway_leave_nothing_a_sweep_cannot_remove() {
    let (_tmp, dir) = data_dir();
    let s = start(&dir, &[]).await;
    let mut pushed = Vec::new();
    for i in 0..3u64 {
        let tag = format!("keep{i}");
        let d = push_distinct_image(&s.base, &tag, 7 + i, 16 * 1024).await;
        pushed.push((tag, d));
    }
    let c = client();

    // A chunked upload of a larger blob: three PATCHes accepted, the fourth in flight.
    let big = random_bytes(4 * 256 * 1024, 99);
    let resp = c
        .post(format!("{}/v2/{REPO}/blobs/uploads/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let mut location = header(&resp, "location").unwrap().to_string();
    for (n, chunk) in big.chunks(256 * 1024).take(3).enumerate() {
        let start = n * 256 * 1024;
        let resp = c
            .patch(format!("{}{location}", s.base))
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{start}-{}", start + chunk.len() - 1),
            )
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "PATCH {n}");
        location = header(&resp, "location").unwrap().to_string();
    }
    let _chunk_in_flight = half_sent(
        &s.base,
        "PATCH",
        &location,
        256 * 1024,
        &big[3 * 256 * 1024..3 * 256 * 1024 + 100 * 1024],
    );

    // A monolithic upload (session, then one PUT) with half its body sent.
    let mono = random_bytes(512 * 1024, 98);
    let resp = c
        .post(format!("{}/v2/{REPO}/blobs/uploads/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let session = header(&resp, "location").unwrap().to_string();
    let sep = if session.contains('?') { '&' } else { '?' };
    let _put_in_flight = half_sent(
        &s.base,
        "PUT",
        &format!("{session}{sep}digest={}", sha256(&mono)),
        mono.len(),
        &mono[..200 * 1024],
    );
    // And a single-POST monolithic push, also half sent.
    let _post_in_flight = half_sent(
        &s.base,
        "POST",
        &format!("/v2/{REPO}/blobs/uploads/?digest={}", sha256(&big)),
        big.len(),
        &big[..300 * 1024],
    );
    s.kill();

    // The window between the store's commit of an upload and the catalogue's is too short
    // to hit with a kill; an object left there looks like this one.
    let store = common::open_store(&dir).await;
    let orphan = common::plant_object(&*store, &random_bytes(4096, 97)).await;

    let leftovers = bytes_and_objects(&*store, UPLOADS_PREFIX).await;
    assert!(
        leftovers.1 > 0,
        "the interrupted uploads left no object under uploads/: the test killed nothing \
         mid-way"
    );

    let s = start(&dir, &["--gc-sweep-min-age", "0s", "--upload-ttl", "0s"]).await;
    for (tag, d) in &pushed {
        assert_eq!(&pull_verified(&s.base, REPO, tag).await, d, "{tag}");
    }
    let run = gc_run_to_end(
        &s.base,
        &json!({"grace": "0s", "include_untagged_manifests": true, "sweep": true}),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run}");
    eprintln!(
        "leftovers {leftovers:?}; run after the restart: {}",
        run["figures"]
    );
    assert!(
        !common::has_object(&*store, &orphan).await,
        "the sweep left the orphan object: {run}"
    );
    // Every object under uploads/ was an upload session (expired by the run) or a monolithic
    // upload the kill cut before it had a session (whether the server had begun its upload by
    // then is a race): the sweep's orphans are those objects and the planted one.
    let sessions = run["figures"]["uploads_deleted"].as_u64().unwrap();
    let sessionless = leftovers.1 as u64 - sessions;
    assert_eq!(
        run["figures"]["orphans_deleted"].as_u64(),
        Some(1 + sessionless),
        "{run}"
    );
    let uploads = common::list_objects(&*store, UPLOADS_PREFIX).await;
    assert!(
        uploads.is_empty(),
        "upload objects left after the run: {uploads:?}"
    );
    assert_store_is_exactly_referenced(&s.base, &dir, pushed.len()).await;
    s.kill();
    check_clean(&dir).await;
}
