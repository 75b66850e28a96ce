//! Telling a cache in front of the catalogue that what it holds may be out of date.
//!
//! [`Changes`] is a generation: it moves on every commit this process makes that may change
//! what a manifest read answers (all but those that say they leave the figures,
//! `Tx::leaves_figures`) and, on PostgreSQL, on every change notice the database sends for a
//! commit of any node (the triggers of migration `20261205000000_change_notices.sql` send one,
//! on channel [`CHANNEL`], for each transaction that changes repositories, tags or manifests).
//! A cache
//! stamps what it keeps with the generation read *before* its query, and an entry is good only
//! while the generation has not moved: a commit the query may have missed moves it after the
//! stamp was read, either here (this process's commits, before the request that made them is
//! answered) or when its notice arrives (another node's).
//!
//! Notices are not replayed: while the listening connection is down, [`Changes::stamp`] says
//! none may be trusted, and the generation moves again once it listens anew. On SQLite, which
//! another process (an operator's tool) may write without telling this one, there are no
//! notices and nothing may be cached.

use std::sync::Weak;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::db::{Dialect, values};
use crate::{CatalogueStats, Conn, Result};

/// The channel the catalogue's triggers notify.
pub const CHANNEL: &str = "shipshape_changes";

/// The `application_name` of the connection that listens, as `pg_stat_activity` shows it.
pub const LISTENER_NAME: &str = "shipshape-changes";

#[derive(Debug, Default)]
pub struct Changes {
    generation: AtomicU64,
    /// Notices are being received: set once `LISTEN` has been answered, cleared as soon as the
    /// connection is found lost.
    listening: AtomicBool,
    /// Notices received, for the metrics.
    notices: AtomicU64,
    /// The longest an entry may answer without a notice (one lost on a connection that hangs
    /// rather than fails).
    ttl: Duration,
}

impl Changes {
    pub(crate) fn with_ttl(ttl: Duration) -> Self {
        Changes {
            ttl,
            ..Changes::default()
        }
    }

    /// How long an entry may answer at most.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The generation to stamp a cached answer with, read before the query that makes it;
    /// `None` when nothing may be cached now.
    pub fn stamp(&self) -> Option<u64> {
        // The flag is read after the generation: a loss noticed in between has moved the
        // generation too, so a stamp read here is out of date from the start.
        let g = self.generation.load(Ordering::Acquire);
        self.listening.load(Ordering::Acquire).then_some(g)
    }

    /// Whether an entry stamped `stamp` is still good.
    pub fn current(&self, stamp: u64) -> bool {
        self.stamp() == Some(stamp)
    }

    /// Notices received since start.
    pub fn notices(&self) -> u64 {
        self.notices.load(Ordering::Relaxed)
    }

    /// Whether notices are being received (always false on SQLite).
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    pub(crate) fn moved(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn listen(&self) {
        self.moved();
        self.listening.store(true, Ordering::Release);
    }

    fn lost(&self) {
        self.listening.store(false, Ordering::Release);
        self.moved();
    }
}

/// Keeps one connection listening on [`CHANNEL`] for as long as the catalogue is open,
/// reconnecting with back-off when it is lost.
pub(crate) async fn listen(pool: PgPool, stats: Weak<CatalogueStats>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match subscribe(&pool).await {
            Ok(l) => l,
            Err(_) if pool.is_closed() => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "cannot listen for the catalogue's change notices; manifests are not cached meanwhile");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let Some(s) = stats.upgrade() else { return };
        s.changes.listen();
        drop(s);
        let ended = loop {
            match listener.try_recv().await {
                Ok(Some(_)) => {
                    let Some(s) = stats.upgrade() else { return };
                    s.changes.notices.fetch_add(1, Ordering::Relaxed);
                    s.changes.moved();
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        let Some(s) = stats.upgrade() else { return };
        s.changes.lost();
        drop(s);
        if pool.is_closed() {
            return;
        }
        match ended {
            Some(e) => {
                tracing::warn!(error = %e, "lost the catalogue's change notices; listening again")
            }
            None => tracing::warn!(
                "the connection listening for the catalogue's change notices was closed; listening again"
            ),
        }
    }
}

async fn subscribe(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection returns at once, so that nothing is cached until `LISTEN` is answered
    // on a new one (by default sqlx reconnects first, and the gap would go unseen).
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// The server processes of the connections listening for change notices on this database:
/// one per node that may cache (none on SQLite). What shows which nodes are told of changes.
pub async fn listeners(conn: &mut dyn Conn) -> Result<Vec<i32>> {
    Ok(values!(conn, fetch_all, |cx| sqlx::query_scalar(cx.pick(
        "SELECT 0 WHERE 0 AND $1",
        "SELECT pid FROM pg_stat_activity
         WHERE application_name = $1 AND datname = current_database() ORDER BY pid"
    ))
    .bind(LISTENER_NAME))?)
}

/// Ends one of those connections, as a restart of PostgreSQL or a network fault would (its node
/// stops caching and listens again); false when `pid` is not one of them. The recovery's test
/// uses it.
pub async fn end_listener(conn: &mut dyn Conn, pid: i32) -> Result<bool> {
    let ended: Option<bool> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(cx.pick(
        "SELECT 0 WHERE 0 AND $1 AND $2",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE pid = $2 AND application_name = $1 AND datname = current_database()"
    ))
    .bind(LISTENER_NAME)
    .bind(pid))?;
    Ok(ended.unwrap_or(false))
}
