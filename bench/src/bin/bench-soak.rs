//! `bench-soak`: one Shipshape under steady push, pull, delete, retention-policy and collection
//! load for an hour (`--quick`: a minute), sampled every `--sample` seconds. It reports RSS,
//! open descriptors, the catalogue's and the store's size, what the catalogue holds, and per
//! kind of operation the count, errors and p50/p99 latency over time, in
//! `bench/results/soak.md`, `soak.json` and `soak.svg`. The registry's time settings are
//! shortened so that its restore window and activity-log retention come round well within the
//! run and the sizes can be seen to level off. It exits non-zero only when the registry
//! misbehaves: the server dies, or a request gets an answer a correct registry never gives.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use shipshape_bench::servers::Server;
use shipshape_bench::soak::Kind;
use shipshape_bench::soak::load::{Load, Plan, Recorder};
use shipshape_bench::soak::registry::{self, Counts};
use shipshape_bench::soak::report::Soak;
use shipshape_bench::soak::sample::{Sample, alive};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug)]
#[command(about = "Soak: steady mixed load on one Shipshape, sampled over time")]
struct Args {
    /// Seconds of load.
    #[arg(long, default_value_t = 3600)]
    duration: u64,
    /// Seconds between samples (default 10; 5 with --quick).
    #[arg(long)]
    sample: Option<u64>,
    /// The shipshape binary (a release build).
    #[arg(long, default_value = "target/release/shipshape")]
    shipshape: PathBuf,
    /// The registry's data directory goes here (removed at start).
    #[arg(long, default_value = "target/bench-soak")]
    work: PathBuf,
    /// Where soak.md, soak.json and soak.svg go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// A one-minute run with every time setting scaled down.
    #[arg(long)]
    quick: bool,
}

/// The registry's time settings and the bench's own periods, in seconds.
struct Settings {
    restore_window: u64,
    review_delay: u64,
    lease: u64,
    upload_ttl: u64,
    events_retention: u64,
    gc_poll: u64,
    policy_every: u64,
    gc_every: u64,
}

/// Minutes instead of the defaults' days, so that deleted content leaves and the activity log
/// is pruned many times within the hour.
const HOUR: Settings = Settings {
    restore_window: 300,
    review_delay: 60,
    lease: 60,
    upload_ttl: 300,
    events_retention: 300,
    gc_poll: 10,
    policy_every: 120,
    gc_every: 180,
};

/// The same mechanism within a minute.
const QUICK: Settings = Settings {
    restore_window: 20,
    review_delay: 5,
    lease: 5,
    upload_ttl: 20,
    events_retention: 20,
    gc_poll: 5,
    policy_every: 15,
    gc_every: 20,
};

/// How often the server prunes the activity log (`HOUSEKEEPING_EVERY` in
/// crates/server/src/lib.rs): the log holds up to this much beyond its retention.
const HOUSEKEEPING_S: u64 = 600;

const POLICY: &str = "bench-soak";
/// Tags per repository the policy keeps.
const POLICY_KEEP: u32 = 20;
const REPOS: usize = 4;

impl Settings {
    fn flags(&self) -> Vec<String> {
        [
            ("--restore-window", self.restore_window),
            ("--gc-review-delay", self.review_delay),
            ("--gc-lease", self.lease),
            ("--upload-ttl", self.upload_ttl),
            ("--events-retention", self.events_retention),
            ("--gc-poll-interval", self.gc_poll),
        ]
        .into_iter()
        .flat_map(|(flag, s)| [flag.to_string(), format!("{s}s")])
        .collect()
    }

    /// When everything that bounds the registry has come round at least once: a deleted
    /// manifest's restore window and review delay, then a collection; the log's retention,
    /// then the server's next pruning.
    fn steady_from(&self) -> u64 {
        (self.restore_window + self.review_delay + self.gc_every)
            .max(self.events_retention + HOUSEKEEPING_S)
    }
}

fn plan(s: &Settings) -> Plan {
    Plan {
        repos: (0..REPOS).map(|r| format!("soak/app-{r}")).collect(),
        pushers: 2,
        push_every: Duration::from_millis(100),
        pullers: 4,
        pull_every: Duration::from_millis(50),
        delete_every: Duration::from_millis(200),
        delete_keep: 5,
        policy: POLICY.into(),
        policy_every: Duration::from_secs(s.policy_every),
        gc_every: Duration::from_secs(s.gc_every),
    }
}

