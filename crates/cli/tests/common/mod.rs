//! Shared test harness: a real server on a loopback port with its own data directory, an HTTP
//! client, content builders, and the external clients (skopeo, oras) the suite drives.
//!
//! Tests count and inspect stored objects through the server's `BlobStore` (`blob_objects`,
//! `object_bytes`, …), never by walking the data directory, so the same tests can run over
//! an object store. Only `truncate_object`, which damages an object in place, knows the local
//! store's files.

#![allow(dead_code)]

pub mod accounts;
pub mod backends;
pub mod layout;
pub mod process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use shipshape_meta::clock::ManualClock;
use shipshape_meta::{Clock, SystemClock};
use shipshape_server::{Server, ServerConfig};
use shipshape_store::{BLOBS_PREFIX, BlobStore, StorageKey, StoredObject, UPLOADS_PREFIX};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The real time, shifted forward by what the test adds.
#[derive(Clone, Debug, Default)]
pub struct ShiftedClock(Arc<std::sync::atomic::AtomicI64>);

impl ShiftedClock {
    pub fn advance(&self, by: shipshape_meta::Millis) {
        self.0.fetch_add(by, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> shipshape_meta::Millis {
        SystemClock.now() + self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A registry serving on 127.0.0.1 from a temporary data directory.
pub struct TestServer {
    server: Option<Server>,
    config: ServerConfig,
    clock: Arc<dyn Clock>,
    /// Dropped after the server (fields drop in order): the scratch database, then the
    /// directory.
    _backends: Option<backends::Kept>,
    _dir: Option<tempfile::TempDir>,
    pub base: String,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_clocked(Arc::new(SystemClock), adjust).await
    }

    /// A server whose every decision by time asks `clock`; tests move it instead of sleeping.
    pub async fn start_with_clock(
        clock: &ManualClock,
        adjust: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        Self::start_clocked(Arc::new(clock.clone()), adjust).await
    }

    /// A server on the real time moved forward by `clock`'s shift: tests let real time pass
    /// and jump ahead at a known point (past every lease, say) without sleeping.
    pub async fn start_with_shifted_clock(
        clock: &ShiftedClock,
        adjust: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        Self::start_clocked(Arc::new(clock.clone()), adjust).await
    }

    async fn start_clocked(clock: Arc<dyn Clock>, adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("data"),
            // Pages wait for current storage figures: a test that acts and then looks sees its
            // own action in them, however slow the machine. Tests of the last figures served
            // while current ones are taken set it back.
            usage_page_wait: Duration::from_secs(600),
            ..ServerConfig::default()
        };
        let kept = backends::configure(&mut config, dir.path()).await;
        adjust(&mut config);
        let server = Server::start_with_clock(config.clone(), clock.clone())
            .await
            .expect("server starts");
        let base = server.base_url();
        TestServer {
            server: Some(server),
            config,
            clock,
            _backends: Some(kept),
            _dir: Some(dir),
            base,
        }
    }

    /// Stops the server and starts it again on the same data directory and port.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.resume().await;
    }

    /// Stops the server, keeping its data directory and port for `resume`: the data directory
    /// of a stopped registry, for what an operator does to one.
    pub async fn stop(&mut self) {
        let server = self.server.take().expect("running");
        let addr = server.local_addr();
        server.shutdown().await.expect("clean shutdown");
        self.config.listen = addr;
    }

    /// Starts a stopped server again on its data directory and port.
    pub async fn resume(&mut self) {
        assert!(self.server.is_none(), "stopped first");
        let server = Server::start_with_clock(self.config.clone(), self.clock.clone())
            .await
            .expect("server restarts");
        self.server = Some(server);
    }

    /// The configuration it runs (or ran) with: its backends, for an operator's commands.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The running server, for tests that reach past HTTP (checkpoints, the catalogue).
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `host:port`, as skopeo and oras want it.
    pub fn host(&self) -> String {
        let (_scheme, host) = self.base.split_once("://").expect("a URL");
        host.to_string()
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The server's blob store.
    pub fn store(&self) -> Arc<dyn BlobStore> {
        self.server().store().clone()
    }

    /// The blob store's blob objects (sorted by key), once the server has finished what
    /// answered requests left to do (a redundant upload is deleted after its 201).
    pub async fn blob_objects(&self) -> Vec<StoredObject> {
        self.server().settle().await;
        list_objects(&*self.store(), BLOBS_PREFIX).await
    }

    /// Bytes of every blob object the store holds.
    pub async fn stored_blob_bytes(&self) -> u64 {
        self.blob_objects().await.iter().map(|o| o.size).sum()
    }

    /// The blob store's unfinished upload sessions' objects.
    pub async fn upload_objects(&self) -> Vec<StoredObject> {
        list_objects(&*self.store(), UPLOADS_PREFIX).await
    }

    /// The bytes stored under `key`.
    pub async fn object_bytes(&self, key: &StorageKey) -> Vec<u8> {
        object_bytes(&*self.store(), key).await
    }

    /// Whether the store holds an object under `key`.
    pub async fn has_object(&self, key: &StorageKey) -> bool {
        has_object(&*self.store(), key).await
    }

    /// The key of the blob object whose bytes hash to `digest`.
    pub async fn object_of(&self, digest: &str) -> StorageKey {
        for o in self.blob_objects().await {
            if sha256(&self.object_bytes(&o.key).await) == digest {
                return o.key;
            }
        }
        panic!("no stored object holds {digest}")
    }

    /// An object the catalogue does not know, as a crash between committing an upload's bytes
    /// and recording the blob leaves behind.
    pub async fn plant_orphan(&self, bytes: &[u8]) -> StorageKey {
        plant_object(&*self.store(), bytes).await
    }

    /// Cuts an object down to `len` bytes in place, as a damaged disk would: the local store's
    /// file, since no store call rewrites an object.
    pub fn truncate_object(&self, key: &StorageKey, len: u64) {
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.config.data_dir.join("store").join(key.as_str()))
            .expect("the local store's file of the object")
            .set_len(len)
            .expect("truncate the object");
    }

    /// Calls the management API; returns the status and the JSON body (`Null` when empty).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = client().request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("API request");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("API body");
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{path}: body is not JSON ({e}): {bytes:?}"))
        };
        (status, v)
    }

    /// GET on the management API that must succeed.
    pub async fn api_ok(&self, path: &str) -> Value {
        let (status, v) = self.api(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
        v
    }

    /// A handle of its own on the server's catalogue, as another node or process has it: the
    /// same SQLite file, or the same PostgreSQL database.
    pub async fn second_catalogue(&self) -> shipshape_meta::Catalogue {
        match &self.config.catalogue {
            shipshape_server::CatalogueConfig::Sqlite => {
                shipshape_meta::Catalogue::open_sqlite(&self.config.data_dir.join("catalogue.db"))
                    .await
            }
            shipshape_server::CatalogueConfig::Postgres { options, .. } => {
                shipshape_meta::Catalogue::open_postgres(options, false).await
            }
        }
        .expect("a second handle on the catalogue")
    }

    /// Row count of each catalogue table.
    pub async fn rows(&self) -> BTreeMap<&'static str, i64> {
        self.server
            .as_ref()
            .expect("running")
            .row_counts()
            .await
            .expect("row counts")
            .into_iter()
            .collect()
    }

    /// Everything a refused request must not change: catalogue rows and stored objects.
    pub async fn footprint(&self) -> (BTreeMap<&'static str, i64>, usize, usize) {
        (
            self.rows().await,
            self.blob_objects().await.len(),
            self.upload_objects().await.len(),
        )
    }
}

