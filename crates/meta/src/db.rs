//! The catalogue's own connection and transaction types. Every function of the aggregates takes
//! `&mut dyn Conn`: a write transaction (`Tx`) or a read connection (`Reader`), whichever the
//! caller holds. Nothing outside this crate names the database driver; the backend a
//! connection speaks (SQLite or PostgreSQL) is known only here.
//!
//! One SQL text serves both backends wherever the two agree (`$N` placeholders, `ON CONFLICT`,
//! `RETURNING`, integer milliseconds bound from the clock). A statement runs through one of
//! the macros below, which build the query once per backend and return backend-neutral rows
//! ([`Row`]). Where the dialects differ, [`Dialect::pick`] chooses between two static texts
//! kept side by side.

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection};

use crate::{MetaError, Result};

/// The connection underneath a [`Conn`], by backend.
#[doc(hidden)]
pub enum Backend<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

/// A connection the catalogue's functions run on: a `Tx` or a `Reader`.
pub trait Conn: Send {
    /// The driver's connection underneath; only this crate's queries use it.
    #[doc(hidden)]
    fn backend(&mut self) -> Backend<'_>;

    /// Where `events::record` leaves what it recorded, to be logged once the transaction
    /// commits; `None` on a connection that cannot commit.
    #[doc(hidden)]
    fn recorded(&mut self) -> Option<&mut Vec<crate::events::Recorded>> {
        None
    }
}

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// A write transaction. Commit it with [`crate::commit`]; dropping it rolls it back.
pub struct Tx(
    pub(crate) TxInner,
    /// Activity-log entries written in it: logged after the commit, so a dry run or a
    /// preview (rolled back) and a failed change log nothing.
    pub(crate) Vec<crate::events::Recorded>,
    /// Counts the commit (what a cache of figures over the whole catalogue compares).
    pub(crate) std::sync::Arc<crate::CatalogueStats>,
    /// Set by [`Tx::leaves_figures`]: the commit is not counted.
    pub(crate) bool,
);

impl Tx {
    /// Says that this transaction writes nothing the storage figures read (`usage`): pull
    /// counts, login and session times, claims on the collector's queues; so nothing a
    /// manifest read answers either (repositories, tags, manifests). Its commit then leaves
    /// figures cached over the whole catalogue current, and the manifest cache too: such
    /// writes come every few seconds on a busy or even an idle registry (the collector's
    /// worker claims, finding nothing), and each would otherwise make the next page that shows
    /// figures walk the catalogue again.
    pub fn leaves_figures(&mut self) {
        self.3 = true;
    }
}

impl Conn for Tx {
    fn backend(&mut self) -> Backend<'_> {
        match &mut self.0 {
            TxInner::Sqlite(tx) => Backend::Sqlite(tx),
            TxInner::Postgres(tx) => Backend::Postgres(tx),
        }
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

pub(crate) enum ReaderInner {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

/// A connection for reads that need no consistency with a later write.
pub struct Reader(pub(crate) ReaderInner);

impl Conn for Reader {
    fn backend(&mut self) -> Backend<'_> {
        match &mut self.0 {
            ReaderInner::Sqlite(c) => Backend::Sqlite(c),
            ReaderInner::Postgres(c) => Backend::Postgres(c),
        }
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reader")
    }
}

/// Rolls a transaction back now (dropping it does too, later).
pub async fn rollback(tx: Tx) -> Result<()> {
    match tx.0 {
        TxInner::Sqlite(tx) => tx.rollback().await,
        TxInner::Postgres(tx) => tx.rollback().await,
    }
    .map_err(MetaError::from)
}

/// Which SQL a backend speaks, where the two differ.
pub(crate) trait Dialect {
    const POSTGRES: bool;

    fn postgres(&self) -> bool {
        Self::POSTGRES
    }

    /// SQLite's text or PostgreSQL's, for the backend of this connection.
    fn pick(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        if Self::POSTGRES { postgres } else { sqlite }
    }

    /// The text of a [`dual!`] statement for the backend of this connection.
    fn sql(&self, (sqlite, postgres): (&'static str, &'static str)) -> &'static str {
        self.pick(sqlite, postgres)
    }
}

impl Dialect for SqliteConnection {
    const POSTGRES: bool = false;
}

impl Dialect for PgConnection {
    const POSTGRES: bool = true;
}

/// A result row of either backend.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

/// A column type both backends decode.
pub(crate) trait Col<'r>:
    sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>
{
}

impl<'r, T> Col<'r> for T where
    T: sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
{
}

impl Row {
    /// The named column, decoded; a value that does not decode is a corrupt row.
    pub(crate) fn try_get<'r, T: Col<'r>>(&'r self, column: &str) -> Result<T> {
        match self {
            Row::Sqlite(r) => sqlx::Row::try_get(r, column),
            Row::Postgres(r) => sqlx::Row::try_get(r, column),
        }
        .map_err(MetaError::from)
    }

