//! The catalogue: every fact about repositories, blobs, manifests, references, tags, upload
//! sessions and the activity log. All SQL of the project lives in this crate, one module per
//! aggregate. Functions take a connection (usually a transaction the caller owns), so a
//! check-then-act happens in one transaction.
//!
//! On SQLite, writes go through a pool of exactly one connection: the database has a single
//! writer anyway, and serialising in-process avoids lock-upgrade failures. Reads use a separate
//! pool and never block writers (WAL). The writer checkpoints the log itself: after the commit
//! that crosses SQLite's threshold, or earlier, once the writer has been idle for a moment
//! (`checkpoint_when_idle`). A checkpoint from another connection cannot restart the log while
//! the writer keeps appending, and under sustained writes the log grew without bound.

pub mod accounts;
pub mod batches;
pub mod bindings;
pub mod blobs;
pub mod changes;
pub mod clock;
pub mod consistency;
pub mod db;
pub mod events;
pub mod ids;
pub mod manifests;
pub mod policies;
pub mod principal;
pub mod queue;
pub mod repos;
pub mod reviews;
pub mod runs;
pub mod samples;
pub mod scratch;
pub mod tags;
pub mod transfer;
pub mod uploads;
pub mod usage;
mod versions;
pub mod web_sessions;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use clock::{Clock, Millis, SystemClock};
pub use db::{Conn, Reader, Tx, rollback};
use db::{Dialect, ReaderInner, TxInner, values};
pub use principal::Principal;

/// Catalogue errors. Absence is expressed with `Option` in return values, not errors.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("catalogue database: {0}")]
    Db(sqlx::Error),
    #[error("catalogue migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row the catalogue cannot read back as what it stored: a damaged database, or one
    /// written by another release.
    #[error("corrupt catalogue row: {0}")]
    Corrupt(String),
    /// The database's disk is full (SQLite's `SQLITE_FULL`); the transaction was rolled back.
    #[error("catalogue database: no space left on its disk ({0})")]
    Full(String),
    /// The database cannot be written (`SQLITE_READONLY`: a read-only filesystem or file).
    #[error("catalogue database: read-only ({0})")]
    ReadOnly(String),
    /// Another process holds the SQLite catalogue's write lock and kept it past the busy
    /// timeout (`SQLITE_BUSY`, `SQLITE_LOCKED`).
    #[error("catalogue database: locked by another process ({0})")]
    Locked(String),
    /// The file is not a SQLite database or is damaged (`SQLITE_NOTADB`, `SQLITE_CORRUPT`).
    #[error("catalogue database: damaged, or not a catalogue ({0})")]
    Damaged(String),
    /// Text the database cannot hold (PostgreSQL refuses a NUL character in `TEXT`): bad input,
    /// refused with nothing written.
    #[error("the catalogue cannot store this text: {0}")]
    Unstorable(String),
    /// The database cannot be reached or gave no connection in time: PostgreSQL down,
    /// restarting or cut off, or every pooled connection busy past the pool's timeout.
    #[error("catalogue database: unavailable ({0})")]
    Unavailable(String),
    /// The PostgreSQL catalogue's schema is older than this release and was not migrated.
    #[error(
        "the catalogue's schema lacks {0} migration(s) of this release: run `shipshape migrate` \
         or start with `[catalogue] migrate = true`"
    )]
    Outdated(usize),
}

/// PostgreSQL's SQLSTATEs for a full disk and a read-only transaction (a standby, or
/// `default_transaction_read_only`).
const PG_DISK_FULL: &str = "53100";
const PG_READ_ONLY: &str = "25006";
/// ... for a server shutting down, ending the session or not yet accepting connections (class
/// 08, connection exceptions, is matched by its prefix).
const PG_GOING_AWAY: [&str; 3] = ["57P01", "57P02", "57P03"];
/// ... and for text the database's encoding cannot hold (a NUL character, invalid UTF-8).
const PG_UNSTORABLE_TEXT: [&str; 2] = ["22021", "22P05"];

/// SQLite's primary result codes for a full disk and a database that cannot be written; the
/// driver reports extended codes, whose low byte is the primary one.
const SQLITE_FULL: i64 = 13;
const SQLITE_READONLY: i64 = 8;
/// ... for a lock another connection holds, and for a file that is not (or no longer) a
/// database.
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_NOTADB: i64 = 26;

