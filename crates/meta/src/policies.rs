//! Retention policies as applied (the document is stored as given, validated by the caller),
//! when each runs next, and the record of their runs.

use crate::db::{execute, rows, values};

use crate::principal::Principal;
use crate::runs::RunState;
use crate::{Conn, MetaError, Millis, Result};

/// A policy as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPolicy {
    pub name: String,
    /// The policy document, JSON.
    pub document: String,
    pub schedule: Option<String>,
    pub next_run_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub updated_by: String,
}

fn policy_from_row(r: &crate::db::Row) -> Result<StoredPolicy> {
    Ok(StoredPolicy {
        name: r.try_get("name")?,
        document: r.try_get("document")?,
        schedule: r.try_get("schedule")?,
        next_run_at: r.try_get("next_run_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
    })
}

/// What `put` writes.
#[derive(Clone, Debug)]
pub struct PolicyRow<'a> {
    pub name: &'a str,
    pub document: &'a str,
    pub schedule: Option<&'a str>,
    pub next_run_at: Option<Millis>,
    pub by: &'a Principal,
}

/// Creates or replaces a policy; returns whether it was new.
pub async fn put(conn: &mut dyn Conn, p: &PolicyRow<'_>, now: Millis) -> Result<bool> {
    let existed: bool = values!(conn, fetch_one, |cx| sqlx::query_scalar(
        "SELECT count(*) > 0 FROM policies WHERE name = $1"
    )
    .bind(p.name))?;
    execute!(conn, |cx| {
        sqlx::query(
        "INSERT INTO policies (name, document, schedule, next_run_at, created_at, updated_at,
                               updated_by, updated_by_id)
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7)
         ON CONFLICT (name) DO UPDATE SET document = excluded.document, schedule = excluded.schedule,
             next_run_at = excluded.next_run_at, updated_at = excluded.updated_at,
             updated_by = excluded.updated_by, updated_by_id = excluded.updated_by_id",
    )
    .bind(p.name)
    .bind(p.document)
    .bind(p.schedule)
    .bind(p.next_run_at)
    .bind(now)
    .bind(&p.by.name)
    .bind(p.by.audit_id())
    })?;
    bump_version(conn).await?;
    Ok(!existed)
}

/// Counts a change of the applied policies, so that every node notices it (`version`).
async fn bump_version(conn: &mut dyn Conn) -> Result<()> {
    crate::versions::bump(conn, "policies").await
}

/// How many times the applied policies have changed: a node that compiled them at another
/// version compiles them again (the protection of tags must hold on every node at once).
pub async fn version(conn: &mut dyn Conn) -> Result<i64> {
    crate::versions::get(conn, "policies").await
}

pub async fn get(conn: &mut dyn Conn, name: &str) -> Result<Option<StoredPolicy>> {
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(
        "SELECT * FROM policies WHERE name = $1"
    )
    .bind(name))?;
    row.as_ref().map(policy_from_row).transpose()
}

/// Every policy, by name.
pub async fn list(conn: &mut dyn Conn) -> Result<Vec<StoredPolicy>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT * FROM policies ORDER BY name"
    ))?;
    rows.iter().map(policy_from_row).collect()
}

/// Removes a policy; its runs stay in the history. Returns whether it existed.
pub async fn remove(conn: &mut dyn Conn, name: &str) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query(
        "DELETE FROM policies WHERE name = $1"
    )
    .bind(name))?;
    if done.rows_affected() > 0 {
        bump_version(conn).await?;
    }
    Ok(done.rows_affected() > 0)
}

/// The scheduled policies whose next run is due at `now`, with the instant each was due.
pub async fn due(conn: &mut dyn Conn, now: Millis) -> Result<Vec<(String, Millis)>> {
    let rows = rows!(conn, fetch_all, |cx| {
        sqlx::query(
        "SELECT name, next_run_at FROM policies WHERE next_run_at <= $1 ORDER BY next_run_at, name",
    )
    .bind(now)
    })?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("next_run_at")?)))
        .collect()
}

/// Moves a policy's next run, but only if it is still due at `was` (another instance of the
/// scheduler may have moved it first). Returns whether this call moved it.
pub async fn advance_schedule(
    conn: &mut dyn Conn,
    name: &str,
    was: Millis,
    next: Millis,
) -> Result<bool> {
    let done = execute!(conn, |cx| {
        sqlx::query(
        "UPDATE policies SET next_run_at = $1 WHERE name = $2 AND next_run_at IS NOT NULL AND next_run_at <= $3",
    )
    .bind(next)
    .bind(name)
    .bind(was)
    })?;
    Ok(done.rows_affected() > 0)
}

// ---------------------------------------------------------------------------------------------
// Runs

/// What a run did so far (or, in a preview, would do).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunFigures {
    /// Repositories evaluated.
    pub repositories: u64,
    /// Repositories that lost a tag or manifest.
    pub repositories_affected: u64,
    pub tags_evaluated: u64,
    pub tags_deleted: u64,
    pub manifests_deleted: u64,
    /// Bytes the deletions took out of use that stay for the restore window.
    pub bytes_held: u64,
    /// Bytes the deletions took out of use that a collection frees at once (no window).
    pub bytes_freed: u64,
}

