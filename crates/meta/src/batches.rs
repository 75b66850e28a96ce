//! Batches: one row per operation that removed tags (a repository deletion, a bulk delete, a
//! deletion of several tags, a policy run's repository). Each removal in `tag_history` names
//! its batch, so the restore bin can bring a whole operation back.

use sqlx::Row;

use crate::repos::RepoId;
use crate::{Conn, Millis, Result};

/// A recorded batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub id: i64,
    pub action: String,
    pub repository: String,
    pub actor: String,
    pub at: Millis,
}

/// Opens a batch for an operation about to remove tags of `repo`; returns its id.
pub async fn create(
    conn: &mut dyn Conn,
    action: &str,
    repo: RepoId,
    actor: &str,
    now: Millis,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO batches (action, repository_id, actor, at) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(action)
    .bind(repo.0)
    .bind(actor)
    .bind(now)
    .fetch_one(conn.sqlite())
    .await?)
}

pub async fn get(conn: &mut dyn Conn, id: i64) -> Result<Option<Batch>> {
    let row = sqlx::query(
        "SELECT b.id, b.action, r.name, b.actor, b.at FROM batches b
         JOIN repositories r ON r.id = b.repository_id WHERE b.id = ?",
    )
    .bind(id)
    .fetch_optional(conn.sqlite())
    .await?;
    row.map(|r| {
        Ok(Batch {
            id: r.try_get("id")?,
            action: r.try_get("action")?,
            repository: r.try_get("name")?,
            actor: r.try_get("actor")?,
            at: r.try_get("at")?,
        })
    })
    .transpose()
}

/// The latest batch of `action` on a repository: the deletion a repository restore undoes.
pub async fn latest(conn: &mut dyn Conn, repo: RepoId, action: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM batches WHERE repository_id = ? AND action = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(repo.0)
    .bind(action)
    .fetch_optional(conn.sqlite())
    .await?)
}
