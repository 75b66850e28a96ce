//! The collector's part of the catalogue: review queues, the re-checks a review makes, forgetting
//! (with the storage key queued for the drainer), and GC runs with their figures.
//!
//! Every function takes the caller's transaction: a review re-checks and forgets in one
//! transaction, which conflicts with a manifest push that would add a reference (the single
//! writer on SQLite), so a push either sees the blob gone or the collector sees the reference.

use shipshape_oci::Digest;
use sqlx::Row;

use crate::blobs::Blob;
use crate::manifests::ManifestId;
use crate::repos::RepoId;
use crate::{Conn, Millis, Result};

/// How a queue entry merges with one already queued for the same object: the latest event
/// counts, and any deferral or claim is dropped so the entry is looked at again.
macro_rules! merge_blob_review {
    () => {
        " ON CONFLICT (digest) DO UPDATE SET queued_at = max(queued_at, excluded.queued_at),
                                             reason = excluded.reason, not_before = 0"
    };
}

macro_rules! merge_manifest_review {
    () => {
        " ON CONFLICT (manifest_id) DO UPDATE SET queued_at = max(queued_at, excluded.queued_at),
                                                  reason = excluded.reason, not_before = 0"
    };
}

pub(crate) use {merge_blob_review, merge_manifest_review};

