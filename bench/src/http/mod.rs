//! The HTTP benchmark: push, pull, manifest and tag reads, concurrent pushes and memory, for
//! Shipshape and Distribution on the same machine in the same run, with the machine's own
//! limits beside them. `bench-http` drives it; `bench/README.md` explains each figure.

pub mod auth;
pub mod client;
pub mod headload;
pub mod images;
pub mod limits;
pub mod skopeo;
pub mod wrk;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::report::{Better, Figure, Report};
use crate::servers::{Kind, Server};
use client::{Client, Upload};
use images::Image;

pub use client::{Error, Result};

const MIB: f64 = 1024.0 * 1024.0;

/// Sizes and durations of one run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub repeat: usize,
    /// The single large layer.
    pub big_layer: usize,
    /// The many-layer image: how many layers of what size.
    pub many_layers: (usize, usize),
    /// PATCH size of chunked uploads, the same for both registries.
    pub chunk: usize,
    /// Length of each wrk run.
    pub wrk_duration: Duration,
    pub connections: Vec<u32>,
    /// Concurrent pushes: clients, the shared base layer, and each client's own layers.
    pub clients: usize,
    pub base_layer: usize,
    pub own_layers: (usize, usize),
    /// The mixed-load soak, once per registry.
    pub soak: Duration,
    /// Sections to run; empty runs all.
    pub only: Vec<String>,
}

impl Plan {
    /// The full run: a 1 GiB layer, 200 × 5 MiB, 5 s per wrk run.
    pub fn full() -> Plan {
        Plan {
            repeat: 3,
            big_layer: 1 << 30,
            many_layers: (200, 5 << 20),
            chunk: 16 << 20,
            wrk_duration: Duration::from_secs(5),
            connections: vec![1, 16, 64],
            clients: 16,
            base_layer: 64 << 20,
            own_layers: (4, 8 << 20),
            soak: Duration::from_secs(60),
            only: Vec::new(),
        }
    }

    /// A smoke run in about two minutes: small images, short wrk runs, one repetition.
    pub fn quick() -> Plan {
        Plan {
            repeat: 1,
            big_layer: 128 << 20,
            many_layers: (40, 1 << 20),
            wrk_duration: Duration::from_secs(2),
            base_layer: 8 << 20,
            own_layers: (2, 1 << 20),
            soak: Duration::from_secs(10),
            ..Plan::full()
        }
    }

