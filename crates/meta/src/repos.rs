//! Repositories: created on first write, listed by `_catalog`, soft-deleted as a whole.

use crate::db::{Dialect, dual, execute, rows, values};
use shipshape_oci::RepoName;

use crate::{Conn, Millis, Result};

pub use crate::ids::RepoId;

/// A live repository with its counts, for listings.
#[derive(Clone, Debug)]
pub struct RepoSummary {
    pub name: String,
    pub created_at: Millis,
    pub tags: i64,
    pub manifests: i64,
    /// Live manifests no tag points at (index children and referrers included).
    pub untagged: i64,
    /// The latest push of a tag or manifest.
    pub last_pushed_at: Option<Millis>,
    /// The latest pull of a manifest.
    pub last_pulled_at: Option<Millis>,
}

/// The live repository of that name.
pub async fn find(conn: &mut dyn Conn, name: &RepoName) -> Result<Option<RepoId>> {
    let id: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT id FROM repositories WHERE name = $1 AND deleted_at IS NULL"
    )
    .bind(name.as_str()))?;
    Ok(id.map(RepoId))
}

/// The repository of that name, live or deleted (restores reach into deleted ones).
pub async fn find_any(conn: &mut dyn Conn, name: &RepoName) -> Result<Option<RepoId>> {
    let id: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT id FROM repositories WHERE name = $1"
    )
    .bind(name.as_str()))?;
    Ok(id.map(RepoId))
}

/// The repository, created, or revived if it had been deleted.
pub async fn get_or_create(conn: &mut dyn Conn, name: &RepoName, now: Millis) -> Result<RepoId> {
    execute!(conn, |cx| {
        sqlx::query(
        "INSERT INTO repositories (name, created_at) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET deleted_at = NULL WHERE repositories.deleted_at IS NOT NULL",
    )
    .bind(name.as_str())
    .bind(now)
    })?;
    let id: i64 = values!(conn, fetch_one, |cx| sqlx::query_scalar(
        "SELECT id FROM repositories WHERE name = $1"
    )
    .bind(name.as_str()))?;
    Ok(RepoId(id))
}

/// Hides a repository from clients. Its tags, manifests and links are handled by the caller.
pub async fn mark_deleted(conn: &mut dyn Conn, repo: RepoId, now: Millis) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "UPDATE repositories SET deleted_at = $1 WHERE id = $2"
    )
    .bind(now)
    .bind(repo.0))?;
    Ok(())
}

/// Live repository names after `last` in byte order, at most `limit` (-1: all).
pub async fn list(conn: &mut dyn Conn, last: Option<&str>, limit: i64) -> Result<Vec<String>> {
    let rows = rows!(conn, fetch_all, |cx| {
        sqlx::query(
        "SELECT name FROM repositories WHERE name > $1 AND deleted_at IS NULL ORDER BY name LIMIT $2",
    )
    .bind(last.unwrap_or(""))
    .bind(crate::limit(limit))
    })?;
    rows.iter().map(|r| r.try_get_at::<String>(0)).collect()
}

/// Live repositories with their tag and manifest counts (or only the one named `only`).
pub async fn summaries(
    conn: &mut dyn Conn,
    only: Option<&str>,
    last: Option<&str>,
    limit: i64,
) -> Result<Vec<RepoSummary>> {
    let rows = rows!(conn, fetch_all, |cx| {
        sqlx::query(cx.sql(dual!(
        "SELECT r.name, r.created_at,
                (SELECT count(*) FROM tags t WHERE t.repository_id = r.id) AS tags,
                (SELECT count(*) FROM manifests m
                  WHERE m.repository_id = r.id AND m.deleted_at IS NULL) AS manifests,
                (SELECT count(*) FROM manifests m
                  WHERE m.repository_id = r.id AND m.deleted_at IS NULL
                    AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)) AS untagged,
                nullif(" greatest "(coalesce((SELECT max(pushed_at) FROM tags t WHERE t.repository_id = r.id), 0),
                           coalesce((SELECT max(pushed_at) FROM manifests m
                                     WHERE m.repository_id = r.id AND m.deleted_at IS NULL), 0)),
                       0) AS last_pushed_at,
                (SELECT max(last_pulled_at) FROM manifests m
                  WHERE m.repository_id = r.id AND m.deleted_at IS NULL) AS last_pulled_at
         FROM repositories r
         WHERE r.name > $1 AND r.deleted_at IS NULL AND ($2 IS NULL OR r.name = $3)
         ORDER BY r.name LIMIT $4"
    )))
    .bind(last.unwrap_or(""))
    .bind(only)
    .bind(only)
    .bind(crate::limit(limit))
    })?;
    rows.iter()
        .map(|r| {
            Ok(RepoSummary {
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
                tags: r.try_get("tags")?,
                manifests: r.try_get("manifests")?,
                untagged: r.try_get("untagged")?,
                last_pushed_at: r.try_get("last_pushed_at")?,
                last_pulled_at: r.try_get("last_pulled_at")?,
            })
        })
        .collect()
}

/// Every live repository, by name: what a retention policy matches its patterns against.
pub async fn all_live(conn: &mut dyn Conn) -> Result<Vec<(RepoId, String)>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT id, name FROM repositories WHERE deleted_at IS NULL ORDER BY name"
    ))?;
    rows.iter()
        .map(|r| Ok((RepoId(r.try_get("id")?), r.try_get("name")?)))
        .collect()
}

/// Every repository's name, deleted ones included (their restore bin and history stay), in
/// name order: what access control filters to the names a caller may read.
pub async fn all_names(conn: &mut dyn Conn) -> Result<Vec<String>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT name FROM repositories ORDER BY name"
    ))?;
    rows.iter().map(|r| r.try_get("name")).collect()
}

/// When the repository of that name was deleted, if it exists and is deleted.
pub async fn deleted_at(conn: &mut dyn Conn, name: &RepoName) -> Result<Option<Millis>> {
    let at: Option<Option<Millis>> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT deleted_at FROM repositories WHERE name = $1"
    )
    .bind(name.as_str()))?;
    Ok(at.flatten())
}