/// Queues a blob for review; merges with an entry already queued (the latest event counts).
pub async fn queue_blob(conn: &mut Conn, digest: &Digest, now: Millis, reason: &str) -> Result<()> {
    sqlx::query(concat!(
        "INSERT INTO gc_blob_reviews (digest, queued_at, reason) VALUES (?, ?, ?)",
        merge_blob_review!()
    ))
    .bind(digest.to_string())
    .bind(now)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Queues a blob for review with one of its repository links to re-check (an upload or mount:
/// if no manifest of the repository comes to reference the blob, the link goes).
pub async fn queue_link(
    conn: &mut Conn,
    repo: RepoId,
    digest: &Digest,
    now: Millis,
    reason: &str,
) -> Result<()> {
    queue_blob(conn, digest, now, reason).await?;
    sqlx::query(
        "INSERT INTO gc_link_reviews (digest, repository_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(digest.to_string())
    .bind(repo.0)
    .execute(conn)
    .await?;
    Ok(())
}

/// Queues every blob linked into a repository (before the links are removed).
pub async fn queue_links_of(
    conn: &mut Conn,
    repo: RepoId,
    now: Millis,
    reason: &str,
) -> Result<()> {
    sqlx::query(concat!(
        "INSERT INTO gc_blob_reviews (digest, queued_at, reason)
         SELECT digest, ?, ? FROM repository_blobs WHERE repository_id = ? AND true",
        merge_blob_review!()
    ))
    .bind(now)
    .bind(reason)
    .bind(repo.0)
    .execute(conn)
    .await?;
    Ok(())
}

/// Queues a manifest for review.
pub async fn queue_manifest(
    conn: &mut Conn,
    id: ManifestId,
    now: Millis,
    reason: &str,
) -> Result<()> {
    sqlx::query(concat!(
        "INSERT INTO gc_manifest_reviews (manifest_id, queued_at, reason) VALUES (?, ?, ?)",
        merge_manifest_review!()
    ))
    .bind(id.0)
    .bind(now)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Queues the manifest of a repository with this digest, if there is one.
pub async fn queue_manifest_digest(
    conn: &mut Conn,
    repo: RepoId,
    digest: &Digest,
    now: Millis,
    reason: &str,
) -> Result<()> {
    sqlx::query(concat!(
        "INSERT INTO gc_manifest_reviews (manifest_id, queued_at, reason)
         SELECT id, ?, ? FROM manifests WHERE repository_id = ? AND digest = ?",
        merge_manifest_review!()
    ))
    .bind(now)
    .bind(reason)
    .bind(repo.0)
    .bind(digest.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// Queues every manifest of a repository (repository deletion).
pub async fn queue_manifests_of(
    conn: &mut Conn,
    repo: RepoId,
    now: Millis,
    reason: &str,
) -> Result<()> {
    sqlx::query(concat!(
        "INSERT INTO gc_manifest_reviews (manifest_id, queued_at, reason)
         SELECT id, ?, ? FROM manifests WHERE repository_id = ? AND true",
        merge_manifest_review!()
    ))
    .bind(now)
    .bind(reason)
    .bind(repo.0)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which queue entries are due.
#[derive(Clone, Copy, Debug)]
pub struct Due {
    pub now: Millis,
    /// Entries queued at or before this time are due.
    pub queued_by: Millis,
    /// Claimed entries are not handed out again before this time (a crashed worker's claim
    /// expires).
    pub claim_until: Millis,
}

/// Claims a batch of due blob reviews, those whose time came first (never deferred ones
/// first, oldest first among them). The order follows the `(not_before, queued_at)` index, so a
/// claim reads only due entries, however many wait deferred behind a lease.
pub async fn claim_blobs(conn: &mut Conn, due: Due, limit: i64) -> Result<Vec<Digest>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "UPDATE gc_blob_reviews SET not_before = ?1
         WHERE digest IN (SELECT digest FROM gc_blob_reviews
                          WHERE queued_at <= ?2 AND not_before <= ?3
                          ORDER BY not_before, queued_at LIMIT ?4)
         RETURNING digest",
    )
    .bind(due.claim_until)
    .bind(due.queued_by)
    .bind(due.now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|d| crate::digest_col(d)).collect()
}

/// Claims a batch of due manifest reviews, oldest first.
pub async fn claim_manifests(conn: &mut Conn, due: Due, limit: i64) -> Result<Vec<ManifestId>> {
    let rows: Vec<i64> = sqlx::query_scalar(
        "UPDATE gc_manifest_reviews SET not_before = ?1
         WHERE manifest_id IN (SELECT manifest_id FROM gc_manifest_reviews
                               WHERE queued_at <= ?2 AND not_before <= ?3 ORDER BY queued_at LIMIT ?4)
         RETURNING manifest_id",
    )
    .bind(due.claim_until)
    .bind(due.queued_by)
    .bind(due.now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(ManifestId).collect())
}

/// A repository link of a blob, as the collector sees it.
#[derive(Clone, Debug)]
pub struct Link {
    pub repo: RepoId,
    pub repository: String,
    pub renewed_at: Millis,
    /// A manifest of the repository (live or restorable) references the blob.
    pub referenced: bool,
}

/// A blob's links, each saying whether its repository still references the blob. The
/// referencing repositories come from one walk over the blob's references (an uncorrelated
/// subquery, evaluated once), so a layer shared by thousands of manifests costs one pass per
/// review, not one per link.
pub async fn links_of(conn: &mut Conn, digest: &Digest) -> Result<Vec<Link>> {
    let rows = sqlx::query(
        "SELECT rb.repository_id, r.name, rb.renewed_at,
                rb.repository_id IN (SELECT m.repository_id FROM manifest_blob_references mr
                                     JOIN manifests m ON m.id = mr.manifest_id
                                     WHERE mr.blob_digest = ?1) AS referenced
         FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
         WHERE rb.digest = ?1 ORDER BY rb.repository_id",
    )
    .bind(digest.to_string())
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Link {
            repo: RepoId(r.get("repository_id")),
            repository: r.get("name"),
            renewed_at: r.get("renewed_at"),
            referenced: r.get::<i64, _>("referenced") != 0,
        })
        .collect())
}

/// Whether any manifest, in any repository and in any state, references the blob.
pub async fn blob_referenced(conn: &mut Conn, digest: &Digest) -> Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM manifest_blob_references WHERE blob_digest = ? LIMIT 1")
            .bind(digest.to_string())
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Forgets a blob and queues its storage key for deletion. The foreign keys refuse if anything
/// still references or links it. Returns the forgotten blob, or `None` if it was already gone.
pub async fn forget_blob(conn: &mut Conn, digest: &Digest, now: Millis) -> Result<Option<Blob>> {
    let row = sqlx::query("DELETE FROM blobs WHERE digest = ? RETURNING size, storage_key")
        .bind(digest.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let blob = Blob {
        digest: digest.clone(),
        size: row.get::<i64, _>("size") as u64,
        storage_key: row.get("storage_key"),
    };
    queue_storage_deletion(conn, &blob.storage_key, now).await?;
    Ok(Some(blob))
}

/// Queues a storage key the catalogue no longer records for deletion by the drainer.
pub async fn queue_storage_deletion(conn: &mut Conn, key: &str, now: Millis) -> Result<()> {
    sqlx::query(
        "INSERT INTO storage_deletions (storage_key, queued_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(key)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A manifest as the collector sees it.
#[derive(Clone, Debug)]
pub struct ManifestState {
    pub repo: RepoId,
    pub repository: String,
    pub digest: Digest,
    pub size: u64,
    pub created_at: Millis,
    pub deleted_at: Option<Millis>,
    pub tagged: bool,
    /// Some index (live or restorable) lists it.
    pub listed: bool,
    pub subject: Option<Digest>,
    /// Its subject is a manifest of the repository (live or restorable).
    pub subject_present: bool,
    /// The last time a client pushed it (its lease starts there).
    pub pushed_at: Millis,
    /// The latest time a tag left it, however (deleted, moved by a push, overwritten by a
    /// forced restore): the tag can go back to it until the restore window ends.
    pub last_untagged_at: Option<Millis>,
}

/// An upload session untouched since before the cutoff.
#[derive(Clone, Debug)]
pub struct StaleUpload {
    pub id: String,
    pub repository: String,
    pub storage_key: String,
    pub received: u64,
}

pub async fn stale_uploads(
    conn: &mut Conn,
    cutoff: Millis,
    limit: i64,
) -> Result<Vec<StaleUpload>> {
    let rows = sqlx::query(
        "SELECT u.id, r.name, u.storage_key, u.received FROM uploads u
         JOIN repositories r ON r.id = u.repository_id
         WHERE u.updated_at < ? ORDER BY u.updated_at LIMIT ?",
    )
    .bind(cutoff)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| StaleUpload {
            id: r.get("id"),
            repository: r.get("name"),
            storage_key: r.get("storage_key"),
            received: r.get::<i64, _>("received") as u64,
        })
        .collect())
}

/// Forgets an upload session if it is still stale, queueing its bytes for deletion.
pub async fn expire_upload(conn: &mut Conn, id: &str, cutoff: Millis, now: Millis) -> Result<bool> {
    let key: Option<String> = sqlx::query_scalar(
        "DELETE FROM uploads WHERE id = ? AND updated_at < ? RETURNING storage_key",
    )
    .bind(id)
    .bind(cutoff)
    .fetch_optional(&mut *conn)
    .await?;
    match key {
        Some(k) => {
            queue_storage_deletion(conn, &k, now).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Claims a batch of storage keys to delete. Call it in a synced transaction: the claim writes
/// every row it returns, so its commit syncs the log and with it every unsynced review that
/// forgot those keys (`Catalogue::begin_unsynced`).
pub async fn claim_storage_deletions(
    conn: &mut Conn,
    now: Millis,
    claim_until: Millis,
    limit: i64,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "UPDATE storage_deletions SET not_before = ?1
         WHERE storage_key IN (SELECT storage_key FROM storage_deletions WHERE not_before <= ?2
                               ORDER BY queued_at LIMIT ?3)
         RETURNING storage_key",
    )
    .bind(claim_until)
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Forgets storage keys whose objects are gone.
pub async fn storage_deleted(conn: &mut Conn, keys: &[&str]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let keys = serde_json::to_string(keys).map_err(|e| crate::MetaError::Corrupt(e.to_string()))?;
    sqlx::query(
        "DELETE FROM storage_deletions WHERE storage_key IN (SELECT value FROM json_each(?))",
    )
    .bind(keys)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn storage_deletion_failed(conn: &mut Conn, key: &str, now: Millis) -> Result<()> {
    sqlx::query(
        "UPDATE storage_deletions SET attempts = attempts + 1,
                not_before = ?1 + min(3600000, 1000 * (1 << min(attempts, 12)))
         WHERE storage_key = ?2",
    )
    .bind(now)
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}

/// Of these storage keys, the ones the catalogue knows (a blob, an upload, or a pending
/// deletion): everything else in the store is an orphan.
pub async fn known_keys(
    conn: &mut Conn,
    keys: &[String],
) -> Result<std::collections::HashSet<String>> {
    let mut known = std::collections::HashSet::new();
    for chunk in keys.chunks(200) {
        let json =
            serde_json::to_string(chunk).map_err(|e| crate::MetaError::Corrupt(e.to_string()))?;
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT k.value FROM json_each(?1) k
             WHERE EXISTS (SELECT 1 FROM blobs WHERE storage_key = k.value)
                OR EXISTS (SELECT 1 FROM uploads WHERE storage_key = k.value)
                OR EXISTS (SELECT 1 FROM storage_deletions WHERE storage_key = k.value)",
        )
        .bind(json)
        .fetch_all(&mut *conn)
        .await?;
        known.extend(rows);
    }
    Ok(known)
}

/// Depth of each queue, for metrics and the status of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepths {
    pub blobs: u64,
    pub manifests: u64,
    pub storage: u64,
}

pub async fn queue_depths(conn: &mut Conn) -> Result<QueueDepths> {
    let r = sqlx::query(
        "SELECT (SELECT count(*) FROM gc_blob_reviews) AS b,
                (SELECT count(*) FROM gc_manifest_reviews) AS m,
                (SELECT count(*) FROM storage_deletions) AS s",
    )
    .fetch_one(conn)
    .await?;
    Ok(QueueDepths {
        blobs: r.get::<i64, _>("b") as u64,
        manifests: r.get::<i64, _>("m") as u64,
        storage: r.get::<i64, _>("s") as u64,
    })
}

// ---------------------------------------------------------------------------------------------
// Runs

/// What a run was asked to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSpec {
    pub dry_run: bool,
    pub include_untagged: bool,
    pub sweep: bool,
    /// The grace period for this run only, when the operator gave one.
    pub grace_ms: Option<i64>,
    pub started_by: String,
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
    pub state: String,
    pub spec: RunSpec,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    pub figures: Figures,
    pub errors: Vec<String>,
}

const RUN_COLUMNS: &str = "id, state, dry_run, include_untagged, sweep, grace_ms, started_by,
    started_at, finished_at, manifests_deleted, blobs_deleted, bytes_deleted, links_deleted,
    uploads_deleted, orphans_deleted, reviewed, errors";

fn run_from_row(r: &sqlx::sqlite::SqliteRow) -> Run {
    Run {
        id: r.get("id"),
        state: r.get("state"),
        spec: RunSpec {
            dry_run: r.get::<i64, _>("dry_run") != 0,
            include_untagged: r.get::<i64, _>("include_untagged") != 0,
            sweep: r.get::<i64, _>("sweep") != 0,
            grace_ms: r.get("grace_ms"),
            started_by: r.get("started_by"),
        },
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
        figures: Figures {
            reviewed: r.get::<i64, _>("reviewed") as u64,
            manifests: r.get::<i64, _>("manifests_deleted") as u64,
            blobs: r.get::<i64, _>("blobs_deleted") as u64,
            bytes: r.get::<i64, _>("bytes_deleted") as u64,
            links: r.get::<i64, _>("links_deleted") as u64,
            uploads: r.get::<i64, _>("uploads_deleted") as u64,
            orphans: r.get::<i64, _>("orphans_deleted") as u64,
        },
        errors: serde_json::from_str(r.get::<&str, _>("errors")).unwrap_or_default(),
    }
}

/// Starts a run, or returns `Err(active_id)` when one is already running.
pub async fn start_run(
    conn: &mut Conn,
    spec: &RunSpec,
    now: Millis,
) -> Result<std::result::Result<i64, i64>> {
    if let Some(active) = active_run(conn).await? {
        return Ok(Err(active.id));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO gc_runs (state, dry_run, include_untagged, sweep, grace_ms, started_by, started_at)
         VALUES ('running', ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(spec.dry_run)
    .bind(spec.include_untagged)
    .bind(spec.sweep)
    .bind(spec.grace_ms)
    .bind(&spec.started_by)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(Ok(id))
}

pub async fn active_run(conn: &mut Conn) -> Result<Option<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM gc_runs WHERE state = 'running'");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(run_from_row))
}

pub async fn get_run(conn: &mut Conn, id: i64) -> Result<Option<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM gc_runs WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(run_from_row))
}

/// Runs, newest first, before the id `before` when given.
pub async fn list_runs(conn: &mut Conn, before: Option<i64>, limit: i64) -> Result<Vec<Run>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM gc_runs WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(before)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(run_from_row).collect())
}

/// Writes a run's figures so far.
pub async fn record_progress(conn: &mut Conn, id: i64, f: &Figures) -> Result<()> {
    sqlx::query(
        "UPDATE gc_runs SET reviewed = ?, manifests_deleted = ?, blobs_deleted = ?,
                bytes_deleted = ?, links_deleted = ?, uploads_deleted = ?, orphans_deleted = ?
         WHERE id = ?",
    )
    .bind(f.reviewed as i64)
    .bind(f.manifests as i64)
    .bind(f.blobs as i64)
    .bind(f.bytes as i64)
    .bind(f.links as i64)
    .bind(f.uploads as i64)
    .bind(f.orphans as i64)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends a run with its final state, figures and errors.
pub async fn finish_run(
    conn: &mut Conn,
    id: i64,
    state: &str,
    f: &Figures,
    errors: &[String],
    now: Millis,
) -> Result<()> {
    record_progress(conn, id, f).await?;
    sqlx::query("UPDATE gc_runs SET state = ?, errors = ?, finished_at = ? WHERE id = ?")
        .bind(state)
        .bind(serde_json::to_string(errors).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks runs left `running` by a process that stopped as failed.
pub async fn fail_interrupted_runs(conn: &mut Conn, now: Millis) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE gc_runs SET state = 'failed', finished_at = ?,
                errors = json_insert(errors, '$[#]', 'interrupted: the server stopped during the run')
         WHERE state = 'running'",
    )
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// One thing a run deleted or would delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunItem {
    pub kind: String,
    pub repository: Option<String>,
    pub target: String,
    pub size: u64,
}

/// Adds things a run deleted (or would delete) to its items, a few hundred per statement.
pub async fn add_run_items(conn: &mut Conn, run: i64, items: &[RunItem]) -> Result<()> {
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
        let rows =
            serde_json::to_string(&rows).map_err(|e| crate::MetaError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO gc_run_items (run_id, kind, repository, target, size)
             SELECT ?1, value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?2)
             ORDER BY key",
        )
        .bind(run)
        .bind(rows)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn run_items(conn: &mut Conn, run: i64) -> Result<Vec<RunItem>> {
    let rows = sqlx::query(
        "SELECT kind, repository, target, size FROM gc_run_items WHERE run_id = ? ORDER BY rowid",
    )
    .bind(run)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| RunItem {
            kind: r.get("kind"),
            repository: r.get("repository"),
            target: r.get("target"),
            size: r.get::<i64, _>("size") as u64,
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Consistency check

/// Blobs in digest order after `after`, at most `limit`, each with whether its bytes are
/// present (not marked missing): the check walks them in pages.
pub async fn blobs_page(
    conn: &mut Conn,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(Blob, bool)>> {
    let rows = sqlx::query(
        "SELECT digest, size, storage_key, state = 'present' AS present FROM blobs
         WHERE (?1 IS NULL OR digest > ?1) ORDER BY digest LIMIT ?2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                Blob {
                    digest: crate::digest_col(r.try_get::<&str, _>("digest")?)?,
                    size: r.try_get::<i64, _>("size")? as u64,
                    storage_key: r.try_get("storage_key")?,
                },
                r.try_get("present")?,
            ))
        })
        .collect()
}

/// Where a blob is used: (repository, manifest digest, tag) for every live manifest that
/// references it, and every tagged index listing such a manifest; the tag is `None` for an
/// untagged manifest. What a lost blob breaks.
pub async fn users_of_blob(
    conn: &mut Conn,
    digest: &Digest,
) -> Result<Vec<(String, String, Option<String>)>> {
    let rows = sqlx::query(
        "SELECT r.name AS repository, m.digest, t.name AS tag FROM manifest_blob_references mr
         JOIN manifests m ON m.id = mr.manifest_id JOIN repositories r ON r.id = m.repository_id
         LEFT JOIN tags t ON t.manifest_id = m.id
         WHERE mr.blob_digest = ?1 AND m.deleted_at IS NULL
         UNION
         SELECT r.name, p.digest, t.name FROM manifest_blob_references mr
         JOIN manifest_child_references c ON c.child_id = mr.manifest_id
         JOIN manifests p ON p.id = c.parent_id JOIN repositories r ON r.id = p.repository_id
         JOIN tags t ON t.manifest_id = p.id
         WHERE mr.blob_digest = ?1 AND p.deleted_at IS NULL
         ORDER BY 1, 3, 2",
    )
    .bind(digest.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("repository")?,
                r.try_get("digest")?,
                r.try_get("tag")?,
            ))
        })
        .collect()
}

