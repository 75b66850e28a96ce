//! The GC soak across real processes (scale-out): three `shipshape serve` nodes, each from a
//! configuration file of its own, over one PostgreSQL catalogue and one S3 bucket (s3s-fs, in
//! the test process). Writers push, a deleter deletes and GC runs follow one another, every
//! request free to land on any node; the node executing a run is SIGKILLed midway and started
//! again on its configuration and data directory. Nothing acknowledged may be lost, the run
//! must end failed (the design: its node fails it when it starts again; another node would once
//! the run's lease ran out) and the next runs succeed, every listed tag pulls completely from
//! every node, and at the end the bucket holds exactly the referenced blobs and `shipshape
//! check` is clean. Runs whatever `SHIPSHAPE_TEST_BACKENDS` says, like multi_node.rs: it needs
//! the PostgreSQL server of `SHIPSHAPE_TEST_POSTGRES`, which `scripts/test` starts.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::backends::{Backends, Kept, configure_with};
use common::process::{BIN, Serve, free_address, shipshape};
use common::{
    OCI_MANIFEST, bytes_and_objects, catalog_repos, client, describe_run, gc_run_to_end, header,
    image_manifest, image_manifest_with, oci_tags, poll_until, pull_every_tag, random_bytes,
    sha256, wait_until,
};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use shipshape_server::{BlobStoreConfig, CatalogueConfig, ServerConfig};
use shipshape_store::{BLOBS_PREFIX, S3Config, S3Store, UPLOADS_PREFIX};
use tokio::sync::mpsc;

const NODES: usize = 3;
const WRITERS: usize = 3;
/// Images the writers push in all, per writer: the soak goes on after the restart until then.
const IMAGES_PER_WRITER: usize = 20;
/// Untagged manifests waiting for the first run: three of its review batches, so that it is
/// still running when its first batch's deletions show in its figures.
const GARBAGE_MANIFESTS: usize = 192;
/// Distinct layers the waiting manifests reference: blobs that become garbage with them.
const GARBAGE_LAYERS: usize = 32;
const GARBAGE_REPO: &str = "soak/garbage";
/// Times one push (or deletion) is sent again before the test gives up on it.
const ATTEMPTS: usize = 50;
/// What every run of the soak asks for: everything collectable now.
const RUN: &str = r#"{"grace": "0s", "include_untagged_manifests": true}"#;

/// The configuration of one node. Every node collects in the background, with a short review
/// delay but not untagged manifests, which only runs take: the first run then finds the waiting
/// manifests still there whatever the workers did meanwhile. Nothing is leased (`gc.lease` 0),
/// so runs take what was just pushed; a push that loses a blob to a run is refused cleanly
/// (invariant 2) and the writer pushes it again.
fn node_config(listen: &str, data_dir: &Path, catalogue_url: &str, s3: &S3Config) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    format!(
        r#"listen = {listen}
data_dir = {data_dir}

[catalogue]
url = {url}
max_connections = 8

[storage]
s3 = {{ endpoint = {endpoint}, bucket = {bucket}, allow_http = true, path_style = true }}

[gc]
review_delay = "1s"
lease = "0s"
workers = 1
poll_interval = "100ms"
untagged_manifests = false
sweep_min_age = "0s"

[deletion]
restore_window = "0s"

[log]
filter = "warn"
"#,
        listen = q(listen),
        data_dir = q(&data_dir.display().to_string()),
        url = q(catalogue_url),
        endpoint = q(s3.endpoint.as_deref().expect("the test bucket's endpoint")),
        bucket = q(&s3.bucket),
    )
}

/// One `shipshape serve` process and the configuration file it starts from.
struct Node {
    config: PathBuf,
    listen: String,
    base: String,
    serve: Option<Serve>,
}

impl Node {
    /// Starts the binary on its configuration and address and waits until `/healthz`
    /// answers. The node fails the runs it left behind before it listens, so once it answers,
    /// they are failed.
    async fn start(&mut self) {
        assert!(self.serve.is_none(), "{} is running", self.base);
        self.serve = Some(Serve::start_at(&self.config, &self.listen, &[]).await);
    }

    /// SIGKILL, and reap the process.
    fn kill(&mut self) {
        self.serve.take().expect("running").kill();
    }
}

