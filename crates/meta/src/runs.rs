//! Garbage collection runs: what each was asked to do, its state and figures, a cancel asked of
//! it, and what it deleted (or, in a dry run, would delete). At most one run is active in the
//! whole registry, however many nodes serve it: the database refuses a second (a unique index
//! on the running state), and a cancel is a flag in the run's row that the run reads between
//! batches, so any node can cancel the run another node executes.

use crate::db::{Dialect, execute, rows, values};

use crate::principal::Principal;
use crate::{Conn, MetaError, Millis, Result};

/// The state of a run (of the collector, or of a retention policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Running,
    Succeeded,
    Cancelled,
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Cancelled => "cancelled",
            RunState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunState {
    type Err = MetaError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "running" => RunState::Running,
            "succeeded" => RunState::Succeeded,
            "cancelled" => RunState::Cancelled,
            "failed" => RunState::Failed,
            other => return Err(MetaError::Corrupt(format!("run state {other:?}"))),
        })
    }
}

/// What a run deleted: a manifest, a blob, a repository's link to a blob, an abandoned upload
/// session, or an object of the store the catalogue did not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKind {
    Manifest,
    Blob,
    Link,
    Upload,
    Orphan,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Manifest => "manifest",
            ItemKind::Blob => "blob",
            ItemKind::Link => "link",
            ItemKind::Upload => "upload",
            ItemKind::Orphan => "orphan",
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
        Ok(match s {
            "manifest" => ItemKind::Manifest,
            "blob" => ItemKind::Blob,
            "link" => ItemKind::Link,
            "upload" => ItemKind::Upload,
            "orphan" => ItemKind::Orphan,
            other => return Err(MetaError::Corrupt(format!("run item kind {other:?}"))),
        })
    }
}

/// What a run was asked to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSpec {
    pub dry_run: bool,
    pub include_untagged: bool,
    pub sweep: bool,
    /// The grace period for this run only, when the operator gave one.
    pub grace_ms: Option<i64>,
}

/// What a run deleted (or would delete, in a dry run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub reviewed: u64,
    pub manifests: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub links: u64,
    pub uploads: u64,
    pub orphans: u64,
}

impl Figures {
    pub fn add(&mut self, o: &Figures) {
        self.reviewed += o.reviewed;
        self.manifests += o.manifests;
        self.blobs += o.blobs;
        self.bytes += o.bytes;
        self.links += o.links;
        self.uploads += o.uploads;
        self.orphans += o.orphans;
    }

    /// Everything deleted (or that would be), whatever its kind.
    pub fn deleted(&self) -> u64 {
        self.manifests + self.blobs + self.links + self.uploads + self.orphans
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub id: i64,
    pub state: RunState,
    pub spec: RunSpec,
    /// Who started it, by name as it was then.
    pub started_by: String,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    pub figures: Figures,
    pub errors: Vec<String>,
    /// A cancel was asked for; the run stops after the batch it is on.
    pub cancel_requested: bool,
    /// What it is doing ([`Phase`]), as it last recorded.
    pub phase: String,
    /// Review entries queued when it began: what `figures.reviewed` counts towards (a run may
    /// review more, when what it deletes queues its references).
    pub queued_at_start: Option<u64>,
}

/// The steps of a run, in order; recorded as each begins (`set_phase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reviewing the queued manifests and blobs, deleting what is garbage.
    Reviewing,
    /// Expiring abandoned upload sessions.
    Uploads,
    /// Listing the store for objects the catalogue does not know.
    Sweeping,
    /// Deleting the forgotten objects' bytes from storage.
    Draining,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Reviewing => "reviewing",
            Phase::Uploads => "uploads",
            Phase::Sweeping => "sweeping",
            Phase::Draining => "draining",
        }
    }
}

const RUN_COLUMNS: &str = "id, state, dry_run, include_untagged, sweep, grace_ms, started_by,
    started_at, finished_at, manifests_deleted, blobs_deleted, bytes_deleted, links_deleted,
    uploads_deleted, orphans_deleted, reviewed, errors, cancel_requested, phase, queued_at_start";