/// (repository, manifest digest, blob digest) for each live manifest's blob that its
/// repository does not link: a client could pull the manifest but not the blob.
pub async fn unlinked_references(conn: &mut Conn) -> Result<Vec<(i64, String, String, String)>> {
    let rows = sqlx::query(
        "SELECT m.repository_id, r.name, m.digest, mr.blob_digest
         FROM manifest_blob_references mr
         JOIN manifests m ON m.id = mr.manifest_id
         JOIN repositories r ON r.id = m.repository_id
         WHERE m.deleted_at IS NULL AND NOT EXISTS (
             SELECT 1 FROM repository_blobs rb
             WHERE rb.repository_id = m.repository_id AND rb.digest = mr.blob_digest)
         ORDER BY r.name, m.digest",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get("repository_id"),
                r.get("name"),
                r.get("digest"),
                r.get("blob_digest"),
            )
        })
        .collect())
}

/// (repository, tag, digest) of tags that point at a deleted manifest.
pub async fn tags_on_deleted(conn: &mut Conn) -> Result<Vec<(String, String, String)>> {
    let rows = sqlx::query(
        "SELECT r.name, t.name AS tag, m.digest FROM tags t
         JOIN manifests m ON m.id = t.manifest_id JOIN repositories r ON r.id = t.repository_id
         WHERE m.deleted_at IS NOT NULL ORDER BY r.name, t.name",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("name"), r.get("tag"), r.get("digest")))
        .collect())
}