/// The blob store of a data directory the test's server is not running on (a child process,
/// or one it killed): the local store, as `shipshape serve` opens it.
pub async fn open_store(data_dir: &Path) -> Arc<dyn BlobStore> {
    Arc::new(
        shipshape_store::LocalStore::open(data_dir.join("store"))
            .await
            .expect("open the blob store"),
    )
}

/// Every object under `prefix`, sorted by key.
pub async fn list_objects(store: &dyn BlobStore, prefix: &str) -> Vec<StoredObject> {
    use futures::TryStreamExt as _;
    let mut objects: Vec<StoredObject> = store
        .list(prefix)
        .try_collect()
        .await
        .expect("list the blob store");
    objects.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    objects
}

/// Total bytes and count of the objects under `prefix`.
pub async fn bytes_and_objects(store: &dyn BlobStore, prefix: &str) -> (u64, usize) {
    let objects = list_objects(store, prefix).await;
    (objects.iter().map(|o| o.size).sum(), objects.len())
}

/// The bytes stored under `key`.
pub async fn object_bytes(store: &dyn BlobStore, key: &StorageKey) -> Vec<u8> {
    use futures::TryStreamExt as _;
    let chunks: Vec<bytes::Bytes> = store
        .read(key, None, None)
        .await
        .expect("read a stored object")
        .try_collect()
        .await
        .expect("read a stored object");
    chunks.concat()
}