pub(crate) fn errors_col(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| MetaError::Corrupt(format!("run errors {text:?}: {e}")))
}

fn run_from_row(r: &crate::db::Row) -> Result<Run> {
    let n = |col: &str| -> Result<u64> { Ok(r.try_get::<i64>(col)? as u64) };
    Ok(Run {
        id: r.try_get("id")?,
        state: r.try_get::<&str>("state")?.parse()?,
        spec: RunSpec {
            dry_run: r.try_get("dry_run")?,
            include_untagged: r.try_get("include_untagged")?,
            sweep: r.try_get("sweep")?,
            grace_ms: r.try_get("grace_ms")?,
        },
        started_by: r.try_get("started_by")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        figures: Figures {
            reviewed: n("reviewed")?,
            manifests: n("manifests_deleted")?,
            blobs: n("blobs_deleted")?,
            bytes: n("bytes_deleted")?,
            links: n("links_deleted")?,
            uploads: n("uploads_deleted")?,
            orphans: n("orphans_deleted")?,
        },
        errors: errors_col(r.try_get("errors")?)?,
        cancel_requested: r.try_get("cancel_requested")?,
        phase: r.try_get("phase")?,
        queued_at_start: r
            .try_get::<Option<i64>>("queued_at_start")?
            .map(|n| n as u64),
    })
}

/// Records the step a run begins, and with `queued` how many review entries it found queued.
pub async fn set_phase(
    conn: &mut dyn Conn,
    id: i64,
    phase: Phase,
    queued: Option<u64>,
) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "UPDATE gc_runs SET phase = $2, queued_at_start = COALESCE($3, queued_at_start)
         WHERE id = $1"
    )
    .bind(id)
    .bind(phase.as_str())
    .bind(queued.map(|n| n as i64)))?;
    Ok(())
}

/// Starts a run, or returns `Err(active_id)` when one is already running. The unique index on
/// the running state refuses a second active run even when two nodes start one at once.
pub async fn start_run(
    conn: &mut dyn Conn,
    spec: &RunSpec,
    by: &Principal,
    now: Millis,
) -> Result<std::result::Result<i64, i64>> {
    if let Some(active) = active_run(conn).await? {
        return Ok(Err(active.id));
    }
    let id: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "INSERT INTO gc_runs (state, dry_run, include_untagged, sweep, grace_ms, started_by,
                              started_by_id, started_at)
         VALUES ('running', $1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (state) WHERE state = 'running' DO NOTHING RETURNING id",
    )
    .bind(spec.dry_run)
    .bind(spec.include_untagged)
    .bind(spec.sweep)
    .bind(spec.grace_ms)
    .bind(&by.name)
    .bind(by.audit_id())
    .bind(now))?;
    match id {
        Some(id) => Ok(Ok(id)),
        None => {
            let active = active_run(conn).await?.map_or(0, |r| r.id);
            Ok(Err(active))
        }
    }
}

pub async fn active_run(conn: &mut dyn Conn) -> Result<Option<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM gc_runs WHERE state = 'running'");
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(sqlx::AssertSqlSafe(
        sql
    )))?;
    row.as_ref().map(run_from_row).transpose()
}

pub async fn get_run(conn: &mut dyn Conn, id: i64) -> Result<Option<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM gc_runs WHERE id = $1");
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(sqlx::AssertSqlSafe(
        sql
    ))
    .bind(id))?;
    row.as_ref().map(run_from_row).transpose()
}

/// Runs, newest first, before the id `before` when given.
pub async fn list_runs(conn: &mut dyn Conn, before: Option<i64>, limit: i64) -> Result<Vec<Run>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM gc_runs WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
    );
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(before)
        .bind(crate::limit(limit)))?;
    rows.iter().map(run_from_row).collect()
}

