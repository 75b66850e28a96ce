//! Manifests (bytes kept in the catalogue), their references to blobs and child manifests, and
//! the subject index behind the referrers API.

use crate::db::{Dialect, dual, execute, rows, values};
use shipshape_oci::{Digest, RepoName};

use crate::repos::RepoId;
use crate::{Conn, Millis, Result};

pub use crate::ids::ManifestId;

/// What a HEAD needs to know about a manifest.
#[derive(Clone, Debug)]
pub struct ManifestHead {
    pub id: ManifestId,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A manifest about to be recorded.
#[derive(Clone, Debug)]
pub struct NewManifest<'a> {
    pub digest: &'a Digest,
    pub media_type: &'a str,
    pub artifact_type: Option<&'a str>,
    pub payload: &'a [u8],
    pub subject: Option<&'a Digest>,
    /// Top-level annotations as JSON text, for referrer descriptors.
    pub annotations: Option<String>,
    pub blobs: &'a [Digest],
    pub children: &'a [Digest],
}

/// A manifest listed by the referrers API.
#[derive(Clone, Debug)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

fn head_from_row(row: &crate::db::Row) -> Result<ManifestHead> {
    Ok(ManifestHead {
        id: ManifestId(row.try_get("id")?),
        digest: crate::digest_col(row.try_get::<&str>("digest")?)?,
        media_type: row.try_get("media_type")?,
        size: row.try_get::<i64>("size")? as u64,
    })
}

pub async fn find(
    conn: &mut dyn Conn,
    repo: RepoId,
    digest: &Digest,
) -> Result<Option<ManifestHead>> {
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(
        "SELECT id, digest, media_type, size FROM manifests
         WHERE repository_id = $1 AND digest = $2 AND deleted_at IS NULL",
    )
    .bind(repo.0)
    .bind(digest.to_string()))?;
    row.as_ref().map(head_from_row).transpose()
}

/// A manifest with its bytes, as a pull reads it.
pub type ManifestRead = (ManifestHead, Option<Vec<u8>>);

/// Reads the manifest row and, with `with_payload`, its bytes.
pub(crate) fn read_from_row(row: &crate::db::Row) -> Result<ManifestRead> {
    Ok((head_from_row(row)?, row.try_get("payload")?))
}

/// A live manifest of the live repository `repo`, by digest, with its bytes when
/// `with_payload`: one query, because pulls ask this more than anything else. `None` when the
/// repository or the manifest is not there (`repos::find` tells which).
pub async fn find_in_named(
    conn: &mut dyn Conn,
    repo: &RepoName,
    digest: &Digest,
    with_payload: bool,
) -> Result<Option<ManifestRead>> {
    let row = rows!(conn, fetch_optional, |cx| {
        sqlx::query(
        "SELECT m.id, m.digest, m.media_type, m.size, CASE WHEN $1 THEN m.payload END AS payload
         FROM repositories r JOIN manifests m ON m.repository_id = r.id
         WHERE r.name = $2 AND r.deleted_at IS NULL AND m.digest = $3 AND m.deleted_at IS NULL",
    )
    .bind(with_payload)
    .bind(repo.as_str())
    .bind(digest.to_string())
    })?;
    row.as_ref().map(read_from_row).transpose()
}

/// Digests among `blobs` that `repo` cannot serve, then digests among `children` that are not
/// manifests of `repo`, in the order given. Run inside the transaction that inserts the
/// manifest (invariant 2). Each link the manifest relies on is renewed to `now`: the write
/// takes the link's row lock, so a collector unlinking it (`reviews::unlink`, which only
/// removes links whose lease has run out) either committed first, and the push finds the blob
/// missing, or waits for this transaction and then finds the link renewed and keeps it. Under
/// SQLite's one writer the two cannot interleave at all; the same statements hold with many
/// writers at READ COMMITTED.
pub async fn missing_references(
    conn: &mut dyn Conn,
    repo: RepoId,
    blobs: &[Digest],
    children: &[Digest],
    now: Millis,
) -> Result<Vec<Digest>> {
    let mut missing = Vec::new();
    // Sorted, so that concurrent pushes sharing layers take the link locks in one order.
    let mut order: Vec<&Digest> = blobs.iter().collect();
    order.sort();
    order.dedup();
    let mut served = std::collections::HashSet::new();
    for d in order {
        // A blob marked missing (its bytes were lost) must be uploaded again first.
        let present: Option<bool> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
            "UPDATE repository_blobs
             SET renewed_at = CASE WHEN renewed_at < $1 THEN $1 ELSE renewed_at END
             WHERE repository_id = $2 AND digest = $3
             RETURNING (SELECT b.state = 'present' FROM blobs b WHERE b.digest = $3)",
        )
        .bind(now)
        .bind(repo.0)
        .bind(d.to_string()))?;
        if present == Some(true) {
            served.insert(d);
        }
    }
    missing.extend(blobs.iter().filter(|d| !served.contains(d)).cloned());
    for d in children {
        if find(conn, repo, d).await?.is_none() {
            missing.push(d.clone());
        }
    }
    Ok(missing)
}