/// Whether the store holds an object under `key`.
pub async fn has_object(store: &dyn BlobStore, key: &StorageKey) -> bool {
    match store.size(key).await {
        Ok(_) => true,
        Err(shipshape_store::StoreError::NotFound(_)) => false,
        Err(e) => panic!("size of {key}: {e}"),
    }
}

/// Stores `bytes` as a blob object through a whole upload session, and records nothing: what
/// a crash between the store's commit and the catalogue's leaves behind.
pub async fn plant_object(store: &dyn BlobStore, bytes: &[u8]) -> StorageKey {
    use futures::StreamExt as _;
    let session = store.begin_upload().await.expect("begin an upload");
    let body = futures::stream::iter([Ok(bytes::Bytes::copy_from_slice(bytes))]).boxed();
    let mut hasher = shipshape_oci::Digester::new(shipshape_oci::Algorithm::Sha256);
    let done = store
        .append(&session, body, Some(bytes.len() as u64), &mut hasher)
        .await
        .expect("append");
    store.commit(&done).await.expect("commit")
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The `code` of every error in an OCI error body.
pub async fn error_codes(resp: Response) -> Vec<String> {
    let body: serde_json::Value = resp.json().await.expect("OCI error body is JSON");
    body["errors"]
        .as_array()
        .expect("errors array")
        .iter()
        .map(|e| e["code"].as_str().expect("code").to_string())
        .collect()
}

/// Pushes a blob with POST then PUT and returns its digest.
pub async fn push_blob(c: &Client, base: &str, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let resp = c
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let loc = header(&resp, "location").unwrap().to_string();
    let resp = c
        .put(format!("{base}{loc}?digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "blob push");
    digest
}

pub async fn put_manifest(
    c: &Client,
    base: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) -> Response {
    c.put(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("content-type", media_type)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// An OCI image manifest over the given config and layers `(digest, size)`.
pub fn image_manifest(config: (&str, usize), layers: &[(&str, usize)]) -> Vec<u8> {
    image_manifest_with(config, layers, serde_json::Map::new())
}

/// Same, with extra top-level fields (subject, artifactType, annotations, …).
pub fn image_manifest_with(
    config: (&str, usize),
    layers: &[(&str, usize)],
    extra: serde_json::Map<String, serde_json::Value>,
) -> Vec<u8> {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers.iter().map(|(d, s)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s
        })).collect::<Vec<_>>(),
    });
    for (k, v) in extra {
        m[k] = v;
    }
    serde_json::to_vec(&m).unwrap()
}

/// An OCI index over the given manifests `(digest, size)`.
pub fn index_manifest(children: &[(&str, usize)]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": children.iter().map(|(d, s)| serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": d, "size": s,
            "platform": {"os": "linux", "architecture": "amd64"}
        })).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// A small image (config + one layer) pushed under `tag`; returns the manifest digest.
