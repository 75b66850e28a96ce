//! A whole catalogue copied out and into another, whatever the two backends: what
//! `shipshape export` and `shipshape import` move a registry with (SQLite ⇄ PostgreSQL).
//!
//! Every table that says something about the registry's content, its history, its accounts and
//! its runs travels, row by row, column by column ([`TABLES`]). Ids travel unchanged, so every
//! reference between rows holds (tags to manifests, history to batches, role bindings to
//! `user:ID`). What belongs to one installation stays behind: upload sessions (their bytes are
//! in the old store; clients start them again), storage deletions queued for the old store, the
//! catalogue's binding to one node's disk, and web UI sessions (users log in again).
//!
//! Values travel as JSON: integers and flags as numbers and booleans, text as strings, bytes
//! (a manifest's payload) as base64.

use base64::Engine as _;
use futures::TryStreamExt as _;
use serde_json::Value;
use sqlx::{Postgres, Sqlite};

use crate::db::{Backend, Conn, Dialect, Row, execute, values};
use crate::{Catalogue, MetaError, Pools, Result};

/// How a column's values are typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Bytes,
    Bool,
}

/// One table that travels: its columns, in the order rows are written, and the order rows are
/// read in (the primary key, so two exports of one state are the same files).
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    order: &'static str,
    /// Its `id` is an identity column, whose sequence must continue past the imported ids.
    identity: bool,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(c, _)| *c == name)
    }

    pub fn column_names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|(c, _)| *c).collect()
    }

    fn select_sql(&self) -> String {
        format!(
            "SELECT {} FROM {} ORDER BY {}",
            self.column_names().join(", "),
            self.name,
            self.order
        )
    }

    fn insert_sql(&self) -> String {
        let params: Vec<String> = (1..=self.columns.len()).map(|i| format!("${i}")).collect();
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.name,
            self.column_names().join(", "),
            params.join(", ")
        )
    }
}

use Kind::{Bool, Bytes, Int, Text};

macro_rules! table {
    ($name:literal, order $order:literal, identity $identity:literal, [$(($col:literal, $kind:expr)),* $(,)?]) => {
        Table { name: $name, order: $order, identity: $identity, columns: &[$(($col, $kind)),*] }
    };
}

