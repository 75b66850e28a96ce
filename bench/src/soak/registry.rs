//! The soak's requests to the registry, each returning what a correct registry may answer and an
//! error message for anything else: the distribution API for images, the management API for
//! the retention policy, its runs, collection runs and the repositories' counts.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::gc::load::upload_blob;
use crate::gc::model::{CONFIG_TYPE, LAYER_TYPE, MANIFEST_TYPE};

/// Ten times what a request takes on a loaded two-core machine: longer is a stuck registry.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How often a run's state is read while waiting for it.
const RUN_POLL: Duration = Duration::from_millis(100);

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("an HTTP client")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

async fn answer(r: reqwest::Response) -> String {
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    format!("{status} {}", body.chars().take(200).collect::<String>())
}

async fn send(req: reqwest::RequestBuilder, what: &str) -> Result<reqwest::Response, String> {
    req.send().await.map_err(|e| format!("{what}: {e}"))
}

/// Applies the soak's policy: in every repository under `soak/`, keep the `keep` most recently
/// pushed tags and delete the others. No schedule: the bench starts every run, so each is timed.
pub async fn apply_policy(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    keep: u32,
) -> Result<(), String> {
    let doc = json!({
        "name": name,
        "description": "bench-soak: bounds every repository",
        "repositories": ["soak/**"],
        "keep": {"latest_pushed": keep},
        "delete": {"older_than": "0s"},
    });
    let r = send(
        http.put(format!("{base}/api/v1/policies/{name}"))
            .json(&doc),
        "apply policy",
    )
    .await?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(format!("apply policy: {}", answer(r).await))
    }
}

/// The layer every image of a repository starts from, as a base image's layer would be.
fn base_layer(repo: &str) -> Vec<u8> {
    let mut layer = format!("shipshape-bench soak base layer of {repo}\n").into_bytes();
    layer.resize(4096, b'#');
    layer
}

/// Uploads the repository's base layer unless the registry says it has it (a HEAD, as clients
/// ask first): the answer is the lease that keeps it through the push.
async fn ensure_blob(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    bytes: Vec<u8>,
) -> Result<String, String> {
    let digest = sha256(&bytes);
    let r = send(
        http.head(format!("{base}/v2/{repo}/blobs/{digest}")),
        "HEAD base layer",
    )
    .await?;
    match r.status().as_u16() {
        200 => Ok(digest),
        404 => upload_blob(http, base, repo, bytes).await,
        _ => Err(format!("HEAD base layer: {}", r.status())),
    }
}

/// Pushes a small new image under `tag`: a config, the repository's shared base layer and a
/// unique 1 KiB layer, then the manifest.
pub async fn push_image(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
) -> Result<(), String> {
    let config = format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Labels\":{{\"bench.soak\":\"{tag}\"}}}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}}}}"
    )
    .into_bytes();
    let mut unique = format!("shipshape-bench soak layer {repo} {tag}\n").into_bytes();
    unique.resize(1024, b'.');
    let shared = base_layer(repo);
    let sizes = [config.len(), shared.len(), unique.len()];
    let shared = ensure_blob(http, base, repo, shared).await?;
    let config = upload_blob(http, base, repo, config).await?;
    let unique = upload_blob(http, base, repo, unique).await?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": config, "size": sizes[0]},
        "layers": [
            {"mediaType": LAYER_TYPE, "digest": shared, "size": sizes[1]},
            {"mediaType": LAYER_TYPE, "digest": unique, "size": sizes[2]},
        ],
    });
    let r = send(
        http.put(format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("Content-Type", MANIFEST_TYPE)
            .body(manifest.to_string()),
        "PUT manifest",
    )
    .await?;
    if r.status().as_u16() == 201 {
        Ok(())
    } else {
        Err(format!("PUT manifest: {}", answer(r).await))
    }
}

/// How a request about a tag ended when the registry answered as it should.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The tag had been deleted meanwhile (by the policy, or a pull racing the deleter).
    Gone,
}

/// Pulls `repo:tag` completely: the manifest, then every blob it names, each body read to the
/// end and checked against its digest. A 404 for the tag is correct only if its history says it
/// was deleted.
pub async fn pull_image(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
) -> Result<Outcome, String> {
    let r = send(
        http.get(format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("Accept", MANIFEST_TYPE),
        "GET manifest",
    )
    .await?;
    match r.status().as_u16() {
        200 => {}
        404 => return deleted_meanwhile(http, base, repo, tag).await,
        _ => return Err(format!("GET manifest: {}", answer(r).await)),
    }
    let bytes = r.bytes().await.map_err(|e| format!("GET manifest: {e}"))?;
    let manifest: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("manifest does not parse: {e}"))?;
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    for digest in std::iter::once(&manifest["config"])
        .chain(&layers)
        .filter_map(|d| d["digest"].as_str())
    {
        pull_blob(http, base, repo, digest).await?;
    }
    Ok(Outcome::Done)
}

async fn pull_blob(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    digest: &str,
) -> Result<(), String> {
    let r = send(
        http.get(format!("{base}/v2/{repo}/blobs/{digest}")),
        "GET blob",
    )
    .await?;
    if r.status().as_u16() != 200 {
        return Err(format!("GET blob {digest}: {}", answer(r).await));
    }
    let body = r.bytes().await.map_err(|e| format!("GET blob: {e}"))?;
    let got = sha256(&body);
    if got != digest {
        return Err(format!("GET blob {digest}: the body hashes to {got}"));
    }
    Ok(())
}

