//! Storage figures, correct under deduplication: every blob is counted once in the total and
//! classified as in use, held only for restore, or reclaimable.

use sqlx::Row;

use crate::manifests::ManifestId;
use crate::{Conn, Millis, Result};

/// Bytes of blobs, by what holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of the blobs the repository can serve or its manifests reference.
    pub stored: u64,
    /// Of those, bytes no other repository has.
    pub unique: u64,
    /// Of those, bytes that no manifest needs: a collection would free them.
    pub reclaimable: u64,
    /// Of those, bytes needed only by deleted manifests that can still be restored.
    pub held_for_restore: u64,
    pub blobs: u64,
}

/// Classifies every blob the way the collector would decide it now with no grace period:
/// `live` if a tagged manifest needs it (directly, as an index child, or as a referrer of a
/// needed subject), `held` if only deleted-but-restorable content needs it (a deleted manifest,
/// or a manifest a deleted tag pointed at, within the restore window, with their children and
/// referrers), `reclaimable` otherwise. `?1` is the restore cutoff.
const CLASSIFIED: &str = "
    held_root(id) AS (
        SELECT id FROM manifests WHERE deleted_at IS NOT NULL AND deleted_at > ?1
        UNION
        SELECT m.id FROM tag_history h
        JOIN manifests m ON m.repository_id = h.repository_id AND m.digest = h.from_digest
        WHERE h.action = 'deleted' AND h.at > ?1),
    live_set(id) AS (
        SELECT manifest_id FROM tags
        UNION
        SELECT c.child_id FROM manifest_child_references c JOIN live_set l ON c.parent_id = l.id
        UNION
        SELECT r.id FROM live_set l JOIN manifests s ON s.id = l.id
        JOIN manifests r ON r.repository_id = s.repository_id AND r.subject_digest = s.digest),
    held_set(id) AS (
        SELECT id FROM held_root
        UNION
        SELECT c.child_id FROM manifest_child_references c JOIN held_set h ON c.parent_id = h.id
        UNION
        SELECT r.id FROM held_set h JOIN manifests s ON s.id = h.id
        JOIN manifests r ON r.repository_id = s.repository_id AND r.subject_digest = s.digest),
    live_ref AS (SELECT DISTINCT blob_digest AS d FROM manifest_blob_references
                 WHERE manifest_id IN (SELECT id FROM live_set)),
    held_ref AS (SELECT DISTINCT blob_digest AS d FROM manifest_blob_references
                 WHERE manifest_id IN (SELECT id FROM held_set)),
    classified AS (SELECT b.digest, b.size,
                          CASE WHEN b.digest IN (SELECT d FROM live_ref) THEN 'live'
                               WHEN b.digest IN (SELECT d FROM held_ref) THEN 'held'
                               ELSE 'reclaimable' END AS class
                   FROM blobs b),
    membership AS (SELECT rb.repository_id, rb.digest FROM repository_blobs rb
                   UNION
                   SELECT m.repository_id, r.blob_digest FROM manifest_blob_references r
                   JOIN manifests m ON m.id = r.manifest_id)";

/// Figures for the whole registry. `restore_cutoff`: deletions after this time are still
/// restorable.
pub async fn total(conn: &mut Conn, restore_cutoff: Millis) -> Result<Usage> {
    let sql = format!(
        "WITH RECURSIVE {CLASSIFIED}
         SELECT coalesce(sum(size), 0) AS stored,
                coalesce(sum(size) FILTER (WHERE class = 'reclaimable'), 0) AS reclaimable,
                coalesce(sum(size) FILTER (WHERE class = 'held'), 0) AS held,
                count(*) AS blobs
         FROM classified"
    );
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(restore_cutoff)
        .fetch_one(conn)
        .await?;
    let stored = r.get::<i64, _>("stored") as u64;
    Ok(Usage {
        stored,
        unique: stored,
        reclaimable: r.get::<i64, _>("reclaimable") as u64,
        held_for_restore: r.get::<i64, _>("held") as u64,
        blobs: r.get::<i64, _>("blobs") as u64,
    })
}

/// Bytes of the blobs that `manifests` (with their children and referrers) reference and no
/// tagged content needs: what deleting those manifests frees once nothing restorable holds
/// them. Called after the deletions, in the same transaction.
pub async fn bytes_only_for(conn: &mut Conn, manifests: &[ManifestId]) -> Result<u64> {
    if manifests.is_empty() {
        return Ok(0);
    }
    let ids = serde_json::to_string(&manifests.iter().map(|m| m.0).collect::<Vec<_>>())
        .expect("ids serialise");
    let bytes: i64 = sqlx::query_scalar(
        "WITH RECURSIVE
            tree(id) AS (
                SELECT value FROM json_each(?1)
                UNION
                SELECT c.child_id FROM manifest_child_references c JOIN tree t ON c.parent_id = t.id
                UNION
                SELECT r.id FROM tree t JOIN manifests s ON s.id = t.id
                JOIN manifests r ON r.repository_id = s.repository_id AND r.subject_digest = s.digest),
            live_set(id) AS (
                SELECT manifest_id FROM tags
                UNION
                SELECT c.child_id FROM manifest_child_references c JOIN live_set l ON c.parent_id = l.id
                UNION
                SELECT r.id FROM live_set l JOIN manifests s ON s.id = l.id
                JOIN manifests r ON r.repository_id = s.repository_id AND r.subject_digest = s.digest)
         SELECT coalesce(sum(b.size), 0) FROM blobs b
         WHERE b.digest IN (SELECT blob_digest FROM manifest_blob_references
                            WHERE manifest_id IN (SELECT id FROM tree))
           AND b.digest NOT IN (SELECT blob_digest FROM manifest_blob_references
                                WHERE manifest_id IN (SELECT id FROM live_set))",
    )
    .bind(ids)
    .fetch_one(conn)
    .await?;
    Ok(bytes as u64)
}

/// Figures per live repository, by name.
pub async fn per_repository(
    conn: &mut Conn,
    restore_cutoff: Millis,
    only: Option<&str>,
) -> Result<Vec<(String, Usage)>> {
    let sql = format!(
        "WITH RECURSIVE {CLASSIFIED},
         sharing AS (SELECT digest, count(DISTINCT repository_id) AS repos FROM membership GROUP BY digest)
         SELECT r.name,
                coalesce(sum(c.size), 0) AS stored,
                coalesce(sum(c.size) FILTER (WHERE s.repos = 1), 0) AS uniq,
                coalesce(sum(c.size) FILTER (WHERE c.class = 'reclaimable'), 0) AS reclaimable,
                coalesce(sum(c.size) FILTER (WHERE c.class = 'held'), 0) AS held,
                count(c.digest) AS blobs
         FROM repositories r
         LEFT JOIN membership mb ON mb.repository_id = r.id
         LEFT JOIN classified c ON c.digest = mb.digest
         LEFT JOIN sharing s ON s.digest = mb.digest
         WHERE r.deleted_at IS NULL AND (?2 IS NULL OR r.name = ?2)
         GROUP BY r.id ORDER BY r.name"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(restore_cutoff)
        .bind(only)
        .fetch_all(conn)
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get("name"),
                Usage {
                    stored: r.get::<i64, _>("stored") as u64,
                    unique: r.get::<i64, _>("uniq") as u64,
                    reclaimable: r.get::<i64, _>("reclaimable") as u64,
                    held_for_restore: r.get::<i64, _>("held") as u64,
                    blobs: r.get::<i64, _>("blobs") as u64,
                },
            )
        })
        .collect())
}
