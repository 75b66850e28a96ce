//! The Shipshape server: opens the catalogue and the blob store, and serves the HTTP API.
//! `Server::start` is what `shipshape serve` and the integration tests both run.

pub mod api;
pub mod error;
pub mod http;
pub mod registry;
mod serve;
pub mod storage;
pub mod tls;
mod ui;

pub use serve::{Limits, MIN_HEADER_BYTES};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use shipshape_meta::{Catalogue, Clock, MetaError, SystemClock};
use shipshape_store::{BlobStore, LocalStore, S3Store, StoreError};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::http::AppState;
use crate::registry::{Registry, RegistryOptions};

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub deletion_enabled: bool,
    /// How long deleted tags, manifests and repositories stay restorable.
    pub restore_window: std::time::Duration,
    /// How often pull counts are written to the catalogue; zero writes each pull at once.
    pub pull_flush_interval: std::time::Duration,
    /// Serve on a non-loopback address although no authentication is configured.
    pub allow_public_without_auth: bool,
    /// The online collector. Its restore window is `restore_window` above.
    pub gc: shipshape_gc::GcConfig,
    /// How often the scheduler looks for retention policies that are due.
    pub policy_poll_interval: std::time::Duration,
    /// How long the activity log keeps its entries (tag history too, but never less than the
    /// restore window).
    pub events_retention: std::time::Duration,
    /// The first administrator (name, password), created on start when no user exists yet:
    /// access control starts with it.
    pub first_admin: Option<(String, String)>,
    /// The token endpoint's address as clients must reach it (behind a proxy); otherwise it
    /// is built from each request's `Host`.
    pub token_realm: Option<String>,
    /// The name tokens are issued for.
    pub token_service: String,
    /// Serve HTTPS with this certificate and key; `None` serves plain HTTP.
    pub tls: Option<tls::TlsConfig>,
    /// Timeouts and limits every connection is held to.
    pub limits: Limits,
    /// How long a shutdown waits for requests in flight before closing their connections.
    pub shutdown_timeout: std::time::Duration,
    /// Where blob bytes are kept.
    pub blob_store: BlobStoreConfig,
    /// How long `/metrics` serves the storage figures before computing them again (a query
    /// over the whole catalogue); zero computes them at every scrape.
    pub metrics_storage_refresh: std::time::Duration,
    /// Where the catalogue lives.
    pub catalogue: CatalogueConfig,
    /// The storage figures are sampled for the overview's chart when the newest sample is
    /// older than this; zero samples only as garbage collection runs end.
    pub usage_sample_interval: std::time::Duration,
    /// How long those samples are kept.
    pub usage_sample_retention: std::time::Duration,
    /// How long a web page waits for current storage figures before it is drawn with the
    /// last ones taken, saying so.
    pub usage_page_wait: std::time::Duration,
}

/// Where the catalogue lives: SQLite in the data directory (one node), or PostgreSQL (any
/// number of nodes).
#[derive(Clone, Debug, Default)]
pub enum CatalogueConfig {
    /// `DATA_DIR/catalogue.db`.
    #[default]
    Sqlite,
    /// A PostgreSQL database. With `migrate`, a start brings its schema up to date; without,
    /// a schema older than this release refuses the start (`shipshape migrate` first).
    Postgres {
        options: shipshape_meta::PostgresOptions,
        migrate: bool,
    },
}

