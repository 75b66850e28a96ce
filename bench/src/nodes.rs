//! The several-nodes benchmark (`bench-nodes`): Shipshape on PostgreSQL + S3 as one node and
//! as three (child processes on one database and one bucket), beside Shipshape on SQLite + disk
//! and Distribution on the same S3 server: push and pull throughput of a few MiB-sized layers,
//! and the manifest GET rate and p99 with wrk's connections spread round-robin over the nodes.
//! PostgreSQL comes from `scripts/postgres`; the S3 server is s3s-fs in this process, or with
//! `--garage` a garage node as its own process (`garage.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use serde::Serialize;

use crate::garage::{self, Garage};
use crate::http::client::{Client, Upload};
use crate::http::images::{self, Image, MANIFEST_TYPE};
use crate::http::{Result, wrk};
use crate::report::Better;
use crate::servers::{self, Server, cpu_seconds, free_port, wait_for_quiet_machine};
use crate::stats::Samples;

const MIB: f64 = 1024.0 * 1024.0;
pub const S3_KEY_ID: &str = "shipshape-bench";
pub const S3_SECRET: &str = "shipshape-bench-secret";

/// A throw-away PostgreSQL server from `scripts/postgres start`, stopped when dropped.
pub struct Postgres {
    dir: String,
    script: PathBuf,
    /// A superuser URL (`postgres://postgres@127.0.0.1:PORT/postgres`).
    pub url: String,
}

impl Postgres {
    pub fn start(script: &Path) -> Result<Postgres> {
        let out = Command::new(script).arg("start").output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "{} start failed: {text}{}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::to_string)
        };
        let (Some(dir), Some(url)) = (
            field("SHIPSHAPE_TEST_POSTGRES_DIR="),
            field("SHIPSHAPE_TEST_POSTGRES="),
        ) else {
            return Err(format!("unexpected output of {} start: {text}", script.display()).into());
        };
        Ok(Postgres {
            dir,
            script: script.to_path_buf(),
            url,
        })
    }

    /// `SHOW name` through psql (a setting for the report).
    pub fn show(&self, name: &str) -> String {
        Command::new("psql")
            .args(["-qAt", &self.url, "-c", &format!("SHOW {name}")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .args(["stop", &self.dir])
            .status();
    }
}

/// An S3 server (s3s-fs over `root`, one directory per bucket) on a loopback port, served by
/// this process's runtime for as long as it runs; the same as the cli tests' server.
pub async fn s3_server(root: &Path, buckets: &[&str]) -> Result<SocketAddr> {
    for b in buckets {
        std::fs::create_dir_all(root.join(b))?;
    }
    let fs = s3s_fs::FileSystem::new(root)
        .map_err(|e| format!("s3s-fs on {}: {e:?}", root.display()))?;
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(S3_KEY_ID, S3_SECRET));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let service = service.clone();
            tokio::spawn(async move {
                let _ = ConnBuilder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// The registries measured, one column each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    SqliteOne,
    PostgresOne,
    PostgresThree,
    DistributionS3,
}

impl Column {
    pub const ALL: [Column; 4] = [
        Column::SqliteOne,
        Column::PostgresOne,
        Column::PostgresThree,
        Column::DistributionS3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::SqliteOne => "Shipshape, SQLite + disk, 1 node",
            Column::PostgresOne => "Shipshape, PostgreSQL + S3, 1 node",
            Column::PostgresThree => "Shipshape, PostgreSQL + S3, 3 nodes",
            Column::DistributionS3 => "Distribution, S3",
        }
    }
}

/// Sizes and durations of one run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub repeat: usize,
    /// Concurrent clients of a push or pull, client *i* on node *i* mod nodes.
    pub clients: usize,
    /// Each client's image: how many layers of what size.
    pub layers: (usize, usize),
    pub wrk_duration: Duration,
    /// wrk threads: a multiple of the three nodes, so each gets the same share.
    pub wrk_threads: u32,
    /// Connection counts, multiples of `wrk_threads` (wrk splits them evenly).
    pub connections: Vec<u32>,
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            repeat: 3,
            clients: 3,
            layers: (8, 4 << 20),
            wrk_duration: Duration::from_secs(5),
            wrk_threads: 3,
            connections: vec![15, 63],
        }
    }

    pub fn quick() -> Plan {
        Plan {
            repeat: 1,
            layers: (2, 1 << 20),
            wrk_duration: Duration::from_secs(2),
            ..Plan::full()
        }
    }
}

