//! SIGTERM to `shipshape serve`: it stops accepting connections, lets requests in flight
//! finish within `--shutdown-timeout`, records the pulls it counted, and exits 0. An upload
//! that outlasts the timeout is cut off and its session resumes after a restart.

mod common;

use std::process::Stdio;

use bytes::Bytes;
use common::*;
use futures::SinkExt as _;
use reqwest::StatusCode;
use shipshape_store::UPLOADS_PREFIX;
use tokio::io::{AsyncBufReadExt, BufReader};

const REPO: &str = "shutdown/app";

/// A body chunk as the streamed PATCH sends it.
type Chunk = Result<Bytes, std::io::Error>;

/// Starts the real binary on a free loopback port over `data_dir` with `args` added; returns
/// the child and its base URL.
async fn spawn_binary(
    data_dir: &std::path::Path,
    args: &[&str],
) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipshape"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env("SHIPSHAPE_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("shipshape binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("the serving line");
    let base = line
        .rsplit(' ')
        .next()
        .expect("URL at the end of the serving line")
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    (child, base)
}

fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("running") as libc::pid_t;
    // SAFETY: kill(2) with a pid this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM");
}

/// Waits for the process to exit (failing after `PATIENCE`) and says whether it exited 0.
async fn exit_status(child: &mut tokio::process::Child) -> std::process::ExitStatus {
    tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("the process exits after SIGTERM")
        .unwrap()
}

/// Waits until the upload objects in `data_dir`'s store hold more than `bytes` bytes: the
/// server is then receiving a request's body (the store writes it as it arrives).
async fn wait_for_upload_beyond(data_dir: &std::path::Path, bytes: u64) {
    let store = open_store(data_dir).await;
    let store = &store;
    wait_until(
        "the server to be writing the upload in flight",
        || async move {
            let stored: u64 = list_objects(&**store, UPLOADS_PREFIX)
                .await
                .iter()
                .map(|o| o.size)
                .sum();
            (stored > bytes).then_some(())
        },
    )
    .await;
}

/// Starts a streamed PATCH of the session at `loc` whose body is what the test sends on the
/// returned channel, until it closes it.
fn streamed_patch(
    base: &str,
    loc: &str,
) -> (
    futures::channel::mpsc::Sender<Chunk>,
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
) {
    let (tx, rx) = futures::channel::mpsc::channel::<Chunk>(4);
    let request = client()
        .patch(format!("{base}{loc}"))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(rx));
    (tx, tokio::spawn(request.send()))
}

async fn send_all(tx: &mut futures::channel::mpsc::Sender<Chunk>, bytes: &[u8]) {
    for chunk in bytes.chunks(64 * 1024) {
        tx.send(Ok(Bytes::copy_from_slice(chunk)))
            .await
            .expect("the request takes its body");
    }
}

async fn start_session(base: &str) -> String {
    let r = client()
        .post(format!("{base}/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    header(&r, "location").unwrap().to_string()
}

/// Finishes the session at `loc` with `rest` and checks that the blob is `blob`.
async fn finish_and_verify(base: &str, loc: &str, rest: &[u8], blob: &[u8]) {
    let c = client();
    let r = c
        .put(format!("{base}{loc}?digest={}", sha256(blob)))
        .body(rest.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = c
        .get(format!("{base}/v2/{REPO}/blobs/{}", sha256(blob)))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(sha256(&got.bytes().await.unwrap()), sha256(blob));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_upload_in_flight_and_records_the_pulls() {
    let dir = tempfile::tempdir().unwrap();
    // Pulls are written only at shutdown: the hour-long flush interval never comes.
    let args = ["--pull-flush-interval", "1h", "--shutdown-timeout", "10m"];
    let (mut child, base) = spawn_binary(dir.path(), &args).await;
    let c = client();
    push_image(&c, &base, REPO, "v1", 31).await;
    for _ in 0..3 {
        let r = c
            .get(format!("{base}/v2/{REPO}/manifests/v1"))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    let blob = random_bytes(32 << 20, 32);
    let (first, rest) = blob.split_at(4 << 20);
    let loc = start_session(&base).await;
    let (mut body, patch) = streamed_patch(&base, &loc);
    send_all(&mut body, first).await;
    wait_for_upload_beyond(dir.path(), 0).await;

    sigterm(&child);
    let host = base.trim_start_matches("http://").to_string();
    let host = &host;
    wait_until("the server to stop accepting connections", || async move {
        tokio::net::TcpStream::connect(host)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    // The upload in flight goes on to its end.
    send_all(&mut body, rest).await;
    drop(body);
    let r = patch
        .await
        .unwrap()
        .expect("the PATCH in flight is answered");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let last = blob.len() - 1;
    assert_eq!(header(&r, "range"), Some(format!("0-{last}").as_str()));
    assert!(
        exit_status(&mut child).await.success(),
        "exit 0 after SIGTERM"
    );

    let (_child, base) = spawn_binary(dir.path(), &[]).await;
    let tags = client()
        .get(format!("{base}/api/v1/repositories/{REPO}/-/tags"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(tags["tags"][0]["name"], "v1");
    assert_eq!(tags["tags"][0]["pull_count"], 3, "{tags}");
    let r = client().get(format!("{base}{loc}")).send().await.unwrap();
    assert_eq!(header(&r, "range"), Some(format!("0-{last}").as_str()));
    finish_and_verify(&base, &loc, &[], &blob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_outlasts_the_shutdown_timeout_is_cut_off_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = spawn_binary(dir.path(), &["--shutdown-timeout", "1s"]).await;
    let blob = random_bytes(8 << 20, 33);
    let loc = start_session(&base).await;
    let r = client()
        .patch(format!("{base}{loc}"))
        .header("content-range", "0-99999")
        .body(blob[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // The next chunk starts, and stops half-way: it is still in flight at the deadline.
    let (mut body, patch) = streamed_patch(&base, &loc);
    send_all(&mut body, &blob[100_000..4 << 20]).await;
    wait_for_upload_beyond(dir.path(), 100_000).await;

    sigterm(&child);
    assert!(
        exit_status(&mut child).await.success(),
        "exit 0 once the timeout has closed the connection"
    );
    let answer = patch.await.unwrap();
    assert!(
        answer.is_err(),
        "the cut-off request has no answer: {answer:?}"
    );
    drop(body);

    let (_child, base) = spawn_binary(dir.path(), &[]).await;
    let r = client().get(format!("{base}{loc}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&r, "range"),
        Some("0-99999"),
        "the session as it was before the cut-off request"
    );
    finish_and_verify(&base, &loc, &blob[100_000..], &blob).await;
}