/// Whether the tag's newest history entry is its deletion: a 404 that is not is an error.
async fn deleted_meanwhile(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
) -> Result<Outcome, String> {
    let r = send(
        http.get(format!(
            "{base}/api/v1/repositories/{repo}/-/tags/{tag}/history"
        )),
        "tag history",
    )
    .await?;
    if !r.status().is_success() {
        return Err(format!(
            "GET manifest: 404, and its history: {}",
            answer(r).await
        ));
    }
    let history: Value = r.json().await.map_err(|e| format!("tag history: {e}"))?;
    if history["entries"][0]["action"] == "deleted" {
        Ok(Outcome::Gone)
    } else {
        Err(format!(
            "GET manifest: 404 for a tag that was not deleted (history: {})",
            history["entries"]
        ))
    }
}

/// Deletes a tag over the distribution API; a 404 means the policy deleted it first.
pub async fn delete_tag(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
) -> Result<Outcome, String> {
    let r = send(
        http.delete(format!("{base}/v2/{repo}/manifests/{tag}")),
        "DELETE tag",
    )
    .await?;
    match r.status().as_u16() {
        202 => Ok(Outcome::Done),
        404 => Ok(Outcome::Gone),
        _ => Err(format!("DELETE tag: {}", answer(r).await)),
    }
}

/// A run of the policy or of the collector, once it has ended.
pub struct FinishedRun {
    /// The run's own duration as the registry records it.
    pub ms: f64,
    /// The run's record (a policy run's with its items).
    pub record: Value,
}

/// Starts a run with `POST start`, then reads `GET poll/{id}` until it is no longer `running`. `None` when another run was active (409); an
/// error when the run did not succeed.
async fn run_to_end(
    http: &reqwest::Client,
    start: &str,
    poll: &str,
) -> Result<Option<FinishedRun>, String> {
    let r = send(http.post(start).json(&json!({})), "start run").await?;
    match r.status().as_u16() {
        202 => {}
        409 => return Ok(None),
        _ => return Err(format!("start run: {}", answer(r).await)),
    }
    let started: Value = r.json().await.map_err(|e| format!("start run: {e}"))?;
    let id = started["id"].as_i64().ok_or("start run: no id")?;
    loop {
        tokio::time::sleep(RUN_POLL).await;
        let r = send(http.get(format!("{poll}/{id}")), "read run").await?;
        if !r.status().is_success() {
            return Err(format!("read run {id}: {}", answer(r).await));
        }
        let record: Value = r.json().await.map_err(|e| format!("read run: {e}"))?;
        match record["state"].as_str() {
            Some("running") => continue,
            Some("succeeded") => {
                let ms = record["duration_ms"].as_f64().unwrap_or(0.0);
                return Ok(Some(FinishedRun { ms, record }));
            }
            state => {
                return Err(format!(
                    "run {id} ended {state:?}, errors {}",
                    record["errors"]
                ));
            }
        }
    }
}

/// Runs the policy now; the tags it deleted come back as (repository, tag).
pub async fn policy_run(
    http: &reqwest::Client,
    base: &str,
    name: &str,
) -> Result<Option<(f64, Vec<(String, String)>)>, String> {
    let Some(run) = run_to_end(
        http,
        &format!("{base}/api/v1/policies/{name}/runs"),
        &format!("{base}/api/v1/policy-runs"),
    )
    .await?
    else {
        return Ok(None);
    };
    let deleted = run.record["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["kind"] == "tag")
        .filter_map(|i| {
            Some((
                i["repository"].as_str()?.into(),
                i["target"].as_str()?.into(),
            ))
        })
        .collect();
    Ok(Some((run.ms, deleted)))
}

/// Runs a collection with the registry's settings (its review delay as the grace period).
pub async fn gc_run(http: &reqwest::Client, base: &str) -> Result<Option<f64>, String> {
    let runs = format!("{base}/api/v1/gc/runs");
    Ok(run_to_end(http, &runs, &runs).await?.map(|r| r.ms))
}

/// What the catalogue holds, over all repositories.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub tags: u64,
    pub manifests: u64,
    /// Manifests no tag points at: here, those held for the restore window.
    pub untagged: u64,
    /// `shipshape_catalogue_sqlite_memory_bytes` from `/metrics`: SQLite's share of the RSS.
    pub sqlite_bytes: u64,
}

pub async fn counts(http: &reqwest::Client, base: &str) -> Result<Counts, String> {
    let r = send(
        http.get(format!("{base}/api/v1/repositories?n=1000")),
        "list repositories",
    )
    .await?;
    if !r.status().is_success() {
        return Err(format!("list repositories: {}", answer(r).await));
    }
    let list: Value = r
        .json()
        .await
        .map_err(|e| format!("list repositories: {e}"))?;
    let sum = |field: &str| {
        list["repositories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r[field].as_u64())
            .sum()
    };
    let r = send(http.get(format!("{base}/metrics")), "metrics").await?;
    if !r.status().is_success() {
        return Err(format!("metrics: {}", answer(r).await));
    }
    let metrics = r.text().await.map_err(|e| format!("metrics: {e}"))?;
    let sqlite_bytes = metrics
        .lines()
        .find_map(|l| l.strip_prefix("shipshape_catalogue_sqlite_memory_bytes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or("metrics: no shipshape_catalogue_sqlite_memory_bytes")?
        as u64;
    Ok(Counts {
        tags: sum("tags"),
        manifests: sum("manifests"),
        untagged: sum("untagged_manifests"),
        sqlite_bytes,
    })
}
