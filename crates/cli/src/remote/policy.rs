//! `shipshape policy ls|get|apply|rm|preview|run|runs|show|cancel`: retention policies of a
//! running registry. Policy files are TOML or JSON; `apply` sends the file as written and the
//! registry validates it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use shipshape_server::api::model::policies::{
    PolicyInfo, PolicyList, PolicyRunDetail, PolicyRunInfo, PolicyRunList, PreviewInfo,
};

use super::client::decode;
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
    /// Just the name of a policy document, whatever else it holds.
    #[derive(Deserialize)]
    struct Named {
        name: String,
    }
    let parsed: Option<Named> = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).ok()
    } else {
        toml::from_str(text).ok()
    };
    match parsed {
        Some(n) => Ok(n.name),
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
            let list: PolicyList = decode(&v)?;
            let mut t = Table::new(&["NAME", "SCHEDULE", "NEXT RUN", "UPDATED", "POLICY"]);
            for p in &list.policies {
                t.row(vec![
                    p.name.clone(),
                    p.schedule.as_deref().unwrap_or("manual").to_string(),
                    output::time(p.next_run_at.as_deref()),
                    output::time(p.updated_at.as_str()),
                    p.sentence.clone(),
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
                let policy: PolicyInfo = decode(&v)?;
                let doc = toml::to_string(&policy.document)
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
                let policy: PolicyInfo = decode(&v)?;
                let next = policy
                    .next_run_at
                    .map(|n| format!("; next run {n}"))
                    .unwrap_or_else(|| "; runs only when started".into());
                println!("applied policy {}{next}", policy.name);
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
            let preview: PreviewInfo = decode(&v)?;
            let mut t = Table::new(&["REPOSITORY", "TAG/MANIFEST", "ACTION", "RULE", "REASON"]);
            for r in &preview.repositories {
                for d in &r.decisions {
                    if !all && d.action != "delete" {
                        continue;
                    }
                    t.row(vec![
                        r.repository.clone(),
                        d.target.clone(),
                        d.action.clone(),
                        d.rule.clone(),
                        d.reason.clone(),
                    ]);
                }
            }
            t.print();
            let f = &preview.figures;
            println!(
                "{} tags and {} untagged manifests would be deleted in {} of {} repositories ({} tags evaluated)",
                f.tags_deleted,
                f.manifests_deleted,
                f.repositories_affected,
                f.repositories,
                f.tags_evaluated,
            );
            println!(
                "that would take {} out of use: {} held for restore for the restore window, {} reclaimable at once",
                output::size(f.bytes_held_for_restore + f.bytes_reclaimable),
                output::size(f.bytes_held_for_restore),
                output::size(f.bytes_reclaimable),
            );
            Ok(())
        }
        PolicyCommand::Run { name, wait } => {
            let req = remote.request(Method::POST, &format!("/api/v1/policies/{name}/runs"));
            let mut v = remote.send(req).await?;
            let mut run: PolicyRunInfo = decode(&v)?;
            if wait {
                (v, run) = follow(&remote, &run, format).await?;
            }
            show_runs(format, &v, std::slice::from_ref(&run));
            if run.state == "failed" {
                return Err(RemoteError::Protocol(format!(
                    "policy run {} failed: {}",
                    run.id,
                    run.errors.join("; ")
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
            if format == Format::Json {
                output::print_json(&v);
                return Ok(());
            }
            let list: PolicyRunList = decode(&v)?;
            runs_table(&list.runs);
            Ok(())
        }
        PolicyCommand::Show { id } => {
            let v = remote.get(&format!("/api/v1/policy-runs/{id}")).await?;
            if format == Format::Json {
                output::print_json(&v);
                return Ok(());
            }
            let detail: PolicyRunDetail = decode(&v)?;
            runs_table(std::slice::from_ref(&detail.run));
            let mut t = Table::new(&["REPOSITORY", "KIND", "TARGET", "DIGEST", "RULE", "REASON"]);
            for i in &detail.items {
                t.row(vec![
                    i.repository.clone(),
                    i.kind.clone(),
                    i.target.clone(),
                    output::digest(i.digest.as_str()),
                    i.rule.clone(),
                    i.reason.clone(),
                ]);
            }
            t.print();
            Ok(())
        }
        PolicyCommand::Cancel { id } => {
            let req = remote.request(Method::POST, &format!("/api/v1/policy-runs/{id}/cancel"));
            let run: PolicyRunInfo = remote.send_json(req).await?;
            let (v, run) = follow(&remote, &run, Format::Json).await?;
            show_runs(format, &v, std::slice::from_ref(&run));
            Ok(())
        }
    }
}

/// Polls a run until it has finished; a progress line on a terminal shows what it did so far.
/// Returns the last answer as sent (the run with its items), and the run read from it.
async fn follow(
    remote: &Remote,
    run: &PolicyRunInfo,
    format: Format,
) -> Result<(Value, PolicyRunInfo)> {
    let id = run.id;
    let bar = (format == Format::Table && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        let v = remote.get(&format!("/api/v1/policy-runs/{id}")).await?;
        let run = decode::<PolicyRunDetail>(&v)?.run;
        if let Some(bar) = &bar {
            let f = &run.figures;
            bar.set_message(format!(
                "policy run {id}: {} repositories, {} tags deleted, {} untagged manifests, {} freed",
                f.repositories,
                f.tags_deleted,
                f.manifests_deleted,
                output::size(f.bytes_held_for_restore),
            ));
        }
        if run.state != "running" {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            return Ok((v, run));
        }
        tick.tick().await;
    }
}

/// Runs as the server sent them (`raw`) with `-o json`, else as a table.
fn show_runs(format: Format, raw: &Value, runs: &[PolicyRunInfo]) {
    if format == Format::Json {
        output::print_json(raw);
    } else {
        runs_table(runs);
    }
}

fn runs_table(runs: &[PolicyRunInfo]) {
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
        let f = &r.figures;
        t.row(vec![
            r.id.to_string(),
            r.policy.clone(),
            r.trigger.clone(),
            r.state.clone(),
            output::time(r.started_at.as_str()),
            r.duration_ms
                .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".into()),
            format!("{}/{}", f.repositories_affected, f.repositories),
            f.tags_deleted.to_string(),
            f.manifests_deleted.to_string(),
            output::size(f.bytes_held_for_restore),
            output::size(f.bytes_reclaimable),
            r.started_by.clone(),
            r.errors.len().to_string(),
        ]);
    }
    t.print();
}