impl From<sqlx::Error> for MetaError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. } => MetaError::Corrupt(e.to_string()),
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
                MetaError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(ref db)
                if db.code().is_some_and(|c| {
                    c.starts_with("08") || PG_GOING_AWAY.contains(&c.as_ref())
                }) =>
            {
                MetaError::Unavailable(db.message().to_string())
            }
            sqlx::Error::Database(ref db) if db.code().as_deref() == Some(PG_DISK_FULL) => {
                MetaError::Full(db.message().to_string())
            }
            sqlx::Error::Database(ref db) if db.code().as_deref() == Some(PG_READ_ONLY) => {
                MetaError::ReadOnly(db.message().to_string())
            }
            sqlx::Error::Database(ref db)
                if db
                    .code()
                    .is_some_and(|c| PG_UNSTORABLE_TEXT.contains(&c.as_ref())) =>
            {
                MetaError::Unstorable(db.message().to_string())
            }
            sqlx::Error::Database(ref db) => {
                let primary = db
                    .code()
                    .and_then(|c| c.parse::<i64>().ok())
                    .map(|c| c & 0xff);
                match primary {
                    Some(SQLITE_FULL) => MetaError::Full(db.message().to_string()),
                    Some(SQLITE_READONLY) => MetaError::ReadOnly(db.message().to_string()),
                    Some(SQLITE_BUSY | SQLITE_LOCKED) => {
                        MetaError::Locked(db.message().to_string())
                    }
                    Some(SQLITE_CORRUPT | SQLITE_NOTADB) => {
                        MetaError::Damaged(db.message().to_string())
                    }
                    _ => MetaError::Db(e),
                }
            }
            other => MetaError::Db(other),
        }
    }
}

pub type Result<T> = std::result::Result<T, MetaError>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Handle on the catalogue database.
#[derive(Clone, Debug)]
pub struct Catalogue {
    pools: Pools,
    activity: Arc<WriterActivity>,
    stats: Arc<CatalogueStats>,
    /// PostgreSQL: the one connection that listens for change notices (`changes.rs`), in a
    /// pool of its own so that it takes no place from requests.
    listener: Option<PgPool>,
}

#[derive(Clone, Debug)]
enum Pools {
    /// One writer connection and a pool of readers (WAL).
    Sqlite { write: SqlitePool, read: SqlitePool },
    /// One pool for both: PostgreSQL has many writers, and row locks order them.
    Postgres(PgPool),
}

/// What the metrics show of the catalogue: how long transactions waited for the single writer
/// and reads for a pooled connection (the first thing to grow when the catalogue is the
/// bottleneck), and the checkpoints the idle checkpointer made.
#[derive(Debug, Default)]
pub struct CatalogueStats {
    /// Write transactions begun, and the microseconds they waited for the writer in all.
    pub write_waits: AtomicU64,
    pub write_wait_micros: AtomicU64,
    /// Read connections taken, and the microseconds they waited in all.
    pub read_waits: AtomicU64,
    pub read_wait_micros: AtomicU64,
    /// Checkpoints of the write-ahead log made while the writer was idle (those the writer
    /// makes on the commit that crosses `CHECKPOINT_PAGES` happen inside SQLite, unseen).
    pub idle_checkpoints: AtomicU64,
    /// Write transactions this process committed, but those that said they leave the storage
    /// figures as they were (`Tx::leaves_figures`): a figure computed over the whole
    /// catalogue is still current for this node's writes while this has not moved.
    pub commits: AtomicU64,
    /// Moves on every commit of this node that may change the figures (so also where tags
    /// point and which manifests exist) and on every change notice of any node: what a cache in
    /// front of the catalogue checks.
    pub changes: changes::Changes,
    /// SQLite's write-ahead log file (none on PostgreSQL).
    wal: Option<std::path::PathBuf>,
}

impl CatalogueStats {
    async fn time_write<T>(&self, f: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = f.await;
        self.write_waits.fetch_add(1, Ordering::Relaxed);
        self.write_wait_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        out
    }

    async fn time_read<T>(&self, f: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = f.await;
        self.read_waits.fetch_add(1, Ordering::Relaxed);
        self.read_wait_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        out
    }

