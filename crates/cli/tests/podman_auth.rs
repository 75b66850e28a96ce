//! podman logging in, unmodified, against a registry with access control on: `podman login`
//! (password on stdin, an auth file of the test's own), then a writer's push and a reader's
//! pull through the Docker token flow, and the reader's push refused. What podman reports is
//! checked against what the registry serves. A missing podman fails the test; it never skips.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::accounts::{ADMIN, PASSWORD, team_registry};
use common::layout::{Image, Layer, OciLayout};
use common::{DOCKER_MANIFEST, OCI_MANIFEST, TestServer, client, header, require_tool};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

/// Generous: a client that hangs is a failure, not a stuck suite.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// Rootful podman with its storage, runtime state, temporary files and credentials under one
/// directory of the test (clients.md, section 5), so nothing touches the machine's own.
struct Podman {
    bin: PathBuf,
    dir: PathBuf,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        std::fs::create_dir_all(dir).unwrap();
        let podman = Podman {
            bin: require_tool("SHIPSHAPE_TEST_PODMAN", "podman"),
            dir: dir.to_path_buf(),
        };
        // podman refuses to start when REGISTRY_AUTH_FILE names a file that does not exist.
        std::fs::write(podman.authfile(), r#"{"auths":{}}"#).unwrap();
        podman
    }

    /// The credentials `podman login` writes and every later command reads.
    fn authfile(&self) -> PathBuf {
        self.dir.join("auth.json")
    }

