//! `bench-dryrun`: push latency while GC dry runs read a large registry with a full review
//! queue. A registry of `--blobs` blobs is written directly with every review its pushes
//! queued left in the queues (the background workers are off, so nothing drains them); then,
//! in each round, one client pushes small images one after another, first with nothing else
//! running (quiet) and then while dry runs follow one another without pause. The figure is
//! each phase's p99 push latency and their ratio (the target: no more than 2×). Shipshape only;
//! results go to `bench/results/dryrun.md` and `dryrun.json`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use shipshape_bench::gc::load;
use shipshape_bench::gc::model::Model;
use shipshape_bench::gc::shipshape;
use shipshape_bench::report::{Better, Figure, Report};
use shipshape_bench::servers::Server;
use shipshape_bench::stats::Samples;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug)]
#[command(about = "Push latency while GC dry runs read a registry with a full review queue")]
struct Args {
    /// Registry size in blobs (about ten per manifest); the queue holds about one review per
    /// blob and per manifest.
    #[arg(long, default_value_t = 100_000)]
    blobs: u64,
    /// Pushes per phase and round.
    #[arg(long, default_value_t = 400)]
    pushes: usize,
    /// Rounds (quiet, then during dry runs), each on the same registry.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// The shipshape binary (a release build).
    #[arg(long, default_value = "target/release/shipshape")]
    shipshape: PathBuf,
    /// Where the registry is written (removed first).
    #[arg(long, default_value = "target/bench-dryrun")]
    work: PathBuf,
    /// Where dryrun.md and dryrun.json go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A smoke run: 10 000 blobs, 60 pushes, one round.
    #[arg(long)]
    quick: bool,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// Push latencies (seconds) of `n` pushes one after another; with `during`, only those that
/// started while a dry run was running count, and the second value says how many did not.
async fn pushes(
    base: &str,
    label: &str,
    n: usize,
    during: Option<&AtomicBool>,
) -> Result<(Samples, usize), Error> {
    let http = http();
    let uploads = AtomicU64::new(0);
    let mut latencies = Samples::default();
    let mut outside = 0;
    for k in 0..n {
        let overlapped = during.is_none_or(|d| d.load(Ordering::Acquire));
        let started = Instant::now();
        let tag = format!("{label}-{k}");
        if !load::push(&http, base, "bench-dryrun/pushed", &tag, &uploads).await {
            return Err(format!("push {tag} failed").into());
        }
        if overlapped {
            latencies.push(started.elapsed().as_secs_f64());
        } else {
            outside += 1;
        }
    }
    Ok((latencies, outside))
}

/// Dry runs one after another until `stop`; `running` is set while one runs. Returns each
/// run's duration (seconds) and what the last one reviewed and listed.
async fn dry_runs(
    base: String,
    stop: Arc<AtomicBool>,
    running: Arc<AtomicBool>,
) -> Result<(Samples, serde_json::Value), Error> {
    let http = http();
    let mut durations = Samples::default();
    let mut last = serde_json::Value::Null;
    while !stop.load(Ordering::Acquire) {
        let started = Instant::now();
        let resp = http
            .post(format!("{base}/api/v1/gc/runs"))
            .json(&serde_json::json!({ "dry_run": true }))
            .send()
            .await?;
        if resp.status().as_u16() != 202 {
            return Err(format!("starting a dry run: {}", resp.status()).into());
        }
        running.store(true, Ordering::Release);
        let id = resp.json::<serde_json::Value>().await?["id"].clone();
        loop {
            let run: serde_json::Value = http
                .get(format!("{base}/api/v1/gc/runs/{id}"))
                .send()
                .await?
                .json()
                .await?;
            if run["state"] != "running" {
                running.store(false, Ordering::Release);
                if run["state"] != "succeeded" {
                    return Err(format!("dry run {id} ended {}", run["state"]).into());
                }
                durations.push(started.elapsed().as_secs_f64());
                last = run["figures"].clone();
                break;
            }
            // Polling, as an operator's console does; the run itself is the server's.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok((durations, last))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = Args::parse();
    if args.quick {
        args.blobs = 10_000;
        args.pushes = 60;
        args.repeat = 1;
    }
    let model = Model::new(args.blobs, args.seed);
    if args.work.exists() {
        std::fs::remove_dir_all(&args.work)?;
    }
    let data = args.work.join("shipshape");
    std::fs::create_dir_all(&data)?;
    let t = Instant::now();
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - 30 * 24 * 3600 * 1000;
    shipshape::populate_queued(&model, &data, start_ms).await?;
    let populated = t.elapsed().as_secs_f64();
    let catalogue = shipshape_meta::Catalogue::open_sqlite(&data.join("catalogue.db")).await?;
    let depths = shipshape_meta::queue::queue_depths(&mut catalogue.reader().await?).await?;
    catalogue.close().await;
    eprintln!(
        "== {} blobs, {} manifests; queues: {} blob and {} manifest reviews (populated in {populated:.1} s)",
        model.blob_count(),
        model.images.len(),
        depths.blobs,
        depths.manifests
    );

    let server = Server::shipshape(&args.shipshape, &data, &["--gc-workers", "0"])?;
    let base = server.base.clone();
    // Warm the server and the page cache as a registry in service is.
    pushes(&base, "warm", 20, None).await?;

    let (mut quiet_p50, mut quiet_p99) = (Samples::default(), Samples::default());
    let (mut during_p50, mut during_p99) = (Samples::default(), Samples::default());
    let (mut ratio, mut run_secs) = (Samples::default(), Samples::default());
    let mut counted = Vec::new();
    let mut listed = serde_json::Value::Null;
    for round in 0..args.repeat {
        let (quiet, _) = pushes(&base, &format!("quiet-{round}"), args.pushes, None).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let running = Arc::new(AtomicBool::new(false));
        let runs = tokio::spawn(dry_runs(base.clone(), stop.clone(), running.clone()));
        while !running.load(Ordering::Acquire) {
            if runs.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let pushed = pushes(
            &base,
            &format!("during-{round}"),
            args.pushes,
            Some(&running),
        )
        .await;
        stop.store(true, Ordering::Release);
        let (durations, figures) = runs.await??;
        let (during, outside) = pushed?;
        eprintln!(
            "   round {round}: quiet p99 {:.2} ms; during {} dry runs (median {:.2} s): p99 {:.2} ms over {} pushes ({outside} pushed between runs, not counted)",
            quiet.percentile(0.99) * 1e3,
            durations.len(),
            durations.median(),
            during.percentile(0.99) * 1e3,
            during.len()
        );
        quiet_p50.push(quiet.percentile(0.5) * 1e3);
        quiet_p99.push(quiet.percentile(0.99) * 1e3);
        during_p50.push(during.percentile(0.5) * 1e3);
        during_p99.push(during.percentile(0.99) * 1e3);
        ratio.push(during.percentile(0.99) / quiet.percentile(0.99));
        for d in &durations.values {
            run_secs.push(*d);
        }
        counted.push(during.len());
        listed = figures;
    }
    server.stop();

    let mut report = Report::new("Push latency during GC dry runs (bench-dryrun)");
    report.condition(format!(
        "{} blobs, {} manifests, {} repositories, written directly in {populated:.1} s; the \
         queues hold {} blob and {} manifest reviews (`--gc-workers 0`: nothing drains them)",
        model.blob_count(),
        model.images.len(),
        model.repos.len(),
        depths.blobs,
        depths.manifests
    ));
    report.condition(format!(
        "{} pushes per phase and round, one client, one after another (config, a 1 KiB layer, \
         the manifest under a new tag); during the dry runs, only pushes that started while one \
         ran count ({counted:?} per round)",
        args.pushes
    ));
    report.condition(format!("the last dry run's figures: {listed}"));
    let section = "push latency, quiet and during back-to-back dry runs";
    let mut add = |name: &str, unit: &str, s: Samples, note: &str| {
        let mut f = Figure::new(section, name, unit, Better::Lower);
        f.shipshape = s;
        f.note = note.into();
        report.add(f);
    };
    add("push p50, quiet", "ms", quiet_p50, "");
    add("push p99, quiet", "ms", quiet_p99, "");
    add("push p50, during dry runs", "ms", during_p50, "");
    add("push p99, during dry runs", "ms", during_p99, "");
    add(
        "p99 during ÷ p99 quiet",
        "×",
        ratio,
        "target: at most 2 (reported, not asserted)",
    );
    add("dry run", "s", run_secs, "every dry run of every round");
    report.write(&args.out, "dryrun")?;
    Ok(())
}
