//! Concurrency stress of the online collector against pushes and deletes over HTTP.
//!
//! Writers push images into a few repositories (a config, two to four layers drawn from a
//! small shared pool, sometimes a unique layer; each blob is HEADed first and uploaded only when
//! missing, some are mounted across repositories) under a small set of tags, so tags move all
//! the time; deleters delete tags (OCI and management API) and sometimes manifests by digest; a
//! background worker and a task that starts GC runs back to back collect meanwhile, in one
//! scenario with no grace at all. No push may ever be refused for a blob the client was told
//! exists: what a client was told is leased (`gc.lease`) whatever grace a run is given. At the
//! end every tag must pull completely, and once the clock has moved past every lease a final
//! `grace: 0s` run leaves nothing unreferenced in the blob store.
//!
//! The work is a fixed number of operations, not a duration: each writer pushes
//! `SHIPSHAPE_STRESS_OPS` images (default [`DEFAULT_OPS`]) and each deleter makes half as many
//! deletions. The PRNG seeds are fixed (each task draws its own sequence); the interleaving is
//! whatever the scheduler makes of it. Benchmarks run the same tests as a soak, in nextest's
//! `soak` profile, which does not stop a test after the default profile's ten minutes:
//!
//! ```text
//! SHIPSHAPE_STRESS_OPS=2000 cargo nextest run --profile soak -p shipshape-cli --test gc_stress
//! ```

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{
    OCI_MANIFEST, POLL_PAUSE, ShiftedClock, TestServer, bytes_and_objects, client, gc_run_to_end,
    get_text, header, image_manifest, oci_tags, pull_every_tag, random_bytes, sha256, wait_gc_run,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shipshape_store::BLOBS_PREFIX;
use tokio::sync::{Mutex, watch};

/// Images each writer pushes unless `SHIPSHAPE_STRESS_OPS` says otherwise.
const DEFAULT_OPS: usize = 60;
const REPOS: [&str; 3] = ["stress/alpha", "stress/beta", "stress/gamma"];
const TAGS: [&str; 4] = ["latest", "v1", "v2", "edge"];
/// Layer contents shared by every writer and repository.
const POOL: u64 = 8;
const SEED: u64 = 0x5eed_5a1b;

fn ops() -> usize {
    match std::env::var("SHIPSHAPE_STRESS_OPS") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|e| panic!("SHIPSHAPE_STRESS_OPS={v:?}: {e}")),
        Err(_) => DEFAULT_OPS,
    }
}

/// xorshift64*: a fixed, dependency-free sequence per seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

fn pool_layer(i: u64) -> Vec<u8> {
    random_bytes(3000 + 211 * i as usize, 10_000 + i)
}

/// How a scenario is configured.
#[derive(Clone, Copy)]
struct Scenario {
    /// The server's review delay (the grace of its background worker).
    review_delay: Duration,
    /// The grace the continuous runs are given (`None`: the server's review delay).
    run_grace: Option<&'static str>,
    writers: u64,
    deleters: u64,
}

/// What went wrong during the run, with the bodies, for the final assertions.
#[derive(Default)]
struct Log {
    /// Manifest PUTs answered MANIFEST_BLOB_UNKNOWN: `repo:tag → body`.
    blob_unknown: Vec<String>,
    /// Any other unexpected answer to a push step.
    push_failures: Vec<String>,
    /// GC runs that did not succeed.
    bad_runs: Vec<Value>,
    /// Duration and figures of each run, for the report.
    run_figures: Vec<String>,
    pushed: usize,
    deleted: usize,
    runs: usize,
}

async fn body_text(resp: reqwest::Response) -> String {
    resp.text().await.unwrap_or_default()
}

