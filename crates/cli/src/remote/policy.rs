//! `shipshape policy ls|get|apply|rm|preview|run|runs|show|cancel`: retention policies of a
//! running registry. Policy files are TOML or JSON; `apply` sends the file as written and the
//! registry validates it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::output::{self, Format, Table};
use super::{Remote, RemoteArgs, RemoteError, Result};

/// `shipshape policy …`
#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// List the applied policies with their scope and schedule
    Ls,
    /// Show one policy as applied (TOML, or the API's JSON with --output json)
    Get {
        /// Policy name
        name: String,
    },
    /// Create or replace the policy a TOML or JSON file describes
    Apply {
        /// The policy file
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// Remove a policy; what it deleted stays deleted, its runs stay in the history
    Rm {
        /// Policy name
        name: String,
    },
    /// Show, for every tag in scope, keep or delete and the rule that decided, and the bytes
    /// the deletions would take out of use: of an applied policy by name, or of a draft file
    /// with -f
    Preview {
        /// An applied policy
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        name: Option<String>,
        /// A draft policy file, not applied
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// Also list the tags that are kept
        #[arg(long)]
        all: bool,
    },
    /// Run a policy now
    Run {
        /// Policy name
        name: String,
        /// Wait for the run to finish, showing its progress
        #[arg(long)]
        wait: bool,
    },
    /// List runs, newest first (of one policy, or of all)
    Runs {
        /// Only the runs of this policy
        name: Option<String>,
        /// At most this many runs
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one run with what it deleted and the rule that decided each
    Show {
        /// Run id, as `policy runs` lists them
        id: i64,
    },
    /// Cancel a run after the repository it is working on
    Cancel {
        /// Run id
        id: i64,
    },
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| RemoteError::Usage(format!("cannot read {}: {e}", path.display())))
}

/// The policy name a file declares, so `apply` knows where to send it. The registry validates
/// the whole document; this only finds the name.
fn declared_name(text: &str, path: &Path) -> Result<String> {
    let parsed: Option<String> = if text.trim_start().starts_with('{') {
        serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v["name"].as_str().map(str::to_string))
    } else {
        toml::from_str::<toml::Table>(text)
            .ok()
            .and_then(|t| t.get("name").and_then(|n| n.as_str()).map(str::to_string))
    };
    match parsed {
        Some(n) => Ok(n),
        // Let the registry explain what is wrong with the document.
        None if text.trim().is_empty() => {
            Err(RemoteError::Usage(format!("{} is empty", path.display())))
        }
        None => Ok("-".into()),
    }
}

