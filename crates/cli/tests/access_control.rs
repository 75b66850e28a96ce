//! Access control over HTTP: every `/v2/` route and the management API's guarded operations,
//! tried by each kind of caller (anonymous, read, write, admin and registry admin users, a
//! robot, a revoked robot, and bearer tokens: right, for the wrong scope, for another
//! repository, expired, tampered), each answer asserted; every operation of the management API
//! the OpenAPI document lists, tried by each role, with no answer naming a repository the
//! caller may not read; the token endpoint's two forms; the failed-login limit; the activity
//! log naming the real actor. Real clients logging in are in
//! `real_clients.rs`.

mod common;

use base64::Engine;
use common::{
    OCI_MANIFEST, ShiftedClock, TestServer, client, header, push_image_bytes, put_manifest,
};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
const PASSWORD: &str = "a-long-password";

/// Who makes a request.
#[derive(Clone, Debug)]
enum Who {
    Anonymous,
    Basic(String, String),
    Bearer(String),
}

impl Who {
    fn user(name: &str) -> Who {
        Who::Basic(name.into(), PASSWORD.into())
    }

    fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Who::Anonymous => req,
            Who::Basic(u, p) => req.basic_auth(u, Some(p)),
            Who::Bearer(t) => req.bearer_auth(t),
        }
    }
}

fn client_as(user: &str, password: &str) -> Client {
    let mut headers = HeaderMap::new();
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {creds}")).unwrap(),
    );
    Client::builder().default_headers(headers).build().unwrap()
}

/// A registry with access control on: the first administrator from the configuration, then
/// `reader` (read on team/**), `dev` (write on team/**), `ops` (admin on **), robot `ci`
/// (write on team/app), a revoked robot `old`, and anonymous pull on public/**; an image in
/// team/app, team/other and public/app.
struct Fixture {
    s: TestServer,
    clock: ShiftedClock,
    ci_secret: String,
    old_secret: String,
    manifest: Vec<u8>,
}

