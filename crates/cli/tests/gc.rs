//! Garbage collection against the real server: what a run frees (checked on disk), dry runs
//! that list exactly what a run deletes, grace periods and leases, the restore window, abandoned
//! uploads, the storage sweep, one run at a time, and `shipshape check`.
//!
//! Background workers are off (`workers = 0`) and time comes from a manual clock, so every
//! deletion here is the work of the run the test starts.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    OCI_MANIFEST, TestServer, client, image_manifest, pull_verified, push_blob, put_manifest,
    random_bytes, sha256, wait_gc_run,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shipshape_meta::clock::ManualClock;

const HOUR: i64 = 3_600_000;

fn wall_clock_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A server with the collector's workers off, a manual clock starting at the real time, and
/// the given review delay and restore window.
async fn server(
    clock: &ManualClock,
    review_delay: Duration,
    restore_window: Duration,
) -> TestServer {
    TestServer::start_with_clock(clock, |c| {
        c.gc.workers = 0;
        c.gc.review_delay = review_delay;
        // Leases as long as the grace period, so these tests' clocks decide both at once; the
        // lease's own rules have tests of their own.
        c.gc.lease = review_delay;
        c.restore_window = restore_window;
        c.gc.upload_ttl = Duration::from_secs(3600);
        c.gc.sweep_min_age = Duration::from_secs(3600);
    })
    .await
}

