//! What survives a restart and a crash: upload sessions resume where they stopped, and an
//! acknowledged push is there after the process is killed with SIGKILL.

mod common;

use std::process::Stdio;

use common::*;
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};

const REPO: &str = "restart/app";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_session_survives_restart() {
    let mut s = TestServer::start().await;
    let c = client();
    let blob = random_bytes(300_000, 1);
    let r = c
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap().to_string();
    let r = c
        .patch(s.url(&loc))
        .header("content-range", "0-99999")
        .body(blob[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    s.restart().await;
    let c = client();
    let r = c.get(s.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), Some("0-99999"));
    let r = c
        .patch(s.url(&loc))
        .header("content-range", "100000-199999")
        .body(blob[100_000..200_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    s.restart().await;
    let c = client();
    let r = c
        .put(s.url(&format!("{loc}?digest={}", sha256(&blob))))
        .header("content-range", "200000-299999")
        .body(blob[200_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = c
        .get(s.url(&format!("/v2/{REPO}/blobs/{}", sha256(&blob))))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().to_vec(), blob);
    assert!(
        s.upload_objects().await.is_empty(),
        "the finished session left no upload object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_images_survive_restart() {
    let mut s = TestServer::start().await;
    let c = client();
    let d = push_image(&c, &s.base, REPO, "v1", 2).await;
    let before = s.rows().await;
    s.restart().await;
    assert_eq!(s.rows().await, before);
    let r = client()
        .get(s.url(&format!("/v2/{REPO}/manifests/v1")))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "docker-content-digest"), Some(d.as_str()));
}

/// Starts the real binary on a free loopback port; returns the child and its base URL.
async fn spawn_binary(data_dir: &std::path::Path) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipshape"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_push_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = spawn_binary(dir.path()).await;
    let c = client();
    let digest = push_image(&c, &base, REPO, "v1", 3).await;
    // An upload in flight at the moment of the crash.
    let r = c
        .post(format!("{base}/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap().to_string();
    c.patch(format!("{base}{loc}"))
        .body(random_bytes(5000, 4))
        .send()
        .await
        .unwrap();

    child.start_kill().unwrap(); // SIGKILL: no shutdown code runs
    child.wait().await.unwrap();

    let (_child, base) = spawn_binary(dir.path()).await;
    let c = client();
    let r = c
        .get(format!("{base}/v2/{REPO}/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), Some(digest.as_str()));
    let manifest: serde_json::Value = r.json().await.unwrap();
    for d in [&manifest["config"], &manifest["layers"][0]] {
        let d = d["digest"].as_str().unwrap();
        let blob = c
            .get(format!("{base}/v2/{REPO}/blobs/{d}"))
            .send()
            .await
            .unwrap();
        assert_eq!(blob.status(), StatusCode::OK);
        assert_eq!(
            sha256(&blob.bytes().await.unwrap()),
            d,
            "bytes intact after the crash"
        );
    }
    // The interrupted session is still there and can be finished.
    let r = c.get(format!("{base}{loc}")).send().await.unwrap();
    assert_eq!(header(&r, "range"), Some("0-4999"));
    let blob = random_bytes(5000, 4);
    let r = c
        .put(format!("{base}{loc}?digest={}", sha256(&blob)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}
