//! `bench-nodes`: Shipshape on PostgreSQL + S3 as one node and as three, beside SQLite + disk
//! and Distribution on the same S3 server. Writes `bench/results/nodes.md` and `nodes.json`;
//! `bench/README.md` ("Several nodes and PostgreSQL") explains the figures.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use shipshape_bench::nodes::{self, Plan, Setup};

#[derive(Parser, Debug)]
#[command(about = "Push, pull and manifest GETs on one Shipshape node and on three")]
struct Args {
    /// A short smoke run: small layers, short wrk runs, one round.
    #[arg(long)]
    quick: bool,
    /// Rounds per figure (the median is reported).
    #[arg(long)]
    repeat: Option<usize>,
    /// Length of each wrk run in seconds.
    #[arg(long)]
    wrk_seconds: Option<u64>,
    /// The shipshape binary (default: beside this one, i.e. target/release/shipshape).
    #[arg(long)]
    shipshape: Option<PathBuf>,
    /// The script that starts and stops a throw-away PostgreSQL.
    #[arg(long, default_value = "scripts/postgres")]
    postgres: PathBuf,
    /// Scratch directory for the nodes' data and the S3 bucket (removed at the end).
    #[arg(long, default_value = "/var/tmp/shipshape-bench-nodes")]
    work: PathBuf,
    /// Where nodes.md and nodes.json go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Store the registries' blobs in garage (this binary, run as its own process) instead of
    /// s3s-fs in the bench process: the end-to-end run on a distributed store.
    #[arg(long)]
    garage: Option<PathBuf>,
    /// The Shipshape nodes' `[catalogue] manifest_cache_ttl`, e.g. "0s" to measure every GET
    /// querying the catalogue (default: the nodes' default).
    #[arg(long)]
    manifest_cache_ttl: Option<String>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if let Some(n) = args.repeat {
        plan.repeat = n.max(1);
    }
    if let Some(s) = args.wrk_seconds {
        plan.wrk_duration = Duration::from_secs(s.max(1));
    }
    let shipshape_bin = args.shipshape.unwrap_or_else(|| {
        std::env::current_exe()
            .expect("the running executable")
            .with_file_name("shipshape")
    });
    if !shipshape_bin.exists() {
        eprintln!(
            "error: {} is missing: cargo build --release -p shipshape-cli",
            shipshape_bin.display()
        );
        std::process::exit(2);
    }
    let setup = Setup {
        shipshape_bin,
        postgres_script: args.postgres,
        work: args.work.clone(),
        garage: args.garage.clone(),
        manifest_cache_ttl: args.manifest_cache_ttl.clone(),
    };
    let result = nodes::run(plan, setup).await;
    let _ = std::fs::remove_dir_all(&args.work);
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = report.write(&args.out, "nodes") {
        eprintln!("error: writing results to {}: {e}", args.out.display());
        std::process::exit(1);
    }
}
