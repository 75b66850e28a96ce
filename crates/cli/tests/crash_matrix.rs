//! The crash matrix: the real binary, on this run's backends, is killed with SIGKILL at every
//! named fault point of a push, a delete, a restore, a GC run, a policy run and a migration
//! (`shipshape_fault::POINTS`, armed only in the test suite's build). After a restart on the
//! same catalogue and store, what was acknowledged is there and what was not is not, the
//! interrupted work can be done again, a GC run (with a storage sweep) leaves the store holding
//! exactly what the remaining tags reference, and `shipshape check` reports nothing.
//!
//! Beside `gc_crash.rs`, which kills at moments chosen by timing: here every point between two
//! steps whose order the design's invariants are about is hit exactly.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::backends::{Kept, configure};
use common::process::{Serve, config_file, open_configured_store, shipshape};
use common::*;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shipshape_server::{CatalogueConfig, ServerConfig};
use shipshape_store::BLOBS_PREFIX;

const REPO: &str = "crash/app";
const CHUNK: usize = 256 * 1024;

/// The settings of every start: no background collector (the runs do the work the test
/// counts), no grace or lease (a run may take what was just deleted), no minimum age for the
/// sweep's orphans, and upload sessions abandoned at once, so that the final run takes the
/// ones the crash left (on S3 an upload is written at its blob key: a session whose commit
/// the crash cut holds its object until the session expires).
const SERVE: &[&str] = &[
    "--gc-review-delay",
    "0s",
    "--gc-lease",
    "0s",
    "--gc-workers",
    "0",
    "--gc-sweep-min-age",
    "0s",
    "--upload-ttl",
    "0s",
];

/// A registry on this run's backends, started and killed as the scenario says.
struct Registry {
    config: ServerConfig,
    file: PathBuf,
    /// The restore window of this scenario (`0s`: deleted tags are collectable at once).
    window: &'static str,
    _kept: Kept,
    _tmp: tempfile::TempDir,
}

impl Registry {
    async fn new(window: &'static str) -> Registry {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            data_dir: tmp.path().join("data"),
            ..ServerConfig::default()
        };
        let kept = configure(&mut config, tmp.path()).await;
        let file = config_file(&config, &tmp.path().join("shipshape.toml"));
        Registry {
            config,
            file,
            window,
            _kept: kept,
            _tmp: tmp,
        }
    }

    fn args(&self) -> Vec<&str> {
        let mut args = SERVE.to_vec();
        args.extend(["--restore-window", self.window]);
        args
    }

    async fn start(&self) -> Serve {
        Serve::start(&self.file, &self.args()).await
    }

    fn armed(&self, point: &str) -> Serve {
        Serve::armed(&self.file, &self.args(), point)
    }

    fn postgres(&self) -> bool {
        matches!(self.config.catalogue, CatalogueConfig::Postgres { .. })
    }

    /// What must hold after any crash once the interrupted work is done again: `tags` are the
    /// registry's tags and pull completely, a GC run with a sweep succeeds and leaves exactly
    /// the blobs they reference, and `shipshape check` finds nothing.
    async fn verify(&self, s: Serve, tags: &[(&str, &str)], point: &str) {
        let listed: BTreeSet<(String, String)> = all_tags(&s.base).await;
        let want: BTreeSet<(String, String)> = tags
            .iter()
            .map(|(r, t)| (r.to_string(), t.to_string()))
            .collect();
        assert_eq!(listed, want, "the tags after a crash at {point}");
        let run = gc_run_to_end(
            &s.base,
            &json!({"grace": "0s", "include_untagged_manifests": true, "sweep": true}),
        )
        .await;
        assert_eq!(run["state"], "succeeded", "{point}: {run}");
        let (referenced, pulled) = pull_every_tag(&s.base).await;
        assert_eq!(pulled, tags.len(), "{point}: tags that pull");
        let store = open_configured_store(&self.config).await;
        let stored = bytes_and_objects(&*store, BLOBS_PREFIX).await;
        let want = (referenced.values().sum::<u64>(), referenced.len());
        assert_eq!(
            stored, want,
            "{point}: (bytes, objects) under blobs/ vs (bytes, blobs) the tags reference, after \
             {run}"
        );
        s.kill();
        let out = shipshape(&[
            "check",
            "--config",
            self.file.to_str().unwrap(),
            "--orphan-min-age",
            "0s",
        ])
        .await;
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains(" 0 problems"),
            "{point}: shipshape check found problems:\n{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every (repository, tag) the registry lists.
async fn all_tags(base: &str) -> BTreeSet<(String, String)> {
    let mut all = BTreeSet::new();
    for repo in catalog_repos(base).await {
        for tag in oci_tags(base, &repo).await.unwrap_or_default() {
            all.insert((repo.clone(), tag));
        }
    }
    all
}

/// The points of one scenario, asserting each is a real one.
fn points(prefix: &str) -> Vec<&'static str> {
    let found: Vec<&str> = shipshape_fault::POINTS
        .iter()
        .copied()
        .filter(|p| p.starts_with(prefix))
        .collect();
    assert!(!found.is_empty(), "no fault point starts with {prefix}");
    found
}