impl RunFigures {
    pub fn add(&mut self, o: &RunFigures) {
        self.repositories += o.repositories;
        self.repositories_affected += o.repositories_affected;
        self.tags_evaluated += o.tags_evaluated;
        self.tags_deleted += o.tags_deleted;
        self.manifests_deleted += o.manifests_deleted;
        self.bytes_held += o.bytes_held;
        self.bytes_freed += o.bytes_freed;
    }

    /// Tags and manifests deleted.
    pub fn deleted(&self) -> u64 {
        self.tags_deleted + self.manifests_deleted
    }
}

/// How a policy came to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Trigger {
    type Err = MetaError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "schedule" => Ok(Trigger::Schedule),
            "manual" => Ok(Trigger::Manual),
            other => Err(MetaError::Corrupt(format!("policy run trigger {other:?}"))),
        }
    }
}

/// What a policy run deleted: a tag, or an untagged manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Tag,
    Manifest,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Tag => "tag",
            ItemKind::Manifest => "manifest",
        }
    }
}

impl std::fmt::Display for ItemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ItemKind {
    type Err = MetaError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "tag" => Ok(ItemKind::Tag),
            "manifest" => Ok(ItemKind::Manifest),
            other => Err(MetaError::Corrupt(format!(
                "policy run item kind {other:?}"
            ))),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRun {
    pub id: i64,
    pub policy: String,
    pub document: String,
    pub trigger: Trigger,
    pub state: RunState,
    pub started_by: String,
    pub started_at: Millis,
    /// The instant the rules were evaluated against (a preview at this instant agrees).
    pub evaluated_at: Millis,
    pub finished_at: Option<Millis>,
    pub figures: RunFigures,
    pub errors: Vec<String>,
}

fn run_from_row(r: &crate::db::Row) -> Result<PolicyRun> {
    let n = |col: &str| -> Result<u64> { Ok(r.try_get::<i64>(col)? as u64) };
    let errors: &str = r.try_get("errors")?;
    Ok(PolicyRun {
        id: r.try_get("id")?,
        policy: r.try_get("policy")?,
        document: r.try_get("document")?,
        trigger: r.try_get::<&str>("trigger")?.parse()?,
        state: r.try_get::<&str>("state")?.parse()?,
        started_by: r.try_get("started_by")?,
        started_at: r.try_get("started_at")?,
        evaluated_at: r.try_get("evaluated_at")?,
        finished_at: r.try_get("finished_at")?,
        figures: RunFigures {
            repositories: n("repositories")?,
            repositories_affected: n("repositories_affected")?,
            tags_evaluated: n("tags_evaluated")?,
            tags_deleted: n("tags_deleted")?,
            manifests_deleted: n("manifests_deleted")?,
            bytes_held: n("bytes_held")?,
            bytes_freed: n("bytes_freed")?,
        },
        errors: serde_json::from_str(errors)
            .map_err(|e| MetaError::Corrupt(format!("policy run errors {errors:?}: {e}")))?,
    })
}

/// A run about to start.
#[derive(Clone, Debug)]
pub struct NewRun<'a> {
    pub policy: &'a str,
    pub document: &'a str,
    pub trigger: Trigger,
    pub started_by: &'a Principal,
}

/// Starts a run of a policy, or returns `Err(active_id)` when that policy is already running.
pub async fn start_run(
    conn: &mut dyn Conn,
    run: &NewRun<'_>,
    now: Millis,
) -> Result<std::result::Result<i64, i64>> {
    let active: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT id FROM policy_runs WHERE policy = $1 AND state = 'running'"
    )
    .bind(run.policy))?;
    if let Some(id) = active {
        return Ok(Err(id));
    }
    // The unique index on (policy) for running runs refuses a second one, even from another
    // node starting it at the same instant.
    let id: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "INSERT INTO policy_runs (policy, document, trigger, state, started_by, started_by_id,
                                  started_at, evaluated_at)
         VALUES ($1, $2, $3, 'running', $4, $6, $5, $5)
         ON CONFLICT (policy) WHERE state = 'running' DO NOTHING RETURNING id",
    )
    .bind(run.policy)
    .bind(run.document)
    .bind(run.trigger.as_str())
    .bind(&run.started_by.name)
    .bind(now)
    .bind(run.started_by.audit_id()))?;
    match id {
        Some(id) => Ok(Ok(id)),
        None => {
            let active: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
                "SELECT id FROM policy_runs WHERE policy = $1 AND state = 'running'",
            )
            .bind(run.policy))?;
            Ok(Err(active.unwrap_or(0)))
        }
    }
}

pub async fn get_run(conn: &mut dyn Conn, id: i64) -> Result<Option<PolicyRun>> {
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(
        "SELECT * FROM policy_runs WHERE id = $1"
    )
    .bind(id))?;
    row.as_ref().map(run_from_row).transpose()
}