    fn runs(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

/// Where the run lives: binaries and a scratch directory.
#[derive(Clone, Debug)]
pub struct Setup {
    pub shipshape_bin: PathBuf,
    pub work: PathBuf,
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Shipshape => "shipshape",
        Kind::Distribution => "distribution",
    }
}

/// Both registries, the first alternating between repetitions so neither always runs on a
/// machine the other just warmed (or left writing back).
fn order(rep: usize) -> [Kind; 2] {
    if rep.is_multiple_of(2) {
        [Kind::Shipshape, Kind::Distribution]
    } else {
        [Kind::Distribution, Kind::Shipshape]
    }
}

/// The figures collected so far, in the order first seen.
struct Table {
    figures: Vec<Figure>,
    index: HashMap<(String, String), usize>,
}

impl Table {
    fn new() -> Self {
        Table {
            figures: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn figure(&mut self, section: &str, name: &str, unit: &str, better: Better) -> &mut Figure {
        let key = (section.to_string(), name.to_string());
        let i = *self.index.entry(key).or_insert_with(|| {
            self.figures.push(Figure::new(section, name, unit, better));
            self.figures.len() - 1
        });
        &mut self.figures[i]
    }

    /// The figures with each section's together, sections in the order first seen.
    fn into_grouped(self) -> Vec<Figure> {
        let mut sections: Vec<String> = Vec::new();
        for f in &self.figures {
            if !sections.contains(&f.section) {
                sections.push(f.section.clone());
            }
        }
        let mut figures = self.figures;
        figures.sort_by_key(|f| sections.iter().position(|s| *s == f.section));
        figures
    }

    /// Records one run's value for one registry.
    fn sample(
        &mut self,
        section: &str,
        name: &str,
        unit: &str,
        better: Better,
        kind: Kind,
        value: f64,
    ) {
        let f = self.figure(section, name, unit, better);
        match kind {
            Kind::Shipshape => f.shipshape.push(value),
            Kind::Distribution => f
                .distribution
                .get_or_insert_with(Default::default)
                .push(value),
        }
    }
}

struct Bench {
    plan: Plan,
    setup: Setup,
    table: Table,
    big: Image,
    many: Image,
    /// A typical image (8 small layers) for manifest and tag reads.
    app: Image,
    big_layout: PathBuf,
    many_layout: PathBuf,
    seq: usize,
    root_privileges: bool,
}

impl Bench {
    /// A fresh server of `kind` on an empty directory.
    fn start(&mut self, kind: Kind) -> std::io::Result<Server> {
        self.seq += 1;
        let dir = self
            .setup
            .work
            .join(format!("{}-{}", kind_name(kind), self.seq));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        match kind {
            Kind::Shipshape => Server::shipshape(&self.setup.shipshape_bin, &dir, &[]),
            Kind::Distribution => Server::distribution(&dir.join("root")),
        }
    }

    /// Stops a server and frees its disk.
    fn discard(&self, server: Server) {
        let data = server.data.clone();
        server.stop();
        let dir = match data.file_name().and_then(|n| n.to_str()) {
            Some("root") => data.parent().map(Path::to_path_buf).unwrap_or(data),
            _ => data,
        };
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(dir.join("root.yml"));
    }
}

/// Runs the plan and returns the report.
pub async fn run(plan: Plan, setup: Setup) -> Result<Report> {
    std::fs::create_dir_all(&setup.work)?;
    let mut report = Report::new("HTTP: Shipshape beside CNCF Distribution");
    let started = Instant::now();
    eprintln!("generating test images …");
    let big = Image::new("big", images::layers(1_000, &[plan.big_layer]));
    let many = Image::new(
        "many",
        images::layers(2_000, &vec![plan.many_layers.1; plan.many_layers.0]),
    );
    let app = Image::new("app", images::layers(3_000, &[4096; 8]));
    let big_layout = setup.work.join("layout-big");
    let many_layout = setup.work.join("layout-many");
    let _ = std::fs::remove_dir_all(&big_layout);
    let _ = std::fs::remove_dir_all(&many_layout);
    big.write_layout(&big_layout, "v1")?;
    many.write_layout(&many_layout, "v1")?;
    let root_privileges = limits::drop_caches().is_ok();
    let mut b = Bench {
        plan,
        setup,
        table: Table::new(),
        big,
        many,
        app,
        big_layout,
        many_layout,
        seq: 0,
        root_privileges,
    };

    let limits = if b.plan.runs("limits") || b.plan.runs("push") || b.plan.runs("pull") {
        Some(machine_limits(&mut b)?)
    } else {
        None
    };
    if b.plan.runs("push") {
        push(&mut b).await?;
    }
    if b.plan.runs("pull") || b.plan.runs("manifests") {
        reads(&mut b).await?;
    }
    if b.plan.runs("auth") {
        auth::run(&mut b).await?;
    }
    if b.plan.runs("concurrent") {
        concurrent(&mut b).await?;
    }
    if b.plan.runs("soak") {
        soak(&mut b).await?;
    }

    if let Some(l) = &limits {
        let copies: Vec<(String, f64)> = b
            .table
            .figures
            .iter()
            .filter(|f| f.name == COPY_READ)
            .map(|f| (f.section.clone(), f.shipshape.median()))
            .collect();
        for f in &mut b.table.figures {
            let copy = copies.iter().find(|(s, _)| *s == f.section).map(|c| c.1);
            f.limit = match (f.section.as_str(), f.unit.as_str()) {
                (s, "MiB/s") if s.starts_with("push") => Some(l.write.min(l.sha)),
                (s, "MiB/s") if s.starts_with("pull") && f.name == "lean, cold" => copy,
                _ => None,
            };
        }
    }

    let p = &b.plan;
    report.condition(format!(
        "{} run(s) per figure (median shown; spread = half the range over the median); registries alternate which goes first",
        p.repeat
    ));
    report.condition(format!(
        "images: one layer of {} MiB; {} layers of {} MiB; layers are pseudo-random (incompressible), media type uncompressed tar",
        p.big_layer >> 20,
        p.many_layers.0,
        p.many_layers.1 >> 20
    ));
    report.condition(format!(
        "lean client: Rust (reqwest, HTTP/1.1), blobs in memory, one blob at a time; chunked = PATCH of {} MiB, the last chunk with the PUT; pulls discard the bytes and check the length (digests are not recomputed client-side)",
        p.chunk >> 20
    ));
    report.condition(
        "skopeo: `copy --preserve-digests` from an OCI layout (push), to an OCI layout (pull; skopeo verifies digests and writes files, unsynced); skopeo copies several layers at once",
    );
    report.condition(format!(
        "wrk: {} s per run, 2 threads (1 for 1 connection), `Accept: {}` for manifests; wrk shares the 2 cores with the server",
        p.wrk_duration.as_secs(),
        images::MANIFEST_TYPE
    ));
    if b.plan.runs("auth") {
        report.condition(format!(
            "{}: Shipshape only, one data directory per run: access control off first, then the server restarted with SHIPSHAPE_ADMIN_PASSWORD and a user with read on bench/** (Basic on every request; a bearer token from /auth/token fetched once; then an anonymous read binding); the same wrk loop as the manifest GET above; the note relates each figure to the same run's anonymous one with access control off",
            auth::SECTION
        ));
    }
    report.condition(
        "Shipshape: release build, `shipshape serve` defaults (SQLite catalogue, local store, log level warn); Distribution: Debian docker-registry 2.8.2, filesystem root, deletes enabled, in-memory blob descriptor cache, logs off; each on loopback",
    );
    report.condition(format!(
        "push: a fresh server and empty data directory for every run; pull cold: page cache dropped before the run ({}); pull warm: right after the cold run",
        if b.root_privileges {
            "as root"
        } else {
            "NOT possible without root: cold figures are missing"
        }
    ));
    if let Some(l) = &limits {
        report.condition(format!(
            "machine limits (medians): SHA-256 one core {:.0} MiB/s; disk write synced {:.0} MiB/s (the better of through the page cache and direct); disk read cold {:.0} MiB/s (a file just written: the host's cache may serve it); `of limit` for pushes is of min(write, SHA-256), for cold pulls of the same round's cold read of a plain copy as old as the registry's (`disk read of a same-age copy`)",
            l.sha, l.write, l.read
        ));
    }
    report.condition(format!(
        "machine: {} cores, {}; run took {:.0} s",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load_average(),
        started.elapsed().as_secs_f64()
    ));
    report.figures = b.table.into_grouped();
    Ok(report)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| {
            let v: Vec<&str> = s.split_whitespace().take(3).collect();
            format!("load average at the end {}", v.join(" "))
        })
        .unwrap_or_default()
}

/// Medians of the machine's limits in MiB/s.
struct Limits {
    sha: f64,
    write: f64,
    read: f64,
}

fn machine_limits(b: &mut Bench) -> Result<Limits> {
    eprintln!("measuring the machine's limits …");
    let data = b.big.layers[0].data.clone();
    let file = b.setup.work.join("disk-probe");
    let section = "machine limits (no registry)";
    for _ in 0..b.plan.repeat {
        let sha = limits::sha256_mib_s(&data);
        b.table
            .figure(
                section,
                "SHA-256, one core (sha2 0.11)",
                "MiB/s",
                Better::Higher,
            )
            .shipshape
            .push(sha);
        let w = limits::write_mib_s(&file, &data)?;
        b.table
            .figure(section, "disk write, synced", "MiB/s", Better::Higher)
            .shipshape
            .push(w);
        let w = limits::write_direct_mib_s(&file, &data)?;
        b.table
            .figure(
                section,
                "disk write, direct, synced",
                "MiB/s",
                Better::Higher,
            )
            .shipshape
            .push(w);
        if b.root_privileges {
            limits::drop_caches()?;
            let r = limits::read_mib_s(&file)?;
            b.table
                .figure(section, "disk read, cold", "MiB/s", Better::Higher)
                .shipshape
                .push(r);
        }
        let r = limits::read_mib_s(&file)?;
        b.table
            .figure(section, "read, page cache", "MiB/s", Better::Higher)
            .shipshape
            .push(r);
    }
    let _ = std::fs::remove_file(&file);
    let m = |name: &str| {
        b.table
            .figures
            .iter()
            .find(|f| f.section == section && f.name == name)
            .map(|f| f.shipshape.median())
            .unwrap_or(f64::NAN)
    };
    let l = Limits {
        sha: m("SHA-256, one core (sha2 0.11)"),
        write: m("disk write, synced").max(m("disk write, direct, synced")),
        read: m("disk read, cold"),
    };
    for f in &mut b.table.figures {
        if f.section == section {
            f.note = "the machine, no registry: the column is the measured rate".into();
        }
    }
    Ok(l)
}

fn mib_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / MIB / took.as_secs_f64()
}

/// The push figures: each way of pushing, on a fresh server each run.
async fn push(b: &mut Bench) -> Result<()> {
    let big_name = format!("1 × {} MiB", b.plan.big_layer >> 20);
    let many_name = format!(
        "{} × {} MiB",
        b.plan.many_layers.0,
        b.plan.many_layers.1 >> 20
    );
    let ways: [(&str, Option<Upload>); 3] = [
        ("lean, monolithic", Some(Upload::Monolithic)),
        ("lean, chunked", Some(Upload::Chunked(b.plan.chunk))),
        ("skopeo", None),
    ];
    for rep in 0..b.plan.repeat {
        for kind in order(rep) {
            for (way, how) in ways {
                eprintln!("push {rep}: {} {way}", kind_name(kind));
                let server = b.start(kind)?;
                let client = Client::new(&server.base);
                for (name, image, layout) in [
                    (&big_name, b.big.clone(), b.big_layout.clone()),
                    (&many_name, b.many.clone(), b.many_layout.clone()),
                ] {
                    limits::sync();
                    let is_big = image.layers.len() == 1;
                    if is_big {
                        server.reset_peak_rss();
                    }
                    let repo = format!("bench/push-{rep}");
                    let started = Instant::now();
                    match how {
                        Some(how) => {
                            client.push_image(&repo, "v1", &image, how, false).await?;
                        }
                        None => {
                            skopeo::push(&layout, "v1", server.host(), &repo)?;
                        }
                    }
                    let took = started.elapsed();
                    b.table.sample(
                        &format!("push {name}"),
                        way,
                        "MiB/s",
                        Better::Higher,
                        kind,
                        mib_s(image.blob_bytes(), took),
                    );
                    if is_big {
                        b.table.sample(
                            "memory",
                            &format!("peak RSS, push {name}, {way}"),
                            "MiB",
                            Better::Lower,
                            kind,
                            server.peak_rss_mib(),
                        );
                    }
                }
                b.discard(server);
            }
        }
    }
    Ok(())
}

/// One server per registry with every image, for pulls and for manifest and tag reads.
async fn reads(b: &mut Bench) -> Result<()> {
    let mut servers = Vec::new();
    for kind in [Kind::Shipshape, Kind::Distribution] {
        eprintln!("filling {} for reads …", kind_name(kind));
        let server = b.start(kind)?;
        let client = Client::new(&server.base);
        if b.plan.runs("pull") {
            client
                .push_image("bench/big", "v1", &b.big, Upload::Monolithic, false)
                .await?;
            client
                .push_image("bench/many", "v1", &b.many, Upload::Monolithic, false)
                .await?;
        }
        client
            .push_image("bench/app", "v0", &b.app, Upload::Monolithic, false)
            .await?;
        for t in 1..100 {
            client
                .put_manifest("bench/app", &format!("v{t}"), &b.app)
                .await?;
        }
        if b.plan.runs("pull") && b.root_privileges {
            for (repo, image) in [("big", &b.big), ("many", &b.many)] {
                write_copy(&same_age_copy(b, kind, repo), image)?;
            }
        }
        servers.push(server);
    }
    let big_name = format!("1 × {} MiB", b.plan.big_layer >> 20);
    let many_name = format!(
        "{} × {} MiB",
        b.plan.many_layers.0,
        b.plan.many_layers.1 >> 20
    );
    let pull_dir = b.setup.work.join("pulled");
    for rep in 0..b.plan.repeat {
        for kind in order(rep) {
            let server = servers
                .iter()
                .find(|s| s.kind == kind)
                .expect("both servers");
            let client = Client::new(&server.base);
            if b.plan.runs("pull") {
                eprintln!("pull {rep}: {}", kind_name(kind));
                for (name, repo, image) in [
                    (&big_name, "bench/big", &b.big),
                    (&many_name, "bench/many", &b.many),
                ] {
                    let section = format!("pull {name}");
                    let mut temps = Vec::new();
                    if b.root_privileges {
                        limits::drop_caches()?;
                        let copy = same_age_copy(b, kind, repo.trim_start_matches("bench/"));
                        let rate = read_copy(&copy)?;
                        b.table
                            .sample(&section, COPY_READ, "MiB/s", Better::Higher, kind, rate);
                        limits::drop_caches()?;
                        temps.push("lean, cold");
                    }
                    temps.push("lean, warm");
                    for temp in temps {
                        let started = Instant::now();
                        let n = client.pull_image(repo, "v1").await?;
                        b.table.sample(
                            &section,
                            temp,
                            "MiB/s",
                            Better::Higher,
                            kind,
                            mib_s(n, started.elapsed()),
                        );
                    }
                    let took = skopeo::pull(server.host(), repo, "v1", &pull_dir)?;
                    b.table.sample(
                        &section,
                        "skopeo, warm",
                        "MiB/s",
                        Better::Higher,
                        kind,
                        mib_s(image.blob_bytes(), took),
                    );
                }
            }
            if b.plan.runs("manifests") {
                eprintln!("manifests {rep}: {}", kind_name(kind));
                manifest_reads(b, server).await?;
            }
        }
    }
    for s in servers {
        b.discard(s);
    }
    let _ = std::fs::remove_dir_all(b.setup.work.join("same-age"));
    Ok(())
}

/// The figure for reading, cold, a plain copy of an image's layers written right after a
/// registry's own copy and read once per round, as the registry's is. This virtual machine's
/// disk sits behind a cache on the host that dropping the guest's page cache does not empty: a
/// file just written or read may come back at several times the disk's rate. A copy of the same
/// age and history is the fairest limit for a cold pull.
const COPY_READ: &str = "disk read of a same-age copy, cold (no registry)";

fn same_age_copy(b: &Bench, kind: Kind, image: &str) -> PathBuf {
    b.setup
        .work
        .join("same-age")
        .join(format!("{}-{image}", kind_name(kind)))
}

/// One synced file per layer of `image`, as a registry stores them.
fn write_copy(dir: &Path, image: &Image) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (i, layer) in image.layers.iter().enumerate() {
        limits::write_mib_s(&dir.join(format!("{i:04}")), &layer.data)?;
    }
    Ok(())
}

