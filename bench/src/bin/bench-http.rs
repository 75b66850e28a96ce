//! `bench-http`: the HTTP benchmark of Shipshape beside CNCF Distribution. Writes
//! `bench/results/http.md` and `http.json`; `bench/README.md` explains the figures.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use shipshape_bench::http::{self, Plan, Setup};

#[derive(Parser, Debug)]
#[command(
    about = "Push, pull, manifest reads, concurrency and memory: Shipshape beside Distribution"
)]
struct Args {
    /// A short smoke run: small images, short wrk runs, one repetition.
    #[arg(long)]
    quick: bool,
    /// Runs per figure (the median is reported).
    #[arg(long)]
    repeat: Option<usize>,
    /// Length of the mixed-load soak in seconds (default 60, 10 with --quick).
    #[arg(long)]
    soak: Option<u64>,
    /// Length of each wrk run in seconds.
    #[arg(long)]
    wrk_seconds: Option<u64>,
    /// Only these sections (comma-separated): limits, push, pull, manifests, auth,
    /// concurrent, soak.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The shipshape binary (default: beside this one, i.e. target/release/shipshape).
    #[arg(long)]
    shipshape: Option<PathBuf>,
    /// Scratch directory for images, layouts and registry data (emptied as the run goes).
    #[arg(long, default_value = "/var/tmp/shipshape-bench-http")]
    work: PathBuf,
    /// Where http.md and http.json go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
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
    if let Some(s) = args.soak {
        plan.soak = Duration::from_secs(s);
    }
    if let Some(s) = args.wrk_seconds {
        plan.wrk_duration = Duration::from_secs(s.max(1));
    }
    plan.only = args.only;
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
        work: args.work.clone(),
    };
    let report = match http::run(plan, setup).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let _ = std::fs::remove_dir_all(&args.work);
    if let Err(e) = report.write(&args.out, "http") {
        eprintln!("error: writing results to {}: {e}", args.out.display());
        std::process::exit(1);
    }
}