/// Where blob bytes are kept: files under the data directory, or an S3-compatible bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BlobStoreConfig {
    /// `DATA_DIR/store`.
    #[default]
    Local,
    S3(shipshape_store::S3Config),
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("shipshape-data"),
            deletion_enabled: true,
            restore_window: std::time::Duration::from_secs(7 * 24 * 3600),
            pull_flush_interval: std::time::Duration::from_secs(10),
            allow_public_without_auth: false,
            gc: shipshape_gc::GcConfig::default(),
            policy_poll_interval: std::time::Duration::from_secs(30),
            events_retention: std::time::Duration::from_secs(90 * 24 * 3600),
            first_admin: None,
            token_realm: None,
            token_service: "shipshape".into(),
            tls: None,
            limits: Limits::default(),
            shutdown_timeout: std::time::Duration::from_secs(30),
            blob_store: BlobStoreConfig::Local,
            metrics_storage_refresh: std::time::Duration::from_secs(60),
            catalogue: CatalogueConfig::Sqlite,
            usage_sample_interval: std::time::Duration::from_secs(15 * 60),
            usage_sample_retention: std::time::Duration::from_secs(90 * 24 * 3600),
            usage_page_wait: std::time::Duration::from_millis(50),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0} without authentication: anyone who can reach it could push and delete. \
         Create the first administrator (SHIPSHAPE_ADMIN_PASSWORD, or `shipshape user add --admin`), \
         listen on a loopback address, or pass --allow-public-without-auth if that is really intended"
    )]
    PublicWithoutAuth(SocketAddr),
    #[error("access control: {0}")]
    Auth(#[from] shipshape_auth::AuthError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The data directory, or a file or directory in it, cannot be used; the message names it
    /// and says what to check.
    #[error("cannot use {path}: {source}{}", data_dir_hint(path, source))]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot open the catalogue {location}: {source}{}",
        catalogue_hint(source)
    )]
    Catalogue { location: String, source: MetaError },
    #[error(
        "the catalogue {location} keeps its blobs on the local disk of node {owner}, and this \
         is node {node}: a node without those bytes would answer 404 for blobs the catalogue \
         lists. Run several nodes with the blobs in a bucket every node reaches ([storage] s3), \
         or start this node on {owner}'s data directory (its node-id file names it)"
    )]
    LocalStoreElsewhere {
        location: String,
        owner: String,
        node: String,
    },
    #[error(
        "another shipshape server already serves the data directory {0} (it holds {0}/lock); \
         stop it first, or give this one another --data-dir"
    )]
    DataDirInUse(PathBuf),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("garbage collector: {0}")]
    Gc(shipshape_gc::GcError),
    #[error("retention policies: {0}")]
    Retention(shipshape_gc::retention::RetentionError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("server task failed: {0}")]
    Task(String),
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    registry: Registry,
    flusher: Option<JoinHandle<()>>,
    collector: shipshape_gc::Collector,
    retention: shipshape_gc::retention::Retention,
    stop_workers: tokio::sync::watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    catalogue: Catalogue,
    store: Arc<dyn BlobStore>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    tls: Option<tls::Tls>,
    /// Held while serving: a second server on the same data directory is refused (each would
    /// run its own collectors and count pulls apart). The system releases it if the process
    /// dies.
    _lock: std::fs::File,
}

/// This node's name among the nodes sharing a catalogue: made once and kept in the data
/// directory (`node-id`), so a restarted node knows the runs it left behind for its own.
fn node_name(data_dir: &std::path::Path) -> Result<String, ServeError> {
    let path = data_dir.join("node-id");
    let io = |source| ServeError::DataDir {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(name) if !name.trim().is_empty() => Ok(name.trim().to_string()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
        // Missing (a first start) or empty (a start that died writing it): made afresh.
        _ => {
            let host = hostname();
            let name = format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            std::fs::write(&path, format!("{name}\n")).map_err(io)?;
            Ok(name)
        }
    }
}

/// A catalogue shared by several nodes with its blobs on one node's disk would list blobs the
/// other nodes do not have: with a local store, the catalogue is bound to this node, and a
/// start by another node is refused. With a bucket every node reaches, the binding goes.
async fn bind_local_store(
    catalogue: &Catalogue,
    local: bool,
    node: &str,
    location: &str,
) -> Result<(), ServeError> {
    use shipshape_meta::bindings;
    let meta = |source| ServeError::Catalogue {
        location: location.to_string(),
        source,
    };
    let mut tx = catalogue.begin().await.map_err(meta)?;
    if local {
        let owner = bindings::bind(&mut tx, bindings::LOCAL_STORE, node)
            .await
            .map_err(meta)?;
        if owner != node {
            return Err(ServeError::LocalStoreElsewhere {
                location: location.to_string(),
                owner,
                node: node.to_string(),
            });
        }
    } else {
        bindings::unbind(&mut tx, bindings::LOCAL_STORE)
            .await
            .map_err(meta)?;
    }
    shipshape_meta::commit(tx).await.map_err(meta)
}

/// The machine's host name, for node names people can read in the runs' rows.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into())
}