    /// The write-ahead log's size now (`None` when it cannot be read, or there is none).
    pub fn wal_bytes(&self) -> Option<u64> {
        std::fs::metadata(self.wal.as_ref()?).ok().map(|m| m.len())
    }

    /// The memory SQLite holds in this process now (its connections' page caches, prepared
    /// statements, sorting): `None` on PostgreSQL (a catalogue without a log file here).
    pub fn sqlite_memory_bytes(&self) -> Option<u64> {
        self.wal.as_ref()?;
        // SAFETY: reads SQLite's own counter; callable from any thread at any time.
        Some(unsafe { libsqlite3_sys::sqlite3_memory_used() }.max(0) as u64)
    }
}

/// How long the writer must have begun no transaction before the log is checkpointed early.
const IDLE_BEFORE_CHECKPOINT: Duration = Duration::from_millis(100);

/// Pages the log may hold before the commit that crosses the mark checkpoints it (SQLite's
/// default is 1 000 pages, 4 MiB). A checkpoint copies the logged pages into the database file
/// and syncs it, and a collection run or a burst of pushes rewrites pages all over that file: at
/// 1 000 pages, a collection of 1% of the tags at 100 K blobs checkpointed 7–8 times, 13–26 ms
/// each, over a third of the run. A larger checkpoint copies once a page that several commits
/// rewrote and pays its two syncs once: the same run then checkpointed at most once, in about
/// 30 ms, and took 0.30 s instead of 0.46 s (`bench-gc`; at 1 M blobs 5.5 s instead of 6.3 s).
/// The log stays under about 40 MiB, and the idle checkpointer empties it whenever the writer
/// rests.
const CHECKPOINT_PAGES: u32 = 10_000;

/// What the log file is cut back to once a checkpoint has copied all of it and the writer starts
/// it again (SQLite's `journal_size_limit`). Without a limit SQLite reuses the file from its
/// start but never shrinks it: after a burst of writes or a long-lived reader let it grow past
/// `CHECKPOINT_PAGES`, it kept that size for good (60 MiB in the hour's soak, `bench-soak`).
/// 4 MiB is SQLite's own default checkpoint size: what a quiet registry's log needs.
const JOURNAL_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

/// What the idle checkpointer watches: when the writer last began a transaction, and whether it
/// began any since the last checkpoint.
#[derive(Debug)]
struct WriterActivity {
    opened: Instant,
    last_begin_ms: AtomicU64,
    dirty: AtomicBool,
}

impl WriterActivity {
    fn new() -> Self {
        WriterActivity {
            opened: Instant::now(),
            last_begin_ms: AtomicU64::new(0),
            dirty: AtomicBool::new(true),
        }
    }

    fn touch(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.last_begin_ms.store(now, Ordering::Relaxed);
        self.dirty.store(true, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.opened.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_begin_ms.load(Ordering::Relaxed)))
    }
}