/// Records a manifest and its references; returns its id and whether it is new. A manifest
/// already present (same digest, same repository) is left as it is, same digest meaning same
/// bytes; one deleted but not yet purged comes back to life with its references. Two clients
/// pushing the same manifest at once both succeed: the insert does nothing on conflict, and the
/// loser finds the winner's row (the update reads the latest committed row, whatever the
/// isolation of the reads before it).
pub async fn insert(
    conn: &mut dyn Conn,
    repo: RepoId,
    m: &NewManifest<'_>,
    now: Millis,
) -> Result<(ManifestId, bool)> {
    loop {
        let inserted: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
            "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, size,
                                    payload, subject_digest, annotations, created_at, pushed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id",
        )
        .bind(repo.0)
        .bind(m.digest.to_string())
        .bind(m.media_type)
        .bind(m.artifact_type)
        .bind(m.payload.len() as i64)
        .bind(m.payload)
        .bind(m.subject.map(|s| s.to_string()))
        .bind(m.annotations.as_deref())
        .bind(now)
        .bind(now))?;
        if let Some(id) = inserted {
            insert_references(conn, repo, ManifestId(id), m).await?;
            // Pushed untagged (a child before its index, or by digest): collectable after the
            // grace period unless something comes to hold it.
            crate::queue::queue_manifest(conn, ManifestId(id), now, "manifest pushed").await?;
            return Ok((ManifestId(id), true));
        }
        // Pushed again: back to life if it was deleted, and leased anew.
        let existing: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
            "UPDATE manifests SET deleted_at = NULL, pushed_at = $1
             WHERE repository_id = $2 AND digest = $3 RETURNING id",
        )
        .bind(now)
        .bind(repo.0)
        .bind(m.digest.to_string()))?;
        if let Some(id) = existing {
            crate::queue::queue_manifest(conn, ManifestId(id), now, "manifest pushed").await?;
            return Ok((ManifestId(id), false));
        }
        // Purged between the two statements (only possible with many writers): insert again.
    }
}

async fn insert_references(
    conn: &mut dyn Conn,
    repo: RepoId,
    id: ManifestId,
    m: &NewManifest<'_>,
) -> Result<()> {
    let id = id.0;
    let mut blobs: Vec<String> = m.blobs.iter().map(|d| d.to_string()).collect();
    // Sorted inserts keep lock order stable across concurrent pushes.
    blobs.sort();
    blobs.dedup();
    for d in blobs {
        execute!(conn, |cx| sqlx::query(
            "INSERT INTO manifest_blob_references (manifest_id, blob_digest) VALUES ($1, $2)",
        )
        .bind(id)
        .bind(d))?;
    }
    let mut children: Vec<String> = m.children.iter().map(|d| d.to_string()).collect();
    children.sort();
    children.dedup();
    for d in children {
        execute!(conn, |cx| sqlx::query(
            "INSERT INTO manifest_child_references (parent_id, child_id)
             SELECT $1, id FROM manifests WHERE repository_id = $2 AND digest = $3",
        )
        .bind(id)
        .bind(repo.0)
        .bind(d))?;
    }
    Ok(())
}

