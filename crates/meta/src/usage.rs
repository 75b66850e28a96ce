//! Storage figures, correct under deduplication and in agreement with the collector: every blob
//! and manifest is counted once and classified the way the collector would decide it now, so
//! "reclaimable" is exactly what a collection with the registry's settings frees.

use crate::db::{Dialect, rows, values};

use crate::manifests::ManifestId;
use crate::runs::ItemKind;
use crate::{Conn, Millis, Result};

/// The collector's settings and the instant the figures are taken at.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub now: Millis,
    /// Deletions (and tags leaving a manifest) after this instant can still be restored.
    pub restore_cutoff: Millis,
    /// Garbage younger than this is not collected yet.
    pub grace: Millis,
    /// A blob link is kept this long after its last renewal (the lease of a client told the
    /// blob exists, or the grace period when longer).
    pub link_hold: Millis,
    /// An untagged manifest is kept this long after a client pushed it.
    pub manifest_lease: Millis,
    /// Manifests no tag, index or subject holds are collected.
    pub untagged_manifests: bool,
    /// Referrers whose subject is gone are collected.
    pub orphan_referrers: bool,
}

/// Bytes of blobs and manifests, by what holds them: `stored` is the sum of the four classes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub stored: u64,
    /// Of those, bytes no other repository has.
    pub unique: u64,
    /// Needed by live content: tagged manifests, what they list, their referrers (and what the
    /// settings keep: untagged manifests or orphan referrers when those are not collected).
    pub in_use: u64,
    /// Needed only by deleted content that can still be restored.
    pub held_for_restore: u64,
    /// Garbage the collector leaves for now: younger than the grace period, or a blob a client
    /// was just told exists (its lease).
    pub in_grace: u64,
    /// Garbage a collection frees now.
    pub reclaimable: u64,
    pub blobs: u64,
    pub manifests: u64,
}

