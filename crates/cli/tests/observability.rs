//! What an operator reads of a running registry, from the built binary: its log on stderr as
//! JSON lines (one per request with the route template, status, bytes, actor and request id;
//! one per deletion, restore, protection override and GC run with its figures as fields; never
//! a password, token or robot secret) and `/metrics` (HTTP series that move by exactly the
//! requests made, storage figures equal to `usage`, upload sessions, GC runs).

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::*;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-Passw0rd-for-observability";
const WRONG_PASSWORD: &str = "not-the-Passw0rd-zz9";
const REPO: &str = "team/app";

/// `shipshape serve` as a child process with its stderr captured line by line.
struct Served {
    child: tokio::process::Child,
    base: String,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Served {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipshape"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--log-format",
                "json",
                // Garbage is collectable at once, by runs only, so a run's figures are known.
                "--gc-review-delay",
                "0s",
                "--gc-lease",
                "0s",
                "--gc-workers",
                "0",
                "--metrics-storage-refresh",
                "0s",
            ])
            .env("SHIPSHAPE_LOG", "info")
            .env("SHIPSHAPE_ADMIN_USER", ADMIN)
            .env("SHIPSHAPE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("shipshape binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = stdout.next_line().await.unwrap().expect("the serving line");
        let base = line.rsplit(' ').next().unwrap().to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "{line}");
        Served {
            child,
            base,
            lines,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every stderr line so far, each of which must be one JSON object.
    fn log(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| panic!("a log line that is no JSON object: {l:?}"))
            })
            .collect()
    }

    /// Waits for a log line `matches` accepts; returns it.
    async fn line(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        wait_until(&format!("a log line: {what}"), || {
            let found = self.log().into_iter().find(|l| matches(l));
            async move { found }
        })
        .await
    }

    /// The request line of `request_id`.
    async fn request_line(&self, request_id: &str) -> Value {
        self.line(&format!("request {request_id}"), |l| {
            l["target"] == "shipshape::request" && l["request_id"] == request_id
        })
        .await
    }

    /// `/metrics`, parsed: `name{labels}` (labels as written) → value.
    async fn metrics(&self) -> BTreeMap<String, f64> {
        let resp = client().get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let text = resp.text().await.unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("a sample line");
                let value = value
                    .parse()
                    .unwrap_or_else(|e| panic!("{l:?}: value ({e})"));
                (series.to_string(), value)
            })
            .collect()
    }
}

/// A series' name with labels in the order the registry writes them.
fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

fn basic(user: &str, secret: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
    format!("Basic {b64}")
}

/// A client that sends `authorization` on every request.
fn client_with(authorization: &str) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        authorization.parse().unwrap(),
    );
    Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn ok_json(req: RequestBuilder, expect: StatusCode) -> Value {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let v = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, expect, "{v}");
    v
}