/// The tables that travel, in an order that inserts every row after the rows it references.
pub static TABLES: &[Table] = &[
    table!("repositories", order "id", identity true, [
        ("id", Int), ("name", Text), ("created_at", Int), ("deleted_at", Int),
    ]),
    table!("blobs", order "digest", identity false, [
        ("digest", Text), ("size", Int), ("storage_key", Text), ("created_at", Int),
        ("state", Text),
    ]),
    table!("repository_blobs", order "repository_id, digest", identity false, [
        ("repository_id", Int), ("digest", Text), ("created_at", Int), ("renewed_at", Int),
    ]),
    table!("manifests", order "id", identity true, [
        ("id", Int), ("repository_id", Int), ("digest", Text), ("media_type", Text),
        ("artifact_type", Text), ("size", Int), ("payload", Bytes), ("subject_digest", Text),
        ("annotations", Text), ("created_at", Int), ("last_pulled_at", Int),
        ("deleted_at", Int), ("pull_count", Int), ("pushed_at", Int),
    ]),
    table!("manifest_blob_references", order "manifest_id, blob_digest", identity false, [
        ("manifest_id", Int), ("blob_digest", Text),
    ]),
    table!("manifest_child_references", order "parent_id, child_id", identity false, [
        ("parent_id", Int), ("child_id", Int),
    ]),
    table!("tags", order "repository_id, name", identity false, [
        ("repository_id", Int), ("name", Text), ("manifest_id", Int), ("pushed_at", Int),
        ("last_pulled_at", Int), ("pull_count", Int),
    ]),
    table!("batches", order "id", identity true, [
        ("id", Int), ("action", Text), ("repository_id", Int), ("actor", Text), ("at", Int),
        ("actor_id", Text),
    ]),
    table!("tag_history", order "id", identity true, [
        ("id", Int), ("repository_id", Int), ("tag", Text), ("action", Text),
        ("from_digest", Text), ("to_digest", Text), ("actor", Text), ("at", Int),
        ("from_pushed_at", Int), ("from_last_pulled_at", Int), ("from_pull_count", Int),
        ("batch", Int), ("actor_id", Text),
    ]),
    table!("events", order "id", identity true, [
        ("id", Int), ("at", Int), ("actor", Text), ("source", Text), ("action", Text),
        ("repository", Text), ("target", Text), ("digest", Text), ("reason", Text),
        ("actor_id", Text),
    ]),
    // The collector's queues: what waits for review here waits there, or garbage would stay.
    table!("gc_blob_reviews", order "digest", identity false, [
        ("digest", Text), ("queued_at", Int), ("not_before", Int), ("reason", Text),
        ("attempts", Int),
    ]),
    table!("gc_manifest_reviews", order "manifest_id", identity false, [
        ("manifest_id", Int), ("queued_at", Int), ("not_before", Int), ("reason", Text),
        ("attempts", Int),
    ]),
    table!("gc_link_reviews", order "digest, repository_id", identity false, [
        ("digest", Text), ("repository_id", Int),
    ]),
    table!("gc_runs", order "id", identity true, [
        ("id", Int), ("state", Text), ("dry_run", Bool), ("include_untagged", Bool),
        ("sweep", Bool), ("grace_ms", Int), ("started_by", Text), ("started_at", Int),
        ("finished_at", Int), ("manifests_deleted", Int), ("blobs_deleted", Int),
        ("bytes_deleted", Int), ("links_deleted", Int), ("uploads_deleted", Int),
        ("orphans_deleted", Int), ("reviewed", Int), ("errors", Text),
        ("cancel_requested", Bool), ("started_by_id", Text), ("node", Text),
        ("lease_until", Int), ("phase", Text), ("queued_at_start", Int),
    ]),
    table!("gc_run_items", order "id", identity true, [
        ("id", Int), ("run_id", Int), ("kind", Text), ("repository", Text), ("target", Text),
        ("size", Int),
    ]),
    // The storage chart's history goes with the registry it describes.
    table!("storage_samples", order "id", identity true, [
        ("id", Int), ("at", Int), ("slot", Int), ("gc_run_id", Int), ("stored_bytes", Int),
        ("live_bytes", Int), ("held_bytes", Int), ("grace_bytes", Int),
        ("reclaimable_bytes", Int), ("blobs", Int), ("manifests", Int),
    ]),
    table!("policies", order "name", identity false, [
        ("name", Text), ("document", Text), ("schedule", Text), ("next_run_at", Int),
        ("created_at", Int), ("updated_at", Int), ("updated_by", Text), ("updated_by_id", Text),
    ]),
    table!("policy_runs", order "id", identity true, [
        ("id", Int), ("policy", Text), ("document", Text), ("trigger", Text), ("state", Text),
        ("started_by", Text), ("started_at", Int), ("evaluated_at", Int), ("finished_at", Int),
        ("repositories", Int), ("tags_evaluated", Int), ("tags_deleted", Int),
        ("manifests_deleted", Int), ("bytes_freed", Int), ("cancel_requested", Bool),
        ("errors", Text), ("bytes_held", Int), ("repositories_affected", Int),
        ("started_by_id", Text), ("node", Text), ("lease_until", Int),
    ]),
    table!("policy_run_items", order "id", identity true, [
        ("id", Int), ("run_id", Int), ("repository", Text), ("kind", Text), ("target", Text),
        ("digest", Text), ("rule", Text), ("reason", Text),
    ]),
    table!("catalogue_versions", order "name", identity false, [
        ("name", Text), ("version", Int),
    ]),
    table!("users", order "id", identity true, [
        ("id", Int), ("name", Text), ("password_hash", Text), ("admin", Bool),
        ("created_at", Int), ("created_by", Text), ("last_login_at", Int),
    ]),
    table!("robots", order "id", identity true, [
        ("id", Int), ("name", Text), ("secret_hash", Text), ("description", Text),
        ("created_at", Int), ("created_by", Text), ("expires_at", Int), ("revoked_at", Int),
        ("last_used_at", Int),
    ]),
    table!("role_bindings", order "id", identity true, [
        ("id", Int), ("subject", Text), ("pattern", Text), ("role", Text), ("created_at", Int),
        ("created_by", Text),
    ]),
];