    /// The column at `index`, decoded.
    pub(crate) fn try_get_at<'r, T: Col<'r>>(&'r self, index: usize) -> Result<T> {
        match self {
            Row::Sqlite(r) => sqlx::Row::try_get(r, index),
            Row::Postgres(r) => sqlx::Row::try_get(r, index),
        }
        .map_err(MetaError::from)
    }
}

/// Turns a driver's rows into [`Row`]s; what the macros below return.
#[doc(hidden)]
pub(crate) trait Wrap {
    type Out;
    fn wrap(self) -> Self::Out;
}

impl Wrap for SqliteRow {
    type Out = Row;
    fn wrap(self) -> Row {
        Row::Sqlite(self)
    }
}

impl Wrap for PgRow {
    type Out = Row;
    fn wrap(self) -> Row {
        Row::Postgres(self)
    }
}

impl<T: Wrap> Wrap for Option<T> {
    type Out = Option<T::Out>;
    fn wrap(self) -> Self::Out {
        self.map(Wrap::wrap)
    }
}

impl<T: Wrap> Wrap for Vec<T> {
    type Out = Vec<T::Out>;
    fn wrap(self) -> Self::Out {
        self.into_iter().map(Wrap::wrap).collect()
    }
}

/// What a statement changed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Done(u64);

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.0
    }
}

impl From<sqlx::sqlite::SqliteQueryResult> for Done {
    fn from(r: sqlx::sqlite::SqliteQueryResult) -> Self {
        Done(r.rows_affected())
    }
}

impl From<sqlx::postgres::PgQueryResult> for Done {
    fn from(r: sqlx::postgres::PgQueryResult) -> Self {
        Done(r.rows_affected())
    }
}

/// Runs a `sqlx::query(…)` built once per backend with `$fetch` (`fetch_one`, `fetch_optional`,
/// `fetch_all`) and returns [`Row`]s. `$c` names the backend's connection inside `$q`, for
/// [`Dialect::pick`].
macro_rules! rows {
    ($conn:expr, $fetch:ident, |$c:ident| $q:expr) => {
        match $crate::db::Conn::backend(&mut *$conn) {
            $crate::db::Backend::Sqlite($c) => {
                let q = $q;
                q.$fetch($c).await.map($crate::db::Wrap::wrap)
            }
            $crate::db::Backend::Postgres($c) => {
                let q = $q;
                q.$fetch($c).await.map($crate::db::Wrap::wrap)
            }
        }
    };
}

/// Runs a `sqlx::query_scalar(…)` or `sqlx::query_as(…)` built once per backend; the values
/// are the same types on both.
macro_rules! values {
    ($conn:expr, $fetch:ident, |$c:ident| $q:expr) => {
        match $crate::db::Conn::backend(&mut *$conn) {
            $crate::db::Backend::Sqlite($c) => {
                let q = $q;
                q.$fetch($c).await
            }
            $crate::db::Backend::Postgres($c) => {
                let q = $q;
                q.$fetch($c).await
            }
        }
    };
}

/// Executes a statement built once per backend; returns what it changed ([`Done`]).
macro_rules! execute {
    ($conn:expr, |$c:ident| $q:expr) => {
        match $crate::db::Conn::backend(&mut *$conn) {
            $crate::db::Backend::Sqlite($c) => {
                let q = $q;
                q.execute($c).await.map($crate::db::Done::from)
            }
            $crate::db::Backend::Postgres($c) => {
                let q = $q;
                q.execute($c).await.map($crate::db::Done::from)
            }
        }
    };
}