/// Three nodes sharing one scratch catalogue and one bucket. Fields drop in order: the nodes,
/// then the catalogue, then the directory.
struct Cluster {
    nodes: Vec<Node>,
    net: Arc<Net>,
    s3: S3Config,
    _kept: Kept,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut shared = ServerConfig::default();
        let kept = configure_with(
            &mut shared,
            dir.path(),
            Backends {
                postgres: true,
                s3: true,
            },
        )
        .await;
        let CatalogueConfig::Postgres { options, .. } = &shared.catalogue else {
            unreachable!("configured for PostgreSQL")
        };
        let BlobStoreConfig::S3(s3) = &shared.blob_store else {
            unreachable!("configured for S3")
        };
        let mut nodes = Vec::new();
        for n in 0..NODES {
            let listen = free_address();
            let config = dir.path().join(format!("node-{n}.toml"));
            let data_dir = dir.path().join(format!("node-{n}"));
            std::fs::write(&config, node_config(&listen, &data_dir, &options.url, s3))
                .expect("write the node's configuration");
            let mut node = Node {
                config,
                base: format!("http://{listen}"),
                listen,
                serve: None,
            };
            // One after another, as multi_node.rs: the first migrates the catalogue.
            node.start().await;
            nodes.push(node);
        }
        let net = Arc::new(Net {
            bases: nodes.iter().map(|n| n.base.clone()).collect(),
            client: client(),
        });
        Cluster {
            nodes,
            net,
            s3: s3.clone(),
            _kept: kept,
            _dir: dir,
        }
    }
}

/// The nodes as a client sees them behind a load balancer.
struct Net {
    bases: Vec<String>,
    client: Client,
}