/// An image of a config and one layer, as a client pushes it: the layer in `CHUNK`-sized
/// PATCHes, the config in one POST and PUT, then the manifest under `tag`. Any failure (the
/// registry died) is returned rather than asserted.
struct Image {
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

impl Image {
    fn new(seed: u64) -> Image {
        let config =
            format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
        let layer = random_bytes(4 * CHUNK + 1000, seed);
        let manifest = image_manifest(
            (&sha256(&config), config.len()),
            &[(&sha256(&layer), layer.len())],
        );
        Image {
            config,
            layer,
            manifest,
        }
    }

    fn digest(&self) -> String {
        sha256(&self.manifest)
    }

    async fn push(&self, base: &str, repo: &str, tag: &str) -> Result<(), String> {
        let c = client();
        let location = start_upload(&c, base, repo).await?;
        self.push_layer_from(&c, base, &location, 0).await?;
        let location = start_upload(&c, base, repo).await?;
        finish(&c, base, &location, &self.config, &sha256(&self.config)).await?;
        let resp = c
            .put(format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("content-type", OCI_MANIFEST)
            .body(self.manifest.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        expect(resp, StatusCode::CREATED).await
    }

    /// The layer's chunks from byte `from` of the session at `location`, then its end.
    async fn push_layer_from(
        &self,
        c: &Client,
        base: &str,
        location: &str,
        from: usize,
    ) -> Result<(), String> {
        let mut location = location.to_string();
        let mut at = from;
        while at < self.layer.len() {
            let end = (at + CHUNK).min(self.layer.len());
            let resp = c
                .patch(format!("{base}{location}"))
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{at}-{}", end - 1))
                .body(self.layer[at..end].to_vec())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(format!("PATCH {at}-{}: {}", end - 1, resp.status()));
            }
            location = header(&resp, "location").unwrap().to_string();
            at = end;
        }
        finish(c, base, &location, &[], &sha256(&self.layer)).await
    }
}

async fn start_upload(c: &Client, base: &str, repo: &str) -> Result<String, String> {
    let resp = c
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status() != StatusCode::ACCEPTED {
        return Err(format!("POST upload: {}", resp.status()));
    }
    Ok(header(&resp, "location").unwrap().to_string())
}

async fn finish(
    c: &Client,
    base: &str,
    location: &str,
    body: &[u8],
    digest: &str,
) -> Result<(), String> {
    let sep = if location.contains('?') { '&' } else { '?' };
    let resp = c
        .put(format!("{base}{location}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    expect(resp, StatusCode::CREATED).await
}

async fn expect(resp: reqwest::Response, want: StatusCode) -> Result<(), String> {
    let status = resp.status();
    if status == want {
        return Ok(());
    }
    Err(format!(
        "{status}: {}",
        resp.text().await.unwrap_or_default()
    ))
}

/// A push killed at each of its points; the client then does what a client does after a
/// failed push (resumes its upload session if it has one, else pushes again) and the image
/// pulls. Only the manifest's commit makes the tag exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_killed_at_any_point_is_pushed_again_and_loses_nothing() {
    let mut covered = Vec::new();
    for point in points("upload.").into_iter().chain(points("manifest.")) {
        let r = Registry::new("1h").await;
        let s = r.start().await;
        let kept = Image::new(1);
        kept.push(&s.base, REPO, "kept")
            .await
            .expect("the first push");
        s.kill();

        let image = Image::new(2);
        // The second chunk of the layer, so that one chunk was acknowledged before.
        let armed = if point == "upload.chunk-stored" {
            format!("{point}@2")
        } else {
            point.to_string()
        };
        let mut s = r.armed(&armed);
        s.ready().await;
        let c = client();
        // The layer in a session of its own first, whose location the client keeps.
        let session = start_upload(&c, &s.base, REPO).await.unwrap();
        let pushed = async {
            image.push_layer_from(&c, &s.base, &session, 0).await?;
            image.push(&s.base, REPO, "new").await
        }
        .await;
        assert!(
            pushed.is_err(),
            "{point}: the push went through: {pushed:?}"
        );
        s.killed_at(point);

        let s = r.start().await;
        if point == "upload.chunk-stored" {
            // The session goes on from the last acknowledged chunk: the bytes the crash cut
            // off after the store had them were never acknowledged.
            let resp = c.get(format!("{}{session}", s.base)).send().await.unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::NO_CONTENT,
                "{point}: the session"
            );
            assert_eq!(
                header(&resp, "range"),
                Some(format!("0-{}", CHUNK - 1).as_str()),
                "{point}: the session's range after the crash"
            );
            image
                .push_layer_from(&c, &s.base, &session, CHUNK)
                .await
                .unwrap_or_else(|e| panic!("{point}: resuming the session: {e}"));
        }
        let tags: BTreeSet<String> = oci_tags(&s.base, REPO).await.unwrap().into_iter().collect();
        let committed = point == "manifest.committed";
        assert_eq!(
            tags.contains("new"),
            committed,
            "{point}: the tag exists only once its manifest's push committed: {tags:?}"
        );
        image
            .push(&s.base, REPO, "new")
            .await
            .unwrap_or_else(|e| panic!("{point}: the push again: {e}"));
        assert_eq!(pull_verified(&s.base, REPO, "new").await, image.digest());
        assert_eq!(pull_verified(&s.base, REPO, "kept").await, kept.digest());
        r.verify(s, &[(REPO, "kept"), (REPO, "new")], point).await;
        covered.push(point);
    }
    eprintln!("crashed and recovered at {covered:?}");
}

/// Pushes `kept` and `gone` (to be deleted) to `REPO`.
async fn two_tags(base: &str) -> (Image, Image) {
    let (kept, gone) = (Image::new(1), Image::new(2));
    kept.push(base, REPO, "kept").await.expect("push kept");
    gone.push(base, REPO, "gone").await.expect("push gone");
    (kept, gone)
}

async fn delete_tag(base: &str, tag: &str) -> Result<(), String> {
    let resp = client()
        .delete(format!("{base}/v2/{REPO}/manifests/{tag}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    expect(resp, StatusCode::ACCEPTED).await
}

async fn restore_tag(base: &str, tag: &str) -> Result<(), String> {
    let resp = client()
        .post(format!(
            "{base}/api/v1/repositories/{REPO}/-/tags/{tag}/restore"
        ))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    expect(resp, StatusCode::OK).await
}

/// A tag deletion killed before and after its commit is all or nothing, and a deletion that
/// committed is restorable whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_killed_at_any_point_is_all_or_nothing_and_restorable() {
    for point in points("delete.") {
        let r = Registry::new("1h").await;
        let s = r.start().await;
        let (kept, gone) = two_tags(&s.base).await;
        s.kill();

        let mut s = r.armed(point);
        s.ready().await;
        let deleted = delete_tag(&s.base, "gone").await;
        assert!(deleted.is_err(), "{point}: the delete was answered");
        s.killed_at(point);

        let s = r.start().await;
        let tags: BTreeSet<String> = oci_tags(&s.base, REPO).await.unwrap().into_iter().collect();
        let committed = point == "delete.committed";
        assert_eq!(
            !tags.contains("gone"),
            committed,
            "{point}: the tag is gone only once the deletion committed: {tags:?}"
        );
        if !committed {
            delete_tag(&s.base, "gone").await.unwrap();
        }
        restore_tag(&s.base, "gone")
            .await
            .unwrap_or_else(|e| panic!("{point}: restoring the deleted tag: {e}"));
        assert_eq!(pull_verified(&s.base, REPO, "gone").await, gone.digest());
        assert_eq!(pull_verified(&s.base, REPO, "kept").await, kept.digest());
        r.verify(s, &[(REPO, "gone"), (REPO, "kept")], point).await;
    }
}

/// A restore killed before and after its commit is all or nothing, and can be asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_killed_at_any_point_is_all_or_nothing_and_can_be_asked_again() {
    for point in points("restore.") {
        let r = Registry::new("1h").await;
        let s = r.start().await;
        let (_, gone) = two_tags(&s.base).await;
        delete_tag(&s.base, "gone").await.unwrap();
        s.kill();

        let mut s = r.armed(point);
        s.ready().await;
        let restored = restore_tag(&s.base, "gone").await;
        assert!(restored.is_err(), "{point}: the restore was answered");
        s.killed_at(point);

        let s = r.start().await;
        let tags: BTreeSet<String> = oci_tags(&s.base, REPO).await.unwrap().into_iter().collect();
        let committed = point == "restore.committed";
        assert_eq!(
            tags.contains("gone"),
            committed,
            "{point}: the tag is back only once the restore committed: {tags:?}"
        );
        if !committed {
            restore_tag(&s.base, "gone").await.unwrap();
        }
        assert_eq!(pull_verified(&s.base, REPO, "gone").await, gone.digest());
        r.verify(s, &[(REPO, "gone"), (REPO, "kept")], point).await;
    }
}

/// A GC run killed at each of its points is failed at the restart, deleted nothing a kept tag
/// needs, and the next run finishes the job (including keys a dead drain had claimed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gc_run_killed_at_any_point_is_failed_and_the_next_run_finishes_the_job() {
    for point in points("gc.") {
        let r = Registry::new("0s").await;
        let s = r.start().await;
        let c = client();
        let mut kept = Vec::new();
        for i in 0..12u64 {
            let tag = format!("t{i:02}");
            let (digest, _) = push_image_bytes(&c, &s.base, REPO, &tag, 100 + i).await;
            if i % 2 == 1 {
                kept.push((tag, digest));
            } else {
                delete_tag(&s.base, &tag).await.unwrap();
            }
        }
        s.kill();

        let mut s = r.armed(point);
        s.ready().await;
        let resp = c
            .post(format!("{}/api/v1/gc/runs", s.base))
            .json(&json!({"grace": "0s", "include_untagged_manifests": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{point}");
        let id = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        s.killed_at(point);

        let s = r.start().await;
        let run: Value = c
            .get(format!("{}/api/v1/gc/runs/{id}", s.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            run["state"], "failed",
            "{point}: the interrupted run: {run}"
        );
        for (tag, digest) in &kept {
            assert_eq!(&pull_verified(&s.base, REPO, tag).await, digest, "{point}");
        }
        let tags: Vec<(&str, &str)> = kept.iter().map(|(t, _)| (REPO, t.as_str())).collect();
        r.verify(s, &tags, point).await;
    }
}

/// A policy run killed inside and after its second repository's transaction is failed at the
/// restart, with the first repositories' deletions kept and the others' not made; the next
/// run finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_run_killed_at_any_point_is_failed_and_the_next_run_finishes_the_job() {
    const REPOS: [&str; 3] = ["crash/p0", "crash/p1", "crash/p2"];
    for point in points("policy.") {
        let r = Registry::new("0s").await;
        let s = r.start().await;
        let c = client();
        for (n, repo) in REPOS.iter().enumerate() {
            for i in 0..3u64 {
                push_image_bytes(&c, &s.base, repo, &format!("v{i}"), 10 * n as u64 + i).await;
            }
        }
        let resp = c
            .put(format!("{}/api/v1/policies/trim", s.base))
            .body(
                r#"{"name": "trim", "repositories": ["crash/p*"],
                    "delete": {"older_than": "0s"}, "keep": {"latest_pushed": 1}}"#,
            )
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "the policy: {}", resp.status());
        s.kill();

        let mut s = r.armed(&format!("{point}@2"));
        s.ready().await;
        let resp = c
            .post(format!("{}/api/v1/policies/trim/runs", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{point}");
        let id = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        s.killed_at(point);

        let s = r.start().await;
        let run = wait_policy_run(&s.base, id).await;
        assert_eq!(
            run["state"], "failed",
            "{point}: the interrupted run: {run}"
        );
        let mut trimmed = 0;
        for repo in REPOS {
            match oci_tags(&s.base, repo).await.unwrap().len() {
                1 => trimmed += 1,
                3 => {}
                n => panic!("{point}: {repo} has {n} tags: a repository's run is half applied"),
            }
        }
        let committed = if point == "policy.repository-done" {
            2
        } else {
            1
        };
        assert_eq!(trimmed, committed, "{point}: repositories the run trimmed");

        let resp = c
            .post(format!("{}/api/v1/policies/trim/runs", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{point}: the next run");
        let id = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let run = wait_policy_run(&s.base, id).await;
        assert_eq!(run["state"], "succeeded", "{point}: the next run: {run}");
        let tags: Vec<(&str, &str)> = REPOS.iter().map(|r| (*r, "v2")).collect();
        r.verify(s, &tags, point).await;
    }
}

/// A migration killed between two of its steps: the next start (or `shipshape migrate`)
/// applies the rest, and the registry works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_killed_between_steps_is_finished_by_the_next_start() {
    for point in points("migrate.") {
        let r = Registry::new("1h").await;
        let armed = format!("{point}@2");
        if r.postgres() {
            // On PostgreSQL the operator migrates as a step of its own.
            let out = tokio::process::Command::new(common::process::BIN)
                .args(["migrate", "--config", r.file.to_str().unwrap()])
                .env("SHIPSHAPE_FAULT_POINT", &armed)
                .output()
                .await
                .unwrap();
            use std::os::unix::process::ExitStatusExt as _;
            assert_eq!(out.status.signal(), Some(9), "{point}: {out:?}");
            let out = shipshape(&["migrate", "--config", r.file.to_str().unwrap()]).await;
            assert!(out.status.success(), "{point}: migrate again: {out:?}");
        } else {
            r.armed(&armed).killed_at(point);
        }
        let s = r.start().await;
        let image = Image::new(3);
        image
            .push(&s.base, REPO, "after")
            .await
            .unwrap_or_else(|e| panic!("{point}: a push after the migration: {e}"));
        assert_eq!(pull_verified(&s.base, REPO, "after").await, image.digest());
        r.verify(s, &[(REPO, "after")], point).await;
    }
}

/// Every fault point belongs to one of the scenarios above.
#[test]
fn every_fault_point_has_a_scenario() {
    let scenarios = [
        "upload.",
        "manifest.",
        "delete.",
        "restore.",
        "gc.",
        "policy.",
        "migrate.",
    ];
    for p in shipshape_fault::POINTS {
        assert!(
            scenarios.iter().any(|s| p.starts_with(s)),
            "the fault point {p} is in no scenario of crash_matrix.rs"
        );
    }
}
