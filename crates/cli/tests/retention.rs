//! Retention policies against the real server, with time moved by an injected clock: a policy
//! is previewed, applied and run, and the surviving tags are exactly the expected ones; the
//! preview and the run at the same instant delete the same set; deletions are restorable and
//! logged with the policy and rule; protected tags resist overwrite and delete; a scheduled run
//! happens without being asked; bad documents are refused with the field named.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    OCI_MANIFEST, TestServer, client, first_code, first_message, image_manifest, oci_tags,
    pull_verified, push_blob, push_image, put_manifest, random_bytes, sha256, wait_policy_run,
    wait_until,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shipshape_meta::clock::ManualClock;

/// A fixed start for clock-driven servers: 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// The bytes of the two blobs `push_image` pushes for `seed` (config and layer).
fn image_bytes(seed: u64) -> u64 {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#);
    (config.len() + 1000 + seed as usize) as u64
}

async fn put_policy(s: &TestServer, name: &str, document: &str) -> (StatusCode, Value) {
    let resp = client()
        .put(s.url(&format!("/api/v1/policies/{name}")))
        .body(document.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post(s: &TestServer, path: &str, body: Option<&str>) -> (StatusCode, Value) {
    let mut req = client().post(s.url(path));
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `(repository, target)` of every decision to delete in a preview.
fn preview_deletions(p: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for r in p["repositories"].as_array().unwrap() {
        for d in r["decisions"].as_array().unwrap() {
            if d["action"] == "delete" {
                out.insert((
                    r["repository"].as_str().unwrap().to_string(),
                    d["target"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

/// The rule that decided each tag of a repository in a preview.
fn preview_rules(p: &Value, repo: &str) -> Vec<(String, String, String)> {
    let r = p["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repository"] == repo)
        .unwrap_or_else(|| panic!("{repo} not in the preview: {p}"));
    r["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "tag")
        .map(|d| {
            (
                d["target"].as_str().unwrap().to_string(),
                d["action"].as_str().unwrap().to_string(),
                d["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const TEAM_A: &str = r#"
name = "team-a"
description = "CI builds of team A"
repositories = ["team-a/**"]

[tags]
exclude = ["regex:v[0-9]+(\\.[0-9]+)*"]
protected = ["release-*"]

[keep]
latest_pushed = 3
latest_pulled = 1
pulled_within = "12h"

[delete]
older_than = "5d"
untagged_older_than = "1d"
"#;

/// team-a/app: build-0 … build-7 pushed a day apart, release-1 and v1.0 as old as build-0, an
/// untagged manifest; other/app out of scope. Pulls: build-2 long ago, build-3 six hours before
/// `now`, build-1 at `now`. Returns the untagged manifest's digest and the bytes of its blobs.
async fn seed_team_a(s: &TestServer, clock: &ManualClock) -> (String, u64) {
    let c = client();
    push_image(&c, &s.base, "team-a/app", "release-1", 100).await;
    push_image(&c, &s.base, "team-a/app", "v1.0", 101).await;
    push_image(&c, &s.base, "other/app", "build-0", 102).await;
    let config = br#"{"architecture":"amd64","os":"linux","untagged":true}"#;
    let layer = random_bytes(3000, 103);
    let cd = push_blob(&c, &s.base, "team-a/app", config).await;
    let ld = push_blob(&c, &s.base, "team-a/app", &layer).await;
    let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let untagged = sha256(&m);
    let resp = put_manifest(&c, &s.base, "team-a/app", &untagged, OCI_MANIFEST, &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    for i in 0..8u64 {
        push_image(&c, &s.base, "team-a/app", &format!("build-{i}"), i + 1).await;
        if i == 2 {
            clock.advance(HOUR);
            pull_verified(&s.base, "team-a/app", "build-2").await;
            clock.advance(-HOUR);
        }
        clock.advance(DAY);
    }
    // Now T0 + 8d; move to T0 + 10d with the pulls the policy looks at.
    clock.advance(2 * DAY - 6 * HOUR);
    pull_verified(&s.base, "team-a/app", "build-3").await;
    clock.advance(6 * HOUR);
    pull_verified(&s.base, "team-a/app", "build-1").await;
    (untagged, (config.len() + layer.len()) as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_previewed_then_run_leaves_exactly_the_expected_tags() {
    let clock = ManualClock::new(T0);
    let s = TestServer::start_with_clock(&clock, |c| {
        c.pull_flush_interval = Duration::ZERO;
        c.restore_window = Duration::from_secs(3600);
        c.gc.workers = 0;
    })
    .await;
    let (untagged, untagged_bytes) = seed_team_a(&s, &clock).await;

    let (status, v) = put_policy(&s, "team-a", TEAM_A).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["schedule"], Value::Null, "no schedule: runs by hand");

    let preview = s.api_ok("/api/v1/policies/team-a").await;
    assert_eq!(preview["document"]["keep"]["latest_pushed"], 3);
    let (status, preview) = post(&s, "/api/v1/policies/team-a/preview", None).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let repos: Vec<&str> = preview["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert_eq!(repos, ["team-a/app"], "other/app is out of scope");
    let mut rules = preview_rules(&preview, "team-a/app");
    rules.sort();
    let expected: Vec<(String, String, String)> = [
        ("build-0", "delete", "delete_older_than"),
        ("build-1", "keep", "keep_latest_pulled"),
        ("build-2", "delete", "delete_older_than"),
        ("build-3", "keep", "keep_pulled_within"),
        ("build-4", "delete", "delete_older_than"),
        ("build-5", "keep", "keep_latest_pushed"),
        ("build-6", "keep", "keep_latest_pushed"),
        ("build-7", "keep", "keep_latest_pushed"),
        ("release-1", "keep", "protected"),
        ("v1.0", "keep", "excluded"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(rules, expected, "{preview}");
    let deleted = preview_deletions(&preview);
    assert!(deleted.contains(&("team-a/app".into(), untagged.clone())));
    assert_eq!(deleted.len(), 4);
    // Every deleted image has blobs of its own, and its manifest: those are the bytes the
    // deletions take out of use (held for restore, with a restore window).
    let mut manifests = 0;
    for r in preview["repositories"].as_array().unwrap() {
        for d in r["decisions"].as_array().unwrap() {
            if d["action"] == "delete" {
                let m = s
                    .api_ok(&format!(
                        "/api/v1/repositories/team-a/app/-/manifests/{}",
                        d["digest"].as_str().unwrap()
                    ))
                    .await;
                manifests += m["size"].as_u64().unwrap();
            }
        }
    }
    let freed = image_bytes(1) + image_bytes(3) + image_bytes(5) + untagged_bytes + manifests;
    assert_eq!(
        preview["figures"]["bytes_held_for_restore"], freed,
        "{preview}"
    );
    assert_eq!(preview["figures"]["bytes_reclaimable"], 0, "{preview}");
    assert_eq!(preview["figures"]["repositories_affected"], 1, "{preview}");
    assert_eq!(preview["figures"]["tags_deleted"], 3);
    assert_eq!(preview["figures"]["manifests_deleted"], 1);
    assert_eq!(
        oci_tags(&s.base, "team-a/app").await.unwrap().len(),
        10,
        "a preview deletes nothing"
    );

    // The run at the same instant deletes the same set.
    let (status, run) = post(&s, "/api/v1/policies/team-a/runs", None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["trigger"], "manual");
    let run = wait_policy_run(&s.base, run["id"].as_i64().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["figures"]["bytes_held_for_restore"], freed, "{run}");
    assert_eq!(run["figures"]["bytes_reclaimable"], 0, "{run}");
    assert_eq!(run["figures"]["repositories_affected"], 1, "{run}");
    let items: BTreeSet<(String, String)> = run["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["repository"].as_str().unwrap().to_string(),
                i["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(items, deleted, "{run}");

    let mut left = oci_tags(&s.base, "team-a/app").await.unwrap();
    left.sort();
    assert_eq!(
        left,
        [
            "build-1",
            "build-3",
            "build-5",
            "build-6",
            "build-7",
            "release-1",
            "v1.0"
        ]
    );
    for t in &left {
        pull_verified(&s.base, "team-a/app", t).await;
    }
    assert_eq!(oci_tags(&s.base, "other/app").await.unwrap(), ["build-0"]);

    // The activity log names the policy and the rule.
    let events = s
        .api_ok("/api/v1/events?action=tag.delete&repository=team-a/app")
        .await;
    let reasons: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons.len(), 3, "{events}");
    for r in reasons {
        assert!(
            r.starts_with("policy team-a: delete_older_than: pushed "),
            "{r}"
        );
    }

    // Restorable like any deletion: build-2 comes back complete.
    let (status, v) = s
        .api(
            Method::POST,
            "/api/v1/repositories/team-a/app/-/tags/build-2/restore",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    pull_verified(&s.base, "team-a/app", "build-2").await;

    // And the collector reclaims the rest once the restore window has passed.
    let build_2 = s
        .api_ok("/api/v1/repositories/team-a/app/-/tags/build-2")
        .await;
    let build_2 = s
        .api_ok(&format!(
            "/api/v1/repositories/team-a/app/-/manifests/{}",
            build_2["digest"].as_str().unwrap()
        ))
        .await["size"]
        .as_u64()
        .unwrap();
    clock.advance(2 * HOUR);
    let before = s.stored_blob_bytes().await;
    let gc = common::gc_run_to_end(
        &s.base,
        &json!({"grace": "0s", "sweep": false, "include_untagged_manifests": true}),
    )
    .await;
    assert_eq!(gc["state"], "succeeded", "{gc}");
    assert_eq!(
        gc["figures"]["bytes_deleted"],
        freed - image_bytes(3) - build_2,
        "{gc}"
    );
    assert_eq!(
        s.stored_blob_bytes().await,
        before - (freed - image_bytes(3) - manifests)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_tags_resist_overwrite_and_delete() {
    let s = TestServer::start().await;
    let c = client();
    let (status, v) = put_policy(
        &s,
        "releases",
        r#"
name = "releases"
repositories = ["*/app"]
[tags]
protected = ["release-*", "regex:v[0-9]+"]
"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    let first = push_image(&c, &s.base, "team/app", "release-1", 1).await;
    // Pushing the same manifest again is no change, so it is allowed (clients retry).
    push_image(&c, &s.base, "team/app", "release-1", 1).await;

    // Overwrite with another manifest: refused, and nothing of the attempt stays.
    let config = br#"{"architecture":"amd64","os":"linux","other":true}"#;
    let cd = push_blob(&c, &s.base, "team/app", config).await;
    let m = image_manifest((&cd, config.len()), &[]);
    let before = s.footprint().await;
    let resp = put_manifest(&c, &s.base, "team/app", "release-1", OCI_MANIFEST, &m).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(first_code(&body), "DENIED", "{body}");
    assert!(
        first_message(&body).contains("protected by policy releases (pattern release-*)"),
        "{body}"
    );
    assert_eq!(s.footprint().await, before, "the refused push left nothing");
    assert_eq!(pull_verified(&s.base, "team/app", "release-1").await, first);

    // Delete by tag and by digest through the OCI API: refused.
    for reference in ["release-1", first.as_str()] {
        let resp = c
            .delete(s.url(&format!("/v2/team/app/manifests/{reference}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{reference}");
    }
    // Through the management API: refused, also in bulk and with the repository.
    let (status, v) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/team/app/-/tags/release-1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = s
        .api(
            Method::POST,
            "/api/v1/repositories/team/app/-/bulk-delete",
            Some(json!({"keep_latest": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["deleted"], json!([]), "{v}");
    assert!(
        v["decisions"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("protected by policy releases"),
        "{v}"
    );
    let (status, v) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/team/app?confirm=team/app",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(pull_verified(&s.base, "team/app", "release-1").await, first);

    // A repository the policy does not cover is not protected.
    push_image(&c, &s.base, "team/lib", "release-1", 2).await;
    let (status, v) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/team/lib/-/tags/release-1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // An admin override deletes it, and the log says so.
    let (status, v) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/team/app/-/tags/release-1?override_protection=true",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let events = s
        .api_ok("/api/v1/events?action=tag.delete&repository=team/app")
        .await;
    assert_eq!(
        events["events"][0]["reason"], "protection overridden",
        "{events}"
    );
    // With the old tag gone, the name can be pushed afresh.
    let resp = put_manifest(&c, &s.base, "team/app", "release-1", OCI_MANIFEST, &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    // Removing the policy lifts the protection.
    let (status, _) = s
        .api(Method::DELETE, "/api/v1/policies/releases", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    push_image(&c, &s.base, "team/app", "release-1", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_happens_without_being_asked() {
    let clock = ManualClock::new(T0);
    let s = TestServer::start_with_clock(&clock, |c| {
        c.policy_poll_interval = Duration::from_millis(20);
        c.gc.workers = 0;
    })
    .await;
    let c = client();
    for i in 0..4u64 {
        push_image(&c, &s.base, "nightly/app", &format!("n{i}"), i + 1).await;
        clock.advance(DAY);
    }
    let (status, v) = put_policy(
        &s,
        "nightly",
        r#"
name = "nightly"
repositories = ["*/app"]
schedule = "every 6h"
[keep]
latest_pushed = 2
[delete]
older_than = "0s"
"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["schedule"], "every 6h");
    let applied_at = T0 + 4 * DAY;
    let next = v["next_run_at"].as_str().unwrap().to_string();
    assert_eq!(
        humantime::parse_rfc3339(&next).unwrap(),
        std::time::UNIX_EPOCH + Duration::from_millis((applied_at + 6 * HOUR) as u64)
    );
    // Nothing is due yet: the scheduler keeps looking, and nothing runs.
    assert_eq!(
        s.api_ok("/api/v1/policies/nightly/runs").await["runs"],
        json!([])
    );

    clock.advance(6 * HOUR);
    let s = &s;
    let run = wait_until("the scheduler to start a run of nightly", || async move {
        let runs = s.api_ok("/api/v1/policies/nightly/runs").await;
        runs["runs"].as_array().unwrap().first().cloned()
    })
    .await;
    assert_eq!(run["trigger"], "schedule", "{run}");
    assert_eq!(run["started_by"], "scheduler", "{run}");
    let run = wait_policy_run(&s.base, run["id"].as_i64().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["figures"]["tags_deleted"], 2, "{run}");
    let mut left = oci_tags(&s.base, "nightly/app").await.unwrap();
    left.sort();
    assert_eq!(left, ["n2", "n3"]);
    let p = s.api_ok("/api/v1/policies/nightly").await;
    let next = humantime::parse_rfc3339(p["next_run_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        next,
        std::time::UNIX_EPOCH + Duration::from_millis((applied_at + 12 * HOUR) as u64),
        "the next run moved on by the cadence"
    );
    // The run is in the activity log, by the scheduler.
    let events = s.api_ok("/api/v1/events?action=policy.run").await;
    assert_eq!(events["events"][0]["actor"], "scheduler", "{events}");
}

#[tokio::test]
async fn bad_policies_are_refused_with_the_field_named_and_nothing_stored() {
    let s = TestServer::start().await;
    let cases: [(&str, &str, &str); 5] = [
        (
            "bad-regex",
            "name = \"bad-regex\"\nrepositories = [\"*\"]\n[tags]\nexclude = [\"keep\", \"regex:(\"]\n[delete]\nolder_than = \"1d\"\n",
            "tags.exclude[1]",
        ),
        (
            "bad-duration",
            "name = \"bad-duration\"\nrepositories = [\"*\"]\n[delete]\nolder_than = \"3 fortnights\"\n",
            "delete.older_than",
        ),
        (
            "typo",
            "name = \"typo\"\nrepositories = [\"*\"]\n[delete]\nolder_then = \"1d\"\n",
            "older_then",
        ),
        (
            "nothing",
            "{\"name\": \"nothing\", \"repositories\": [\"*\"], \"keep\": {\"latest_pushed\": 3}}",
            "deletes nothing",
        ),
        (
            "mismatch",
            "name = \"other\"\nrepositories = [\"*\"]\n[delete]\nolder_than = \"1d\"\n",
            "name",
        ),
    ];
    for (name, doc, needle) in cases {
        let (status, v) = put_policy(&s, name, doc).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {v}");
        assert_eq!(first_code(&v), "POLICY_INVALID", "{name}: {v}");
        assert!(
            first_message(&v).contains(needle),
            "{name}: {:?} should name {needle:?}",
            first_message(&v)
        );
        // A draft preview refuses it the same way (a draft has no path to disagree with).
        if name != "mismatch" {
            let (status, _) = post(&s, "/api/v1/policies/preview", Some(doc)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        }
    }
    assert_eq!(s.api_ok("/api/v1/policies").await["policies"], json!([]));
    let (status, v) = s.api(Method::GET, "/api/v1/policies/typo", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(first_code(&v), "POLICY_UNKNOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_preview_changes_nothing_and_a_finished_run_cannot_be_cancelled() {
    let s = TestServer::start().await;
    let c = client();
    for i in 0..3u64 {
        push_image(&c, &s.base, "draft/app", &format!("t{i}"), i + 1).await;
    }
    let draft = r#"{"name": "draft", "repositories": ["draft/*"], "delete": {"older_than": "0s"}}"#;
    let before = s.footprint().await;
    let (status, p) = post(&s, "/api/v1/policies/preview", Some(draft)).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(preview_deletions(&p).len(), 3, "{p}");
    assert_eq!(s.footprint().await, before, "a preview writes nothing");
    let (status, _) = post(&s, "/api/v1/policies/draft/runs", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a draft cannot run");

    let (status, _) = put_policy(&s, "draft", draft).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, run) = post(&s, "/api/v1/policies/draft/runs", None).await;
    let id = run["id"].as_i64().unwrap();
    let run = wait_policy_run(&s.base, id).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let (status, v) = post(&s, &format!("/api/v1/policy-runs/{id}/cancel"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(first_code(&v), "POLICY_RUN_FINISHED");
    let all = s.api_ok("/api/v1/policy-runs").await;
    assert_eq!(all["runs"][0]["id"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_policy_run_stops_after_the_repository_it_is_on() {
    let s = TestServer::start().await;
    let c = client();
    for (n, repo) in ["cut/a", "cut/b", "cut/c"].iter().enumerate() {
        for i in 0..2u64 {
            push_image(&c, &s.base, repo, &format!("t{i}"), 10 * n as u64 + i + 1).await;
        }
    }
    let doc = r#"{"name": "cut", "repositories": ["cut/*"], "delete": {"older_than": "0s"}}"#;
    let (status, v) = put_policy(&s, "cut", doc).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    // Hold the run after its first repository, cancel it there, then let it go on.
    let mut held = s.server().retention().checkpoint().arm(1);
    let (status, run) = post(&s, "/api/v1/policies/cut/runs", None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let id = run["id"].as_i64().unwrap();
    held.reached().await;
    let (status, v) = post(&s, &format!("/api/v1/policy-runs/{id}/cancel"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    held.release();
    let run = wait_policy_run(&s.base, id).await;
    assert_eq!(run["state"], "cancelled", "{run}");
    assert_eq!(run["figures"]["tags_deleted"], 2, "{run}");
    let touched: BTreeSet<&str> = run["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["repository"].as_str().unwrap())
        .collect();
    assert_eq!(touched.len(), 1, "one repository only: {run}");
    let mut left = 0;
    for repo in ["cut/a", "cut/b", "cut/c"] {
        let tags = oci_tags(&s.base, repo).await.unwrap_or_default();
        if touched.contains(repo) {
            assert!(tags.is_empty(), "{repo} was cleaned: {tags:?}");
        } else {
            assert_eq!(tags, ["t0", "t1"], "{repo} was not reached");
            left += tags.len();
        }
    }
    assert_eq!(left, 4);

    // What the cancelled run deleted stays deleted; the next run does the rest.
    let (_, again) = post(&s, "/api/v1/policies/cut/runs", None).await;
    let again = wait_policy_run(&s.base, again["id"].as_i64().unwrap()).await;
    assert_eq!(again["state"], "succeeded", "{again}");
    assert_eq!(again["figures"]["tags_deleted"], 4, "{again}");
}