/// Checkpoints the log on the writer's own connection once the writer has been idle for
/// `IDLE_BEFORE_CHECKPOINT`. Without it, the commit that crosses the threshold
/// (`CHECKPOINT_PAGES`) pays for the checkpoint: two syncs and the copying, added to whichever
/// push, delete or collection happened to commit then. Taking the writer only when it is free
/// and has been quiet keeps the cost out of requests without ever running beside a write;
/// under sustained writes the writer is never idle and its checkpoint on commit still bounds
/// the log. Ends when the catalogue is closed or dropped.
async fn checkpoint_when_idle(
    write: SqlitePool,
    activity: Weak<WriterActivity>,
    stats: Weak<CatalogueStats>,
) {
    let mut tick = tokio::time::interval(IDLE_BEFORE_CHECKPOINT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(activity) = activity.upgrade() else {
            return;
        };
        if write.is_closed() {
            return;
        }
        if !activity.dirty.load(Ordering::Relaxed) || activity.idle_for() < IDLE_BEFORE_CHECKPOINT {
            continue;
        }
        let Some(mut conn) = write.try_acquire() else {
            continue;
        };
        activity.dirty.store(false, Ordering::Relaxed);
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut *conn)
            .await
        {
            tracing::warn!(error = %e, "checkpointing the catalogue's log failed");
        } else if let Some(stats) = stats.upgrade() {
            stats.idle_checkpoints.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How to reach a PostgreSQL catalogue, and its limits.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/database?…`
    pub url: String,
    /// The password, when it is kept out of the URL (from the environment).
    pub password: Option<String>,
    /// Connections this node keeps at most (requests, workers and the collector share them).
    pub max_connections: u32,
    /// A statement running longer is cancelled (PostgreSQL's `statement_timeout`).
    pub statement_timeout: Duration,
    /// A lock waited on longer fails the statement (`lock_timeout`).
    pub lock_timeout: Duration,
    /// A transaction left idle longer is ended by the server
    /// (`idle_in_transaction_session_timeout`): a node that hangs cannot hold locks forever.
    pub idle_in_transaction_timeout: Duration,
    /// The longest a node answers a manifest read from its cache without a change notice
    /// (`changes.rs`); zero: nothing is cached.
    pub manifest_cache_ttl: Duration,
}

impl PostgresOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            password: None,
            max_connections: 16,
            statement_timeout: Duration::from_secs(60),
            lock_timeout: Duration::from_secs(30),
            idle_in_transaction_timeout: Duration::from_secs(60),
            manifest_cache_ttl: Duration::from_secs(5),
        }
    }
}

/// A database URL fit for logs and error messages: its password, if any, replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

/// Which backend a catalogue URL names: `postgres://…` (or `postgresql://…`) or SQLite.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Catalogue {
    /// Opens (creating and migrating if needed) the SQLite catalogue at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit acknowledged to a client survives power loss, not just a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", CHECKPOINT_PAGES.to_string())
                    .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string()),
            )
            .await?;
        let applied = applied_sqlite_migrations(&write).await?;
        for version in pending(&SQLITE_MIGRATIONS, &applied) {
            SQLITE_MIGRATIONS.run_to(version, &write).await?;
            shipshape_fault::point("migrate.applied");
        }
        // Reading the schema needs no write lock: take it once now, so that a catalogue another
        // process holds is refused here, by name, rather than by the first write much later.
        write
            .begin_with("BEGIN IMMEDIATE")
            .await?
            .rollback()
            .await?;
        // Connections are kept for the process's life (sqlx recycles them after 10 idle or 30
        // minutes): a SQLite connection gains nothing from reopening, and each reopening
        // started a thread and refilled a page cache, a slow drift of the process's memory.
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.read_only(true))
            .await?;
        let activity = Arc::new(WriterActivity::new());
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let stats = Arc::new(CatalogueStats {
            wal: Some(wal.into()),
            ..CatalogueStats::default()
        });
        tokio::spawn(checkpoint_when_idle(
            write.clone(),
            Arc::downgrade(&activity),
            Arc::downgrade(&stats),
        ));
        Ok(Catalogue {
            pools: Pools::Sqlite { write, read },
            activity,
            stats,
            listener: None,
        })
    }

    /// Connects to a PostgreSQL catalogue and brings its schema up to date when `migrate`
    /// (otherwise a schema older than this release is refused: `shipshape migrate` first).
    pub async fn open_postgres(options: &PostgresOptions, migrate: bool) -> Result<Self> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut connect: PgConnectOptions = options.url.parse()?;
        if let Some(password) = &options.password {
            connect = connect.password(password);
        }
        let connect = connect.options([
            ("statement_timeout", ms(options.statement_timeout)),
            ("lock_timeout", ms(options.lock_timeout)),
            (
                "idle_in_transaction_session_timeout",
                ms(options.idle_in_transaction_timeout),
            ),
            // The figures' classification is one large recursive query over small tables whose
            // estimates run into millions of rows: PostgreSQL's JIT compiled it (270 functions)
            // on every run, 2.5 s against 14 ms without, so every usage figure took seconds.
            // No statement of the catalogue runs long enough to repay a compilation.
            ("jit", "off".to_string()),
        ]);
        // A connection attempt gives up after 5 s rather than the pool's 30: after PostgreSQL
        // comes back, the node caches again within seconds (each try waits out the timeout
        // while connections are refused). No pool at all when nothing may be cached.
        let listener = (!options.manifest_cache_ttl.is_zero()).then(|| {
            PgPoolOptions::new()
                .max_connections(1)
                .max_lifetime(None)
                .idle_timeout(None)
                .acquire_timeout(Duration::from_secs(5))
                .connect_lazy_with(connect.clone().application_name(changes::LISTENER_NAME))
        });
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .connect_with(connect)
            .await?;
        if migrate {
            migrate_postgres(&pool).await?;
        } else {
            let pending = pending_postgres_migrations(&pool).await?;
            if pending > 0 {
                return Err(MetaError::Outdated(pending));
            }
        }
        Ok(Catalogue {
            pools: Pools::Postgres(pool),
            activity: Arc::new(WriterActivity::new()),
            stats: Arc::new(CatalogueStats {
                changes: changes::Changes::with_ttl(options.manifest_cache_ttl),
                ..CatalogueStats::default()
            }),
            listener,
        })
    }

    /// Applies the PostgreSQL migrations this release has and the database lacks; returns
    /// how many it applied. What `shipshape migrate` runs.
    pub async fn migrate_postgres(options: &PostgresOptions) -> Result<usize> {
        let mut connect: PgConnectOptions = options.url.parse()?;
        if let Some(password) = &options.password {
            connect = connect.password(password);
        }
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(connect)
            .await?;
        let pending = pending_postgres_migrations(&pool).await?;
        migrate_postgres(&pool).await?;
        pool.close().await;
        Ok(pending)
    }

    /// After a bulk write (an import): has PostgreSQL gather its planner's statistics now
    /// rather than when autovacuum gets to it. Until then it plans the storage figures' query
    /// as over empty tables: 8 s instead of 0.6 s at 100 000 blobs. SQLite's plans take no
    /// statistics here (none are ever gathered), so there it does nothing.
    pub async fn refresh_statistics(&self) -> Result<()> {
        if let Pools::Postgres(pool) = &self.pools {
            sqlx::query("ANALYZE").execute(pool).await?;
        }
        Ok(())
    }

    /// Starts listening for the change notices of every node's commits (PostgreSQL), so that
    /// [`Catalogue::changes`] can vouch for a cached answer. What a serving node calls once;
    /// on SQLite it does nothing and nothing may be cached.
    pub fn watch_changes(&self) {
        if let Some(pool) = &self.listener {
            tokio::spawn(changes::listen(pool.clone(), Arc::downgrade(&self.stats)));
        }
    }

    /// The generation a cache in front of the catalogue stamps its entries with.
    pub fn changes(&self) -> &changes::Changes {
        &self.stats.changes
    }

    /// Which backend this catalogue speaks: `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.pools {
            Pools::Sqlite { .. } => "sqlite",
            Pools::Postgres(_) => "postgres",
        }
    }

    /// Starts a write transaction whose commit is durable before it returns.
    ///
    /// On SQLite, writers are serialised; keep transactions short and never hold one across
    /// storage I/O. Write transactions take the write lock at BEGIN (IMMEDIATE): inside this
    /// process the single write connection serialises them anyway, and another process
    /// writing the same file (an operator's tool) then waits out the busy timeout instead of
    /// failing at once with SQLITE_BUSY when a transaction that read first tries to write.
    ///
    /// On PostgreSQL, transactions run at READ COMMITTED beside other nodes' and are ordered
    /// by the row locks the statements take (ARCHITECTURE.md, the concurrency model).
    pub async fn begin(&self) -> Result<Tx> {
        self.begin_with(true).await
    }

    /// Starts a write transaction whose commit is not synced: a power loss (not a crash of the
    /// process) may undo it. Only for work that is decided again when undone and that nothing
    /// irreversible follows before a synced commit: the collector's reviews. The storage
    /// drainer claims the keys it deletes in a synced transaction, and in WAL mode a synced
    /// commit makes every earlier commit durable with it, so bytes are never deleted on the word
    /// of a commit that could still be lost. On PostgreSQL the same holds with
    /// `synchronous_commit = off` for the transaction: the WAL is flushed in order.
    pub async fn begin_unsynced(&self) -> Result<Tx> {
        self.begin_with(false).await
    }

    async fn begin_with(&self, synced: bool) -> Result<Tx> {
        self.activity.touch();
        let inner = match &self.pools {
            Pools::Sqlite { write, .. } => {
                let begin = if synced {
                    "PRAGMA synchronous = FULL; BEGIN IMMEDIATE"
                } else {
                    "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE"
                };
                TxInner::Sqlite(self.stats.time_write(write.begin_with(begin)).await?)
            }
            Pools::Postgres(pool) => {
                let begin = if synced {
                    "BEGIN"
                } else {
                    "BEGIN; SET LOCAL synchronous_commit = off"
                };
                TxInner::Postgres(self.stats.time_write(pool.begin_with(begin)).await?)
            }
        };
        Ok(Tx(inner, Vec::new(), self.stats.clone(), false))
    }

    /// A connection for reads that need no consistency with a later write.
    pub async fn reader(&self) -> Result<Reader> {
        let inner = match &self.pools {
            Pools::Sqlite { read, .. } => {
                ReaderInner::Sqlite(self.stats.time_read(read.acquire()).await?)
            }
            Pools::Postgres(pool) => {
                ReaderInner::Postgres(self.stats.time_read(pool.acquire()).await?)
            }
        };
        Ok(Reader(inner))
    }

    /// Waits, checkpoints and the log's size, for the metrics.
    pub fn stats(&self) -> &CatalogueStats {
        &self.stats
    }

    /// Reads the database: the catalogue answers. What `/readyz` asks; a write is not tried,
    /// since a commit costs a sync on every probe.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.reader().await?;
        values!(&mut conn, fetch_one, |cx| sqlx::query_scalar::<_, i64>(
            cx.pick(
                "SELECT count(*) FROM sqlite_master",
                "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
            )
        ))?;
        Ok(())
    }

    /// How many rows each catalogue table holds: a cheap overview for operators and the proof,
    /// in tests, that a refused request left nothing behind.
    pub async fn row_counts(&self) -> Result<Vec<(&'static str, i64)>> {
        const TABLES: [&str; 9] = [
            "repositories",
            "blobs",
            "repository_blobs",
            "manifests",
            "manifest_blob_references",
            "manifest_child_references",
            "tags",
            "uploads",
            "events",
        ];
        let mut conn = self.reader().await?;
        let mut out = Vec::new();
        for t in TABLES {
            // Table names come from the constant list above, never from input.
            let n: i64 = values!(&mut conn, fetch_one, |cx| sqlx::query_scalar(
                sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {t}"))
            ))?;
            out.push((t, n));
        }
        Ok(out)
    }

    /// Closes the pools, waiting for connections to be returned.
    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { write, read } => {
                write.close().await;
                read.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
        if let Some(listener) = &self.listener {
            listener.close().await;
        }
    }
}

