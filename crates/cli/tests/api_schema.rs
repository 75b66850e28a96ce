//! The management API against its own OpenAPI document: schemathesis (PyPI; `scripts/test`
//! installs it) reads `/api/v1/openapi.json` of a registry with access control on and data in
//! it, and calls every operation it lists as an administrator, with generated input both valid
//! and invalid, each operation after others too (its stateful phase). Every answer must be no
//! server error (5xx), carry a status the document lists for the operation, the content type it
//! lists, and a body that matches its schema. A missing schemathesis fails the test, it never
//! skips it.

mod common;

use std::path::{Path, PathBuf};

use common::accounts::{ADMIN, PASSWORD, admin_post};
use common::{PATIENCE, TestServer, index_manifest, push_image_bytes, put_manifest, wait_until};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

/// The administrator schemathesis logs in as: not the first one (from the configuration),
/// which schemathesis may remove like any other user. `api_schema_hooks.py` keeps the two
/// operations on a user by name off this one, so that it cannot remove itself or change its
/// password mid-run and turn every later answer into a 401 that hides what it would have found.
const ACTOR: (&str, &str) = ("schemathesis", "schemathesis-password-1");

/// Generated cases per operation and phase: the run takes about a minute and a half on two
/// cores.
const EXAMPLES: &str = "100";
/// Fixed, so that a failure in CI reproduces.
const SEED: &str = "20260501";

/// The schemathesis executable, from `SHIPSHAPE_TEST_SCHEMATHESIS`; fails loudly when unset.
fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SHIPSHAPE_TEST_SCHEMATHESIS").map(PathBuf::from);
    let path = path.unwrap_or_else(|| {
        panic!(
            "SHIPSHAPE_TEST_SCHEMATHESIS is not set: run the README's test command \
             (scripts/test), which installs schemathesis and sets it"
        )
    });
    common::require_tool(
        "SHIPSHAPE_TEST_SCHEMATHESIS",
        path.to_str().expect("UTF-8 path"),
    )
}

fn client_as((user, password): (&str, &str)) -> Client {
    use base64::Engine;
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {creds}")).unwrap(),
    );
    Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sends `method path` with `body` as the acting administrator; the answer must be a success.
async fn call(
    c: &Client,
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: &str,
) -> Value {
    let resp = c
        .request(method.clone(), s.url(path))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Waits for the run at `path` (management API) to leave `running`.
async fn wait_run(c: &Client, s: &TestServer, path: &str) {
    wait_until(&format!("{path} to finish"), || async move {
        let v = call(c, s, reqwest::Method::GET, path, "").await;
        (v["state"] != "running").then_some(())
    })
    .await;
}

/// What gives every listing something to show: accounts, images (an index among them) in two
/// repositories, a deleted tag (restorable, with history), a policy with a finished run, and a
/// finished dry-run collection.
async fn fill(s: &TestServer) {
    admin_post(
        s,
        "/api/v1/users",
        json!({"name": ACTOR.0, "password": ACTOR.1, "admin": true}),
    )
    .await;
    admin_post(
        s,
        "/api/v1/users",
        json!({"name": "dev", "password": PASSWORD}),
    )
    .await;
    admin_post(
        s,
        "/api/v1/roles",
        json!({"subject": "user:dev", "pattern": "team/**", "role": "write"}),
    )
    .await;
    admin_post(
        s,
        "/api/v1/robots",
        json!({"name": "ci", "roles": [{"pattern": "team/app", "role": "write"}]}),
    )
    .await;

    let c = &client_as(ACTOR);
    let base = &s.base;
    for (repo, tag, seed) in [
        ("team/app", "v1", 1),
        ("team/app", "v2", 2),
        ("team/app", "latest", 2),
        // The OpenAPI document's example of a repository name, which schemathesis tries first.
        ("library/ubuntu", "24.04", 3),
    ] {
        push_image_bytes(c, base, repo, tag, seed).await;
    }
    let (a, am) = push_image_bytes(c, base, "team/multi", "amd64", 4).await;
    let (b, bm) = push_image_bytes(c, base, "team/multi", "arm64", 5).await;
    let index = index_manifest(&[(&a, am.len()), (&b, bm.len())]);
    let resp = put_manifest(c, base, "team/multi", "1.0", common::OCI_INDEX, &index).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "index push");

    use reqwest::Method;
    call(
        c,
        s,
        Method::DELETE,
        "/api/v1/repositories/team/app/-/tags/v1",
        "",
    )
    .await;
    let policy = "name = \"team\"\nrepositories = [\"team/**\"]\n\n[keep]\nlatest_pushed = 2\n\n\
                  [delete]\nolder_than = \"0s\"\n";
    call(c, s, Method::PUT, "/api/v1/policies/team", policy).await;
    let run = call(c, s, Method::POST, "/api/v1/policies/team/runs", "").await;
    let id = run["id"].as_i64().expect("policy run id");
    wait_run(c, s, &format!("/api/v1/policy-runs/{id}")).await;
    let run = call(
        c,
        s,
        Method::POST,
        "/api/v1/gc/runs",
        r#"{"dry_run": true}"#,
    )
    .await;
    let id = run["id"].as_i64().expect("GC run id");
    wait_run(c, s, &format!("/api/v1/gc/runs/{id}")).await;
}

/// Runs schemathesis to its end (bounded: it fails the test past five minutes).
async fn run_schemathesis(program: &Path, args: &[&str], cwd: &Path) -> std::process::Output {
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api_schema_hooks.py");
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env("SCHEMATHESIS_HOOKS", hooks)
        .env("SHIPSHAPE_SCHEMATHESIS_ACTOR", ACTOR.0)
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    tokio::time::timeout(PATIENCE * 5, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis {args:?} timed out"))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_management_api_answer_is_what_the_openapi_document_says() {
    let program = schemathesis();
    let s =
        TestServer::start_with(|c| c.first_admin = Some((ADMIN.0.into(), ADMIN.1.into()))).await;
    fill(&s).await;

    let schema = s.url("/api/v1/openapi.json");
    let auth = format!("{}:{}", ACTOR.0, ACTOR.1);
    let args = [
        "run",
        schema.as_str(),
        "--auth",
        auth.as_str(),
        // A 5xx; a status the operation does not list; a content type it does not list; a body
        // that does not match the listed schema. Left out: the checks that judge the API's
        // choice of what to accept (negative_data_rejection, positive_data_acceptance: the
        // document describes shapes, not every rule a handler applies, such as a repository
        // name's grammar) and those about authorization, which access_control.rs covers per
        // role (ignored_auth, object_level_authorization).
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--output-truncate",
        "false",
    ];
    let scratch = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = run_schemathesis(&program, &args, scratch.path()).await;
    let report = common::describe_run(&program, &args, &out);
    assert!(
        out.status.success(),
        "schemathesis found answers that break the OpenAPI document ({:?}):\n{report}",
        started.elapsed()
    );
    println!("{report}");
}