/// Reads the files of `dir` in order; MiB/s over them all.
fn read_copy(dir: &Path) -> Result<f64> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    let started = Instant::now();
    let mut n = 0;
    for f in &files {
        n += limits::read_all(f)?;
    }
    Ok(mib_s(n, started.elapsed()))
}

/// Manifest GET and HEAD by tag and the tag list, at each connection count, with wrk.
async fn manifest_reads(b: &mut Bench, server: &Server) -> Result<()> {
    let accept = format!("Accept: {}", images::MANIFEST_TYPE);
    let manifest = format!("{}/v2/bench/app/manifests/v1", server.base);
    let tags = format!("{}/v2/bench/app/tags/list", server.base);
    // Warms connections, caches and the allocator before anything is recorded.
    wrk::run(&manifest, 16, Duration::from_secs(1), &[&accept])?;
    let manifest_path = "/v2/bench/app/manifests/v1";
    let ops: [(&str, Option<&str>); 3] = [
        ("manifest GET by tag (wrk)", Some(&manifest)),
        ("manifest HEAD by tag (own load generator)", None),
        ("tags/list, 100 tags (wrk)", Some(&tags)),
    ];
    for (op, url) in ops {
        for &c in &b.plan.connections {
            let r = match url {
                Some(url) => wrk::run(url, c, b.plan.wrk_duration, &[&accept])?,
                None => {
                    headload::run(
                        server.host(),
                        manifest_path,
                        &[&accept],
                        c,
                        b.plan.wrk_duration,
                    )
                    .await?
                }
            };
            if r.errors > 0 {
                return Err(format!(
                    "{op} at {c} connections on {}: {} errors",
                    kind_name(server.kind),
                    r.errors
                )
                .into());
            }
            let section = op.to_string();
            let conns = format!("{c} conn.");
            b.table.sample(
                &section,
                &format!("{conns}: requests/s"),
                "req/s",
                Better::Higher,
                server.kind,
                r.requests_per_sec,
            );
            b.table.sample(
                &section,
                &format!("{conns}: p50"),
                "ms",
                Better::Lower,
                server.kind,
                r.p50_ms,
            );
            b.table.sample(
                &section,
                &format!("{conns}: p99"),
                "ms",
                Better::Lower,
                server.kind,
                r.p99_ms,
            );
        }
    }
    Ok(())
}

