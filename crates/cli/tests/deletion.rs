//! The deletion model over HTTP against the real server: tags, manifests and repositories are
//! deleted as the issue says, restored completely, deleted in bulk exactly as filtered,
//! counted in the usage figures like the bytes on disk, and recorded once in the activity log.

mod common;

use std::collections::BTreeSet;

use common::{
    OCI_INDEX, TestServer, client, first_code, first_message, index_manifest, manifest_status,
    oci_tags, pull_verified, push_blob, push_image, push_image_bytes, put_manifest, random_bytes,
    sha256, wait_gc_run, wait_policy_run,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shipshape_meta::clock::ManualClock;

/// A fixed start for clock-driven servers: 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

async fn oci_delete(s: &TestServer, path: &str) -> (StatusCode, Value) {
    let resp = client().delete(s.url(path)).send().await.unwrap();
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

#[tokio::test]
async fn deleting_a_tag_removes_only_that_tag() {
    let s = TestServer::start().await;
    let c = client();
    let d = push_image(&c, &s.base, "t/app", "v1", 1).await;
    assert_eq!(push_image(&c, &s.base, "t/app", "v2", 1).await, d);
    let other = push_image(&c, &s.base, "t/app", "other", 2).await;

    let (status, v) = s
        .api(Method::DELETE, "/api/v1/repositories/t/app/-/tags/v1", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"tag": "v1", "digest": d}));

    assert_eq!(
        manifest_status(&s.base, "t/app", "v1").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(pull_verified(&s.base, "t/app", &d).await, d);
    assert_eq!(pull_verified(&s.base, "t/app", "v2").await, d);
    assert_eq!(pull_verified(&s.base, "t/app", "other").await, other);
    assert_eq!(oci_tags(&s.base, "t/app").await.unwrap(), ["other", "v2"]);

    // The distribution API's delete by tag behaves the same.
    let (status, _) = oci_delete(&s, "/v2/t/app/manifests/v2").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(oci_tags(&s.base, "t/app").await.unwrap(), ["other"]);
    assert_eq!(pull_verified(&s.base, "t/app", &d).await, d);

    // Deleting it again is an unknown tag, not a success.
    let (status, v) = s
        .api(Method::DELETE, "/api/v1/repositories/t/app/-/tags/v1", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn deleting_a_manifest_removes_it_and_says_which_tags_went() {
    let s = TestServer::start().await;
    let c = client();
    let d = push_image(&c, &s.base, "m/app", "v1", 1).await;
    push_image(&c, &s.base, "m/app", "v2", 1).await;
    let keep = push_image(&c, &s.base, "m/app", "keep", 2).await;

    let (status, _) = oci_delete(&s, &format!("/v2/m/app/manifests/{d}")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for r in ["v1", "v2", d.as_str()] {
        assert_eq!(
            manifest_status(&s.base, "m/app", r).await,
            StatusCode::NOT_FOUND,
            "{r}"
        );
    }
    assert_eq!(pull_verified(&s.base, "m/app", "keep").await, keep);
    assert_eq!(oci_tags(&s.base, "m/app").await.unwrap(), ["keep"]);

    let v = s
        .api_ok("/api/v1/events?repository=m/app&action=manifest.delete")
        .await;
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{v}");
    assert_eq!(events[0]["digest"], d.as_str());
    assert_eq!(
        events[0]["target"], "v1,v2",
        "the event names the tags that went"
    );

    // Each tag's history records the deletion, from the manifest's digest.
    for tag in ["v1", "v2"] {
        let h = s
            .api_ok(&format!("/api/v1/repositories/m/app/-/tags/{tag}/history"))
            .await;
        let latest = &h["entries"][0];
        assert_eq!(latest["action"], "deleted", "{h}");
        assert_eq!(latest["from_digest"], d.as_str(), "{h}");
        assert_eq!(latest["to_digest"], Value::Null, "{h}");
    }
}

#[tokio::test]
async fn an_index_child_cannot_be_deleted_from_under_its_index() {
    let s = TestServer::start().await;
    let c = client();
    let (a, a_bytes) = push_image_bytes(&c, &s.base, "i/app", "a", 3).await;
    let (b, b_bytes) = push_image_bytes(&c, &s.base, "i/app", "b", 4).await;
    let index = index_manifest(&[(&a, a_bytes.len()), (&b, b_bytes.len())]);
    let resp = put_manifest(&c, &s.base, "i/app", "multi", OCI_INDEX, &index).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let index_digest = sha256(&index);

    let before = s.footprint().await;
    let (status, v) = oci_delete(&s, &format!("/v2/i/app/manifests/{a}")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert_eq!(first_code(&v), "UNSUPPORTED");
    assert!(
        first_message(&v).contains(&index_digest),
        "the refusal names the index: {v}"
    );
    assert_eq!(s.footprint().await, before, "a refusal changes nothing");
    assert_eq!(pull_verified(&s.base, "i/app", "multi").await, index_digest);
    assert_eq!(pull_verified(&s.base, "i/app", &a).await, a);

    // Once the index is gone, the child can go.
    let (status, _) = oci_delete(&s, &format!("/v2/i/app/manifests/{index_digest}")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, v) = oci_delete(&s, &format!("/v2/i/app/manifests/{a}")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(oci_tags(&s.base, "i/app").await.unwrap(), ["b"]);
}

async fn catalog(s: &TestServer) -> Vec<String> {
    let v: Value = client()
        .get(s.url("/v2/_catalog"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    strings(&v["repositories"])
}

#[tokio::test]
async fn repository_delete_needs_its_name_as_confirmation() {
    let s = TestServer::start().await;
    let c = client();
    let d = push_image(&c, &s.base, "r/one", "v1", 1).await;
    push_image(&c, &s.base, "r/one", "v2", 2).await;
    let two = push_image(&c, &s.base, "r/two", "v1", 3).await;

    let before = s.footprint().await;
    for path in [
        "/api/v1/repositories/r/one",
        "/api/v1/repositories/r/one?confirm=r/two",
        "/api/v1/repositories/r/one?confirm=",
    ] {
        let (status, v) = s.api(Method::DELETE, path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(first_code(&v), "CONFIRMATION_REQUIRED", "{path}: {v}");
    }
    assert_eq!(s.footprint().await, before);
    assert_eq!(catalog(&s).await, ["r/one", "r/two"]);

    let (status, v) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/r/one?confirm=r/one",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["repository"], "r/one");
    assert_eq!(v["manifests"], 2);
    let mut gone: Vec<(String, String)> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tag"].as_str().unwrap().to_string(),
                t["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    gone.sort();
    assert_eq!(gone[0], ("v1".to_string(), d.clone()));
    assert_eq!(gone.len(), 2);

    assert_eq!(catalog(&s).await, ["r/two"]);
    let resp = client()
        .get(s.url("/v2/r/one/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(common::error_codes(resp).await, ["NAME_UNKNOWN"]);
    for r in ["v1", d.as_str()] {
        assert_eq!(
            manifest_status(&s.base, "r/one", r).await,
            StatusCode::NOT_FOUND
        );
    }
    let (status, v) = s.api(Method::GET, "/api/v1/repositories/r/one", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let v = s.api_ok("/api/v1/repositories").await;
    let names: Vec<&str> = v["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["r/two"]);
    assert_eq!(pull_verified(&s.base, "r/two", "v1").await, two);
}

async fn restore(s: &TestServer, repo: &str, tag: &str, body: Value) -> (StatusCode, Value) {
    s.api(
        Method::POST,
        &format!("/api/v1/repositories/{repo}/-/tags/{tag}/restore"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn restore_brings_back_a_complete_image_after_each_kind_of_delete() {
    let s = TestServer::start().await;
    let c = client();

    // After a tag delete.
    let d1 = push_image(&c, &s.base, "re/app", "v1", 1).await;
    let (status, _) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/re/app/-/tags/v1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = restore(&s, "re/app", "v1", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["digest"], d1.as_str());
    assert_eq!(pull_verified(&s.base, "re/app", "v1").await, d1);

    // After a manifest delete: the manifest comes back, by tag and by digest.
    let (status, _) = oci_delete(&s, &format!("/v2/re/app/manifests/{d1}")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        manifest_status(&s.base, "re/app", &d1).await,
        StatusCode::NOT_FOUND
    );
    let (status, v) = restore(&s, "re/app", "v1", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(pull_verified(&s.base, "re/app", "v1").await, d1);
    assert_eq!(pull_verified(&s.base, "re/app", &d1).await, d1);

    // After a repository delete, an index with its children comes back whole.
    let (a, a_bytes) = push_image_bytes(&c, &s.base, "re/app", "a", 3).await;
    let (b, b_bytes) = push_image_bytes(&c, &s.base, "re/app", "b", 4).await;
    let index = index_manifest(&[(&a, a_bytes.len()), (&b, b_bytes.len())]);
    let resp = put_manifest(&c, &s.base, "re/app", "multi", OCI_INDEX, &index).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (status, v) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/re/app?confirm=re/app",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(!catalog(&s).await.contains(&"re/app".to_string()));
    let (status, v) = restore(&s, "re/app", "multi", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        pull_verified(&s.base, "re/app", "multi").await,
        sha256(&index)
    );
    assert!(catalog(&s).await.contains(&"re/app".to_string()));
    // Only what was restored is back.
    assert_eq!(oci_tags(&s.base, "re/app").await.unwrap(), ["multi"]);
    let (status, _) = restore(&s, "re/app", "v1", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pull_verified(&s.base, "re/app", "v1").await, d1);
}

#[tokio::test]
async fn restoring_a_reused_tag_name_needs_force() {
    let s = TestServer::start().await;
    let c = client();
    let old = push_image(&c, &s.base, "reuse/app", "v1", 1).await;
    let (status, _) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/reuse/app/-/tags/v1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let new = push_image(&c, &s.base, "reuse/app", "v1", 2).await;

    let (status, v) = restore(&s, "reuse/app", "v1", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(first_code(&v), "TAG_IN_USE");
    assert!(first_message(&v).contains(&new), "{v}");
    assert_eq!(pull_verified(&s.base, "reuse/app", "v1").await, new);

    let (status, v) = restore(&s, "reuse/app", "v1", json!({"force": true})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["digest"], old.as_str());
    assert_eq!(v["replaced"], new.as_str());
    assert_eq!(pull_verified(&s.base, "reuse/app", "v1").await, old);

    // A tag that was never deleted has nothing to restore.
    let (status, v) = restore(&s, "reuse/app", "never", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
}

fn bulk_name(i: usize) -> String {
    if i.is_multiple_of(10) {
        format!("release-{i:02}")
    } else {
        format!("build-{i:02}")
    }
}

async fn bulk(s: &TestServer, repo: &str, body: Value) -> Value {
    let (status, v) = s
        .api(
            Method::POST,
            &format!("/api/v1/repositories/{repo}/-/bulk-delete"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

fn set(v: &Value) -> BTreeSet<String> {
    strings(v).into_iter().collect()
}

#[tokio::test]
async fn bulk_delete_of_50_tags_deletes_exactly_the_filtered_set() {
    let clock = ManualClock::new(T0);
    let s = TestServer::start_with_clock(&clock, |_| {}).await;
    let c = client();
    let (_, manifest) = push_image_bytes(&c, &s.base, "bulk/app", &bulk_name(0), 1).await;
    for i in 1..50 {
        clock.advance(MINUTE);
        let resp = put_manifest(
            &c,
            &s.base,
            "bulk/app",
            &bulk_name(i),
            common::OCI_MANIFEST,
            &manifest,
        )
        .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    // Kept: every release, and the five pushed last (45..49); the other 40 builds go.
    let expected: BTreeSet<String> = (0..45).filter(|i| i % 10 != 0).map(bulk_name).collect();
    assert_eq!(expected.len(), 40);
    let filter = json!({"keep_regex": "release-.*", "keep_latest": 5});

    let mut dry = filter.clone();
    dry["dry_run"] = json!(true);
    let preview = bulk(&s, "bulk/app", dry).await;
    assert_eq!(preview["dry_run"], true);
    assert_eq!(set(&preview["deleted"]), expected);
    assert_eq!(preview["decisions"].as_array().unwrap().len(), 50);
    assert_eq!(oci_tags(&s.base, "bulk/app").await.unwrap().len(), 50);

    let mut real = filter.clone();
    real["dry_run"] = json!(false);
    let done = bulk(&s, "bulk/app", real).await;
    assert_eq!(set(&done["deleted"]), set(&preview["deleted"]));
    let left: BTreeSet<String> = oci_tags(&s.base, "bulk/app")
        .await
        .unwrap()
        .into_iter()
        .collect();
    let all: BTreeSet<String> = (0..50).map(bulk_name).collect();
    assert_eq!(left, &all - &expected);
    let v = s
        .api_ok("/api/v1/events?repository=bulk/app&action=tag.delete&limit=1000")
        .await;
    assert_eq!(v["events"].as_array().unwrap().len(), 40);

    // Combined with a delete regex: only builds ending in 7 among what is left, none kept.
    let done = bulk(
        &s,
        "bulk/app",
        json!({"delete_regex": "build-.7", "keep_latest": 2, "dry_run": false}),
    )
    .await;
    assert_eq!(
        set(&done["deleted"]),
        ["build-47".to_string()].into_iter().collect(),
        "build-47 is the only surviving build-.7, and not among the 2 latest"
    );
}

#[tokio::test]
async fn bulk_delete_older_than_follows_the_registry_clock() {
    let clock = ManualClock::new(T0);
    let s = TestServer::start_with_clock(&clock, |_| {}).await;
    let c = client();
    let (_, manifest) = push_image_bytes(&c, &s.base, "old/app", "t0", 1).await;
    for i in 1..10 {
        clock.advance(HOUR);
        let resp = put_manifest(
            &c,
            &s.base,
            "old/app",
            &format!("t{i}"),
            common::OCI_MANIFEST,
            &manifest,
        )
        .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    // Now 9.5 h after t0: tags pushed at 0..4 h are older than 5 h.
    clock.advance(30 * MINUTE);
    let expected: BTreeSet<String> = (0..5).map(|i| format!("t{i}")).collect();
    let preview = bulk(&s, "old/app", json!({"older_than": "5h", "dry_run": true})).await;
    assert_eq!(set(&preview["deleted"]), expected);

    // Two hours later the same filter selects two more.
    clock.advance(2 * HOUR);
    let later = bulk(&s, "old/app", json!({"older_than": "5h", "dry_run": true})).await;
    let expected_later: BTreeSet<String> = (0..7).map(|i| format!("t{i}")).collect();
    assert_eq!(set(&later["deleted"]), expected_later);

    let done = bulk(&s, "old/app", json!({"older_than": "5h", "dry_run": false})).await;
    assert_eq!(set(&done["deleted"]), expected_later);
    assert_eq!(
        oci_tags(&s.base, "old/app").await.unwrap(),
        ["t7", "t8", "t9"]
    );
}

#[tokio::test]
async fn bulk_delete_refuses_bad_filters_and_changes_nothing() {
    let s = TestServer::start().await;
    push_image(&client(), &s.base, "bad/app", "v1", 1).await;
    let before = s.footprint().await;
    for body in [
        json!({"dry_run": false}),
        json!({"delete_regex": "(", "dry_run": false}),
        json!({"older_than": "soon", "dry_run": false}),
        json!({"keep_latest": 1, "dry_run": false, "surprise": 1}),
    ] {
        let (status, v) = s
            .api(
                Method::POST,
                "/api/v1/repositories/bad/app/-/bulk-delete",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(!first_message(&v).is_empty(), "{v}");
    }
    assert_eq!(s.footprint().await, before);
}

/// (stored, only here, in use, held for restore, in grace, reclaimable) of a usage figure set;
/// the four classes add up to what is stored.
fn figures(v: &Value) -> (u64, u64, u64, u64, u64, u64) {
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    let f = (
        n("stored_bytes"),
        n("unique_bytes"),
        n("in_use_bytes"),
        n("held_for_restore_bytes"),
        n("in_grace_bytes"),
        n("reclaimable_bytes"),
    );
    assert_eq!(f.0, f.2 + f.3 + f.4 + f.5, "the classes add up: {v}");
    f
}

fn repo_figures(report: &Value, name: &str) -> (u64, u64, u64, u64, u64, u64) {
    let r = report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {report}"));
    figures(r)
}

#[tokio::test]
async fn usage_matches_the_bytes_on_disk_with_shared_layers() {
    let clock = ManualClock::new(T0);
    let s = TestServer::start_with_clock(&clock, |c| {
        c.restore_window = std::time::Duration::from_secs(3600);
        c.gc.review_delay = std::time::Duration::from_secs(3600);
        c.gc.lease = std::time::Duration::from_secs(3600);
        // The figures are checked against the disk with nothing collected: a background
        // worker polling after the clock moved past the grace period would collect.
        c.gc.workers = 0;
    })
    .await;
    let c = client();
    let shared = random_bytes(10_000, 7);
    let only_a = random_bytes(3_000, 8);
    let only_b = random_bytes(5_000, 9);
    let config_a = br#"{"architecture":"amd64","os":"linux","n":"a"}"#.to_vec();
    let config_b = br#"{"architecture":"arm64","os":"linux","n":"bb"}"#.to_vec();
    let mut digests = Vec::new();
    let mut manifest_sizes = Vec::new();
    for (repo, config, own) in [("u/a", &config_a, &only_a), ("u/b", &config_b, &only_b)] {
        let cd = push_blob(&c, &s.base, repo, config).await;
        let sd = push_blob(&c, &s.base, repo, &shared).await;
        let od = push_blob(&c, &s.base, repo, own).await;
        let m = common::image_manifest(
            (&cd, config.len()),
            &[(&sd, shared.len()), (&od, own.len())],
        );
        let resp = put_manifest(&c, &s.base, repo, "v1", common::OCI_MANIFEST, &m).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        digests.push(sha256(&m));
        manifest_sizes.push(m.len() as u64);
    }
    // What each repository has alone: its config, its own layer and its manifest (manifests
    // live in the catalogue, and count as stored and freed bytes too).
    let (a_own, b_own, sh) = (
        (config_a.len() + only_a.len()) as u64 + manifest_sizes[0],
        (config_b.len() + only_b.len()) as u64 + manifest_sizes[1],
        shared.len() as u64,
    );
    let disk = s.stored_blob_bytes().await;
    let stored = disk + manifest_sizes[0] + manifest_sizes[1];
    assert_eq!(
        stored,
        a_own + b_own + sh,
        "the shared layer is stored once"
    );

    let report = s.api_ok("/api/v1/usage").await;
    assert_eq!(figures(&report["total"]), (stored, stored, stored, 0, 0, 0));
    assert_eq!(report["total"]["blobs"], 5);
    assert_eq!(report["total"]["manifests"], 2);
    let a_all = a_own + sh;
    let b_all = b_own + sh;
    assert_eq!(repo_figures(&report, "u/a"), (a_all, a_own, a_all, 0, 0, 0));
    assert_eq!(repo_figures(&report, "u/b"), (b_all, b_own, b_all, 0, 0, 0));
    let one = s.api_ok("/api/v1/repositories/u/a/-/usage").await;
    assert_eq!(one["name"], "u/a");
    assert_eq!(figures(&one), (a_all, a_own, a_all, 0, 0, 0));

    // A tag delete leaves its manifest untagged: what only it needs is held for the restore
    // of the tag, not in use and not reclaimable.
    let (status, _) = s
        .api(Method::DELETE, "/api/v1/repositories/u/a/-/tags/v1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let report = s.api_ok("/api/v1/usage").await;
    assert_eq!(
        figures(&report["total"]),
        (stored, stored, stored - a_own, a_own, 0, 0)
    );

    // Deleting the manifest holds what only it needs for restore; the shared layer stays in
    // use by the other repository.
    let (status, _) = oci_delete(&s, &format!("/v2/u/a/manifests/{}", digests[0])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let report = s.api_ok("/api/v1/usage").await;
    assert_eq!(
        figures(&report["total"]),
        (stored, stored, stored - a_own, a_own, 0, 0)
    );
    assert_eq!(
        repo_figures(&report, "u/a"),
        (a_all, a_own, sh, a_own, 0, 0)
    );
    assert_eq!(repo_figures(&report, "u/b"), (b_all, b_own, b_all, 0, 0, 0));

    // Once the restore window has passed, those bytes are garbage: in grace while the grace
    // period and the uploads' leases run, reclaimable after.
    clock.advance(HOUR + 1);
    let report = s.api_ok("/api/v1/usage").await;
    assert_eq!(
        figures(&report["total"]),
        (stored, stored, stored - a_own, 0, a_own, 0)
    );
    clock.advance(HOUR);
    let report = s.api_ok("/api/v1/usage").await;
    assert_eq!(
        figures(&report["total"]),
        (stored, stored, stored - a_own, 0, 0, a_own)
    );
    assert_eq!(
        repo_figures(&report, "u/a"),
        (a_all, a_own, sh, 0, 0, a_own)
    );
    assert_eq!(s.stored_blob_bytes().await, disk, "nothing was collected");

    // Deleting the other repository holds everything it referenced, the shared layer too.
    let (status, _) = s
        .api(Method::DELETE, "/api/v1/repositories/u/b?confirm=u/b", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let report = s.api_ok("/api/v1/usage").await;
    assert_eq!(
        figures(&report["total"]),
        (stored, stored, 0, b_own + sh, 0, a_own)
    );
    let (status, v) = s
        .api(Method::GET, "/api/v1/repositories/u/b/-/usage", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
}

/// `(action, target, digest)` of every event of a repository, oldest first.
fn triples(v: &Value) -> Vec<(String, Option<String>, Option<String>)> {
    let mut out: Vec<_> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["target"].as_str().map(str::to_string),
                e["digest"].as_str().map(str::to_string),
            )
        })
        .collect();
    out.reverse();
    out
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
    humantime_rfc3339(t)
}

fn humantime_rfc3339(t: std::time::SystemTime) -> String {
    // The API answers in UTC with milliseconds; build the same form without a dependency.
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[tokio::test]
async fn every_action_appears_once_in_the_activity_log() {
    let clock = ManualClock::new(T0);
    let s = TestServer::start_with_clock(&clock, |_| {}).await;
    let c = client();
    let repo = "log/app";
    let path = |p: &str| format!("/api/v1/repositories/{repo}{p}");
    let some = |x: &str| Some(x.to_string());

    let d1 = push_image(&c, &s.base, repo, "v1", 1).await; // T0
    clock.advance(MINUTE);
    let d2 = push_image(&c, &s.base, repo, "v1", 2).await; // T0+1: moved
    clock.advance(MINUTE);
    let (status, _) = s.api(Method::DELETE, &path("/-/tags/v1"), None).await; // T0+2
    assert_eq!(status, StatusCode::OK);
    clock.advance(MINUTE);
    let d3 = push_image(&c, &s.base, repo, "v3", 3).await; // T0+3
    clock.advance(MINUTE);
    let (status, _) = oci_delete(&s, &format!("/v2/{repo}/manifests/{d3}")).await; // T0+4
    assert_eq!(status, StatusCode::ACCEPTED);
    clock.advance(MINUTE);
    let (status, _) = s
        .api(
            Method::DELETE,
            &format!("{}?confirm={repo}", path("")),
            None,
        )
        .await; // T0+5
    assert_eq!(status, StatusCode::OK);
    clock.advance(MINUTE);
    let (status, _) = s
        .api(Method::POST, &path("/-/tags/v1/restore"), Some(json!({})))
        .await; // T0+6
    assert_eq!(status, StatusCode::OK);
    push_image(&c, &s.base, "log/other", "x", 4).await; // another repository, T0+6

    let all = s
        .api_ok(&format!("/api/v1/events?repository={repo}&limit=1000"))
        .await;
    assert_eq!(
        triples(&all),
        [
            ("tag.push".into(), some("v1"), Some(d1.clone())),
            ("tag.push".into(), some("v1"), Some(d2.clone())),
            ("tag.delete".into(), some("v1"), Some(d2.clone())),
            ("tag.push".into(), some("v3"), Some(d3.clone())),
            ("manifest.delete".into(), some("v3"), Some(d3.clone())),
            (
                "repository.delete".into(),
                some("0 tags, 2 manifests"),
                None
            ),
            ("tag.restore".into(), some("v1"), Some(d2.clone())),
        ]
    );
    let events = all["events"].as_array().unwrap();
    for e in events {
        assert_eq!(e["actor"], "anonymous", "{e}");
        assert_eq!(e["source"], "127.0.0.1", "{e}");
        assert_eq!(e["repository"], repo, "{e}");
    }
    assert_eq!(
        events[5]["reason"],
        "moved from another manifest, which stays restorable"
    );
    assert_eq!(all["next"], Value::Null);

    // Filters: action family and exact action.
    let tag_family = s
        .api_ok(&format!("/api/v1/events?repository={repo}&action=tag"))
        .await;
    assert_eq!(tag_family["events"].as_array().unwrap().len(), 5);
    let exact = s.api_ok("/api/v1/events?action=tag.delete").await;
    assert_eq!(triples(&exact).len(), 1);
    let other = s.api_ok("/api/v1/events?repository=log/other").await;
    assert_eq!(
        triples(&other),
        [(
            "tag.push".to_string(),
            some("x"),
            other["events"][0]["digest"].as_str().map(str::to_string)
        )]
    );

    // Time range: [T0+2 min, T0+5 min) holds the tag delete, the push of v3 and its delete.
    let ranged = s
        .api_ok(&format!(
            "/api/v1/events?repository={repo}&since={}&until={}",
            rfc3339(T0 + 2 * MINUTE),
            rfc3339(T0 + 5 * MINUTE)
        ))
        .await;
    let actions: Vec<String> = triples(&ranged).into_iter().map(|t| t.0).collect();
    assert_eq!(actions, ["tag.delete", "tag.push", "manifest.delete"]);
    // A duration means that long before the registry's clock.
    let recent = s
        .api_ok(&format!("/api/v1/events?repository={repo}&since=90s"))
        .await;
    let actions: Vec<String> = triples(&recent).into_iter().map(|t| t.0).collect();
    assert_eq!(actions, ["repository.delete", "tag.restore"]);

    // Pagination: pages of 3 via the cursor give the whole list, once each.
    let mut paged = Vec::new();
    let mut cursor: Option<i64> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("/api/v1/events?repository={repo}&limit=3");
        if let Some(c) = cursor {
            url.push_str(&format!("&before={c}"));
        }
        let page = s.api_ok(&url).await;
        let n = page["events"].as_array().unwrap().len();
        assert!(n <= 3);
        paged.extend(page["events"].as_array().unwrap().iter().cloned());
        pages += 1;
        assert!(pages <= events.len(), "the cursor never ends: {page}");
        match page["next"].as_i64() {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(&paged, events);

    let (status, v) = s.api(Method::GET, "/api/v1/events?limit=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, v) = s
        .api(Method::GET, "/api/v1/events?since=whenever", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn disabled_deletion_refuses_every_delete() {
    let s = TestServer::start_with(|c| c.deletion_enabled = false).await;
    let c = client();
    let (d, m) = push_image_bytes(&c, &s.base, "off/app", "v1", 1).await;
    let layer = serde_json::from_slice::<Value>(&m).unwrap()["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let policy = json!({"name": "off", "repositories": ["off/*"], "delete": {"older_than": "0s"}});
    let (status, v) = s
        .api(Method::PUT, "/api/v1/policies/off", Some(policy))
        .await;
    assert_eq!(status, StatusCode::CREATED, "a policy can be applied: {v}");
    let before = s.footprint().await;
    for path in [
        "/v2/off/app/manifests/v1".to_string(),
        format!("/v2/off/app/manifests/{d}"),
        format!("/v2/off/app/blobs/{layer}"),
    ] {
        let (status, v) = oci_delete(&s, &path).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}: {v}");
        assert_eq!(first_code(&v), "UNSUPPORTED", "{path}: {v}");
    }
    for (method, path, body) in [
        (
            Method::DELETE,
            "/api/v1/repositories/off/app/-/tags/v1",
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/repositories/off/app?confirm=off/app",
            None,
        ),
        (
            Method::POST,
            "/api/v1/repositories/off/app/-/bulk-delete",
            Some(json!({"keep_latest": 0, "dry_run": false})),
        ),
        (Method::POST, "/api/v1/policies/off/runs", None),
    ] {
        let (status, v) = s.api(method.clone(), path, body).await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {v}"
        );
        assert_eq!(first_code(&v), "UNSUPPORTED", "{path}: {v}");
    }
    assert_eq!(s.footprint().await, before, "nothing changed");
    assert_eq!(pull_verified(&s.base, "off/app", "v1").await, d);
    // A preview deletes nothing, so it stays available.
    let preview = bulk(&s, "off/app", json!({"keep_latest": 0, "dry_run": true})).await;
    assert_eq!(strings(&preview["deleted"]), ["v1"]);
    let (status, preview) = s
        .api(Method::POST, "/api/v1/policies/off/preview", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["figures"]["tags_deleted"], 1, "{preview}");
}

fn skopeo() -> std::path::PathBuf {
    common::require_tool("SHIPSHAPE_TEST_SKOPEO", "skopeo")
}

fn oras_python() -> std::path::PathBuf {
    common::require_tool(
        "SHIPSHAPE_TEST_ORAS_PYTHON",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../.test-tools/oras-venv/bin/python"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_deleted_by_skopeo_is_restorable() {
    let s = TestServer::start().await;
    let c = client();
    let d = push_image(&c, &s.base, "sk/app", "v1", 1).await;
    push_image(&c, &s.base, "sk/app", "v2", 1).await;
    let keep = push_image(&c, &s.base, "sk/app", "keep", 2).await;

    let target = format!("docker://{}/sk/app:v1", s.host());
    common::run_tool(&skopeo(), &["delete", "--tls-verify=false", &target], None).await;
    // skopeo deletes by digest: both tags of the manifest went.
    assert_eq!(oci_tags(&s.base, "sk/app").await.unwrap(), ["keep"]);
    assert_eq!(
        manifest_status(&s.base, "sk/app", &d).await,
        StatusCode::NOT_FOUND
    );

    let (status, v) = restore(&s, "sk/app", "v1", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(pull_verified(&s.base, "sk/app", "v1").await, d);
    assert_eq!(pull_verified(&s.base, "sk/app", "keep").await, keep);
    assert_eq!(oci_tags(&s.base, "sk/app").await.unwrap(), ["keep", "v1"]);
    let h = s
        .api_ok("/api/v1/repositories/sk/app/-/tags/v1/history")
        .await;
    let actions: Vec<&str> = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["restored", "deleted", "pushed"], "{h}");
    // And skopeo can read it again.
    common::run_tool(
        &skopeo(),
        &["inspect", "--tls-verify=false", "--raw", &target],
        None,
    )
    .await;
}

const ORAS_PUSH: &str = r#"
import sys
import oras.client
reg, target = sys.argv[1], sys.argv[2]
c = oras.client.OrasClient(hostname=reg, insecure=True)
r = c.push(target=f"{reg}/{target}", files=["payload.bin:application/vnd.example.bin"])
print("DIGEST " + r.headers["Docker-Content-Digest"])
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oras_artifact_shows_in_tags_and_usage() {
    let python = oras_python();
    let s = TestServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let payload = random_bytes(40_000, 11);
    std::fs::write(tmp.path().join("payload.bin"), &payload).unwrap();
    std::fs::write(tmp.path().join("push.py"), ORAS_PUSH).unwrap();
    let host = s.host();
    let out = common::run_tool(
        &python,
        &["push.py", &host, "art/demo:v1"],
        Some(tmp.path()),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let digest = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DIGEST "))
        .unwrap_or_else(|| panic!("no digest in {stdout}"))
        .to_string();

    let manifest: Value = client()
        .get(s.url("/v2/art/demo/manifests/v1"))
        .header("accept", common::OCI_MANIFEST)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let blob_bytes = manifest["config"]["size"].as_u64().unwrap()
        + manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["size"].as_u64().unwrap())
            .sum::<u64>();
    assert!(blob_bytes >= payload.len() as u64);
    let manifest_len = serde_json::to_vec(&manifest).unwrap().len() as u64;

    let tags = s.api_ok("/api/v1/repositories/art/demo/-/tags").await;
    let listed = tags["tags"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{tags}");
    assert_eq!(listed[0]["name"], "v1");
    assert_eq!(listed[0]["digest"], digest.as_str());
    assert_eq!(listed[0]["media_type"], common::OCI_MANIFEST);
    // The size counts the manifest's own bytes as pushed; re-serialising may differ in
    // whitespace, so bound it by the blobs below and allow only the manifest above.
    let size = listed[0]["size"].as_u64().unwrap();
    assert!(
        size > blob_bytes && size <= blob_bytes + 2 * manifest_len,
        "{size}"
    );

    let usage = s.api_ok("/api/v1/repositories/art/demo/-/usage").await;
    let pushed = size - blob_bytes;
    assert_eq!(
        figures(&usage),
        (
            blob_bytes + pushed,
            blob_bytes + pushed,
            blob_bytes + pushed,
            0,
            0,
            0
        )
    );
    assert_eq!(s.stored_blob_bytes().await, blob_bytes);
}

/// Every route the management router serves, as the OpenAPI document names it.
const SERVED: &[(&str, &str)] = &[
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/repositories"),
    ("get", "/api/v1/repositories/{name}"),
    ("delete", "/api/v1/repositories/{name}"),
    ("post", "/api/v1/repositories/{name}/-/restore"),
    ("get", "/api/v1/repositories/{name}/-/restorable"),
    ("get", "/api/v1/restorable"),
    ("post", "/api/v1/batches/{id}/restore"),
    ("get", "/api/v1/repositories/{name}/-/tags"),
    ("post", "/api/v1/repositories/{name}/-/tags/delete"),
    ("get", "/api/v1/repositories/{name}/-/manifests"),
    ("get", "/api/v1/repositories/{name}/-/manifests/{digest}"),
    ("delete", "/api/v1/repositories/{name}/-/manifests/{digest}"),
    ("get", "/api/v1/repositories/{name}/-/tags/{tag}"),
    ("delete", "/api/v1/repositories/{name}/-/tags/{tag}"),
    ("get", "/api/v1/repositories/{name}/-/tags/{tag}/history"),
    ("get", "/api/v1/repositories/{name}/-/history"),
    ("post", "/api/v1/repositories/{name}/-/tags/{tag}/restore"),
    ("post", "/api/v1/repositories/{name}/-/bulk-delete"),
    ("get", "/api/v1/repositories/{name}/-/usage"),
    ("get", "/api/v1/usage"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/gc/runs"),
    ("post", "/api/v1/gc/runs"),
    ("get", "/api/v1/gc/runs/active"),
    ("get", "/api/v1/gc/runs/{id}"),
    ("get", "/api/v1/gc/runs/{id}/items"),
    ("post", "/api/v1/gc/runs/{id}/cancel"),
    ("get", "/api/v1/policies"),
    ("get", "/api/v1/policies/{name}"),
    ("put", "/api/v1/policies/{name}"),
    ("delete", "/api/v1/policies/{name}"),
    ("post", "/api/v1/policies/preview"),
    ("post", "/api/v1/policies/{name}/preview"),
    ("get", "/api/v1/policies/{name}/runs"),
    ("post", "/api/v1/policies/{name}/runs"),
    ("get", "/api/v1/policy-runs"),
    ("get", "/api/v1/policy-runs/{id}"),
    ("post", "/api/v1/policy-runs/{id}/cancel"),
    ("get", "/api/v1/whoami"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("delete", "/api/v1/users/{name}"),
    ("put", "/api/v1/users/{name}/password"),
    ("get", "/api/v1/robots"),
    ("post", "/api/v1/robots"),
    ("post", "/api/v1/robots/{name}/revoke"),
    ("get", "/api/v1/roles"),
    ("post", "/api/v1/roles"),
    ("delete", "/api/v1/roles"),
    ("post", "/api/v1/token-keys/rotate"),
];

/// The account operations, which need access control on (a user added here would turn it on
/// for the rest of the walk): `access_control::the_account_operations_answer_as_the_openapi_document_says`
/// walks them.
fn is_account_operation(path: &str) -> bool {
    [
        "/api/v1/whoami",
        "/api/v1/users",
        "/api/v1/robots",
        "/api/v1/roles",
        "/api/v1/token-keys",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// A policy for the OpenAPI walk: valid, and with nothing in its scope.
fn idle_policy() -> Value {
    json!({"name": "oa-policy", "repositories": ["oa-none/*"], "delete": {"older_than": "1000d"}})
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let s = TestServer::start().await;
    let c = client();
    push_image(&c, &s.base, "oa/app", "v1", 1).await;
    push_image(&c, &s.base, "oa/app", "gone", 2).await;
    push_image(&c, &s.base, "oa/doomed", "v1", 3).await;
    let image = push_image(&c, &s.base, "oa/image", "v1", 4).await;
    push_image(&c, &s.base, "oa/old", "v1", 5).await;
    push_image(&c, &s.base, "oa/older", "v1", 6).await;
    let (status, _) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/oa/app/-/tags/gone",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A deleted repository for the restores, and the batch its deletion made.
    let (status, deleted) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/oa/old?confirm=oa/old",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    // Another one, whose deletion's batch the batch restore undoes.
    let (status, deleted) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/oa/older?confirm=oa/older",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    let batch = deleted["batch"].as_i64().expect("a batch").to_string();

    let doc = s.api_ok("/api/v1/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = SERVED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served, "documented vs served");

    // A finished run gives `{id}` a value that exists.
    let (status, run) = s
        .api(
            Method::POST,
            "/api/v1/gc/runs",
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run_id = run["id"].as_i64().unwrap().to_string();
    wait_gc_run(&s.base, run["id"].as_i64().unwrap()).await;
    let (status, v) = s
        .api(
            Method::PUT,
            "/api/v1/policies/oa-policy",
            Some(idle_policy()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = s
        .api(Method::POST, "/api/v1/policies/oa-policy/runs", None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let policy_run_id = v["id"].as_i64().unwrap().to_string();
    wait_policy_run(&s.base, v["id"].as_i64().unwrap()).await;

    // Call each documented operation with values that exist: each must succeed (the active run
    // and cancel, with no run active, must answer one of their documented errors). Deletes run
    // last so the others find their data.
    let mut ops: Vec<&(String, String)> = documented.iter().collect();
    ops.sort_by_key(|(m, _)| m == "delete");
    for (method, path) in ops {
        if is_account_operation(path) {
            continue;
        }
        let policies = path.starts_with("/api/v1/polic");
        let (name, tag) = match (method.as_str(), path.as_str()) {
            _ if policies => ("oa-policy", ""),
            (_, p) if p.contains("{digest}") => ("oa/image", ""),
            ("delete", p) if !p.contains("{tag}") => ("oa/doomed", "v1"),
            (_, p) if p.ends_with("/-/restore") => ("oa/old", ""),
            (_, p) if p.ends_with("/restore") => ("oa/app", "gone"),
            _ => ("oa/app", "v1"),
        };
        let id = if policies {
            &policy_run_id
        } else if path.starts_with("/api/v1/batches") {
            &batch
        } else {
            &run_id
        };
        let mut url = path
            .replace("{name}", name)
            .replace("{tag}", tag)
            .replace("{digest}", &image[..19])
            .replace("{id}", id);
        let params = doc["paths"][path][method.as_str()]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if params.iter().any(|p| p["name"] == "confirm") {
            url.push_str(&format!("?confirm={name}"));
        }
        let body = match method.as_str() {
            "post" if path.ends_with("bulk-delete") => {
                Some(json!({"keep_latest": 100, "dry_run": true}))
            }
            "post" if path.ends_with("/tags/delete") => {
                Some(json!({"tags": ["v1"], "dry_run": true}))
            }
            "put" => Some(idle_policy()),
            "post" if path == "/api/v1/policies/preview" => Some(idle_policy()),
            "post" => Some(json!({})),
            _ => None,
        };
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, v) = s.api(m, &url, body).await;
        let documented_codes = doc["paths"][path][method.as_str()]["responses"]
            .as_object()
            .unwrap();
        assert!(
            documented_codes.contains_key(status.as_str()),
            "{method} {url} → {status} (undocumented): {v}"
        );
        if !(path.ends_with("/active") || path.ends_with("/cancel")) {
            assert!(status.is_success(), "{method} {url} → {status}: {v}");
        }
        if method == "post" && path == "/api/v1/gc/runs" {
            wait_gc_run(&s.base, v["id"].as_i64().unwrap()).await;
        }
        if method == "post" && path == "/api/v1/policies/{name}/runs" {
            wait_policy_run(&s.base, v["id"].as_i64().unwrap()).await;
        }
    }
}

/// The management API's tag listing pages: `limit` and `offset`, with `next` until the end,
/// in the order asked for.
#[tokio::test]
async fn tag_listings_page_in_the_order_asked() {
    let s = TestServer::start().await;
    let c = client();
    for (i, tag) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        push_image(&c, &s.base, "paged/app", tag, i as u64 + 1).await;
    }
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let v = s
            .api_ok(&format!(
                "/api/v1/repositories/paged/app/-/tags?limit=2&offset={offset}&sort=name&reverse=true"
            ))
            .await;
        seen.extend(
            v["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string()),
        );
        match v["next"].as_u64() {
            Some(n) => offset = n,
            None => break,
        }
        assert!(seen.len() <= 5, "the pages never end: {seen:?}");
    }
    assert_eq!(seen, ["e", "d", "c", "b", "a"]);
    let (status, v) = s
        .api(
            Method::GET,
            "/api/v1/repositories/paged/app/-/tags?limit=0",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
}