/// Classifies every manifest (`mclass`) and blob (`bclass`) as `live`, `held`, `grace` or
/// `reclaimable`. Parameters: $1 now, $2 restore cutoff, $3 grace, $4 link hold, $5 manifest
/// lease, $6 collect untagged manifests, $7 collect orphan referrers.
///
/// A manifest is live when a tag points at it, a live index lists it, its subject is live, or
/// the settings never collect its kind; held when it or a tag leaving it was deleted within the
/// restore window (with what it lists and its referrers); otherwise garbage, due once its own
/// grace and lease have passed and anything listing it or being its subject is due (the
/// collector purges those first). A blob is live or held with the manifests referencing it,
/// otherwise due once those are and its repository links' leases have run out.
///
/// `@blob_due@` and `@materialized@` are filled in for the backend by `dialect`.
const CLASSIFIED: &str = "
    edges(id, next) AS (
        SELECT parent_id, child_id FROM manifest_child_references
        UNION ALL
        SELECT s.id, r.id FROM manifests s
        JOIN manifests r ON r.repository_id = s.repository_id AND r.subject_digest = s.digest),
    left_tag(id, at) AS (
        SELECT m.id, max(h.at) FROM tag_history h
        JOIN manifests m ON m.repository_id = h.repository_id AND m.digest = h.from_digest
        GROUP BY m.id),
    held_root(id) AS (
        SELECT id FROM manifests WHERE deleted_at > $2
        UNION SELECT id FROM left_tag WHERE at > $2),
    live_root(id) AS (
        SELECT manifest_id FROM tags
        UNION SELECT id FROM manifests WHERE deleted_at IS NULL
            AND ((subject_digest IS NULL AND NOT $6) OR (subject_digest IS NOT NULL AND NOT $7))),
    live_set(id) AS (
        SELECT id FROM live_root
        UNION SELECT e.next FROM live_set l JOIN edges e ON e.id = l.id),
    held_set(id) AS (
        SELECT id FROM held_root
        UNION SELECT e.next FROM held_set h JOIN edges e ON e.id = h.id),
    own_due(id, due) AS (
        SELECT m.id, greatest(greatest(m.pushed_at, coalesce(lt.at, 0), coalesce(m.deleted_at, 0)) + $3,
                              m.pushed_at + $5)
        FROM manifests m LEFT JOIN left_tag lt ON lt.id = m.id
        WHERE m.id NOT IN (SELECT id FROM live_set) AND m.id NOT IN (SELECT id FROM held_set)),
    garbage_tree(id, due) AS (
        SELECT o.id, o.due FROM own_due o JOIN manifests m ON m.id = o.id
        WHERE NOT EXISTS (SELECT 1 FROM manifest_child_references c WHERE c.child_id = o.id)
          AND NOT EXISTS (SELECT 1 FROM manifests s
                          WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest)
        UNION SELECT e.next, greatest(g.due, o.due) FROM garbage_tree g
              JOIN edges e ON e.id = g.id
              JOIN own_due o ON o.id = e.next),
    garbage(id, due) AS (SELECT id, max(due) FROM garbage_tree GROUP BY id),
    mdue(id, repository_id, size, live, held, due) AS (
        SELECT m.id, m.repository_id, m.size,
               m.id IN (SELECT id FROM live_set), m.id IN (SELECT id FROM held_set),
               coalesce((SELECT due FROM garbage g WHERE g.id = m.id), 0)
        FROM manifests m),
    mclass(id, repository_id, size, class, due) AS @materialized@ (
        SELECT id, repository_id, size,
               CASE WHEN live THEN 'live' WHEN held THEN 'held'
                    WHEN due > $1 THEN 'grace' ELSE 'reclaimable' END,
               due
        FROM mdue),
    @blob_due@,
    bclass(digest, size, class, due) AS (
        SELECT digest, size,
               CASE WHEN live THEN 'live' WHEN held THEN 'held'
                    WHEN due > $1 THEN 'grace' ELSE 'reclaimable' END,
               due
        FROM bdue),
    membership(repository_id, digest) AS (
        SELECT rb.repository_id, rb.digest FROM repository_blobs rb
        UNION
        SELECT m.repository_id, r.blob_digest FROM manifest_blob_references r
        JOIN manifests m ON m.id = r.manifest_id)";

/// `bdue` of `CLASSIFIED` on SQLite: per blob, lookups in the manifests' classes (which
/// SQLite indexes on the fly).
const BLOB_DUE_SQLITE: &str = "
    bdue(digest, size, live, held, due) AS (
        SELECT b.digest, b.size,
               EXISTS (SELECT 1 FROM manifest_blob_references r
                       JOIN mclass c ON c.id = r.manifest_id
                       WHERE r.blob_digest = b.digest AND c.class = 'live'),
               EXISTS (SELECT 1 FROM manifest_blob_references r
                       JOIN mclass c ON c.id = r.manifest_id
                       WHERE r.blob_digest = b.digest AND c.class = 'held'),
               greatest(coalesce((SELECT max(g.due) FROM manifest_blob_references r
                                  JOIN garbage g ON g.id = r.manifest_id
                                  WHERE r.blob_digest = b.digest), 0),
                        coalesce((SELECT max(rb.renewed_at) FROM repository_blobs rb
                                  WHERE rb.digest = b.digest) + $4, 0))
        FROM blobs b)";

/// `bdue` of `CLASSIFIED` on PostgreSQL, the same figures: the blobs' references are grouped
/// once. PostgreSQL cannot index a common table expression, so the per-blob lookups of the
/// SQLite text scanned the garbage once per blob (2 s at 100 000 blobs with 1% garbage,
/// 0.5 s grouped); SQLite is slower grouped (text keys sorted), so each has its own.
const BLOB_DUE_POSTGRES: &str = "
    blob_refs(digest, live, held, due) AS (
        SELECT r.blob_digest, max(CASE WHEN c.class = 'live' THEN 1 ELSE 0 END),
               max(CASE WHEN c.class = 'held' THEN 1 ELSE 0 END), max(c.due)
        FROM manifest_blob_references r JOIN mclass c ON c.id = r.manifest_id
        GROUP BY r.blob_digest),
    renewed(digest, at) AS (
        SELECT digest, max(renewed_at) FROM repository_blobs GROUP BY digest),
    bdue(digest, size, live, held, due) AS (
        SELECT b.digest, b.size, coalesce(br.live, 0) = 1, coalesce(br.held, 0) = 1,
               greatest(coalesce(br.due, 0), coalesce(rn.at + $4, 0))
        FROM blobs b LEFT JOIN blob_refs br ON br.digest = b.digest
        LEFT JOIN renewed rn ON rn.digest = b.digest)";