/// Several nodes may start at once on a new database: each migration runs under an advisory
/// lock (sqlx's migrator takes one on PostgreSQL), so one node applies it and the others find
/// it applied.
async fn migrate_postgres(pool: &PgPool) -> Result<()> {
    let applied = applied_postgres_migrations(pool).await?;
    for version in pending(&POSTGRES_MIGRATIONS, &applied) {
        POSTGRES_MIGRATIONS.run_to(version, pool).await?;
        shipshape_fault::point("migrate.applied");
    }
    Ok(())
}

/// The versions of `migrator` not in `applied`, oldest first. They are applied one at a time
/// (`run_to`), each in its own transaction as sqlx runs them: a crash between two leaves the
/// schema at one of this release's versions, and the next start applies the rest
/// (`crash_matrix.rs`, `migrate.applied`).
fn pending(migrator: &sqlx::migrate::Migrator, applied: &[i64]) -> Vec<i64> {
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| m.version)
        .collect()
}

/// The versions sqlx recorded as applied; none before its table exists.
const APPLIED: &str = "SELECT version FROM _sqlx_migrations WHERE success";

async fn applied_sqlite_migrations(pool: &SqlitePool) -> Result<Vec<i64>> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(pool)
    .await?;
    if !exists {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(APPLIED).fetch_all(pool).await?)
}