/// The tables that stay with their installation (the module's documentation says why).
pub const STAYS: &[&str] = &[
    "uploads",
    "storage_deletions",
    "catalogue_bindings",
    "web_sessions",
];

/// The table of that name, if it travels.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

pub(crate) enum SnapshotInner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// A read-only transaction: every read through it sees the catalogue as it was at its first
/// read, while the registry goes on writing. Dropping it ends it.
pub struct Snapshot(SnapshotInner);

impl Conn for Snapshot {
    fn backend(&mut self) -> Backend<'_> {
        match &mut self.0 {
            SnapshotInner::Sqlite(tx) => Backend::Sqlite(tx),
            SnapshotInner::Postgres(tx) => Backend::Postgres(tx),
        }
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

impl Catalogue {
    /// A consistent view of the whole catalogue, for as long as an export takes.
    ///
    /// On PostgreSQL it is a REPEATABLE READ transaction, and the statement and idle timeouts
    /// that bound the nodes' transactions are lifted for it: reading a large table is one long
    /// statement. On SQLite, a read transaction in WAL mode: the log cannot be checkpointed past
    /// it meanwhile, so it grows while the export reads.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let inner = match &self.pools {
            Pools::Sqlite { read, .. } => SnapshotInner::Sqlite(read.begin_with("BEGIN").await?),
            Pools::Postgres(pool) => SnapshotInner::Postgres(
                pool.begin_with(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
                     SET LOCAL statement_timeout = 0; \
                     SET LOCAL idle_in_transaction_session_timeout = 0",
                )
                .await?,
            ),
        };
        Ok(Snapshot(inner))
    }
}

/// Reads every row of `table`, in key order, handing each to `each` as JSON values in the
/// order of [`Table::columns`]. Rows are streamed: memory stays bounded whatever the table's
/// size. Returns how many rows there were.
pub async fn export_rows<E: From<MetaError>>(
    conn: &mut dyn Conn,
    table: &Table,
    mut each: impl FnMut(Vec<Value>) -> std::result::Result<(), E>,
) -> std::result::Result<u64, E> {
    let sql = table.select_sql();
    let mut n = 0;
    // Table and column names come from `TABLES`, never from input.
    match conn.backend() {
        Backend::Sqlite(c) => {
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(c);
            while let Some(row) = rows.try_next().await.map_err(MetaError::from)? {
                each(to_json(table, &Row::Sqlite(row))?)?;
                n += 1;
            }
        }
        Backend::Postgres(c) => {
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(c);
            while let Some(row) = rows.try_next().await.map_err(MetaError::from)? {
                each(to_json(table, &Row::Postgres(row))?)?;
                n += 1;
            }
        }
    }
    Ok(n)
}

fn to_json(table: &Table, row: &Row) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(table.columns.len());
    for (i, (_, kind)) in table.columns.iter().enumerate() {
        let v = match kind {
            Int => row.try_get_at::<Option<i64>>(i)?.map(Value::from),
            Text => row.try_get_at::<Option<String>>(i)?.map(Value::from),
            Bool => row.try_get_at::<Option<bool>>(i)?.map(Value::from),
            Bytes => row
                .try_get_at::<Option<Vec<u8>>>(i)?
                .map(|b| Value::from(base64::engine::general_purpose::STANDARD.encode(b))),
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(out)
}

/// A typed value to bind, decoded from a row's JSON.
enum Bound {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(Option<bool>),
}

fn from_json(table: &Table, row: Vec<Value>) -> Result<Vec<Bound>> {
    if row.len() != table.columns.len() {
        return Err(MetaError::Corrupt(format!(
            "a row of {} has {} values, not the {} columns {:?}",
            table.name,
            row.len(),
            table.columns.len(),
            table.column_names()
        )));
    }
    let bad = |col: &str, want: &str, v: &Value| {
        MetaError::Corrupt(format!("{}.{col}: expected {want}, found {v}", table.name))
    };
    row.into_iter()
        .zip(table.columns)
        .map(|(v, (col, kind))| {
            Ok(match (kind, v) {
                (Int, Value::Null) => Bound::Int(None),
                (Int, Value::Number(n)) => {
                    Bound::Int(Some(n.as_i64().ok_or_else(|| {
                        bad(col, "an integer", &Value::Number(n.clone()))
                    })?))
                }
                (Text, Value::Null) => Bound::Text(None),
                (Text, Value::String(s)) => Bound::Text(Some(s)),
                (Bool, Value::Null) => Bound::Bool(None),
                (Bool, Value::Bool(b)) => Bound::Bool(Some(b)),
                (Bytes, Value::Null) => Bound::Bytes(None),
                (Bytes, Value::String(s)) => Bound::Bytes(Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(&s)
                        .map_err(|_| bad(col, "base64", &Value::String(s.clone())))?,
                )),
                (Int, v) => return Err(bad(col, "an integer", &v)),
                (Text | Bytes, v) => return Err(bad(col, "a string", &v)),
                (Bool, v) => return Err(bad(col, "true or false", &v)),
            })
        })
        .collect()
}