/// The sums every figure query ends with, over rows of (size, class).
const SUMS: &str = "
    CAST(coalesce(sum(size), 0) AS BIGINT) AS stored,
    CAST(coalesce(sum(size) FILTER (WHERE class = 'live'), 0) AS BIGINT) AS live,
    CAST(coalesce(sum(size) FILTER (WHERE class = 'held'), 0) AS BIGINT) AS held,
    CAST(coalesce(sum(size) FILTER (WHERE class = 'grace'), 0) AS BIGINT) AS grace,
    CAST(coalesce(sum(size) FILTER (WHERE class = 'reclaimable'), 0) AS BIGINT) AS reclaimable";

/// Binds `Rules` to $1..$7, in the order `CLASSIFIED` names them.
macro_rules! bind_rules {
    ($q:expr, $r:expr) => {
        $q.bind($r.now)
            .bind($r.restore_cutoff)
            .bind($r.grace)
            .bind($r.link_hold)
            .bind($r.manifest_lease)
            .bind($r.untagged_manifests)
            .bind($r.orphan_referrers)
    };
}

/// The text of a figures query for the backend: `@blob_due@` is the backend's `bdue`,
/// `@materialized@` asks PostgreSQL to take the manifests' classes once (SQLite, told so,
/// stops indexing them for its lookups), and `greatest` is SQLite's scalar `max`.
fn dialect(postgres: bool, sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(if postgres {
        sql.replace("@blob_due@", BLOB_DUE_POSTGRES)
            .replace("@materialized@", "MATERIALIZED")
    } else {
        sql.replace("@blob_due@", BLOB_DUE_SQLITE)
            .replace("@materialized@", "")
            .replace("greatest(", "max(")
    })
}

fn usage_from_row(r: &crate::db::Row, unique: Option<i64>) -> Result<Usage> {
    let n = |col: &str| -> Result<u64> { Ok(r.try_get::<i64>(col)? as u64) };
    let stored = n("stored")?;
    Ok(Usage {
        stored,
        unique: unique.map_or(stored, |u| u as u64),
        in_use: n("live")?,
        held_for_restore: n("held")?,
        in_grace: n("grace")?,
        reclaimable: n("reclaimable")?,
        blobs: n("blobs")?,
        manifests: n("manifests")?,
    })
}

/// Figures for the whole registry.
pub async fn total(conn: &mut dyn Conn, rules: &Rules) -> Result<Usage> {
    Ok(total_until(conn, rules).await?.0)
}

/// Figures for the whole registry, and the first instant after `rules.now` at which time
/// alone changes them (garbage leaving its grace period or lease, a deletion leaving its
/// restore window); `None` when nothing waits on time. Until then, only writes change them.
pub async fn total_until(conn: &mut dyn Conn, rules: &Rules) -> Result<(Usage, Option<Millis>)> {
    let sql = format!(
        "WITH RECURSIVE {CLASSIFIED},
         everything(size, class, is_blob) AS (
             SELECT size, class, 1 FROM bclass UNION ALL SELECT size, class, 0 FROM mclass),
         turns(at) AS (
             SELECT due FROM mclass WHERE class = 'grace'
             UNION ALL SELECT due FROM bclass WHERE class = 'grace'
             UNION ALL SELECT deleted_at + ($1 - $2) FROM manifests WHERE deleted_at > $2
             UNION ALL SELECT at + ($1 - $2) FROM left_tag WHERE at > $2)
         SELECT {SUMS},
                count(*) FILTER (WHERE is_blob = 1) AS blobs,
                count(*) FILTER (WHERE is_blob = 0) AS manifests,
                (SELECT min(at) FROM turns) AS turns_at
         FROM everything"
    );
    let r = rows!(conn, fetch_one, |cx| bind_rules!(
        sqlx::query(dialect(cx.postgres(), sql)),
        rules
    ))?;
    Ok((usage_from_row(&r, None)?, r.try_get("turns_at")?))
}