impl Server {
    /// Opens the data directory and starts serving with the system clock.
    pub async fn start(config: ServerConfig) -> Result<Server, ServeError> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Starts serving with an injected clock (tests move time instead of sleeping).
    pub async fn start_with_clock(
        config: ServerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, ServeError> {
        let tls = match &config.tls {
            Some(t) => Some(tls::Tls::load(t).await?),
            None => None,
        };
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServeError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let lock = lock_data_dir(&config.data_dir)?;
        let (catalogue, catalogue_location, catalogue_file) = match &config.catalogue {
            CatalogueConfig::Sqlite => {
                let path = config.data_dir.join("catalogue.db");
                let location = path.display().to_string();
                (Catalogue::open_sqlite(&path).await, location, Some(path))
            }
            CatalogueConfig::Postgres { options, migrate } => {
                let location = shipshape_meta::redacted_url(&options.url);
                let opened = Catalogue::open_postgres(options, *migrate).await;
                (opened, location, None)
            }
        };
        let catalogue = catalogue.map_err(|source| ServeError::Catalogue {
            location: catalogue_location.clone(),
            source,
        })?;
        catalogue.watch_changes();
        let auth = shipshape_auth::Auth::open(
            catalogue.clone(),
            clock.clone(),
            &config.data_dir.join("auth"),
            &config.token_service,
        )
        .await?;
        if let Some((name, password)) = &config.first_admin
            && auth.bootstrap_admin(name, password).await?
        {
            tracing::info!(user = %name, "first administrator created; access control is on");
        }
        if !config.listen.ip().is_loopback()
            && !auth.enabled().await?
            && !config.allow_public_without_auth
        {
            return Err(ServeError::PublicWithoutAuth(config.listen));
        }
        let store_root = config.data_dir.join("store");
        let local = config.blob_store == BlobStoreConfig::Local;
        let store: Arc<dyn BlobStore> = match &config.blob_store {
            BlobStoreConfig::Local => {
                Arc::new(LocalStore::open(&store_root).await.map_err(|e| match e {
                    StoreError::Io(source) => ServeError::DataDir {
                        path: store_root.clone(),
                        source,
                    },
                    e => ServeError::Store(e),
                })?)
            }
            BlobStoreConfig::S3(s3) => Arc::new(S3Store::open(s3).await?),
        };
        // A store the process may not write (or on a read-only filesystem) refuses the start,
        // naming it; a full one does not: pulls are still served, and writes come back once
        // space is freed.
        match store.probe().await {
            Ok(()) => {}
            Err(StoreError::Full { location, source }) => tracing::error!(
                path = %location,
                error = %source,
                "the blob store's filesystem is full: pushes are answered 507 until space is freed"
            ),
            Err(StoreError::Io(source)) | Err(StoreError::ReadOnly { source, .. }) if local => {
                return Err(ServeError::DataDir {
                    path: store_root,
                    source,
                });
            }
            Err(e) => return Err(ServeError::Store(e)),
        }
        let node = node_name(&config.data_dir)?;
        if matches!(config.catalogue, CatalogueConfig::Postgres { .. }) {
            bind_local_store(&catalogue, local, &node, &catalogue_location).await?;
        }
        let gc_config = shipshape_gc::GcConfig {
            restore_window: config.restore_window,
            node,
            ..config.gc.clone()
        };
        let collector = shipshape_gc::Collector::new(
            catalogue.clone(),
            store.clone(),
            clock.clone(),
            gc_config,
        );
        collector.recover().await.map_err(ServeError::Gc)?;
        let retention = shipshape_gc::retention::Retention::open(
            catalogue.clone(),
            clock.clone(),
            config.deletion_enabled,
            collector.clone(),
        )
        .await
        .map_err(ServeError::Retention)?;
        let registry = Registry::new(
            catalogue.clone(),
            store.clone(),
            clock,
            RegistryOptions {
                deletion_enabled: config.deletion_enabled,
                restore_window: config.restore_window,
                pull_flush_interval: config.pull_flush_interval,
                lease: config.gc.lease,
                shared_store: !local,
                sample_interval: config.usage_sample_interval,
                sample_retention: config.usage_sample_retention,
                page_figures_wait: config.usage_page_wait,
            },
            retention.policies().clone(),
            collector.clone(),
        );
        let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
        let mut workers = collector.spawn_workers(workers_stopped.clone());
        workers.extend(
            tls.as_ref()
                .and_then(|t| t.spawn_watcher(workers_stopped.clone())),
        );
        workers
            .push(retention.spawn_scheduler(config.policy_poll_interval, workers_stopped.clone()));
        workers.push(spawn_sampler(registry.clone(), workers_stopped.clone()));
        workers.push(spawn_memory_trim(workers_stopped.clone()));
        workers.push(spawn_housekeeping(
            collector.clone(),
            registry.clone(),
            config.events_retention,
            workers_stopped,
        ));
        let flusher = (!config.pull_flush_interval.is_zero()).then(|| {
            let registry = registry.clone();
            let every = config.pull_flush_interval;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(e) = registry.flush_pulls().await {
                        tracing::warn!(error = %e, "recording pulls failed");
                    }
                }
            })
        });
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
        let telemetry = Arc::new(http::Telemetry::new(config.metrics_storage_refresh));
        let app = http::router(AppState::new(http::Services {
            registry: registry.clone(),
            collector: collector.clone(),
            retention: retention.clone(),
            auth: auth.clone(),
            auth_realm: config.token_realm.clone(),
            tls: tls.is_some(),
            storage: Arc::new(storage::Storage::new(
                store_root,
                catalogue_location,
                catalogue_file,
            )),
            metrics: telemetry.clone(),
        }));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve::run(
            listener,
            tls.clone(),
            app,
            config.limits.clone(),
            config.shutdown_timeout,
            stopped,
            telemetry,
        ));
        tracing::info!(
            %addr,
            tls = tls.is_some(),
            data_dir = %config.data_dir.display(),
            "serving the registry"
        );
        Ok(Server {
            addr,
            registry,
            flusher,
            collector,
            retention,
            stop_workers,
            workers,
            catalogue,
            store,
            stop,
            task,
            tls,
            _lock: lock,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://ADDR` when serving TLS, `http://ADDR` otherwise.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Whether the server serves HTTPS.
    pub fn serves_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Reads the certificate and key files again: new connections get what they hold now,
    /// connections already open keep theirs. On failure the previous certificate stays and the
    /// error (also logged) names the file. `shipshape serve` calls this on SIGHUP; a change of
    /// either file's modification time does the same on its own.
    pub async fn reload_tls(&self) -> Result<(), tls::TlsError> {
        match &self.tls {
            Some(t) => t.reload().await,
            None => Err(tls::TlsError::NotConfigured),
        }
    }

    /// The online collector (tests drive passes and runs directly).
    pub fn collector(&self) -> &shipshape_gc::Collector {
        &self.collector
    }

    /// The retention policies and their runs (tests hold runs through its checkpoint).
    pub fn retention(&self) -> &shipshape_gc::retention::Retention {
        &self.retention
    }

    /// How many rows each catalogue table holds: what tests compare to show that a refused
    /// request changed nothing. Nothing reaches the catalogue itself from outside the services.
    pub async fn row_counts(&self) -> Result<Vec<(&'static str, i64)>, shipshape_meta::MetaError> {
        self.catalogue.row_counts().await
    }

    /// The blob store this server writes to (tests count and inspect objects through it).
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    /// Waits for the work that answered requests left behind (tests compare the store with the
    /// catalogue once it is done).
    pub async fn settle(&self) {
        self.registry.settle().await;
    }

    /// Stops accepting connections, lets the requests in flight finish for at most
    /// `shutdown_timeout` (closing the connections still busy then: an upload cut off keeps
    /// its session as it was before that request), stops the background workers, writes the
    /// pulls counted since the last flush, and closes the catalogue. What `shipshape serve`
    /// does on SIGTERM and Ctrl-C.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop.send(());
        let served = self.task.await;
        if let Some(f) = self.flusher {
            f.abort();
        }
        let _ = self.stop_workers.send(true);
        for w in self.workers {
            let _ = w.await;
        }
        if let Err(e) = self.registry.flush_pulls().await {
            tracing::warn!(error = %e, "recording the last pulls failed");
        }
        self.registry.settle().await;
        self.catalogue.close().await;
        served.map_err(|e| ServeError::Task(e.to_string()))
    }
}

