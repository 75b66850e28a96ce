//! `bench-gc`: garbage collection in Shipshape beside CNCF Distribution.
//!
//! For each size, both registries are given the same content (written directly, then checked
//! by pulling tags over HTTP), 1% of the tags are deleted over HTTP, and the time until the
//! storage is reclaimed is measured: Shipshape's online run (quiet, with the storage sweep too,
//! without background workers, and under push/pull load) and Distribution's
//! `garbage-collect --delete-untagged` with the registry stopped (quiet and under load, the whole
//! unavailable window counted). Every round checks on disk that exactly the unshared blobs of
//! the deleted images went. Results go to `bench/results/gc.md` and `gc.json`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use shipshape_bench::gc::load::{Load, LoadLog, OpKind, PullTarget};
use shipshape_bench::gc::model::{Garbage, Holdings, MANIFEST_TYPE, Model, Rng};
use shipshape_bench::gc::{count_files, distribution, shipshape};
use shipshape_bench::nodes::Postgres;
use shipshape_bench::report::{Better, Figure, Report};
use shipshape_bench::servers::{DISTRIBUTION_BIN, Server};
use shipshape_bench::stats::Samples;
use shipshape_meta::Catalogue;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug)]
#[command(about = "Garbage collection: Shipshape's online run beside Distribution's offline pass")]
struct Args {
    /// Registry sizes in blobs (about ten blobs per manifest).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<u64>,
    /// Rounds per variant; each deletes a fresh 1% of the tags.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// The shipshape binary (a release build).
    #[arg(long, default_value = "target/release/shipshape")]
    shipshape: PathBuf,
    /// Where the registries' data is written (removed per size unless --keep).
    #[arg(long, default_value = "target/bench-gc")]
    work: PathBuf,
    #[arg(long)]
    keep: bool,
    /// Keep Shipshape's populated registry in `--work` and measure on it again next time: a
    /// later run with `--reuse` starts where the last one stopped (the rounds it took are
    /// recorded beside the data) instead of populating for up to 20 minutes. Shipshape only.
    #[arg(long)]
    reuse: bool,
    /// Where gc.md and gc.json go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Concurrent pullers and pushers of the load.
    #[arg(long, default_value_t = 4)]
    pullers: usize,
    #[arg(long, default_value_t = 2)]
    pushers: usize,
    /// The grace period each Shipshape run is given. Tags are deleted this long (plus a margin)
    /// before the run starts; the load's in-flight pushes stay protected by it.
    #[arg(long, default_value = "1s")]
    grace: String,
    /// A second shipshape binary measured beside `--shipshape` on the same registry: every
    /// round of every variant runs once on each, on a fresh server, alternating which goes
    /// first. Its figures get a section of their own. For A/B comparisons of a change, where
    /// the machine's speed from one hour to the next would otherwise decide.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Measure only one registry: `shipshape` or `distribution`.
    #[arg(long)]
    only: Option<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A smoke run: one small registry, one round per variant.
    #[arg(long)]
    quick: bool,
    /// Also measure Shipshape on a PostgreSQL catalogue (blobs on local disk, as on SQLite):
    /// the same registry in a fresh database, the variants in `POSTGRES_VARIANTS`. The server is
    /// the one `SHIPSHAPE_TEST_POSTGRES` names, else one started with `--postgres-script`.
    #[arg(long)]
    postgres: bool,
    #[arg(long, default_value = "scripts/postgres")]
    postgres_script: PathBuf,
}

/// The variants measured on PostgreSQL too (`--postgres`).
const POSTGRES_VARIANTS: [&str; 3] = ["quiet, 10 tags deleted", "quiet", "under load"];

/// One Shipshape way of running a collection.
struct Variant {
    name: &'static str,
    flags: &'static [&'static str],
    sweep: bool,
    load: bool,
    /// Tags deleted per round when fixed; otherwise 1% of them.
    churn: Option<usize>,
}

/// Tags the fixed-churn variant deletes at every size.
const FIXED_CHURN: usize = 10;

const SHIPSHAPE_VARIANTS: [Variant; 5] = [
    Variant {
        name: "quiet, 10 tags deleted",
        flags: &[],
        sweep: false,
        load: false,
        churn: Some(FIXED_CHURN),
    },
    Variant {
        name: "quiet",
        flags: &[],
        sweep: false,
        load: false,
        churn: None,
    },
    // The storage sweep lists the whole store for objects a crash left: its cost follows the
    // store's size, so runs leave it out unless asked, and it is measured on its own.
    Variant {
        name: "quiet, with the storage sweep",
        flags: &[],
        sweep: true,
        load: false,
        churn: None,
    },
    Variant {
        name: "quiet, --gc-workers 0",
        flags: &["--gc-workers", "0"],
        sweep: false,
        load: false,
        churn: None,
    },
    Variant {
        name: "under load",
        flags: &[],
        sweep: false,
        load: true,
        churn: None,
    },
];

/// What one round measured.
#[derive(Default, Debug)]
struct Round {
    /// Deleting the round's tags over HTTP.
    delete_s: f64,
    /// From the start of the collection until the storage is reclaimed.
    reclaim_s: f64,
    /// Distribution: from stopping the registry until it serves again.
    window_s: f64,
    /// Shipshape: the run's own duration as it records it.
    run_ms: f64,
    blobs_freed: u64,
    manifests_freed: u64,
    links_freed: u64,
    /// Queue entries the run reviewed (Shipshape).
    reviewed: u64,
    expected_blobs: u64,
    peak_rss_mib: f64,
    /// Bytes the server caused to be written to storage during the run (Shipshape): the
    /// catalogue's log and checkpoints; blob deletions write nothing.
    storage_writes: u64,
    /// Everything that had to go went, nothing else of the registry did.
    exact: bool,
    check: String,
    load: Option<LoadFigures>,
}

