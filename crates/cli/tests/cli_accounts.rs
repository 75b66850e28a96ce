//! The account commands as an operator uses them, the built binary against a real server with
//! access control on: `shipshape login` keeping credentials in the containers auth file beside
//! what else it holds, `user`, `robot` and `role`, credentials from the environment, and the
//! first administrator added to a stopped registry's data directory.

mod common;

use std::path::PathBuf;
use std::process::{Output, Stdio};

use base64::Engine;
use common::{TestServer, client, push_image};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

const ADMIN_PASSWORD: &str = "admin-password-1";

/// A registry whose first administrator is `admin`.
async fn with_admin() -> TestServer {
    TestServer::start_with(|c| c.first_admin = Some(("admin".into(), ADMIN_PASSWORD.into()))).await
}

/// A person's home directory, and the auth file `shipshape login` writes there
/// (`REGISTRY_AUTH_FILE`).
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Home {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn auth_file(&self) -> PathBuf {
        self.dir.path().join("containers").join("auth.json")
    }

    /// The auth file's JSON.
    fn auth(&self) -> Value {
        let text = std::fs::read_to_string(self.auth_file()).expect("the auth file");
        serde_json::from_str(&text).expect("the auth file is JSON")
    }
}

/// The `shipshape` command as a person at `home` runs it against one registry.
struct Cli<'a> {
    base: String,
    home: &'a Home,
    env: Vec<(&'static str, String)>,
}

impl<'a> Cli<'a> {
    fn new(s: &TestServer, home: &'a Home) -> Self {
        Cli {
            base: s.base.clone(),
            home,
            env: Vec::new(),
        }
    }

