//! The catalogue: every fact about repositories, blobs, manifests, references, tags, upload
//! sessions and the activity log. All SQL of the project lives in this crate, one module per
//! aggregate. Functions take a connection (usually a transaction the caller owns), so a
//! check-then-act happens in one transaction.
//!
//! On SQLite, writes go through a pool of exactly one connection: the database has a single
//! writer anyway, and serialising in-process avoids lock-upgrade failures. Reads use a separate
//! pool and never block writers (WAL). The log is checkpointed in three ways (`checkpointer`):
//! on the writer's connection once it has been idle for a moment; on a connection of its own
//! while the writer goes on, once the log holds a backlog; and by the writer itself after the
//! commit that crosses its mark. Only the last bounds the log: a checkpoint from another
//! connection cannot restart the log while the writer keeps appending, and when it was the only
//! one the log grew without bound under sustained writes.

pub mod blobs;
pub mod clock;
pub mod events;
pub mod gc;
pub mod manifests;
pub mod policies;
pub mod repos;
pub mod reviews;
pub mod tags;
pub mod uploads;
pub mod usage;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqliteConnection, SqlitePool};

pub use clock::{Clock, Millis, SystemClock};
pub use sqlx::SqliteConnection as Conn;

/// A write transaction; commit it or drop it to roll back.
pub type Tx = sqlx::Transaction<'static, Sqlite>;

/// Catalogue errors. Absence is expressed with `Option` in return values, not errors.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("catalogue database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("catalogue migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt catalogue row: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, MetaError>;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Handle on the catalogue database.
#[derive(Clone, Debug)]
pub struct Catalogue {
    write: SqlitePool,
    read: SqlitePool,
    activity: Arc<WriterActivity>,
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

/// Logged pages not yet copied into the database file past which the checkpointer's own
/// connection copies them while the writer goes on. Below it (a push, a small collection) the
/// idle checkpoint suffices; above it (a collection of thousands of blobs, a burst of pushes)
/// the copying would otherwise land in whichever commit crosses `CHECKPOINT_PAGES`: at 1 M
/// blobs, 16 checkpoints of 100–200 ms inside a 6 s collection.
const BACKGROUND_CHECKPOINT_PAGES: u32 = 1_000;

/// What the idle checkpointer watches: when the writer last began a transaction, and whether it
/// began any since the last checkpoint.
#[derive(Debug)]
struct WriterActivity {
    opened: Instant,
    last_begin_ms: AtomicU64,
    dirty: AtomicBool,
    /// Checkpoints started beside a busy writer.
    background_checkpoints: AtomicU64,
}

impl WriterActivity {
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

/// Keeps the log short without putting its copying into requests. Once the writer has been
/// idle for `IDLE_BEFORE_CHECKPOINT`, the log is checkpointed on the writer's own connection:
/// taken only when free, it never runs beside a write, and an idle writer's next transaction
/// finds the log fully copied and starts it again from the beginning. While the writer stays
/// busy and the log holds more than `BACKGROUND_CHECKPOINT_PAGES` not yet copied, a connection
/// of its own (`own`) copies them beside the writer, which a passive checkpoint never blocks:
/// the writer's own checkpoint at `CHECKPOINT_PAGES`, which still bounds the log, then finds
/// little left to copy. Ends when the catalogue is closed or dropped.
async fn checkpointer(
    write: SqlitePool,
    mut own: SqliteConnection,
    log_index: PathBuf,
    activity: Weak<WriterActivity>,
) {
    let mut tick = tokio::time::interval(IDLE_BEFORE_CHECKPOINT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(activity) = activity.upgrade() else {
            break;
        };
        if write.is_closed() {
            break;
        }
        if !activity.dirty.load(Ordering::Relaxed) {
            continue;
        }
        let result = if activity.idle_for() >= IDLE_BEFORE_CHECKPOINT {
            let Some(mut conn) = write.try_acquire() else {
                continue;
            };
            activity.dirty.store(false, Ordering::Relaxed);
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut *conn)
                .await
        } else if log_pages(&log_index).is_some_and(|p| p.backlog() >= BACKGROUND_CHECKPOINT_PAGES)
        {
            activity
                .background_checkpoints
                .fetch_add(1, Ordering::Relaxed);
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut own)
                .await
        } else {
            continue;
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "checkpointing the catalogue's log failed");
        }
    }
    let _ = sqlx::Connection::close(own).await;
}

/// The log's pages and how many of them a checkpoint has copied into the database file, read
/// from the wal-index (the `-shm` file SQLite shares between its connections). Its layout is
/// part of SQLite's documented file format (walformat.html, "the WAL-index header" and
/// "WalCkptInfo"): `mxFrame` at byte 16 and `nBackfill` at byte 96, in native byte order. A
/// torn read only delays or advances one checkpoint; `None` when the file cannot be read.
fn log_pages(log_index: &Path) -> Option<LogPages> {
    let mut header = [0u8; 100];
    std::fs::File::open(log_index)
        .ok()?
        .read_exact_at(&mut header, 0)
        .ok()?;
    let word = |at: usize| u32::from_ne_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    Some(LogPages {
        logged: word(16),
        copied: word(96),
    })
}

