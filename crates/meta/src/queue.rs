//! The collector's queues: what must be reviewed (blobs with the repository links to re-check,
//! manifests), and the storage keys the catalogue has forgotten, waiting to be deleted.
//!
//! Queues are keyed by what they hold and filled by upsert, so events merge and none is lost:
//! the latest event counts, and any deferral or claim is dropped so the entry is looked at
//! again. The aggregates call the writers here in the transaction of the change that can make
//! garbage; the collector claims and walks the entries. This module depends on the row ids
//! only, never on the aggregates.

use crate::db::{Dialect, dual, execute, rows, values};
use shipshape_oci::Digest;

use crate::ids::{ManifestId, RepoId};
use crate::{Conn, Millis, Result};

/// How a queue entry merges with one already queued for the same object: the latest event
/// counts, and any deferral or claim is dropped so the entry is looked at again.
macro_rules! merge_blob_review {
    () => {
        " ON CONFLICT (digest) DO UPDATE
             SET queued_at = CASE WHEN excluded.queued_at > gc_blob_reviews.queued_at
                                  THEN excluded.queued_at ELSE gc_blob_reviews.queued_at END,
                 reason = excluded.reason, not_before = 0"
    };
}

macro_rules! merge_manifest_review {
    () => {
        " ON CONFLICT (manifest_id) DO UPDATE
             SET queued_at = CASE WHEN excluded.queued_at > gc_manifest_reviews.queued_at
                                  THEN excluded.queued_at ELSE gc_manifest_reviews.queued_at END,
                 reason = excluded.reason, not_before = 0"
    };
}

pub(crate) use {merge_blob_review, merge_manifest_review};

/// Queues a blob for review; merges with an entry already queued (the latest event counts).
pub async fn queue_blob(
    conn: &mut dyn Conn,
    digest: &Digest,
    now: Millis,
    reason: &str,
) -> Result<()> {
    execute!(conn, |cx| sqlx::query(concat!(
        "INSERT INTO gc_blob_reviews (digest, queued_at, reason) VALUES ($1, $2, $3)",
        merge_blob_review!()
    ))
    .bind(digest.to_string())
    .bind(now)
    .bind(reason))?;
    Ok(())
}

/// Queues a blob for review with one of its repository links to re-check (an upload or mount:
/// if no manifest of the repository comes to reference the blob, the link goes).
pub async fn queue_link(
    conn: &mut dyn Conn,
    repo: RepoId,
    digest: &Digest,
    now: Millis,
    reason: &str,
) -> Result<()> {
    queue_blob(conn, digest, now, reason).await?;
    execute!(conn, |cx| sqlx::query(
        "INSERT INTO gc_link_reviews (digest, repository_id) VALUES ($1, $2)
         ON CONFLICT (digest, repository_id) DO NOTHING",
    )
    .bind(digest.to_string())
    .bind(repo.0))?;
    Ok(())
}

/// Queues every blob linked into a repository (before the links are removed).
pub async fn queue_links_of(
    conn: &mut dyn Conn,
    repo: RepoId,
    now: Millis,
    reason: &str,
) -> Result<()> {
    execute!(conn, |cx| sqlx::query(concat!(
        "INSERT INTO gc_blob_reviews (digest, queued_at, reason)
         SELECT digest, $1, $2 FROM repository_blobs WHERE repository_id = $3 AND true
         ORDER BY digest",
        merge_blob_review!()
    ))
    .bind(now)
    .bind(reason)
    .bind(repo.0))?;
    Ok(())
}

/// Queues a manifest for review.
pub async fn queue_manifest(
    conn: &mut dyn Conn,
    id: ManifestId,
    now: Millis,
    reason: &str,
) -> Result<()> {
    execute!(conn, |cx| sqlx::query(concat!(
        "INSERT INTO gc_manifest_reviews (manifest_id, queued_at, reason) VALUES ($1, $2, $3)",
        merge_manifest_review!()
    ))
    .bind(id.0)
    .bind(now)
    .bind(reason))?;
    Ok(())
}

/// Queues the manifest of a repository with this digest, if there is one.
pub async fn queue_manifest_digest(
    conn: &mut dyn Conn,
    repo: RepoId,
    digest: &Digest,
    now: Millis,
    reason: &str,
) -> Result<()> {
    execute!(conn, |cx| sqlx::query(concat!(
        "INSERT INTO gc_manifest_reviews (manifest_id, queued_at, reason)
         SELECT id, $1, $2 FROM manifests WHERE repository_id = $3 AND digest = $4",
        merge_manifest_review!()
    ))
    .bind(now)
    .bind(reason)
    .bind(repo.0)
    .bind(digest.to_string()))?;
    Ok(())
}