/// Figures per live repository (or only the one named `only`), by name. A blob shared by
/// several repositories counts in each of their rows (and once in the total).
pub async fn per_repository(
    conn: &mut dyn Conn,
    rules: &Rules,
    only: Option<&str>,
) -> Result<Vec<(String, Usage)>> {
    let sql = format!(
        "WITH RECURSIVE {CLASSIFIED},
         sharing AS (SELECT digest, count(DISTINCT repository_id) AS repos FROM membership GROUP BY digest),
         rows(repository_id, size, class, shared, is_blob) AS (
             SELECT mb.repository_id, c.size, c.class, CASE WHEN s.repos > 1 THEN 1 ELSE 0 END, 1
             FROM membership mb
             JOIN bclass c ON c.digest = mb.digest JOIN sharing s ON s.digest = mb.digest
             UNION ALL
             SELECT repository_id, size, class, 0, 0 FROM mclass)
         SELECT r.name, {SUMS},
                CAST(coalesce(sum(size) FILTER (WHERE shared = 0), 0) AS BIGINT) AS uniq,
                count(size) FILTER (WHERE is_blob = 1) AS blobs,
                count(size) FILTER (WHERE is_blob = 0) AS manifests
         FROM repositories r LEFT JOIN rows x ON x.repository_id = r.id
         WHERE r.deleted_at IS NULL AND ($8 IS NULL OR r.name = $8)
         GROUP BY r.id ORDER BY r.name"
    );
    let rows = rows!(conn, fetch_all, |cx| bind_rules!(
        sqlx::query(dialect(cx.postgres(), sql)),
        rules
    )
    .bind(only))?;
    rows.iter()
        .map(|r| {
            let uniq: i64 = r.try_get("uniq")?;
            Ok((r.try_get("name")?, usage_from_row(r, Some(uniq))?))
        })
        .collect()
}

/// Something a collection with `rules` deletes now: a manifest, a blob, or a repository's link
/// to a blob. What a dry run lists, read without writing anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collectable {
    pub kind: ItemKind,
    pub repository: Option<String>,
    pub target: String,
    pub size: u64,
}

/// Everything a collection with `rules` deletes now, by the same classification as the
/// figures: the manifests and blobs classified reclaimable, and the links whose lease has run
/// out and that no manifest the collection keeps references (a reclaimable blob loses all its
/// links; a blob other repositories use loses only those). A dry run is this query on a reader:
/// it holds no write lock, so pushes never wait behind it.
pub async fn collectable(conn: &mut dyn Conn, rules: &Rules) -> Result<Vec<Collectable>> {
    let sql = format!(
        "WITH RECURSIVE {CLASSIFIED}
         SELECT 'manifest' AS kind, r.name AS repository, m.digest AS target, m.size AS size
         FROM mclass c JOIN manifests m ON m.id = c.id JOIN repositories r ON r.id = m.repository_id
         WHERE c.class = 'reclaimable'
         UNION ALL
         SELECT 'blob', NULL, b.digest, b.size FROM bclass b WHERE b.class = 'reclaimable'
         UNION ALL
         SELECT 'link', r.name, rb.digest, CAST(0 AS BIGINT) FROM repository_blobs rb
         JOIN repositories r ON r.id = rb.repository_id
         WHERE rb.renewed_at + $4 <= $1
           AND NOT EXISTS (SELECT 1 FROM manifest_blob_references mr
                           JOIN manifests m ON m.id = mr.manifest_id JOIN mclass c ON c.id = m.id
                           WHERE mr.blob_digest = rb.digest AND m.repository_id = rb.repository_id
                             AND c.class <> 'reclaimable')
         ORDER BY 1, 2 NULLS FIRST, 3"
    );
    let rows = rows!(conn, fetch_all, |cx| bind_rules!(
        sqlx::query(dialect(cx.postgres(), sql)),
        rules
    ))?;
    rows.iter()
        .map(|r| {
            Ok(Collectable {
                kind: r.try_get::<&str>("kind")?.parse()?,
                repository: r.try_get("repository")?,
                target: r.try_get("target")?,
                size: r.try_get::<i64>("size")? as u64,
            })
        })
        .collect()
}