/// Writes a run's figures so far; returns whether a cancel was asked for meanwhile.
pub async fn record_progress(conn: &mut dyn Conn, id: i64, f: &Figures) -> Result<bool> {
    let cancel: Option<bool> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "UPDATE gc_runs SET reviewed = $1, manifests_deleted = $2, blobs_deleted = $3,
                bytes_deleted = $4, links_deleted = $5, uploads_deleted = $6, orphans_deleted = $7
         WHERE id = $8 RETURNING cancel_requested",
    )
    .bind(f.reviewed as i64)
    .bind(f.manifests as i64)
    .bind(f.blobs as i64)
    .bind(f.bytes as i64)
    .bind(f.links as i64)
    .bind(f.uploads as i64)
    .bind(f.orphans as i64)
    .bind(id))?;
    Ok(cancel.unwrap_or(false))
}

/// Whether a cancel was asked of the run.
pub async fn cancel_requested(conn: &mut dyn Conn, id: i64) -> Result<bool> {
    let cancel: Option<bool> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT cancel_requested FROM gc_runs WHERE id = $1"
    )
    .bind(id))?;
    Ok(cancel.unwrap_or(false))
}

/// Asks a running run to stop after the batch it is on. Returns the run as it stands, or
/// `None` when there is no such run.
pub async fn request_cancel(conn: &mut dyn Conn, id: i64) -> Result<Option<Run>> {
    execute!(conn, |cx| sqlx::query(
        "UPDATE gc_runs SET cancel_requested = TRUE WHERE id = $1 AND state = 'running'"
    )
    .bind(id))?;
    get_run(conn, id).await
}

/// Ends a run with its final state, figures and errors.
pub async fn finish_run(
    conn: &mut dyn Conn,
    id: i64,
    state: RunState,
    f: &Figures,
    errors: &[String],
    now: Millis,
) -> Result<()> {
    record_progress(conn, id, f).await?;
    execute!(conn, |cx| sqlx::query(
        "UPDATE gc_runs SET state = $1, errors = $2, finished_at = $3 WHERE id = $4"
    )
    .bind(state.as_str())
    .bind(crate::json(errors)?)
    .bind(now)
    .bind(id))?;
    Ok(())
}

/// The two kinds of run a node executes and holds: GC runs and policy runs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Held {
    Gc,
    Policy,
}

/// Holds a running run for `node` until `until`: the node executing it renews this while
/// the run goes on. Returns whether the run is still running (and so held).
pub async fn hold(conn: &mut dyn Conn, id: i64, node: &str, until: Millis) -> Result<bool> {
    hold_in(conn, Held::Gc, id, node, until).await
}

pub(crate) async fn hold_in(
    conn: &mut dyn Conn,
    kind: Held,
    id: i64,
    node: &str,
    until: Millis,
) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query(match kind {
        Held::Gc => {
            "UPDATE gc_runs SET node = $1, lease_until = $2 WHERE id = $3 AND state = 'running'"
        }
        Held::Policy => {
            "UPDATE policy_runs SET node = $1, lease_until = $2 WHERE id = $3 AND state = 'running'"
        }
    })
    .bind(node)
    .bind(until)
    .bind(id))?;
    Ok(done.rows_affected() == 1)
}

/// Marks as failed the running runs whose node stopped: another node's whose lease ran out
/// before `now`, and, when `node` is `restarted`, those it left behind and those no node holds
/// (written before leases, or by a process that stopped before holding its run). A node never
/// takes its own live runs for dead: it renews them, whatever its clock says.
pub async fn fail_interrupted_runs(
    conn: &mut dyn Conn,
    now: Millis,
    node: &str,
    restarted: bool,
) -> Result<u64> {
    fail_interrupted_in(conn, Held::Gc, now, node, restarted).await
}

