//! Real clients logging in: skopeo (the Docker token flow, as users and as a robot) and
//! oras-py (`login`, then push and pull), against a registry with access control on. Each
//! client is used unmodified; what it may do follows the roles, and what it may not do fails
//! with the registry's refusal.

mod common;

use std::path::Path;
use std::process::Output;

use common::accounts::{ADMIN, PASSWORD, admin_post, team_registry};
use common::layout::{Image, Layer, OciLayout};
use common::{OCI_MANIFEST, TestServer, client, oras_python, skopeo};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn exec(program: &Path, args: &[&str], cwd: Option<&Path>) -> Output {
    common::exec_tool(program, args, cwd).await
}

fn describe(out: &Output) -> String {
    common::describe_run(Path::new("client"), &[], out)
}

/// A registry with access control on: `dev` writes team/**, `reader` reads it, robot `ci`
/// writes team/app. Returns the robot's secret.
async fn registry() -> (TestServer, String) {
    let s = team_registry().await;
    let robot = admin_post(
        &s,
        "/api/v1/robots",
        json!({"name": "ci", "roles": [{"pattern": "team/app", "role": "write"}]}),
    )
    .await;
    (s, robot["secret"].as_str().unwrap().to_string())
}

fn image(seed: u64) -> Image {
    Image::new(
        "amd64",
        &[
            Layer::seeded("auth-base", seed),
            Layer::seeded("auth-app", seed + 1),
        ],
        &["/bin/sh"],
    )
}

async fn skopeo_copy(creds_flag: &str, creds: Option<&str>, src: &str, dest: &str) -> Output {
    let mut args = vec![
        "--insecure-policy",
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
    ];
    let flag;
    if let Some(c) = creds {
        flag = format!("{creds_flag}={c}");
        args.push(&flag);
    }
    args.extend([src, dest]);
    exec(&skopeo(), &args, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_logs_in_as_users_and_robots_and_gets_what_their_roles_allow() {
    let (s, secret) = registry().await;
    let tmp = tempfile::tempdir().unwrap();
    let img = image(40);
    OciLayout::create(&tmp.path().join("src")).add_image("v1", &img);
    let src = format!("oci:{}:v1", tmp.path().join("src").display());
    let dest = format!("docker://{}/team/app:v1", s.host());

    // A writer pushes through the token flow.
    let dev = format!("dev:{PASSWORD}");
    let out = skopeo_copy("--dest-creds", Some(&dev), &src, &dest).await;
    assert!(out.status.success(), "dev push:\n{}", describe(&out));
    let resp = client()
        .get(s.url("/v2/team/app/manifests/v1"))
        .basic_auth("reader", Some(PASSWORD))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(common::sha256(&resp.bytes().await.unwrap()), img.digest());

    // A reader pulls, and may not push.
    let reader = format!("reader:{PASSWORD}");
    let pulled = format!("oci:{}:v1", tmp.path().join("pulled").display());
    let out = skopeo_copy("--src-creds", Some(&reader), &dest, &pulled).await;
    assert!(out.status.success(), "reader pull:\n{}", describe(&out));
    assert_eq!(
        OciLayout::open(&tmp.path().join("pulled")).tagged("v1"),
        img.descriptor()
    );
    let other = format!("docker://{}/team/app:v2", s.host());
    let out = skopeo_copy("--dest-creds", Some(&reader), &src, &other).await;
    assert!(
        !out.status.success(),
        "a reader must not push:\n{}",
        describe(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("denied"),
        "{err}"
    );

    // Anonymous callers get nothing; a wrong password neither.
    let out = skopeo_copy("--src-creds", None, &dest, &pulled).await;
    assert!(!out.status.success(), "anonymous pull:\n{}", describe(&out));
    let out = skopeo_copy("--src-creds", Some("dev:wrong-password"), &dest, &pulled).await;
    assert!(!out.status.success(), "wrong password:\n{}", describe(&out));

    // The robot pushes where it may, and nowhere else.
    let robot = format!("robot$ci:{secret}");
    let out = skopeo_copy("--dest-creds", Some(&robot), &src, &other).await;
    assert!(out.status.success(), "robot push:\n{}", describe(&out));
    let elsewhere = format!("docker://{}/team/web:v1", s.host());
    let out = skopeo_copy("--dest-creds", Some(&robot), &src, &elsewhere).await;
    assert!(
        !out.status.success(),
        "robot push elsewhere:\n{}",
        describe(&out)
    );

    // The activity log names each pusher.
    let resp = client()
        .get(s.url("/api/v1/events?action=tag.push"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    let actors: Vec<(&str, &str)> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(actors, [("ci", "v2"), ("dev", "v1")], "{v}");
}

const ORAS_SCRIPT: &str = r#"
import json
import sys

import oras.client

reg, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
c = oras.client.OrasClient(hostname=reg, insecure=True)
c.login(username=user, password=password)
out = {}
r = c.push(target=f"{reg}/team/artifact:v1", files=["a.txt:text/plain"])
out["push_status"] = r.status_code
out["digest"] = r.headers.get("Docker-Content-Digest")
out["pulled"] = [p.split("/")[-1] for p in c.pull(target=f"{reg}/team/artifact:v1", outdir="out")]
try:
    c.push(target=f"{reg}/other/artifact:v1", files=["a.txt:text/plain"])
    out["other"] = "pushed"
except Exception as e:
    out["other"] = type(e).__name__ + ": " + str(e)[:200]
print("RESULT " + json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oras_py_logs_in_then_pushes_and_pulls_where_its_role_allows() {
    let python = oras_python();
    let (s, _) = registry().await;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.txt"), b"signed off\n").unwrap();
    let script = tmp.path().join("oras_login.py");
    std::fs::write(&script, ORAS_SCRIPT).unwrap();
    let host = s.host();
    let args = [script.to_str().unwrap(), host.as_str(), "dev", PASSWORD];
    let out = exec(&python, &args, Some(tmp.path())).await;
    assert!(out.status.success(), "oras-py:\n{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line:\n{}", describe(&out)));
    let r: Value = serde_json::from_str(line).unwrap();
    assert_eq!(r["push_status"], 201, "{r}");
    assert_eq!(r["pulled"], json!(["a.txt"]), "{r}");
    assert_ne!(
        r["other"], "pushed",
        "dev may not push outside team/**: {r}"
    );
    let resp = client()
        .get(s.url("/v2/team/artifact/manifests/v1"))
        .basic_auth("dev", Some(PASSWORD))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        Some(common::sha256(&resp.bytes().await.unwrap()).as_str()),
        r["digest"].as_str()
    );
}
