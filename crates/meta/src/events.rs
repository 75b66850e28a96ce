//! The activity log: who did what to which target, and why. Written in the same transaction as
//! the change it records.

use crate::{Conn, Millis, Result};

/// One entry of the activity log.
#[derive(Clone, Debug, Default)]
pub struct NewEvent<'a> {
    pub actor: &'a str,
    pub source: Option<&'a str>,
    pub action: &'a str,
    pub repository: Option<&'a str>,
    pub target: Option<&'a str>,
    pub digest: Option<String>,
    pub reason: Option<&'a str>,
}

pub async fn record(conn: &mut Conn, e: &NewEvent<'_>, now: Millis) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (at, actor, source, action, repository, target, digest, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(now)
    .bind(e.actor)
    .bind(e.source)
    .bind(e.action)
    .bind(e.repository)
    .bind(e.target)
    .bind(e.digest.as_deref())
    .bind(e.reason)
    .execute(conn)
    .await?;
    Ok(())
}