/// An index of the same repository that lists this manifest, if any.
pub async fn referencing_parent(conn: &mut dyn Conn, id: ManifestId) -> Result<Option<Digest>> {
    let d: Option<String> = values!(conn, fetch_optional, |cx| {
        sqlx::query_scalar(
        "SELECT m.digest FROM manifest_child_references r JOIN manifests m ON m.id = r.parent_id
         WHERE r.child_id = $1 AND m.deleted_at IS NULL ORDER BY m.digest LIMIT 1",
    )
    .bind(id.0)
    })?;
    d.as_deref().map(crate::digest_col).transpose()
}

/// Hides a manifest from clients for the restore window. Its rows and references stay, so
/// nothing it needs can be collected before the window ends. The caller removes its tags.
pub async fn soft_delete(conn: &mut dyn Conn, id: ManifestId, now: Millis) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "UPDATE manifests SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL"
    )
    .bind(now)
    .bind(id.0))?;
    crate::queue::queue_manifest(conn, id, now, "manifest deleted").await
}

/// Soft-deletes every live manifest of a repository; returns how many.
pub async fn soft_delete_all(conn: &mut dyn Conn, repo: RepoId, now: Millis) -> Result<u64> {
    let done = execute!(conn, |cx| sqlx::query(
        "UPDATE manifests SET deleted_at = $1 WHERE repository_id = $2 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(repo.0))?;
    crate::queue::queue_manifests_of(conn, repo, now, "repository deleted").await?;
    Ok(done.rows_affected())
}

/// A manifest of the repository by digest, even if deleted but not yet purged.
pub async fn find_any(
    conn: &mut dyn Conn,
    repo: RepoId,
    digest: &Digest,
) -> Result<Option<ManifestHead>> {
    let row = rows!(conn, fetch_optional, |cx| {
        sqlx::query(
        "SELECT id, digest, media_type, size FROM manifests WHERE repository_id = $1 AND digest = $2",
    )
    .bind(repo.0)
    .bind(digest.to_string())
    })?;
    row.as_ref().map(head_from_row).transpose()
}

/// The manifest `$1` with everything it needs, recursively: the manifests it lists and the
/// referrers (signatures, SBOMs) of each, within its repository.
const TREE: &str = "edges(id, next) AS (
    SELECT parent_id, child_id FROM manifest_child_references
    UNION ALL
    SELECT s.id, f.id FROM manifests s
    JOIN manifests f ON f.repository_id = s.repository_id AND f.subject_digest = s.digest),
  tree(id) AS (
    SELECT CAST($1 AS BIGINT)
    UNION SELECT e.next FROM tree JOIN edges e ON e.id = tree.id)";

/// Brings a manifest back with everything it needs (the manifests it lists, their referrers),
/// and links every blob they reference into the repository again.
pub async fn revive_tree(
    conn: &mut dyn Conn,
    repo: RepoId,
    id: ManifestId,
    now: Millis,
) -> Result<()> {
    execute!(conn, |cx| sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE {TREE}
         UPDATE manifests SET deleted_at = NULL WHERE id IN (SELECT id FROM tree)"
    )))
    .bind(id.0))?;
    execute!(conn, |cx| sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE {TREE}
         INSERT INTO repository_blobs (repository_id, digest, created_at, renewed_at)
         SELECT DISTINCT $2, b.blob_digest, $3, $3 FROM manifest_blob_references b
         WHERE b.manifest_id IN (SELECT id FROM tree) AND true
         ON CONFLICT (repository_id, digest) DO NOTHING"
    )))
    .bind(id.0)
    .bind(repo.0)
    .bind(now))?;
    Ok(())
}

/// Brings back every manifest of a repository deleted at `at` (with the repository, untagged
/// ones and referrers included) with their blob links; returns how many came back.
pub async fn revive_deleted_at(
    conn: &mut dyn Conn,
    repo: RepoId,
    at: Millis,
    now: Millis,
) -> Result<u64> {
    let ids: Vec<i64> = values!(conn, fetch_all, |cx| sqlx::query_scalar(
        "UPDATE manifests SET deleted_at = NULL WHERE repository_id = $1 AND deleted_at = $2
         RETURNING id",
    )
    .bind(repo.0)
    .bind(at))?;
    for id in &ids {
        revive_tree(conn, repo, ManifestId(*id), now).await?;
    }
    Ok(ids.len() as u64)
}