#[derive(Debug, Default, Clone, Copy)]
struct LoadFigures {
    pulls_before: f64,
    pulls_during: f64,
    pushes_before: f64,
    pushes_during: f64,
    pull_gap: f64,
    push_gap: f64,
    failures_during: usize,
}

/// The load's figures around a collection that ran from `start` to `end` (load clock).
fn load_figures(log: &LoadLog, before: (f64, f64), start: f64, end: f64) -> LoadFigures {
    let (before_from, before_to) = before;
    // A run shorter than a tenth of a second holds too few operations for a rate; the window
    // is widened to 100 ms from its start.
    let during_end = end.max(start + 0.1);
    LoadFigures {
        pulls_before: log.rate(OpKind::Pull, before_from, before_to),
        pulls_during: log.rate(OpKind::Pull, start, during_end),
        pushes_before: log.rate(OpKind::Push, before_from, before_to),
        pushes_during: log.rate(OpKind::Push, start, during_end),
        pull_gap: log.longest_gap(OpKind::Pull, start - 0.5, end + 1.0),
        push_gap: log.longest_gap(OpKind::Push, start - 0.5, end + 1.0),
        failures_during: log.failures(OpKind::Pull, start, during_end)
            + log.failures(OpKind::Push, start, during_end),
    }
}

/// The machine's one-minute load average: the machine is shared, and this says how much.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("an HTTP client")
}