/// Manifest review entries in (queued_at, id) order after `after`: a GC run walks the whole
/// queue this way, whatever the entries' claims and deferrals, because its rules may differ
/// from the workers'.
pub async fn manifest_entries_after(
    conn: &mut Conn,
    after: Option<(Millis, ManifestId)>,
    limit: i64,
) -> Result<Vec<(Millis, ManifestId)>> {
    let (t, id) = after.map_or((i64::MIN, i64::MIN), |(t, id)| (t, id.0));
    let rows = sqlx::query(
        "SELECT queued_at, manifest_id FROM gc_manifest_reviews
         WHERE (queued_at, manifest_id) > (?1, ?2) ORDER BY queued_at, manifest_id LIMIT ?3",
    )
    .bind(t)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("queued_at"), ManifestId(r.get("manifest_id"))))
        .collect())
}

/// Blob review entries in (queued_at, digest) order after `after`.
pub async fn blob_entries_after(
    conn: &mut Conn,
    after: Option<(Millis, String)>,
    limit: i64,
) -> Result<Vec<(Millis, Digest)>> {
    let (t, d) = after.unwrap_or((i64::MIN, String::new()));
    let rows = sqlx::query(
        "SELECT queued_at, digest FROM gc_blob_reviews
         WHERE (queued_at, digest) > (?1, ?2) ORDER BY queued_at, digest LIMIT ?3",
    )
    .bind(t)
    .bind(d)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.get("queued_at"),
                crate::digest_col(r.get::<&str, _>("digest"))?,
            ))
        })
        .collect()
}
