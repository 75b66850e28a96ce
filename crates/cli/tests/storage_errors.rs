//! Storage that fails the way disks do: full (a small tmpfs, filled), read-only (a read-only
//! bind mount of the blob store), unusable at start-up (a data directory that is a file, or
//! on a read-only filesystem). Each is answered for what it is (507 `STORAGE_FULL`, 503
//! `STORAGE_READ_ONLY`, a refusal to start naming the path), counted in `/metrics`, keeps
//! nothing of the failed request, and the registry recovers once the storage does.
//!
//! The full and read-only filesystems are made with `mount`, which needs root (or
//! CAP_SYS_ADMIN). Where that is missing, these tests fail and say so: they never skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const REPO: &str = "storage/app";

/// A filesystem mounted for a test, unmounted (lazily: the server may still hold files) when
/// dropped.
struct Mounted(PathBuf);

fn mount(args: &[&str], what: &str) {
    let out = Command::new("mount")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run mount ({e}); {what} needs it"));
    assert!(
        out.status.success(),
        "mount {args:?} failed: {}\n{what} needs root (or CAP_SYS_ADMIN) to mount a \
         filesystem; run the suite as root, or in a container allowed to mount",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Mounted {
    /// A tmpfs of `size` (e.g. "16m") on `dir`; `extra` mount options, comma-separated.
    fn tmpfs(dir: &Path, options: &str) -> Mounted {
        let dir_s = dir.to_str().unwrap();
        mount(
            &["-t", "tmpfs", "-o", options, "tmpfs", dir_s],
            "a test of a small filesystem",
        );
        Mounted(dir.to_path_buf())
    }

    /// `dir` mounted read-only over itself: writes under it fail with EROFS.
    fn read_only(dir: &Path) -> Mounted {
        let dir_s = dir.to_str().unwrap();
        mount(
            &["--bind", dir_s, dir_s],
            "a test of a read-only filesystem",
        );
        let m = Mounted(dir.to_path_buf());
        mount(
            &["-o", "remount,bind,ro", dir_s],
            "a test of a read-only filesystem",
        );
        m
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem of `dir` with a file until no byte more fits; returns the file.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let bytes = vec![7u8; chunk];
        loop {
            match f.write(&bytes) {
                Ok(n) if n == chunk => {}
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", dir.display()),
            }
        }
    }
    path
}

/// The body of an error answer, and its first code and message.
async fn error_of(resp: reqwest::Response) -> (StatusCode, String, String) {
    let status = resp.status();
    let v: Value = resp.json().await.expect("an OCI error body");
    (
        status,
        first_code(&v).to_string(),
        first_message(&v).to_string(),
    )
}

/// The value of `shipshape_storage_errors_total` with `labels`.
async fn refusals(s: &TestServer, labels: &str) -> u64 {
    let text = get_text(&s.url("/metrics")).await;
    let name = format!("shipshape_storage_errors_total{labels} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&name))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
        .parse()
        .unwrap()
}

/// `/readyz`: its status and what it says of the catalogue and the store.
async fn readiness(s: &TestServer) -> (StatusCode, Value) {
    let r = client().get(s.url("/readyz")).send().await.unwrap();
    (r.status(), r.json().await.expect("a JSON body"))
}

/// A monolithic blob upload (POST with the digest and the body).
async fn post_blob(s: &TestServer, bytes: &[u8]) -> reqwest::Response {
    client()
        .post(s.url(&format!(
            "/v2/{REPO}/blobs/uploads/?digest={}",
            sha256(bytes)
        )))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_answered_507_and_the_registry_recovers_when_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let _disk = Mounted::tmpfs(dir.path(), "size=32m");
    let data = dir.path().join("data");
    let s = TestServer::start_with(|c| c.data_dir = data.clone()).await;
    let c = client();
    let pushed = push_image(&c, &s.base, REPO, "v1", 41).await;
    // A session with a chunk in it, before the disk fills.
    let r = c
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap().to_string();
    let chunked = random_bytes(400_000, 42);
    let r = c
        .patch(s.url(&loc))
        .header("content-range", "0-199999")
        .body(chunked[..200_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let filler = fill(dir.path());
    let (status, ready) = readiness(&s).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["store"], "full", "{ready}");
    assert_eq!(
        ready["catalogue"], "ok",
        "a read works on a full disk: {ready}"
    );
    let r = c.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the process is alive");
    // Bodies smaller than the store's first write buffer (1 MiB) are read whole before the
    // write that fails, so the client reads its answer rather than a reset connection.
    let blob = random_bytes(512 * 1024, 43);
    let (status, code, message) = error_of(post_blob(&s, &blob).await).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{message}");
    assert_eq!(code, "STORAGE_FULL");
    assert!(message.contains("storage is full"), "{message}");
    assert!(
        !message.contains(data.to_str().unwrap()),
        "no path is sent to clients: {message}"
    );
    let r = c
        .patch(s.url(&loc))
        .header("content-range", "200000-399999")
        .body(chunked[200_000..].to_vec())
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::INSUFFICIENT_STORAGE, "STORAGE_FULL")
    );
    assert!(refusals(&s, r#"{kind="full",part="store"}"#).await >= 2);
    // What was acknowledged is served; the session kept what it had; nothing else was kept.
    assert_eq!(pull_verified(&s.base, REPO, "v1").await, pushed);
    let r = c.get(s.url(&loc)).send().await.unwrap();
    assert_eq!(header(&r, "range"), Some("0-199999"));
    assert_eq!(
        s.upload_objects().await.len(),
        1,
        "only the open session's object"
    );

    std::fs::remove_file(filler).unwrap();
    let (status, ready) = readiness(&s).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    let r = post_blob(&s, &blob).await;
    assert_eq!(r.status(), StatusCode::CREATED, "pushes work again");
    let r = c
        .patch(s.url(&loc))
        .header("content-range", "200000-399999")
        .body(chunked[200_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = c
        .put(s.url(&format!("{loc}?digest={}", sha256(&chunked))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "the session resumes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_is_answered_503_and_pulls_go_on() {
    let s = TestServer::start().await;
    let c = client();
    let pushed = push_image(&c, &s.base, REPO, "v1", 44).await;
    let blob = random_bytes(10_000, 45);
    {
        let _ro = Mounted::read_only(&s.data_dir().join("store"));
        let (status, code, message) = error_of(post_blob(&s, &blob).await).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{message}");
        assert_eq!(code, "STORAGE_READ_ONLY");
        assert!(message.contains("read-only"), "{message}");
        let r = c
            .post(s.url(&format!("/v2/{REPO}/blobs/uploads/")))
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(r).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "STORAGE_READ_ONLY"),
            "a session cannot even start"
        );
        assert_eq!(
            pull_verified(&s.base, REPO, "v1").await,
            pushed,
            "pulls go on"
        );
        assert!(refusals(&s, r#"{kind="read_only",part="store"}"#).await >= 2);
        let (status, ready) = readiness(&s).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
        assert_eq!(ready["store"], "read_only", "{ready}");
        assert_eq!(ready["catalogue"], "ok", "{ready}");
    }
    assert_eq!(readiness(&s).await.0, StatusCode::OK);
    let r = post_blob(&s, &blob).await;
    assert_eq!(r.status(), StatusCode::CREATED, "writable again");
}

/// Runs `shipshape serve` over `data_dir`, which must refuse to start; returns its stderr.
fn refused_start(data_dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shipshape"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("SHIPSHAPE_LOG", "warn")
        .output()
        .expect("run shipshape serve");
    assert!(!out.status.success(), "it must refuse to start");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_data_directory_that_cannot_be_used_refuses_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"").unwrap();
    let stderr = refused_start(&file);
    assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("not a directory"), "{stderr}");

    let inside = file.join("data");
    let stderr = refused_start(&inside);
    assert!(stderr.contains(inside.to_str().unwrap()), "{stderr}");

    let ro = dir.path().join("read-only");
    std::fs::create_dir(&ro).unwrap();
    let _mounted = Mounted::tmpfs(&ro, "size=1m,ro");
    let stderr = refused_start(&ro);
    assert!(stderr.contains(ro.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("read-only"), "{stderr}");
}

#[test]
fn a_damaged_catalogue_refuses_the_start_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let catalogue = dir.path().join("catalogue.db");
    std::fs::write(&catalogue, random_bytes(8192, 46)).unwrap();
    let stderr = refused_start(dir.path());
    assert!(stderr.contains(catalogue.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("damaged"), "{stderr}");
    assert!(stderr.contains("from a backup"), "{stderr}");
    assert!(stderr.contains("integrity_check"), "{stderr}");
}

/// A tool holding the catalogue's write lock: the start waits out the busy timeout (30 s),
/// then refuses, naming the catalogue and the remedy, instead of failing at its first write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalogue_another_process_holds_refuses_the_start_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let catalogue = dir.path().join("catalogue.db");
    let held = shipshape_meta::Catalogue::open_sqlite(&catalogue)
        .await
        .unwrap();
    let tx = held.begin().await.unwrap();
    let data_dir = dir.path().to_path_buf();
    let stderr = tokio::task::spawn_blocking(move || refused_start(&data_dir))
        .await
        .unwrap();
    drop(tx);
    assert!(stderr.contains(catalogue.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("locked by another process"), "{stderr}");
    assert!(stderr.contains("stop that process"), "{stderr}");
}
