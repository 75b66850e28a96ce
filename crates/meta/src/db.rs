//! The catalogue's own connection and transaction types. Every function of the aggregates takes
//! `&mut dyn Conn`: a write transaction (`Tx`) or a read connection (`Reader`), whichever the
//! caller holds. Nothing outside this crate names the database driver; the backend a
//! connection speaks is known only here, where a PostgreSQL variant sits beside SQLite's.

use sqlx::Sqlite;
use sqlx::pool::PoolConnection;

use crate::{MetaError, Result};

/// A connection the catalogue's functions run on: a `Tx` or a `Reader`.
pub trait Conn: Send {
    /// The SQLite connection underneath; only this crate's queries use it.
    #[doc(hidden)]
    fn sqlite(&mut self) -> &mut sqlx::SqliteConnection;

    /// Where `events::record` leaves what it recorded, to be logged once the transaction
    /// commits; `None` on a connection that cannot commit.
    #[doc(hidden)]
    fn recorded(&mut self) -> Option<&mut Vec<crate::events::Recorded>> {
        None
    }
}

/// A write transaction. Commit it with [`crate::commit`]; dropping it rolls it back.
pub struct Tx(
    pub(crate) sqlx::Transaction<'static, Sqlite>,
    /// Activity-log entries written in it: logged after the commit, so a dry run or a
    /// preview (rolled back) and a failed change log nothing.
    pub(crate) Vec<crate::events::Recorded>,
);

impl Conn for Tx {
    fn sqlite(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.0
    }

    fn recorded(&mut self) -> Option<&mut Vec<crate::events::Recorded>> {
        Some(&mut self.1)
    }
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tx")
    }
}

/// A connection for reads that need no consistency with a later write.
pub struct Reader(pub(crate) PoolConnection<Sqlite>);

impl Conn for Reader {
    fn sqlite(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.0
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reader")
    }
}

/// Rolls a transaction back now (dropping it does too, later).
pub async fn rollback(tx: Tx) -> Result<()> {
    tx.0.rollback().await.map_err(MetaError::from)
}