/// Where the run lives.
#[derive(Clone, Debug)]
pub struct Setup {
    pub shipshape_bin: PathBuf,
    pub postgres_script: PathBuf,
    pub work: PathBuf,
    /// The garage binary to store every registry's blobs in, instead of s3s-fs.
    pub garage: Option<PathBuf>,
    /// `[catalogue] manifest_cache_ttl` of every Shipshape node on PostgreSQL (`None`: the
    /// default).
    pub manifest_cache_ttl: Option<String>,
}

/// The S3 server the registries store their blobs in, and the key they sign with.
#[derive(Clone, Copy)]
struct S3Endpoint {
    addr: SocketAddr,
    key_id: &'static str,
    secret: &'static str,
}

/// One figure across the columns.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub section: String,
    pub name: String,
    pub unit: String,
    pub better: Better,
    /// One per column, in the report's column order (empty where not measured).
    pub values: Vec<Samples>,
}

/// The results: rows of figures by column, written as Markdown and JSON.
#[derive(Clone, Debug, Serialize)]
pub struct NodesReport {
    pub title: String,
    pub conditions: Vec<String>,
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    /// Columns not measured, and why.
    pub skipped: Vec<String>,
}

impl NodesReport {
    fn sample(
        &mut self,
        section: &str,
        name: &str,
        unit: &str,
        better: Better,
        col: Column,
        v: f64,
    ) {
        let i = Column::ALL.iter().position(|c| *c == col).unwrap_or(0);
        let row = match self
            .rows
            .iter_mut()
            .position(|r| r.section == section && r.name == name)
        {
            Some(at) => &mut self.rows[at],
            None => {
                self.rows.push(Row {
                    section: section.into(),
                    name: name.into(),
                    unit: unit.into(),
                    better,
                    values: vec![Samples::default(); Column::ALL.len()],
                });
                self.rows.last_mut().expect("just pushed")
            }
        };
        row.values[i].push(v);
    }

    fn median(&self, section: &str, name: &str, col: Column) -> Option<f64> {
        let i = Column::ALL.iter().position(|c| *c == col)?;
        let r = self
            .rows
            .iter()
            .find(|r| r.section == section && r.name == name)?;
        (!r.values[i].is_empty()).then(|| r.values[i].median())
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n", self.title);
        for c in &self.conditions {
            out += &format!("- {c}\n");
        }
        for s in &self.skipped {
            out += &format!("- **not measured**: {s}\n");
        }
        out += "\n| figure | unit |";
        for c in Column::ALL {
            out += &format!(" {} |", c.name());
            if c == Column::PostgresThree {
                out += " 3 nodes / 1 node |";
            }
        }
        out += "\n|---|---|";
        out += &"---:|".repeat(Column::ALL.len() + 1);
        out += "\n";
        let mut section = "";
        for r in &self.rows {
            if r.section != section {
                section = &r.section;
                out += &format!("| **{section}** |{}\n", " |".repeat(Column::ALL.len() + 2));
            }
            out += &format!("| {} | {} |", r.name, r.unit);
            for (i, c) in Column::ALL.iter().enumerate() {
                let s = &r.values[i];
                out += &if s.is_empty() {
                    " — |".to_string()
                } else if s.median() == 0.0 {
                    // A spread relative to nothing says nothing: the largest round instead.
                    format!(" 0 (at most {}) |", num(s.max()))
                } else {
                    format!(" {} ±{:.0}% |", num(s.median()), 100.0 * s.spread())
                };
                if *c == Column::PostgresThree {
                    let one = &r.values[1];
                    out += &if s.is_empty() || one.is_empty() || one.median() == 0.0 {
                        " — |".to_string()
                    } else {
                        format!(" {:.2} |", s.median() / one.median())
                    };
                }
            }
            out += "\n";
        }
        out += "\nCells: median of the rounds ±spread (half the range over the median).\n";
        let mut targets = String::new();
        for r in self
            .rows
            .iter()
            .filter(|r| r.section == GET_SECTION && r.unit == "req/s")
        {
            if let (Some(three), Some(one)) = (
                self.median(GET_SECTION, &r.name, Column::PostgresThree),
                self.median(GET_SECTION, &r.name, Column::PostgresOne),
            ) {
                targets += &format!(
                    "- manifest GET, {}: three nodes keep **{:.0}%** of one node's rate \
                     (the issue's target: at least 80%)\n",
                    r.name.trim_end_matches(": requests/s"),
                    100.0 * three / one
                );
            }
        }
        if !targets.is_empty() {
            out += "\n";
            out += &targets;
        }
        out
    }