/// Pulls a few tags and checks the manifest bytes and every blob's digest.
async fn verify_pulls(base: &str, model: &Model, holdings: &Holdings) -> Result<String, Error> {
    let http = http();
    let n = model.images.len();
    // Five images spread over the registry, each the first still tagged from its place on.
    let picks: Vec<usize> = [0, n / 4, n / 2, 3 * n / 4, n - 1]
        .into_iter()
        .filter_map(|p| (p..n).find(|&i| !holdings.is_deleted(i as u32)))
        .collect();
    let mut blobs = 0;
    for &i in &picks {
        let im = &model.images[i];
        let repo = &model.repos[im.repo as usize];
        let tag = if im.latest { "latest" } else { &im.tag };
        let r = http
            .get(format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("Accept", MANIFEST_TYPE)
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(format!("pull {repo}:{tag}: {}", r.status()).into());
        }
        if r.bytes().await?.as_ref() != model.manifest_bytes(i as u32).as_slice() {
            return Err(format!("pull {repo}:{tag}: other manifest bytes").into());
        }
        for b in model.blobs_of(i as u32) {
            let bytes = http
                .get(format!("{base}/v2/{repo}/blobs/{}", model.digest(b)))
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            let got = format!("sha256:{}", hex::encode(sha2_digest(&bytes)));
            if got != model.digest(b) {
                return Err(format!("blob {} of {repo}:{tag} has digest {got}", b).into());
            }
            blobs += 1;
        }
    }
    Ok(format!(
        "{} tags pulled, {blobs} blobs' digests checked",
        picks.len()
    ))
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// Up to 2 000 surviving tags for the pullers, each with its config and a unique layer.
fn pull_targets(model: &Model, holdings: &Holdings, seed: u64) -> Arc<Vec<PullTarget>> {
    let survivors = holdings.survivors();
    let mut rng = Rng::new(seed);
    let targets = (0..2000.min(survivors.len()))
        .map(|_| {
            let i = survivors[rng.below(survivors.len() as u64) as usize];
            let im = &model.images[i as usize];
            PullTarget {
                repo: model.repos[im.repo as usize].clone(),
                tag: im.tag.clone(),
                blobs: [
                    model.digest(im.config),
                    model.digest(*im.layers.last().expect("layers")),
                ],
            }
        })
        .collect();
    Arc::new(targets)
}

/// Deletes references over HTTP, a few at a time; returns the seconds it took.
async fn delete_all(urls: Vec<String>) -> Result<f64, Error> {
    let http = http();
    let started = Instant::now();
    let results: Vec<Result<u16, reqwest::Error>> = futures::stream::iter(urls)
        .map(|u| {
            let http = http.clone();
            async move { Ok(http.delete(u).send().await?.status().as_u16()) }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    for r in results {
        let s = r?;
        if s != 202 {
            return Err(format!("delete answered {s}").into());
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Starts the pull/push load of a round (when asked) and lets it run 2 s, so the round has a
/// "before" rate to compare with.
async fn start_load(
    with_load: bool,
    base: &str,
    args: &Args,
    model: &Model,
    holdings: &Holdings,
    label: &str,
) -> Option<Load> {
    let load = with_load.then(|| {
        Load::start(
            base,
            pull_targets(model, holdings, holdings.next_round as u64),
            args.pullers,
            args.pushers,
            label,
        )
    });
    if load.is_some() {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    load
}

fn grace_seconds(g: &str) -> f64 {
    let g = g.trim();
    let (n, unit) = g.split_at(g.find(|c: char| !c.is_ascii_digit()).unwrap_or(g.len()));
    let n: f64 = n.parse().unwrap_or(0.0);
    match unit {
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        _ => n,
    }
}

struct ShipshapeRun<'a> {
    args: &'a Args,
    model: &'a Model,
    keys: &'a [String],
    data: &'a Path,
}

impl ShipshapeRun<'_> {
    async fn round(
        &self,
        server: &Server,
        holdings: &mut Holdings,
        v: &Variant,
        label: &str,
    ) -> Result<Round, Error> {
        let http = http();
        let base = &server.base;
        let store_blobs = self.data.join("store/blobs");
        let files_before = count_files(&store_blobs)?;
        let (images, garbage) = holdings.take(self.model, v.churn.unwrap_or(usize::MAX));
        let load = start_load(v.load, base, self.args, self.model, holdings, label).await;
        let before_until = load.as_ref().map(|l| l.now());
        let urls = images
            .iter()
            .map(|&i| {
                let im = &self.model.images[i as usize];
                format!(
                    "{base}/v2/{}/manifests/{}",
                    self.model.repos[im.repo as usize], im.tag
                )
            })
            .collect();
        let delete_s = delete_all(urls).await?;
        // The deleted tags' manifests become due once the run's grace period has passed.
        tokio::time::sleep(Duration::from_secs_f64(
            grace_seconds(&self.args.grace) + 0.3,
        ))
        .await;
        server.reset_peak_rss();
        let writes_before = server.storage_writes();
        let start_load = load.as_ref().map(|l| l.now());
        let started = Instant::now();
        let run: serde_json::Value = http
            .post(format!("{base}/api/v1/gc/runs"))
            .json(&serde_json::json!({
                "include_untagged_manifests": true,
                "grace": self.args.grace,
                "sweep": v.sweep,
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = run["id"].as_i64().ok_or("no run id")?;
        let run = loop {
            let r: serde_json::Value = http
                .get(format!("{base}/api/v1/gc/runs/{id}"))
                .send()
                .await?
                .json()
                .await?;
            if r["state"] != "running" {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let reclaim_s = started.elapsed().as_secs_f64();
        let end_load = load.as_ref().map(|l| l.now());
        let peak_rss_mib = server.peak_rss_mib();
        let storage_writes = server.storage_writes() - writes_before;
        if run["state"] != "succeeded" {
            return Err(format!("run {id} ended {}: {}", run["state"], run["errors"]).into());
        }
        let load = match load {
            Some(l) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let log = l.stop().await;
                let (s, e) = (start_load.unwrap_or(0.0), end_load.unwrap_or(0.0));
                let before = (0.5, before_until.unwrap_or(s));
                Some((load_figures(&log, before, s, e.max(s)), log.blob_uploads))
            }
            None => None,
        };
        // The run's figures and items, then the disk: exactly the expected blobs are gone.
        let f = &run["figures"];
        let items: serde_json::Value = http
            .get(format!("{base}/api/v1/gc/runs/{id}/items"))
            .send()
            .await?
            .json()
            .await?;
        let freed: HashSet<String> = items["items"]
            .as_array()
            .ok_or("no items")?
            .iter()
            .filter(|i| i["kind"] == "blob")
            .filter_map(|i| i["target"].as_str().map(str::to_string))
            .collect();
        let expected: HashSet<String> = garbage
            .blobs
            .iter()
            .map(|&b| self.model.digest(b))
            .collect();
        let missing = expected.difference(&freed).count();
        let extra = freed.difference(&expected).count();
        let still_on_disk = garbage
            .blobs
            .iter()
            .filter(|&&b| {
                self.data
                    .join("store")
                    .join(&self.keys[b as usize])
                    .exists()
            })
            .count();
        let files_after = count_files(&store_blobs)?;
        let uploads = load.map_or(0, |(_, u)| u);
        let files_expected = files_before + uploads - freed.len() as u64;
        let exact = missing == 0
            && extra == 0
            && still_on_disk == 0
            && files_after == files_expected
            && f["manifests_deleted"].as_u64() == Some(garbage.manifests)
            && f["links_deleted"].as_u64() == Some(garbage.links);
        let check = format!(
            "blobs freed {} (expected {}, missing {missing}, extra {extra}), manifests {} (expected {}), links {} (expected {}), freed files still on disk {still_on_disk}, files {files_after} (expected {files_expected}); written {:.1} KiB per freed blob; load average {}",
            freed.len(),
            expected.len(),
            f["manifests_deleted"],
            garbage.manifests,
            f["links_deleted"],
            garbage.links,
            storage_writes as f64 / 1024.0 / freed.len().max(1) as f64,
            load_average()
        );
        Ok(Round {
            delete_s,
            reclaim_s,
            window_s: 0.0,
            run_ms: run["duration_ms"].as_f64().unwrap_or(f64::NAN),
            blobs_freed: freed.len() as u64,
            manifests_freed: f["manifests_deleted"].as_u64().unwrap_or(0),
            links_freed: f["links_deleted"].as_u64().unwrap_or(0),
            reviewed: f["reviewed"].as_u64().unwrap_or(0),
            expected_blobs: expected.len() as u64,
            peak_rss_mib,
            storage_writes,
            exact,
            check,
            load: load.map(|(l, _)| l),
        })
    }
}

/// Runs `garbage-collect --delete-untagged`, sampling the child's peak memory.
fn distribution_gc(config: &Path, log: &Path) -> Result<(f64, f64), Error> {
    let started = Instant::now();
    let mut child = std::process::Command::new(DISTRIBUTION_BIN)
        .args(["garbage-collect", "--delete-untagged"])
        .arg(config)
        .stdout(std::fs::File::create(log)?)
        .stderr(std::fs::File::create(log.with_extension("err"))?)
        .spawn()?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(kib) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let secs = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("garbage-collect failed ({status}); see {}", log.display()).into());
    }
    Ok((secs, peak_kib as f64 / 1024.0))
}

async fn distribution_round(
    args: &Args,
    model: &Model,
    server: Server,
    holdings: &mut Holdings,
    with_load: bool,
    label: &str,
) -> Result<(Server, Round), Error> {
    let base = server.base.clone();
    let root = server.data.clone();
    let port = server.port();
    let (images, garbage): (Vec<u32>, Garbage) = holdings.take_round(model);
    let load = start_load(with_load, &base, args, model, holdings, label).await;
    let before_until = load.as_ref().map(|l| l.now());
    let urls = images
        .iter()
        .map(|&i| {
            let im = &model.images[i as usize];
            format!(
                "{base}/v2/{}/manifests/{}",
                model.repos[im.repo as usize], im.manifest_digest
            )
        })
        .collect();
    let delete_s = delete_all(urls).await?;
    // Listed while still serving: only model blobs are judged, so pushes after this are moot.
    let before = tokio::task::block_in_place(|| distribution::stored_blobs(&root))?;
    let stop_load = load.as_ref().map(|l| l.now());
    let stopped = Instant::now();
    server.stop();
    let config = root.with_extension("yml");
    let gc_log = root.with_extension("gc.log");
    let (gc_s, peak) = tokio::task::block_in_place(|| distribution_gc(&config, &gc_log))?;
    let server = tokio::task::block_in_place(|| Server::distribution_at(&root, port))?;
    let window_s = stopped.elapsed().as_secs_f64();
    let ready_load = load.as_ref().map(|l| l.now());
    let load = match load {
        Some(l) => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let log = l.stop().await;
            let (s, e) = (stop_load.unwrap_or(0.0), ready_load.unwrap_or(0.0));
            Some(load_figures(&log, (0.5, before_until.unwrap_or(s)), s, e))
        }
        None => None,
    };
    let after = tokio::task::block_in_place(|| distribution::stored_blobs(&root))?;
    let deleted: HashSet<&String> = before.difference(&after).collect();
    let mut expected: HashSet<String> = garbage.blobs.iter().map(|&b| model.hex(b)).collect();
    let manifests: HashSet<String> = images
        .iter()
        .map(|&i| model.images[i as usize].manifest_digest["sha256:".len()..].to_string())
        .collect();
    let blob_expected = expected.len() as u64;
    expected.extend(manifests.iter().cloned());
    let missing = expected.iter().filter(|d| !deleted.contains(d)).count();
    let model_blobs: HashSet<String> = (0..model.blob_count() as u32)
        .map(|b| model.hex(b))
        .chain(
            model
                .images
                .iter()
                .map(|im| im.manifest_digest["sha256:".len()..].to_string()),
        )
        .collect();
    let wrong = deleted
        .iter()
        .filter(|d| model_blobs.contains(**d) && !expected.contains(**d))
        .count();
    let others = deleted
        .iter()
        .filter(|d| !model_blobs.contains(**d))
        .count();
    let check = format!(
        "blob files deleted {} (expected {} blobs + {} manifests, missing {missing}, model blobs wrongly deleted {wrong}, load uploads left without a manifest {others}); load average {}",
        deleted.len(),
        blob_expected,
        manifests.len(),
        load_average()
    );
    let round = Round {
        delete_s,
        reclaim_s: gc_s,
        window_s,
        run_ms: gc_s * 1000.0,
        blobs_freed: (deleted.len() - others - manifests.len().min(deleted.len() - others)) as u64,
        manifests_freed: manifests.iter().filter(|m| deleted.contains(m)).count() as u64,
        links_freed: 0,
        reviewed: 0,
        expected_blobs: blob_expected,
        peak_rss_mib: peak,
        storage_writes: 0,
        exact: missing == 0 && wrong == 0,
        check,
        load,
    };
    Ok((server, round))
}

/// Every figure of one size, gathered over the rounds.
#[derive(Default)]
struct Gathered {
    blobs: usize,
    ship: std::collections::BTreeMap<&'static str, Vec<Round>>,
    /// The rounds of the `--compare` binary.
    compared: std::collections::BTreeMap<&'static str, Vec<Round>>,
    dist: std::collections::BTreeMap<&'static str, Vec<Round>>,
    /// Shipshape's rounds on a PostgreSQL catalogue (`--postgres`).
    pg: std::collections::BTreeMap<&'static str, Vec<Round>>,
}

fn samples(rounds: &[Round], f: impl Fn(&Round) -> f64) -> Samples {
    rounds.iter().map(f).collect()
}

fn fig(section: &str, name: &str, unit: &str, better: Better, note: &str) -> Figure {
    let mut f = Figure::new(section, name, unit, better);
    f.note = note.into();
    f
}

fn add_figures(report: &mut Report, section: &str, g: &Gathered) {
    let ship = |k: &str| g.ship.get(k).map(Vec::as_slice).unwrap_or(&[]);
    let dist = |k: &str| g.dist.get(k).filter(|v| !v.is_empty()).map(Vec::as_slice);
    let both = |report: &mut Report,
                name: &str,
                unit: &str,
                better: Better,
                s: &[Round],
                d: Option<&[Round]>,
                f: &dyn Fn(&Round) -> f64,
                note: &str| {
        if s.is_empty() && d.is_none() {
            return;
        }
        let mut x = fig(section, name, unit, better, note);
        x.shipshape = samples(s, f);
        x.distribution = d.map(|d| samples(d, f));
        report.add(x);
    };
    let checks = |rs: &[Round]| {
        let bad = rs.iter().filter(|r| !r.exact).count();
        if bad == 0 {
            "exact".to_string()
        } else {
            format!("{bad} of {} rounds NOT exact", rs.len())
        }
    };
    let quiet_note = format!(
        "Shipshape: POST /api/v1/gc/runs (no storage sweep) until finished and freed from disk ({}); Distribution: garbage-collect with the registry stopped ({})",
        checks(ship("quiet")),
        dist("quiet").map_or("—".into(), checks)
    );
    both(
        report,
        "reclaim 1% churn, quiet",
        "s",
        Better::Lower,
        ship("quiet"),
        dist("quiet"),
        &|r| r.reclaim_s,
        &quiet_note,
    );
    both(
        report,
        "reclaim 10 tags, quiet",
        "s",
        Better::Lower,
        ship("quiet, 10 tags deleted"),
        None,
        &|r| r.reclaim_s,
        &format!(
            "a fixed churn at every size: flat = follows the churn, not the registry ({})",
            checks(ship("quiet, 10 tags deleted"))
        ),
    );
    for (k, note) in [
        (
            "quiet, with the storage sweep",
            "the run also lists the whole store for orphans (a cost that follows the store's size)",
        ),
        (
            "quiet, --gc-workers 0",
            "server without background workers: only the run collects",
        ),
    ] {
        both(
            report,
            &format!("reclaim, {}", &k["quiet, ".len()..]),
            "s",
            Better::Lower,
            ship(k),
            None,
            &|r| r.reclaim_s,
            &format!("{note} ({})", checks(ship(k))),
        );
    }
    both(
        report,
        "reclaim under load",
        "s",
        Better::Lower,
        ship("under load"),
        dist("under load"),
        &|r| r.reclaim_s,
        &format!(
            "pullers and pushers running ({} / {})",
            checks(ship("under load")),
            dist("under load").map_or("—".into(), checks)
        ),
    );
    both(
        report,
        "unavailable window (stop → serving again)",
        "s",
        Better::Lower,
        &[],
        dist("quiet"),
        &|r| r.window_s,
        "Distribution must be stopped (or read-only) to collect; Shipshape keeps serving",
    );
    both(
        report,
        "per reclaimed blob, quiet",
        "ms",
        Better::Lower,
        ship("quiet"),
        dist("quiet"),
        &|r| 1000.0 * r.reclaim_s / r.blobs_freed.max(1) as f64,
        "reclaim time / blobs freed: flat across sizes = follows the churn",
    );
    both(
        report,
        "per reclaimed blob, with the storage sweep",
        "ms",
        Better::Lower,
        ship("quiet, with the storage sweep"),
        None,
        &|r| 1000.0 * r.reclaim_s / r.blobs_freed.max(1) as f64,
        "",
    );
    both(
        report,
        "blobs freed",
        "blobs",
        Better::Higher,
        ship("quiet"),
        dist("quiet"),
        &|r| r.blobs_freed as f64,
        &format!(
            "expected {} (the deleted images' unshared blobs); Distribution also deletes the manifests' blobs",
            ship("quiet")
                .first()
                .or(dist("quiet").and_then(|d| d.first()))
                .map_or(0, |r| r.expected_blobs)
        ),
    );
    for (k, what) in [
        ("quiet", "quiet"),
        (
            "under load",
            "under load: the load's pushes queue reviews too",
        ),
    ] {
        both(
            report,
            &format!("queue entries reviewed, {}", k),
            "entries",
            Better::Lower,
            ship(k),
            None,
            &|r| r.reviewed as f64,
            what,
        );
    }
    both(
        report,
        "manifests freed",
        "manifests",
        Better::Higher,
        ship("quiet"),
        dist("quiet"),
        &|r| r.manifests_freed as f64,
        "one per deleted tag",
    );
    both(
        report,
        "repository links removed",
        "links",
        Better::Higher,
        ship("quiet"),
        None,
        &|r| r.links_freed as f64,
        "Distribution leaves its _layers links in place",
    );
    both(
        report,
        "deleting 1% of the tags over HTTP",
        "s",
        Better::Lower,
        ship("quiet"),
        dist("quiet"),
        &|r| r.delete_s,
        "Shipshape: DELETE by tag; Distribution: DELETE by manifest digest; 4 at a time",
    );
    let lf = |r: &Round, f: fn(&LoadFigures) -> f64| r.load.as_ref().map_or(f64::NAN, f);
    for (name, unit, better, f, note) in [
        (
            "pulls/s before the collection",
            "pulls/s",
            Better::Higher,
            (|l: &LoadFigures| l.pulls_before) as fn(&LoadFigures) -> f64,
            "a pull: manifest by tag + config + one layer",
        ),
        (
            "pulls/s during the collection",
            "pulls/s",
            Better::Higher,
            |l| l.pulls_during,
            "Shipshape: during the run (at least 100 ms); Distribution: from stop to serving again",
        ),
        (
            "pushes/s before the collection",
            "pushes/s",
            Better::Higher,
            |l| l.pushes_before,
            "a push: two blobs (POST+PUT) and a manifest under a new tag",
        ),
        (
            "pushes/s during the collection",
            "pushes/s",
            Better::Higher,
            |l| l.pushes_during,
            "",
        ),
        (
            "longest stretch without a successful pull",
            "s",
            Better::Lower,
            |l| l.pull_gap,
            "from 0.5 s before the collection to 1 s after it",
        ),
        (
            "longest stretch without a successful push",
            "s",
            Better::Lower,
            |l| l.push_gap,
            "",
        ),
        (
            "failed operations during the collection",
            "ops",
            Better::Lower,
            |l| l.failures_during as f64,
            "",
        ),
    ] {
        both(
            report,
            name,
            unit,
            better,
            ship("under load"),
            dist("under load"),
            &|r| lf(r, f),
            note,
        );
    }
    both(
        report,
        "peak RSS during the collection",
        "MiB",
        Better::Lower,
        ship("quiet"),
        dist("quiet"),
        &|r| r.peak_rss_mib,
        "Shipshape: the server (VmHWM reset before the run); Distribution: the garbage-collect process",
    );
    both(
        report,
        "written to storage per reclaimed blob, 1% churn, quiet",
        "KiB",
        Better::Lower,
        ship("quiet"),
        None,
        &|r| r.storage_writes as f64 / 1024.0 / r.blobs_freed.max(1) as f64,
        "Shipshape: the server's write_bytes (/proc/PID/io) during the run: the catalogue's log and checkpoints; unlike a time, it does not follow the machine's speed",
    );
}

/// A populated Shipshape registry kept for `--reuse`: the storage key of every blob of the model
/// and the churn limit of every round taken on it so far, from which the holdings are replayed.
#[derive(serde::Serialize, serde::Deserialize)]
struct Populated {
    keys: Vec<String>,
    rounds: Vec<usize>,
}

impl Populated {
    const FILE: &str = "bench-populated.json";

    fn load(data: &Path) -> Result<Option<Populated>, Error> {
        match std::fs::read(data.join(Self::FILE)) {
            Ok(b) => Ok(Some(serde_json::from_slice(&b)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Written beside the data after every round, so an interrupted run leaves it true.
    fn save(&self, data: &Path) -> Result<(), Error> {
        let tmp = data.join(format!("{}.tmp", Self::FILE));
        std::fs::write(&tmp, serde_json::to_vec(self)?)?;
        std::fs::rename(tmp, data.join(Self::FILE))?;
        Ok(())
    }
}

/// Moves a registry out of the way; deleting a million files takes minutes and would
/// disturb the next measurements, so `main` deletes them all at the end.
fn discard(work: &Path, dir: &Path) -> std::io::Result<()> {
    let trash = work.join("trash");
    std::fs::create_dir_all(&trash)?;
    let n = std::fs::read_dir(&trash)?.count();
    std::fs::rename(dir, trash.join(n.to_string()))
}

/// The same registry with its catalogue in a fresh PostgreSQL database on `admin` (blobs in the
/// data directory, as on SQLite), measured with the variants in `POSTGRES_VARIANTS`.
async fn postgres_rounds(
    args: &Args,
    admin: &str,
    model: &Model,
    base: &Holdings,
    work: &Path,
    report: &mut Report,
    g: &mut Gathered,
) -> Result<(), Error> {
    let size = model.blob_count();
    let db = shipshape_meta::scratch::create(admin).await?;
    let data = work.join("shipshape-pg");
    std::fs::create_dir_all(&data)?;
    let t = Instant::now();
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - 30 * 24 * 3600 * 1000
        - model.images.len() as i64;
    let catalogue =
        Catalogue::open_postgres(&shipshape_meta::PostgresOptions::new(db.url.clone()), true)
            .await?;
    let keys = shipshape::populate_on(&catalogue, model, &data, start_ms, false).await?;
    report.condition(format!(
        "{size}: Shipshape on PostgreSQL populated in {:.1} s through the same functions, then \
         ANALYZE",
        t.elapsed().as_secs_f64()
    ));
    eprintln!(
        "   shipshape on PostgreSQL populated in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let config = work.join("shipshape-pg.toml");
    std::fs::write(
        &config,
        format!("[catalogue]\nurl = \"{}\"\nmax_connections = 16\n", db.url),
    )?;
    let config = config.to_string_lossy().into_owned();
    let run = ShipshapeRun {
        args,
        model,
        keys: &keys,
        data: &data,
    };
    let mut holdings = base.clone();
    let mut verified = false;
    for (vi, v) in SHIPSHAPE_VARIANTS.iter().enumerate() {
        if !POSTGRES_VARIANTS.contains(&v.name) {
            continue;
        }
        let mut flags = vec!["--restore-window", "0s", "--config", &config];
        flags.extend_from_slice(v.flags);
        let server = Server::shipshape(&args.shipshape, &data, &flags)?;
        if !verified {
            let checked = verify_pulls(&server.base, model, &holdings).await?;
            report.condition(format!(
                "{size}: Shipshape on PostgreSQL checked before measuring: {checked}"
            ));
            verified = true;
        }
        for k in 0..args.repeat {
            let r = run
                .round(&server, &mut holdings, v, &format!("p{vi}r{k}"))
                .await?;
            eprintln!(
                "   shipshape on PostgreSQL {:<24} {:>8.3} s  run {:>6} ms  reviewed {:>6}  {}",
                v.name, r.reclaim_s, r.run_ms, r.reviewed, r.check
            );
            g.pg.entry(v.name).or_default().push(r);
        }
        server.stop();
    }
    if args.keep {
        eprintln!("   kept the PostgreSQL catalogue {}", db.url);
    } else {
        let _ = db.drop_database().await;
        discard(&args.work, &data)?;
    }
    Ok(())
}

async fn run_size(
    args: &Args,
    pg: Option<&str>,
    size: u64,
    report: &mut Report,
) -> Result<Gathered, Error> {
    let do_ship = args.only.as_deref() != Some("distribution");
    let do_dist = args.only.as_deref() != Some("shipshape");
    let t = Instant::now();
    let model = Model::new(size, args.seed);
    let section = format!(
        "{} blobs, {} manifests, {} repositories; 1% churn = {} tags",
        model.blob_count(),
        model.images.len(),
        model.repos.len(),
        model.churn_per_round()
    );
    eprintln!("== {section} (model in {:.1} s)", t.elapsed().as_secs_f64());
    let work = args.work.join(size.to_string());
    let data = work.join("shipshape");
    let reused = if args.reuse {
        Populated::load(&data)?
    } else {
        None
    };
    if work.exists() && reused.is_none() {
        discard(&args.work, &work)?;
    }
    std::fs::create_dir_all(&work)?;
    let mut g = Gathered::default();
    let base = Holdings::new(&model);
    if do_ship {
        let t = Instant::now();
        let mut populated = match reused {
            Some(p) => {
                eprintln!(
                    "   shipshape reused from {} ({} rounds taken before)",
                    data.display(),
                    p.rounds.len()
                );
                report.condition(format!(
                    "{size}: Shipshape's registry reused from an earlier run, {} rounds taken before",
                    p.rounds.len()
                ));
                p
            }
            None => {
                // A month ago, so every lease and grace period of the pushes has long run out.
                let start_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_millis() as i64
                    - 30 * 24 * 3600 * 1000
                    - model.images.len() as i64;
                let keys = shipshape::populate(&model, &data, start_ms).await?;
                report.condition(format!(
                    "{size}: Shipshape populated in {:.1} s through the catalogue's push functions",
                    t.elapsed().as_secs_f64()
                ));
                eprintln!(
                    "   shipshape populated in {:.1} s",
                    t.elapsed().as_secs_f64()
                );
                Populated {
                    keys,
                    rounds: Vec::new(),
                }
            }
        };
        let mut holdings = base.clone();
        for &limit in &populated.rounds {
            holdings.take(&model, limit);
        }
        if args.reuse {
            populated.save(&data)?;
        }
        let run = ShipshapeRun {
            args,
            model: &model,
            keys: &populated.keys,
            data: &data,
        };
        let mut binaries = vec![("", args.shipshape.as_path())];
        if let Some(b) = &args.compare {
            binaries.push((" (compared)", b.as_path()));
        }
        let mut verified = false;
        for (vi, v) in SHIPSHAPE_VARIANTS.iter().enumerate() {
            let mut flags = vec!["--restore-window", "0s"];
            flags.extend_from_slice(v.flags);
            // Alone, one server serves every round of the variant; compared, each round starts
            // a server of each binary, the first alternating, so both see the same conditions.
            let mut server = None;
            for k in 0..args.repeat {
                let mut order = binaries.clone();
                if k % 2 == 1 {
                    order.reverse();
                }
                for (label, binary) in order {
                    let running = match server.take() {
                        Some(s) => s,
                        None => Server::shipshape(binary, &data, &flags)?,
                    };
                    if !verified {
                        let v = verify_pulls(&running.base, &model, &holdings).await?;
                        report
                            .condition(format!("{size}: Shipshape checked before measuring: {v}"));
                        verified = true;
                    }
                    let r = run
                        .round(
                            &running,
                            &mut holdings,
                            v,
                            &format!("s{vi}r{k}{}", label.len()),
                        )
                        .await?;
                    if args.reuse {
                        populated.rounds.push(v.churn.unwrap_or(usize::MAX));
                        populated.save(&data)?;
                    }
                    eprintln!(
                        "   shipshape{label} {:<24} {:>8.3} s  run {:>6} ms  reviewed {:>6}  {}",
                        v.name, r.reclaim_s, r.run_ms, r.reviewed, r.check
                    );
                    let into = if label.is_empty() {
                        &mut g.ship
                    } else {
                        &mut g.compared
                    };
                    into.entry(v.name).or_default().push(r);
                    if binaries.len() == 1 {
                        server = Some(running);
                    } else {
                        running.stop();
                    }
                }
            }
            if let Some(s) = server {
                s.stop();
            }
        }
        if !args.keep && !args.reuse {
            discard(&args.work, &data)?;
        }
    }
    if do_ship && let Some(admin) = pg {
        postgres_rounds(args, admin, &model, &base, &work, report, &mut g).await?;
    }
    if do_dist {
        let root = work.join("distribution");
        let t = Instant::now();
        tokio::task::block_in_place(|| distribution::populate(&model, &root))?;
        report.condition(format!(
            "{size}: Distribution's layout written in {:.1} s",
            t.elapsed().as_secs_f64()
        ));
        eprintln!(
            "   distribution populated in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let mut server = Server::distribution(&root)?;
        let mut holdings = base.clone();
        let v = verify_pulls(&server.base, &model, &holdings).await?;
        report.condition(format!(
            "{size}: Distribution checked before measuring: {v}"
        ));
        for (name, with_load) in [("quiet", false), ("under load", true)] {
            let mut rounds = Vec::new();
            for k in 0..args.repeat {
                let (s, r) = distribution_round(
                    args,
                    &model,
                    server,
                    &mut holdings,
                    with_load,
                    &format!("d{}r{k}", with_load as u8),
                )
                .await?;
                server = s;
                eprintln!(
                    "   distribution {name:<21} {:>8.3} s  window {:>6.3} s  {}",
                    r.reclaim_s, r.window_s, r.check
                );
                rounds.push(r);
            }
            g.dist.insert(name, rounds);
        }
        server.stop();
        if !args.keep {
            discard(&args.work, &root)?;
        }
    }
    let loads: Vec<f64> = g
        .ship
        .values()
        .chain(g.dist.values())
        .flatten()
        .filter_map(|r| r.check.rsplit(' ').next().and_then(|l| l.parse().ok()))
        .collect();
    let exact = g
        .ship
        .values()
        .chain(g.dist.values())
        .flatten()
        .filter(|r| r.exact)
        .count();
    let rounds = g.ship.values().chain(g.dist.values()).flatten().count();
    report.condition(format!(
        "{size}: {exact} of {rounds} rounds freed exactly the expected blobs and nothing else of the registry; machine load average at the rounds' ends {:.1}–{:.1} (shared machine)",
        loads.iter().copied().fold(f64::INFINITY, f64::min),
        loads.iter().copied().fold(0.0, f64::max)
    ));
    add_figures(report, &section, &g);
    if let Some(b) = &args.compare {
        let compared = Gathered {
            ship: std::mem::take(&mut g.compared),
            ..Gathered::default()
        };
        add_figures(
            report,
            &format!("{section}; compared binary {}", b.display()),
            &compared,
        );
        g.compared = compared.ship;
    }
    if !g.pg.is_empty() {
        let on_pg = Gathered {
            ship: std::mem::take(&mut g.pg),
            ..Gathered::default()
        };
        add_figures(
            report,
            &format!("{section}; Shipshape on a PostgreSQL catalogue"),
            &on_pg,
        );
        g.pg = on_pg.ship;
    }
    g.blobs = model.blob_count();
    Ok(g)
}

/// One row per size for the figures whose growth matters: the time to reclaim 1% churn, and
/// the same time per reclaimed blob (flat when the cost follows the churn).
fn add_growth(report: &mut Report, sizes: &[Gathered]) {
    let section = "growth with the registry: reclaim of 10 tags and of 1% of the tags, quiet";
    for g in sizes {
        for (name, key, dist, per_blob) in [
            ("reclaim of 10 tags", "quiet, 10 tags deleted", false, false),
            ("reclaim", "quiet", true, false),
            (
                "reclaim, with the storage sweep",
                "quiet, with the storage sweep",
                false,
                false,
            ),
            ("per reclaimed blob", "quiet", true, true),
            (
                "per reclaimed blob, with the storage sweep",
                "quiet, with the storage sweep",
                false,
                true,
            ),
        ] {
            let Some(rounds) = g.ship.get(key).filter(|r| !r.is_empty()) else {
                continue;
            };
            let value = |r: &Round| {
                if per_blob {
                    1000.0 * r.reclaim_s / r.blobs_freed.max(1) as f64
                } else {
                    r.reclaim_s
                }
            };
            let mut f = fig(
                section,
                &format!("{} blobs: {name}", g.blobs),
                if per_blob { "ms" } else { "s" },
                Better::Lower,
                "",
            );
            f.shipshape = samples(rounds, value);
            if dist && let Some(d) = g.dist.get("quiet").filter(|d| !d.is_empty()) {
                f.distribution = Some(samples(d, value));
            }
            report.add(f);
        }
    }
    let section = "PostgreSQL catalogue beside SQLite: 1% churn, quiet, per reclaimed blob";
    for g in sizes {
        let (Some(sqlite), Some(pg)) = (
            g.ship.get("quiet").filter(|r| !r.is_empty()),
            g.pg.get("quiet").filter(|r| !r.is_empty()),
        ) else {
            continue;
        };
        let per_blob = |r: &Round| 1000.0 * r.reclaim_s / r.blobs_freed.max(1) as f64;
        let mut on_sqlite = fig(
            section,
            &format!("{} blobs: SQLite", g.blobs),
            "ms",
            Better::Lower,
            "",
        );
        on_sqlite.shipshape = samples(sqlite, per_blob);
        let mut on_pg = fig(
            section,
            &format!("{} blobs: PostgreSQL", g.blobs),
            "ms",
            Better::Lower,
            "",
        );
        on_pg.shipshape = samples(pg, per_blob);
        let ratio = on_pg.shipshape.median() / on_sqlite.shipshape.median();
        let mut r = fig(
            section,
            &format!("{} blobs: PostgreSQL / SQLite", g.blobs),
            "×",
            Better::Lower,
            "ratio of the medians; the issue's target: within 2×",
        );
        r.shipshape.push(ratio);
        report.add(on_sqlite);
        report.add(on_pg);
        report.add(r);
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = Args::parse();
    if args.quick {
        args.sizes = vec![2000];
        args.repeat = 1;
    }
    if args.reuse && args.only.as_deref() != Some("shipshape") {
        return Err("--reuse keeps Shipshape's registry only: add --only shipshape".into());
    }
    if !args.shipshape.exists() && args.only.as_deref() != Some("distribution") {
        return Err(format!(
            "{} is missing: cargo build --release -p shipshape-cli",
            args.shipshape.display()
        )
        .into());
    }
    let mut report = Report::new("Garbage collection");
    report.condition(format!(
        "sizes {:?}, {} rounds per variant, each deleting a fresh 1% of the tags; load {} pullers + {} pushers; Shipshape runs with grace {} and --restore-window 0s; load average at start {}; every round's check line (printed) ends with the load average at its end",
        args.sizes,
        args.repeat,
        args.pullers,
        args.pushers,
        args.grace,
        load_average()
    ));
    // A PostgreSQL server for --postgres: the one named, else a throw-away one (stopped when
    // `started` drops).
    let mut started = None;
    let pg_admin = if !args.postgres {
        None
    } else if let Ok(url) = std::env::var("SHIPSHAPE_TEST_POSTGRES") {
        Some(url)
    } else {
        let pg = Postgres::start(&args.postgres_script)?;
        let url = pg.url.clone();
        started = Some(pg);
        Some(url)
    };
    if let Some(url) = &pg_admin {
        report.condition(format!(
            "--postgres: Shipshape also on a PostgreSQL catalogue (a fresh database per size on {}; blobs on local disk as on SQLite; pool 16); variants {POSTGRES_VARIANTS:?}",
            shipshape_meta::redacted_url(url)
        ));
    }
    let mut sizes = Vec::new();
    for &size in &args.sizes {
        sizes.push(run_size(&args, pg_admin.as_deref(), size, &mut report).await?);
        // Partial results survive a later size failing or being interrupted.
        let mut so_far = report.clone();
        add_growth(&mut so_far, &sizes);
        so_far.write(&args.out, "gc")?;
    }
    if !args.keep {
        eprintln!("removing {}", args.work.join("trash").display());
        let _ = std::fs::remove_dir_all(args.work.join("trash"));
    }
    drop(started);
    Ok(())
}