/// How many manifests of the repository were deleted at `at` (with the repository).
pub async fn count_deleted_at(conn: &mut dyn Conn, repo: RepoId, at: Millis) -> Result<u64> {
    let n: i64 = values!(conn, fetch_one, |cx| sqlx::query_scalar(
        "SELECT count(*) FROM manifests WHERE repository_id = $1 AND deleted_at = $2",
    )
    .bind(repo.0)
    .bind(at))?;
    Ok(n as u64)
}

/// Manifests of the repository whose digest starts with `prefix` (a whole digest, or
/// `sha256:` and some leading hex digits, or the hex digits alone), live ones only unless
/// `deleted_too`; at most `limit`, to tell unique from ambiguous.
pub async fn find_by_prefix(
    conn: &mut dyn Conn,
    repo: RepoId,
    prefix: &str,
    deleted_too: bool,
    limit: i64,
) -> Result<Vec<ManifestHead>> {
    let hex = prefix.split_once(':').map_or(prefix, |(_, h)| h);
    if hex.is_empty()
        || !hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Ok(Vec::new());
    }
    let prefix = if prefix.contains(':') {
        prefix.to_string()
    } else {
        format!("sha256:{prefix}")
    };
    // The prefix is matched with a range, not LIKE, so no character in it is special.
    let upper = format!("{prefix}\u{10ffff}");
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT id, digest, media_type, size FROM manifests
         WHERE repository_id = $1 AND digest >= $2 AND digest < $3 AND ($4 OR deleted_at IS NULL)
         ORDER BY digest LIMIT $5",
    )
    .bind(repo.0)
    .bind(&prefix)
    .bind(&upper)
    .bind(deleted_too)
    .bind(crate::limit(limit)))?;
    rows.iter().map(head_from_row).collect()
}

/// A live manifest with what users want to know about it.
#[derive(Clone, Debug)]
pub struct ManifestSummary {
    pub head: ManifestHead,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    pub created_at: Millis,
    pub last_pulled_at: Option<Millis>,
    pub pull_count: i64,
    /// Tags pointing at it, in name order.
    pub tags: Vec<String>,
    /// Live indexes of the repository that list it.
    pub parents: i64,
    /// Live referrers of the repository whose subject it is.
    pub referrers: i64,
}

/// Every live manifest of a repository, by digest.
pub async fn summaries(conn: &mut dyn Conn, repo: RepoId) -> Result<Vec<ManifestSummary>> {
    // Tag names never contain a space (the spec's grammar), so a space separates them.
    let rows = rows!(conn, fetch_all, |cx| {
        sqlx::query(cx.sql(dual!(
        "SELECT m.id, m.digest, m.media_type, m.size, m.artifact_type, m.subject_digest,
                m.created_at, m.last_pulled_at, m.pull_count,
                (SELECT " group_concat "(name, ' ' ORDER BY name) FROM tags t WHERE t.manifest_id = m.id) AS tags,
                (SELECT count(*) FROM manifest_child_references c JOIN manifests p ON p.id = c.parent_id
                  WHERE c.child_id = m.id AND p.deleted_at IS NULL) AS parents,
                (SELECT count(*) FROM manifests f WHERE f.repository_id = m.repository_id
                  AND f.subject_digest = m.digest AND f.deleted_at IS NULL) AS referrers
         FROM manifests m WHERE m.repository_id = $1 AND m.deleted_at IS NULL ORDER BY m.digest"
    )))
    .bind(repo.0)
    })?;
    rows.iter()
        .map(|r| {
            Ok(ManifestSummary {
                head: head_from_row(r)?,
                artifact_type: r.try_get("artifact_type")?,
                subject: r
                    .try_get::<Option<&str>>("subject_digest")?
                    .map(crate::digest_col)
                    .transpose()?,
                created_at: r.try_get("created_at")?,
                last_pulled_at: r.try_get("last_pulled_at")?,
                pull_count: r.try_get("pull_count")?,
                tags: r
                    .try_get::<Option<String>>("tags")?
                    .map(|t| t.split(' ').map(str::to_string).collect())
                    .unwrap_or_default(),
                parents: r.try_get("parents")?,
                referrers: r.try_get("referrers")?,
            })
        })
        .collect()
}