/// What to check when `path` cannot be used.
fn data_dir_hint(path: &std::path::Path, e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::PermissionDenied => {
            " (the user running shipshape must be able to read and write it, and to enter \
             every directory above it)"
        }
        K::ReadOnlyFilesystem => " (its filesystem is mounted read-only)",
        K::StorageFull | K::QuotaExceeded => " (its filesystem is full)",
        K::NotADirectory => " (a part of the path is a file, not a directory)",
        K::AlreadyExists if path.exists() && !path.is_dir() => {
            " (it is a file, not a directory: give --data-dir a directory, or a path where one \
             can be created)"
        }
        _ => "",
    }
}

/// What to do about a catalogue that cannot be opened, where the cause says.
fn catalogue_hint(e: &MetaError) -> &'static str {
    match e {
        MetaError::Locked(_) => {
            ". Another process holds its write lock (a tool with a write transaction open on \
             it): stop that process, then start again"
        }
        MetaError::Damaged(_) => {
            ". Restore the catalogue from a backup (the .db file with its -wal beside it), or \
             move it aside to start with an empty one (the blobs in store/ are then unknown to \
             it); `sqlite3 FILE 'PRAGMA integrity_check'` shows what is damaged"
        }
        MetaError::Full(_) => ". Free space on its disk, then start again",
        MetaError::ReadOnly(_) => ". Make it and its directory writable, then start again",
        MetaError::Unavailable(_) => {
            ". Check that PostgreSQL runs and that catalogue.url (or SHIPSHAPE_CATALOGUE_URL) \
             reaches it from this machine"
        }
        _ => "",
    }
}