/// Clients pushing distinct images that share a base layer already in the registry, all at
/// once, each asking (HEAD) before uploading, as real clients do.
async fn concurrent(b: &mut Bench) -> Result<()> {
    let base = images::layers(5_000, &[b.plan.base_layer]).remove(0);
    let base_image = Image::new("base", vec![base.clone()]);
    let own: Vec<Image> = (0..b.plan.clients)
        .map(|i| {
            let mut layers = vec![base.clone()];
            layers.extend(images::layers(
                6_000 + 100 * i as u64,
                &vec![b.plan.own_layers.1; b.plan.own_layers.0],
            ));
            Image::new(&format!("client-{i}"), layers)
        })
        .collect();
    let section = format!("{} concurrent pushes, shared base", b.plan.clients);
    for rep in 0..b.plan.repeat {
        for kind in order(rep) {
            eprintln!("concurrent {rep}: {}", kind_name(kind));
            let server = b.start(kind)?;
            let client = Client::new(&server.base);
            client
                .push_image("bench/ci", "base", &base_image, Upload::Monolithic, false)
                .await?;
            limits::sync();
            let started = Instant::now();
            let mut tasks = Vec::new();
            for (i, image) in own.iter().enumerate() {
                let client = Client::new(&server.base);
                let image = image.clone();
                tasks.push(tokio::spawn(async move {
                    client
                        .push_image(
                            "bench/ci",
                            &format!("build-{i}"),
                            &image,
                            Upload::Monolithic,
                            true,
                        )
                        .await
                }));
            }
            let mut sent = 0;
            for t in tasks {
                sent += t.await??;
            }
            let took = started.elapsed();
            b.table.sample(
                &section,
                "total time",
                "s",
                Better::Lower,
                kind,
                took.as_secs_f64(),
            );
            b.table.sample(
                &section,
                "throughput (bytes uploaded)",
                "MiB/s",
                Better::Higher,
                kind,
                mib_s(sent, took),
            );
            b.discard(server);
        }
    }
    Ok(())
}