async fn api_as(
    s: &TestServer,
    who: &Who,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = who.apply(client().request(method, s.url(path)));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

async fn fixture() -> Fixture {
    let clock = ShiftedClock::default();
    let s = TestServer::start_with_shifted_clock(&clock, |c| {
        c.first_admin = Some((ADMIN.0.into(), ADMIN.1.into()));
    })
    .await;
    let admin = Who::Basic(ADMIN.0.into(), ADMIN.1.into());
    for name in ["reader", "dev", "ops"] {
        let (st, v) = api_as(
            &s,
            &admin,
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": name, "password": PASSWORD})),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    for (subject, pattern, role) in [
        ("user:reader", "team/**", "read"),
        ("user:dev", "team/**", "write"),
        ("user:ops", "**", "admin"),
        ("anonymous", "public/**", "read"),
    ] {
        let (st, v) = api_as(
            &s,
            &admin,
            Method::POST,
            "/api/v1/roles",
            Some(json!({"subject": subject, "pattern": pattern, "role": role})),
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    }
    let mut secrets = Vec::new();
    for name in ["ci", "old"] {
        let (st, v) = api_as(
            &s,
            &admin,
            Method::POST,
            "/api/v1/robots",
            Some(json!({"name": name, "roles": [{"pattern": "team/app", "role": "write"}]})),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(v["login"], format!("robot${name}"));
        secrets.push(v["secret"].as_str().unwrap().to_string());
    }
    let (st, v) = api_as(&s, &admin, Method::POST, "/api/v1/robots/old/revoke", None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let c = client_as(ADMIN.0, ADMIN.1);
    let (_, manifest) = push_image_bytes(&c, &s.base, "team/app", "v1", 1).await;
    push_image_bytes(&c, &s.base, "team/other", "v1", 2).await;
    push_image_bytes(&c, &s.base, "public/app", "v1", 3).await;
    Fixture {
        s,
        clock,
        ci_secret: secrets.remove(0),
        old_secret: secrets.remove(0),
        manifest,
    }
}

/// A token from the GET form of the token endpoint.
async fn token(s: &TestServer, who: &Who, scope: &str) -> (StatusCode, Value) {
    let req = who.apply(
        client()
            .get(s.url("/auth/token"))
            .query(&[("service", "shipshape"), ("scope", scope)]),
    );
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn bearer(s: &TestServer, who: &Who, scope: &str) -> Who {
    let (st, v) = token(s, who, scope).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    Who::Bearer(v["token"].as_str().unwrap().to_string())
}

/// The `/v2/` operations of the matrix, each on team/app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Base,
    PullManifest,
    HeadBlob,
    ListTags,
    StartUpload,
    PushManifest,
    DeleteTag,
    DeleteByDigest,
}

const OPS: [Op; 8] = [
    Op::Base,
    Op::PullManifest,
    Op::HeadBlob,
    Op::ListTags,
    Op::StartUpload,
    Op::PushManifest,
    Op::DeleteTag,
    Op::DeleteByDigest,
];

async fn attempt(f: &Fixture, who: &Who, op: Op) -> (StatusCode, Option<String>) {
    let s = &f.s;
    let admin = client_as(ADMIN.0, ADMIN.1);
    let digest = common::sha256(&f.manifest);
    let config: Value = serde_json::from_slice(&f.manifest).unwrap();
    let blob = config["layers"][0]["digest"].as_str().unwrap().to_string();
    // What a delete takes away is put back first, so every caller finds the same registry.
    if matches!(op, Op::DeleteTag | Op::DeleteByDigest) {
        let r = put_manifest(
            &admin,
            &s.base,
            "team/app",
            "doomed",
            OCI_MANIFEST,
            &f.manifest,
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let c = client();
    let req = match op {
        Op::Base => c.get(s.url("/v2/")),
        Op::PullManifest => c
            .get(s.url("/v2/team/app/manifests/v1"))
            .header("accept", OCI_MANIFEST),
        Op::HeadBlob => c.head(s.url(&format!("/v2/team/app/blobs/{blob}"))),
        Op::ListTags => c.get(s.url("/v2/team/app/tags/list")),
        Op::StartUpload => c.post(s.url("/v2/team/app/blobs/uploads/")),
        Op::PushManifest => c
            .put(s.url("/v2/team/app/manifests/v2"))
            .header("content-type", OCI_MANIFEST)
            .body(f.manifest.clone()),
        Op::DeleteTag => c.delete(s.url("/v2/team/app/manifests/doomed")),
        Op::DeleteByDigest => c.delete(s.url(&format!("/v2/team/app/manifests/{digest}"))),
    };
    let resp = who.apply(req).send().await.unwrap();
    let status = resp.status();
    let challenge = header(&resp, "www-authenticate").map(str::to_string);
    if status.is_client_error() && op != Op::HeadBlob {
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        let code = v["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let want = if status == StatusCode::UNAUTHORIZED {
            "UNAUTHORIZED"
        } else {
            "DENIED"
        };
        assert_eq!(code, want, "{who:?} {op:?}: {v}");
    }
    if op == Op::DeleteByDigest && status == StatusCode::ACCEPTED {
        // Put the image back under its tag for the callers after.
        let r = put_manifest(&admin, &s.base, "team/app", "v1", OCI_MANIFEST, &f.manifest).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    (status, challenge)
}

const OK: StatusCode = StatusCode::OK;
const ACC: StatusCode = StatusCode::ACCEPTED;
const NEW: StatusCode = StatusCode::CREATED;
const UNAUTH: StatusCode = StatusCode::UNAUTHORIZED;
const FORBID: StatusCode = StatusCode::FORBIDDEN;

/// Every `/v2/` operation by every kind of caller.
#[tokio::test]
async fn every_v2_route_answers_each_caller_as_its_roles_and_token_allow() {
    let f = fixture().await;
    let s = &f.s;
    let dev = Who::user("dev");
    let dev_token = bearer(s, &dev, "repository:team/app:pull,push,delete").await;
    let reader_token = bearer(
        s,
        &Who::user("reader"),
        "repository:team/app:pull,push,delete",
    )
    .await;
    let pull_only = bearer(s, &dev, "repository:team/app:pull").await;
    let other_repo = bearer(s, &dev, "repository:team/other:pull,push,delete").await;
    let ops_token = bearer(s, &Who::user("ops"), "repository:team/app:pull,push,delete").await;
    let tampered = match &dev_token {
        Who::Bearer(t) => {
            let mut b = t.clone().into_bytes();
            let i = b.len() - 5;
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            Who::Bearer(String::from_utf8(b).unwrap())
        }
        _ => unreachable!(),
    };
    let ci = Who::Basic("robot$ci".into(), f.ci_secret.clone());
    let old = Who::Basic("robot$old".into(), f.old_secret.clone());
    let cases: Vec<(&str, Who, [StatusCode; 8])> = vec![
        //                                   base   pull   head   tags   upload push   deltag deldig
        (
            "anonymous",
            Who::Anonymous,
            [
                UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH,
            ],
        ),
        (
            "reader",
            Who::user("reader"),
            [OK, OK, OK, OK, FORBID, FORBID, FORBID, FORBID],
        ),
        (
            "dev (write)",
            dev.clone(),
            [OK, OK, OK, OK, ACC, NEW, ACC, FORBID],
        ),
        (
            "ops (admin)",
            Who::user("ops"),
            [OK, OK, OK, OK, ACC, NEW, ACC, ACC],
        ),
        (
            "registry admin",
            Who::Basic(ADMIN.0.into(), ADMIN.1.into()),
            [OK, OK, OK, OK, ACC, NEW, ACC, ACC],
        ),
        ("robot ci", ci, [OK, OK, OK, OK, ACC, NEW, ACC, FORBID]),
        (
            "revoked robot",
            old,
            [
                UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH,
            ],
        ),
        (
            "dev's token",
            dev_token,
            [OK, OK, OK, OK, ACC, NEW, ACC, FORBID],
        ),
        (
            "ops's token",
            ops_token,
            [OK, OK, OK, OK, ACC, NEW, ACC, ACC],
        ),
        (
            "reader's token",
            reader_token,
            [OK, OK, OK, OK, FORBID, FORBID, FORBID, FORBID],
        ),
        (
            "pull-only token",
            pull_only,
            [OK, OK, OK, OK, FORBID, FORBID, FORBID, FORBID],
        ),
        (
            "token for team/other",
            other_repo,
            [OK, FORBID, FORBID, FORBID, FORBID, FORBID, FORBID, FORBID],
        ),
        (
            "tampered token",
            tampered,
            [
                UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH,
            ],
        ),
    ];
    let mut wrong = Vec::new();
    for (name, who, expected) in &cases {
        for (op, want) in OPS.iter().zip(expected) {
            let (got, challenge) = attempt(&f, who, *op).await;
            if got != *want {
                wrong.push(format!("{name} {op:?}: {got}, expected {want}"));
            }
            // A token without the scope is told which scope to ask for.
            if got == FORBID && matches!(who, Who::Bearer(_)) {
                let c = challenge.clone().unwrap_or_default();
                if !c.contains("error=\"insufficient_scope\"")
                    || !c.contains("scope=\"repository:team/app:")
                {
                    wrong.push(format!("{name} {op:?}: challenge {c:?}"));
                }
            }
            if got == UNAUTH {
                let c = challenge.unwrap_or_default();
                if !c.starts_with("Bearer realm=\"http://") || !c.contains("service=\"shipshape\"")
                {
                    wrong.push(format!("{name} {op:?}: challenge {c:?}"));
                }
                if !matches!(op, Op::Base)
                    && matches!(who, Who::Anonymous)
                    && !c.contains("scope=\"repository:team/app:")
                {
                    wrong.push(format!("{name} {op:?}: no scope in {c:?}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // An expired token: the clock moves past its five minutes.
    let late = bearer(s, &Who::user("dev"), "repository:team/app:pull").await;
    f.clock.advance(301_000);
    let (got, challenge) = attempt(&f, &late, Op::PullManifest).await;
    assert_eq!(got, UNAUTH);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
}

/// Anonymous pull on a pattern; the catalogue lists only what each caller may read.
#[tokio::test]
async fn anonymous_pull_follows_its_pattern_and_listings_show_only_what_may_be_read() {
    let f = fixture().await;
    let s = &f.s;
    let resp = client()
        .get(s.url("/v2/public/app/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), OK);
    let catalog = |who: Who| async move {
        let resp = who
            .apply(client().get(s.url("/v2/_catalog")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), OK);
        let v: Value = resp.json().await.unwrap();
        v["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(catalog(Who::Anonymous).await, ["public/app"]);
    assert_eq!(
        catalog(Who::user("reader")).await,
        ["public/app", "team/app", "team/other"]
    );
    assert_eq!(
        catalog(Who::Basic("robot$ci".into(), f.ci_secret.clone())).await,
        ["public/app", "team/app"]
    );
    // The management API's listing too.
    let (st, v) = api_as(
        s,
        &Who::Basic("robot$ci".into(), f.ci_secret.clone()),
        Method::GET,
        "/api/v1/repositories",
        None,
    )
    .await;
    assert_eq!(st, OK, "{v}");
    let names: Vec<&str> = v["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["public/app", "team/app"]);
    let (st, _) = api_as(
        s,
        &Who::Basic("robot$ci".into(), f.ci_secret.clone()),
        Method::GET,
        "/api/v1/repositories/team/other",
        None,
    )
    .await;
    assert_eq!(st, FORBID);
}

/// The management API: a login is needed, and each operation needs its role.
#[tokio::test]
async fn the_management_api_needs_a_login_and_each_operation_its_role() {
    let f = fixture().await;
    let s = &f.s;
    let admin = client_as(ADMIN.0, ADMIN.1);
    for tag in ["a", "b", "c"] {
        let r = put_manifest(&admin, &s.base, "team/app", tag, OCI_MANIFEST, &f.manifest).await;
        assert_eq!(r.status(), NEW);
    }
    let (st, v) = api_as(
        s,
        &Who::Anonymous,
        Method::GET,
        "/api/v1/repositories",
        None,
    )
    .await;
    assert_eq!(st, UNAUTH, "{v}");
    let reader = Who::user("reader");
    let dev = Who::user("dev");
    let ops = Who::user("ops");
    let del_tag = |t: &str| format!("/api/v1/repositories/team/app/-/tags/{t}");
    assert_eq!(
        api_as(s, &reader, Method::DELETE, &del_tag("a"), None)
            .await
            .0,
        FORBID
    );
    assert_eq!(
        api_as(s, &dev, Method::DELETE, &del_tag("a"), None).await.0,
        OK
    );
    let digest = common::sha256(&f.manifest);
    let del_manifest = format!("/api/v1/repositories/team/app/-/manifests/{digest}");
    let (st, v) = api_as(s, &dev, Method::DELETE, &del_manifest, None).await;
    assert_eq!(st, FORBID, "{v}");
    assert_eq!(v["errors"][0]["code"], "DENIED");
    assert_eq!(
        api_as(
            s,
            &dev,
            Method::DELETE,
            "/api/v1/repositories/team/app?confirm=team/app",
            None
        )
        .await
        .0,
        FORBID
    );
    assert_eq!(
        api_as(
            s,
            &dev,
            Method::POST,
            "/api/v1/gc/runs",
            Some(json!({"dry_run": true}))
        )
        .await
        .0,
        FORBID
    );
    assert_eq!(
        api_as(
            s,
            &ops,
            Method::POST,
            "/api/v1/gc/runs",
            Some(json!({"dry_run": true}))
        )
        .await
        .0,
        ACC
    );
    let policy =
        "name = \"keep\"\nrepositories = [\"team/**\"]\n[tags]\nprotected = [\"release-*\"]\n";
    let put_policy = |who: Who| async move {
        who.apply(client().put(s.url("/api/v1/policies/keep")).body(policy))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(put_policy(dev.clone()).await, FORBID);
    let resp = ops
        .apply(client().put(s.url("/api/v1/policies/keep")).body(policy))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), NEW, "{}", resp.text().await.unwrap());
    assert_eq!(
        api_as(s, &ops, Method::GET, "/api/v1/users", None).await.0,
        FORBID
    );
    let (st, v) = api_as(
        s,
        &Who::Basic(ADMIN.0.into(), ADMIN.1.into()),
        Method::GET,
        "/api/v1/users",
        None,
    )
    .await;
    assert_eq!(st, OK);
    assert_eq!(v["users"].as_array().unwrap().len(), 4);
    assert!(
        !v.to_string().contains("argon2"),
        "hashes never leave the server: {v}"
    );

    // The activity log names who did it.
    let (_, ev) = api_as(
        s,
        &ops,
        Method::GET,
        "/api/v1/events?action=tag.delete",
        None,
    )
    .await;
    assert_eq!(ev["events"][0]["actor"], "dev", "{ev}");
    assert_eq!(ev["events"][0]["target"], "a");
}

/// Overriding a tag's protection needs the admin role, and the log names the admin.
#[tokio::test]
async fn overriding_protection_needs_admin_and_is_logged_with_the_admins_name() {
    let f = fixture().await;
    let s = &f.s;
    let ops = Who::user("ops");
    let policy = "name = \"guard\"\nrepositories = [\"team/**\"]\n[tags]\nprotected = [\"v1\"]\n[keep]\nlatest_pushed = 100\n";
    let st = ops
        .apply(client().put(s.url("/api/v1/policies/guard")).body(policy))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, NEW);
    let path = "/api/v1/repositories/team/app/-/tags/v1?override_protection=true";
    let (st, v) = api_as(s, &Who::user("dev"), Method::DELETE, path, None).await;
    assert_eq!(st, FORBID, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("dev may not override tag protection"),
        "{v}"
    );
    let (st, v) = api_as(s, &ops, Method::DELETE, path, None).await;
    assert_eq!(st, OK, "{v}");
    let (_, ev) = api_as(
        s,
        &ops,
        Method::GET,
        "/api/v1/events?action=tag.delete",
        None,
    )
    .await;
    assert_eq!(ev["events"][0]["actor"], "ops", "{ev}");
    assert_eq!(ev["events"][0]["reason"], "protection overridden", "{ev}");
}

/// The token endpoint: the GET form grants the intersection of what was asked and what the
/// caller may do; the OAuth2 POST form with a password, then with a refresh token; bad
/// credentials are refused; failed logins are limited.
#[tokio::test]
async fn the_token_endpoint_grants_what_was_asked_and_allowed_and_limits_failed_logins() {
    let f = fixture().await;
    let s = &f.s;
    let (st, v) = token(
        s,
        &Who::user("reader"),
        "repository:team/app:pull,push registry:catalog:*",
    )
    .await;
    assert_eq!(st, OK, "{v}");
    assert!(v["expires_in"].as_i64().unwrap() >= 60);
    assert!(v["issued_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["token"], v["access_token"]);
    assert_eq!(v["scope"], "repository:team/app:pull registry:catalog:*");
    let (st, v) = token(
        s,
        &Who::Anonymous,
        "repository:public/app:pull repository:team/app:pull",
    )
    .await;
    assert_eq!(st, OK);
    assert_eq!(v["scope"], "repository:public/app:pull");
    let (st, v) = token(
        s,
        &Who::Basic("dev".into(), "wrong-password!".into()),
        "repository:team/app:pull",
    )
    .await;
    assert_eq!(st, UNAUTH, "{v}");

    // OAuth2: password grant with a refresh token, then the refresh grant.
    let form = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        async move {
            let resp = client()
                .post(s.url("/auth/token"))
                .form(&pairs)
                .send()
                .await
                .unwrap();
            (
                resp.status(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (st, v) = form(&[
        ("grant_type", "password"),
        ("username", "dev"),
        ("password", PASSWORD),
        ("service", "shipshape"),
        ("client_id", "test"),
        ("scope", "repository:team/app:pull,push"),
        ("access_type", "offline"),
    ])
    .await;
    assert_eq!(st, OK, "{v}");
    let refresh = v["refresh_token"].as_str().unwrap().to_string();
    let (st, v) = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &refresh),
        ("service", "shipshape"),
        ("client_id", "test"),
        ("scope", "repository:team/app:pull"),
    ])
    .await;
    assert_eq!(st, OK, "{v}");
    let access = Who::Bearer(v["access_token"].as_str().unwrap().to_string());
    assert_eq!(attempt(&f, &access, Op::PullManifest).await.0, OK);
    // A refresh token is not an access token.
    assert_eq!(
        attempt(&f, &Who::Bearer(refresh), Op::PullManifest).await.0,
        UNAUTH
    );

    // Ten failures from one account, then it is refused even with the right password.
    for _ in 0..10 {
        let (st, _) = token(
            s,
            &Who::Basic("reader".into(), "not-the-password".into()),
            "",
        )
        .await;
        assert_eq!(st, UNAUTH);
    }
    let resp = Who::user("reader")
        .apply(client().get(s.url("/v2/")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&resp, "retry-after").is_some());
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too many failed logins"),
        "{v}"
    );
    assert!(!v.to_string().contains("not-the-password"));
}

/// Rotating the signing key keeps tokens signed before valid; only an administrator may.
#[tokio::test]
async fn a_rotated_key_keeps_earlier_tokens_valid() {
    let f = fixture().await;
    let s = &f.s;
    let before = bearer(s, &Who::user("dev"), "repository:team/app:pull").await;
    let path = "/api/v1/token-keys/rotate";
    assert_eq!(
        api_as(s, &Who::user("ops"), Method::POST, path, None)
            .await
            .0,
        FORBID
    );
    let (st, v) = api_as(
        s,
        &Who::Basic(ADMIN.0.into(), ADMIN.1.into()),
        Method::POST,
        path,
        None,
    )
    .await;
    assert_eq!(st, OK, "{v}");
    assert_eq!(v["keys"], 2);
    let after = bearer(s, &Who::user("dev"), "repository:team/app:pull").await;
    assert_eq!(attempt(&f, &before, Op::PullManifest).await.0, OK);
    assert_eq!(attempt(&f, &after, Op::PullManifest).await.0, OK);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(s.data_dir().join("auth/token-signing-keys.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

/// Revoking a robot stops its secret and the tokens it already holds.
#[tokio::test]
async fn a_revoked_robot_loses_its_secret_and_its_tokens_at_once() {
    let f = fixture().await;
    let s = &f.s;
    let ci = Who::Basic("robot$ci".into(), f.ci_secret.clone());
    let held = bearer(s, &ci, "repository:team/app:pull").await;
    assert_eq!(attempt(&f, &held, Op::PullManifest).await.0, OK);
    let (st, _) = api_as(
        s,
        &Who::Basic(ADMIN.0.into(), ADMIN.1.into()),
        Method::POST,
        "/api/v1/robots/ci/revoke",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(attempt(&f, &held, Op::PullManifest).await.0, UNAUTH);
    assert_eq!(attempt(&f, &ci, Op::PullManifest).await.0, UNAUTH);
}

/// A non-loopback listener is refused without access control and allowed with it.
#[tokio::test]
async fn a_public_listener_needs_access_control() {
    let dir = tempfile::tempdir().unwrap();
    let config = |admin: bool| shipshape_server::ServerConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        first_admin: admin.then(|| (ADMIN.0.into(), ADMIN.1.into())),
        ..Default::default()
    };
    let refused = shipshape_server::Server::start(config(false)).await;
    let message = refused.err().expect("refused").to_string();
    assert!(message.contains("SHIPSHAPE_ADMIN_PASSWORD"), "{message}");
    let server = shipshape_server::Server::start(config(true))
        .await
        .expect("starts with access control");
    let url = format!("http://127.0.0.1:{}/v2/", server.local_addr().port());
    assert_eq!(client().get(&url).send().await.unwrap().status(), UNAUTH);
    server.shutdown().await.unwrap();
}

/// A call of the account walk: method, documented path, the URL, a body, who, the status
/// expected.
type AccountCall<'a> = (Method, &'a str, String, Option<Value>, &'a Who, StatusCode);

/// The account operations (`/api/v1/whoami`, users, robots, roles, key rotation) are in the
/// OpenAPI document, each answer an administrator and a reader get is one the document lists,
/// and their times are RFC 3339 like the rest of the API.
#[tokio::test]
async fn the_account_operations_answer_as_the_openapi_document_says() {
    let f = fixture().await;
    let s = &f.s;
    let admin = Who::Basic(ADMIN.0.into(), ADMIN.1.into());
    let reader = Who::user("reader");
    let doc = s.api_ok("/api/v1/openapi.json").await;
    let account_paths = [
        "/api/v1/whoami",
        "/api/v1/users",
        "/api/v1/users/{name}",
        "/api/v1/users/{name}/password",
        "/api/v1/robots",
        "/api/v1/robots/{name}/revoke",
        "/api/v1/roles",
        "/api/v1/token-keys/rotate",
    ];
    let pw = json!({"password": "another-long-password"});
    let calls: Vec<AccountCall> = vec![
        (
            Method::GET,
            "/api/v1/whoami",
            "/api/v1/whoami".into(),
            None,
            &reader,
            OK,
        ),
        (
            Method::GET,
            "/api/v1/users",
            "/api/v1/users".into(),
            None,
            &admin,
            OK,
        ),
        (
            Method::GET,
            "/api/v1/users",
            "/api/v1/users".into(),
            None,
            &reader,
            FORBID,
        ),
        (
            Method::POST,
            "/api/v1/users",
            "/api/v1/users".into(),
            Some(json!({"name": "walk", "password": PASSWORD})),
            &admin,
            NEW,
        ),
        (
            Method::POST,
            "/api/v1/users",
            "/api/v1/users".into(),
            Some(json!({"name": "walk", "password": PASSWORD})),
            &admin,
            StatusCode::CONFLICT,
        ),
        (
            Method::PUT,
            "/api/v1/users/{name}/password",
            "/api/v1/users/walk/password".into(),
            Some(pw.clone()),
            &admin,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::PUT,
            "/api/v1/users/{name}/password",
            "/api/v1/users/walk/password".into(),
            Some(pw),
            &reader,
            FORBID,
        ),
        (
            Method::GET,
            "/api/v1/robots",
            "/api/v1/robots".into(),
            None,
            &admin,
            OK,
        ),
        (
            Method::POST,
            "/api/v1/robots",
            "/api/v1/robots".into(),
            Some(json!({"name": "walkbot", "expires_in": "1d"})),
            &admin,
            NEW,
        ),
        (
            Method::POST,
            "/api/v1/robots/{name}/revoke",
            "/api/v1/robots/walkbot/revoke".into(),
            None,
            &admin,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::GET,
            "/api/v1/roles",
            "/api/v1/roles".into(),
            None,
            &admin,
            OK,
        ),
        (
            Method::POST,
            "/api/v1/roles",
            "/api/v1/roles".into(),
            Some(json!({"subject": "user:walk", "pattern": "walk/**", "role": "read"})),
            &admin,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::POST,
            "/api/v1/roles",
            "/api/v1/roles".into(),
            Some(json!({"subject": "user:walk", "pattern": "walk/**", "role": "owner"})),
            &admin,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            "/api/v1/roles",
            "/api/v1/roles?subject=user:walk&pattern=walk/**".into(),
            None,
            &admin,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::DELETE,
            "/api/v1/users/{name}",
            "/api/v1/users/walk".into(),
            None,
            &reader,
            FORBID,
        ),
        (
            Method::DELETE,
            "/api/v1/users/{name}",
            "/api/v1/users/walk".into(),
            None,
            &admin,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::DELETE,
            "/api/v1/users/{name}",
            "/api/v1/users/walk".into(),
            None,
            &admin,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/v1/token-keys/rotate",
            "/api/v1/token-keys/rotate".into(),
            None,
            &reader,
            FORBID,
        ),
        (
            Method::POST,
            "/api/v1/token-keys/rotate",
            "/api/v1/token-keys/rotate".into(),
            None,
            &admin,
            OK,
        ),
    ];
    let mut called = std::collections::BTreeSet::new();
    for (method, path, url, body, who, want) in calls {
        let (st, v) = api_as(s, who, method.clone(), &url, body).await;
        assert_eq!(st, want, "{method} {url} as {who:?}: {v}");
        let op = &doc["paths"][path][method.as_str().to_lowercase()];
        assert!(
            op["responses"][st.as_str()].is_object(),
            "{method} {path} answered {st}, which the OpenAPI document does not list: {op}"
        );
        called.insert((method.as_str().to_lowercase(), path));
    }
    let mut documented = std::collections::BTreeSet::new();
    for path in account_paths {
        for method in doc["paths"][path]
            .as_object()
            .unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"))
            .keys()
        {
            documented.insert((method.clone(), path));
        }
    }
    assert_eq!(
        called, documented,
        "every documented account operation is tried"
    );

    let rfc3339 = |v: &Value| {
        let t = v.as_str().unwrap_or_else(|| panic!("a time: {v}"));
        humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    };
    let (_, users) = api_as(s, &admin, Method::GET, "/api/v1/users", None).await;
    let reader_row = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "reader")
        .expect("reader listed");
    rfc3339(&reader_row["created_at"]);
    rfc3339(&reader_row["last_login_at"]);
    let (_, robots) = api_as(s, &admin, Method::GET, "/api/v1/robots", None).await;
    let state = |name: &str| {
        let r = robots["robots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {robots}"))
            .clone();
        rfc3339(&r["created_at"]);
        r
    };
    assert_eq!(state("ci")["state"], "active");
    assert_eq!(state("old")["state"], "revoked");
    rfc3339(&state("old")["revoked_at"]);
    let walkbot = state("walkbot");
    assert_eq!(walkbot["state"], "revoked");
    rfc3339(&walkbot["expires_at"]);
    // A day later on the registry's clock, an unrevoked robot with a day to live has expired.
    let (st, v) = api_as(
        s,
        &admin,
        Method::POST,
        "/api/v1/robots",
        Some(json!({"name": "shortlived", "expires_in": "1d"})),
    )
    .await;
    assert_eq!(st, NEW, "{v}");
    assert_eq!(v["state"], "active");
    f.clock.advance(86_400_000 + 60_000);
    let (_, robots) = api_as(s, &admin, Method::GET, "/api/v1/robots", None).await;
    let shortlived = robots["robots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "shortlived")
        .unwrap()
        .clone();
    assert_eq!(shortlived["state"], "expired", "{robots}");
}

/// The callers of the management API matrix, in the order of its columns: anonymous, `reader`
/// (read on team/**), `dev` (write on team/**), `lead` (admin on team/**), `ops` (admin on
/// `**`), the administrator, and robot `ci` (write on team/app).
const CALLERS: usize = 7;

/// What a caller of the matrix may not see in any answer: the repositories it may not read,
/// and (unless `registry_wide`) entries that name no repository.
struct Seen {
    name: &'static str,
    who: Who,
    unreadable: &'static [&'static str],
    registry_wide: bool,
}

/// What is set up, as the administrator, before each call of a matrix row; its answer (a batch,
/// a digest, a name) replaces `{x}` in the row's URL and body.
#[derive(Clone, Copy, Debug)]
enum Prep {
    Nothing,
    /// team/app:doomed, the image of team/app:v1.
    DoomedTag,
    /// team/app:doomed, deleted.
    DeletedTag,
    /// team/app:doomed deleted with `tags/delete`: its batch.
    Batch,
    /// An image of its own in team/app: its digest.
    OwnManifest,
    /// team/doomed with an image.
    DoomedRepository,
    /// team/gone, deleted.
    DeletedRepository,
    /// No policy `walk`.
    NoPolicy,
    /// Policy `walk` applied.
    Policy,
    /// No user `walk`.
    NoUser,
    /// User `walk`.
    User,
    /// A name no robot has had: the name.
    FreshName,
    /// A fresh robot: its name.
    Robot,
    /// No binding of `user:reader` on walk/**.
    NoRole,
    /// `user:reader` reads walk/**.
    Role,
}

const WALK_POLICY: &str =
    r#"{"name": "walk", "repositories": ["team/**"], "tags": {"protected": ["release-*"]}}"#;

async fn admin_call(s: &TestServer, method: Method, path: &str, body: Option<&str>) -> Value {
    let mut req = client()
        .request(method.clone(), s.url(path))
        .basic_auth(ADMIN.0, Some(ADMIN.1));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Sets up `prep` as the administrator; what replaces `{x}`.
async fn prepare(f: &Fixture, prep: Prep, robots: &mut u32) -> String {
    let s = &f.s;
    let admin = client_as(ADMIN.0, ADMIN.1);
    let admin_status = |method: Method, path: String| {
        let req = client()
            .request(method, s.url(&path))
            .basic_auth(ADMIN.0, Some(ADMIN.1));
        async move { req.send().await.unwrap().status() }
    };
    let doomed = async || {
        let r = put_manifest(
            &admin,
            &s.base,
            "team/app",
            "doomed",
            OCI_MANIFEST,
            &f.manifest,
        )
        .await;
        assert_eq!(r.status(), NEW);
    };
    match prep {
        Prep::Nothing => String::new(),
        Prep::DoomedTag => {
            doomed().await;
            String::new()
        }
        Prep::DeletedTag => {
            doomed().await;
            let path = "/api/v1/repositories/team/app/-/tags/doomed";
            admin_call(s, Method::DELETE, path, None).await;
            String::new()
        }
        Prep::Batch => {
            doomed().await;
            let path = "/api/v1/repositories/team/app/-/tags/delete";
            let v = admin_call(s, Method::POST, path, Some(r#"{"tags": ["doomed"]}"#)).await;
            v["batch"].as_i64().expect("a batch").to_string()
        }
        Prep::OwnManifest => {
            push_image_bytes(&admin, &s.base, "team/app", "own", 9)
                .await
                .0
        }
        Prep::DoomedRepository => {
            push_image_bytes(&admin, &s.base, "team/doomed", "v1", 5).await;
            String::new()
        }
        Prep::DeletedRepository => {
            push_image_bytes(&admin, &s.base, "team/gone", "v1", 6).await;
            let path = "/api/v1/repositories/team/gone?confirm=team/gone";
            admin_call(s, Method::DELETE, path, None).await;
            String::new()
        }
        Prep::NoPolicy => {
            admin_status(Method::DELETE, "/api/v1/policies/walk".into()).await;
            String::new()
        }
        Prep::Policy => {
            admin_call(s, Method::PUT, "/api/v1/policies/walk", Some(WALK_POLICY)).await;
            String::new()
        }
        Prep::NoUser => {
            admin_status(Method::DELETE, "/api/v1/users/walk".into()).await;
            String::new()
        }
        Prep::User => {
            let st = client()
                .post(s.url("/api/v1/users"))
                .basic_auth(ADMIN.0, Some(ADMIN.1))
                .json(&json!({"name": "walk", "password": PASSWORD}))
                .send()
                .await
                .unwrap()
                .status();
            assert!(st == NEW || st == StatusCode::CONFLICT, "{st}");
            String::new()
        }
        Prep::FreshName => {
            *robots += 1;
            format!("walk{robots}")
        }
        Prep::Robot => {
            *robots += 1;
            let name = format!("walk{robots}");
            let body = json!({"name": name}).to_string();
            admin_call(s, Method::POST, "/api/v1/robots", Some(&body)).await;
            name
        }
        Prep::NoRole => {
            let path = "/api/v1/roles?subject=user:reader&pattern=walk/**";
            admin_status(Method::DELETE, path.into()).await;
            String::new()
        }
        Prep::Role => {
            let body = r#"{"subject": "user:reader", "pattern": "walk/**", "role": "read"}"#;
            admin_call(s, Method::POST, "/api/v1/roles", Some(body)).await;
            String::new()
        }
    }
}

/// Waits until no garbage collection or policy run is running, so the next start is not
/// refused for another's.
async fn settle(s: &TestServer) {
    common::wait_until("the runs the matrix started to finish", || async move {
        let c = client_as(ADMIN.0, ADMIN.1);
        let gc = c.get(s.url("/api/v1/gc/runs/active")).send().await.unwrap();
        let policy: Value = c
            .get(s.url("/api/v1/policy-runs?limit=1"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let idle = gc.status() == StatusCode::NOT_FOUND
            && policy["runs"][0]["state"].as_str() != Some("running");
        idle.then_some(())
    })
    .await;
}

/// Every object in `v` that has a `repository` key whose value is null: an entry that names no
/// repository.
fn registry_wide_entries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.get("repository") == Some(&Value::Null) {
                out.push(v.to_string());
            }
            m.values().for_each(|x| registry_wide_entries(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| registry_wide_entries(x, out)),
        _ => {}
    }
}

/// Every operation of the management API, as the OpenAPI document the server serves lists
/// them, tried by each kind of caller: each answer's status as its roles allow, and no
/// successful answer naming a repository the caller may not read or (for callers below
/// registry-wide admin) holding an entry that names no repository. A documented operation
/// without a row here fails the test.
#[tokio::test]
async fn every_management_api_operation_answers_each_caller_as_its_roles_allow() {
    let f = fixture().await;
    let s = &f.s;
    let admin = client_as(ADMIN.0, ADMIN.1);
    let a = |method: Method, path: &'static str, body: Option<&'static str>| {
        admin_call(s, method, path, body)
    };
    // `lead` administers team/**; secret/app is readable only registry-wide.
    a(
        Method::POST,
        "/api/v1/users",
        Some(r#"{"name": "lead", "password": "a-long-password"}"#),
    )
    .await;
    a(
        Method::POST,
        "/api/v1/roles",
        Some(r#"{"subject": "user:lead", "pattern": "team/**", "role": "admin"}"#),
    )
    .await;
    let (other_digest, _) = push_image_bytes(&admin, &s.base, "team/other", "v1", 2).await;
    // What the listings are about, in every repository: tags a policy run deletes (the
    // restore bin, the run's items, the activity log), untagged manifests a collection would
    // delete (its items).
    for (repo, seed) in [("team/app", 21), ("team/other", 22), ("secret/app", 23)] {
        push_image_bytes(&admin, &s.base, repo, "junk-1", seed).await;
        let config = format!(r#"{{"untagged":{seed}}}"#).into_bytes();
        let cd = common::push_blob(&admin, &s.base, repo, &config).await;
        let untagged = common::image_manifest((&cd, config.len()), &[]);
        let digest = common::sha256(&untagged);
        let r = put_manifest(&admin, &s.base, repo, &digest, OCI_MANIFEST, &untagged).await;
        assert_eq!(r.status(), NEW);
    }
    // `keep` is only previewed (it would delete every unprotected tag but the two latest);
    // `junk` runs once, deleting junk-1 everywhere.
    a(
        Method::PUT,
        "/api/v1/policies/keep",
        Some(
            r#"{"name": "keep", "repositories": ["**"], "tags": {"protected": ["release-*"]},
                "delete": {"older_than": "0s"}, "keep": {"latest_pushed": 2}}"#,
        ),
    )
    .await;
    a(
        Method::PUT,
        "/api/v1/policies/junk",
        Some(
            r#"{"name": "junk", "repositories": ["**"], "tags": {"include": ["junk-*"]},
                "delete": {"older_than": "0s"}}"#,
        ),
    )
    .await;
    let run = a(Method::POST, "/api/v1/policies/junk/runs", None).await;
    let policy_run = run["id"].as_i64().unwrap();
    settle(s).await;
    // Past the untagged manifests' lease, a dry run lists them.
    f.clock.advance(2 * 3_600_000);
    let gc = a(
        Method::POST,
        "/api/v1/gc/runs",
        Some(r#"{"dry_run": true, "include_untagged_manifests": true, "grace": "0s"}"#),
    )
    .await;
    let gc_run = gc["id"].as_i64().unwrap();
    settle(s).await;

    let seen = [
        Seen {
            name: "anonymous",
            who: Who::Anonymous,
            unreadable: &["team/app", "team/other", "secret/app"],
            registry_wide: false,
        },
        Seen {
            name: "reader",
            who: Who::user("reader"),
            unreadable: &["secret/app"],
            registry_wide: false,
        },
        Seen {
            name: "dev (write)",
            who: Who::user("dev"),
            unreadable: &["secret/app"],
            registry_wide: false,
        },
        Seen {
            name: "lead (admin of team/**)",
            who: Who::user("lead"),
            unreadable: &["secret/app"],
            registry_wide: false,
        },
        Seen {
            name: "ops (admin of **)",
            who: Who::user("ops"),
            unreadable: &[],
            registry_wide: true,
        },
        Seen {
            name: "administrator",
            who: Who::Basic(ADMIN.0.into(), ADMIN.1.into()),
            unreadable: &[],
            registry_wide: true,
        },
        Seen {
            name: "robot ci",
            who: Who::Basic("robot$ci".into(), f.ci_secret.clone()),
            unreadable: &["team/other", "secret/app"],
            registry_wide: false,
        },
    ];
    assert_eq!(seen.len(), CALLERS);

    const NO: StatusCode = StatusCode::NO_CONTENT;
    const GONE: StatusCode = StatusCode::NOT_FOUND;
    const BUSY: StatusCode = StatusCode::CONFLICT;
    let logged_in = |ok| [UNAUTH, ok, ok, ok, ok, ok, ok];
    // Reads of team/other, which robot ci may not read.
    let read_other = [UNAUTH, OK, OK, OK, OK, OK, FORBID];
    let write_app = |ok| [UNAUTH, FORBID, ok, ok, ok, ok, ok];
    let admin_team = |ok| [UNAUTH, FORBID, FORBID, ok, ok, ok, FORBID];
    let registry_wide = |ok| [UNAUTH, FORBID, FORBID, FORBID, ok, ok, FORBID];
    let administrator = |ok| [UNAUTH, FORBID, FORBID, FORBID, FORBID, ok, FORBID];
    let app = "/api/v1/repositories/team/app";
    let other = "/api/v1/repositories/team/other";
    let runs = format!("/api/v1/gc/runs/{gc_run}");
    let policy_runs = format!("/api/v1/policy-runs/{policy_run}");
    // Method, documented path, URL (`{x}`: what the preparation answered), body, preparation,
    // the status each caller gets, and whether an administrator's answer names every
    // repository (so that what the others' leave out is there to leave out).
    type Row = (
        Method,
        &'static str,
        String,
        Option<&'static str>,
        Prep,
        [StatusCode; CALLERS],
        bool,
    );
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        (Method::GET, "/api/v1/openapi.json", "/api/v1/openapi.json".into(), None, Prep::Nothing, [OK; CALLERS], false),
        (Method::GET, "/api/v1/repositories", "/api/v1/repositories".into(), None, Prep::Nothing, logged_in(OK), true),
        (Method::GET, "/api/v1/repositories/{name}", other.into(), None, Prep::Nothing, read_other, false),
        (Method::DELETE, "/api/v1/repositories/{name}", "/api/v1/repositories/team/doomed?confirm=team/doomed".into(), None, Prep::DoomedRepository, admin_team(OK), false),
        (Method::POST, "/api/v1/repositories/{name}/-/restore", "/api/v1/repositories/team/gone/-/restore".into(), None, Prep::DeletedRepository, admin_team(OK), false),
        (Method::GET, "/api/v1/repositories/{name}/-/restorable", format!("{other}/-/restorable"), None, Prep::Nothing, read_other, false),
        (Method::GET, "/api/v1/restorable", "/api/v1/restorable".into(), None, Prep::Nothing, logged_in(OK), true),
        (Method::POST, "/api/v1/batches/{id}/restore", "/api/v1/batches/{x}/restore".into(), None, Prep::Batch, write_app(OK), false),
        (Method::GET, "/api/v1/repositories/{name}/-/tags", format!("{other}/-/tags"), None, Prep::Nothing, read_other, false),
        (Method::GET, "/api/v1/repositories/{name}/-/tags/{tag}", format!("{other}/-/tags/v1"), None, Prep::Nothing, read_other, false),
        (Method::DELETE, "/api/v1/repositories/{name}/-/tags/{tag}", format!("{app}/-/tags/doomed"), None, Prep::DoomedTag, write_app(OK), false),
        (Method::POST, "/api/v1/repositories/{name}/-/tags/delete", format!("{app}/-/tags/delete"), Some(r#"{"tags": ["doomed"]}"#), Prep::DoomedTag, write_app(OK), false),
        (Method::GET, "/api/v1/repositories/{name}/-/tags/{tag}/history", format!("{other}/-/tags/v1/history"), None, Prep::Nothing, read_other, false),
        (Method::GET, "/api/v1/repositories/{name}/-/history", format!("{other}/-/history"), None, Prep::Nothing, read_other, false),
        (Method::POST, "/api/v1/repositories/{name}/-/tags/{tag}/restore", format!("{app}/-/tags/doomed/restore"), None, Prep::DeletedTag, write_app(OK), false),
        (Method::POST, "/api/v1/repositories/{name}/-/bulk-delete", format!("{app}/-/bulk-delete"), Some(r#"{"delete_regex": "^doomed$"}"#), Prep::DoomedTag, write_app(OK), false),
        (Method::GET, "/api/v1/repositories/{name}/-/manifests", format!("{other}/-/manifests"), None, Prep::Nothing, read_other, false),
        (Method::GET, "/api/v1/repositories/{name}/-/manifests/{digest}", format!("{other}/-/manifests/{other_digest}"), None, Prep::Nothing, read_other, false),
        (Method::DELETE, "/api/v1/repositories/{name}/-/manifests/{digest}", format!("{app}/-/manifests/{{x}}"), None, Prep::OwnManifest, admin_team(OK), false),
        (Method::GET, "/api/v1/repositories/{name}/-/usage", format!("{other}/-/usage"), None, Prep::Nothing, read_other, false),
        (Method::GET, "/api/v1/usage", "/api/v1/usage".into(), None, Prep::Nothing, logged_in(OK), true),
        (Method::GET, "/api/v1/events", "/api/v1/events?limit=1000".into(), None, Prep::Nothing, logged_in(OK), true),
        (Method::POST, "/api/v1/gc/runs", "/api/v1/gc/runs".into(), Some(r#"{"dry_run": true}"#), Prep::Nothing, registry_wide(ACC), false),
        (Method::GET, "/api/v1/gc/runs", "/api/v1/gc/runs".into(), None, Prep::Nothing, logged_in(OK), false),
        (Method::GET, "/api/v1/gc/runs/active", "/api/v1/gc/runs/active".into(), None, Prep::Nothing, logged_in(GONE), false),
        (Method::GET, "/api/v1/gc/runs/{id}", runs.clone(), None, Prep::Nothing, logged_in(OK), false),
        (Method::GET, "/api/v1/gc/runs/{id}/items", format!("{runs}/items"), None, Prep::Nothing, logged_in(OK), true),
        (Method::POST, "/api/v1/gc/runs/{id}/cancel", format!("{runs}/cancel"), None, Prep::Nothing, registry_wide(BUSY), false),
        (Method::GET, "/api/v1/policies", "/api/v1/policies".into(), None, Prep::Nothing, logged_in(OK), false),
        (Method::GET, "/api/v1/policies/{name}", "/api/v1/policies/keep".into(), None, Prep::Nothing, logged_in(OK), false),
        (Method::PUT, "/api/v1/policies/{name}", "/api/v1/policies/walk".into(), Some(WALK_POLICY), Prep::NoPolicy, registry_wide(NEW), false),
        (Method::DELETE, "/api/v1/policies/{name}", "/api/v1/policies/walk".into(), None, Prep::Policy, registry_wide(NO), false),
        (Method::POST, "/api/v1/policies/{name}/preview", "/api/v1/policies/keep/preview".into(), None, Prep::Nothing, logged_in(OK), true),
        (Method::POST, "/api/v1/policies/preview", "/api/v1/policies/preview".into(), Some(r#"{"name": "draft", "repositories": ["**"], "delete": {"older_than": "0s"}}"#), Prep::Nothing, logged_in(OK), true),
        (Method::POST, "/api/v1/policies/{name}/runs", "/api/v1/policies/walk/runs".into(), None, Prep::Policy, registry_wide(ACC), false),
        (Method::GET, "/api/v1/policies/{name}/runs", "/api/v1/policies/junk/runs".into(), None, Prep::Nothing, logged_in(OK), false),
        (Method::GET, "/api/v1/policy-runs", "/api/v1/policy-runs".into(), None, Prep::Nothing, logged_in(OK), false),
        (Method::GET, "/api/v1/policy-runs/{id}", policy_runs.clone(), None, Prep::Nothing, logged_in(OK), true),
        (Method::POST, "/api/v1/policy-runs/{id}/cancel", format!("{policy_runs}/cancel"), None, Prep::Nothing, registry_wide(BUSY), false),
        (Method::GET, "/api/v1/whoami", "/api/v1/whoami".into(), None, Prep::Nothing, logged_in(OK), false),
        (Method::GET, "/api/v1/users", "/api/v1/users".into(), None, Prep::Nothing, administrator(OK), false),
        (Method::POST, "/api/v1/users", "/api/v1/users".into(), Some(r#"{"name": "walk", "password": "a-long-password"}"#), Prep::NoUser, administrator(NEW), false),
        (Method::DELETE, "/api/v1/users/{name}", "/api/v1/users/walk".into(), None, Prep::User, administrator(NO), false),
        (Method::PUT, "/api/v1/users/{name}/password", "/api/v1/users/walk/password".into(), Some(r#"{"password": "another-long-password"}"#), Prep::User, administrator(NO), false),
        (Method::GET, "/api/v1/robots", "/api/v1/robots".into(), None, Prep::Nothing, administrator(OK), false),
        (Method::POST, "/api/v1/robots", "/api/v1/robots".into(), Some(r#"{"name": "{x}"}"#), Prep::FreshName, administrator(NEW), false),
        (Method::POST, "/api/v1/robots/{name}/revoke", "/api/v1/robots/{x}/revoke".into(), None, Prep::Robot, administrator(NO), false),
        (Method::GET, "/api/v1/roles", "/api/v1/roles".into(), None, Prep::Nothing, administrator(OK), false),
        (Method::POST, "/api/v1/roles", "/api/v1/roles".into(), Some(r#"{"subject": "user:reader", "pattern": "walk/**", "role": "read"}"#), Prep::NoRole, administrator(NO), false),
        (Method::DELETE, "/api/v1/roles", "/api/v1/roles?subject=user:reader&pattern=walk/**".into(), None, Prep::Role, administrator(NO), false),
        (Method::POST, "/api/v1/token-keys/rotate", "/api/v1/token-keys/rotate".into(), None, Prep::Nothing, administrator(OK), false),
    ];

    // Every documented operation has a row, and every row is documented.
    let doc = s.api_ok("/api/v1/openapi.json").await;
    let documented: std::collections::BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "put", "post", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let covered: std::collections::BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.0.as_str().to_string(), r.1.to_string()))
        .collect();
    assert_eq!(
        documented.difference(&covered).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented operations without a row in the matrix"
    );
    assert_eq!(
        covered.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "rows for operations the document does not list"
    );
    assert!(documented.len() >= 50, "{documented:?}");

    let mut wrong = Vec::new();
    let mut robots = 0;
    for (method, path, url, body, prep, expected, names_all) in &rows {
        for (caller, want) in seen.iter().zip(expected) {
            let x = prepare(&f, *prep, &mut robots).await;
            let url = url.replace("{x}", &x);
            let mut req = caller
                .who
                .apply(client().request(method.clone(), s.url(&url)));
            if let Some(b) = body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.replace("{x}", &x));
            }
            let resp = req.send().await.unwrap();
            let got = resp.status();
            let text = resp.text().await.unwrap();
            settle(s).await;
            let method_key = method.as_str().to_lowercase();
            if doc["paths"][*path][&method_key]["responses"][got.as_str()].is_null() {
                wrong.push(format!(
                    "{method} {path} as {}: {got}, which its OpenAPI document does not list",
                    caller.name
                ));
            }
            if got != *want {
                wrong.push(format!(
                    "{method} {path} ({url}) as {}: {got}, expected {want}: {text}",
                    caller.name
                ));
                continue;
            }
            if !got.is_success() {
                continue;
            }
            for name in caller.unreadable {
                if text.contains(name) {
                    wrong.push(format!(
                        "{method} {url} as {} names {name}: {text}",
                        caller.name
                    ));
                }
            }
            if !caller.registry_wide {
                let mut found = Vec::new();
                registry_wide_entries(
                    &serde_json::from_str(&text).unwrap_or(Value::Null),
                    &mut found,
                );
                if !found.is_empty() {
                    wrong.push(format!(
                        "{method} {url} as {} shows entries of no repository: {found:?}",
                        caller.name
                    ));
                }
            }
            if *names_all && caller.registry_wide {
                for name in ["team/app", "team/other", "secret/app"] {
                    if !text.contains(name) {
                        wrong.push(format!("{method} {url} as {}: {name} is missing, so the others' answers test nothing: {text}", caller.name));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Asking for a repository one may not read is refused, whether or not it exists.
    let reader = Who::user("reader");
    for path in [
        "/api/v1/events?repository=secret/app",
        "/api/v1/events?repository=secret/never",
        "/api/v1/restorable?repository=secret/app",
    ] {
        let (st, v) = api_as(s, &reader, Method::GET, path, None).await;
        assert_eq!(st, FORBID, "{path}: {v}");
    }
    // The reader's pages of the activity log are full and their cursors skip nothing.
    let (_, all) = api_as(s, &reader, Method::GET, "/api/v1/events?limit=1000", None).await;
    let all: Vec<i64> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let mut paged = Vec::new();
    let mut path = "/api/v1/events?limit=7".to_string();
    loop {
        let (st, v) = api_as(s, &reader, Method::GET, &path, None).await;
        assert_eq!(st, OK, "{v}");
        let page = v["events"].as_array().unwrap();
        paged.extend(page.iter().map(|e| e["id"].as_i64().unwrap()));
        match v["next"].as_i64() {
            Some(next) => {
                assert_eq!(page.len(), 7, "a page before the last is full: {v}");
                path = format!("/api/v1/events?limit=7&before={next}");
            }
            None => break,
        }
    }
    assert!(all.len() > 7, "{all:?}");
    assert_eq!(paged, all);
}