/// Bytes that `manifests` (with what they list and their referrers) reference and that live
/// content no longer needs after their deletion: what the deletion moved out of use. Called
/// after the deletions, in the same transaction.
///
/// It runs inside deleting transactions (a policy run's among them), so it reads only around
/// what was deleted, never the registry's whole live set: a blob a tagged manifest still
/// references is settled by finding that one reference; the rest are decided by walking up
/// from the manifests that reference them (to the indexes listing them and the subjects they
/// refer to) and asking which of those a tag or the settings hold.
pub async fn bytes_only_for(
    conn: &mut dyn Conn,
    manifests: &[ManifestId],
    rules: &Rules,
) -> Result<u64> {
    if manifests.is_empty() {
        return Ok(0);
    }
    let ids = serde_json::to_string(&manifests.iter().map(|m| m.0).collect::<Vec<_>>())
        .map_err(|e| crate::MetaError::Corrupt(e.to_string()))?;
    let bytes: i64 = values!(conn, fetch_one, |cx| sqlx::query_scalar(
        cx.pick(BYTES_ONLY_FOR_SQLITE, BYTES_ONLY_FOR_POSTGRES)
    )
    .bind(ids)
    .bind(rules.untagged_manifests)
    .bind(rules.orphan_referrers))?;
    Ok(bytes as u64)
}

/// What `bytes_only_for` asks, on either backend: only how the batch of ids is unpacked
/// differs. Parameters: $1 the manifest ids (a JSON array), $2 collect untagged manifests, $3
/// collect orphan referrers.
///
/// `up` is closed under "is listed by" and "is the referrer of": every manifest on a path from
/// a live root down to one of its members is in it, so liveness computed inside `up` alone
/// (`live_up`) is the liveness the whole registry's walk would give its members.
macro_rules! bytes_only_for_sql {
    ($ids:literal) => {
        concat!(
            "WITH RECURSIVE
            edges(id, next) AS (
                SELECT parent_id, child_id FROM manifest_child_references
                UNION ALL
                SELECT s.id, r.id FROM manifests s
                JOIN manifests r ON r.repository_id = s.repository_id AND r.subject_digest = s.digest),
            tree(id) AS (
                ", $ids, "
                UNION
                SELECT e.next FROM tree t JOIN edges e ON e.id = t.id),
            tree_blobs(digest) AS (
                SELECT DISTINCT blob_digest FROM manifest_blob_references
                WHERE manifest_id IN (SELECT id FROM tree)),
            open_blobs(digest) AS (
                SELECT digest FROM tree_blobs t
                WHERE NOT EXISTS (SELECT 1 FROM manifest_blob_references r
                                  JOIN tags g ON g.manifest_id = r.manifest_id
                                  WHERE r.blob_digest = t.digest)),
            seed(id) AS (
                SELECT id FROM tree
                UNION
                SELECT manifest_id FROM manifest_blob_references
                WHERE blob_digest IN (SELECT digest FROM open_blobs)),
            up(id) AS (
                SELECT id FROM seed
                UNION
                SELECT e.id FROM up u JOIN edges e ON e.next = u.id),
            live_up(id) AS (
                SELECT u.id FROM up u JOIN manifests m ON m.id = u.id
                WHERE EXISTS (SELECT 1 FROM tags g WHERE g.manifest_id = u.id)
                   OR (m.deleted_at IS NULL
                       AND ((m.subject_digest IS NULL AND NOT $2)
                            OR (m.subject_digest IS NOT NULL AND NOT $3)))
                UNION
                SELECT e.next FROM live_up l JOIN edges e ON e.id = l.id
                WHERE e.next IN (SELECT id FROM up))
         SELECT CAST((SELECT coalesce(sum(b.size), 0) FROM blobs b
                 WHERE b.digest IN (SELECT digest FROM open_blobs)
                   AND NOT EXISTS (SELECT 1 FROM manifest_blob_references r
                                   WHERE r.blob_digest = b.digest
                                     AND r.manifest_id IN (SELECT id FROM live_up)))
              + (SELECT coalesce(sum(size), 0) FROM manifests
                 WHERE id IN (SELECT id FROM tree) AND id NOT IN (SELECT id FROM live_up))
               AS BIGINT)"
        )
    };
}