/// Queues every manifest of a repository (repository deletion).
pub async fn queue_manifests_of(
    conn: &mut dyn Conn,
    repo: RepoId,
    now: Millis,
    reason: &str,
) -> Result<()> {
    execute!(conn, |cx| sqlx::query(concat!(
        "INSERT INTO gc_manifest_reviews (manifest_id, queued_at, reason)
         SELECT id, $1, $2 FROM manifests WHERE repository_id = $3 AND true ORDER BY id",
        merge_manifest_review!()
    ))
    .bind(now)
    .bind(reason)
    .bind(repo.0))?;
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
pub async fn claim_blobs(conn: &mut dyn Conn, due: Due, limit: i64) -> Result<Vec<Digest>> {
    let rows: Vec<String> = values!(conn, fetch_all, |cx| sqlx::query_scalar(cx.sql(dual!(
        "UPDATE gc_blob_reviews SET not_before = $1
         WHERE digest IN (SELECT digest FROM gc_blob_reviews
                          WHERE queued_at <= $2 AND not_before <= $3
                          ORDER BY not_before, queued_at LIMIT $4" skip_locked ")
         RETURNING digest"
    )))
    .bind(due.claim_until)
    .bind(due.queued_by)
    .bind(due.now)
    .bind(crate::limit(limit)))?;
    rows.iter().map(|d| crate::digest_col(d)).collect()
}

/// Claims a batch of due manifest reviews, oldest first.
pub async fn claim_manifests(conn: &mut dyn Conn, due: Due, limit: i64) -> Result<Vec<ManifestId>> {
    let rows: Vec<i64> = values!(conn, fetch_all, |cx| {
        sqlx::query_scalar(cx.sql(dual!(
            "UPDATE gc_manifest_reviews SET not_before = $1
         WHERE manifest_id IN (SELECT manifest_id FROM gc_manifest_reviews
                               WHERE queued_at <= $2 AND not_before <= $3 ORDER BY queued_at
                               LIMIT $4" skip_locked ")
         RETURNING manifest_id"
        )))
        .bind(due.claim_until)
        .bind(due.queued_by)
        .bind(due.now)
        .bind(crate::limit(limit))
    })?;
    Ok(rows.into_iter().map(ManifestId).collect())
}

/// Manifest review entries in (queued_at, id) order after `after`: a GC run walks the whole
/// queue this way, whatever the entries' claims and deferrals, because its rules may differ
/// from the workers'.
pub async fn manifest_entries_after(
    conn: &mut dyn Conn,
    after: Option<(Millis, ManifestId)>,
    limit: i64,
) -> Result<Vec<(Millis, ManifestId)>> {
    let (t, id) = after.map_or((i64::MIN, i64::MIN), |(t, id)| (t, id.0));
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT queued_at, manifest_id FROM gc_manifest_reviews
         WHERE (queued_at, manifest_id) > ($1, $2) ORDER BY queued_at, manifest_id LIMIT $3",
    )
    .bind(t)
    .bind(id)
    .bind(crate::limit(limit)))?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("queued_at")?,
                ManifestId(r.try_get("manifest_id")?),
            ))
        })
        .collect()
}

/// Blob review entries in (queued_at, digest) order after `after`.
pub async fn blob_entries_after(
    conn: &mut dyn Conn,
    after: Option<(Millis, String)>,
    limit: i64,
) -> Result<Vec<(Millis, Digest)>> {
    let (t, d) = after.unwrap_or((i64::MIN, String::new()));
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT queued_at, digest FROM gc_blob_reviews
         WHERE (queued_at, digest) > ($1, $2) ORDER BY queued_at, digest LIMIT $3",
    )
    .bind(t)
    .bind(d)
    .bind(crate::limit(limit)))?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("queued_at")?,
                crate::digest_col(r.try_get::<&str>("digest")?)?,
            ))
        })
        .collect()
}

/// Queues a storage key the catalogue no longer records for deletion by the drainer.
pub async fn queue_storage_deletion(conn: &mut dyn Conn, key: &str, now: Millis) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "INSERT INTO storage_deletions (storage_key, queued_at) VALUES ($1, $2)
         ON CONFLICT (storage_key) DO NOTHING",
    )
    .bind(key)
    .bind(now))?;
    Ok(())
}

/// Claims a batch of storage keys to delete. Call it in a synced transaction: the claim writes
/// every row it returns, so its commit syncs the log and with it every unsynced review that
/// forgot those keys (`Catalogue::begin_unsynced`).
pub async fn claim_storage_deletions(
    conn: &mut dyn Conn,
    now: Millis,
    claim_until: Millis,
    limit: i64,
) -> Result<Vec<String>> {
    claim_deletions(conn, now, claim_until, limit, false).await
}