/// Total bytes of a manifest and everything it references (children recursively, each blob
/// counted once).
pub async fn tree_size(conn: &mut dyn Conn, id: ManifestId) -> Result<u64> {
    let size: i64 = values!(conn, fetch_one, |cx| {
        sqlx::query_scalar(
        "WITH RECURSIVE tree(id) AS (
             SELECT CAST($1 AS BIGINT)
             UNION SELECT r.child_id FROM manifest_child_references r JOIN tree ON r.parent_id = tree.id)
         SELECT CAST((SELECT coalesce(sum(size), 0) FROM manifests WHERE id IN (SELECT id FROM tree))
              + (SELECT coalesce(sum(b.size), 0) FROM blobs b WHERE b.digest IN
                    (SELECT blob_digest FROM manifest_blob_references WHERE manifest_id IN (SELECT id FROM tree)))
              AS BIGINT)",
    )
    .bind(id.0)
    })?;
    Ok(size as u64)
}

/// The total bytes (as `tree_size`) of every tagged manifest of a repository, in one query.
pub async fn tagged_tree_sizes(
    conn: &mut dyn Conn,
    repo: RepoId,
) -> Result<std::collections::HashMap<ManifestId, u64>> {
    let rows = rows!(conn, fetch_all, |cx| {
        sqlx::query(
            // CROSS JOIN keeps the tree as the outer loop: without it SQLite 3.51 scanned
            // every blob reference of the registry and probed the tree (150 ms for a
            // repository of 20 tags at 100 000 blobs, bench-ui). PostgreSQL reorders it freely.
            "WITH RECURSIVE tree(root, id) AS (
             SELECT DISTINCT manifest_id, manifest_id FROM tags WHERE repository_id = $1
             UNION SELECT tree.root, c.child_id FROM tree
                   JOIN manifest_child_references c ON c.parent_id = tree.id),
         blob_part AS (
             SELECT root, sum(size) AS size FROM (
                 SELECT DISTINCT tree.root, b.digest, b.size
                 FROM tree CROSS JOIN manifest_blob_references r CROSS JOIN blobs b
                 WHERE r.manifest_id = tree.id AND b.digest = r.blob_digest) AS reached
             GROUP BY root),
         manifest_part AS (
             SELECT tree.root, sum(m.size) AS size FROM tree JOIN manifests m ON m.id = tree.id
             GROUP BY tree.root)
         SELECT p.root, CAST(p.size + coalesce(b.size, 0) AS BIGINT) AS total
         FROM manifest_part p LEFT JOIN blob_part b ON b.root = p.root",
        )
        .bind(repo.0)
    })?;
    rows.iter()
        .map(|r| {
            Ok((
                ManifestId(r.try_get("root")?),
                r.try_get::<i64>("total")? as u64,
            ))
        })
        .collect()
}

/// Forgets a manifest and its outgoing references (the collector's purge). The caller has
/// removed its tags and checked that no index lists it (the foreign keys refuse otherwise).
pub async fn delete(conn: &mut dyn Conn, id: ManifestId) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "DELETE FROM manifest_blob_references WHERE manifest_id = $1"
    )
    .bind(id.0))?;
    execute!(conn, |cx| sqlx::query(
        "DELETE FROM manifest_child_references WHERE parent_id = $1"
    )
    .bind(id.0))?;
    execute!(conn, |cx| sqlx::query(
        "DELETE FROM manifests WHERE id = $1"
    )
    .bind(id.0))?;
    Ok(())
}

/// Manifests of `repo` whose subject is `subject`, optionally only of one artifact type.
pub async fn referrers(
    conn: &mut dyn Conn,
    repo: RepoId,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Referrer>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT digest, media_type, size, artifact_type, annotations FROM manifests
         WHERE repository_id = $1 AND subject_digest = $2 AND deleted_at IS NULL
           AND ($3 IS NULL OR artifact_type = $4)
         ORDER BY digest",
    )
    .bind(repo.0)
    .bind(subject.to_string())
    .bind(artifact_type)
    .bind(artifact_type))?;
    rows.iter()
        .map(|r| {
            Ok(Referrer {
                digest: crate::digest_col(r.try_get::<&str>("digest")?)?,
                media_type: r.try_get("media_type")?,
                size: r.try_get::<i64>("size")? as u64,
                artifact_type: r.try_get("artifact_type")?,
                annotations: r.try_get("annotations")?,
            })
        })
        .collect()
}