/// Makes sure `repo` has the blob: HEAD first, upload only when missing; sometimes a
/// cross-repository mount instead. Returns an error text for an unexpected answer.
async fn ensure_blob(
    c: &Client,
    base: &str,
    repo: &str,
    bytes: &[u8],
    mount_from: Option<&str>,
) -> Result<(), String> {
    let digest = sha256(bytes);
    let session = if let Some(from) = mount_from {
        let resp = c
            .post(format!(
                "{base}/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"
            ))
            .send()
            .await
            .unwrap();
        match resp.status() {
            StatusCode::CREATED => return Ok(()),
            // The blob was not there to mount: the spec's fallback is a plain session.
            StatusCode::ACCEPTED => header(&resp, "location").unwrap().to_string(),
            s => {
                return Err(format!(
                    "mount {digest} into {repo}: {s} {}",
                    body_text(resp).await
                ));
            }
        }
    } else {
        let resp = c
            .head(format!("{base}/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        match resp.status() {
            StatusCode::OK => return Ok(()),
            StatusCode::NOT_FOUND => {}
            s => return Err(format!("HEAD {repo}@{digest}: {s}")),
        }
        let resp = c
            .post(format!("{base}/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        if resp.status() != StatusCode::ACCEPTED {
            return Err(format!(
                "POST upload {repo}: {} {}",
                resp.status(),
                body_text(resp).await
            ));
        }
        header(&resp, "location").unwrap().to_string()
    };
    let sep = if session.contains('?') { '&' } else { '?' };
    let resp = c
        .put(format!("{base}{session}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    if resp.status() != StatusCode::CREATED {
        return Err(format!(
            "PUT blob {digest} into {repo}: {} {}",
            resp.status(),
            body_text(resp).await
        ));
    }
    Ok(())
}

async fn writer(
    base: String,
    id: u64,
    n: usize,
    log: Arc<Mutex<Log>>,
    progress: Arc<watch::Sender<usize>>,
) {
    let c = client();
    let mut rng = Rng::new(SEED ^ (id << 32));
    for op in 0..n {
        let repo = rng.pick(&REPOS);
        let tag = rng.pick(&TAGS);
        let config = format!(r#"{{"architecture":"amd64","os":"linux","writer":{id},"op":{op}}}"#)
            .into_bytes();
        let mut layers: Vec<Vec<u8>> = Vec::new();
        let mut chosen = Vec::new();
        for _ in 0..2 + rng.below(3) {
            let i = rng.below(POOL);
            if !chosen.contains(&i) {
                chosen.push(i);
                layers.push(pool_layer(i));
            }
        }
        if rng.chance(3) {
            layers.push(random_bytes(
                1500 + rng.below(3000) as usize,
                (id << 40) | op as u64,
            ));
        }
        let mount_from = rng
            .chance(4)
            .then(|| REPOS[rng.below(REPOS.len() as u64) as usize])
            .filter(|from| *from != repo);
        let manifest = image_manifest(
            (&sha256(&config), config.len()),
            &layers
                .iter()
                .map(|l| (sha256(l), l.len()))
                .collect::<Vec<_>>()
                .iter()
                .map(|(d, s)| (d.as_str(), *s))
                .collect::<Vec<_>>(),
        );
        let mut ok = true;
        for blob in std::iter::once(&config).chain(layers.iter()) {
            if let Err(e) = ensure_blob(&c, &base, repo, blob, mount_from).await {
                log.lock().await.push_failures.push(e);
                ok = false;
                break;
            }
        }
        if ok {
            let resp = c
                .put(format!("{base}/v2/{repo}/manifests/{tag}"))
                .header("content-type", OCI_MANIFEST)
                .body(manifest.clone())
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let text = body_text(resp).await;
            let mut l = log.lock().await;
            if status == StatusCode::CREATED {
                l.pushed += 1;
            } else if text.contains("MANIFEST_BLOB_UNKNOWN") {
                l.blob_unknown
                    .push(format!("{repo}:{tag}: {status} {text}"));
            } else {
                l.push_failures
                    .push(format!("PUT manifest {repo}:{tag}: {status} {text}"));
            }
        }
        progress.send_modify(|p| *p += 1);
    }
}

async fn deleter(
    base: String,
    id: u64,
    n: usize,
    writers: u64,
    log: Arc<Mutex<Log>>,
    mut progress: watch::Receiver<usize>,
) {
    let c = client();
    let mut rng = Rng::new(SEED ^ 0xde1e7e ^ (id << 32));
    for op in 0..n {
        // Spread the deletions over the pushes: deletion `op` waits for `2 * writers * op` of them.
        let target = op * 2 * writers as usize;
        progress
            .wait_for(|p| *p >= target)
            .await
            .expect("writers' progress");
        let repo = rng.pick(&REPOS);
        let listed = oci_tags(&base, repo).await.unwrap_or_default();
        let tag = if listed.is_empty() || rng.chance(4) {
            rng.pick(&TAGS).to_string()
        } else {
            listed[rng.below(listed.len() as u64) as usize].clone()
        };
        let resp = match rng.below(5) {
            0 => {
                // By digest: whatever the tag points at now, with every tag on it.
                let resp = c
                    .head(format!("{base}/v2/{repo}/manifests/{tag}"))
                    .header("accept", OCI_MANIFEST)
                    .send()
                    .await
                    .unwrap();
                let Some(digest) = header(&resp, "docker-content-digest").map(str::to_string)
                else {
                    continue;
                };
                c.delete(format!("{base}/v2/{repo}/manifests/{digest}"))
                    .send()
                    .await
                    .unwrap()
            }
            1 | 2 => c
                .delete(format!("{base}/v2/{repo}/manifests/{tag}"))
                .send()
                .await
                .unwrap(),
            _ => c
                .delete(format!("{base}/api/v1/repositories/{repo}/-/tags/{tag}"))
                .send()
                .await
                .unwrap(),
        };
        // A 404 is a delete that raced with another; anything else but success is a bug.
        let status = resp.status();
        if status.is_success() {
            log.lock().await.deleted += 1;
        } else if status != StatusCode::NOT_FOUND {
            let text = body_text(resp).await;
            log.lock()
                .await
                .push_failures
                .push(format!("delete {repo}:{tag}: {status} {text}"));
        }
    }
}

/// Starts GC runs back to back until `stop`, waiting for each to finish, so that runs overlap
/// every step of the pushes in flight.
async fn runner(
    base: String,
    grace: Option<&'static str>,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
) {
    let mut body = json!({"include_untagged_manifests": true});
    if let Some(g) = grace {
        body["grace"] = json!(g);
    }
    let c = client();
    while !stop.load(Ordering::Relaxed) {
        let resp = c
            .post(format!("{base}/api/v1/gc/runs"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        let id = match status {
            StatusCode::ACCEPTED => v["id"].as_i64().expect("run id"),
            StatusCode::CONFLICT => {
                // Another run is still active: ask again shortly.
                tokio::time::sleep(POLL_PAUSE).await;
                continue;
            }
            s => panic!("POST /api/v1/gc/runs: {s} {v}"),
        };
        let run = wait_gc_run(&base, id).await;
        let mut l = log.lock().await;
        l.runs += 1;
        l.run_figures
            .push(format!("{}ms {}", run["duration_ms"], run["figures"]));
        if run["state"] != "succeeded" {
            l.bad_runs.push(run);
        }
    }
}

async fn stress(scenario: Scenario) {
    let delay = scenario.review_delay;
    let clock = ShiftedClock::default();
    let s = TestServer::start_with_shifted_clock(&clock, |c| {
        c.restore_window = Duration::ZERO;
        c.gc.restore_window = Duration::ZERO;
        c.gc.review_delay = delay;
        c.gc.workers = 1;
        c.gc.poll_interval = Duration::from_millis(100);
        c.gc.untagged_manifests = true;
    })
    .await;
    let lease = shipshape_gc::GcConfig::default().lease;
    let n = ops();
    let log = Arc::new(Mutex::new(Log::default()));
    let (progress, progress_rx) = watch::channel(0usize);
    let progress = Arc::new(progress);
    let stop = Arc::new(AtomicBool::new(false));
    let gc = tokio::spawn(runner(
        s.base.clone(),
        scenario.run_grace,
        stop.clone(),
        log.clone(),
    ));
    let mut tasks = Vec::new();
    for id in 0..scenario.writers {
        tasks.push(tokio::spawn(writer(
            s.base.clone(),
            id,
            n,
            log.clone(),
            progress.clone(),
        )));
    }
    for id in 0..scenario.deleters {
        tasks.push(tokio::spawn(deleter(
            s.base.clone(),
            id,
            n / 2,
            scenario.writers,
            log.clone(),
            progress_rx.clone(),
        )));
    }
    for t in tasks {
        t.await.expect("a writer or deleter panicked");
    }
    stop.store(true, Ordering::Relaxed);
    gc.await.expect("the GC runner panicked");

    let log = Arc::try_unwrap(log).ok().expect("tasks done").into_inner();
    eprintln!(
        "stress: {} pushed, {} deleted, {} runs, {} MANIFEST_BLOB_UNKNOWN",
        log.pushed,
        log.deleted,
        log.runs,
        log.blob_unknown.len()
    );
    eprintln!("runs: {}", log.run_figures.join("\n      "));
    let metrics = get_text(&s.url("/metrics")).await;
    for line in metrics.lines().filter(|l| l.starts_with("shipshape_gc")) {
        eprintln!("  {line}");
    }
    assert!(
        log.blob_unknown.is_empty(),
        "{} of {} manifest PUTs were refused for a blob the client had just been told exists \
         (review delay {delay:?}, runs' grace {:?}):\n{}",
        log.blob_unknown.len(),
        log.pushed + log.blob_unknown.len(),
        scenario.run_grace,
        log.blob_unknown.join("\n")
    );
    assert!(
        log.push_failures.is_empty(),
        "unexpected answers:\n{}",
        log.push_failures.join("\n")
    );
    assert!(
        log.bad_runs.is_empty(),
        "GC runs that failed: {:?}",
        log.bad_runs
    );
    assert!(log.runs > 0, "the runner started no GC run");
    assert!(log.pushed > 0, "no push succeeded");

    // Every listed tag pulls completely while nothing else happens.
    let (referenced, tags) = pull_every_tag(&s.base).await;
    assert!(
        tags > 0,
        "the deleters deleted every tag: nothing left to check"
    );

    // Past every lease, a final run without grace leaves exactly what the tags reference.
    clock.advance(3 * lease.as_millis() as i64);
    let run = gc_run_to_end(
        &s.base,
        &json!({"grace": "0s", "include_untagged_manifests": true}),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "final run: {run}");
    let (after, tags_after) = pull_every_tag(&s.base).await;
    assert_eq!(tags_after, tags, "the final run removed a tag");
    assert_eq!(
        after, referenced,
        "the final run changed what the tags reference"
    );
    s.server().settle().await;
    let (bytes, objects) = bytes_and_objects(&*s.store(), BLOBS_PREFIX).await;
    let want_bytes: u64 = referenced.values().sum();
    assert_eq!(
        (bytes, objects),
        (want_bytes, referenced.len()),
        "the blob store holds (bytes, objects) but the tags reference (bytes, blobs); \
         garbage left: run {run}"
    );
    let uploads = s.upload_objects().await;
    assert!(uploads.is_empty(), "upload objects left: {uploads:?}");
}

/// With a 2 s grace, no push is ever refused for a blob the client was told exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_deletes_and_runs_lose_nothing() {
    stress(Scenario {
        review_delay: Duration::from_secs(2),
        run_grace: None,
        writers: 4,
        deleters: 2,
    })
    .await;
}

/// "Empty the garbage now" in a loop while six writers push and three deleters delete: runs
/// with no grace at all (and a background worker with none) still never take a blob a client
/// was just told exists, so no push fails, and every listed tag pulls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_with_no_grace_never_break_a_push_in_flight() {
    stress(Scenario {
        review_delay: Duration::ZERO,
        run_grace: Some("0s"),
        writers: 6,
        deleters: 3,
    })
    .await;
}

#[test]
fn the_prng_is_fixed() {
    let mut a = Rng::new(SEED);
    let mut b = Rng::new(SEED);
    let xs: Vec<u64> = (0..4).map(|_| a.next()).collect();
    assert_eq!(xs, (0..4).map(|_| b.next()).collect::<Vec<_>>());
    assert_ne!(xs[0], xs[1]);
}