/// Takes the data directory's lock file, or says which directory another server holds.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, ServeError> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ServeError::DataDir {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServeError::DataDirInUse(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(source)) => Err(ServeError::DataDir { path, source }),
    }
}

/// How often old activity-log entries are pruned.
const HOUSEKEEPING_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Prunes the activity log (and tag history) and the storage samples past their retentions,
/// at start and then every `HOUSEKEEPING_EVERY`, a batch per transaction, until `stop` turns
/// true.
fn spawn_housekeeping(
    collector: shipshape_gc::Collector,
    registry: Registry,
    retention: std::time::Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> JoinHandle<()> {
    spawn_every(HOUSEKEEPING_EVERY, stop, move || {
        let (collector, registry) = (collector.clone(), registry.clone());
        async move {
            match collector.prune_history(retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(entries = n, "pruned the activity log past its retention"),
                Err(e) => tracing::warn!(error = %e, "pruning the activity log failed"),
            }
            match registry.prune_samples().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(samples = n, "pruned storage samples past their retention"),
                Err(e) => tracing::warn!(error = %e, "pruning the storage samples failed"),
            }
        }
    })
}

/// Runs `work` at once and then every `period` (a late tick waits, rather than bunching up),
/// until `stop` turns true.
fn spawn_every<F, Fut>(
    period: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut work: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
            work().await;
        }
    })
}

/// glibc's heap arenas the process may use (its default is eight per core). Each thread
/// allocates from an arena of its own while there are fewer than the limit, and the server's
/// threads come and go (tokio's blocking pool, SQLite's connections): every new arena kept its
/// free space in pieces `malloc_trim` cannot always hand back, a slow drift of the RSS.
const MALLOC_ARENAS: i32 = 4;

/// Caps glibc's heap arenas at `MALLOC_ARENAS`, unless the operator chose a number with
/// `MALLOC_ARENA_MAX`. Call before the runtime starts its threads.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes the allocator's tuning; called before other threads.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
    }
}

/// How often freed heap memory is handed back to the system.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Hands freed heap memory back to the system every `TRIM_EVERY` (glibc's `malloc_trim`),
/// until `stop` turns true. glibc gives each thread that allocates its own arena and keeps
/// what is freed in it for reuse by that arena: SQLite's connections each run on their own
/// thread, and under the soak's mixed load the free space kept in their arenas grew the
/// resident size by 75 MiB within the hour (bench/README.md, "Soak"), which one `malloc_trim`
/// returned. Elsewhere than glibc there is nothing to do.
fn spawn_memory_trim(stop: tokio::sync::watch::Receiver<bool>) -> JoinHandle<()> {
    spawn_every(TRIM_EVERY, stop, || async {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // It walks every arena holding each one's lock: off the async workers.
            // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        }
    })
}

/// How often the sampler looks whether a sample of the storage figures is due, at most: a
/// look reads the newest sample's time, and only a due one takes the figures.
const SAMPLER_LOOKS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Samples the storage figures for the overview's chart (`Registry::sample_storage`): at start
/// and then every sampling interval or `SAMPLER_LOOKS_EVERY`, whichever is shorter, until
/// `stop` turns true. Every node samples; the catalogue keeps one sample per interval.
fn spawn_sampler(registry: Registry, stop: tokio::sync::watch::Receiver<bool>) -> JoinHandle<()> {
    let interval = registry.options().sample_interval;
    if interval.is_zero() {
        return tokio::spawn(async {});
    }
    spawn_every(interval.min(SAMPLER_LOOKS_EVERY), stop, move || {
        let registry = registry.clone();
        async move {
            if let Err(e) = registry.sample_storage().await {
                tracing::warn!(error = %e, "sampling the storage figures failed");
            }
        }
    })
}

/// Accepted connections send each write at once. A streamed body (every blob) goes out as the
/// headers and then the bytes; with Nagle's algorithm a small blob, such as an image's config,
/// waits for the client to acknowledge the headers, which on a reused connection the client
/// delays by up to 40 ms. `serve::accept` calls this on every connection, plain or TLS, before
/// anything else is sent (its test: `accepted_connections_do_not_wait_to_fill_segments`).
fn send_at_once(tcp: &TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::warn!(error = %e, "could not turn off Nagle's algorithm on a connection");
    }
}