    /// Runs `podman <args>` on this storage, with `stdin` as its standard input.
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let path = |name: &str| self.dir.join(name).to_str().unwrap().to_string();
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(["--root", &path("root"), "--runroot", &path("runroot")])
            .args(["--tmpdir", &path("tmp"), "--storage-driver", "vfs"])
            .args(["--events-backend", "none"])
            .args(args)
            // Every command that looks for credentials finds this file and no other.
            .env("REGISTRY_AUTH_FILE", self.authfile())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(text.as_bytes()).await.unwrap();
            drop(pipe);
        }
        tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("podman {args:?} timed out"))
            .unwrap()
    }

    async fn run_ok(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let out = self.run(args, stdin).await;
        assert!(out.status.success(), "{}", describe(args, &out));
        out
    }

    /// `podman login` with the password on stdin, as a script would.
    async fn login(&self, host: &str, user: &str, password: &str) -> Output {
        let authfile = self.authfile();
        let args = [
            "login",
            "--tls-verify=false",
            "--authfile",
            authfile.to_str().unwrap(),
            "-u",
            user,
            "--password-stdin",
            host,
        ];
        self.run(&args, Some(&format!("{password}\n"))).await
    }

    /// The digest of a local image's manifest as podman knows it.
    async fn digest_of(&self, image: &str) -> String {
        let out = self
            .run_ok(
                &["image", "inspect", "--format", "{{.Digest}}", image],
                None,
            )
            .await;
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "podman {}\nexit: {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What the registry serves for `repo:reference` to the administrator: the status, the
/// `Docker-Content-Digest`, and the digest of the body.
async fn served(s: &TestServer, repo: &str, reference: &str) -> (StatusCode, String, String) {
    let resp = client()
        .get(s.url(&format!("/v2/{repo}/manifests/{reference}")))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .header("accept", OCI_MANIFEST)
        .header("accept", DOCKER_MANIFEST)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let digest = header(&resp, "docker-content-digest")
        .unwrap_or_default()
        .to_string();
    let body = resp.bytes().await.unwrap();
    (status, digest, common::sha256(&body))
}

/// `image` as an OCI archive (a tar of an OCI layout) under `dir`. Not the `oci:` transport:
/// podman names an image taken from a layout after the layout's path, which a temporary
/// directory's (`/tmp/.tmpAbC…`) makes an invalid name; from an archive it takes the layout's
/// tag.
fn oci_archive(dir: &Path, image: &Image) -> PathBuf {
    let layout = dir.join("layout");
    OciLayout::create(&layout).add_image("v1", image);
    let path = dir.join("image.tar");
    let mut tar = tar::Builder::new(std::fs::File::create(&path).unwrap());
    tar.append_dir_all(".", &layout).unwrap();
    tar.finish().unwrap();
    path
}

/// The lower-cased error podman printed, which must say why it was refused.
fn refusal(args: &[&str], out: &Output) -> String {
    assert!(!out.status.success(), "must fail:\n{}", describe(args, out));
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("denied"),
        "podman must say it was refused:\n{}",
        describe(args, out)
    );
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_logs_in_then_pushes_and_pulls_as_its_role_allows() {
    let s = team_registry().await;
    let host = s.host();
    let tmp = tempfile::tempdir().unwrap();
    let image = Image::new("amd64", &[Layer::seeded("podman-auth", 7)], &["/bin/true"]);
    let archive = oci_archive(tmp.path(), &image);
    let app = format!("{host}/team/app:v1");

    // The writer: the image goes from an OCI archive into podman's storage, then to the
    // registry after a login.
    let dev = Podman::new(&tmp.path().join("dev"));
    let out = dev
        .run_ok(
            &[
                "pull",
                "--quiet",
                &format!("oci-archive:{}", archive.display()),
            ],
            None,
        )
        .await;
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    dev.run_ok(&["tag", &id, &app], None).await;
    let out = dev.login(&host, "dev", PASSWORD).await;
    assert!(out.status.success(), "{}", describe(&["login"], &out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"),
        "{}",
        describe(&["login"], &out)
    );
    let auth: Value = serde_json::from_slice(&std::fs::read(dev.authfile()).unwrap()).unwrap();
    assert!(
        auth["auths"][&host]["auth"].is_string(),
        "the login is kept in the test's auth file: {auth}"
    );
    let digestfile = tmp.path().join("pushed-digest");
    let push = [
        "push",
        "--tls-verify=false",
        "--digestfile",
        digestfile.to_str().unwrap(),
        &app,
    ];
    dev.run_ok(&push, None).await;
    let pushed = std::fs::read_to_string(&digestfile).unwrap();
    assert!(pushed.starts_with("sha256:"), "{pushed}");
    let (status, served_digest, body_digest) = served(&s, "team/app", "v1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        served_digest, pushed,
        "the registry serves what podman pushed"
    );
    assert_eq!(body_digest, pushed);

    // The reader: logs in, pulls into an empty storage of its own, and may not push.
    let reader = Podman::new(&tmp.path().join("reader"));
    let out = reader.login(&host, "reader", PASSWORD).await;
    assert!(out.status.success(), "{}", describe(&["login"], &out));
    reader
        .run_ok(&["pull", "--tls-verify=false", &app], None)
        .await;
    assert_eq!(reader.digest_of(&app).await, pushed);
    let config = reader
        .run_ok(
            &["image", "inspect", "--format", "{{.Config.Cmd}}", &app],
            None,
        )
        .await;
    assert_eq!(
        String::from_utf8_lossy(&config.stdout).trim(),
        "[/bin/true]"
    );

    let v2 = format!("{host}/team/app:v2");
    reader.run_ok(&["tag", &app, &v2], None).await;
    let push = ["push", "--tls-verify=false", &v2];
    let out = reader.run(&push, None).await;
    // The blobs are there already (a reader may HEAD them); the manifest is what is refused.
    let err = refusal(&push, &out);
    assert!(
        err.contains("writing manifest") && err.contains("denied: reader may not push team/app"),
        "{err}"
    );
    assert_eq!(
        served(&s, "team/app", "v2").await.0,
        StatusCode::NOT_FOUND,
        "the refused push left no tag"
    );
    // To a new repository, the first upload (or mount) is what is refused.
    let fresh = format!("{host}/team/fresh:v1");
    reader.run_ok(&["tag", &app, &fresh], None).await;
    let push = ["push", "--tls-verify=false", &fresh];
    let out = reader.run(&push, None).await;
    let err = refusal(&push, &out);
    assert!(
        err.contains("denied: reader may not push team/fresh"),
        "{err}"
    );
    assert_eq!(
        served(&s, "team/fresh", "v1").await.0,
        StatusCode::NOT_FOUND
    );

    // The activity log names the one pusher.
    let resp = client()
        .get(s.url("/api/v1/events?action=tag.push"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    let pushes: Vec<(&str, &str)> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(pushes, [("dev", "v1")], "{v}");

    // A wrong password is refused at login, and nothing is kept; without a login, podman
    // pulls nothing.
    let stranger = Podman::new(&tmp.path().join("stranger"));
    let out = stranger.login(&host, "dev", "wrong-password").await;
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("invalid username/password"),
        "{}",
        describe(&["login"], &out)
    );
    assert!(
        !std::fs::read_to_string(stranger.authfile())
            .unwrap()
            .contains(&host),
        "a refused login is not kept"
    );
    let pull = ["pull", "--tls-verify=false", &app];
    let out = stranger.run(&pull, None).await;
    let err = refusal(&pull, &out);
    assert!(
        err.contains("unauthorized: authentication required to pull team/app"),
        "{err}"
    );
}