/// One statement in both dialects: `(SQLite's text, PostgreSQL's)`, written once as string
/// literals with the few constructs that differ named between them:
/// - `ids(N)` / `texts(N)`: the set of integers / strings of parameter `$N`, a JSON array
///   (a batch travels as one parameter): `(SELECT value FROM json_each($N))` on SQLite;
/// - `json_rows(N)`: the rows of parameter `$N`, a JSON array of arrays, each row's `value`
///   read with `value ->> i` (cast numbers: PostgreSQL's `->>` gives text);
/// - `greatest` / `least`: the largest / smallest of their arguments (SQLite's scalar `max` /
///   `min`);
/// - `cross_join`: a join in the order written (SQLite's planner takes `CROSS JOIN` as the
///   order to run; PostgreSQL plans it itself);
/// - `group_concat`: the concatenation aggregate (`group_concat` / `string_agg`);
/// - `skip_locked`: a claim's rows are locked and rows another transaction holds are passed
///   over (`FOR UPDATE SKIP LOCKED`, PostgreSQL's; SQLite's single writer claims alone);
/// - `name!()`: a macro that expands to a string literal the same on both.
macro_rules! dual {
    (@$d:ident [$($acc:expr),*]) => { concat!($($acc),*) };
    (@$d:ident [$($acc:expr),*] $lit:literal $($rest:tt)*) => {
        $crate::db::dual!(@$d [$($acc,)* $lit] $($rest)*)
    };
    (@$d:ident [$($acc:expr),*] $m:ident ! () $($rest:tt)*) => {
        $crate::db::dual!(@$d [$($acc,)* $m!()] $($rest)*)
    };
    (@sqlite [$($acc:expr),*] ids($n:literal) $($rest:tt)*) => {
        $crate::db::dual!(@sqlite [$($acc,)* "(SELECT value FROM json_each($", $n, "))"] $($rest)*)
    };
    (@postgres [$($acc:expr),*] ids($n:literal) $($rest:tt)*) => {
        $crate::db::dual!(@postgres [$($acc,)*
            "(SELECT CAST(value AS BIGINT) FROM json_array_elements_text($", $n, "::json))"] $($rest)*)
    };
    (@sqlite [$($acc:expr),*] texts($n:literal) $($rest:tt)*) => {
        $crate::db::dual!(@sqlite [$($acc,)* "(SELECT value FROM json_each($", $n, "))"] $($rest)*)
    };
    (@postgres [$($acc:expr),*] texts($n:literal) $($rest:tt)*) => {
        $crate::db::dual!(@postgres [$($acc,)*
            "(SELECT value FROM json_array_elements_text($", $n, "::json))"] $($rest)*)
    };
    (@sqlite [$($acc:expr),*] json_rows($n:literal) $($rest:tt)*) => {
        $crate::db::dual!(@sqlite [$($acc,)* "json_each($", $n, ")"] $($rest)*)
    };
    (@postgres [$($acc:expr),*] json_rows($n:literal) $($rest:tt)*) => {
        $crate::db::dual!(@postgres [$($acc,)* "json_array_elements($", $n, "::json)"] $($rest)*)
    };
    (@sqlite [$($acc:expr),*] greatest $($rest:tt)*) => {
        $crate::db::dual!(@sqlite [$($acc,)* "max"] $($rest)*)
    };
    (@postgres [$($acc:expr),*] greatest $($rest:tt)*) => {
        $crate::db::dual!(@postgres [$($acc,)* "greatest"] $($rest)*)
    };
    (@sqlite [$($acc:expr),*] least $($rest:tt)*) => {
        $crate::db::dual!(@sqlite [$($acc,)* "min"] $($rest)*)
    };
    (@postgres [$($acc:expr),*] least $($rest:tt)*) => {
        $crate::db::dual!(@postgres [$($acc,)* "least"] $($rest)*)
    };
    (@sqlite [$($acc:expr),*] cross_join $($rest:tt)*) => {
        $crate::db::dual!(@sqlite [$($acc,)* "CROSS JOIN"] $($rest)*)
    };
    (@postgres [$($acc:expr),*] cross_join $($rest:tt)*) => {
        $crate::db::dual!(@postgres [$($acc,)* "JOIN"] $($rest)*)
    };
    (@sqlite [$($acc:expr),*] skip_locked $($rest:tt)*) => {
        $crate::db::dual!(@sqlite [$($acc,)* ""] $($rest)*)
    };
    (@postgres [$($acc:expr),*] skip_locked $($rest:tt)*) => {
        $crate::db::dual!(@postgres [$($acc,)* " FOR UPDATE SKIP LOCKED"] $($rest)*)
    };
    (@sqlite [$($acc:expr),*] group_concat $($rest:tt)*) => {
        $crate::db::dual!(@sqlite [$($acc,)* "group_concat"] $($rest)*)
    };
    (@postgres [$($acc:expr),*] group_concat $($rest:tt)*) => {
        $crate::db::dual!(@postgres [$($acc,)* "string_agg"] $($rest)*)
    };
    ($($piece:tt)*) => {
        (
            $crate::db::dual!(@sqlite [] $($piece)*),
            $crate::db::dual!(@postgres [] $($piece)*),
        )
    };
}

pub(crate) use {dual, execute, rows, values};

#[cfg(test)]
mod tests {
    #[test]
    fn a_dual_statement_names_each_dialects_constructs() {
        let (sqlite, postgres) =
            dual!("DELETE FROM t WHERE id IN " ids(1) " AND x = " greatest "(a, b)");
        assert_eq!(
            sqlite,
            "DELETE FROM t WHERE id IN (SELECT value FROM json_each($1)) AND x = max(a, b)"
        );
        assert_eq!(
            postgres,
            "DELETE FROM t WHERE id IN (SELECT CAST(value AS BIGINT) FROM \
             json_array_elements_text($1::json)) AND x = greatest(a, b)"
        );
    }
}