fn same_request(line: &Value, method: &str, route: &str, status: u16) -> bool {
    line["target"] == "shipshape::request"
        && line["method"] == method
        && line["route"] == route
        && line["status"] == status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_and_the_metrics_tell_an_operator_what_happened_and_nothing_secret() {
    let s = Served::start().await;
    let admin = client_with(&basic(ADMIN, ADMIN_PASSWORD));

    // A robot that may push to team/**, and a policy protecting release-* there.
    let robot = ok_json(
        admin.post(s.url("/api/v1/robots")).json(&json!({
            "name": "ci", "roles": [{"pattern": "team/**", "role": "write"}]
        })),
        StatusCode::CREATED,
    )
    .await;
    let robot_login = robot["login"].as_str().unwrap().to_string();
    let robot_secret = robot["secret"].as_str().unwrap().to_string();
    let ci = client_with(&basic(&robot_login, &robot_secret));
    let robot_name = ok_json(ci.get(s.url("/api/v1/whoami")), StatusCode::OK).await["name"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = admin
        .put(s.url("/api/v1/policies/releases"))
        .body("name = \"releases\"\nrepositories = [\"team/*\"]\n[tags]\nprotected = [\"release-*\"]\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    // A push by the robot: every blob through POST and a monolithic PUT.
    let mut uploaded = 0u64;
    let mut pushes = 0u64;
    for (tag, seed) in [("v1", 1), ("old", 2), ("release-1", 3)] {
        let config = format!(r#"{{"os":"linux","seed":{seed}}}"#).into_bytes();
        let layer = random_bytes(3000 + seed as usize, seed);
        let cd = push_blob(&ci, &s.base, REPO, &config).await;
        let ld = push_blob(&ci, &s.base, REPO, &layer).await;
        uploaded += (config.len() + layer.len()) as u64;
        pushes += 2;
        let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
        let resp = put_manifest(&ci, &s.base, REPO, tag, OCI_MANIFEST, &m).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }

    // A pull, with the client's request id: echoed, and on the request's line.
    let resp = ci
        .get(s.url(&format!("/v2/{REPO}/manifests/v1")))
        .header("accept", OCI_MANIFEST)
        .header("x-request-id", "pull-v1.from:ci")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "x-request-id"), Some("pull-v1.from:ci"));
    let manifest_body = resp.bytes().await.unwrap();
    let manifest_bytes = manifest_body.len() as u64;
    let line = s.request_line("pull-v1.from:ci").await;
    assert_eq!(line["method"], "GET", "{line}");
    assert_eq!(line["route"], "/v2/{name}/manifests/{reference}", "{line}");
    assert_eq!(line["path"], "/v2/team/app/manifests/v1", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["actor"], robot_name.as_str(), "{line}");
    assert_eq!(line["bytes_out"], manifest_bytes, "{line}");
    assert_eq!(line["bytes_in"], 0, "{line}");
    assert!(line["duration_ms"].as_f64().is_some(), "{line}");
    assert_eq!(line["level"], "INFO", "{line}");

    // A blob pulled whole, and one only asked about: neither was cut off.
    let manifest: Value = serde_json::from_slice(&manifest_body).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let layer_size = manifest["layers"][0]["size"].as_u64().unwrap();
    for (method, id) in [("GET", "blob-get"), ("HEAD", "blob-head")] {
        let resp = ci
            .request(
                method.parse().unwrap(),
                s.url(&format!("/v2/{REPO}/blobs/{layer}")),
            )
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let got = resp.bytes().await.unwrap().len() as u64;
        let line = s.request_line(id).await;
        assert_eq!(line["route"], "/v2/{name}/blobs/{digest}", "{line}");
        assert_eq!(line["bytes_out"], got, "{line}");
        assert!(line.get("aborted").is_none(), "{line}");
        if method == "GET" {
            assert_eq!(got, layer_size);
        }
    }

    // Without one (or with one that is not sane), the registry makes one up and says it.
    for sent in [None, Some("has space"), Some(&*"x".repeat(200))] {
        let mut req = ci.get(s.url(&format!("/v2/{REPO}/tags/list")));
        if let Some(id) = sent {
            req = req.header("x-request-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let id = header(&resp, "x-request-id")
            .expect("a generated request id")
            .to_string();
        assert_ne!(Some(id.as_str()), sent);
        assert!(
            id.len() >= 16 && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{id}"
        );
        let line = s.request_line(&id).await;
        assert_eq!(line["route"], "/v2/{name}/tags/list", "{line}");
    }

    // A login with a password (the token endpoint), then requests with the bearer token.
    let token = ok_json(
        admin.get(s.url("/auth/token")).query(&[
            ("service", "shipshape"),
            ("scope", "repository:team/app:pull,push,delete"),
        ]),
        StatusCode::OK,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = client_with(&format!("Bearer {token}"));
    let mut listed = 0u64;
    for i in 0..3 {
        let id = format!("bearer-list-{i}");
        let resp = bearer
            .get(s.url(&format!("/v2/{REPO}/tags/list")))
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        listed += resp.bytes().await.unwrap().len() as u64;
        assert_eq!(s.request_line(&id).await["actor"], ADMIN);
    }
    // A wrong password is refused, as anonymous.
    let resp = client_with(&basic(ADMIN, WRONG_PASSWORD))
        .get(s.url("/v2/"))
        .header("x-request-id", "wrong-password")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let line = s.request_line("wrong-password").await;
    assert_eq!(line["status"], 401, "{line}");
    assert_eq!(line["actor"], "anonymous", "{line}");

    // A tag deleted by the robot, then restored by it.
    let resp = ci
        .delete(s.url(&format!("/v2/{REPO}/manifests/old")))
        .header("x-request-id", "delete-old")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let deleted = s
        .line("the tag deletion", |l| {
            l["target"] == "shipshape::audit" && l["action"] == "tag.delete"
        })
        .await;
    assert_eq!(deleted["actor"], robot_name.as_str(), "{deleted}");
    assert_eq!(deleted["repository"], REPO, "{deleted}");
    assert_eq!(deleted["object"], "old", "{deleted}");
    // Logged inside the request, so it names the request's id.
    assert_eq!(deleted["request_id"], "delete-old", "{deleted}");
    assert!(
        deleted["digest"].as_str().unwrap().starts_with("sha256:"),
        "{deleted}"
    );
    assert!(deleted.get("protection_overridden").is_none(), "{deleted}");
    ok_json(
        ci.post(s.url(&format!("/api/v1/repositories/{REPO}/-/tags/old/restore")))
            .json(&json!({})),
        StatusCode::OK,
    )
    .await;
    let restored = s
        .line("the restore", |l| {
            l["target"] == "shipshape::audit" && l["action"] == "tag.restore"
        })
        .await;
    assert_eq!(restored["actor"], robot_name.as_str(), "{restored}");
    assert_eq!(restored["object"], "old", "{restored}");

    // A protected tag: the robot is refused, the administrator overrides.
    let resp = ci
        .delete(s.url(&format!("/v2/{REPO}/manifests/release-1")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    ok_json(
        admin.delete(s.url(&format!(
            "/api/v1/repositories/{REPO}/-/tags/release-1?override_protection=true"
        ))),
        StatusCode::OK,
    )
    .await;
    let overridden = s
        .line("the override", |l| {
            l["target"] == "shipshape::audit"
                && l["action"] == "tag.delete"
                && l["object"] == "release-1"
        })
        .await;
    assert_eq!(overridden["actor"], ADMIN, "{overridden}");
    assert_eq!(overridden["protection_overridden"], true, "{overridden}");
    let refused = s
        .line("the refused delete", |l| {
            same_request(l, "DELETE", "/v2/{name}/manifests/{reference}", 403)
        })
        .await;
    assert_eq!(refused["actor"], robot_name.as_str(), "{refused}");
    // A dry run changes nothing, so it logs no deletion.
    let dry = ok_json(
        admin
            .post(s.url(&format!("/api/v1/repositories/{REPO}/-/tags/delete")))
            .json(&json!({"tags": ["v1"], "dry_run": true})),
        StatusCode::OK,
    )
    .await;
    assert_eq!(dry["dry_run"], true, "{dry}");

    // An upload begun and left open, and one blob nothing references: garbage a run frees.
    let resp = ci
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let stray = random_bytes(5000, 99);
    push_blob(&ci, &s.base, REPO, &stray).await;
    uploaded += stray.len() as u64;
    pushes += 1;
    let before = s.metrics().await;
    let usage = ok_json(admin.get(s.url("/api/v1/usage")), StatusCode::OK).await;
    let reclaimable = usage["total"]["reclaimable_bytes"].as_u64().unwrap();
    assert!(reclaimable >= stray.len() as u64, "{usage}");
    let started = ok_json(
        admin.post(s.url("/api/v1/gc/runs")).json(&json!({})),
        StatusCode::ACCEPTED,
    )
    .await;
    let path = s.url(&format!("/api/v1/gc/runs/{}", started["id"]));
    let (admin_ref, path_ref) = (&admin, &path);
    let run = wait_until("the GC run to finish", || async move {
        let run = ok_json(admin_ref.get(path_ref), StatusCode::OK).await;
        (run["state"] != "running").then_some(run)
    })
    .await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let freed = run["figures"]["bytes_deleted"].as_u64().unwrap();
    assert!(freed >= stray.len() as u64, "{run}");
    let gc_line = s
        .line("the GC run", |l| {
            l["target"] == "shipshape::audit" && l["action"] == "gc.run"
        })
        .await;
    assert_eq!(gc_line["actor"], ADMIN, "{gc_line}");
    assert_eq!(gc_line["state"], "succeeded", "{gc_line}");
    assert_eq!(gc_line["dry_run"], false, "{gc_line}");
    assert_eq!(gc_line["bytes"], freed, "{gc_line}");
    assert_eq!(
        gc_line["blobs"], run["figures"]["blobs_deleted"],
        "{gc_line}"
    );
    assert_eq!(gc_line["run"], run["id"], "{gc_line}");

    // A policy run, started by hand: one line with its actor and figures.
    let started = ok_json(
        admin.post(s.url("/api/v1/policies/releases/runs")),
        StatusCode::ACCEPTED,
    )
    .await;
    let policy_line = s
        .line("the policy run", |l| {
            l["target"] == "shipshape::audit" && l["action"] == "policy.run"
        })
        .await;
    assert_eq!(policy_line["run"], started["id"], "{policy_line}");
    assert_eq!(policy_line["actor"], ADMIN, "{policy_line}");
    assert_eq!(policy_line["policy"], "releases", "{policy_line}");
    assert_eq!(policy_line["trigger"], "manual", "{policy_line}");
    assert_eq!(policy_line["state"], "succeeded", "{policy_line}");
    assert_eq!(policy_line["tags_deleted"], 0, "{policy_line}");

    // The metrics moved by exactly what was done.
    let after = s.metrics().await;
    let diff = |key: &str| {
        after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
    };
    assert_eq!(
        diff(&series(
            "shipshape_gc_runs_total",
            &[("state", "succeeded"), ("kind", "real")]
        )),
        1.0
    );
    assert_eq!(diff("shipshape_gc_bytes_reclaimed_total"), freed as f64);
    assert_eq!(diff("shipshape_gc_run_duration_seconds_count"), 1.0);
    assert_eq!(
        diff(&series(
            "shipshape_policy_runs_total",
            &[("state", "succeeded"), ("trigger", "manual")]
        )),
        1.0
    );
    let tags_list = [
        ("route", "/v2/{name}/tags/list"),
        ("method", "GET"),
        ("status", "200"),
    ];
    // Three lists by bearer, three with made-up ids: six.
    assert_eq!(
        after[&series("shipshape_http_requests_total", &tags_list)],
        6.0
    );
    assert_eq!(
        after[&series("shipshape_http_request_duration_seconds_count", &tags_list)],
        6.0
    );
    let mut inf = tags_list.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(
        after[&series("shipshape_http_request_duration_seconds_bucket", &inf)],
        6.0
    );
    assert!(after[&series("shipshape_http_response_bytes_total", &tags_list)] >= listed as f64);
    let finish = [
        ("route", "/v2/{name}/blobs/uploads/{session}"),
        ("method", "PUT"),
        ("status", "201"),
    ];
    assert_eq!(
        after[&series("shipshape_http_requests_total", &finish)],
        pushes as f64
    );
    assert_eq!(
        after[&series("shipshape_http_request_bytes_total", &finish)],
        uploaded as f64
    );
    let pulled = [
        ("route", "/v2/{name}/manifests/{reference}"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(
        after[&series("shipshape_http_requests_total", &pulled)],
        1.0
    );
    assert_eq!(
        after[&series("shipshape_http_response_bytes_total", &pulled)],
        manifest_bytes as f64
    );
    // No series names a repository.
    assert!(
        after.keys().all(|k| !k.contains(REPO)),
        "a repository in a label"
    );
    assert_eq!(
        after["shipshape_upload_sessions"], 1.0,
        "the session left open"
    );
    assert!(after.contains_key(&series(
        "shipshape_gc_queue_oldest_age_seconds",
        &[("queue", "blob_reviews")]
    )));
    assert!(after[&series("shipshape_filesystem_available_bytes", &[("part", "store")])] > 0.0);
    assert!(after["shipshape_catalogue_wait_seconds_count{pool=\"write\"}"] > 0.0);
    // SQLite's own memory (this registry's catalogue is SQLite in its data directory).
    assert!(after["shipshape_catalogue_sqlite_memory_bytes"] > 0.0);

    // The storage figures are `usage`'s.
    let admin_ref = &admin;
    let s_ref = &s;
    wait_until("/metrics and usage to agree", || async move {
        let m = s_ref.metrics().await;
        let u = ok_json(admin_ref.get(s_ref.url("/api/v1/usage")), StatusCode::OK).await;
        let t = &u["total"];
        let same = [
            ("in_use", "in_use_bytes"),
            ("held_for_restore", "held_for_restore_bytes"),
            ("in_grace", "in_grace_bytes"),
            ("reclaimable", "reclaimable_bytes"),
        ]
        .iter()
        .all(|(class, field)| {
            m.get(&series("shipshape_storage_bytes", &[("class", class)]))
                == t[field].as_u64().map(|v| v as f64).as_ref()
        });
        (same
            && m[&series("shipshape_storage_objects", &[("kind", "blob")])]
                == t["blobs"].as_f64().unwrap())
        .then_some(())
    })
    .await;

    // Every line is JSON, and none holds a secret.
    sigterm(&s.child);
    let mut child = s.child;
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let lines = s.lines.lock().unwrap().clone();
    assert!(lines.len() > 20, "{lines:?}");
    let secrets = [
        ADMIN_PASSWORD.to_string(),
        WRONG_PASSWORD.to_string(),
        robot_secret.clone(),
        token.clone(),
        basic(ADMIN, ADMIN_PASSWORD),
        basic(&robot_login, &robot_secret),
    ];
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        for secret in &secrets {
            assert!(
                !line.contains(secret.as_str()),
                "a secret in the log: {line}"
            );
        }
    }
    // No deletion but the two made: the dry run logged none.
    let deletions = lines
        .iter()
        .filter(|l| l.contains("\"action\":\"tag.delete\""))
        .count();
    assert_eq!(deletions, 2, "{lines:#?}");
}

fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("running") as libc::pid_t;
    // SAFETY: kill(2) with a pid this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM");
}