fn conditions(args: &Args, s: &Settings, p: &Plan, sample_s: u64) -> Vec<String> {
    let ms = |d: Duration| d.as_millis();
    vec![
        format!(
            "{} s of load, a sample every {sample_s} s; `{}` (release build), SQLite catalogue and local store; machine: {} CPUs, load average {} at start",
            args.duration,
            args.shipshape.display(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_average()
        ),
        format!(
            "server flags: `{}`; the activity log is pruned every {} min (server constant)",
            s.flags().join(" "),
            HOUSEKEEPING_S / 60
        ),
        format!(
            "load over HTTP on loopback, all at once: {} pushers, each starting a push every {} ms (config + the repository's shared 4 KiB base layer, HEAD first + a unique 1 KiB layer + manifest, under a new tag) into {} repositories `soak/app-N`; {} pullers, each starting a pull every {} ms of a random tag the load still holds (manifest, then every blob read and its digest checked); a deleter, one random tag every {} ms (`DELETE /v2/…/manifests/TAG`, leaving each repository {} tags)",
            p.pushers,
            ms(p.push_every),
            p.repos.len(),
            p.pullers,
            ms(p.pull_every),
            ms(p.delete_every),
            p.delete_keep
        ),
        format!(
            "retention policy `{POLICY}` on `soak/**`: keep the {POLICY_KEEP} most recently pushed tags, delete the others; run by the bench every {} s (`POST /api/v1/policies/{POLICY}/runs`, the tags it deleted then dropped from the pullers' choice); collection runs every {} s (`POST /api/v1/gc/runs {{}}`, the review delay as grace) besides the background worker; a 409 (a run already active) skips a turn. Policy and gc latencies are the runs' own `duration_ms`",
            p.policy_every.as_secs(),
            p.gc_every.as_secs()
        ),
        format!(
            "steady state from {} s: restore window + review delay + a collection interval ({} s), and the activity log's retention + its pruning period ({} s), the later of the two, at most half the run",
            s.steady_from(),
            s.restore_window + s.review_delay + s.gc_every,
            s.events_retention + HOUSEKEEPING_S
        ),
        "errors: any answer a correct registry never gives (a 5xx, a failed push, a 404 for a tag whose history shows no deletion, a blob whose body does not match its digest, a failed run, a timeout of 60 s); 404s for tags the policy or the deleter removed meanwhile are counted as `gone`".into(),
    ]
}

/// The machine's one-minute load average: the machine is shared, and this says how much.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

fn progress(s: &Sample) -> String {
    let op = |k: Kind| {
        let o = s.op(k);
        format!(
            "{} {}{} p99 {}",
            k.name(),
            o.count,
            if o.errors > 0 {
                format!(" ({} ERRORS)", o.errors)
            } else {
                String::new()
            },
            o.p99_ms.map_or("–".into(), |v| format!("{v:.1} ms"))
        )
    };
    format!(
        "{:>6.0} s  rss {:.1} MiB (sqlite {:.1})  threads {}  fds {}  catalogue {:.2} MiB  store {:.1} MiB  tags {} (untagged {})  {}",
        s.at_s,
        s.rss_mib,
        s.sqlite_mib,
        s.threads,
        s.open_fds,
        s.catalogue_bytes as f64 / 1048576.0,
        s.store_bytes as f64 / 1048576.0,
        s.tags,
        s.untagged_manifests,
        Kind::ALL.map(op).join(", ")
    )
}

/// Samples the server every `sample_s` until `duration` has passed or the server has died;
/// returns the samples, and why it stopped early if it did.
async fn watch(
    server: &Server,
    load: &Load,
    duration: Duration,
    sample_s: u64,
) -> (Vec<Sample>, Option<String>) {
    let http = registry::client();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut samples = Vec::new();
    let mut next = Duration::from_secs(sample_s);
    loop {
        tick.tick().await;
        let now = started.elapsed();
        if !alive(server.pid()) {
            return (
                samples,
                Some(format!(
                    "the server process died {:.0} s in",
                    now.as_secs_f64()
                )),
            );
        }
        if now < next {
            continue;
        }
        next += Duration::from_secs(sample_s);
        let counts = catalogue_counts(&http, &server.base, &load.recorder).await;
        let s = Sample::take(
            now.as_secs_f64(),
            server,
            counts,
            load.tags.count() as u64,
            load.recorder.take(),
        );
        println!("{}", progress(&s));
        samples.push(s);
        if now >= duration {
            return (samples, None);
        }
    }
}

async fn catalogue_counts(http: &reqwest::Client, base: &str, recorder: &Recorder) -> Counts {
    registry::counts(http, base).await.unwrap_or_else(|e| {
        recorder.fault(format!("sampler: {e}"));
        Counts::default()
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = Args::parse();
    if args.quick {
        args.duration = 60;
    }
    let sample_s = args
        .sample
        .unwrap_or(if args.quick { 5 } else { 10 })
        .max(1);
    if !args.shipshape.exists() {
        return Err(format!(
            "{} is missing: cargo build --release -p shipshape-cli",
            args.shipshape.display()
        )
        .into());
    }
    let settings = if args.quick { &QUICK } else { &HOUR };
    let _ = std::fs::remove_dir_all(&args.work);
    let data = args.work.join("data");
    std::fs::create_dir_all(&data)?;
    let flags = settings.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::shipshape(&args.shipshape, &data, &flags)?;
    registry::apply_policy(&registry::client(), &server.base, POLICY, POLICY_KEEP).await?;
    let plan = plan(settings);
    let conditions = conditions(&args, settings, &plan, sample_s);
    eprintln!(
        "soak: {} s against {}, data in {}",
        args.duration,
        server.base,
        data.display()
    );
    let load = Load::start(&server.base, &plan);
    let (samples, ended_early) =
        watch(&server, &load, Duration::from_secs(args.duration), sample_s).await;
    let recorder = load.recorder.clone();
    load.stop().await;
    let (fault_count, faults) = recorder.faults();
    server.stop();
    let soak = Soak {
        conditions,
        sample_s: sample_s as f64,
        steady_from_s: settings.steady_from() as f64,
        fault_count,
        faults,
        ended_early,
        samples,
    };
    let md = soak.write(&args.out)?;
    if let Some((summary, _)) = md
        .split_once("## Steady state")
        .and_then(|(_, rest)| rest.split_once("## Samples"))
    {
        println!("## Steady state{summary}");
    }
    eprintln!(
        "wrote {}/soak.md, soak.json and soak.svg",
        args.out.display()
    );
    match (&soak.ended_early, fault_count) {
        (Some(why), _) => Err(format!("the registry misbehaved: {why}").into()),
        (None, n) if n > 0 => Err(format!(
            "the registry misbehaved: {n} answers a correct registry never gives (see soak.md)"
        )
        .into()),
        _ => Ok(()),
    }
}