const BYTES_ONLY_FOR_SQLITE: &str = bytes_only_for_sql!("SELECT value FROM json_each($1)");
const BYTES_ONLY_FOR_POSTGRES: &str =
    bytes_only_for_sql!("SELECT CAST(value AS BIGINT) FROM json_array_elements_text($1::json)");

/// How the collector classifies one manifest now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Held by a tag, a live index listing it, a live subject, or the settings.
    Live,
    /// Held only for restore; `since` is the deletion (or the tag leaving) the window counts
    /// from.
    Held { since: Millis },
    /// Garbage the collector leaves until `until` (its grace or lease).
    Grace { until: Millis },
    /// Garbage a collection frees now.
    Reclaimable,
}

/// A manifest of one repository with its class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManifestClass {
    pub id: ManifestId,
    pub class: Class,
}

/// Every manifest of the repository `repo` (deleted ones still stored included), classified
/// as the figures and the collector classify it: the "why kept" of a manifest listing. A
/// manifest held for restore carries the latest deletion or tag departure of what holds it
/// (itself, an index listing it, its subject), from which the restore window counts.
pub async fn manifest_classes(
    conn: &mut dyn Conn,
    rules: &Rules,
    repo: crate::ids::RepoId,
) -> Result<Vec<ManifestClass>> {
    let sql = format!(
        "WITH RECURSIVE {CLASSIFIED},
         held_from(id, at) AS (
             SELECT m.id, greatest(CASE WHEN m.deleted_at > $2 THEN m.deleted_at ELSE 0 END,
                                   CASE WHEN lt.at > $2 THEN lt.at ELSE 0 END)
             FROM manifests m LEFT JOIN left_tag lt ON lt.id = m.id
             WHERE m.repository_id = $8 AND m.id IN (SELECT id FROM held_root)
             UNION SELECT e.next, h.at FROM held_from h JOIN edges e ON e.id = h.id)
         SELECT c.id, c.class, (SELECT due FROM garbage g WHERE g.id = c.id) AS due,
                (SELECT max(at) FROM held_from h WHERE h.id = c.id) AS held_at
         FROM mclass c WHERE c.repository_id = $8 ORDER BY c.id"
    );
    let rows = rows!(conn, fetch_all, |cx| bind_rules!(
        sqlx::query(dialect(cx.postgres(), sql)),
        rules
    )
    .bind(repo.0))?;
    rows.iter()
        .map(|r| {
            let class = match r.try_get::<&str>("class")? {
                "live" => Class::Live,
                "held" => Class::Held {
                    since: r.try_get::<Option<i64>>("held_at")?.unwrap_or(rules.now),
                },
                "grace" => Class::Grace {
                    until: r.try_get::<Option<i64>>("due")?.unwrap_or(rules.now),
                },
                "reclaimable" => Class::Reclaimable,
                other => return Err(crate::MetaError::Corrupt(format!("class {other:?}"))),
            };
            Ok(ManifestClass {
                id: ManifestId(r.try_get("id")?),
                class,
            })
        })
        .collect()
}