async fn applied_postgres_migrations(pool: &PgPool) -> Result<Vec<i64>> {
    let exists: bool = sqlx::query_scalar(
        "SELECT to_regclass(current_schema() || '._sqlx_migrations') IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    if !exists {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(APPLIED).fetch_all(pool).await?)
}

/// How many of this release's migrations the database has not applied.
async fn pending_postgres_migrations(pool: &PgPool) -> Result<usize> {
    let applied = applied_postgres_migrations(pool).await?;
    Ok(pending(&POSTGRES_MIGRATIONS, &applied).len())
}

/// A batch (or a list kept in one column) as the JSON text bound to one parameter.
pub(crate) fn json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| MetaError::Corrupt(e.to_string()))
}

/// A row limit as bound: a negative one (the callers' "all") is the largest, since SQLite
/// alone reads `LIMIT -1` as no limit (PostgreSQL refuses it, and SQLite refuses `LIMIT NULL`).
pub(crate) fn limit(n: i64) -> i64 {
    if n < 0 { i64::MAX } else { n }
}

/// Converts a stored digest string back into a typed digest.
pub(crate) fn digest_col(s: &str) -> Result<shipshape_oci::Digest> {
    s.parse()
        .map_err(|e| MetaError::Corrupt(format!("digest {s:?}: {e}")))
}

