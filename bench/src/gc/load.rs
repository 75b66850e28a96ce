//! Load during a collection: pullers fetch the manifest and two blobs of surviving tags, pushers
//! push small new images (config, one layer, manifest under a new tag). Every operation is logged
//! with its completion time and outcome, so throughput before and during the collection and the
//! longest stretch without a success can be read off afterwards.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::model::{CONFIG_TYPE, LAYER_TYPE, MANIFEST_TYPE, Rng};

/// What a puller fetches: a tag and two of its blobs.
#[derive(Clone, Debug)]
pub struct PullTarget {
    pub repo: String,
    pub tag: String,
    pub blobs: [String; 2],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Pull,
    Push,
}

/// One finished operation, `at` seconds after the load started.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    pub at: f64,
    pub kind: OpKind,
    pub ok: bool,
}

/// A running load; `stop` ends it and returns the log.
pub struct Load {
    stop: Arc<AtomicBool>,
    started: Instant,
    log: Arc<Mutex<Vec<Op>>>,
    blob_uploads: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The finished load's log.
pub struct LoadLog {
    pub ops: Vec<Op>,
    /// Blobs the pushers uploaded successfully (each a new file in the store).
    pub blob_uploads: u64,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(4)
        .build()
        .expect("an HTTP client")
}

impl Load {
    /// Starts `pullers` and `pushers` against `base`; pushed tags are named after `label`.
    pub fn start(
        base: &str,
        targets: Arc<Vec<PullTarget>>,
        pullers: usize,
        pushers: usize,
        label: &str,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let blob_uploads = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for n in 0..pullers {
            let (stop, log, base, targets) =
                (stop.clone(), log.clone(), base.to_string(), targets.clone());
            tasks.push(tokio::spawn(async move {
                let http = client();
                let mut rng = Rng::new(0x5EED ^ n as u64 ^ started.elapsed().as_nanos() as u64);
                while !stop.load(Ordering::Relaxed) {
                    let t = &targets[rng.below(targets.len() as u64) as usize];
                    let ok = pull(&http, &base, t).await;
                    record(&log, started, OpKind::Pull, ok);
                    if !ok {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }));
        }
        for n in 0..pushers {
            let (stop, log, base, uploads) = (
                stop.clone(),
                log.clone(),
                base.to_string(),
                blob_uploads.clone(),
            );
            let label = label.to_string();
            tasks.push(tokio::spawn(async move {
                let http = client();
                let repo = format!("bench-load/pusher-{n}");
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    k += 1;
                    let tag = format!("{label}-{n}-{k}");
                    let ok = push(&http, &base, &repo, &tag, &uploads).await;
                    record(&log, started, OpKind::Push, ok);
                    if !ok {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }));
        }
        Load {
            stop,
            started,
            log,
            blob_uploads,
            tasks,
        }
    }

    /// Seconds since the load started, on the clock of the log.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub async fn stop(self) -> LoadLog {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let ops = std::mem::take(&mut *self.log.lock().expect("load log"));
        LoadLog {
            ops,
            blob_uploads: self.blob_uploads.load(Ordering::Relaxed),
        }
    }
}

fn record(log: &Mutex<Vec<Op>>, started: Instant, kind: OpKind, ok: bool) {
    let at = started.elapsed().as_secs_f64();
    log.lock().expect("load log").push(Op { at, kind, ok });
}

async fn get_ok(http: &reqwest::Client, url: &str, accept: Option<&str>) -> bool {
    let mut req = http.get(url);
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}

async fn pull(http: &reqwest::Client, base: &str, t: &PullTarget) -> bool {
    let url = format!("{base}/v2/{}/manifests/{}", t.repo, t.tag);
    if !get_ok(http, &url, Some(MANIFEST_TYPE)).await {
        return false;
    }
    for b in &t.blobs {
        if !get_ok(http, &format!("{base}/v2/{}/blobs/{b}", t.repo), None).await {
            return false;
        }
    }
    true
}

/// POST then PUT with the digest: the upload both registries support alike.
pub async fn upload_blob(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    bytes: Vec<u8>,
) -> Result<String, String> {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    let r = http
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status().as_u16() != 202 {
        return Err(format!("POST upload: {}", r.status()));
    }
    let location = r
        .headers()
        .get("Location")
        .and_then(|l| l.to_str().ok())
        .ok_or("no Location")?
        .to_string();
    let mut url = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&format!("digest={digest}"));
    let r = http
        .put(url)
        .header("Content-Type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status().as_u16() != 201 {
        return Err(format!("PUT upload: {}", r.status()));
    }
    Ok(digest)
}

/// Pushes a small new image (config, a 1 KiB layer, the manifest under `tag`) as a client
/// does; whether every request succeeded.
pub async fn push(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    uploads: &AtomicU64,
) -> bool {
    let config = format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Labels\":{{\"bench.load\":\"{tag}\"}}}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}}}}"
    )
    .into_bytes();
    let mut layer = format!("shipshape-bench load layer {repo} {tag}\n").into_bytes();
    layer.resize(1024, b'.');
    let (cl, ll) = (config.len(), layer.len());
    let Ok(c) = upload_blob(http, base, repo, config).await else {
        return false;
    };
    uploads.fetch_add(1, Ordering::Relaxed);
    let Ok(l) = upload_blob(http, base, repo, layer).await else {
        return false;
    };
    uploads.fetch_add(1, Ordering::Relaxed);
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{MANIFEST_TYPE}\",\"config\":{{\"mediaType\":\"{CONFIG_TYPE}\",\"digest\":\"{c}\",\"size\":{cl}}},\"layers\":[{{\"mediaType\":\"{LAYER_TYPE}\",\"digest\":\"{l}\",\"size\":{ll}}}]}}"
    );
    matches!(
        http.put(format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("Content-Type", MANIFEST_TYPE)
            .body(manifest)
            .send()
            .await,
        Ok(r) if r.status().as_u16() == 201
    )
}

impl LoadLog {
    /// Successful operations of `kind` per second between `from` and `to`.
    pub fn rate(&self, kind: OpKind, from: f64, to: f64) -> f64 {
        let n = self
            .ops
            .iter()
            .filter(|o| o.kind == kind && o.ok && o.at >= from && o.at < to)
            .count();
        n as f64 / (to - from).max(1e-9)
    }

    /// Failed operations of `kind` between `from` and `to`.
    pub fn failures(&self, kind: OpKind, from: f64, to: f64) -> usize {
        self.ops
            .iter()
            .filter(|o| o.kind == kind && !o.ok && o.at >= from && o.at < to)
            .count()
    }

    /// The longest stretch between `from` and `to` without a successful operation of `kind`.
    pub fn longest_gap(&self, kind: OpKind, from: f64, to: f64) -> f64 {
        let mut times: Vec<f64> = self
            .ops
            .iter()
            .filter(|o| o.kind == kind && o.ok && o.at >= from && o.at <= to)
            .map(|o| o.at)
            .collect();
        times.sort_by(f64::total_cmp);
        let mut last = from;
        let mut gap: f64 = 0.0;
        for t in times {
            gap = gap.max(t - last);
            last = t;
        }
        gap.max(to - last)
    }
}