/// Runs newest first, of one policy or of all, before the id `before` when given.
pub async fn list_runs(
    conn: &mut dyn Conn,
    policy: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<PolicyRun>> {
    let rows = rows!(conn, fetch_all, |cx| {
        sqlx::query(
        "SELECT * FROM policy_runs WHERE ($1 IS NULL OR policy = $1) AND ($2 IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(policy)
    .bind(before)
    .bind(crate::limit(limit))
    })?;
    rows.iter().map(run_from_row).collect()
}

/// Writes a run's figures so far; returns whether a cancel was asked for meanwhile.
pub async fn record_progress(conn: &mut dyn Conn, id: i64, f: &RunFigures) -> Result<bool> {
    let cancel: Option<bool> = values!(conn, fetch_optional, |cx| {
        sqlx::query_scalar(
        "UPDATE policy_runs SET repositories = $1, repositories_affected = $2, tags_evaluated = $3,
                tags_deleted = $4, manifests_deleted = $5, bytes_held = $6, bytes_freed = $7
         WHERE id = $8 RETURNING cancel_requested",
    )
    .bind(f.repositories as i64)
    .bind(f.repositories_affected as i64)
    .bind(f.tags_evaluated as i64)
    .bind(f.tags_deleted as i64)
    .bind(f.manifests_deleted as i64)
    .bind(f.bytes_held as i64)
    .bind(f.bytes_freed as i64)
    .bind(id)
    })?;
    Ok(cancel.unwrap_or(false))
}

/// Asks a running run to stop after the repository it is working on. Returns the run, or
/// `None` if there is no such run.
pub async fn request_cancel(conn: &mut dyn Conn, id: i64) -> Result<Option<PolicyRun>> {
    execute!(conn, |cx| sqlx::query(
        "UPDATE policy_runs SET cancel_requested = TRUE WHERE id = $1 AND state = 'running'"
    )
    .bind(id))?;
    get_run(conn, id).await
}

/// Ends a run with its final state, figures and errors.
pub async fn finish_run(
    conn: &mut dyn Conn,
    id: i64,
    state: RunState,
    f: &RunFigures,
    errors: &[String],
    now: Millis,
) -> Result<()> {
    record_progress(conn, id, f).await?;
    execute!(conn, |cx| sqlx::query(
        "UPDATE policy_runs SET state = $1, errors = $2, finished_at = $3 WHERE id = $4"
    )
    .bind(state.as_str())
    .bind(crate::json(errors)?)
    .bind(now)
    .bind(id))?;
    Ok(())
}

/// Holds a running policy run for `node` until `until` (as `runs::hold` a GC run).
pub async fn hold(conn: &mut dyn Conn, id: i64, node: &str, until: Millis) -> Result<bool> {
    crate::runs::hold_in(conn, crate::runs::Held::Policy, id, node, until).await
}

/// Marks as failed the running policy runs whose node stopped (as
/// `runs::fail_interrupted_runs` GC runs).
pub async fn fail_interrupted_runs(
    conn: &mut dyn Conn,
    now: Millis,
    node: &str,
    restarted: bool,
) -> Result<u64> {
    crate::runs::fail_interrupted_in(conn, crate::runs::Held::Policy, now, node, restarted).await
}

/// One thing a run deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunItem {
    pub repository: String,
    pub kind: ItemKind,
    /// The tag name, or the manifest digest.
    pub target: String,
    pub digest: String,
    pub rule: String,
    pub reason: String,
}

/// Forgets up to `limit` items of policy runs that finished before `before` (the run rows and
/// their figures stay); returns how many. As `runs::prune_items` for GC runs.
pub async fn prune_run_items(conn: &mut dyn Conn, before: Millis, limit: i64) -> Result<u64> {
    let done = execute!(conn, |cx| sqlx::query(
        "DELETE FROM policy_run_items WHERE id IN (
             SELECT i.id FROM policy_run_items i JOIN policy_runs r ON r.id = i.run_id
             WHERE r.finished_at < $1 ORDER BY i.id LIMIT $2)",
    )
    .bind(before)
    .bind(crate::limit(limit)))?;
    Ok(done.rows_affected())
}

pub async fn add_run_item(conn: &mut dyn Conn, run: i64, item: &RunItem) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "INSERT INTO policy_run_items (run_id, repository, kind, target, digest, rule, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(run)
    .bind(&item.repository)
    .bind(item.kind.as_str())
    .bind(&item.target)
    .bind(&item.digest)
    .bind(&item.rule)
    .bind(&item.reason))?;
    Ok(())
}

pub async fn run_items(conn: &mut dyn Conn, run: i64) -> Result<Vec<RunItem>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT * FROM policy_run_items WHERE run_id = $1 ORDER BY id"
    )
    .bind(run))?;
    rows.iter()
        .map(|r| {
            Ok(RunItem {
                repository: r.try_get("repository")?,
                kind: r.try_get::<&str>("kind")?.parse()?,
                target: r.try_get("target")?,
                digest: r.try_get("digest")?,
                rule: r.try_get("rule")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect()
}