/// Commits a write transaction.
pub async fn commit(tx: Tx) -> Result<()> {
    let started = Instant::now();
    let Tx(tx, recorded, stats, leaves_figures) = tx;
    let committed = match tx {
        TxInner::Sqlite(tx) => tx.commit().await,
        TxInner::Postgres(tx) => tx.commit().await,
    };
    if !leaves_figures {
        // Before the request that made the change is answered: this node never serves from
        // its manifest cache what its own commit replaced. Also when the commit failed: its
        // answer may have been lost after PostgreSQL committed.
        stats.changes.moved();
    }
    committed?;
    if !leaves_figures {
        stats.commits.fetch_add(1, Ordering::Release);
    }
    for entry in &recorded {
        entry.log();
    }
    // A commit that crosses the writer's mark also checkpoints: the trace shows which.
    tracing::trace!(
        ms = started.elapsed().as_secs_f64() * 1e3,
        "catalogue transaction committed"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SQLite catalogue in a directory removed when the first value is dropped.
    async fn scratch_sqlite() -> (tempfile::TempDir, Catalogue) {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalogue::open_sqlite(&dir.path().join("catalogue.db"))
            .await
            .unwrap();
        (dir, cat)
    }

    #[test]
    fn a_url_is_logged_without_its_password() {
        assert_eq!(
            redacted_url("postgres://reg:s3cr:et@db:5432/registry?sslmode=require"),
            "postgres://reg:***@db:5432/registry?sslmode=require"
        );
        assert_eq!(
            redacted_url("postgres://reg@db/registry"),
            "postgres://reg@db/registry"
        );
        assert_eq!(
            redacted_url("postgres://db/x?user=a"),
            "postgres://db/x?user=a"
        );
    }
    use shipshape_oci::RepoName;

    /// Commits go to the log; only a checkpoint copies them into the database file. With no
    /// write for a moment, the idle checkpointer must do that, long before the writer's own
    /// threshold of `CHECKPOINT_PAGES` (the migrations and the write below are far fewer).
    #[tokio::test]
    async fn an_idle_writer_gets_its_log_checkpointed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("catalogue.db");
        let cat = Catalogue::open_sqlite(&db).await.unwrap();
        let size = || std::fs::metadata(&db).unwrap().len();
        let grows_beyond = |before: u64, what: &str| {
            let deadline = Instant::now() + Duration::from_secs(20);
            let what = what.to_string();
            async move {
                while size() <= before {
                    assert!(
                        Instant::now() < deadline,
                        "{what} never reached the database file"
                    );
                    tokio::time::sleep(IDLE_BEFORE_CHECKPOINT).await;
                }
            }
        };
        // Opening writes only the header page to the file; the schema is in the log.
        grows_beyond(4096, "the migrations").await;
        let before = size();
        let mut tx = cat.begin().await.unwrap();
        for i in 0..2_000 {
            let name: RepoName = format!("team-{i:04}/service-with-a-longish-name")
                .parse()
                .unwrap();
            repos::get_or_create(&mut tx, &name, 0).await.unwrap();
        }
        commit(tx).await.unwrap();
        grows_beyond(before, "the repositories").await;
        cat.close().await;
    }

    /// The catalogue's PostgreSQL connections never JIT-compile a statement (see
    /// `open_postgres`); on the test server, which has JIT, the setting is what keeps it off.
    #[tokio::test]
    async fn postgres_connections_run_without_jit() {
        let admin = match std::env::var("SHIPSHAPE_TEST_POSTGRES") {
            Ok(v) if v == "none" => return,
            Ok(v) => v,
            Err(_) => panic!(
                "SHIPSHAPE_TEST_POSTGRES is not set: give it a PostgreSQL server's URL, or `none`"
            ),
        };
        let db = crate::scratch::create(&admin).await.unwrap();
        let cat = Catalogue::open_postgres(&PostgresOptions::new(db.url.clone()), true)
            .await
            .unwrap();
        let Pools::Postgres(pool) = &cat.pools else {
            unreachable!("opened as PostgreSQL")
        };
        let jit: String = sqlx::query_scalar("SHOW jit")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(jit, "off");
        cat.close().await;
        db.drop_database().await.unwrap();
    }

    /// A log that a burst of writes made large is cut back once the idle checkpointer has copied
    /// it and the next write starts it again; without `journal_size_limit` it kept its size.
    #[tokio::test]
    async fn the_log_shrinks_again_after_a_burst() {
        let (_dir, cat) = scratch_sqlite().await;
        let Pools::Sqlite { write, .. } = &cat.pools else {
            unreachable!("opened as SQLite")
        };
        // A burst larger than the limit, in one transaction (a table of this test's own).
        let mut tx = write.begin().await.unwrap();
        sqlx::query("CREATE TABLE burst (b BLOB)")
            .execute(&mut *tx)
            .await
            .unwrap();
        for _ in 0..24 {
            sqlx::query("INSERT INTO burst VALUES (zeroblob(1000000))")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let burst = cat.stats.wal_bytes().unwrap();
        assert!(burst > 20_000_000, "{burst}");
        let checkpoints = cat.stats.idle_checkpoints.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(20);
        while cat.stats.idle_checkpoints.load(Ordering::Relaxed) == checkpoints {
            assert!(
                Instant::now() < deadline,
                "the idle writer was never checkpointed"
            );
            tokio::time::sleep(IDLE_BEFORE_CHECKPOINT).await;
        }
        let mut tx = cat.begin().await.unwrap();
        repos::get_or_create(&mut tx, &"after/burst".parse::<RepoName>().unwrap(), 0)
            .await
            .unwrap();
        commit(tx).await.unwrap();
        let after = cat.stats.wal_bytes().unwrap();
        assert!(
            after <= JOURNAL_SIZE_LIMIT,
            "{after} after a burst of {burst}"
        );
        cat.close().await;
    }

    /// A commit moves the mark cached storage figures compare, but not one that said it leaves
    /// them as they were (a pull-count flush, the collector's claims).
    #[tokio::test]
    async fn only_commits_that_may_change_the_figures_are_counted() {
        let (_dir, cat) = scratch_sqlite().await;
        let counted = || cat.stats().commits.load(Ordering::Acquire);
        let before = counted();
        let mut tx = cat.begin().await.unwrap();
        tx.leaves_figures();
        commit(tx).await.unwrap();
        assert_eq!(counted(), before);
        commit(cat.begin().await.unwrap()).await.unwrap();
        assert_eq!(counted(), before + 1);
        cat.close().await;
    }

    /// The writer, which alone commits and so alone checkpoints on commit, has the larger mark;
    /// SQLite would otherwise checkpoint every 1 000 pages.
    #[tokio::test]
    async fn the_writer_checkpoints_only_past_its_own_mark() {
        let (_dir, cat) = scratch_sqlite().await;
        let Pools::Sqlite { write, .. } = &cat.pools else {
            unreachable!("opened as SQLite")
        };
        let mut conn = write.acquire().await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(pages, i64::from(CHECKPOINT_PAGES));
        drop(conn);
        cat.close().await;
    }

    #[tokio::test]
    async fn a_full_or_read_only_database_is_said_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("small.db"))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x BLOB)")
            .execute(&pool)
            .await
            .unwrap();
        // SQLite's own way to make a disk full: a database may not grow past this many pages.
        sqlx::query("PRAGMA max_page_count = 16")
            .execute(&pool)
            .await
            .unwrap();
        let full = loop {
            if let Err(e) = sqlx::query("INSERT INTO t VALUES (zeroblob(4096))")
                .execute(&pool)
                .await
            {
                break MetaError::from(e);
            }
        };
        assert!(matches!(full, MetaError::Full(_)), "{full:?}");
        let read_only = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.read_only(true))
            .await
            .unwrap();
        let refused = sqlx::query("DELETE FROM t")
            .execute(&read_only)
            .await
            .map(|_| ())
            .map_err(MetaError::from)
            .unwrap_err();
        assert!(matches!(refused, MetaError::ReadOnly(_)), "{refused:?}");
    }
}
