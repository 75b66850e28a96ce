//! `shipshape gc start|status|cancel|list`: garbage collection runs, in the shape of
//! `doctl registry garbage-collection`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

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
            let body = json!({
                "dry_run": dry_run,
                "include_untagged_manifests": untagged,
                "grace": grace,
                "sweep": sweep,
            });
            let req = remote.request(Method::POST, "/api/v1/gc/runs").json(&body);
            let mut v = remote.send(req).await?;
            // A dry run is only worth its list: wait for it.
            if wait || dry_run {
                v = follow(&remote, &v, format).await?;
            }
            if dry_run && format == Format::Table && v["state"] == "succeeded" {
                let items = remote
                    .get(&format!("/api/v1/gc/runs/{}/items", v["id"]))
                    .await?;
                show_items(&items);
                let f = &v["figures"];
                println!(
                    "dry run {}: would delete {} manifests, {} blobs, {} links, {} uploads, {} orphans, freeing {}",
                    v["id"],
                    output::text(&f["manifests_deleted"]),
                    output::text(&f["blobs_deleted"]),
                    output::text(&f["links_deleted"]),
                    output::text(&f["uploads_deleted"]),
                    output::text(&f["orphans_deleted"]),
                    output::size_of(&f["bytes_deleted"]),
                );
                return Ok(());
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
                    "run {} failed: {reason}",
                    v["id"]
                )));
            }
            Ok(())
        }
        GcCommand::Status => match remote.get("/api/v1/gc/runs/active").await {
            Ok(v) => {
                show_runs(format, std::slice::from_ref(&v), &v);
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
            let v = remote.send(req).await?;
            let v = follow(&remote, &v, Format::Json).await?;
            show_runs(format, std::slice::from_ref(&v), &v);
            Ok(())
        }
        GcCommand::List { limit } => {
            let v = remote
                .get(&format!("/api/v1/gc/runs?limit={limit}"))
                .await?;
            let runs = v["runs"].as_array().cloned().unwrap_or_default();
            show_runs(format, &runs, &v);
            Ok(())
        }
        GcCommand::Items { id } => {
            let v = remote.get(&format!("/api/v1/gc/runs/{id}/items")).await?;
            if format == Format::Json {
                output::print_json(&v);
                return Ok(());
            }
            show_items(&v);
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
        let v = remote.get(&format!("/api/v1/gc/runs/{id}")).await?;
        if let Some(bar) = &bar {
            let f = &v["figures"];
            bar.set_message(format!(
                "run {id}: reviewed {}, deleted {} manifests, {} blobs, {}",
                output::text(&f["reviewed"]),
                output::text(&f["manifests_deleted"]),
                output::text(&f["blobs_deleted"]),
                output::size_of(&f["bytes_deleted"]),
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

fn show_items(v: &Value) {
    let mut t = Table::new(&["KIND", "REPOSITORY", "TARGET", "SIZE"]);
    for i in v["items"].as_array().into_iter().flatten() {
        t.row(vec![
            output::text(&i["kind"]),
            output::text(&i["repository"]),
            output::text(&i["target"]),
            output::size_of(&i["size"]),
        ]);
    }
    t.print();
}

fn show_runs(format: Format, runs: &[Value], raw: &Value) {
    if format == Format::Json {
        output::print_json(raw);
        return;
    }
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
        let f = &r["figures"];
        t.row(vec![
            output::text(&r["id"]),
            output::text(&r["state"]),
            output::text(&r["dry_run"]),
            output::json_time(&r["started_at"]),
            r["duration_ms"]
                .as_i64()
                .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".into()),
            output::text(&f["manifests_deleted"]),
            output::text(&f["blobs_deleted"]),
            output::text(&f["orphans_deleted"]),
            output::size_of(&f["bytes_deleted"]),
            output::text(&r["started_by"]),
            r["errors"].as_array().map_or(0, Vec::len).to_string(),
        ]);
    }
    t.print();
}