    /// The same person with more environment variables set.
    fn with_env(&self, env: &[(&'static str, &str)]) -> Cli<'a> {
        Cli {
            base: self.base.clone(),
            home: self.home,
            env: env.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        }
    }

    /// Runs `shipshape args` with `stdin` as its standard input (closed: not a terminal).
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipshape"));
        cmd.args(args)
            .env("SHIPSHAPE_REGISTRY", &self.base)
            .env("HOME", self.home.dir.path())
            .env("REGISTRY_AUTH_FILE", self.home.auth_file())
            .env_remove("SHIPSHAPE_USERNAME")
            .env_remove("SHIPSHAPE_PASSWORD")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("DOCKER_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("run shipshape");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            // A command that fails before reading closes the pipe; that is its answer.
            let _ = pipe.write_all(text.as_bytes()).await;
        }
        child.wait_with_output().await.expect("shipshape ends")
    }

    /// Runs a command that must succeed; returns its stdout.
    async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.run(args, stdin).await;
        assert!(
            o.status.success(),
            "shipshape {args:?} failed:\n{}\n{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// Runs a command with `--output json` that must succeed; returns the parsed JSON.
    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.ok(&all, None).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"))
    }

    /// Runs a command that must fail with exactly one `error:` line; returns that line.
    async fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.run(args, stdin).await;
        assert!(!o.status.success(), "shipshape {args:?} should fail");
        assert_eq!(o.status.code(), Some(1), "exit code of {args:?}");
        let err = stderr(&o);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {err:?}");
        assert!(lines[0].starts_with("error: "), "{err:?}");
        lines[0].to_string()
    }

    /// Logs in as `user` with `password` through stdin.
    async fn login(&self, user: &str, password: &str) -> String {
        self.ok(
            &["login", "-u", user, "--password-stdin"],
            Some(&format!("{password}\n")),
        )
        .await
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The table row whose first column is `key`, split into columns.
fn row<'a>(table: &'a str, key: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .find(|cols| cols.first() == Some(&key))
        .unwrap_or_else(|| panic!("no row {key} in:\n{table}"))
}

fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// An HTTP client that sends `user`'s Basic credentials with every request, as podman does.
fn client_as(user: &str, password: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Basic {}", basic(user, password)).parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// The status of `GET path` on the registry with `c`.
async fn status(c: &reqwest::Client, s: &TestServer, path: &str) -> StatusCode {
    c.get(s.url(path)).send().await.expect("request").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_keeps_credentials_in_the_auth_file_beside_other_entries() {
    let s = with_admin().await;
    let home = Home::new();
    let cli = Cli::new(&s, &home);
    let host = s.host();
    let theirs = json!({
        "auths": {"elsewhere.example:443": {"auth": basic("someone", "their-secret")}},
        "credHelpers": {"gcr.io": "gcloud"}
    });
    std::fs::create_dir_all(home.auth_file().parent().unwrap()).unwrap();
    std::fs::write(
        home.auth_file(),
        serde_json::to_vec_pretty(&theirs).unwrap(),
    )
    .unwrap();
    let before = std::fs::read(home.auth_file()).unwrap();

    // With access control on, the management API wants a login.
    let line = cli.fails(&["user", "ls"], None).await;
    assert!(line.contains("log in first"), "{line}");

    // A wrong password is refused in those words, and nothing is stored.
    let line = cli
        .fails(
            &["login", "-u", "admin", "--password-stdin"],
            Some("not-the-password\n"),
        )
        .await;
    assert_eq!(
        line,
        format!("error: wrong user name or password for {host}; nothing was stored")
    );
    assert_eq!(std::fs::read(home.auth_file()).unwrap(), before);
    // With no terminal to ask on, the flags that would do are named.
    let line = cli.fails(&["login", "-u", "admin"], None).await;
    assert!(line.contains("--password-stdin"), "{line}");
    let line = cli.fails(&["login", "--password-stdin"], Some("x\n")).await;
    assert!(line.contains("-u USER"), "{line}");

    // The registry named on the command line beats SHIPSHAPE_REGISTRY.
    let elsewhere = cli.with_env(&[("SHIPSHAPE_REGISTRY", "http://127.0.0.1:1")]);
    let out = elsewhere
        .ok(
            &["login", &host, "-u", "admin", "--password-stdin"],
            Some(&format!("{ADMIN_PASSWORD}\n")),
        )
        .await;
    assert!(
        out.contains(&format!("logged in to {host} as admin (an administrator)")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "credentials stored in {}",
            home.auth_file().display()
        )),
        "{out}"
    );
    let auth = home.auth();
    assert_eq!(
        auth["auths"][&host],
        json!({"auth": basic("admin", ADMIN_PASSWORD)})
    );
    assert_eq!(
        auth["auths"]["elsewhere.example:443"],
        theirs["auths"]["elsewhere.example:443"]
    );
    assert_eq!(auth["credHelpers"], theirs["credHelpers"]);
    assert_eq!(auth["auths"].as_object().unwrap().len(), 2, "{auth}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.auth_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }

    // Every command sends them now.
    let table = cli.ok(&["user", "ls"], None).await;
    assert_eq!(row(&table, "admin")[1], "yes", "{table}");
    cli.ok(&["repo", "ls"], None).await;

    // Logging out takes out this registry's entry only.
    let out = cli.ok(&["logout"], None).await;
    assert!(
        out.contains(&format!("removed the credentials for {host}")),
        "{out}"
    );
    let auth = home.auth();
    assert!(auth["auths"].get(&host).is_none(), "{auth}");
    assert_eq!(
        auth["auths"]["elsewhere.example:443"],
        theirs["auths"]["elsewhere.example:443"]
    );
    assert_eq!(auth["credHelpers"], theirs["credHelpers"]);
    let line = cli.fails(&["user", "ls"], None).await;
    assert!(line.contains("log in first"), "{line}");
    let out = cli.ok(&["logout"], None).await;
    assert!(out.contains(&format!("no credentials for {host}")), "{out}");

    // Docker's config is read after the containers auth file.
    let docker = home.dir.path().join(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        serde_json::to_vec(&json!({
            "auths": {&host: {"auth": basic("admin", ADMIN_PASSWORD)}},
            "credsStore": "desktop"
        }))
        .unwrap(),
    )
    .unwrap();
    cli.ok(&["user", "ls"], None).await;

    // Credentials stored with a wrong password say where they came from and what to do.
    std::fs::write(
        docker.join("config.json"),
        serde_json::to_vec(&json!({"auths": {&host: {"auth": basic("admin", "stale")}}})).unwrap(),
    )
    .unwrap();
    let line = cli.fails(&["repo", "ls"], None).await;
    assert!(
        line.contains("wrong user name or password")
            && line.contains(&docker.join("config.json").display().to_string())
            && line.contains(&format!("shipshape login {host}")),
        "{line}"
    );
}

/// The remote commands find credentials where podman does, in its order: `$REGISTRY_AUTH_FILE`,
/// podman's own `$XDG_RUNTIME_DIR/containers/auth.json` (where `podman login` writes),
/// `~/.config/containers/auth.json`, then Docker's `~/.docker/config.json`; the first file with
/// an entry for the registry is used, and a refusal names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_looked_up_in_podmans_order() {
    let s = with_admin().await;
    let home = Home::new();
    let runtime = tempfile::tempdir().expect("temp dir");
    let key = s.base.trim_start_matches("http://").to_string();
    let keep = |path: &std::path::Path, password: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let doc = json!({"auths": {&key: {"auth": basic("admin", password)}}});
        std::fs::write(path, doc.to_string()).unwrap();
    };
    let given = home.dir.path().join("given.json");
    let podman = runtime.path().join("containers").join("auth.json");
    let config = home.dir.path().join(".config/containers/auth.json");
    let docker = home.dir.path().join(".docker/config.json");
    let runtime_dir = runtime.path().to_str().unwrap();
    let cli = Cli::new(&s, &home)
        .with_env(&[("REGISTRY_AUTH_FILE", ""), ("XDG_RUNTIME_DIR", runtime_dir)]);
    // Docker's file alone is read.
    keep(&docker, ADMIN_PASSWORD);
    assert!(cli.ok(&["user", "ls"], None).await.contains("admin"));
    // ~/.config/containers comes before it: its wrong password is sent, and named.
    keep(&config, "a-wrong-password");
    let err = cli.fails(&["user", "ls"], None).await;
    assert!(err.contains(&config.display().to_string()), "{err}");
    // podman's runtime file comes before that.
    keep(&podman, ADMIN_PASSWORD);
    assert!(cli.ok(&["user", "ls"], None).await.contains("admin"));
    // $REGISTRY_AUTH_FILE before everything.
    keep(&given, "a-wrong-password");
    let given_cli = Cli::new(&s, &home).with_env(&[
        ("REGISTRY_AUTH_FILE", given.to_str().unwrap()),
        ("XDG_RUNTIME_DIR", runtime_dir),
    ]);
    let err = given_cli.fails(&["user", "ls"], None).await;
    assert!(err.contains(&given.display().to_string()), "{err}");
    // A file without an entry for this registry is passed over.
    std::fs::write(&given, r#"{"auths": {"elsewhere:5000": {"auth": "eDp5"}}}"#).unwrap();
    assert!(given_cli.ok(&["user", "ls"], None).await.contains("admin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_robots_and_roles_from_the_command_line() {
    let s = with_admin().await;
    let home = Home::new();
    let cli = Cli::new(&s, &home);
    cli.login("admin", ADMIN_PASSWORD).await;
    let admin = client_as("admin", ADMIN_PASSWORD);
    push_image(&admin, &s.base, "team-a/app", "v1", 1).await;
    push_image(&admin, &s.base, "team-b/app", "v1", 2).await;

    // Users.
    let out = cli
        .ok(
            &["user", "add", "alice", "--password-stdin"],
            Some("alice-password-1\n"),
        )
        .await;
    assert_eq!(out, "added user alice\n");
    let table = cli.ok(&["user", "ls"], None).await;
    assert!(table.starts_with("USER"), "{table}");
    let alice_row = row(&table, "alice");
    assert_eq!(
        (alice_row[1], alice_row[3], alice_row[4]),
        ("no", "admin", "-"),
        "{table}"
    );
    let v = cli.json(&["user", "ls"]).await;
    let alice = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice")
        .expect("alice listed");
    assert_eq!(alice["admin"], false);
    assert_eq!(alice["created_by"], "admin");
    let alice_http = client_as("alice", "alice-password-1");

    // A robot for CI, with write on team A's repositories: its secret is printed once and
    // works as Basic credentials there, and nowhere else.
    let out = cli
        .ok(
            &[
                "robot",
                "add",
                "ci",
                "--description",
                "CI of team A",
                "--expires-in",
                "90d",
                "--role",
                "team-a/**=write",
            ],
            None,
        )
        .await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("added robot ci (write on team-a/**; expires "),
        "{out}"
    );
    assert_eq!(lines[1], "login:  robot$ci", "{out}");
    let secret = lines[2].strip_prefix("secret: ").expect("the secret line");
    assert!(secret.len() >= 20, "{out}");
    assert!(lines[3].contains("will not be shown again"), "{out}");
    let robot = client_as("robot$ci", secret);
    assert_eq!(status(&robot, &s, "/v2/").await, StatusCode::OK);
    push_image(&robot, &s.base, "team-a/app", "v2", 3).await;
    assert_eq!(
        status(&robot, &s, "/v2/team-a/app/tags/list").await,
        StatusCode::OK
    );
    assert_eq!(
        status(&robot, &s, "/v2/team-b/app/tags/list").await,
        StatusCode::FORBIDDEN
    );
    let table = cli.ok(&["robot", "ls"], None).await;
    assert_eq!(row(&table, "ci")[1..3], ["robot$ci", "active"], "{table}");
    assert_eq!(row(&table, "ci").last(), Some(&"CI of team A"), "{table}");
    // The robot can log in as itself too.
    let robot_home = Home::new();
    let out = Cli::new(&s, &robot_home).login("robot$ci", secret).await;
    assert!(out.contains("as robot$ci (a robot)"), "{out}");

    // Roles: a read-only team, given and taken away.
    let out = cli
        .ok(&["role", "grant", "user:alice", "team-b/**", "read"], None)
        .await;
    assert_eq!(out, "granted read on team-b/** to user:alice\n");
    assert_eq!(
        status(&alice_http, &s, "/v2/team-b/app/tags/list").await,
        StatusCode::OK
    );
    assert_eq!(
        status(&alice_http, &s, "/v2/team-a/app/tags/list").await,
        StatusCode::FORBIDDEN
    );
    let table = cli.ok(&["role", "ls"], None).await;
    assert_eq!(
        row(&table, "user:alice")[1..3],
        ["team-b/**", "read"],
        "{table}"
    );
    assert_eq!(
        row(&table, "robot:ci")[1..3],
        ["team-a/**", "write"],
        "{table}"
    );
    let v = cli.json(&["role", "ls"]).await;
    assert!(
        v["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["subject"] == "robot:ci"
                && b["pattern"] == "team-a/**"
                && b["role"] == "write"),
        "{v}"
    );
    let out = cli
        .ok(&["role", "revoke", "user:alice", "team-b/**"], None)
        .await;
    assert_eq!(out, "revoked the role of user:alice on team-b/**\n");
    assert_eq!(
        status(&alice_http, &s, "/v2/team-b/app/tags/list").await,
        StatusCode::FORBIDDEN
    );
    let line = cli
        .fails(&["role", "revoke", "user:alice", "team-b/**"], None)
        .await;
    assert_eq!(line, "error: user:alice has no role on team-b/**");
    let line = cli
        .fails(&["role", "grant", "alice", "team-b/**", "read"], None)
        .await;
    assert!(
        line.contains("use user:NAME, robot:NAME or anonymous"),
        "{line}"
    );

    // Anonymous pull on a pattern, and only pull.
    let anonymous = client();
    assert_eq!(
        status(&anonymous, &s, "/v2/team-b/app/tags/list").await,
        StatusCode::UNAUTHORIZED
    );
    cli.ok(&["role", "grant", "anonymous", "team-b/**", "read"], None)
        .await;
    assert_eq!(
        status(&anonymous, &s, "/v2/team-b/app/tags/list").await,
        StatusCode::OK
    );
    let line = cli
        .fails(&["role", "grant", "anonymous", "team-b/**", "write"], None)
        .await;
    assert!(line.contains("may only be given read"), "{line}");

    // Revoking the robot stops its secret at once; off a terminal it needs --yes.
    let line = cli.fails(&["robot", "revoke", "ci"], None).await;
    assert!(line.contains("pass --yes"), "{line}");
    assert_eq!(status(&robot, &s, "/v2/").await, StatusCode::OK);
    let out = cli.ok(&["robot", "revoke", "--yes", "ci"], None).await;
    assert_eq!(out, "revoked robot ci\n");
    assert_eq!(
        status(&robot, &s, "/v2/team-a/app/tags/list").await,
        StatusCode::UNAUTHORIZED
    );
    let table = cli.ok(&["robot", "ls"], None).await;
    assert_eq!(row(&table, "ci")[2], "revoked", "{table}");

    // A writer, logged in as itself through the environment: its own repositories work, the
    // account commands are refused with what to do.
    cli.ok(&["role", "grant", "user:alice", "team-a/**", "write"], None)
        .await;
    let as_alice = cli.with_env(&[
        ("SHIPSHAPE_USERNAME", "alice"),
        ("SHIPSHAPE_PASSWORD", "alice-password-1"),
    ]);
    let table = as_alice.ok(&["tag", "ls", "team-a/app"], None).await;
    row(&table, "v1");
    row(&table, "v2");
    let line = as_alice
        .fails(
            &["user", "add", "bob", "--password-stdin"],
            Some("bob-password-1\n"),
        )
        .await;
    assert!(
        line.contains("alice may not manage users, robots and roles")
            && line.contains("an administrator must do this"),
        "{line}"
    );
    let line = as_alice.fails(&["role", "ls"], None).await;
    assert!(line.contains("an administrator must do this"), "{line}");
    let line = cli
        .with_env(&[
            ("SHIPSHAPE_USERNAME", "alice"),
            ("SHIPSHAPE_PASSWORD", "wrong-password"),
        ])
        .fails(&["repo", "ls"], None)
        .await;
    assert!(
        line.contains("wrong user name or password")
            && line.contains("SHIPSHAPE_USERNAME and SHIPSHAPE_PASSWORD"),
        "{line}"
    );
    let line = cli
        .with_env(&[("SHIPSHAPE_USERNAME", "alice")])
        .fails(&["repo", "ls"], None)
        .await;
    assert!(line.contains("set both"), "{line}");

    // An administrator's own password: the stored credentials follow it.
    let out = cli
        .ok(
            &["user", "passwd", "admin", "--password-stdin"],
            Some("admin-password-2\n"),
        )
        .await;
    assert!(out.starts_with("changed the password of admin\n"), "{out}");
    assert!(out.contains("updated the credentials stored in"), "{out}");
    assert_eq!(
        home.auth()["auths"][&s.host()],
        json!({"auth": basic("admin", "admin-password-2")})
    );
    cli.ok(&["user", "ls"], None).await;

    // Deleting a user asks first; then their credentials stop working.
    let line = cli.fails(&["user", "rm", "alice"], None).await;
    assert!(line.contains("pass --yes"), "{line}");
    let line = cli.fails(&["user", "rm", "nobody"], None).await;
    assert!(line.contains("user nobody does not exist"), "{line}");
    let out = cli.ok(&["user", "rm", "--yes", "alice"], None).await;
    assert_eq!(out, "deleted user alice\n");
    assert_eq!(
        status(&alice_http, &s, "/v2/").await,
        StatusCode::UNAUTHORIZED
    );
    let table = cli.ok(&["user", "ls"], None).await;
    assert!(!table.contains("alice"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_administrator_from_a_stopped_registrys_data_directory() {
    let mut s = TestServer::start().await;
    let home = Home::new();
    let cli = Cli::new(&s, &home);
    let dir = s.data_dir().to_path_buf();
    let dir_arg = dir.display().to_string();
    let add = [
        "user",
        "add",
        "--admin",
        "root",
        "--data-dir",
        &dir_arg,
        "--password-stdin",
    ];

    // Refused while the registry serves the directory; nothing changes.
    let line = cli.fails(&add, Some("root-password-1\n")).await;
    assert!(
        line.contains(&format!("a registry is running on {dir_arg}"))
            && line.contains("stop it first"),
        "{line}"
    );
    cli.ok(&["repo", "ls"], None).await;

    s.stop().await;
    let line = cli
        .fails(
            &[
                "user",
                "add",
                "bob",
                "--data-dir",
                &dir_arg,
                "--password-stdin",
            ],
            Some("bob-password-1\n"),
        )
        .await;
    assert!(line.contains("--admin"), "{line}");
    let out = cli.ok(&add, Some("root-password-1\n")).await;
    assert!(
        out.starts_with(&format!("added user root (administrator) to {dir_arg}\n")),
        "{out}"
    );
    s.resume().await;

    // Access control is on with it.
    let line = cli.fails(&["repo", "ls"], None).await;
    assert!(line.contains("log in first"), "{line}");
    let out = cli.login("root", "root-password-1").await;
    assert!(out.contains("as root (an administrator)"), "{out}");
    let v = cli.json(&["user", "ls"]).await;
    assert_eq!(v["users"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["users"][0]["name"], "root");
    assert_eq!(v["users"][0]["created_by"], "operator");
    cli.ok(&["repo", "ls"], None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_administrator_through_the_api_while_no_user_exists() {
    let s = TestServer::start().await;
    let home = Home::new();
    let cli = Cli::new(&s, &home);
    let host = s.host();

    // Nothing to log in to yet.
    let line = cli
        .fails(
            &["login", "-u", "admin", "--password-stdin"],
            Some("first-password-1\n"),
        )
        .await;
    assert!(
        line.contains(&format!("{host} has no users yet"))
            && line.contains("shipshape user add --admin"),
        "{line}"
    );
    assert!(!home.auth_file().exists());

    let line = cli
        .fails(
            &["user", "add", "first", "--password-stdin"],
            Some("first-password-1\n"),
        )
        .await;
    assert!(
        line.contains("the first user must be an administrator (--admin)"),
        "{line}"
    );
    let out = cli
        .ok(
            &["user", "add", "--admin", "first", "--password-stdin"],
            Some("first-password-1\n"),
        )
        .await;
    assert_eq!(
        out,
        format!(
            "added user first (administrator)\naccess control is on now; log in: shipshape \
             login -u first {host}\n"
        )
    );
    let line = cli.fails(&["user", "ls"], None).await;
    assert!(line.contains("log in first"), "{line}");
    cli.login("first", "first-password-1").await;
    let table = cli.ok(&["user", "ls"], None).await;
    assert_eq!(row(&table, "first")[1], "yes", "{table}");
}