/// Adds a batch of pulls to a manifest's counter and last-pulled time.
pub async fn record_pulls(
    conn: &mut dyn Conn,
    repo: RepoId,
    digest: &Digest,
    count: i64,
    last: Millis,
) -> Result<()> {
    execute!(conn, |cx| sqlx::query(cx.sql(dual!(
        "UPDATE manifests SET pull_count = pull_count + $1,
                              last_pulled_at = " greatest "(coalesce(last_pulled_at, 0), $2)
         WHERE repository_id = $3 AND digest = $4"
    )))
    .bind(count)
    .bind(last)
    .bind(repo.0)
    .bind(digest.to_string()))?;
    Ok(())
}

/// A live manifest that nothing holds by name: no tag, no index listing it, not a referrer.
#[derive(Clone, Debug)]
pub struct Untagged {
    pub head: ManifestHead,
    pub created_at: Millis,
}

/// The untagged manifests of a repository a retention policy may delete. Children of an index
/// and referrers are left out: they follow their parent or subject.
pub async fn untagged(conn: &mut dyn Conn, repo: RepoId) -> Result<Vec<Untagged>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT m.id, m.digest, m.media_type, m.size, m.created_at FROM manifests m
         WHERE m.repository_id = $1 AND m.deleted_at IS NULL AND m.subject_digest IS NULL
           AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
           AND NOT EXISTS (SELECT 1 FROM manifest_child_references c
                           JOIN manifests p ON p.id = c.parent_id
                           WHERE c.child_id = m.id AND p.deleted_at IS NULL)
         ORDER BY m.digest",
    )
    .bind(repo.0))?;
    rows.iter()
        .map(|r| {
            Ok(Untagged {
                head: head_from_row(r)?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// For every manifest of `repo` that a live index of the repository lists: the index's
/// digest, by child then index digest.
pub async fn listing_indexes(
    conn: &mut dyn Conn,
    repo: RepoId,
) -> Result<Vec<(ManifestId, Digest)>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT c.child_id, p.digest FROM manifest_child_references c
         JOIN manifests p ON p.id = c.parent_id
         WHERE p.repository_id = $1 AND p.deleted_at IS NULL
         ORDER BY c.child_id, p.digest",
    )
    .bind(repo.0))?;
    rows.iter()
        .map(|r| {
            Ok((
                ManifestId(r.try_get("child_id")?),
                crate::digest_col(r.try_get::<&str>("digest")?)?,
            ))
        })
        .collect()
}

/// A blob a manifest references, and how widely it is shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedBlob {
    pub digest: Digest,
    pub size: u64,
    /// Live manifests (in any repository) referencing it, this one included.
    pub manifests: i64,
    /// Live repositories with a live manifest referencing it.
    pub repositories: i64,
}

/// The blobs manifest `id` references (config and layers), by digest, with how many live
/// manifests and repositories reference each.
pub async fn blobs_shared(conn: &mut dyn Conn, id: ManifestId) -> Result<Vec<SharedBlob>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT b.digest, b.size,
                (SELECT count(DISTINCT o.manifest_id) FROM manifest_blob_references o
                 JOIN manifests m ON m.id = o.manifest_id
                 WHERE o.blob_digest = b.digest AND m.deleted_at IS NULL) AS manifests,
                (SELECT count(DISTINCT m.repository_id) FROM manifest_blob_references o
                 JOIN manifests m ON m.id = o.manifest_id
                 JOIN repositories p ON p.id = m.repository_id
                 WHERE o.blob_digest = b.digest AND m.deleted_at IS NULL
                   AND p.deleted_at IS NULL) AS repositories
         FROM manifest_blob_references r JOIN blobs b ON b.digest = r.blob_digest
         WHERE r.manifest_id = $1 ORDER BY b.digest",
    )
    .bind(id.0))?;
    rows.iter()
        .map(|r| {
            Ok(SharedBlob {
                digest: crate::digest_col(r.try_get::<&str>("digest")?)?,
                size: r.try_get::<i64>("size")? as u64,
                manifests: r.try_get("manifests")?,
                repositories: r.try_get("repositories")?,
            })
        })
        .collect()
}
