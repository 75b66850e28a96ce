//! The `shipshape` operator commands run as a user would: the built binary against a real
//! server, in table and JSON form, with the confirmation rules of destructive commands.

mod common;

use std::process::{Output, Stdio};

use common::{TestServer, client, manifest_status, oci_tags, pull_verified, push_image};
use reqwest::StatusCode;
use serde_json::Value;

/// Runs `shipshape` with stdin closed (not a terminal) against `s`.
async fn shipshape(s: &TestServer, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipshape"));
    cmd.args(args)
        .env("SHIPSHAPE_REGISTRY", &s.base)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd.output().await.expect("run shipshape")
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

/// Runs a command that must fail with exactly one `error:` line; returns that line.
async fn fails(s: &TestServer, args: &[&str]) -> String {
    let o = shipshape(s, args).await;
    assert!(!o.status.success(), "shipshape {args:?} should fail");
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {err:?}");
    assert!(lines[0].starts_with("error: "), "{err:?}");
    lines[0].to_string()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_and_tag_listings_in_both_forms() {
    let s = TestServer::start().await;
    let c = client();
    let d1 = push_image(&c, &s.base, "team/app", "v1", 1).await;
    push_image(&c, &s.base, "team/app", "v2", 2).await;
    push_image(&c, &s.base, "other", "latest", 3).await;

    let table = ok(&s, &["repo", "ls"]).await;
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert_eq!(row(&table, "team/app")[1..3], ["2", "2"], "{table}");
    assert_eq!(row(&table, "other")[1..3], ["1", "1"], "{table}");
    let v = json(&s, &["repo", "ls"]).await;
    let names: Vec<&str> = v["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other", "team/app"]);

    let table = ok(&s, &["tag", "ls", "team/app"]).await;
    let v1 = row(&table, "v1");
    assert_eq!(v1[1], &d1[..19], "short digest: {table}");
    assert!(
        v1[2].ends_with("KiB") || v1[2].ends_with(" B"),
        "human size: {table}"
    );
    // --limit: the first tags in the order asked for, and a word on stderr that there are more.
    let o = shipshape(&s, &["tag", "ls", "team/app", "--limit", "1", "--reverse"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(row(&stdout(&o), "v2")[0], "v2");
    assert!(!stdout(&o).contains("v1"), "{}", stdout(&o));
    assert!(stderr(&o).contains("more tags match"), "{}", stderr(&o));
    let o = shipshape(&s, &["tag", "ls", "team/app", "--limit", "2"]).await;
    assert!(!stderr(&o).contains("more tags"), "{}", stderr(&o));
    let v = json(&s, &["tag", "ls", "team/app"]).await;
    assert_eq!(v["tags"][0]["name"], "v1");
    assert_eq!(v["tags"][0]["digest"], d1.as_str());
    assert!(v["tags"][0]["size"].as_u64().unwrap() > 1000);

    // --registry beats the environment.
    let o = shipshape(&s, &["repo", "ls", "--registry", "http://127.0.0.1:1"]).await;
    assert!(!o.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_rm_history_and_restore() {
    let s = TestServer::start().await;
    let c = client();
    let d1 = push_image(&c, &s.base, "cli/app", "v1", 1).await;
    let d2 = push_image(&c, &s.base, "cli/app", "v2", 2).await;

    let out = ok(&s, &["tag", "rm", "--yes", "cli/app", "v1"]).await;
    assert!(out.contains("deleted cli/app:v1"), "{out}");
    assert_eq!(
        manifest_status(&s.base, "cli/app", "v1").await,
        StatusCode::NOT_FOUND
    );
    let v = json(&s, &["tag", "rm", "--yes", "cli/app", "v2"]).await;
    assert_eq!(v["deleted"][0]["digest"], d2.as_str());
    assert_eq!(
        oci_tags(&s.base, "cli/app").await.unwrap(),
        Vec::<String>::new()
    );

    let table = ok(&s, &["tag", "history", "cli/app", "v1"]).await;
    let actions: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(actions, ["deleted", "pushed"], "{table}");
    let v = json(&s, &["tag", "history", "cli/app", "v1"]).await;
    assert_eq!(v["entries"][0]["action"], "deleted");
    assert_eq!(v["entries"][0]["from_digest"], d1.as_str());
    assert_eq!(v["entries"][1]["actor"], "anonymous");

    let out = ok(&s, &["tag", "restore", "cli/app", "v1"]).await;
    assert!(
        out.contains(&format!("restored cli/app:v1 -> {d1}")),
        "{out}"
    );
    assert_eq!(pull_verified(&s.base, "cli/app", "v1").await, d1);
    let v = json(&s, &["tag", "restore", "cli/app", "v2"]).await;
    assert_eq!(v["digest"], d2.as_str());
    assert_eq!(v["replaced"], Value::Null);
    assert_eq!(oci_tags(&s.base, "cli/app").await.unwrap(), ["v1", "v2"]);

    // A reused name: refused with the API's reason, then forced with --yes.
    ok(&s, &["tag", "rm", "--yes", "cli/app", "v1"]).await;
    let d3 = push_image(&c, &s.base, "cli/app", "v1", 3).await;
    let line = fails(&s, &["tag", "restore", "cli/app", "v1"]).await;
    assert!(line.contains(&d3) && line.contains("force"), "{line}");
    let v = json(&s, &["tag", "restore", "cli/app", "v1", "--force", "--yes"]).await;
    assert_eq!(v["replaced"], d3.as_str());
    assert_eq!(pull_verified(&s.base, "cli/app", "v1").await, d1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_rm_previews_then_deletes_the_same_tags() {
    let s = TestServer::start().await;
    let c = client();
    for (i, tag) in ["a", "b", "keep-1", "c"].iter().enumerate() {
        push_image(&c, &s.base, "bulk/cli", tag, i as u64).await;
    }
    let args = [
        "tag",
        "rm",
        "bulk/cli",
        "--keep-regex",
        "keep-.*",
        "--delete-regex",
        "[a-c]",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let preview = json(&s, &dry).await;
    let mut would: Vec<&str> = preview["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    would.sort();
    assert_eq!(would, ["a", "b", "c"]);
    let table = ok(&s, &dry).await;
    assert_eq!(row(&table, "keep-1")[1], "kept", "{table}");
    assert!(table.contains("3 tag(s) would be deleted"), "{table}");
    assert_eq!(oci_tags(&s.base, "bulk/cli").await.unwrap().len(), 4);

    let mut real = args.to_vec();
    real.push("--yes");
    let done = json(&s, &real).await;
    assert_eq!(done["deleted"].as_array().unwrap().len(), 3);
    assert_eq!(oci_tags(&s.base, "bulk/cli").await.unwrap(), ["keep-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_events() {
    let s = TestServer::start().await;
    let c = client();
    push_image(&c, &s.base, "use/a", "v1", 1).await;
    push_image(&c, &s.base, "use/b", "v1", 2).await;
    ok(&s, &["tag", "rm", "--yes", "use/b", "v1"]).await;

    let table = ok(&s, &["usage"]).await;
    assert!(table.starts_with("REPOSITORY"), "{table}");
    row(&table, "use/a");
    row(&table, "use/b");
    assert_eq!(row(&table, "(total)")[7], "4", "four blobs: {table}");
    assert_eq!(row(&table, "(total)")[8], "2", "two manifests: {table}");
    let v = json(&s, &["usage"]).await;
    let mut manifest_bytes = 0;
    for repo in ["use/a", "use/b"] {
        let m = s
            .api_ok(&format!("/api/v1/repositories/{repo}/-/manifests"))
            .await;
        for m in m["manifests"].as_array().unwrap() {
            manifest_bytes += m["size"].as_u64().unwrap();
        }
    }
    assert_eq!(
        v["total"]["stored_bytes"].as_u64().unwrap(),
        s.stored_blob_bytes().await + manifest_bytes,
        "blobs as stored on disk, and manifests: {v}"
    );
    // One repository's figures are that repository's only.
    let v = json(&s, &["usage", "use/a"]).await;
    assert_eq!(v["name"], "use/a", "{v}");
    assert!(v.get("total").is_none(), "{v}");
    let table = ok(&s, &["usage", "use/a"]).await;
    assert_eq!(table.lines().count(), 2, "a header and use/a: {table}");
    assert!(!table.contains("(total)"), "{table}");

    let table = ok(&s, &["events", "--repository", "use/b"]).await;
    let actions: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(5).unwrap())
        .collect();
    assert_eq!(actions, ["tag.delete", "tag.push"], "{table}");
    let v = json(&s, &["events", "--action", "tag.push", "--limit", "1"]).await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    assert_eq!(v["events"][0]["repository"], "use/b");
    let older = v["next"].as_i64().expect("a next page").to_string();
    let v = json(&s, &["events", "--action", "tag.push", "--before", &older]).await;
    assert_eq!(v["events"][0]["repository"], "use/a");
    let v = json(
        &s,
        &["events", "--since", "1h", "--until", "2000-01-01T00:00:00Z"],
    )
    .await;
    assert_eq!(v["events"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destructive_commands_without_yes_refuse_off_a_terminal() {
    let s = TestServer::start().await;
    let c = client();
    push_image(&c, &s.base, "safe/app", "v1", 1).await;
    ok(&s, &["tag", "rm", "--yes", "safe/app", "v1"]).await;
    push_image(&c, &s.base, "safe/app", "v1", 2).await;
    let before = s.footprint().await;
    for args in [
        &["repo", "rm", "safe/app"][..],
        &["tag", "rm", "safe/app", "v1"],
        &["tag", "rm", "safe/app", "--keep-latest", "0"],
        &["tag", "restore", "safe/app", "v1", "--force"],
    ] {
        let line = fails(&s, args).await;
        assert!(line.contains("--yes"), "{args:?}: {line}");
        assert!(line.contains("not a terminal"), "{args:?}: {line}");
    }
    assert_eq!(s.footprint().await, before, "nothing was deleted");
    // A dry run is not destructive and needs no --yes.
    ok(
        &s,
        &["tag", "rm", "safe/app", "--keep-latest", "0", "--dry-run"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_one_line_with_the_reason() {
    let s = TestServer::start().await;
    let line = fails(&s, &["tag", "ls", "nope/app"]).await;
    assert_eq!(line, "error: repository nope/app is not known");
    let line = fails(&s, &["repo", "rm", "--yes", "nope/app"]).await;
    assert_eq!(line, "error: repository nope/app is not known");
    let line = fails(&s, &["usage", "nope/app"]).await;
    assert!(line.contains("nope/app"), "{line}");
    let line = fails(&s, &["events", "--limit", "0"]).await;
    assert!(line.contains("limit"), "{line}");
    let line = fails(&s, &["repo", "ls", "--registry", "http://127.0.0.1:1"]).await;
    assert!(
        line.starts_with("error: cannot reach the registry at http://127.0.0.1:1"),
        "{line}"
    );
}

const POLICY: &str = r#"
name = "ci"
repositories = ["ci/*"]

[tags]
protected = ["stable"]

[keep]
latest_pushed = 1

[delete]
older_than = "0s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_commands_apply_preview_run_and_remove() {
    let s = TestServer::start().await;
    let c = client();
    for (tag, seed) in [("stable", 1), ("b1", 2), ("b2", 3), ("b3", 4)] {
        push_image(&c, &s.base, "ci/app", tag, seed).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ci.toml");
    std::fs::write(&file, POLICY).unwrap();
    let file = file.to_str().unwrap();

    let out = ok(&s, &["policy", "apply", "-f", file]).await;
    assert_eq!(out, "applied policy ci; runs only when started\n");
    let table = ok(&s, &["policy", "ls"]).await;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("ci/*") && table.contains("manual"),
        "{table}"
    );
    // Each policy is said in one sentence (the API's `sentence`).
    assert!(table.contains("In ci/*, "), "{table}");
    // `get` gives back a TOML document that applies again unchanged.
    let got = ok(&s, &["policy", "get", "ci"]).await;
    assert!(got.contains("latest_pushed = 1"), "{got}");
    std::fs::write(dir.path().join("again.toml"), &got).unwrap();
    ok(
        &s,
        &[
            "policy",
            "apply",
            "-f",
            dir.path().join("again.toml").to_str().unwrap(),
        ],
    )
    .await;

    let preview = ok(&s, &["policy", "preview", "ci"]).await;
    assert!(
        preview.contains("b1") && preview.contains("b2"),
        "{preview}"
    );
    assert!(!preview.contains("stable"), "kept tags only with --all");
    assert!(
        preview.contains("2 tags and 0 untagged manifests would be deleted in 1 of 1 repositories"),
        "{preview}"
    );
    let all = ok(&s, &["policy", "preview", "ci", "--all"]).await;
    assert!(all.contains("protected"), "{all}");
    let draft = json(&s, &["policy", "preview", "-f", file]).await;
    assert_eq!(draft["figures"]["tags_deleted"], 2);

    let run = json(&s, &["policy", "run", "ci", "--wait"]).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let mut left = oci_tags(&s.base, "ci/app").await.unwrap();
    left.sort();
    assert_eq!(left, ["b3", "stable"]);
    let shown = ok(&s, &["policy", "show", &run["id"].to_string()]).await;
    assert!(shown.contains("delete_older_than"), "{shown}");
    let runs = json(&s, &["policy", "runs", "ci"]).await;
    assert_eq!(runs["runs"][0]["id"], run["id"]);

    // A protected tag needs the override, which is then logged.
    let line = fails(&s, &["tag", "rm", "--yes", "ci/app", "stable"]).await;
    assert!(line.contains("protected by policy ci"), "{line}");
    assert!(
        line.contains("--override-protection") && !line.contains("override_protection"),
        "the refusal names the CLI's flag, not the API's field: {line}"
    );
    ok(
        &s,
        &[
            "tag",
            "rm",
            "--yes",
            "--override-protection",
            "ci/app",
            "stable",
        ],
    )
    .await;

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"ci\"\nrepositories = [\"ci/*\"]\n[tags]\ninclude = [\"regex:[\"]\n[delete]\nolder_than = \"1d\"\n").unwrap();
    let line = fails(&s, &["policy", "apply", "-f", bad.to_str().unwrap()]).await;
    assert!(line.contains("tags.include[0]"), "{line}");

    let line = fails(&s, &["policy", "rm", "ci"]).await;
    assert!(line.contains("--yes"), "{line}");
    ok(&s, &["policy", "rm", "--yes", "ci"]).await;
    let line = fails(&s, &["policy", "get", "ci"]).await;
    assert_eq!(line, "error: policy ci does not exist");
}