/// Starts a run with `options`, waits until it has finished, and returns it.
async fn run_gc(s: &TestServer, options: Value) -> Value {
    let (status, run) = s.api(Method::POST, "/api/v1/gc/runs", Some(options)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run = wait_gc_run(&s.base, run["id"].as_i64().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    run
}

/// (kind, target) of everything a run deleted or would delete.
async fn items(s: &TestServer, run: &Value) -> BTreeSet<(String, String)> {
    let v = s
        .api_ok(&format!("/api/v1/gc/runs/{}/items", run["id"]))
        .await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_string(),
                i["target"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Pushes an image of a config and the given layers under `tag`; returns the manifest digest.
async fn push(s: &TestServer, repo: &str, tag: &str, config: &[u8], layers: &[&[u8]]) -> String {
    let c = client();
    let cd = push_blob(&c, &s.base, repo, config).await;
    let mut ls = Vec::new();
    for l in layers {
        ls.push((push_blob(&c, &s.base, repo, l).await, l.len()));
    }
    let refs: Vec<(&str, usize)> = ls.iter().map(|(d, n)| (d.as_str(), *n)).collect();
    let m = image_manifest((&cd, config.len()), &refs);
    let resp = put_manifest(&c, &s.base, repo, tag, OCI_MANIFEST, &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    sha256(&m)
}

/// Bytes of a manifest itself (kept in the catalogue; freed with it).
async fn manifest_size(s: &TestServer, repo: &str, digest: &str) -> u64 {
    let m = s
        .api_ok(&format!("/api/v1/repositories/{repo}/-/manifests/{digest}"))
        .await;
    m["size"].as_u64().expect("manifest size")
}

async fn blob_status(s: &TestServer, repo: &str, digest: &str) -> StatusCode {
    client()
        .head(s.url(&format!("/v2/{repo}/blobs/{digest}")))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_frees_exactly_what_its_dry_run_listed_and_only_unshared_bytes() {
    let clock = ManualClock::new(wall_clock_now());
    let s = server(&clock, Duration::from_secs(60), Duration::ZERO).await;
    let shared = random_bytes(50_000, 1);
    let only_v1 = random_bytes(30_000, 2);
    let only_v2 = random_bytes(20_000, 3);
    let config1 = br#"{"architecture":"amd64","os":"linux","n":1}"#.to_vec();
    let config2 = br#"{"architecture":"amd64","os":"linux","n":2}"#.to_vec();
    let m1 = push(&s, "team/app", "v1", &config1, &[&shared, &only_v1]).await;
    let m2 = push(&s, "team/app", "v2", &config2, &[&shared, &only_v2]).await;
    let before = s.stored_blob_bytes().await;

    let m1_size = manifest_size(&s, "team/app", &m1).await;
    let (status, _) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/team/app/-/tags/v1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Within the grace period nothing is collectable.
    let early = run_gc(&s, json!({"include_untagged_manifests": true})).await;
    assert_eq!(early["figures"]["manifests_deleted"], 0, "{early}");
    assert_eq!(early["figures"]["blobs_deleted"], 0, "{early}");

    clock.advance(2 * 60_000);
    let usage = s.api_ok("/api/v1/usage").await;
    // The manifest's own bytes are freed with it.
    let freed = (config1.len() + only_v1.len()) as u64 + m1_size;
    assert_eq!(usage["total"]["reclaimable_bytes"], freed, "{usage}");

    let dry = run_gc(
        &s,
        json!({"dry_run": true, "include_untagged_manifests": true}),
    )
    .await;
    let listed = items(&s, &dry).await;
    let expected: BTreeSet<(String, String)> = [
        ("manifest".to_string(), m1.clone()),
        ("blob".to_string(), sha256(&config1)),
        ("blob".to_string(), sha256(&only_v1)),
        ("link".to_string(), sha256(&config1)),
        ("link".to_string(), sha256(&only_v1)),
    ]
    .into_iter()
    .collect();
    assert_eq!(listed, expected, "dry run lists the unshared content only");
    assert_eq!(dry["figures"]["bytes_deleted"], freed);
    assert_eq!(
        s.stored_blob_bytes().await,
        before,
        "a dry run deletes nothing"
    );
    pull_verified(&s.base, "team/app", &m1).await;

    let real = run_gc(&s, json!({"include_untagged_manifests": true})).await;
    assert_eq!(
        items(&s, &real).await,
        listed,
        "the run deletes what the dry run listed"
    );
    assert_eq!(real["figures"]["bytes_deleted"], freed);
    assert_eq!(
        s.stored_blob_bytes().await,
        before - (freed - m1_size),
        "freed blob bytes left the disk"
    );
    assert_eq!(pull_verified(&s.base, "team/app", "v2").await, m2);
    let c = client();
    let gone = c
        .get(s.url(&format!("/v2/team/app/manifests/{m1}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        blob_status(&s, "team/app", &sha256(&only_v1)).await,
        StatusCode::NOT_FOUND
    );
    let usage = s.api_ok("/api/v1/usage").await;
    assert_eq!(usage["total"]["reclaimable_bytes"], 0, "{usage}");
    assert_eq!(
        usage["total"]["stored_bytes"].as_u64().unwrap(),
        s.stored_blob_bytes().await + manifest_size(&s, "team/app", &m2).await,
        "{usage}"
    );

    // Each run is one entry in the activity log, with its figures; what it deleted is its
    // item list, not an entry per object.
    let events = s.api_ok("/api/v1/events?action=gc&limit=100").await;
    let all = events["events"].as_array().unwrap();
    assert_eq!(all.len(), 3, "three runs, three entries: {events}");
    assert!(all.iter().all(|e| e["action"] == "gc.run"), "{events}");
    let this = all
        .iter()
        .find(|e| e["target"].as_str() == Some(real["id"].to_string().as_str()))
        .expect("the real run's entry");
    let reason = this["reason"].as_str().unwrap();
    assert!(
        reason.contains("1 manifests, 2 blobs") && reason.contains(&format!("{freed} bytes")),
        "{this}"
    );

    // The history lists both runs with their figures, newest first.
    let runs = s.api_ok("/api/v1/gc/runs").await;
    let ids: Vec<i64> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{runs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untagged_manifests_stay_unless_the_run_includes_them() {
    let clock = ManualClock::new(wall_clock_now());
    let s = server(&clock, Duration::ZERO, Duration::ZERO).await;
    let layer = random_bytes(10_000, 7);
    let m = push(&s, "app", "v1", b"{\"n\":7}", &[&layer]).await;
    let resp = client()
        .delete(s.url("/v2/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let files = s.blob_objects().await.len();

    let run = run_gc(&s, json!({"include_untagged_manifests": false})).await;
    assert_eq!(run["figures"]["manifests_deleted"], 0, "{run}");
    assert_eq!(s.blob_objects().await.len(), files);
    pull_verified(&s.base, "app", &m).await;

    let run = run_gc(&s, json!({"include_untagged_manifests": true})).await;
    assert_eq!(run["figures"]["manifests_deleted"], 1, "{run}");
    assert_eq!(run["figures"]["blobs_deleted"], 2, "{run}");
    assert!(s.blob_objects().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restorable_content_is_held_until_the_window_passes() {
    let clock = ManualClock::new(wall_clock_now());
    let s = server(&clock, Duration::ZERO, Duration::from_secs(3600)).await;
    let layer = random_bytes(40_000, 9);
    let config = b"{\"n\":9}".to_vec();
    let m = push(&s, "held", "v1", &config, &[&layer]).await;
    let size = (layer.len() + config.len()) as u64 + manifest_size(&s, "held", &m).await;
    let (status, _) = s
        .api(Method::DELETE, "/api/v1/repositories/held/-/tags/v1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let usage = s.api_ok("/api/v1/usage").await;
    assert_eq!(usage["total"]["held_for_restore_bytes"], size, "{usage}");
    assert_eq!(usage["total"]["reclaimable_bytes"], 0, "{usage}");

    let run = run_gc(
        &s,
        json!({"include_untagged_manifests": true, "grace": "0s"}),
    )
    .await;
    assert_eq!(run["figures"]["manifests_deleted"], 0, "{run}");
    assert_eq!(run["figures"]["blobs_deleted"], 0, "{run}");
    // Still restorable, and complete once restored.
    let (status, v) = s
        .api(
            Method::POST,
            "/api/v1/repositories/held/-/tags/v1/restore",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(pull_verified(&s.base, "held", "v1").await, m);

    // Deleted again, and the window passes: now it goes.
    let (status, _) = s
        .api(Method::DELETE, "/api/v1/repositories/held/-/tags/v1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    clock.advance(HOUR + 1);
    let usage = s.api_ok("/api/v1/usage").await;
    assert_eq!(usage["total"]["held_for_restore_bytes"], 0, "{usage}");
    assert_eq!(usage["total"]["reclaimable_bytes"], size, "{usage}");
    let run = run_gc(&s, json!({"include_untagged_manifests": true})).await;
    assert_eq!(run["figures"]["manifests_deleted"], 1, "{run}");
    assert_eq!(run["figures"]["bytes_deleted"], size, "{run}");
    assert!(s.blob_objects().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_repository_is_reclaimed_after_the_window() {
    let clock = ManualClock::new(wall_clock_now());
    let s = server(&clock, Duration::ZERO, Duration::from_secs(3600)).await;
    let shared = random_bytes(30_000, 11);
    push(&s, "keep", "v1", b"{\"k\":1}", &[&shared]).await;
    let doomed = push(
        &s,
        "doomed",
        "v1",
        b"{\"d\":1}",
        &[&shared, &random_bytes(5_000, 12)],
    )
    .await;
    let doomed_size = manifest_size(&s, "doomed", &doomed).await;
    let (status, _) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/doomed?confirm=doomed",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let run = run_gc(&s, json!({"include_untagged_manifests": true})).await;
    assert_eq!(
        run["figures"]["blobs_deleted"], 0,
        "held for restore: {run}"
    );
    clock.advance(HOUR + 1);
    let run = run_gc(&s, json!({"include_untagged_manifests": true})).await;
    assert_eq!(run["figures"]["manifests_deleted"], 1, "{run}");
    assert_eq!(
        run["figures"]["bytes_deleted"],
        5_000 + 7 + doomed_size,
        "{run}"
    );
    pull_verified(&s.base, "keep", "v1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_renews_the_lease_of_a_blob() {
    let clock = ManualClock::new(wall_clock_now());
    let s = server(&clock, Duration::from_secs(10), Duration::ZERO).await;
    let c = client();
    let blob = random_bytes(8_000, 21);
    let digest = push_blob(&c, &s.base, "lease", &blob).await;

    clock.advance(11_000);
    // The client asks; the answer "exists" renews the lease for another grace period.
    assert_eq!(blob_status(&s, "lease", &digest).await, StatusCode::OK);
    clock.advance(6_000);
    let run = run_gc(&s, json!({})).await;
    assert_eq!(run["figures"]["blobs_deleted"], 0, "{run}");
    assert_eq!(blob_status(&s, "lease", &digest).await, StatusCode::OK);

    // The HEAD just above renewed the lease (past half the grace period since the last
    // renewal); this one, 4 s later, does not write, and the client it told "exists" can still
    // rely on it for a whole grace period: a lease lasts one and a half.
    clock.advance(4_000);
    assert_eq!(blob_status(&s, "lease", &digest).await, StatusCode::OK);
    clock.advance(9_500);
    let run = run_gc(&s, json!({})).await;
    assert_eq!(run["figures"]["blobs_deleted"], 0, "{run}");

    // Pushed without any manifest referencing it, once the lease runs out it goes.
    clock.advance(2_000);
    let run = run_gc(&s, json!({})).await;
    assert_eq!(run["figures"]["blobs_deleted"], 1, "{run}");
    assert_eq!(
        blob_status(&s, "lease", &digest).await,
        StatusCode::NOT_FOUND
    );
    assert!(s.blob_objects().await.is_empty());

    // A client told "unknown" uploads again, under a fresh key, and can use it.
    let again = push_blob(&c, &s.base, "lease", &blob).await;
    assert_eq!(again, digest);
    let m = image_manifest(
        (&push_blob(&c, &s.base, "lease", b"{}").await, 2),
        &[(&digest, blob.len())],
    );
    let resp = put_manifest(&c, &s.base, "lease", "v1", OCI_MANIFEST, &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    pull_verified(&s.base, "lease", "v1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_and_unknown_objects_are_removed() {
    let clock = ManualClock::new(wall_clock_now());
    let s = server(&clock, Duration::ZERO, Duration::ZERO).await;
    let c = client();
    let kept = push(&s, "app", "v1", b"{}", &[&random_bytes(3_000, 31)]).await;
    let resp = c
        .post(s.url("/v2/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let resp = c
        .patch(s.url(&location))
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(s.upload_objects().await.len(), 1);
    // An object no catalogue row knows, as a crash between write and commit leaves behind.
    let orphan = s.plant_orphan(&[1u8; 1234]).await;
    let files_before = s.blob_objects().await.len();

    // Young: neither the session nor the object is touched.
    let run = run_gc(
        &s,
        json!({"include_untagged_manifests": true, "sweep": true}),
    )
    .await;
    assert_eq!(run["figures"]["uploads_deleted"], 0, "{run}");
    assert_eq!(run["figures"]["orphans_deleted"], 0, "{run}");
    assert!(s.has_object(&orphan).await);

    clock.advance(2 * HOUR);
    // The sweep lists the whole store, so a run does it only when asked.
    let run = run_gc(&s, json!({})).await;
    assert_eq!(run["figures"]["uploads_deleted"], 1, "{run}");
    assert_eq!(run["figures"]["orphans_deleted"], 0, "{run}");
    assert!(s.has_object(&orphan).await);
    assert!(s.upload_objects().await.is_empty());

    let dry = run_gc(&s, json!({"dry_run": true, "sweep": true})).await;
    assert_eq!(dry["figures"]["orphans_deleted"], 1, "{dry}");
    assert!(s.has_object(&orphan).await, "a dry run deletes nothing");

    let run = run_gc(&s, json!({"sweep": true})).await;
    assert_eq!(run["figures"]["orphans_deleted"], 1, "{run}");
    assert!(!s.has_object(&orphan).await);
    assert_eq!(s.blob_objects().await.len(), files_before - 1);
    let status = c.get(s.url(&location)).send().await.unwrap().status();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(pull_verified(&s.base, "app", "v1").await, kept);
}

/// A run whose node died (it stopped renewing its lease) holds the registry's one run only
/// until the lease runs out: then this node's collector fails it, says why, and a new run
/// starts. A live node's run, renewed, is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_run_is_failed_once_its_lease_runs_out() {
    let clock = ManualClock::new(wall_clock_now());
    let s = TestServer::start_with_clock(&clock, |c| {
        c.gc.workers = 1;
        c.gc.poll_interval = Duration::from_millis(50);
    })
    .await;
    let catalogue = s.second_catalogue().await;
    let now = shipshape_meta::Clock::now(&clock);
    let mut tx = catalogue.begin().await.unwrap();
    let other = shipshape_meta::Principal::anonymous(Some("10.0.0.2".into()));
    let spec = shipshape_meta::runs::RunSpec::default();
    let dead = shipshape_meta::runs::start_run(&mut tx, &spec, &other, now)
        .await
        .unwrap()
        .unwrap();
    let lease = 2 * 60 * 1000;
    assert!(
        shipshape_meta::runs::hold(&mut tx, dead, "node-that-dies", now + lease)
            .await
            .unwrap()
    );
    shipshape_meta::commit(tx).await.unwrap();

    // Within its lease, the run is the registry's one run (the worker polls meanwhile).
    let (status, v) = s
        .api(Method::POST, "/api/v1/gc/runs", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        s.api_ok(&format!("/api/v1/gc/runs/{dead}")).await["state"],
        "running"
    );

    // Past it, this node's worker fails it.
    clock.advance(lease + 1);
    let failed = common::wait_until("the dead node's run to be failed", || async {
        let run = s.api_ok(&format!("/api/v1/gc/runs/{dead}")).await;
        (run["state"] == "failed").then_some(run)
    })
    .await;
    assert!(
        failed["errors"][0]
            .as_str()
            .unwrap()
            .contains("stopped renewing its lease"),
        "{failed}"
    );
    let run = run_gc(&s, json!({})).await;
    assert_ne!(run["id"], dead);
    catalogue.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_at_a_time() {
    let clock = ManualClock::new(wall_clock_now());
    let s = server(&clock, Duration::ZERO, Duration::ZERO).await;
    // A run another process left active, as seen through the shared catalogue.
    let catalogue = s.second_catalogue().await;
    let mut tx = catalogue.begin().await.unwrap();
    let spec = shipshape_meta::runs::RunSpec::default();
    let other = shipshape_meta::Principal::anonymous(Some("10.0.0.2".into()));
    let active =
        shipshape_meta::runs::start_run(&mut tx, &spec, &other, shipshape_meta::Clock::now(&clock))
            .await
            .unwrap()
            .unwrap();
    shipshape_meta::commit(tx).await.unwrap();

    let (status, v) = s
        .api(Method::POST, "/api/v1/gc/runs", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&active.to_string()),
        "{v}"
    );
    let current = s.api_ok("/api/v1/gc/runs/active").await;
    assert_eq!(current["id"], active);

    let mut tx = catalogue.begin().await.unwrap();
    shipshape_meta::runs::finish_run(
        &mut tx,
        active,
        shipshape_meta::runs::RunState::Succeeded,
        &Default::default(),
        &[],
        0,
    )
    .await
    .unwrap();
    shipshape_meta::commit(tx).await.unwrap();
    let (status, _) = s.api(Method::GET, "/api/v1/gc/runs/active", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = s
        .api(
            Method::POST,
            &format!("/api/v1/gc/runs/{active}/cancel"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "cancelling a finished run: {v}"
    );
    let run = run_gc(&s, json!({"grace": "0s"})).await;
    assert_eq!(run["grace_ms"], 0);
    let (status, v) = s
        .api(
            Method::POST,
            "/api/v1/gc/runs",
            Some(json!({"grace": "soon"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_and_repairs() {
    let clock = ManualClock::new(wall_clock_now());
    let s = server(&clock, Duration::ZERO, Duration::ZERO).await;
    push(&s, "app", "v1", b"{}", &[&random_bytes(3_000, 41)]).await;
    let bin = env!("CARGO_BIN_EXE_shipshape");
    let dir = s.data_dir().to_str().unwrap().to_string();
    let check = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--data-dir",
            dir.as_str(),
            "--orphan-min-age",
            "0s",
        ];
        args.extend_from_slice(extra);
        std::process::Command::new(bin)
            .args(&args)
            .output()
            .unwrap()
    };
    let out = check(&["--verify-digests"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let orphan = s.plant_orphan(b"left by a crash").await;
    let out = check(&[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("not known to the catalogue"), "{text}");
    assert!(
        s.has_object(&orphan).await,
        "check without --repair changes nothing"
    );

    let out = check(&["--repair"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("repaired: deleted orphan object"), "{text}");
    assert!(!s.has_object(&orphan).await);

    // A referenced blob whose bytes are gone cannot be repaired: reported, non-zero exit.
    let victim = s.blob_objects().await[0].key.clone();
    s.store().delete(&victim).await.unwrap();
    let out = check(&["--repair"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("missing from storage"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gc_commands_drive_runs() {
    let clock = ManualClock::new(wall_clock_now());
    let s = server(&clock, Duration::ZERO, Duration::ZERO).await;
    let m = push(&s, "cli", "v1", b"{\"c\":1}", &[&random_bytes(2_000, 51)]).await;
    let resp = client()
        .delete(s.url("/v2/cli/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let bin = env!("CARGO_BIN_EXE_shipshape");
    let registry = s.base.clone();
    let run = move |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .args(["--registry", registry.as_str()])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let cli = run.clone();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        cli(&[
            "gc",
            "start",
            "--dry-run",
            "--include-untagged-manifests",
            "--grace",
            "0s",
            "--wait",
            "--output",
            "json",
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["figures"]["manifests_deleted"], 1, "{v}");
    pull_verified(&s.base, "cli", &m).await;

    let cli = run.clone();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        cli(&[
            "gc",
            "start",
            "--grace",
            "0s",
            "--include-untagged-manifests",
            "--wait",
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{stderr}");
    assert!(stdout.contains("succeeded"), "{stdout}");
    let cli = run.clone();
    let (ok, stdout, _) = tokio::task::spawn_blocking(move || cli(&["gc", "list"]))
        .await
        .unwrap();
    assert!(ok);
    assert_eq!(stdout.lines().count(), 3, "header and two runs: {stdout}");
    let cli = run.clone();
    // Nothing running is an answer, not a failure.
    let (ok, stdout, _) = tokio::task::spawn_blocking(move || cli(&["gc", "status"]))
        .await
        .unwrap();
    assert!(ok);
    assert_eq!(stdout.trim(), "no garbage collection run is active");
    let cli = run.clone();
    let (ok, _, stderr) = tokio::task::spawn_blocking(move || cli(&["gc", "cancel", "1"]))
        .await
        .unwrap();
    assert!(!ok);
    assert!(stderr.contains("already finished"), "{stderr}");
    assert_eq!(
        s.blob_objects().await.len(),
        0,
        "the real run freed everything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_keeps_what_it_deleted_and_the_next_run_frees_the_rest() {
    let clock = ManualClock::new(wall_clock_now());
    let s = server(&clock, Duration::ZERO, Duration::ZERO).await;
    let empty = s.stored_blob_bytes().await;
    for n in 0..4u64 {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","n":{n}}}"#).into_bytes();
        let layer = random_bytes(10_000 + n as usize, 100 + n);
        push(&s, "team/app", &format!("v{n}"), &config, &[&layer]).await;
        let (status, _) = s
            .api(
                Method::DELETE,
                &format!("/api/v1/repositories/team/app/-/tags/v{n}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let options = json!({"include_untagged_manifests": true, "grace": "0s"});
    let mut all_options = options.clone();
    all_options["dry_run"] = json!(true);
    let everything = items(&s, &run_gc(&s, all_options).await).await;
    assert_eq!(everything.len(), 4 * 5, "{everything:?}");

    // Hold the run once it has deleted two things, cancel it there, then let it go on.
    let mut held = s.server().collector().checkpoint().arm(2);
    let (status, run) = s
        .api(Method::POST, "/api/v1/gc/runs", Some(options.clone()))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let id = run["id"].as_i64().unwrap();
    held.reached().await;
    let (status, v) = s
        .api(Method::POST, &format!("/api/v1/gc/runs/{id}/cancel"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    held.release();
    let cancelled = wait_gc_run(&s.base, id).await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    let first = items(&s, &cancelled).await;
    assert!(
        first.len() >= 2 && first.len() < everything.len(),
        "stopped part-way: {first:?}"
    );
    assert!(first.is_subset(&everything), "{first:?}");
    let f = &cancelled["figures"];
    let counted = ["manifests_deleted", "blobs_deleted", "links_deleted"]
        .iter()
        .map(|k| f[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(counted, first.len() as u64, "figures report the items: {f}");
    for (kind, target) in &first {
        if kind == "manifest" {
            let r = client()
                .get(s.url(&format!("/v2/team/app/manifests/{target}")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{target} stays deleted");
        }
    }

    let rest = items(&s, &run_gc(&s, options).await).await;
    assert!(rest.is_disjoint(&first), "{rest:?}");
    assert_eq!(
        first.union(&rest).cloned().collect::<BTreeSet<_>>(),
        everything
    );
    assert_eq!(
        s.stored_blob_bytes().await,
        empty,
        "nothing is left on disk"
    );
}

/// A layer that another repository's image keeps is not reclaimed, but the link of a
/// repository that only uploaded it, with no manifest of its own, goes once its lease ends: the
/// review of a referenced blob still looks at the links its events named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_no_manifest_uses_goes_even_when_another_repository_keeps_the_blob() {
    let clock = ManualClock::new(wall_clock_now());
    let s = server(&clock, Duration::from_secs(10), Duration::ZERO).await;
    let c = client();
    let layer = random_bytes(5_000, 41);
    push(&s, "keeper", "v1", b"{}", &[&layer]).await;
    let digest = push_blob(&c, &s.base, "uploader", &layer).await;
    assert_eq!(blob_status(&s, "uploader", &digest).await, StatusCode::OK);

    // Within the lease the link stays.
    clock.advance(4_000);
    let run = run_gc(&s, json!({})).await;
    assert_eq!(run["figures"]["links_deleted"], 0, "{run}");
    assert_eq!(blob_status(&s, "uploader", &digest).await, StatusCode::OK);

    // Past it (a lease is one and a half grace periods), only that link goes: the blob and the
    // keeper's image stay whole.
    clock.advance(12_000);
    let run = run_gc(&s, json!({})).await;
    assert_eq!(
        items(&s, &run).await,
        BTreeSet::from([("link".to_string(), digest.clone())]),
        "{run}"
    );
    assert_eq!(
        blob_status(&s, "uploader", &digest).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(blob_status(&s, "keeper", &digest).await, StatusCode::OK);
    pull_verified(&s.base, "keeper", "v1").await;
}