impl Net {
    /// Sends the request `build` makes for a node, to node `first` or, while a node refuses
    /// the connection (it is down), to the next. An error once connected is returned: the
    /// request may have reached a node that died before it answered.
    async fn send(
        &self,
        first: usize,
        build: impl Fn(&Client, &str) -> RequestBuilder,
    ) -> Result<(usize, Response), reqwest::Error> {
        let mut refused = None;
        for i in 0..NODES {
            let n = (first + i) % NODES;
            match build(&self.client, &self.bases[n]).send().await {
                Ok(resp) => return Ok((n, resp)),
                Err(e) if e.is_connect() => refused = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(refused.expect("a node was asked"))
    }

    /// A run as some node reports it, once one answers.
    async fn run(&self, id: i64, first: usize) -> Option<Value> {
        let (_, resp) = self
            .send(first, |c, base| {
                c.get(format!("{base}/api/v1/gc/runs/{id}"))
            })
            .await
            .ok()?;
        assert_eq!(resp.status(), StatusCode::OK, "GET GC run {id}");
        resp.json().await.ok()
    }
}

/// What the soak's tasks saw.
#[derive(Default)]
struct Soak {
    /// `repo:tag` answered 201.
    acked: BTreeSet<String>,
    /// `repo:tag` whose deletion was answered 202 (or whose deletion cut off by the kill took
    /// effect: a second one found it gone).
    deleted: BTreeSet<String>,
    /// Manifest PUTs refused for a blob a run took before the manifest came.
    refused: usize,
    /// Requests cut off by the kill (sent again).
    cut: usize,
    /// Answers no node should have given.
    unexpected: Vec<String>,
    /// The run the runner waits for, and the node that started it.
    current: Option<(i64, usize)>,
    /// Finished runs: id, the node that started it, the run.
    runs: Vec<(i64, usize, Value)>,
}

type Shared = Arc<Mutex<Soak>>;

fn soak(s: &Shared) -> std::sync::MutexGuard<'_, Soak> {
    s.lock().expect("soak log")
}

/// Fails at once, rather than after a wait's patience, when a task has seen a wrong answer.
fn no_unexpected(s: &Shared) {
    let s = soak(s);
    assert!(
        s.unexpected.is_empty(),
        "unexpected answers:\n{}",
        s.unexpected.join("\n")
    );
}

async fn describe(what: &str, resp: Response) -> String {
    let status = resp.status();
    format!("{what}: {status} {}", resp.text().await.unwrap_or_default())
}

/// Uploads a blob (POST on one node, PUT on the next) until a PUT is answered 201. A session
/// whose PUT was cut off is cancelled (a 404: the cut PUT had finished it), so nothing of it
/// is left for upload expiry.
async fn upload_blob(
    net: &Net,
    s: &Shared,
    repo: &str,
    bytes: &[u8],
    node: &mut usize,
) -> Result<(), String> {
    let digest = sha256(bytes);
    for _ in 0..ATTEMPTS {
        let started = net
            .send(*node, |c, base| {
                c.post(format!("{base}/v2/{repo}/blobs/uploads/"))
            })
            .await;
        *node += 1;
        let location = match started {
            Ok((_, r)) if r.status() == StatusCode::ACCEPTED => {
                header(&r, "location").expect("Location").to_string()
            }
            Ok((_, r)) => return Err(describe(&format!("POST upload {repo}"), r).await),
            Err(_) => {
                soak(s).cut += 1;
                continue;
            }
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = net
            .send(*node, |c, base| {
                c.put(format!("{base}{location}{sep}digest={digest}"))
                    .header("content-type", "application/octet-stream")
                    .body(bytes.to_vec())
            })
            .await;
        *node += 1;
        match put {
            Ok((_, r)) if r.status() == StatusCode::CREATED => return Ok(()),
            Ok((_, r)) => return Err(describe(&format!("PUT blob {digest}"), r).await),
            Err(_) => soak(s).cut += 1,
        }
        let cancel = net
            .send(*node, |c, base| c.delete(format!("{base}{location}")))
            .await;
        *node += 1;
        match cancel {
            Ok((_, r)) if [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND].contains(&r.status()) => {
            }
            Ok((_, r)) => return Err(describe("cancel an upload", r).await),
            Err(_) => soak(s).cut += 1,
        }
    }
    Err(format!("gave up uploading {digest} to {repo}"))
}

/// A manifest to push and the blobs it references.
struct Image<'a> {
    repo: &'a str,
    reference: &'a str,
    blobs: [&'a [u8]; 2],
    manifest: &'a [u8],
}

/// Pushes an image until its manifest is answered 201, each request to the next node: its
/// blobs first when `with_blobs`, and again after a refusal for a blob a run took meanwhile or
/// a PUT the kill cut off.
async fn push(
    net: &Net,
    s: &Shared,
    image: &Image<'_>,
    mut with_blobs: bool,
    node: &mut usize,
) -> Result<(), String> {
    let Image {
        repo,
        reference,
        blobs,
        manifest,
    } = image;
    for _ in 0..ATTEMPTS {
        if with_blobs {
            for b in blobs {
                upload_blob(net, s, repo, b, node).await?;
            }
        }
        with_blobs = true;
        let put = net
            .send(*node, |c, base| {
                c.put(format!("{base}/v2/{repo}/manifests/{reference}"))
                    .header("content-type", OCI_MANIFEST)
                    .body(manifest.to_vec())
            })
            .await;
        *node += 1;
        match put {
            Ok((_, r)) if r.status() == StatusCode::CREATED => return Ok(()),
            Ok((_, r)) => {
                let said = describe(&format!("PUT manifest {repo}:{reference}"), r).await;
                if !said.contains("400 Bad Request") || !said.contains("MANIFEST_BLOB_UNKNOWN") {
                    return Err(said);
                }
                soak(s).refused += 1;
            }
            Err(_) => soak(s).cut += 1,
        }
    }
    Err(format!("gave up pushing {repo}:{reference}"))
}

/// Pushes distinct images to a repository of its own until `stop`; hands every third one it
/// was answered 201 for to the deleter.
async fn writer(
    net: Arc<Net>,
    s: Shared,
    w: usize,
    stop: Arc<AtomicBool>,
    doomed: mpsc::UnboundedSender<(String, String, String)>,
) {
    let repo = format!("soak/writer-{w}");
    let mut node = w;
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let tag = format!("i{k:04}");
        let seed = ((w as u64) << 32) | k;
        let config =
            format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
        let layer = random_bytes(1024 + (seed % 2048) as usize, seed);
        let manifest = image_manifest(
            (&sha256(&config), config.len()),
            &[(&sha256(&layer), layer.len())],
        );
        let image = Image {
            repo: &repo,
            reference: &tag,
            blobs: [&config, &layer],
            manifest: &manifest,
        };
        if let Err(e) = push(&net, &s, &image, true, &mut node).await {
            soak(&s).unexpected.push(e);
            return;
        }
        soak(&s).acked.insert(format!("{repo}:{tag}"));
        if k % 3 == 1 {
            let _ = doomed.send((repo.clone(), tag, sha256(&manifest)));
        }
        k += 1;
    }
}

/// Deletes `repo`'s manifest `target` (a tag or a digest), each attempt on the next node, until
/// one is answered 202, or 404 after one the kill cut off (which had taken effect).
async fn delete(
    net: &Net,
    s: &Shared,
    repo: &str,
    target: &str,
    node: &mut usize,
) -> Result<(), String> {
    let mut cut = false;
    for _ in 0..ATTEMPTS {
        let sent = net
            .send(*node, |c, base| {
                c.delete(format!("{base}/v2/{repo}/manifests/{target}"))
            })
            .await;
        *node += 1;
        match sent {
            Ok((_, r)) if r.status() == StatusCode::ACCEPTED => return Ok(()),
            Ok((_, r)) if r.status() == StatusCode::NOT_FOUND && cut => return Ok(()),
            Ok((_, r)) => return Err(describe(&format!("DELETE {repo}:{target}"), r).await),
            Err(_) => {
                cut = true;
                soak(s).cut += 1;
            }
        }
    }
    Err(format!("gave up deleting {repo}:{target}"))
}

/// Deletes what the writers hand over, every other one by its tag and the rest by digest
/// (the manifest goes, and its tag with it), until the writers are done.
async fn deleter(
    net: Arc<Net>,
    s: Shared,
    mut doomed: mpsc::UnboundedReceiver<(String, String, String)>,
) {
    let mut node = 0;
    let mut by_digest = false;
    while let Some((repo, tag, digest)) = doomed.recv().await {
        let target = if by_digest { &digest } else { &tag };
        by_digest = !by_digest;
        if let Err(e) = delete(&net, &s, &repo, target, &mut node).await {
            soak(&s).unexpected.push(e);
            return;
        }
        soak(&s).deleted.insert(format!("{repo}:{tag}"));
    }
}

/// Starts runs one after another, each on the next node, and follows each to its end on
/// whichever node answers. Before each run the writers push a few images: runs back to back
/// would take nearly every pushed blob before its manifest came (nothing is leased), and the
/// first run, which finds the waiting garbage, starts with the writers in full swing.
async fn runner(net: Arc<Net>, s: Shared, stop: Arc<AtomicBool>) {
    let body: Value = serde_json::from_str(RUN).unwrap();
    let mut node = 0;
    let mut pushed = 0;
    loop {
        let (s, stop) = (&s, &stop);
        wait_until("the writers to push before a run", || async move {
            let done = stop.load(Ordering::Relaxed) || !soak(s).unexpected.is_empty();
            (done || soak(s).acked.len() >= pushed + 2 * WRITERS).then_some(())
        })
        .await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        pushed = soak(s).acked.len();
        let sent = net
            .send(node, |c, base| {
                c.post(format!("{base}/api/v1/gc/runs")).json(&body)
            })
            .await;
        node += 1;
        // Nothing is in flight here when the kill comes: the runner is then waiting for the
        // run on the killed node. The run before has ended, so no other can be active.
        let (on, resp) = match sent {
            Ok((on, resp)) if resp.status() == StatusCode::ACCEPTED => (on, resp),
            Ok((_, resp)) => {
                let said = describe("POST /api/v1/gc/runs", resp).await;
                soak(s).unexpected.push(said);
                return;
            }
            Err(e) => {
                soak(s)
                    .unexpected
                    .push(format!("POST /api/v1/gc/runs: {e}"));
                return;
            }
        };
        let id = resp.json::<Value>().await.unwrap()["id"]
            .as_i64()
            .expect("run id");
        soak(s).current = Some((id, on));
        let next = &AtomicUsize::new(on);
        let net = &net;
        let run = wait_until(&format!("GC run {id} to end"), || async move {
            let run = net.run(id, next.fetch_add(1, Ordering::Relaxed)).await?;
            (run["state"] != "running").then_some(run)
        })
        .await;
        let mut log = soak(s);
        log.current = None;
        log.runs.push((id, on, run));
    }
}

/// Untagged manifests for the first run to collect, pushed by digest from `GARBAGE_TASKS`
/// tasks; each references the same config and one of `GARBAGE_LAYERS` layers. A layer's first
/// manifest is pushed with its blobs and the others after it, by the same task, without: blobs
/// uploaded ahead would be collected by the workers before their manifest came.
async fn make_garbage(net: &Arc<Net>, s: &Shared) {
    const GARBAGE_TASKS: usize = 4;
    const _: () = assert!(
        GARBAGE_LAYERS.is_multiple_of(GARBAGE_TASKS),
        "a layer's manifests in one task"
    );
    let config = Arc::new(br#"{"architecture":"amd64","os":"linux","garbage":true}"#.to_vec());
    let layers: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..GARBAGE_LAYERS)
            .map(|i| random_bytes(1500 + 37 * i, 7000 + i as u64))
            .collect(),
    );
    let mut tasks = Vec::new();
    for t in 0..GARBAGE_TASKS {
        let (net, s, config, layers) = (net.clone(), s.clone(), config.clone(), layers.clone());
        tasks.push(tokio::spawn(async move {
            let mut node = t;
            for i in (t..GARBAGE_MANIFESTS).step_by(GARBAGE_TASKS) {
                let layer = &layers[i % GARBAGE_LAYERS];
                let mut extra = serde_json::Map::new();
                extra.insert("annotations".into(), json!({"n": i.to_string()}));
                let manifest = image_manifest_with(
                    (&sha256(&config), config.len()),
                    &[(&sha256(layer), layer.len())],
                    extra,
                );
                let image = Image {
                    repo: GARBAGE_REPO,
                    reference: &sha256(&manifest),
                    blobs: [&config, layer],
                    manifest: &manifest,
                };
                push(&net, &s, &image, i < GARBAGE_LAYERS, &mut node)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }));
    }
    for t in tasks {
        t.await.expect("a garbage task panicked");
    }
}

/// Every tag of the writers' repositories as `base` lists them.
async fn listed_tags(base: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for repo in catalog_repos(base).await {
        if !repo.starts_with("soak/writer-") {
            continue;
        }
        for tag in oci_tags(base, &repo).await.unwrap_or_default() {
            out.insert(format!("{repo}:{tag}"));
        }
    }
    out
}

/// `shipshape check` on the registry `config` describes, reporting unknown objects of any age.
async fn check_clean(config: &Path) {
    let args = [
        "check",
        "--config",
        config.to_str().unwrap(),
        "--orphan-min-age",
        "0s",
    ];
    let out = shipshape(&args).await;
    let said = describe_run(Path::new(BIN), &args, &out);
    assert!(out.status.success(), "{said}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" 0 problems"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_loses_nothing_and_the_cluster_collects_on() {
    let mut cluster = Cluster::start().await;
    let net = cluster.net.clone();
    let s: Shared = Arc::default();
    make_garbage(&net, &s).await;

    let stop = Arc::new(AtomicBool::new(false));
    let runner = tokio::spawn(runner(net.clone(), s.clone(), stop.clone()));
    let (doomed, doomed_rx) = mpsc::unbounded_channel();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let task = writer(net.clone(), s.clone(), w, stop.clone(), doomed.clone());
        writers.push(tokio::spawn(task));
    }
    drop(doomed);
    let deleter = tokio::spawn(deleter(net.clone(), s.clone(), doomed_rx));

    // A run that has deleted something and is still running (asked of another node than the
    // one executing it); no pause between polls, since the run is midway only for a while.
    let (s_ref, net_ref) = (&s, &net);
    let (victim, node, midway) = poll_until("a GC run to be midway", Duration::ZERO, || async {
        no_unexpected(s_ref);
        let (id, on) = soak(s_ref).current?;
        let run = net_ref.run(id, on + 1).await?;
        let f = &run["figures"];
        let deleted =
            f["manifests_deleted"].as_u64().unwrap() + f["blobs_deleted"].as_u64().unwrap();
        (run["state"] == "running" && deleted > 0).then_some((id, on, run))
    })
    .await;
    cluster.nodes[node].kill();
    let survivors: Vec<usize> = (0..NODES).filter(|&n| n != node).collect();

    // Its lease has not run out: every survivor still reports it and refuses a second run.
    for &n in &survivors {
        let run = net.run(victim, n).await.expect("a survivor answers");
        assert_eq!(
            run["state"], "running",
            "node {n}, with run {victim}'s node {node} dead (if it ended, it did so before the \
             kill: give it more to do): {run}"
        );
        let resp = client()
            .post(format!("{}/api/v1/gc/runs", net.bases[n]))
            .json(&serde_json::from_str::<Value>(RUN).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CONFLICT, "node {n}");
        assert_eq!(
            header(&resp, "shipshape-active-run"),
            Some(victim.to_string().as_str()),
            "node {n}"
        );
    }
    // The survivors keep answering pushes.
    let before = soak(&s).acked.len();
    wait_until("pushes answered while a node is down", || async {
        no_unexpected(s_ref);
        (soak(s_ref).acked.len() >= before + 3).then_some(())
    })
    .await;

    // Its node, started again, fails it (and keeps what it had deleted on record).
    cluster.nodes[node].start().await;
    for n in 0..NODES {
        let run = net.run(victim, n).await.expect("a node answers");
        assert_eq!(run["state"], "failed", "node {n}: {run}");
        assert!(
            run["errors"]
                .to_string()
                .contains("the server stopped during the run"),
            "node {n}: the run is failed by its own node starting again: {run}"
        );
        for figure in ["manifests_deleted", "blobs_deleted"] {
            assert!(
                run["figures"][figure].as_u64() >= midway["figures"][figure].as_u64(),
                "node {n}: {figure} of {midway} went back: {run}"
            );
        }
    }

    // Runs go on, one of them on the node that was killed, and so do pushes, until the
    // writers have pushed their share.
    wait_until("a run on the restarted node to succeed", || async {
        no_unexpected(s_ref);
        let s = soak(s_ref);
        let ran = s
            .runs
            .iter()
            .any(|(id, on, run)| *id > victim && *on == node && run["state"] == "succeeded");
        (ran && s.acked.len() >= WRITERS * IMAGES_PER_WRITER).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("a writer panicked");
    }
    deleter.await.expect("the deleter panicked");
    runner.await.expect("the runner panicked");
    let s = Arc::try_unwrap(s)
        .ok()
        .expect("tasks done")
        .into_inner()
        .unwrap();
    let figures: Vec<String> = s
        .runs
        .iter()
        .map(|(id, on, run)| format!("{id}@{on} {} {}", run["state"], run["figures"]))
        .collect();
    eprintln!(
        "{} pushed, {} deleted, {} refused for a blob a run took, {} cut off by the kill; run \
         {victim} killed on node {node} at {}; runs:\n  {}",
        s.acked.len(),
        s.deleted.len(),
        s.refused,
        s.cut,
        midway["figures"],
        figures.join("\n  ")
    );
    assert!(
        s.unexpected.is_empty(),
        "unexpected answers:\n{}",
        s.unexpected.join("\n")
    );
    assert!(!s.deleted.is_empty(), "the deleter deleted nothing");

    // Every run but the killed one succeeded, whichever task started it.
    let list: Value = client()
        .get(format!("{}/api/v1/gc/runs?limit=1000", net.bases[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let runs = list["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), s.runs.len(), "runs the runner saw end: {list}");
    for run in runs {
        let want = if run["id"] == victim {
            "failed"
        } else {
            "succeeded"
        };
        assert_eq!(run["state"], want, "{run}");
    }

    // No acknowledged push is lost and no deletion undone, on any node.
    let expected: BTreeSet<String> = s.acked.difference(&s.deleted).cloned().collect();
    for base in &net.bases {
        assert_eq!(listed_tags(base).await, expected, "tags listed by {base}");
    }

    // A last run with a storage sweep, on the node that was killed. Once the drainers are done
    // (the queue is the catalogue's: one node's figure is every node's), every listed tag
    // pulls completely from every node, and the bucket holds exactly the blobs they reference.
    let run = gc_run_to_end(
        &net.bases[node],
        &json!({"grace": "0s", "include_untagged_manifests": true, "sweep": true}),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run}");
    eprintln!("last run: {}", run["figures"]);
    let metrics = &format!("{}/metrics", net.bases[0]);
    wait_until(
        "the drainers to empty the storage deletion queue",
        || async move {
            let text = client().get(metrics).send().await.ok()?.text().await.ok()?;
            text.lines()
                .any(|l| l == r#"shipshape_gc_queue_depth{queue="storage_deletions"} 0"#)
                .then_some(())
        },
    )
    .await;
    let pulls = futures::future::join_all(net.bases.iter().map(|b| pull_every_tag(b))).await;
    let mut referenced = None;
    for (base, (blobs, pulled)) in net.bases.iter().zip(pulls) {
        assert_eq!(pulled, expected.len(), "tags pulled from {base}");
        assert_eq!(
            referenced.get_or_insert_with(|| blobs.clone()),
            &blobs,
            "blobs referenced, as {base} serves them"
        );
    }
    let referenced: BTreeMap<String, u64> = referenced.expect("three nodes");
    let bucket = S3Store::open(&cluster.s3).await.expect("open the bucket");
    assert_eq!(
        bytes_and_objects(&bucket, BLOBS_PREFIX).await,
        (referenced.values().sum::<u64>(), referenced.len()),
        "(bytes, objects) under blobs/ vs (bytes, blobs) the tags reference; last run: {run}"
    );
    let uploads = common::list_objects(&bucket, UPLOADS_PREFIX).await;
    assert!(
        uploads.is_empty(),
        "objects left under uploads/: {uploads:?}"
    );

    for n in &mut cluster.nodes {
        n.kill();
    }
    check_clean(&cluster.nodes[0].config).await;
}
