//! Batches: one row per operation that removed tags (a repository deletion, a bulk delete, a
//! deletion of several tags, a policy run's repository). Each removal in `tag_history` names
//! its batch, so the restore bin can bring a whole operation back.

use crate::db::{rows, values};

use crate::principal::Principal;
use crate::repos::RepoId;
use crate::{Conn, Millis, Result};

/// The operation a batch records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    RepositoryDelete,
    TagDelete,
    TagBulkDelete,
    ManifestDelete,
    PolicyRun,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::RepositoryDelete => "repository.delete",
            Operation::TagDelete => "tag.delete",
            Operation::TagBulkDelete => "tag.bulk_delete",
            Operation::ManifestDelete => "manifest.delete",
            Operation::PolicyRun => "policy.run",
        }
    }
}

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
    action: Operation,
    repo: RepoId,
    by: &Principal,
    now: Millis,
) -> Result<i64> {
    Ok(values!(conn, fetch_one, |cx| {
        sqlx::query_scalar(
        "INSERT INTO batches (action, repository_id, actor, actor_id, at) VALUES ($1, $2, $3, $4, $5)
         RETURNING id",
    )
    .bind(action.as_str())
    .bind(repo.0)
    .bind(&by.name)
    .bind(by.audit_id())
    .bind(now)
    })?)
}

pub async fn get(conn: &mut dyn Conn, id: i64) -> Result<Option<Batch>> {
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(
        "SELECT b.id, b.action, r.name, b.actor, b.at FROM batches b
         JOIN repositories r ON r.id = b.repository_id WHERE b.id = $1",
    )
    .bind(id))?;
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
pub async fn latest(conn: &mut dyn Conn, repo: RepoId, action: Operation) -> Result<Option<i64>> {
    Ok(values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT id FROM batches WHERE repository_id = $1 AND action = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(repo.0)
    .bind(action.as_str()))?)
}
