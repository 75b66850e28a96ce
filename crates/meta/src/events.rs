//! The activity log: who did what to which target, and why. Written in the same transaction as
//! the change it records.

use sqlx::Row;

use crate::{Conn, Millis, Result};

/// What the activity log records, each as `family.verb`. A filter names one of these or a
/// family (`tag` for every `tag.*`).
pub const ACTIONS: &[&str] = &[
    "tag.push",
    "tag.delete",
    "tag.restore",
    "manifest.push",
    "manifest.delete",
    "blob.delete",
    "repository.delete",
    "repository.restore",
    "policy.apply",
    "policy.remove",
    "policy.run",
    "gc.run",
    "gc.collect",
];

/// Whether `filter` names a recorded action or a family of them.
pub fn is_known_action(filter: &str) -> bool {
    ACTIONS
        .iter()
        .any(|a| *a == filter || a.split('.').next() == Some(filter))
}

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

pub async fn record(conn: &mut dyn Conn, e: &NewEvent<'_>, now: Millis) -> Result<()> {
    debug_assert!(ACTIONS.contains(&e.action), "unlisted action {}", e.action);
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
    .execute(conn.sqlite())
    .await?;
    Ok(())
}

/// Records several events at once, in order (the collector's reviews, a batch at a time).
pub async fn record_many(conn: &mut dyn Conn, events: &[NewEvent<'_>], now: Millis) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            serde_json::json!([
                e.actor,
                e.source,
                e.action,
                e.repository,
                e.target,
                e.digest,
                e.reason
            ])
        })
        .collect();
    let rows = crate::json(&rows)?;
    sqlx::query(
        "INSERT INTO events (at, actor, source, action, repository, target, digest, reason)
         SELECT ?1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
                value ->> 6
         FROM json_each(?2) ORDER BY key",
    )
    .bind(now)
    .bind(rows)
    .execute(conn.sqlite())
    .await?;
    Ok(())
}

/// A recorded event.
#[derive(Clone, Debug)]
pub struct Event {
    pub id: i64,
    pub at: Millis,
    pub actor: String,
    pub source: Option<String>,
    pub action: String,
    pub repository: Option<String>,
    pub target: Option<String>,
    pub digest: Option<String>,
    pub reason: Option<String>,
}

/// Which events to list: all filters are optional and combine.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub repository: Option<String>,
    /// An exact action (`tag.delete`) or a family (`tag`, matching `tag.*`).
    pub action: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    /// Only events older than this id (the cursor of the previous page).
    pub before: Option<i64>,
}

/// Events matching the filter, newest first, at most `limit`.
pub async fn list(conn: &mut dyn Conn, f: &EventFilter, limit: i64) -> Result<Vec<Event>> {
    let family = f.action.as_ref().map(|a| format!("{a}.%"));
    let rows = sqlx::query(
        "SELECT id, at, actor, source, action, repository, target, digest, reason FROM events
         WHERE (?1 IS NULL OR repository = ?1)
           AND (?2 IS NULL OR action = ?2 OR action LIKE ?3)
           AND (?4 IS NULL OR at >= ?4)
           AND (?5 IS NULL OR at < ?5)
           AND (?6 IS NULL OR id < ?6)
         ORDER BY id DESC LIMIT ?7",
    )
    .bind(f.repository.as_deref())
    .bind(f.action.as_deref())
    .bind(family)
    .bind(f.since)
    .bind(f.until)
    .bind(f.before)
    .bind(limit)
    .fetch_all(conn.sqlite())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Event {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                source: r.try_get("source")?,
                action: r.try_get("action")?,
                repository: r.try_get("repository")?,
                target: r.try_get("target")?,
                digest: r.try_get("digest")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect()
}

/// Forgets up to `limit` of the oldest events recorded before `before`; returns how many. The
/// caller repeats until fewer than `limit` go, each batch in a short transaction.
pub async fn prune(conn: &mut dyn Conn, before: Millis, limit: i64) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? ORDER BY at LIMIT ?)",
    )
    .bind(before)
    .bind(limit)
    .execute(conn.sqlite())
    .await?;
    Ok(done.rows_affected())
}

/// Forgets up to `limit` of the oldest tag history entries recorded before `before` (the
/// caller keeps every entry a restore may still need: `before` is no later than the start of
/// the restore window); returns how many.
pub async fn prune_tag_history(conn: &mut dyn Conn, before: Millis, limit: i64) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM tag_history WHERE id IN
             (SELECT id FROM tag_history WHERE at < ? ORDER BY at LIMIT ?)",
    )
    .bind(before)
    .bind(limit)
    .execute(conn.sqlite())
    .await?;
    Ok(done.rows_affected())
}