/// Mixed load for a while, resident memory sampled every 250 ms: two pushers of small new
/// images (HEAD first), one puller, four clients reading manifests by tag.
async fn soak(b: &mut Bench) -> Result<()> {
    let section = format!("soak, {} s mixed load", b.plan.soak.as_secs());
    for kind in [Kind::Shipshape, Kind::Distribution] {
        eprintln!("soak: {} for {} s", kind_name(kind), b.plan.soak.as_secs());
        let server = b.start(kind)?;
        let client = Client::new(&server.base);
        client
            .push_image("bench/app", "v1", &b.app, Upload::Monolithic, false)
            .await?;
        let deadline = Instant::now() + b.plan.soak;
        let ops = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = Vec::new();
        for p in 0..2u64 {
            let (client, ops) = (Client::new(&server.base), ops.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let seed = 1_000_000 * (p + 1) + 10 * i;
                    let image = Image::new(
                        &format!("soak-{p}-{i}"),
                        images::layers(seed, &[1 << 20, 1 << 20]),
                    );
                    client
                        .push_image(
                            "bench/soak",
                            &format!("p{p}-{i}"),
                            &image,
                            Upload::Monolithic,
                            true,
                        )
                        .await?;
                    ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    i += 1;
                }
                Ok::<_, Error>(())
            }));
        }
        {
            let (client, ops) = (Client::new(&server.base), ops.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    client.pull_image("bench/app", "v1").await?;
                    ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            }));
        }
        for _ in 0..4 {
            let (client, ops) = (Client::new(&server.base), ops.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    client.get_manifest("bench/app", "v1").await?;
                    ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            }));
        }
        let start_rss = server.rss_mib();
        let mut peak: f64 = start_rss;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            peak = peak.max(server.rss_mib());
        }
        for t in tasks {
            t.await??;
        }
        let end_rss = server.rss_mib();
        let rate =
            ops.load(std::sync::atomic::Ordering::Relaxed) as f64 / b.plan.soak.as_secs_f64();
        b.table.sample(
            &section,
            "RSS at start",
            "MiB",
            Better::Lower,
            kind,
            start_rss,
        );
        b.table.sample(
            &section,
            "RSS peak (sampled)",
            "MiB",
            Better::Lower,
            kind,
            peak,
        );
        b.table
            .sample(&section, "RSS at end", "MiB", Better::Lower, kind, end_rss);
        b.table.sample(
            &section,
            "operations/s (push, pull, manifest GET)",
            "ops/s",
            Better::Higher,
            kind,
            rate,
        );
        b.discard(server);
    }
    Ok(())
}
