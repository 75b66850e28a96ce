//! The `shipshape` operator commands behave like a careful command-line tool: a closed pipe
//! ends them quietly; a registry that never answers, or never accepts the connection, times out
//! on the flag that says so; named deletions are all or none; protected tags need the explicit
//! override; digests go through `manifest rm`; unknown filters and foreign servers fail with one
//! line that names the problem; listings show sizes, sort and filter. The built binary against a
//! real server, as in `cli.rs`.

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::{
    TestServer, client, manifest_status, oci_tags, pull_verified, push_image, wait_gc_run,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shipshape_meta::clock::ManualClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fixed start for clock-driven servers: 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;

/// Runs `shipshape` with stdin closed (not a terminal) against the registry at `registry`.
async fn shipshape_at(registry: &str, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipshape"));
    cmd.args(args)
        .env("SHIPSHAPE_REGISTRY", registry)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd.output().await.expect("run shipshape")
}

/// Runs `shipshape` with stdin closed (not a terminal) against `s`.
async fn shipshape(s: &TestServer, args: &[&str]) -> Output {
    shipshape_at(&s.base, args).await
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
async fn ok(s: &TestServer, args: &[&str]) -> String {
    let o = shipshape(s, args).await;
    assert!(
        o.status.success(),
        "shipshape {args:?} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Runs a command with `--output json` that must succeed; returns the parsed JSON.
async fn json(s: &TestServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = ok(s, &all).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"))
}

/// The one `error:` line of a command that must have failed.
fn one_error_line(o: &Output, args: &[&str]) -> String {
    assert!(!o.status.success(), "shipshape {args:?} should fail");
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {err:?}");
    assert!(lines[0].starts_with("error: "), "{err:?}");
    lines[0].to_string()
}

/// Runs a command that must fail with exactly one `error:` line; returns that line.
async fn fails(s: &TestServer, args: &[&str]) -> String {
    one_error_line(&shipshape(s, args).await, args)
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

/// The first column of every row of a table, below its header.
fn first_column(table: &str) -> Vec<&str> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect()
}

/// A size as the tables print it (binary units, one decimal).
fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A digest as the tables print it: the algorithm and 12 hex digits.
fn short(digest: &str) -> &str {
    &digest[..19]
}

/// The strings of a JSON answer's array `key`, in its order.
fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_gc_items_without_a_panic() {
    let s = TestServer::start_with(|c| {
        c.gc.workers = 0;
        c.gc.lease = Duration::ZERO;
        c.restore_window = Duration::ZERO;
    })
    .await;
    let c = client();
    for i in 0..60 {
        push_image(&c, &s.base, "pipe/app", &format!("t{i}"), i).await;
    }
    let (status, v) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/pipe/app?confirm=pipe/app",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, run) = s
        .api(
            Method::POST,
            "/api/v1/gc/runs",
            Some(json!({"dry_run": true, "grace": "0s", "include_untagged_manifests": true})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run = wait_gc_run(&s.base, run["id"].as_i64().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let id = run["id"].to_string();

    let whole = ok(&s, &["gc", "items", &id]).await;
    let first = into_closed_pipe(&s.base, &["gc", "items", &id], &whole).await;
    assert!(first.starts_with("KIND"), "{first:?}");
}

/// Runs `shipshape args` with stdout a pipe closed after the first line, as `| head -1` does,
/// and insists that the command ends quietly: no panic, killed by SIGPIPE or exiting 0. `whole`
/// is the command's complete output, which must not fit in the pipe, so that the command is
/// still writing when the reader goes away. Returns the first line.
async fn into_closed_pipe(registry: &str, args: &[&str], whole: &str) -> String {
    // The smallest pipe the kernel allows.
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    let pipe_size = {
        use std::os::fd::AsRawFd;
        // SAFETY: F_SETPIPE_SZ on a pipe this test owns, whose descriptor stays open.
        unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) }
    };
    assert!(pipe_size >= 4096, "F_SETPIPE_SZ: {pipe_size}");
    assert!(
        whole.len() > 2 * pipe_size as usize,
        "the output ({} bytes) must be much larger than the pipe ({pipe_size})",
        whole.len()
    );
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipshape"));
    cmd.args(args)
        .env("SHIPSHAPE_REGISTRY", registry)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("run shipshape");
    // Our copy of the pipe's writing end goes with the command.
    drop(cmd);
    // Read the first line a byte at a time, then close the pipe.
    let first = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut first = Vec::new();
        let mut byte = [0u8; 1];
        while !first.ends_with(b"\n") {
            let n = reader.read(&mut byte).expect("read stdout");
            assert_eq!(n, 1, "stdout ended before its first line");
            first.push(byte[0]);
        }
        String::from_utf8_lossy(&first).into_owned()
    })
    .await
    .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    let status = child.wait().await.expect("wait for shipshape");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{args:?}: a closed pipe must end the command quietly: {status}\n{err}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.success() || status.signal() == Some(libc::SIGPIPE),
        "{args:?}: ended by the closed pipe, not by an error: {status}\n{err}"
    );
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_check_without_a_panic() {
    let s = TestServer::start().await;
    // Objects the catalogue does not know: one finding each.
    for _ in 0..100 {
        s.plant_orphan(b"x").await;
    }
    let data_dir = s.data_dir().to_str().unwrap();
    let args = ["check", "--data-dir", data_dir, "--orphan-min-age", "0s"];
    let o = shipshape(&s, &args).await;
    assert!(!o.status.success(), "problems found: {}", stdout(&o));
    let whole = stdout(&o);
    let first = into_closed_pipe(&s.base, &args, &whole).await;
    assert!(first.starts_with("problem: "), "{first:?}");
}

/// A listener that accepts connections and never answers on them.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

/// A web server that is not a registry: 404 with an HTML page to every request.
async fn not_a_registry() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = "<html><body><h1>404 Not Found</h1><p>nginx</p></body></html>";
                let answer = format!(
                    "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_never_answers_or_never_connects_times_out() {
    let url = silent_server().await;
    let args = ["repo", "ls", "--registry", &url, "--timeout", "1s"];
    // Only a guard against hanging forever, not a measure of how long the command took.
    let o = tokio::time::timeout(Duration::from_secs(60), shipshape_at(&url, &args))
        .await
        .expect("shipshape gave up by itself instead of waiting forever");
    let line = one_error_line(&o, &args);
    assert!(line.contains(&url), "names the registry: {line}");
    assert!(line.contains("--timeout"), "names the flag: {line}");

    // A listener whose one-place accept queue is full: the kernel drops further connection
    // attempts, so the connection is never made and --connect-timeout ends the wait (the
    // --timeout given is longer than the guard).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let _listener = socket.listen(0).unwrap();
    let _queued = tokio::net::TcpStream::connect(addr).await.unwrap();
    let url = format!("http://{addr}");
    let args = [
        "repo",
        "ls",
        "--registry",
        &url,
        "--connect-timeout",
        "1s",
        "--timeout",
        "10m",
    ];
    let o = tokio::time::timeout(Duration::from_secs(60), shipshape_at(&url, &args))
        .await
        .expect("shipshape gave up connecting by itself instead of waiting forever");
    let line = one_error_line(&o, &args);
    assert!(line.contains(&url), "names the registry: {line}");
    assert!(
        line.contains("within 1s (--connect-timeout)"),
        "names the flag that ended the wait, and its value: {line}"
    );

    let o = shipshape_at(&url, &["repo", "ls", "--help"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let help = stdout(&o);
    assert!(help.contains("--connect-timeout"), "{help}");
    assert!(help.contains("--timeout"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_tags_are_deleted_all_or_none_and_undone_together() {
    let s = TestServer::start().await;
    let c = client();
    let da = push_image(&c, &s.base, "all/app", "a", 1).await;
    let db = push_image(&c, &s.base, "all/app", "b", 2).await;
    push_image(&c, &s.base, "all/app", "c", 3).await;

    let before = s.footprint().await;
    let line = fails(&s, &["tag", "rm", "all/app", "a", "nonexist", "--yes"]).await;
    assert!(line.contains("nonexist"), "names the unknown tag: {line}");
    assert_eq!(s.footprint().await, before, "nothing was deleted");
    assert_eq!(pull_verified(&s.base, "all/app", "a").await, da);

    let v = json(&s, &["tag", "rm", "all/app", "a", "b", "--yes"]).await;
    let mut deleted: Vec<(String, String)> = v["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["tag"].as_str().unwrap().to_string(),
                d["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        [("a".to_string(), da.clone()), ("b".to_string(), db.clone())],
        "{v}"
    );
    assert_eq!(oci_tags(&s.base, "all/app").await.unwrap(), ["c"]);
    let batch = v["batch"].as_i64().expect("a batch to undo").to_string();

    let out = ok(&s, &["undo", &batch]).await;
    assert!(out.contains("restored 2 tags"), "{out}");
    assert_eq!(oci_tags(&s.base, "all/app").await.unwrap(), ["a", "b", "c"]);
    assert_eq!(pull_verified(&s.base, "all/app", "a").await, da);
    assert_eq!(pull_verified(&s.base, "all/app", "b").await, db);
}

const POLICY: &str = r#"
name = "ci"
repositories = ["ci/*"]

[tags]
protected = ["stable"]

[delete]
older_than = "1d"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_tags_need_override_protection_in_bulk_and_for_a_repository() {
    let s = TestServer::start().await;
    let c = client();
    for (tag, seed) in [("stable", 1), ("b1", 2), ("b2", 3)] {
        push_image(&c, &s.base, "ci/app", tag, seed).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ci.toml");
    std::fs::write(&file, POLICY).unwrap();
    ok(&s, &["policy", "apply", "-f", file.to_str().unwrap()]).await;

    let bulk = ["tag", "rm", "ci/app", "--delete-regex", ".*", "--yes"];
    let v = json(&s, &bulk).await;
    let mut deleted = strings(&v, "deleted");
    deleted.sort();
    assert_eq!(deleted, ["b1", "b2"], "{v}");
    assert_eq!(oci_tags(&s.base, "ci/app").await.unwrap(), ["stable"]);
    let table = ok(&s, &bulk).await;
    assert_eq!(row(&table, "stable")[1], "kept", "{table}");

    let mut overriding = bulk.to_vec();
    overriding.push("--override-protection");
    let v = json(&s, &overriding).await;
    assert_eq!(strings(&v, "deleted"), ["stable"], "{v}");
    assert_eq!(
        oci_tags(&s.base, "ci/app").await.unwrap(),
        Vec::<String>::new()
    );

    let stable = push_image(&c, &s.base, "ci/app", "stable", 4).await;
    let before = s.footprint().await;
    let line = fails(&s, &["repo", "rm", "ci/app", "--yes"]).await;
    assert!(line.contains("stable"), "{line}");
    assert!(
        line.contains("--override-protection") && !line.contains("override_protection="),
        "names the CLI's flag, not the API's parameter: {line}"
    );
    assert_eq!(s.footprint().await, before, "nothing was deleted");
    assert_eq!(pull_verified(&s.base, "ci/app", "stable").await, stable);

    let out = ok(
        &s,
        &["repo", "rm", "ci/app", "--yes", "--override-protection"],
    )
    .await;
    assert!(out.contains("deleted repository ci/app"), "{out}");
    assert_eq!(
        manifest_status(&s.base, "ci/app", "stable").await,
        StatusCode::NOT_FOUND
    );
    let line = fails(&s, &["tag", "ls", "ci/app"]).await;
    assert!(line.contains("ci/app"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_deleted_by_digest_prefix_through_manifest_rm() {
    let s = TestServer::start().await;
    let c = client();
    let d1 = push_image(&c, &s.base, "dig/app", "v1", 1).await;
    // The same image under a second tag.
    assert_eq!(push_image(&c, &s.base, "dig/app", "v1-alias", 1).await, d1);
    let d2 = push_image(&c, &s.base, "dig/app", "v2", 2).await;

    // A digest is not a tag.
    let before = s.footprint().await;
    let line = fails(&s, &["tag", "rm", "dig/app", &d1, "--yes"]).await;
    assert!(line.contains("shipshape manifest rm"), "{line}");
    let line = fails(&s, &["tag", "rm", "dig/app", "dig/app:v1", "--yes"]).await;
    assert!(
        line.contains("`shipshape tag rm dig/app v1`") && !line.contains("digest"),
        "repository:tag is not a digest: {line}"
    );
    // The reference where the repository goes, as other tools take it.
    let line = fails(&s, &["tag", "rm", "dig/app:v1", "--yes"]).await;
    assert!(
        line.contains("`shipshape tag rm dig/app v1`") && !line.contains("name the tags"),
        "repository:tag as the repository: {line}"
    );
    let line = fails(&s, &["tag", "rm", &format!("dig/app@{d1}"), "--yes"]).await;
    assert!(
        line.contains(&format!("`shipshape manifest rm dig/app {d1}`")),
        "repository@digest as the repository: {line}"
    );
    assert_eq!(s.footprint().await, before, "nothing was deleted");

    // Kinds: tagged, and untagged once its only tag is gone.
    ok(&s, &["tag", "rm", "dig/app", "v2", "--yes"]).await;
    let table = ok(&s, &["manifest", "ls", "dig/app"]).await;
    assert!(table.starts_with("DIGEST"), "{table}");
    assert_eq!(row(&table, short(&d1))[1], "tagged", "{table}");
    assert_eq!(row(&table, short(&d1))[2], "v1,v1-alias", "{table}");
    assert_eq!(row(&table, short(&d2))[1], "untagged", "{table}");
    // WHY KEPT, the last column, as the collector would decide now.
    let line = |d: &str| {
        table
            .lines()
            .find(|l| l.contains(short(d)))
            .unwrap()
            .to_string()
    };
    assert!(line(&d1).ends_with("tagged v1,v1-alias"), "{table}");
    assert!(!line(&d2).contains("tagged v"), "{table}");
    let v = json(&s, &["manifest", "ls", "dig/app"]).await;
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2, "{v}");

    // More images until two digests share their first hex digit (at most 17: pigeonholes).
    let mut live = vec![d1.clone(), d2.clone()];
    let shared = loop {
        let mut firsts: Vec<&str> = live.iter().map(|d| &d[..8]).collect();
        firsts.sort();
        if let Some(w) = firsts.windows(2).find(|w| w[0] == w[1]) {
            break w[0].to_string();
        }
        let seed = 10 + live.len() as u64;
        live.push(push_image(&c, &s.base, "dig/app", &format!("x{seed}"), seed).await);
    };
    let unknown = (0..16)
        .map(|i| format!("sha256:{}", format!("{i:x}").repeat(12)))
        .find(|p| live.iter().all(|d| !d.starts_with(p.as_str())))
        .unwrap();
    let before = s.footprint().await;
    let line = fails(&s, &["manifest", "rm", "dig/app", &shared, "--yes"]).await;
    assert!(line.contains(&shared), "ambiguous: {line}");
    let line = fails(&s, &["manifest", "rm", "dig/app", &unknown, "--yes"]).await;
    assert!(line.contains(&unknown), "unknown: {line}");
    let line = fails(
        &s,
        &["manifest", "rm", "dig/app", short(&d1), &unknown, "--yes"],
    )
    .await;
    assert!(line.contains(&unknown), "unknown after a good one: {line}");
    assert_eq!(s.footprint().await, before, "nothing was deleted");
    assert_eq!(pull_verified(&s.base, "dig/app", "v1").await, d1);

    // A prefix as tables print it deletes the manifest and every tag on it; the same manifest
    // named twice (prefix and digest) is deleted once.
    let out = ok(&s, &["manifest", "rm", "dig/app", short(&d1), &d1, "--yes"]).await;
    assert_eq!(
        out.matches(&format!("deleted dig/app@{d1}")).count(),
        1,
        "{out}"
    );
    assert!(out.contains("v1, v1-alias"), "{out}");
    for tag in ["v1", "v1-alias"] {
        assert_eq!(
            manifest_status(&s.base, "dig/app", tag).await,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        manifest_status(&s.base, "dig/app", &d1).await,
        StatusCode::NOT_FOUND
    );
    let tags = oci_tags(&s.base, "dig/app").await.unwrap();
    assert!(!tags.contains(&"v1".to_string()), "{tags:?}");
    let batch = out
        .lines()
        .find_map(|l| l.strip_prefix("undo with: shipshape undo "))
        .unwrap_or_else(|| panic!("the batch to undo: {out}"))
        .to_string();

    // And a prefix names the manifest a tag goes back to.
    let v = json(
        &s,
        &["tag", "restore", "dig/app", "v1", "--digest", short(&d1)],
    )
    .await;
    assert_eq!(v["digest"], d1.as_str(), "{v}");
    assert_eq!(pull_verified(&s.base, "dig/app", "v1").await, d1);

    // The deletion's batch brings back the rest of the tags it took.
    let out = ok(&s, &["undo", &batch]).await;
    assert!(out.contains("restored 1 tag of dig/app"), "{out}");
    assert_eq!(pull_verified(&s.base, "dig/app", "v1").await, d1);
    assert_eq!(pull_verified(&s.base, "dig/app", "v1-alias").await, d1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_filters_and_inputs_fail_with_the_reason() {
    let s = TestServer::start().await;
    let c = client();
    push_image(&c, &s.base, "in/app", "v1", 1).await;
    push_image(&c, &s.base, "in/app", "pr-1", 2).await;

    let line = fails(&s, &["events", "--action", "bogus"]).await;
    assert!(line.contains("bogus"), "{line}");
    assert!(
        line.contains("tag.delete") && line.contains("tag.push"),
        "lists the valid actions: {line}"
    );

    let line = fails(&s, &["tag", "history", "in/app", "nosuchtag"]).await;
    assert!(line.contains("nosuchtag"), "{line}");

    let before = s.footprint().await;
    let line = fails(
        &s,
        &["tag", "rm", "in/app", "--delete-regex", "pr-(", "--dry-run"],
    )
    .await;
    assert!(line.contains("pr-("), "the user's text: {line}");
    assert!(
        !line.contains("^(?:"),
        "not the anchoring around it: {line}"
    );
    assert_eq!(s.footprint().await, before);

    let v = json(&s, &["events", "--since", "2026-12-02"]).await;
    assert!(v["events"].is_array(), "{v}");
    let v = json(&s, &["events", "--since", "2000-01-01"]).await;
    assert_eq!(v["events"].as_array().unwrap().len(), 2, "two pushes: {v}");

    let short_form = ok(&s, &["tag", "ls", "in/app", "-o", "json"]).await;
    let short_form: Value = serde_json::from_str(&short_form).expect("-o json is JSON");
    assert_eq!(short_form, json(&s, &["tag", "ls", "in/app"]).await);

    let url = not_a_registry().await;
    let args = ["repo", "ls", "--registry", &url];
    let line = one_error_line(&shipshape_at(&url, &args).await, &args);
    assert!(line.contains(&url), "names the URL: {line}");

    let o = shipshape(&s, &["check", "--help"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let help = stdout(&o);
    assert_eq!(help.matches("[default: 1h]").count(), 1, "{help}");

    let o = shipshape(&s, &["gc", "status"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("no garbage collection run is active"),
        "{}",
        stdout(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_ls_shows_sizes() {
    let s = TestServer::start_with(|c| {
        c.gc.workers = 0;
        c.gc.review_delay = Duration::ZERO;
        c.gc.lease = Duration::ZERO;
        c.restore_window = Duration::ZERO;
    })
    .await;
    let c = client();
    // The same image in two repositories.
    push_image(&c, &s.base, "size/one", "v1", 1).await;
    push_image(&c, &s.base, "size/two", "v1", 1).await;
    // An image whose tag is gone: reclaimable at once on this registry.
    push_image(&c, &s.base, "size/gone", "v1", 2).await;
    ok(&s, &["tag", "rm", "size/gone", "v1", "--yes"]).await;

    let table = ok(&s, &["repo", "ls"]).await;
    let header = table.lines().next().unwrap();
    for column in ["STORED", "ONLY HERE", "RECLAIMABLE"] {
        assert!(header.contains(column), "{table}");
    }
    let v = json(&s, &["repo", "ls"]).await;
    for r in v["repositories"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        // Every repository had a push, also the one whose only tag is gone.
        assert!(r["last_pushed_at"].is_string(), "{name}: {r}");
        let u = &r["usage"];
        let cols = row(&table, name);
        let figures = [
            u["stored_bytes"].as_u64().unwrap(),
            u["unique_bytes"].as_u64().unwrap(),
            u["reclaimable_bytes"].as_u64().unwrap(),
        ];
        assert_eq!(cols[4..7], figures.map(human), "{name}: {table}");
    }
    // The shared blobs are stored bytes of each, only-here bytes of neither (its manifest is).
    let one = &v["repositories"][1];
    assert_eq!(one["name"], "size/one", "{v}");
    assert!(
        one["usage"]["stored_bytes"].as_u64() > one["usage"]["unique_bytes"].as_u64(),
        "{v}"
    );
    assert_ne!(
        row(&table, "size/one")[4],
        row(&table, "size/one")[5],
        "{table}"
    );
    assert_ne!(row(&table, "size/gone")[6], "0 B", "{table}");
    assert_eq!(row(&table, "size/one")[6], "0 B", "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_ls_sorts_filters_and_reverses() {
    let clock = ManualClock::new(T0);
    let s = TestServer::start_with_clock(&clock, |_| {}).await;
    let c = client();
    // Pushed in this order, a minute apart; the seed sets the size.
    for (tag, seed) in [("v2", 5), ("x1", 40), ("v1", 20), ("v3", 30)] {
        push_image(&c, &s.base, "ls/app", tag, seed).await;
        clock.advance(60_000);
    }
    let listed = |args: Vec<&'static str>| {
        let s = &s;
        async move {
            let mut all = vec!["tag", "ls", "ls/app"];
            all.extend(args);
            let table = ok(s, &all).await;
            assert!(table.starts_with("TAG"), "{table}");
            first_column(&table)
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(vec![]).await, ["v1", "v2", "v3", "x1"]);
    assert_eq!(
        listed(vec!["--sort", "pushed"]).await,
        ["v3", "v1", "x1", "v2"]
    );
    assert_eq!(
        listed(vec!["--sort", "size"]).await,
        ["x1", "v3", "v1", "v2"]
    );
    assert_eq!(
        listed(vec!["--sort", "pushed", "--reverse"]).await,
        ["v2", "x1", "v1", "v3"]
    );
    assert_eq!(
        listed(vec!["--sort", "pushed", "--pattern", "v*"]).await,
        ["v3", "v1", "v2"]
    );
    let v = json(&s, &["tag", "ls", "ls/app", "--sort", "size"]).await;
    let sizes: Vec<u64> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["size"].as_u64().unwrap())
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] > w[1]), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_dry_run_says_what_it_would_take_out_of_use() {
    let s = TestServer::start().await;
    let c = client();
    for (i, tag) in ["pr-1", "pr-2", "main"].iter().enumerate() {
        push_image(&c, &s.base, "dry/app", tag, i as u64 + 1).await;
    }
    let args = [
        "tag",
        "rm",
        "dry/app",
        "--delete-regex",
        "pr-.*",
        "--dry-run",
    ];
    let v = json(&s, &args).await;
    let held = v["bytes_held_for_restore"].as_u64().unwrap();
    assert!(held > 2000, "two images' own bytes: {v}");
    let table = ok(&s, &args).await;
    assert!(
        table.contains(&format!("would take {} out of use", human(held))),
        "{table}"
    );
    assert_eq!(
        oci_tags(&s.base, "dry/app").await.unwrap(),
        ["main", "pr-1", "pr-2"],
        "a dry run deletes nothing"
    );
}