    /// Writes `<stem>.md` and `<stem>.json` into `dir` and prints the Markdown.
    pub fn write(&self, dir: &Path, stem: &str) -> std::io::Result<()> {
        crate::report::write_files(dir, stem, &self.markdown(), self)
    }
}

const GET_SECTION: &str = "manifest GET by tag (wrk, spread over the nodes)";

fn num(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A running registry of one column: its nodes.
struct Deployment {
    column: Column,
    nodes: Vec<Server>,
}

impl Deployment {
    fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(Server::port).collect()
    }
}

fn s3_env(s3: S3Endpoint) -> [(&'static str, &'static str); 2] {
    [
        ("SHIPSHAPE_S3_ACCESS_KEY_ID", s3.key_id),
        ("SHIPSHAPE_S3_SECRET_ACCESS_KEY", s3.secret),
    ]
}

/// A node's configuration file: the catalogue on `db`, blobs in `bucket` of the S3 server.
fn node_config(db: &str, s3: S3Endpoint, bucket: &str, setup: &Setup) -> String {
    let s3 = s3.addr;
    let ttl = setup
        .manifest_cache_ttl
        .as_ref()
        .map(|t| format!("manifest_cache_ttl = \"{t}\"\n"))
        .unwrap_or_default();
    format!(
        "[catalogue]\nurl = \"{db}\"\nmax_connections = 16\n{ttl}\n[storage]\n\
         s3 = {{ endpoint = \"http://{s3}\", bucket = \"{bucket}\", region = \"us-east-1\", \
         allow_http = true, path_style = true }}\n"
    )
}

/// Distribution on the S3 server: path-style requests to `regionendpoint` over plain HTTP,
/// redirects to the bucket off (blobs are served through the registry, as Shipshape does).
fn distribution_s3_config(s3: S3Endpoint, bucket: &str, port: u16) -> String {
    let S3Endpoint {
        addr: s3,
        key_id,
        secret,
    } = s3;
    format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  s3:\n    accesskey: {key_id}\n    secretkey: {secret}\n    \
         region: us-east-1\n    regionendpoint: http://{s3}\n    bucket: {bucket}\n    \
         secure: false\n    v4auth: true\n    forcepathstyle: true\n    rootdirectory: /\n  \
         delete:\n    enabled: true\n  redirect:\n    disable: true\n  \
         cache:\n    blobdescriptor: inmemory\n\
         http:\n  addr: 127.0.0.1:{port}\n"
    )
}

