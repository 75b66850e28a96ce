//! The catalogue: every fact about repositories, blobs, manifests, references, tags, upload
//! sessions and the activity log. All SQL of the project lives in this crate, one module per
//! aggregate. Functions take a connection (usually a transaction the caller owns), so a
//! check-then-act happens in one transaction.
//!
//! On SQLite, writes go through a pool of exactly one connection: the database has a single
//! writer anyway, and serialising in-process avoids lock-upgrade failures. Reads use a separate
//! pool and never block writers (WAL). The writer checkpoints the log itself, after the commit
//! that crosses SQLite's threshold: a checkpoint from another connection cannot restart the log
//! while the writer keeps appending, and under sustained writes the log grew without bound.

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

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

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
            .connect_with(options.clone())
            .await?;
        MIGRATIONS.run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Catalogue { write, read })
    }

    /// Starts a write transaction whose commit is synced to disk before it returns. Writers are
    /// serialised; keep transactions short and never hold one across storage I/O.
    pub async fn begin(&self) -> Result<Tx> {
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

/// Converts a stored digest string back into a typed digest.
pub(crate) fn digest_col(s: &str) -> Result<shipshape_oci::Digest> {
    s.parse()
        .map_err(|e| MetaError::Corrupt(format!("digest {s:?}: {e}")))
}

/// Commits a write transaction.
pub async fn commit(tx: Tx) -> Result<()> {
    Ok(tx.commit().await?)
}