/// As `claim_storage_deletions`, and also the keys another drain claimed and has not failed to
/// delete: a GC run's drain, which is asked to free everything now. A claim runs for a minute,
/// and its drain may have died with its process (`crash_matrix.rs`, `gc.deletions-claimed`);
/// if it lives, both delete the object and the second finds it gone, which counts as deleted.
/// Keys whose deletion failed keep their back-off.
pub async fn claim_storage_deletions_for_run(
    conn: &mut dyn Conn,
    now: Millis,
    claim_until: Millis,
    limit: i64,
) -> Result<Vec<String>> {
    claim_deletions(conn, now, claim_until, limit, true).await
}

async fn claim_deletions(
    conn: &mut dyn Conn,
    now: Millis,
    claim_until: Millis,
    limit: i64,
    claimed_too: bool,
) -> Result<Vec<String>> {
    Ok(values!(conn, fetch_all, |cx| sqlx::query_scalar(cx.sql(
        dual!(
            "UPDATE storage_deletions SET not_before = $1
         WHERE storage_key IN (SELECT storage_key FROM storage_deletions
                               WHERE not_before <= $2 OR ($4 AND attempts = 0)
                               ORDER BY queued_at LIMIT $3" skip_locked ")
         RETURNING storage_key"
        )
    ))
    .bind(claim_until)
    .bind(now)
    .bind(crate::limit(limit))
    .bind(claimed_too))?)
}

/// Forgets storage keys whose objects are gone.
pub async fn storage_deleted(conn: &mut dyn Conn, keys: &[&str]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let keys = crate::json(keys)?;
    execute!(conn, |cx| sqlx::query(cx.sql(dual!(
        "DELETE FROM storage_deletions WHERE storage_key IN " texts(1)
    )))
    .bind(keys))?;
    Ok(())
}

/// Puts off a key whose deletion failed, longer after each failure (at most an hour).
pub async fn storage_deletion_failed(conn: &mut dyn Conn, key: &str, now: Millis) -> Result<()> {
    execute!(conn, |cx| {
        sqlx::query(cx.sql(dual!(
        "UPDATE storage_deletions SET attempts = attempts + 1,
                not_before = $1 + " least "(3600000, 1000 * (CAST(1 AS BIGINT) << CAST(" least "(attempts, 12) AS INTEGER)))
         WHERE storage_key = $2"
    )))
    .bind(now)
    .bind(key)
    })?;
    Ok(())
}

/// Depth of each queue, for metrics and the status of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepths {
    pub blobs: u64,
    pub manifests: u64,
    pub storage: u64,
}

pub async fn queue_depths(conn: &mut dyn Conn) -> Result<QueueDepths> {
    let r = rows!(conn, fetch_one, |cx| sqlx::query(
        "SELECT (SELECT count(*) FROM gc_blob_reviews) AS b,
                (SELECT count(*) FROM gc_manifest_reviews) AS m,
                (SELECT count(*) FROM storage_deletions) AS s",
    ))?;
    Ok(QueueDepths {
        blobs: r.try_get::<i64>("b")? as u64,
        manifests: r.try_get::<i64>("m")? as u64,
        storage: r.try_get::<i64>("s")? as u64,
    })
}

/// When the oldest entry of each queue was queued (`None`: the queue is empty). A review entry
/// waits the grace period before it is due, so its age sits near `review_delay` on a collector
/// that keeps up and grows past it on one that does not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueOldest {
    pub blobs: Option<Millis>,
    pub manifests: Option<Millis>,
    pub storage: Option<Millis>,
}

/// The oldest entry of each queue: one index probe for each review queue; the storage queue,
/// which the drainer empties after every pass, is read whole.
pub async fn oldest_entries(conn: &mut dyn Conn) -> Result<QueueOldest> {
    let r = rows!(conn, fetch_one, |cx| sqlx::query(
        "SELECT (SELECT min(queued_at) FROM gc_blob_reviews) AS b,
                (SELECT min(queued_at) FROM gc_manifest_reviews) AS m,
                (SELECT min(queued_at) FROM storage_deletions) AS s",
    ))?;
    Ok(QueueOldest {
        blobs: r.try_get("b")?,
        manifests: r.try_get("m")?,
        storage: r.try_get("s")?,
    })
}

/// Empties the review queues, as the background workers leave them once every entry was found
/// referenced or tagged. Only for setting up a registry in that steady state (benchmarks that
/// write a catalogue directly); a running registry never calls it.
pub async fn clear_reviews(conn: &mut dyn Conn) -> Result<()> {
    for table in ["gc_blob_reviews", "gc_manifest_reviews", "gc_link_reviews"] {
        // The table comes from the constant list above, never from input.
        execute!(conn, |cx| sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table}"
        ))))?;
    }
    Ok(())
}