pub(crate) async fn fail_interrupted_in(
    conn: &mut dyn Conn,
    kind: Held,
    now: Millis,
    node: &str,
    restarted: bool,
) -> Result<u64> {
    let runs: Vec<(i64, String)> = values!(conn, fetch_all, |cx| sqlx::query_as(match kind {
        Held::Gc => {
            "SELECT id, errors FROM gc_runs WHERE state = 'running'
               AND ((lease_until < $1 AND (node IS NULL OR node <> $2))
                    OR ($3 AND (node IS NULL OR node = $2)))
             ORDER BY id"
        }
        Held::Policy => {
            "SELECT id, errors FROM policy_runs WHERE state = 'running'
               AND ((lease_until < $1 AND (node IS NULL OR node <> $2))
                    OR ($3 AND (node IS NULL OR node = $2)))
             ORDER BY id"
        }
    })
    .bind(now)
    .bind(node)
    .bind(restarted))?;
    for (id, errors) in &runs {
        let mut errors = errors_col(errors)?;
        errors.push(if restarted {
            "interrupted: the server stopped during the run".into()
        } else {
            "interrupted: the node executing the run stopped renewing its lease".into()
        });
        execute!(conn, |cx| sqlx::query(match kind {
            Held::Gc => {
                "UPDATE gc_runs SET state = 'failed', finished_at = $1, errors = $2
                 WHERE id = $3 AND state = 'running'"
            }
            Held::Policy => {
                "UPDATE policy_runs SET state = 'failed', finished_at = $1, errors = $2
                 WHERE id = $3 AND state = 'running'"
            }
        })
        .bind(now)
        .bind(crate::json(&errors)?)
        .bind(id))?;
    }
    Ok(runs.len() as u64)
}

/// One thing a run deleted or would delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunItem {
    pub kind: ItemKind,
    pub repository: Option<String>,
    pub target: String,
    pub size: u64,
}

/// Forgets up to `limit` items of runs that finished before `before` (the run rows and their
/// figures stay); returns how many. A run lists every object it deleted or would delete, so
/// without this the history of frequent runs grows without end. The caller repeats until fewer
/// than `limit` go, each batch in a short transaction.
pub async fn prune_items(conn: &mut dyn Conn, before: Millis, limit: i64) -> Result<u64> {
    let done = execute!(conn, |cx| sqlx::query(
        "DELETE FROM gc_run_items WHERE id IN (
             SELECT i.id FROM gc_run_items i JOIN gc_runs r ON r.id = i.run_id
             WHERE r.finished_at < $1 ORDER BY i.id LIMIT $2)",
    )
    .bind(before)
    .bind(crate::limit(limit)))?;
    Ok(done.rows_affected())
}

/// Adds things a run deleted (or would delete) to its items, a few hundred per statement.
pub async fn add_run_items(conn: &mut dyn Conn, run: i64, items: &[RunItem]) -> Result<()> {
    for chunk in items.chunks(500) {
        let rows: Vec<(&str, Option<&str>, &str, u64)> = chunk
            .iter()
            .map(|i| {
                (
                    i.kind.as_str(),
                    i.repository.as_deref(),
                    i.target.as_str(),
                    i.size,
                )
            })
            .collect();
        execute!(conn, |cx| sqlx::query(cx.pick(
            "INSERT INTO gc_run_items (run_id, kind, repository, target, size)
             SELECT $1, value ->> 0, value ->> 1, value ->> 2, CAST(value ->> 3 AS BIGINT)
             FROM json_each($2) ORDER BY key",
            "INSERT INTO gc_run_items (run_id, kind, repository, target, size)
             SELECT $1, value ->> 0, value ->> 1, value ->> 2, CAST(value ->> 3 AS BIGINT)
             FROM json_array_elements($2::json) WITH ORDINALITY AS j(value, key) ORDER BY key",
        ))
        .bind(run)
        .bind(crate::json(&rows)?))?;
    }
    Ok(())
}

/// What a run deleted, in the order it did.
pub async fn run_items(conn: &mut dyn Conn, run: i64) -> Result<Vec<RunItem>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT kind, repository, target, size FROM gc_run_items WHERE run_id = $1 ORDER BY id",
    )
    .bind(run))?;
    rows.iter()
        .map(|r| {
            Ok(RunItem {
                kind: r.try_get::<&str>("kind")?.parse()?,
                repository: r.try_get("repository")?,
                target: r.try_get("target")?,
                size: r.try_get::<i64>("size")? as u64,
            })
        })
        .collect()
}
