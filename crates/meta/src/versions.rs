//! Change counters in `catalogue_versions`, one per kind of slowly changing data that every
//! node caches (the applied policies, accounts and roles): a node that read it at another
//! version reads it again.

use crate::db::{execute, values};
use crate::{Conn, Result};

/// Counts a change of `name`.
pub(crate) async fn bump(conn: &mut dyn Conn, name: &str) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "INSERT INTO catalogue_versions (name, version) VALUES ($1, 1)
         ON CONFLICT (name) DO UPDATE SET version = catalogue_versions.version + 1",
    )
    .bind(name))?;
    Ok(())
}

/// How many times `name` has changed (0 before the first change).
pub(crate) async fn get(conn: &mut dyn Conn, name: &str) -> Result<i64> {
    let v: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT version FROM catalogue_versions WHERE name = $1"
    )
    .bind(name))?;
    Ok(v.unwrap_or(0))
}
