//! Repositories: created on first write, listed by `_catalog`.

use shipshape_oci::RepoName;
use sqlx::Row;

use crate::{Conn, Millis, Result};

/// Row id of a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepoId(pub i64);

pub async fn find(conn: &mut Conn, name: &RepoName) -> Result<Option<RepoId>> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
        .bind(name.as_str())
        .fetch_optional(conn)
        .await?;
    Ok(id.map(RepoId))
}

pub async fn get_or_create(conn: &mut Conn, name: &RepoName, now: Millis) -> Result<RepoId> {
    sqlx::query(
        "INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let id: i64 = sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
        .bind(name.as_str())
        .fetch_one(conn)
        .await?;
    Ok(RepoId(id))
}

/// Repository names after `last` in byte order, at most `limit`.
pub async fn list(conn: &mut Conn, last: Option<&str>, limit: i64) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?")
        .bind(last.unwrap_or(""))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
}