pub async fn push_image(c: &Client, base: &str, repo: &str, tag: &str, seed: u64) -> String {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
    let layer = random_bytes(1000 + seed as usize, seed);
    let cd = push_blob(c, base, repo, &config).await;
    let ld = push_blob(c, base, repo, &layer).await;
    let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let resp = put_manifest(c, base, repo, tag, OCI_MANIFEST, &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    sha256(&m)
}

/// Path to a program the suite needs; fails loudly (never skips) when it is missing.
pub fn require_tool(env_var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    let found = if path.components().count() > 1 {
        path.exists()
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(&path).exists()))
            .unwrap_or(false)
    };
    assert!(
        found,
        "{} not found (set {env_var}); run the README's test command, which installs it",
        path.display()
    );
    path
}

/// Sends a request exactly as written (clients normalise `..` away) and returns the status
/// and the body.
pub async fn raw_request(base: &str, method: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    stream.read_to_string(&mut resp).await.unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// The `code` of the first error in an error body.
pub fn first_code(v: &Value) -> &str {
    v["errors"][0]["code"].as_str().unwrap_or("")
}

/// The `message` of the first error in an error body.
pub fn first_message(v: &Value) -> &str {
    v["errors"][0]["message"].as_str().unwrap_or("")
}

/// A small image like `push_image`'s; returns the manifest digest and bytes.
pub async fn push_image_bytes(
    c: &Client,
    base: &str,
    repo: &str,
    tag: &str,
    seed: u64,
) -> (String, Vec<u8>) {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
    let layer = random_bytes(1000 + seed as usize, seed);
    let cd = push_blob(c, base, repo, &config).await;
    let ld = push_blob(c, base, repo, &layer).await;
    let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let resp = put_manifest(c, base, repo, tag, OCI_MANIFEST, &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    (sha256(&m), m)
}

/// Pulls `repo:reference` completely — the manifest, every child manifest and every blob —
/// verifying each digest; returns the manifest's digest.
pub async fn pull_verified(base: &str, repo: &str, reference: &str) -> String {
    let c = client();
    let mut todo = vec![reference.to_string()];
    let mut top = None;
    while let Some(r) = todo.pop() {
        let resp = c
            .get(format!("{base}/v2/{repo}/manifests/{r}"))
            .header("accept", OCI_MANIFEST)
            .header("accept", OCI_INDEX)
            .header("accept", DOCKER_MANIFEST)
            .header("accept", DOCKER_LIST)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET manifest {repo}:{r}");
        let claimed = header(&resp, "docker-content-digest")
            .expect("Docker-Content-Digest")
            .to_string();
        let body = resp.bytes().await.unwrap();
        assert_eq!(sha256(&body), claimed, "manifest {repo}:{r} digest");
        if r.starts_with("sha256:") {
            assert_eq!(claimed, r, "manifest {repo}:{r} is what was asked");
        }
        top.get_or_insert(claimed);
        let m: Value = serde_json::from_slice(&body).expect("manifest JSON");
        for child in m["manifests"].as_array().into_iter().flatten() {
            todo.push(child["digest"].as_str().unwrap().to_string());
        }
        let blobs = m["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(m.get("config"));
        for b in blobs {
            let d = b["digest"].as_str().unwrap();
            let resp = c
                .get(format!("{base}/v2/{repo}/blobs/{d}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "GET blob {d} of {repo}:{r}");
            let bytes = resp.bytes().await.unwrap();
            assert_eq!(sha256(&bytes), d, "blob {d} of {repo}:{r}");
            assert_eq!(
                Some(bytes.len() as u64),
                b["size"].as_u64(),
                "blob {d} size"
            );
        }
    }
    top.expect("a manifest")
}

/// The body of a GET that must succeed, as text (`/metrics`, say).
pub async fn get_text(url: &str) -> String {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Status and error code of a manifest GET.
pub async fn manifest_status(base: &str, repo: &str, reference: &str) -> StatusCode {
    client()
        .get(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("accept", OCI_MANIFEST)
        .header("accept", OCI_INDEX)
        .send()
        .await
        .unwrap()
        .status()
}

/// The tags `/v2/<repo>/tags/list` lists (sorted), or the failing status.
pub async fn oci_tags(base: &str, repo: &str) -> Result<Vec<String>, StatusCode> {
    let resp = client()
        .get(format!("{base}/v2/{repo}/tags/list"))
        .send()
        .await
        .unwrap();
    if resp.status() != StatusCode::OK {
        return Err(resp.status());
    }
    let v: Value = resp.json().await.unwrap();
    let mut tags: Vec<String> = v["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    Ok(tags)
}

/// Runs a program to completion without blocking the runtime the server runs on; a client
/// that hangs fails the test after five minutes instead of stalling the suite.
pub async fn exec_tool(program: &Path, args: &[&str], cwd: Option<&Path>) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    tokio::time::timeout(std::time::Duration::from_secs(300), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{} {args:?} timed out", program.display()))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

/// A run of a program, for a failure message: the command, its exit, stdout and stderr.
pub fn describe_run(program: &Path, args: &[&str], out: &std::process::Output) -> String {
    format!(
        "{} {}\nexit: {}\nstdout:\n{}\nstderr:\n{}",
        program.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a program (`exec_tool`) and insists that it succeeds.
pub async fn run_tool(program: &Path, args: &[&str], cwd: Option<&Path>) -> std::process::Output {
    let out = exec_tool(program, args, cwd).await;
    assert!(
        out.status.success(),
        "{}",
        describe_run(program, args, &out)
    );
    out
}

/// skopeo, from `SHIPSHAPE_TEST_SKOPEO` or the path.
pub fn skopeo() -> PathBuf {
    require_tool("SHIPSHAPE_TEST_SKOPEO", "skopeo")
}

/// The Python of the venv that holds oras-py (`scripts/test` makes it).
pub fn oras_python() -> PathBuf {
    require_tool(
        "SHIPSHAPE_TEST_ORAS_PYTHON",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../.test-tools/oras-venv/bin/python"
        ),
    )
}

/// Every repository `/v2/_catalog` lists, in order.
pub async fn catalog_repos(base: &str) -> Vec<String> {
    let resp = client()
        .get(format!("{base}/v2/_catalog?n=10000"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "GET /v2/_catalog");
    let v: Value = resp.json().await.unwrap();
    v["repositories"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

/// The blobs (`digest → size`) that `repo:reference` references, index children included.
pub async fn manifest_blobs(base: &str, repo: &str, reference: &str) -> BTreeMap<String, u64> {
    let c = client();
    let mut out = BTreeMap::new();
    let mut todo = vec![reference.to_string()];
    while let Some(r) = todo.pop() {
        let resp = c
            .get(format!("{base}/v2/{repo}/manifests/{r}"))
            .header("accept", OCI_MANIFEST)
            .header("accept", OCI_INDEX)
            .header("accept", DOCKER_MANIFEST)
            .header("accept", DOCKER_LIST)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET manifest {repo}:{r}");
        let m: Value = resp.json().await.expect("manifest JSON");
        for child in m["manifests"].as_array().into_iter().flatten() {
            todo.push(child["digest"].as_str().unwrap().to_string());
        }
        let blobs = m["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(m.get("config"));
        for b in blobs {
            out.insert(
                b["digest"].as_str().unwrap().to_string(),
                b["size"].as_u64().unwrap(),
            );
        }
    }
    out
}

/// Pulls every tag of every repository completely (digests verified) and returns the distinct
/// blobs (`digest → size`) they reference, and how many tags were pulled.
pub async fn pull_every_tag(base: &str) -> (BTreeMap<String, u64>, usize) {
    let mut referenced = BTreeMap::new();
    let mut tags_pulled = 0;
    for repo in catalog_repos(base).await {
        let Ok(tags) = oci_tags(base, &repo).await else {
            continue;
        };
        for tag in tags {
            pull_verified(base, &repo, &tag).await;
            referenced.extend(manifest_blobs(base, &repo, &tag).await);
            tags_pulled += 1;
        }
    }
    (referenced, tags_pulled)
}

/// How long a test waits for something to happen (a run to finish, a server to answer, the
/// scheduler to start a run) before it fails, naming what it waited for. Generous, because CI
/// machines are slow: this is no timing assertion, only a guard against a test that hangs.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The pause between two polls in [`wait_until`].
pub const POLL_PAUSE: Duration = Duration::from_millis(20);

/// Polls `check` every [`POLL_PAUSE`] until it returns `Some`, and returns that. Panics naming
/// `what` ("GC run 3 to finish") once [`PATIENCE`] has passed, also when a poll is still
/// under way then (a request the server never answers).
///
/// `check` is a closure returning a future (`|| async move { … }`, over references), not an
/// async closure: the future of an async closure is not known to be `Send`, which a spawned
/// task needs.
pub async fn wait_until<T, F>(what: &str, check: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    poll_until(what, POLL_PAUSE, check).await
}

/// [`wait_until`] with another pause between polls; `Duration::ZERO` polls again at once
/// (yielding to the runtime), for a state that lasts only a moment.
pub async fn poll_until<T, F>(what: &str, pause: Duration, mut check: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(Some(found)) => return found,
            Ok(None) if tokio::time::Instant::now() < deadline => {}
            _ => panic!("gave up waiting for {what} after {PATIENCE:?}"),
        }
        if pause.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(pause).await;
        }
    }
}

/// Starts a GC run with `body` (retrying while another run is active), waits for it to leave
/// `running` by polling its status, and returns the finished run.
pub async fn gc_run_to_end(base: &str, body: &Value) -> Value {
    let c = &client();
    let id = wait_until(
        &format!("the other GC run to end so that a run with {body} can start"),
        || async move {
            let resp = c
                .post(format!("{base}/api/v1/gc/runs"))
                .json(body)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            match status {
                StatusCode::ACCEPTED => Some(v["id"].as_i64().expect("run id")),
                StatusCode::CONFLICT => None,
                s => panic!("POST /api/v1/gc/runs {body}: {s} {v}"),
            }
        },
    )
    .await;
    wait_gc_run(base, id).await
}

/// Polls a GC run until it has left `running`; returns it.
pub async fn wait_gc_run(base: &str, id: i64) -> Value {
    wait_run(
        base,
        &format!("/api/v1/gc/runs/{id}"),
        &format!("GC run {id}"),
    )
    .await
}

/// Polls a policy run until it has left `running`; returns it, with its items.
pub async fn wait_policy_run(base: &str, id: i64) -> Value {
    let path = format!("/api/v1/policy-runs/{id}");
    wait_run(base, &path, &format!("policy run {id}")).await
}

/// Polls the run at `path` (management API) until it has left `running`; returns it.
async fn wait_run(base: &str, path: &str, run: &str) -> Value {
    let c = &client();
    wait_until(&format!("{run} to finish"), || async move {
        let resp = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        let v: Value = resp.json().await.unwrap();
        (v["state"] != "running").then_some(v)
    })
    .await
}

/// `skopeo copy` from an OCI layout into the registry, digests preserved.
pub async fn push_layout(layout: &Path, tag: &str, dest: &str, all: bool) {
    let src = format!("oci:{}:{tag}", layout.display());
    let mut args = vec![
        "--insecure-policy",
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
    ];
    if all {
        args.push("--all");
    }
    args.extend([src.as_str(), dest]);
    run_tool(&skopeo(), &args, None).await;
}

/// `skopeo copy` from the registry into a new OCI layout, digests preserved.
pub async fn pull_layout(src: &str, layout: &Path, tag: &str, all: bool) -> layout::OciLayout {
    let dest = format!("oci:{}:{tag}", layout.display());
    let mut args = vec![
        "--insecure-policy",
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
    ];
    if all {
        args.push("--all");
    }
    args.extend([src, dest.as_str()]);
    run_tool(&skopeo(), &args, None).await;
    layout::OciLayout::open(layout)
}