/// What `log_pages` read.
#[derive(Clone, Copy, Debug)]
struct LogPages {
    logged: u32,
    copied: u32,
}

impl LogPages {
    fn backlog(self) -> u32 {
        self.logged.saturating_sub(self.copied)
    }
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
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", CHECKPOINT_PAGES.to_string()),
            )
            .await?;
        MIGRATIONS.run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone().read_only(true))
            .await?;
        let activity = Arc::new(WriterActivity {
            opened: Instant::now(),
            last_begin_ms: AtomicU64::new(0),
            dirty: AtomicBool::new(true),
            background_checkpoints: AtomicU64::new(0),
        });
        // A connection of the writer's kind, used for nothing but checkpoints.
        let own = options.clone().read_only(false).connect().await?;
        tokio::spawn(checkpointer(
            write.clone(),
            own,
            log_index_path(path),
            Arc::downgrade(&activity),
        ));
        Ok(Catalogue {
            write,
            read,
            activity,
        })
    }

    /// Starts a write transaction whose commit is synced to disk before it returns. Writers are
    /// serialised; keep transactions short and never hold one across storage I/O.
    pub async fn begin(&self) -> Result<Tx> {
        self.activity.touch();
        Ok(self
            .write
            .begin_with("PRAGMA synchronous = FULL; BEGIN")
            .await?)
    }

    /// Starts a write transaction whose commit is not synced: a power loss (not a crash of the
    /// process) may undo it. Only for work that is decided again when undone and that nothing
    /// irreversible follows before a synced commit: the collector's reviews. The storage
    /// drainer claims the keys it deletes in a synced transaction, and in WAL mode a synced
    /// commit makes every earlier commit durable with it, so bytes are never deleted on the word
    /// of a commit that could still be lost.
    pub async fn begin_unsynced(&self) -> Result<Tx> {
        self.activity.touch();
        Ok(self
            .write
            .begin_with("PRAGMA synchronous = NORMAL; BEGIN")
            .await?)
    }

    /// A connection for reads that need no consistency with a later write.
    pub async fn reader(&self) -> Result<sqlx::pool::PoolConnection<Sqlite>> {
        Ok(self.read.acquire().await?)
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
        let mut conn = self.read.acquire().await?;
        let mut out = Vec::new();
        for t in TABLES {
            // Table names come from the constant list above, never from input.
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
                    .fetch_one(&mut *conn)
                    .await?;
            out.push((t, n));
        }
        Ok(out)
    }

    /// Closes both pools, waiting for connections to be returned.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// The wal-index of the database at `db`: SQLite names it after the database, `-shm` appended.
fn log_index_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-shm");
    PathBuf::from(name)
}

/// Converts a stored digest string back into a typed digest.
pub(crate) fn digest_col(s: &str) -> Result<shipshape_oci::Digest> {
    s.parse()
        .map_err(|e| MetaError::Corrupt(format!("digest {s:?}: {e}")))
}

/// Commits a write transaction.
pub async fn commit(tx: Tx) -> Result<()> {
    Ok(tx.commit().await?)
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// The writer, which alone commits and so alone checkpoints on commit, has the larger mark;
    /// SQLite would otherwise checkpoint every 1 000 pages.
    #[tokio::test]
    async fn the_writer_checkpoints_only_past_its_own_mark() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalogue::open_sqlite(&dir.path().join("catalogue.db"))
            .await
            .unwrap();
        let mut conn = cat.write.acquire().await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(pages, i64::from(CHECKPOINT_PAGES));
        drop(conn);
        cat.close().await;
    }

    /// A writer that never rests (no idle checkpoint) and writes far less than its own mark (no
    /// checkpoint on commit) must still get its log copied: by the checkpointer's connection,
    /// beside it, once the backlog passes `BACKGROUND_CHECKPOINT_PAGES`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_writer_gets_its_backlog_copied_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("catalogue.db");
        let cat = Catalogue::open_sqlite(&db).await.unwrap();
        let log_index = log_index_path(&db);
        let size = || std::fs::metadata(&db).unwrap().len();
        let before = size();
        let mut written = 0u32;
        while cat.activity.background_checkpoints.load(Ordering::Relaxed) == 0 || size() <= before {
            let pages = log_pages(&log_index).expect("the wal-index is readable");
            assert!(
                pages.logged < CHECKPOINT_PAGES,
                "the log reached the writer's own mark ({pages:?}) before the checkpointer \
                 copied it"
            );
            let mut tx = cat.begin_unsynced().await.unwrap();
            for _ in 0..50 {
                let name: RepoName = format!("team-{written:06}/service-with-a-longish-name")
                    .parse()
                    .unwrap();
                repos::get_or_create(&mut tx, &name, 0).await.unwrap();
                written += 1;
            }
            commit(tx).await.unwrap();
        }
        cat.close().await;
    }
}