/// Writes rows of one table into a catalogue, in the transaction the caller owns.
pub struct Importer {
    table: &'static Table,
    sql: String,
}

impl Importer {
    pub fn new(table: &'static Table) -> Self {
        Importer {
            table,
            sql: table.insert_sql(),
        }
    }

    /// Inserts one row given as [`export_rows`] handed it out. A row whose values do not fit
    /// the table's columns is refused (`Corrupt`), as is one the database's constraints refuse.
    pub async fn insert(&self, conn: &mut dyn Conn, row: Vec<Value>) -> Result<()> {
        let values = from_json(self.table, row)?;
        macro_rules! bind_all {
            ($q:expr) => {{
                let mut q = $q;
                for v in &values {
                    q = match v {
                        Bound::Int(v) => q.bind(*v),
                        Bound::Text(v) => q.bind(v.clone()),
                        Bound::Bytes(v) => q.bind(v.clone()),
                        Bound::Bool(v) => q.bind(*v),
                    };
                }
                q
            }};
        }
        execute!(conn, |cx| bind_all!(sqlx::query(sqlx::AssertSqlSafe(
            self.sql.clone()
        ))))?;
        Ok(())
    }
}

/// After an import: identity columns continue past the ids that were inserted with their rows
/// (PostgreSQL's sequences do not follow explicit ids; SQLite's rowids do by themselves).
pub async fn finish_import(conn: &mut dyn Conn) -> Result<()> {
    for t in TABLES.iter().filter(|t| t.identity) {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{0}', 'id'), \
             COALESCE((SELECT max(id) FROM {0}), 0) + 1, false)",
            t.name
        );
        if let Backend::Postgres(c) = conn.backend() {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(c).await?;
        }
    }
    Ok(())
}

/// Every table of the catalogue's schema with its columns, in the schema's order: what a test
/// holds [`TABLES`] and [`STAYS`] against, so that a migration adding a table or a column
/// cannot leave it out of exports unnoticed.
pub async fn schema(conn: &mut dyn Conn) -> Result<Vec<(String, Vec<String>)>> {
    let rows: Vec<(String, String)> = values!(conn, fetch_all, |cx| sqlx::query_as(cx.pick(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
           AND m.name NOT LIKE '\\_sqlx\\_%' ESCAPE '\\'
         ORDER BY m.name, p.cid",
        "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT)
         FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx\\_%' ESCAPE '\\'
         ORDER BY table_name, ordinal_position"
    )))?;
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (table, column) in rows {
        match out.last_mut() {
            Some((t, cols)) if *t == table => cols.push(column),
            _ => out.push((table, vec![column])),
        }
    }
    Ok(out)
}

/// The tables, among those that travel and the upload sessions, that hold any row: an import
/// goes into an empty catalogue only.
pub async fn occupied_tables(conn: &mut dyn Conn) -> Result<Vec<(&'static str, i64)>> {
    let names = TABLES.iter().map(|t| t.name).chain(["uploads"]);
    let mut out = Vec::new();
    for name in names {
        let n: i64 = values!(conn, fetch_one, |cx| sqlx::query_scalar(
            sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {name}"))
        ))?;
        if n > 0 {
            out.push((name, n));
        }
    }
    Ok(out)
}
