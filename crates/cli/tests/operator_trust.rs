//! The promises operators trust with their data, tried as an operator would: every way a tag
//! can leave an image keeps that image restorable for the window; restores bring back what
//! was there (push time, pulls, a whole repository); the storage figures mean what a
//! collection does; pulls are GETs; schedules keep their instants; the activity log stays
//! small and complete. Each test drives the real server over HTTP and, where an operator
//! would, the `shipshape` binary, on a manual clock.

mod common;

use std::collections::BTreeSet;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{
    OCI_INDEX, OCI_MANIFEST, TestServer, client, image_manifest, image_manifest_with,
    index_manifest, manifest_status, oci_tags, pull_verified, push_blob, push_image,
    push_image_bytes, put_manifest, random_bytes, sha256, wait_policy_run,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shipshape_meta::clock::ManualClock;

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
/// A fixed start, so failures reproduce.
const T0: i64 = 1_764_000_000_000;

/// A server on a manual clock with the collector's workers off (runs only when a test starts
/// one), pulls written at once, a 2 s grace, a 2 s lease and the given restore window.
async fn server(clock: &ManualClock, restore_window: Duration) -> TestServer {
    TestServer::start_with_clock(clock, |c| {
        c.gc.workers = 0;
        c.pull_flush_interval = Duration::ZERO;
        c.restore_window = restore_window;
        c.gc.review_delay = Duration::from_secs(2);
        c.gc.lease = Duration::from_secs(2);
    })
    .await
}

/// Runs `shipshape` with stdin closed against `s`.
async fn shipshape(s: &TestServer, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipshape"));
    cmd.args(args)
        .env("SHIPSHAPE_REGISTRY", &s.base)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd.output().await.expect("run shipshape")
}

/// Runs a command that must succeed; returns its stdout.
async fn ok(s: &TestServer, args: &[&str]) -> String {
    let o = shipshape(s, args).await;
    assert!(
        o.status.success(),
        "shipshape {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a command with `-o json` that must succeed; returns its JSON.
async fn json_of(s: &TestServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = ok(s, &all).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"))
}

/// Runs a command that must fail; returns its one `error:` line.
async fn fails(s: &TestServer, args: &[&str]) -> String {
    let o = shipshape(s, args).await;
    assert!(!o.status.success(), "shipshape {args:?} should fail");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
    err.trim().to_string()
}

/// Starts a GC run and waits for it to end; returns it.
async fn run_gc(s: &TestServer, body: Value) -> Value {
    let (status, run) = s.api(Method::POST, "/api/v1/gc/runs", Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run = common::wait_gc_run(&s.base, run["id"].as_i64().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    run
}

async fn usage(s: &TestServer) -> Value {
    s.api_ok("/api/v1/usage").await["total"].clone()
}

/// Bytes of a manifest itself, live or not, from the bytes the test pushed.
fn len(m: &[u8]) -> u64 {
    m.len() as u64
}

/// An image of a config and one layer of its own, pushed under `tag`, or by digest when
/// `None`; returns the manifest's digest and the bytes only it holds (config, layer,
/// manifest).
async fn push_own(s: &TestServer, repo: &str, tag: Option<&str>, seed: u64) -> (String, u64) {
    let c = client();
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
    let layer = random_bytes(4_000 + seed as usize, seed);
    let cd = push_blob(&c, &s.base, repo, &config).await;
    let ld = push_blob(&c, &s.base, repo, &layer).await;
    let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let digest = sha256(&m);
    let reference = tag.unwrap_or(&digest);
    let resp = put_manifest(&c, &s.base, repo, reference, OCI_MANIFEST, &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    (digest, (config.len() + layer.len()) as u64 + len(&m))
}

/// Every way a tag leaves an image keeps that image for the restore window, counted as held
/// for restore, listed in the restore bin and restorable; past the window a run frees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_any_tag_leaves_is_held_and_restorable() {
    let clock = ManualClock::new(T0);
    let s = server(&clock, Duration::from_secs(60)).await;
    let repo = "team/web";

    // Overwritten by a push: the most common mistake.
    let (a, a_bytes) = push_own(&s, repo, Some("dev"), 1).await;
    clock.advance(SECOND);
    let (b, b_bytes) = push_own(&s, repo, Some("dev"), 2).await;
    clock.advance(5 * SECOND); // past the grace period and the leases
    let run = run_gc(&s, json!({"grace": "0s"})).await;
    assert_eq!(run["figures"]["manifests_deleted"], 0, "{run}");
    let u = usage(&s).await;
    assert_eq!(u["held_for_restore_bytes"], a_bytes, "{u}");
    let bin = json_of(&s, &["restorable", repo]).await;
    let entry = &bin["tags"][0];
    assert_eq!(
        (
            entry["tag"].as_str(),
            entry["how"].as_str(),
            entry["digest"].as_str()
        ),
        (Some("dev"), Some("overwritten"), Some(a.as_str())),
        "{bin}"
    );
    assert_eq!(
        entry["conflict"],
        b.as_str(),
        "the name points elsewhere now"
    );
    let until = entry["restorable_until"].as_str().unwrap();
    assert!(until.starts_with("2025-11-24T16:01:"), "{until}");
    let out = ok(
        &s,
        &[
            "tag", "restore", repo, "dev", "--digest", &a, "--force", "--yes",
        ],
    )
    .await;
    assert!(out.contains(&format!("replaced {b}")), "{out}");
    assert_eq!(pull_verified(&s.base, repo, "dev").await, a);

    // Replaced by that forced restore: B is held and restorable in turn.
    let u = usage(&s).await;
    assert_eq!(u["held_for_restore_bytes"], b_bytes, "{u}");
    let bin = json_of(&s, &["restorable", repo]).await;
    assert_eq!(bin["tags"][0]["how"], "replaced", "{bin}");
    assert_eq!(bin["tags"][0]["digest"], b.as_str(), "{bin}");

    // Deleted in bulk, by a policy, and with the repository: each is held and restorable.
    let (c1, _) = push_own(&s, repo, Some("bulk-1"), 3).await;
    let (status, v) = s
        .api(
            Method::POST,
            &format!("/api/v1/repositories/{repo}/-/bulk-delete"),
            Some(json!({"delete_regex": "bulk-.*"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (p1, _) = push_own(&s, repo, Some("ci-1"), 4).await;
    let (status, v) = s
        .api(
            Method::PUT,
            "/api/v1/policies/ci",
            Some(
                json!({"name": "ci", "repositories": [repo], "tags": {"include": ["ci-*"]},
                        "delete": {"older_than": "0s"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = s.api(Method::POST, "/api/v1/policies/ci/runs", None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let r = wait_policy_run(&s.base, v["id"].as_i64().unwrap()).await;
    assert_eq!(r["state"], "succeeded", "{r}");
    clock.advance(5 * SECOND);
    let run = run_gc(&s, json!({"grace": "0s"})).await;
    assert_eq!(run["figures"]["manifests_deleted"], 0, "{run}");
    let bin = json_of(&s, &["restorable", repo]).await;
    let listed: BTreeSet<(String, String)> = bin["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["tag"].as_str().unwrap().to_string(),
                e["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(listed.contains(&("bulk-1".into(), c1.clone())), "{bin}");
    assert!(listed.contains(&("ci-1".into(), p1.clone())), "{bin}");
    ok(&s, &["tag", "restore", repo, "bulk-1"]).await;
    ok(&s, &["tag", "restore", repo, "ci-1"]).await;
    assert_eq!(pull_verified(&s.base, repo, "bulk-1").await, c1);
    assert_eq!(pull_verified(&s.base, repo, "ci-1").await, p1);

    // Past the window, a run frees what nothing holds any more.
    clock.advance(2 * MINUTE);
    let u = usage(&s).await;
    assert_eq!(u["held_for_restore_bytes"], 0, "{u}");
    assert_eq!(u["reclaimable_bytes"], b_bytes, "{u}");
    let run = run_gc(&s, json!({})).await;
    assert_eq!(run["figures"]["bytes_deleted"], b_bytes, "{run}");
    assert_eq!(
        manifest_status(&s.base, repo, &b).await,
        StatusCode::NOT_FOUND
    );
    let line = fails(
        &s,
        &[
            "tag", "restore", repo, "dev", "--digest", &b, "--force", "--yes",
        ],
    )
    .await;
    assert!(line.contains("not known"), "{line}");
}

/// A restored tag keeps the push time and pull figures it had, so retention ranks it where it
/// was, not as the newest push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_tag_keeps_its_push_time_and_pulls() {
    let clock = ManualClock::new(T0);
    let s = server(&clock, Duration::from_secs(3600)).await;
    let c = client();
    let repo = "rank/app";
    push_image(&c, &s.base, repo, "old", 1).await; // T0
    clock.advance(MINUTE);
    pull_verified(&s.base, repo, "old").await;
    pull_verified(&s.base, repo, "old").await;
    clock.advance(MINUTE);
    push_image(&c, &s.base, repo, "new", 2).await; // T0 + 2 min
    clock.advance(MINUTE);
    let before = s
        .api_ok(&format!("/api/v1/repositories/{repo}/-/tags/old"))
        .await;
    ok(&s, &["tag", "rm", "--yes", repo, "old"]).await;
    clock.advance(10 * MINUTE);
    ok(&s, &["tag", "restore", repo, "old"]).await;
    let after = s
        .api_ok(&format!("/api/v1/repositories/{repo}/-/tags/old"))
        .await;
    for field in ["pushed_at", "last_pulled_at", "pull_count"] {
        assert_eq!(after[field], before[field], "{field}: {after} vs {before}");
    }
    assert_eq!(after["pull_count"], 2);
    // The history records the restore.
    let h = s
        .api_ok(&format!("/api/v1/repositories/{repo}/-/tags/old/history"))
        .await;
    assert_eq!(h["entries"][0]["action"], "restored", "{h}");
    // Newest push first: the restored tag is still the older one.
    let v = json_of(&s, &["tag", "ls", repo, "--sort", "pushed"]).await;
    let order: Vec<&str> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["new", "old"]);
    // And a policy keeping the latest push keeps `new`, not the restored `old`.
    let (status, v) = s
        .api(
            Method::POST,
            "/api/v1/policies/preview",
            Some(
                json!({"name": "keep1", "repositories": [repo], "keep": {"latest_pushed": 1},
                        "delete": {"older_than": "0s"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let decisions = &v["repositories"][0]["decisions"];
    let deleted: Vec<&str> = decisions
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["action"] == "delete")
        .map(|d| d["target"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, ["old"], "{v}");
}

/// A deleted repository comes back whole with one command: every tag, untagged manifests and
/// referrers; the restore bin lists it with deadlines; a reused name needs force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_repository_comes_back_whole() {
    let clock = ManualClock::new(T0);
    let s = server(&clock, Duration::from_secs(3600)).await;
    let c = client();
    let repo = "gone/app";
    let (v1, v1_bytes) = push_image_bytes(&c, &s.base, repo, "v1", 1).await;
    let v2 = push_image(&c, &s.base, repo, "v2", 2).await;
    let (loose, _) = push_own(&s, repo, None, 3).await;
    // A signature of v1, pushed by digest with v1 as its subject.
    let sig_config = push_blob(&c, &s.base, repo, b"{}").await;
    let sig_layer = push_blob(&c, &s.base, repo, b"signature").await;
    let mut extra = serde_json::Map::new();
    extra.insert(
        "subject".into(),
        json!({"mediaType": OCI_MANIFEST, "digest": v1, "size": v1_bytes.len()}),
    );
    extra.insert("artifactType".into(), json!("application/vnd.example.sig"));
    let sig = image_manifest_with((&sig_config, 2), &[(&sig_layer, 9)], extra);
    let resp = put_manifest(&c, &s.base, repo, &sha256(&sig), OCI_MANIFEST, &sig).await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    clock.advance(MINUTE);
    let out = ok(&s, &["repo", "rm", repo, "--yes"]).await;
    assert!(
        out.contains("repo restore gone/app"),
        "says how to undo: {out}"
    );
    assert_eq!(oci_tags(&s.base, repo).await, Err(StatusCode::NOT_FOUND));
    let bin = json_of(&s, &["restorable"]).await;
    let entries = bin["tags"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{bin}");
    for e in entries {
        assert_eq!(e["repository"], repo);
        assert_eq!(e["repository_deleted"], true);
        assert_eq!(e["how"], "deleted");
        assert_eq!(e["batch"], entries[0]["batch"], "one deletion, one batch");
        assert!(
            e["restorable_until"]
                .as_str()
                .unwrap()
                .starts_with("2025-11-24T17:01:"),
            "{e}"
        );
    }
    let table = ok(&s, &["restorable"]).await;
    assert!(table.contains("gone/app (deleted)"), "{table}");

    // The name v2 is pushed again meanwhile: the restore refuses, naming it, and changes
    // nothing until forced.
    let v2_new = push_image(&c, &s.base, repo, "v2", 4).await;
    let line = fails(&s, &["repo", "restore", repo]).await;
    assert!(
        line.contains("v2") && line.contains(&v2_new) && line.contains("--force"),
        "{line}"
    );
    assert_eq!(
        manifest_status(&s.base, repo, "v1").await,
        StatusCode::NOT_FOUND
    );
    let v = json_of(&s, &["repo", "restore", repo, "--force", "--yes"]).await;
    assert_eq!(v["tags"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(pull_verified(&s.base, repo, "v1").await, v1);
    assert_eq!(pull_verified(&s.base, repo, "v2").await, v2);
    // The untagged manifest and the signature came back with it.
    assert_eq!(pull_verified(&s.base, repo, &loose).await, loose);
    let referrers: Value = c
        .get(s.url(&format!("/v2/{repo}/referrers/{v1}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        referrers["manifests"][0]["digest"],
        sha256(&sig),
        "{referrers}"
    );
    // The forced restore left v2's newer image restorable in turn.
    let bin = json_of(&s, &["restorable", repo]).await;
    assert_eq!(bin["tags"][0]["digest"], v2_new.as_str(), "{bin}");
    assert_eq!(bin["tags"][0]["how"], "replaced", "{bin}");
    let line = fails(&s, &["repo", "restore", "never/deleted"]).await;
    assert!(line.contains("not known"), "{line}");
}

/// "Reclaimable" means one thing: what a collection with the registry's settings frees now.
/// Usage, a dry run and a real run agree on it, whether untagged manifests are collected or
/// kept, and without any option on the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reclaimable_is_what_a_run_frees() {
    for collect_untagged in [true, false] {
        let clock = ManualClock::new(T0);
        let s = TestServer::start_with_clock(&clock, |c| {
            c.gc.workers = 0;
            c.restore_window = Duration::ZERO;
            c.gc.review_delay = Duration::from_secs(2);
            c.gc.lease = Duration::from_secs(2);
            c.gc.untagged_manifests = collect_untagged;
        })
        .await;
        push_own(&s, "r/app", Some("v1"), 1).await;
        let (_, loose_bytes) = push_own(&s, "r/app", None, 2).await;
        let expected = if collect_untagged { loose_bytes } else { 0 };
        // Within the grace period and the push's lease: garbage, not yet reclaimable.
        let u = usage(&s).await;
        assert_eq!(u["in_grace_bytes"], expected, "{u}");
        assert_eq!(u["reclaimable_bytes"], 0, "{u}");
        clock.advance(5 * SECOND);
        let u = usage(&s).await;
        assert_eq!(u["reclaimable_bytes"], expected, "{u}");
        assert_eq!(u["in_grace_bytes"], 0, "{u}");
        let table = ok(&s, &["usage"]).await;
        assert!(
            table.contains("RECLAIMABLE") && table.contains("IN GRACE"),
            "{table}"
        );

        let dry = run_gc(&s, json!({"dry_run": true})).await;
        assert_eq!(dry["figures"]["bytes_deleted"], expected, "{dry}");
        assert_eq!(dry["include_untagged_manifests"], collect_untagged, "{dry}");
        let v = json_of(&s, &["gc", "start", "--wait"]).await;
        assert_eq!(v["figures"]["bytes_deleted"], expected, "{v}");
        let u = usage(&s).await;
        assert_eq!(u["reclaimable_bytes"], 0, "{u}");
        pull_verified(&s.base, "r/app", "v1").await;
    }
}

/// Deletions report what they take out of use as held for restore (freed when the window
/// ends), matching what usage then shows; a policy's preview counts the repositories that
/// lose something apart from those it evaluated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_report_held_and_reclaimable_bytes_as_usage_shows_them() {
    let clock = ManualClock::new(T0);
    let s = server(&clock, Duration::from_secs(3600)).await;
    let (_, a_bytes) = push_own(&s, "p/a", Some("old"), 1).await;
    push_own(&s, "p/a", Some("keep"), 2).await;
    push_own(&s, "p/b", Some("keep"), 3).await;
    let policy = json!({"name": "p", "repositories": ["p/*"], "tags": {"include": ["old"]},
                        "delete": {"older_than": "0s"}});
    let (status, preview) = s
        .api(
            Method::POST,
            "/api/v1/policies/preview",
            Some(policy.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let f = &preview["figures"];
    assert_eq!(
        (
            f["repositories"].as_u64(),
            f["repositories_affected"].as_u64()
        ),
        (Some(2), Some(1)),
        "{preview}"
    );
    assert_eq!(f["bytes_held_for_restore"], a_bytes, "{preview}");
    assert_eq!(f["bytes_reclaimable"], 0, "{preview}");
    let (status, _) = s.api(Method::PUT, "/api/v1/policies/p", Some(policy)).await;
    assert_eq!(status, StatusCode::CREATED);
    let out = ok(&s, &["policy", "preview", "p"]).await;
    assert!(out.contains("in 1 of 2 repositories"), "{out}");
    assert!(out.contains("held for restore"), "{out}");
    let run = json_of(&s, &["policy", "run", "p", "--wait"]).await;
    assert_eq!(run["figures"]["bytes_held_for_restore"], a_bytes, "{run}");
    assert_eq!(run["figures"]["repositories_affected"], 1, "{run}");
    assert_eq!(usage(&s).await["held_for_restore_bytes"], a_bytes);

    // A bulk delete and a repository delete say the same, with the restore deadline.
    let (_, c_bytes) = push_own(&s, "p/c", Some("x"), 4).await;
    let (status, v) = s
        .api(
            Method::POST,
            "/api/v1/repositories/p/c/-/bulk-delete",
            Some(json!({"keep_latest": 0, "dry_run": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["bytes_held_for_restore"], c_bytes, "{v}");
    let out = ok(&s, &["tag", "rm", "p/c", "--keep-latest", "0", "--dry-run"]).await;
    assert!(
        out.contains("would take") && out.contains("held for restore until"),
        "{out}"
    );
    let (status, v) = s
        .api(Method::DELETE, "/api/v1/repositories/p/c?confirm=p/c", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["bytes_held_for_restore"], c_bytes, "{v}");
    assert_eq!(v["bytes_reclaimable"], 0, "{v}");
    assert!(v["restorable_until"].is_string(), "{v}");
    assert_eq!(usage(&s).await["held_for_restore_bytes"], a_bytes + c_bytes);
}

/// A dry run started from the CLI shows what it would delete (not "running 0 0 0 B"), and a
/// sweep's orphans are counted in the listing of runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_its_items_and_a_sweep_its_orphans() {
    // The sweep compares the files' times with the clock: start it ahead of the real time.
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let clock = ManualClock::new(wall + MINUTE);
    let s = TestServer::start_with_clock(&clock, |c| {
        c.gc.workers = 0;
        c.restore_window = Duration::ZERO;
        c.gc.review_delay = Duration::ZERO;
        c.gc.lease = Duration::ZERO;
        c.gc.sweep_min_age = Duration::ZERO;
    })
    .await;
    let (m, _) = push_own(&s, "d/app", None, 1).await;
    let out = ok(&s, &["gc", "start", "--dry-run"]).await;
    assert!(!out.contains("running"), "{out}");
    assert!(
        out.contains("manifest") && out.contains(&m),
        "lists the manifest: {out}"
    );
    assert!(out.contains("would delete 1 manifests, 2 blobs"), "{out}");

    let orphan = s.plant_orphan(b"left by a crash").await;
    let out = ok(&s, &["gc", "start", "--sweep", "--wait"]).await;
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert!(header.contains(&"ORPHANS"), "{out}");
    let v = json_of(&s, &["gc", "list", "--limit", "1"]).await;
    assert_eq!(v["runs"][0]["figures"]["orphans_deleted"], 1, "{v}");
    assert!(!s.has_object(&orphan).await);
}

/// A pull is a GET of a manifest: tools that poll digests with HEAD do not make a tag
/// "recently pulled".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_requests_are_not_pulls() {
    let clock = ManualClock::new(T0);
    let s = server(&clock, Duration::ZERO).await;
    let c = client();
    let d = push_image(&c, &s.base, "poll/app", "v1", 1).await;
    for reference in ["v1", d.as_str(), "v1"] {
        let r = c
            .head(s.url(&format!("/v2/poll/app/manifests/{reference}")))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let tag = s.api_ok("/api/v1/repositories/poll/app/-/tags/v1").await;
    assert_eq!(
        (tag["pull_count"].as_i64(), tag["last_pulled_at"].as_str()),
        (Some(0), None),
        "{tag}"
    );
    clock.advance(MINUTE);
    pull_verified(&s.base, "poll/app", "v1").await;
    let tag = s.api_ok("/api/v1/repositories/poll/app/-/tags/v1").await;
    assert_eq!(tag["pull_count"], 1, "{tag}");
    assert!(
        tag["last_pulled_at"]
            .as_str()
            .unwrap()
            .starts_with("2025-11-24T16:01:00"),
        "{tag}"
    );
}

/// A policy that runs every minute runs at its instants: a run started late by the poll
/// interval does not move the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_keeps_its_instants() {
    let clock = ManualClock::new(T0);
    let s = TestServer::start_with_clock(&clock, |c| {
        c.gc.workers = 0;
        // The test calls the scheduler itself.
        c.policy_poll_interval = Duration::from_secs(24 * 3600);
    })
    .await;
    let (status, v) = s
        .api(
            Method::PUT,
            "/api/v1/policies/tick",
            Some(
                json!({"name": "tick", "repositories": ["none/*"], "schedule": "every 1m",
                        "delete": {"older_than": "30d"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let next = |v: &Value| v["next_run_at"].as_str().unwrap().to_string();
    assert_eq!(next(&v), "2025-11-24T16:01:00.000Z");
    let retention = s.server().retention();
    for (late_by, expected_next) in [
        (30 * SECOND, "2025-11-24T16:02:00.000Z"),
        (59 * SECOND, "2025-11-24T16:03:00.000Z"),
        (0, "2025-11-24T16:04:00.000Z"),
    ] {
        let due = s.api_ok("/api/v1/policies/tick").await;
        let due_at = humantime::parse_rfc3339(due["next_run_at"].as_str().unwrap()).unwrap();
        let due_ms = due_at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        clock.advance(due_ms + late_by - shipshape_meta::Clock::now(&clock));
        let started = retention.start_due().await.unwrap();
        assert_eq!(started.len(), 1);
        let v = s.api_ok("/api/v1/policies/tick").await;
        assert_eq!(next(&v), expected_next, "late by {late_by} ms");
        wait_policy_run(&s.base, started[0]).await;
    }
    // A scheduled run that deleted nothing leaves its run record, not a log entry.
    let events = s.api_ok("/api/v1/events?action=policy.run").await;
    assert_eq!(events["events"], json!([]), "{events}");
    let runs = s.api_ok("/api/v1/policies/tick/runs").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 3);
}

/// The collector writes one entry per run (and per background pass that deleted something)
/// with its figures, not one per object; every push is recorded, also by digest; entries
/// older than the retention go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_log_stays_small_and_complete() {
    let clock = ManualClock::new(T0);
    let s = TestServer::start_with_clock(&clock, |c| {
        c.gc.workers = 0;
        c.restore_window = Duration::ZERO;
        c.gc.review_delay = Duration::ZERO;
        c.gc.lease = Duration::ZERO;
        c.events_retention = Duration::from_secs(3600);
    })
    .await;
    let c = client();
    // An index of two children pushed by digest, as multi-arch pushes do.
    let (a, a_bytes) = push_image_bytes(&c, &s.base, "log/multi", "a-tmp", 1).await;
    let (b, b_bytes) = push_image_bytes(&c, &s.base, "log/multi", "b-tmp", 2).await;
    let index = index_manifest(&[(&a, a_bytes.len()), (&b, b_bytes.len())]);
    let resp = put_manifest(&c, &s.base, "log/multi", "latest", OCI_INDEX, &index).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (loose, _) = push_own(&s, "log/multi", None, 3).await;
    let pushes = s
        .api_ok("/api/v1/events?action=manifest.push&repository=log/multi")
        .await;
    let digests: Vec<&str> = pushes["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, [loose.as_str()], "{pushes}");
    assert_eq!(pushes["events"][0]["actor"], "anonymous");

    // Twenty images deleted, then one run: one entry, with its figures.
    for i in 0..20 {
        push_image(&c, &s.base, "log/many", &format!("t{i}"), 10 + i).await;
        let (status, _) = s
            .api(
                Method::DELETE,
                &format!("/api/v1/repositories/log/many/-/tags/t{i}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let before = s.api_ok("/api/v1/events?limit=1000").await["events"]
        .as_array()
        .unwrap()
        .len();
    let run = run_gc(&s, json!({"grace": "0s"})).await;
    assert!(
        run["figures"]["blobs_deleted"].as_u64().unwrap() >= 40,
        "{run}"
    );
    let after = s.api_ok("/api/v1/events?limit=1000").await;
    assert_eq!(
        after["events"].as_array().unwrap().len(),
        before + 1,
        "{after}"
    );
    assert_eq!(after["events"][0]["action"], "gc.run");
    let reason = after["events"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("21 manifests"), "{reason}");
    // A background pass that deletes something is one entry too.
    push_image(&c, &s.base, "log/bg", "x", 99).await;
    s.api(Method::DELETE, "/api/v1/repositories/log/bg/-/tags/x", None)
        .await;
    let out = s.server().collector().background_pass().await.unwrap();
    assert!(out.figures.manifests >= 1);
    let bg = s.api_ok("/api/v1/events?action=gc.collect").await;
    assert_eq!(bg["events"].as_array().unwrap().len(), 1, "{bg}");
    let out = s.server().collector().background_pass().await.unwrap();
    assert_eq!(out.figures.deleted(), 0);
    let bg = s.api_ok("/api/v1/events?action=gc.collect").await;
    assert_eq!(
        bg["events"].as_array().unwrap().len(),
        1,
        "an idle pass logs nothing"
    );

    // Past the retention, the log is pruned online.
    clock.advance(2 * HOUR);
    push_image(&c, &s.base, "log/late", "x", 100).await;
    let pruned = s
        .server()
        .collector()
        .prune_history(Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(pruned > 0);
    let left = s.api_ok("/api/v1/events?limit=1000").await;
    let repos: BTreeSet<&str> = left["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["repository"].as_str())
        .collect();
    assert_eq!(repos, BTreeSet::from(["log/late"]), "{left}");
}

/// Restores say what they did and do it once: undoing a batch twice changes nothing the second
/// time; a repository's restore counts every manifest it brings back; a tag is restored only
/// onto an image it pointed at; a deleted repository is named as such, with its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_happen_once_and_say_what_they_did() {
    let clock = ManualClock::new(T0);
    let s = server(&clock, Duration::from_secs(3600)).await;
    let c = client();
    let repo = "once/app";
    let v1 = push_image(&c, &s.base, repo, "v1", 1).await;
    let other = push_image(&c, &s.base, repo, "other", 2).await;
    push_own(&s, repo, None, 3).await;
    let v = json_of(&s, &["tag", "rm", "--yes", repo, "v1"]).await;
    let batch = v["batch"].as_i64().unwrap().to_string();
    ok(&s, &["undo", &batch]).await;
    let history = || async {
        s.api_ok(&format!("/api/v1/repositories/{repo}/-/tags/v1/history"))
            .await["entries"]
            .as_array()
            .unwrap()
            .len()
    };
    let entries = history().await;
    let line = fails(&s, &["undo", &batch]).await;
    assert!(line.contains("nothing to restore"), "{line}");
    assert_eq!(history().await, entries, "nothing recorded twice");
    let line = fails(&s, &["tag", "restore", repo, "v1"]).await;
    assert!(line.contains("already points at"), "{line}");

    // Only onto an image the tag pointed at.
    let line = fails(
        &s,
        &[
            "tag", "restore", repo, "v1", "--digest", &other, "--force", "--yes",
        ],
    )
    .await;
    assert!(line.contains("never pointed at"), "{line}");
    assert_eq!(pull_verified(&s.base, repo, "v1").await, v1);

    // A repository's restore counts what came back: two tagged images and an untagged one.
    ok(&s, &["repo", "rm", "--yes", repo]).await;
    let line = fails(&s, &["tag", "ls", repo]).await;
    assert!(
        line.contains("was deleted") && line.contains("repo restore once/app"),
        "{line}"
    );
    let v = json_of(&s, &["repo", "restore", repo]).await;
    assert_eq!(v["manifests"], 3, "{v}");
    let line = fails(&s, &["undo", &v["batch"].to_string()]).await;
    assert!(line.contains("is back already"), "{line}");
}

/// A tag pushed onto another image starts unpulled there: pull figures belong to the tag on
/// its image, so a never-pulled image does not count as recently pulled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_tag_starts_unpulled_on_its_new_image() {
    let clock = ManualClock::new(T0);
    let s = server(&clock, Duration::from_secs(3600)).await;
    let c = client();
    push_image(&c, &s.base, "pull/app", "latest", 1).await;
    pull_verified(&s.base, "pull/app", "latest").await;
    let before = s
        .api_ok("/api/v1/repositories/pull/app/-/tags/latest")
        .await;
    assert_eq!(before["pull_count"], 1);
    clock.advance(MINUTE);
    push_image(&c, &s.base, "pull/app", "latest", 2).await;
    let after = s
        .api_ok("/api/v1/repositories/pull/app/-/tags/latest")
        .await;
    assert_eq!(after["pull_count"], 0, "{after}");
    assert_eq!(after["last_pulled_at"], Value::Null, "{after}");
    // Back on the first image, the figures it had there come back with it.
    ok(
        &s,
        &["tag", "restore", "pull/app", "latest", "--force", "--yes"],
    )
    .await;
    let back = s
        .api_ok("/api/v1/repositories/pull/app/-/tags/latest")
        .await;
    assert_eq!(back["pull_count"], 1, "{back}");
    assert_eq!(back["last_pulled_at"], before["last_pulled_at"], "{back}");
}

/// Two servers on one data directory would each run collectors and count pulls apart: the
/// second is refused, naming the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_directory_is_refused() {
    let s = TestServer::start().await;
    let config = shipshape_server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: s.data_dir().to_path_buf(),
        ..Default::default()
    };
    let e = shipshape_server::Server::start(config)
        .await
        .err()
        .expect("refused");
    let text = e.to_string();
    assert!(
        text.contains("already serves") && text.contains(s.data_dir().to_str().unwrap()),
        "{text}"
    );
}