pub async fn run(args: PolicyArgs) -> Result<()> {
    let remote = args.remote.remote()?;
    let format = args.remote.output;
    match args.command {
        PolicyCommand::Ls => {
            let v = remote.get("/api/v1/policies").await?;
            if format == Format::Json {
                output::print_json(&v);
                return Ok(());
            }
            let mut t = Table::new(&["NAME", "REPOSITORIES", "SCHEDULE", "NEXT RUN", "UPDATED"]);
            for p in v["policies"].as_array().into_iter().flatten() {
                let repos = p["document"]["repositories"]
                    .as_array()
                    .map(|a| a.iter().map(output::text).collect::<Vec<_>>().join(","))
                    .unwrap_or_default();
                t.row(vec![
                    output::text(&p["name"]),
                    repos,
                    p["schedule"].as_str().unwrap_or("manual").to_string(),
                    output::json_time(&p["next_run_at"]),
                    output::json_time(&p["updated_at"]),
                ]);
            }
            t.print();
            Ok(())
        }
        PolicyCommand::Get { name } => {
            let v = remote.get(&format!("/api/v1/policies/{name}")).await?;
            if format == Format::Json {
                output::print_json(&v);
            } else {
                let doc = toml::to_string(&v["document"])
                    .map_err(|e| RemoteError::Protocol(e.to_string()))?;
                print!("{doc}");
            }
            Ok(())
        }
        PolicyCommand::Apply { file } => {
            let text = read_file(&file)?;
            let name = declared_name(&text, &file)?;
            let req = remote
                .request(Method::PUT, &format!("/api/v1/policies/{name}"))
                .header("content-type", "text/plain; charset=utf-8")
                .body(text);
            let v = remote.send(req).await?;
            if format == Format::Json {
                output::print_json(&v);
            } else {
                let next = v["next_run_at"]
                    .as_str()
                    .map(|n| format!("; next run {n}"))
                    .unwrap_or_else(|| "; runs only when started".into());
                println!("applied policy {}{next}", output::text(&v["name"]));
            }
            Ok(())
        }
        PolicyCommand::Rm { name } => {
            output::confirm(args.remote.yes, &format!("remove policy {name}"))?;
            let req = remote.request(Method::DELETE, &format!("/api/v1/policies/{name}"));
            remote.send(req).await?;
            if format == Format::Table {
                println!("removed policy {name}");
            }
            Ok(())
        }
        PolicyCommand::Preview { name, file, all } => {
            let v = match (name, file) {
                (Some(name), _) => {
                    let req =
                        remote.request(Method::POST, &format!("/api/v1/policies/{name}/preview"));
                    remote.send(req).await?
                }
                (None, Some(file)) => {
                    let req = remote
                        .request(Method::POST, "/api/v1/policies/preview")
                        .header("content-type", "text/plain; charset=utf-8")
                        .body(read_file(&file)?);
                    remote.send(req).await?
                }
                (None, None) => unreachable!("clap requires a name or a file"),
            };
            if format == Format::Json {
                output::print_json(&v);
                return Ok(());
            }
            let mut t = Table::new(&["REPOSITORY", "TAG/MANIFEST", "ACTION", "RULE", "REASON"]);
            for r in v["repositories"].as_array().into_iter().flatten() {
                for d in r["decisions"].as_array().into_iter().flatten() {
                    if !all && d["action"] != "delete" {
                        continue;
                    }
                    t.row(vec![
                        output::text(&r["repository"]),
                        output::text(&d["target"]),
                        output::text(&d["action"]),
                        output::text(&d["rule"]),
                        output::text(&d["reason"]),
                    ]);
                }
            }
            t.print();
            let f = &v["figures"];
            println!(
                "{} tags and {} untagged manifests would be deleted in {} of {} repositories ({} tags evaluated)",
                output::text(&f["tags_deleted"]),
                output::text(&f["manifests_deleted"]),
                output::text(&f["repositories_affected"]),
                output::text(&f["repositories"]),
                output::text(&f["tags_evaluated"]),
            );
            println!(
                "that would take {} out of use: {} held for restore for the restore window, {} reclaimable at once",
                output::size(
                    f["bytes_held_for_restore"].as_u64().unwrap_or(0)
                        + f["bytes_reclaimable"].as_u64().unwrap_or(0)
                ),
                output::size_of(&f["bytes_held_for_restore"]),
                output::size_of(&f["bytes_reclaimable"]),
            );
            Ok(())
        }
        PolicyCommand::Run { name, wait } => {
            let req = remote.request(Method::POST, &format!("/api/v1/policies/{name}/runs"));
            let mut v = remote.send(req).await?;
            if wait {
                v = follow(&remote, &v, format).await?;
            }
            show_runs(format, std::slice::from_ref(&v), &v);
            if v["state"] == "failed" {
                let errors = v["errors"].as_array().cloned().unwrap_or_default();
                let reason = errors
                    .iter()
                    .map(output::text)
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(RemoteError::Protocol(format!(
                    "policy run {} failed: {reason}",
                    v["id"]
                )));
            }
            Ok(())
        }
        PolicyCommand::Runs { name, limit } => {
            let path = match name {
                Some(n) => format!("/api/v1/policies/{n}/runs?limit={limit}"),
                None => format!("/api/v1/policy-runs?limit={limit}"),
            };
            let v = remote.get(&path).await?;
            let runs = v["runs"].as_array().cloned().unwrap_or_default();
            show_runs(format, &runs, &v);
            Ok(())
        }
        PolicyCommand::Show { id } => {
            let v = remote.get(&format!("/api/v1/policy-runs/{id}")).await?;
            if format == Format::Json {
                output::print_json(&v);
                return Ok(());
            }
            show_runs(format, std::slice::from_ref(&v), &v);
            let mut t = Table::new(&["REPOSITORY", "KIND", "TARGET", "DIGEST", "RULE", "REASON"]);
            for i in v["items"].as_array().into_iter().flatten() {
                t.row(vec![
                    output::text(&i["repository"]),
                    output::text(&i["kind"]),
                    output::text(&i["target"]),
                    output::json_digest(&i["digest"]),
                    output::text(&i["rule"]),
                    output::text(&i["reason"]),
                ]);
            }
            t.print();
            Ok(())
        }
        PolicyCommand::Cancel { id } => {
            let req = remote.request(Method::POST, &format!("/api/v1/policy-runs/{id}/cancel"));
            let v = remote.send(req).await?;
            let v = follow(&remote, &v, Format::Json).await?;
            show_runs(format, std::slice::from_ref(&v), &v);
            Ok(())
        }
    }
}

/// Polls a run until it has finished; a progress line on a terminal shows what it did so far.
async fn follow(remote: &Remote, run: &Value, format: Format) -> Result<Value> {
    let id = run["id"].clone();
    let bar = (format == Format::Table && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        let v = remote.get(&format!("/api/v1/policy-runs/{id}")).await?;
        if let Some(bar) = &bar {
            let f = &v["figures"];
            bar.set_message(format!(
                "policy run {id}: {} repositories, {} tags deleted, {} untagged manifests, {} freed",
                output::text(&f["repositories"]),
                output::text(&f["tags_deleted"]),
                output::text(&f["manifests_deleted"]),
                output::size_of(&f["bytes_held_for_restore"]),
            ));
        }
        if v["state"] != "running" {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            return Ok(v);
        }
        tick.tick().await;
    }
}

fn show_runs(format: Format, runs: &[Value], raw: &Value) {
    if format == Format::Json {
        output::print_json(raw);
        return;
    }
    let mut t = Table::new(&[
        "ID",
        "POLICY",
        "TRIGGER",
        "STATE",
        "STARTED",
        "DURATION",
        "REPOS",
        "TAGS",
        "MANIFESTS",
        "HELD FOR RESTORE",
        "RECLAIMABLE",
        "STARTED BY",
        "ERRORS",
    ]);
    for r in runs {
        let f = &r["figures"];
        t.row(vec![
            output::text(&r["id"]),
            output::text(&r["policy"]),
            output::text(&r["trigger"]),
            output::text(&r["state"]),
            output::json_time(&r["started_at"]),
            r["duration_ms"]
                .as_i64()
                .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".into()),
            format!(
                "{}/{}",
                output::text(&f["repositories_affected"]),
                output::text(&f["repositories"])
            ),
            output::text(&f["tags_deleted"]),
            output::text(&f["manifests_deleted"]),
            output::size_of(&f["bytes_held_for_restore"]),
            output::size_of(&f["bytes_reclaimable"]),
            output::text(&r["started_by"]),
            r["errors"].as_array().map_or(0, Vec::len).to_string(),
        ]);
    }
    t.print();
}