/// Starts a cluster of `n` Shipshape nodes on one catalogue and bucket, one after another (the
/// first applies the migrations).
fn shipshape_nodes(
    setup: &Setup,
    name: &str,
    n: usize,
    config: &str,
    s3: S3Endpoint,
) -> Result<Vec<Server>> {
    let file = setup.work.join(format!("{name}.toml"));
    std::fs::write(&file, config)?;
    let mut nodes = Vec::new();
    for i in 0..n {
        let data = setup.work.join(format!("{name}-node{i}"));
        std::fs::create_dir_all(&data)?;
        let config = file.to_string_lossy().into_owned();
        nodes.push(Server::shipshape_with_env(
            &setup.shipshape_bin,
            &data,
            &["--config", &config],
            &s3_env(s3),
        )?);
    }
    Ok(nodes)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The whole run.
pub async fn run(plan: Plan, setup: Setup) -> Result<NodesReport> {
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(&setup.work);
    std::fs::create_dir_all(&setup.work)?;
    let mut report = NodesReport {
        title: "Several nodes: Shipshape on PostgreSQL + S3, one node and three".into(),
        conditions: Vec::new(),
        columns: Column::ALL.iter().map(|c| c.name().to_string()).collect(),
        rows: Vec::new(),
        skipped: Vec::new(),
    };
    let autogroup = servers::AutogroupOff::for_the_run();
    eprintln!("starting PostgreSQL and the S3 server …");
    let pg = Postgres::start(&setup.postgres_script)?;
    let buckets = ["shipshape-one", "shipshape-three", "distribution"];
    let (s3, garage, s3_what) = match &setup.garage {
        Some(bin) => {
            let garage = Garage::start(bin, &setup.work.join("garage"), &buckets)?;
            let s3 = S3Endpoint {
                addr: garage.s3,
                key_id: garage::KEY_ID,
                secret: garage::SECRET,
            };
            let what = format!(
                "garage ({}) as its own process, one node, sqlite metadata, under {}",
                Garage::version(bin),
                setup.work.display()
            );
            (s3, Some(garage), what)
        }
        None => {
            let addr = s3_server(&setup.work.join("s3"), &buckets).await?;
            let s3 = S3Endpoint {
                addr,
                key_id: S3_KEY_ID,
                secret: S3_SECRET,
            };
            let what = format!(
                "s3s-fs in the bench process (files under {})",
                setup.work.display()
            );
            (s3, None, what)
        }
    };
    // s3s-fs runs inside this process.
    let s3_pid = garage.as_ref().map_or(std::process::id(), Garage::pid);
    let one_db = shipshape_meta::scratch::create(&pg.url).await?;
    let three_db = shipshape_meta::scratch::create(&pg.url).await?;

    let mut deployments = Vec::new();
    let sqlite_dir = setup.work.join("sqlite");
    std::fs::create_dir_all(&sqlite_dir)?;
    deployments.push(Deployment {
        column: Column::SqliteOne,
        nodes: vec![Server::shipshape(&setup.shipshape_bin, &sqlite_dir, &[])?],
    });
    deployments.push(Deployment {
        column: Column::PostgresOne,
        nodes: shipshape_nodes(
            &setup,
            "pg-one",
            1,
            &node_config(&one_db.url, s3, "shipshape-one", &setup),
            s3,
        )?,
    });
    deployments.push(Deployment {
        column: Column::PostgresThree,
        nodes: shipshape_nodes(
            &setup,
            "pg-three",
            3,
            &node_config(&three_db.url, s3, "shipshape-three", &setup),
            s3,
        )?,
    });
    let port = free_port();
    match Server::distribution_configured(
        &setup.work.join("distribution"),
        port,
        &distribution_s3_config(s3, "distribution", port),
    ) {
        Ok(server) => deployments.push(Deployment {
            column: Column::DistributionS3,
            nodes: vec![server],
        }),
        Err(e) => report
            .skipped
            .push(format!("Distribution on the S3 server did not start: {e}")),
    }

    // The manifest read by every GET: a typical image (8 small layers), pushed through node 0.
    let app = Image::new("app", images::layers(3_000, &[4096; 8]));
    let mut failed = Vec::new();
    for d in &deployments {
        let client = Client::new(&d.nodes[0].base);
        if let Err(e) = client
            .push_image("bench/app", "v1", &app, Upload::Monolithic, false)
            .await
        {
            let log = match d.column {
                Column::DistributionS3 => {
                    let log = setup.work.join("distribution").with_extension("log");
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(3).collect();
                    format!(" (its log: {})", tail.join(" | "))
                }
                _ => String::new(),
            };
            report.skipped.push(format!(
                "{}: pushing the first image failed: {e}{log}",
                d.column.name()
            ));
            failed.push(d.column);
        }
    }
    deployments.retain(|d| !failed.contains(&d.column));

    for rep in 0..plan.repeat {
        let n = deployments.len();
        for k in 0..n {
            // Each round starts with another column, so none always runs on a machine another
            // has just warmed (or left writing back).
            let d = &deployments[(k + rep) % n];
            eprintln!("round {rep}: {}", d.column.name());
            if let Err(e) = measure(&plan, &mut report, rep, d, s3_pid).await {
                return Err(format!("{} round {rep}: {e}", d.column.name()).into());
            }
        }
    }

    // Every image of the run pulled once more through every node, each blob hashed: what the
    // registries keep on their store is byte for byte what was pushed.
    for d in &deployments {
        let mut blobs = 0;
        for node in &d.nodes {
            let client = Client::new(&node.base);
            blobs += client.verify_image("bench/app", "v1").await?;
            for rep in 0..plan.repeat {
                for i in 0..plan.clients {
                    let repo = format!("bench/nodes-{rep}-{i}");
                    blobs += client
                        .verify_image(&repo, "v1")
                        .await
                        .map_err(|e| format!("{}: checking {repo}:v1: {e}", d.column.name()))?;
                }
            }
        }
        report.condition(format!(
            "{}: at the end every image pulled again through each of its {} node(s), {blobs} blobs, each body hashed and matching its digest",
            d.column.name(),
            d.nodes.len()
        ));
    }

    let (l, s) = plan.layers;
    report.condition(format!(
        "{} round(s) per figure; each round starts with the next column; load average at the end {}",
        plan.repeat,
        load_average()
    ));
    report.condition(format!(
        "push and pull: {} clients at once, each with its own image of {l} × {} MiB pseudo-random layers (a new image per round), client i on node i mod nodes; the lean client (HTTP/1.1, blobs from memory, one blob at a time per client, monolithic PUT); throughput = all clients' blob bytes over the time until the last finished; each pull goes to the node after the one its image was pushed through",
        plan.clients,
        s >> 20
    ));
    report.condition(format!(
        "manifest GET by tag: wrk --latency, {} threads, thread i on node i mod nodes (so its connections are spread round-robin), {} s per run after a 1 s warm-up that starts once the machine is quiet (under 10% busy over 0.5 s, at most 30 s after the pull), `Accept: {MANIFEST_TYPE}`, a manifest of about 1.6 KB",
        plan.wrk_threads,
        plan.wrk_duration.as_secs()
    ));
    report.condition(format!(
        "PostgreSQL {} from scripts/postgres on loopback (fsync off, synchronous_commit off: test settings), max_connections {}; each Shipshape node's pool 16; S3: {s3_what}, one bucket per registry",
        pg.show("server_version"),
        pg.show("max_connections")
    ));
    report.condition(autogroup.describe());
    report.condition(format!(
        "Shipshape nodes' manifest cache (`[catalogue] manifest_cache_ttl`): {}",
        setup
            .manifest_cache_ttl
            .as_deref()
            .map_or("the default, 5 s".to_string(), |t| format!("{t:?}"))
    ));
    report.condition(
        "Shipshape nodes: release build, `shipshape serve --config`, access control off, log level warn, each with its own data directory; Distribution: Debian docker-registry 2.8.2, S3 driver (regionendpoint, path-style, plain HTTP), redirects off, in-memory blob descriptor cache",
    );
    report.condition(format!(
        "machine: {} cores, shared with whatever else ran (the load average above); everything (client, wrk, nodes, PostgreSQL, S3 server) on it; run took {:.0} s",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        started.elapsed().as_secs_f64()
    ));

    for d in deployments {
        for s in d.nodes {
            s.stop();
        }
    }
    let _ = one_db.drop_database().await;
    let _ = three_db.drop_database().await;
    drop(pg);
    Ok(report)
}

impl NodesReport {
    pub fn condition(&mut self, line: impl Into<String>) {
        self.conditions.push(line.into());
    }
}

/// One round on one column: push, pull, manifest GETs; `s3_pid` is the S3 server's process.
async fn measure(
    plan: &Plan,
    report: &mut NodesReport,
    rep: usize,
    d: &Deployment,
    s3_pid: u32,
) -> Result<()> {
    let col = d.column;
    let idx = Column::ALL.iter().position(|c| *c == col).unwrap_or(0) as u64;
    let (l, s) = plan.layers;
    let imgs: Vec<Image> = (0..plan.clients)
        .map(|i| {
            let seed = 100_000 + (rep as u64) * 10_000 + idx * 1_000 + (i as u64) * 100;
            Image::new(&format!("nodes-{seed}"), images::layers(seed, &vec![s; l]))
        })
        .collect();
    let bytes: u64 = imgs.iter().map(Image::blob_bytes).sum();
    let n = d.nodes.len();
    let repo = |i: usize| format!("bench/nodes-{rep}-{i}");

    let t = Instant::now();
    let pushes = imgs.iter().enumerate().map(|(i, img)| {
        let client = Client::new(&d.nodes[i % n].base);
        let repo = repo(i);
        async move {
            client
                .push_image(&repo, "v1", img, Upload::Monolithic, false)
                .await
        }
    });
    futures::future::try_join_all(pushes).await?;
    let took = t.elapsed().as_secs_f64();
    let section = format!("{} clients × {l} × {} MiB", plan.clients, s >> 20);
    report.sample(
        &section,
        "push",
        "MiB/s",
        Better::Higher,
        col,
        bytes as f64 / MIB / took,
    );

    let t = Instant::now();
    let pulls = (0..plan.clients).map(|i| {
        let client = Client::new(&d.nodes[(i + 1) % n].base);
        let repo = repo(i);
        async move { client.pull_image(&repo, "v1").await }
    });
    let got: u64 = futures::future::try_join_all(pulls)
        .await?
        .into_iter()
        .sum();
    let took = t.elapsed().as_secs_f64();
    if got != bytes {
        return Err(format!("pulled {got} bytes of {bytes}").into());
    }
    report.sample(
        &section,
        "pull",
        "MiB/s",
        Better::Higher,
        col,
        bytes as f64 / MIB / took,
    );

    let accept = format!("Accept: {MANIFEST_TYPE}");
    let path = "/v2/bench/app/manifests/v1";
    let ports = d.ports();
    let threads = plan.wrk_threads;
    // A manifest GET reads only the catalogue, so the GETs start once the store has finished
    // with the push and pull before them (in run L it always had: the wait is a guard, and
    // the S3 server's CPU during the GETs is reported beside it).
    let waited = wait_for_quiet_machine(Duration::from_secs(30));
    report.sample(
        GET_SECTION,
        "waited first for a quiet machine",
        "s",
        Better::Lower,
        col,
        waited.as_secs_f64(),
    );
    wrk::run_spread(
        &ports,
        path,
        threads,
        3 * threads,
        Duration::from_secs(1),
        &[&accept],
    )?;
    for &c in &plan.connections {
        let (cpu, t) = (cpu_seconds(s3_pid), Instant::now());
        let r = wrk::run_spread(&ports, path, threads, c, plan.wrk_duration, &[&accept])?;
        let s3_cpu = (cpu_seconds(s3_pid) - cpu) / t.elapsed().as_secs_f64() * 100.0;
        if r.errors > 0 {
            return Err(format!("manifest GET at {c} connections: {} errors", r.errors).into());
        }
        let conns = format!("{c} conn.");
        report.sample(
            GET_SECTION,
            &format!("{conns}: requests/s"),
            "req/s",
            Better::Higher,
            col,
            r.requests_per_sec,
        );
        report.sample(
            GET_SECTION,
            &format!("{conns}: p50"),
            "ms",
            Better::Lower,
            col,
            r.p50_ms,
        );
        report.sample(
            GET_SECTION,
            &format!("{conns}: p99"),
            "ms",
            Better::Lower,
            col,
            r.p99_ms,
        );
        report.sample(
            GET_SECTION,
            &format!("{conns}: the S3 server's CPU"),
            "% of a core",
            Better::Lower,
            col,
            s3_cpu,
        );
    }
    Ok(())
}
