//! `/healthz` (the process answers) and `/readyz` (the catalogue answers a read and the blob
//! store takes a write); the readiness probe's objects are never swept, never orphans. How
//! `/readyz` answers a full or read-only storage is in `storage_errors.rs`.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_answer_for_a_working_registry() {
    let s = TestServer::start().await;
    let r = client().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "ok\n");
    let r = client().get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"ready": true, "catalogue": "ok", "store": "ok"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readiness_probe_leaves_nothing_for_the_sweep_or_the_check() {
    let s = TestServer::start_with(|c| c.gc.sweep_min_age = Duration::ZERO).await;
    let c = client();
    push_image(&c, &s.base, "health/app", "v1", 51).await;
    for _ in 0..5 {
        let r = c.get(s.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert!(s.upload_objects().await.is_empty(), "no upload object");
    // What a probe cut off by a crash between its write and its delete leaves (the local
    // store's file: no store call writes under health/ but the probe).
    let leftover = s
        .data_dir()
        .join("store")
        .join(shipshape_store::HEALTH_PREFIX)
        .join("0123456789abcdef0123456789abcdef");
    std::fs::write(&leftover, b"shipshape health probe\n").unwrap();

    let run = gc_run_to_end(&s.base, &json!({"sweep": true})).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["figures"]["orphans_deleted"], 0, "{run}");
    assert!(leftover.exists(), "the sweep never touches health objects");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shipshape"))
        .args(["check", "--orphan-min-age", "0s", "--data-dir"])
        .arg(s.data_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "check finds nothing wrong: {text}");
    assert!(!text.contains("not known to the catalogue"), "{text}");
}
