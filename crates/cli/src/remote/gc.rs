//! `shipshape gc start|status|cancel|list`: garbage collection runs, in the shape of
//! `doctl registry garbage-collection`.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use shipshape_server::api::model::gc::{RunInfo, RunItems, RunList, StartRun};

use super::client::decode;
use super::output::{self, Format, Table};
use super::{Remote, RemoteArgs, RemoteError, Result};

/// `shipshape gc …`
#[derive(clap::Args, Debug)]
pub struct GcArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: GcCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum GcCommand {
    /// Start a run that deletes what nothing references any more (one run at a time)
    Start {
        /// List what would be deleted, and delete nothing (waits for the list)
        #[arg(long)]
        dry_run: bool,
        /// Delete manifests that no tag, index or present subject holds (default: as the
        /// registry's collector does, `gc.untagged_manifests`, so a run frees what `usage`
        /// calls reclaimable)
        #[arg(long, conflicts_with = "keep_untagged_manifests")]
        include_untagged_manifests: bool,
        /// Keep manifests that no tag, index or present subject holds
        #[arg(long)]
        keep_untagged_manifests: bool,
        /// Grace period for this run only, e.g. `0s` or `10m` (default: the registry's
        /// review delay): garbage younger than this is kept. Whatever the grace, a blob or
        /// manifest a client was just told exists keeps its lease (`gc.lease`), so pushes in
        /// flight never fail
        #[arg(long, value_name = "DURATION")]
        grace: Option<String>,
        /// Also sweep storage for objects the catalogue does not know (crash leftovers); this
        /// lists the whole store, so it takes time in proportion to the store's size
        #[arg(long)]
        sweep: bool,
        /// Wait for the run to finish, showing its progress
        #[arg(long)]
        wait: bool,
    },
    /// Show the active run, with its figures so far (exit 0 also when none is active)
    Status,
    /// Cancel the active run; what it already deleted stays deleted and is reported
    Cancel {
        /// Run id
        id: i64,
    },
    /// List past runs with their figures, newest first
    List {
        /// At most this many runs
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show what a run deleted (or, for a dry run, would delete)
    Items {
        /// Run id
        id: i64,
    },
}

pub async fn run(args: GcArgs) -> Result<()> {
    let remote = args.remote.remote()?;
    let format = args.remote.output;
    match args.command {
        GcCommand::Start {
            dry_run,
            include_untagged_manifests,
            keep_untagged_manifests,
            grace,
            sweep,
            wait,
        } => {
            let untagged = if include_untagged_manifests {
                Some(true)
            } else if keep_untagged_manifests {
                Some(false)
            } else {
                None
            };
            let body = StartRun {
                dry_run,
                include_untagged_manifests: untagged,
                grace,
                sweep: Some(sweep),
            };
            let req = remote.request(Method::POST, "/api/v1/gc/runs").json(&body);
            let mut v = remote.send(req).await?;
            let mut run: RunInfo = decode(&v)?;
            // A dry run is only worth its list: wait for it.
            if wait || dry_run {
                (v, run) = follow(&remote, &run, format).await?;
            }
            if dry_run && format == Format::Table && run.state == "succeeded" {
                let items: RunItems = remote
                    .get_json(&format!("/api/v1/gc/runs/{}/items", run.id))
                    .await?;
                show_items(&items);
                let f = &run.figures;
                println!(
                    "dry run {}: would delete {} manifests, {} blobs, {} links, {} uploads, {} orphans, freeing {}",
                    run.id,
                    f.manifests_deleted,
                    f.blobs_deleted,
                    f.links_deleted,
                    f.uploads_deleted,
                    f.orphans_deleted,
                    output::size(f.bytes_deleted),
                );
                return Ok(());
            }
            show_runs(format, &v, std::slice::from_ref(&run));
            if run.state == "failed" {
                return Err(RemoteError::Protocol(format!(
                    "run {} failed: {}",
                    run.id,
                    run.errors.join("; ")
                )));
            }
            Ok(())
        }
        GcCommand::Status => match remote.get("/api/v1/gc/runs/active").await {
            Ok(v) if format == Format::Json => {
                output::print_json(&v);
                Ok(())
            }
            Ok(v) => {
                runs_table(&[decode(&v)?]);
                Ok(())
            }
            // Nothing running is an answer, not a failure.
            Err(RemoteError::Api { status: 404, .. }) => {
                if format == Format::Json {
                    output::print_json(&Value::Null);
                } else {
                    println!("no garbage collection run is active");
                }
                Ok(())
            }
            Err(e) => Err(e),
        },
        GcCommand::Cancel { id } => {
            let req = remote.request(Method::POST, &format!("/api/v1/gc/runs/{id}/cancel"));
            let run: RunInfo = remote.send_json(req).await?;
            let (v, run) = follow(&remote, &run, Format::Json).await?;
            show_runs(format, &v, std::slice::from_ref(&run));
            Ok(())
        }
        GcCommand::List { limit } => {
            let v = remote
                .get(&format!("/api/v1/gc/runs?limit={limit}"))
                .await?;
            if format == Format::Json {
                output::print_json(&v);
                return Ok(());
            }
            let list: RunList = decode(&v)?;
            runs_table(&list.runs);
            Ok(())
        }
        GcCommand::Items { id } => {
            let v = remote.get(&format!("/api/v1/gc/runs/{id}/items")).await?;
            if format == Format::Json {
                output::print_json(&v);
                return Ok(());
            }
            show_items(&decode(&v)?);
            Ok(())
        }
    }
}

/// Polls a run until it has finished; a progress line on a terminal shows what it did so far.
/// Returns the last answer as sent, and read.
async fn follow(remote: &Remote, run: &RunInfo, format: Format) -> Result<(Value, RunInfo)> {
    let id = run.id;
    let bar = (format == Format::Table && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        let v = remote.get(&format!("/api/v1/gc/runs/{id}")).await?;
        let run: RunInfo = decode(&v)?;
        if let Some(bar) = &bar {
            let f = &run.figures;
            bar.set_message(format!(
                "run {id}: reviewed {}, deleted {} manifests, {} blobs, {}",
                f.reviewed,
                f.manifests_deleted,
                f.blobs_deleted,
                output::size(f.bytes_deleted),
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

fn show_items(items: &RunItems) {
    let mut t = Table::new(&["KIND", "REPOSITORY", "TARGET", "SIZE"]);
    for i in &items.items {
        t.row(vec![
            i.kind.clone(),
            output::or_dash(i.repository.as_deref()),
            i.target.clone(),
            output::size(i.size),
        ]);
    }
    t.print();
}

/// Runs as the server sent them (`raw`) with `-o json`, else as a table.
fn show_runs(format: Format, raw: &Value, runs: &[RunInfo]) {
    if format == Format::Json {
        output::print_json(raw);
    } else {
        runs_table(runs);
    }
}

fn runs_table(runs: &[RunInfo]) {
    let mut t = Table::new(&[
        "ID",
        "STATE",
        "DRY RUN",
        "STARTED",
        "DURATION",
        "MANIFESTS",
        "BLOBS",
        "ORPHANS",
        "FREED",
        "STARTED BY",
        "ERRORS",
    ]);
    for r in runs {
        let f = &r.figures;
        t.row(vec![
            r.id.to_string(),
            r.state.clone(),
            r.dry_run.to_string(),
            output::time(r.started_at.as_str()),
            r.duration_ms
                .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".into()),
            f.manifests_deleted.to_string(),
            f.blobs_deleted.to_string(),
            f.orphans_deleted.to_string(),
            output::size(f.bytes_deleted),
            r.started_by.clone(),
            r.errors.len().to_string(),
        ]);
    }
    t.print();
}
