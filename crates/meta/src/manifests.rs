//! Manifests (bytes kept in the catalogue), their references to blobs and child manifests, and
//! the subject index behind the referrers API.

use shipshape_oci::{Digest, RepoName};
use sqlx::Row;

use crate::repos::RepoId;
use crate::{Conn, Millis, Result};

/// Row id of a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ManifestId(pub i64);

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

fn head_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ManifestHead> {
    Ok(ManifestHead {
        id: ManifestId(row.get("id")),
        digest: crate::digest_col(row.get::<&str, _>("digest"))?,
        media_type: row.get("media_type"),
        size: row.get::<i64, _>("size") as u64,
    })
}

pub async fn find(conn: &mut Conn, repo: RepoId, digest: &Digest) -> Result<Option<ManifestHead>> {
    let row = sqlx::query(
        "SELECT id, digest, media_type, size FROM manifests
         WHERE repository_id = ? AND digest = ? AND deleted_at IS NULL",
    )
    .bind(repo.0)
    .bind(digest.to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(head_from_row).transpose()
}

/// A manifest with its bytes, as a pull reads it.
pub type ManifestRead = (ManifestHead, Option<Vec<u8>>);

/// Reads the manifest row and, with `with_payload`, its bytes.
pub(crate) fn read_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ManifestRead> {
    Ok((head_from_row(row)?, row.get("payload")))
}

/// A live manifest of the live repository `repo`, by digest, with its bytes when
/// `with_payload`: one query, because pulls ask this more than anything else. `None` when the
/// repository or the manifest is not there (`repos::find` tells which).
pub async fn find_in_named(
    conn: &mut Conn,
    repo: &RepoName,
    digest: &Digest,
    with_payload: bool,
) -> Result<Option<ManifestRead>> {
    let row = sqlx::query(
        "SELECT m.id, m.digest, m.media_type, m.size, CASE WHEN ? THEN m.payload END AS payload
         FROM repositories r JOIN manifests m ON m.repository_id = r.id
         WHERE r.name = ? AND r.deleted_at IS NULL AND m.digest = ? AND m.deleted_at IS NULL",
    )
    .bind(with_payload)
    .bind(repo.as_str())
    .bind(digest.to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(read_from_row).transpose()
}

/// Digests among `blobs` that `repo` cannot serve, then digests among `children` that are not
/// manifests of `repo`, in the order given. Run inside the transaction that inserts the
/// manifest, so nothing can be forgotten between the check and the insert.
pub async fn missing_references(
    conn: &mut Conn,
    repo: RepoId,
    blobs: &[Digest],
    children: &[Digest],
) -> Result<Vec<Digest>> {
    let mut missing = Vec::new();
    for d in blobs {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM repository_blobs WHERE repository_id = ? AND digest = ?",
        )
        .bind(repo.0)
        .bind(d.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        if found.is_none() {
            missing.push(d.clone());
        }
    }
    for d in children {
        if find(conn, repo, d).await?.is_none() {
            missing.push(d.clone());
        }
    }
    Ok(missing)
}

/// Records a manifest and its references; returns its id and whether it is new. A manifest
/// already present (same digest, same repository) is left as it is, same digest meaning same
/// bytes; one deleted but not yet purged comes back to life with its references.
pub async fn insert(
    conn: &mut Conn,
    repo: RepoId,
    m: &NewManifest<'_>,
    now: Millis,
) -> Result<(ManifestId, bool)> {
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT id FROM manifests WHERE repository_id = ? AND digest = ?")
            .bind(repo.0)
            .bind(m.digest.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(id) = existing {
        sqlx::query(
            "UPDATE manifests SET deleted_at = NULL WHERE id = ? AND deleted_at IS NOT NULL",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        crate::gc::queue_manifest(conn, ManifestId(id), now, "manifest pushed").await?;
        return Ok((ManifestId(id), false));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, size, payload,
                                subject_digest, annotations, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
    .fetch_one(&mut *conn)
    .await?;
    let mut blobs: Vec<String> = m.blobs.iter().map(|d| d.to_string()).collect();
    // Sorted inserts keep lock order stable across concurrent pushes.
    blobs.sort();
    blobs.dedup();
    for d in blobs {
        sqlx::query(
            "INSERT INTO manifest_blob_references (manifest_id, blob_digest) VALUES (?, ?)",
        )
        .bind(id)
        .bind(d)
        .execute(&mut *conn)
        .await?;
    }
    let mut children: Vec<String> = m.children.iter().map(|d| d.to_string()).collect();
    children.sort();
    children.dedup();
    for d in children {
        sqlx::query(
            "INSERT INTO manifest_child_references (parent_id, child_id)
             SELECT ?, id FROM manifests WHERE repository_id = ? AND digest = ?",
        )
        .bind(id)
        .bind(repo.0)
        .bind(d)
        .execute(&mut *conn)
        .await?;
    }
    // Pushed untagged (a child before its index, or by digest): collectable after the grace
    // period unless something comes to hold it.
    crate::gc::queue_manifest(conn, ManifestId(id), now, "manifest pushed").await?;
    Ok((ManifestId(id), true))
}

/// An index of the same repository that lists this manifest, if any.
pub async fn referencing_parent(conn: &mut Conn, id: ManifestId) -> Result<Option<Digest>> {
    let d: Option<String> = sqlx::query_scalar(
        "SELECT m.digest FROM manifest_child_references r JOIN manifests m ON m.id = r.parent_id
         WHERE r.child_id = ? AND m.deleted_at IS NULL ORDER BY m.digest LIMIT 1",
    )
    .bind(id.0)
    .fetch_optional(conn)
    .await?;
    d.as_deref().map(crate::digest_col).transpose()
}

/// Hides a manifest from clients for the restore window. Its rows and references stay, so
/// nothing it needs can be collected before the window ends. The caller removes its tags.
pub async fn soft_delete(conn: &mut Conn, id: ManifestId, now: Millis) -> Result<()> {
    sqlx::query("UPDATE manifests SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL")
        .bind(now)
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    crate::gc::queue_manifest(conn, id, now, "manifest deleted").await
}

/// Soft-deletes every live manifest of a repository; returns how many.
pub async fn soft_delete_all(conn: &mut Conn, repo: RepoId, now: Millis) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE manifests SET deleted_at = ? WHERE repository_id = ? AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(repo.0)
    .execute(&mut *conn)
    .await?;
    crate::gc::queue_manifests_of(conn, repo, now, "repository deleted").await?;
    Ok(done.rows_affected())
}

/// A manifest of the repository by digest, even if deleted but not yet purged.
pub async fn find_any(
    conn: &mut Conn,
    repo: RepoId,
    digest: &Digest,
) -> Result<Option<ManifestHead>> {
    let row = sqlx::query(
        "SELECT id, digest, media_type, size FROM manifests WHERE repository_id = ? AND digest = ?",
    )
    .bind(repo.0)
    .bind(digest.to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(head_from_row).transpose()
}

/// Brings a manifest back, with every manifest it lists (recursively), and links every blob
/// they reference into the repository again.
pub async fn revive_tree(conn: &mut Conn, repo: RepoId, id: ManifestId, now: Millis) -> Result<()> {
    sqlx::query(
        "WITH RECURSIVE tree(id) AS (
             SELECT ? UNION SELECT r.child_id FROM manifest_child_references r JOIN tree ON r.parent_id = tree.id)
         UPDATE manifests SET deleted_at = NULL WHERE id IN (SELECT id FROM tree)",
    )
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "WITH RECURSIVE tree(id) AS (
             SELECT ? UNION SELECT r.child_id FROM manifest_child_references r JOIN tree ON r.parent_id = tree.id)
         INSERT INTO repository_blobs (repository_id, digest, created_at)
         SELECT DISTINCT ?, b.blob_digest, ? FROM manifest_blob_references b WHERE b.manifest_id IN (SELECT id FROM tree)
         ON CONFLICT DO NOTHING",
    )
    .bind(id.0)
    .bind(repo.0)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Total bytes of a manifest and everything it references (children recursively, each blob
/// counted once).
pub async fn tree_size(conn: &mut Conn, id: ManifestId) -> Result<u64> {
    let size: i64 = sqlx::query_scalar(
        "WITH RECURSIVE tree(id) AS (
             SELECT ? UNION SELECT r.child_id FROM manifest_child_references r JOIN tree ON r.parent_id = tree.id)
         SELECT (SELECT coalesce(sum(size), 0) FROM manifests WHERE id IN (SELECT id FROM tree))
              + (SELECT coalesce(sum(b.size), 0) FROM blobs b WHERE b.digest IN
                    (SELECT blob_digest FROM manifest_blob_references WHERE manifest_id IN (SELECT id FROM tree)))",
    )
    .bind(id.0)
    .fetch_one(conn)
    .await?;
    Ok(size as u64)
}

/// Forgets a manifest and its outgoing references (the collector's purge). The caller has
/// removed its tags and checked that no index lists it (the foreign keys refuse otherwise).
pub async fn delete(conn: &mut Conn, id: ManifestId) -> Result<()> {
    sqlx::query("DELETE FROM manifest_blob_references WHERE manifest_id = ?")
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM manifest_child_references WHERE parent_id = ?")
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM manifests WHERE id = ?")
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(())
}

/// Manifests of `repo` whose subject is `subject`, optionally only of one artifact type.
pub async fn referrers(
    conn: &mut Conn,
    repo: RepoId,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Referrer>> {
    let rows = sqlx::query(
        "SELECT digest, media_type, size, artifact_type, annotations FROM manifests
         WHERE repository_id = ? AND subject_digest = ? AND deleted_at IS NULL
           AND (? IS NULL OR artifact_type = ?)
         ORDER BY digest",
    )
    .bind(repo.0)
    .bind(subject.to_string())
    .bind(artifact_type)
    .bind(artifact_type)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Referrer {
                digest: crate::digest_col(r.get::<&str, _>("digest"))?,
                media_type: r.get("media_type"),
                size: r.get::<i64, _>("size") as u64,
                artifact_type: r.get("artifact_type"),
                annotations: r.get("annotations"),
            })
        })
        .collect()
}

/// Adds a batch of pulls to a manifest's counter and last-pulled time.
pub async fn record_pulls(
    conn: &mut Conn,
    repo: RepoId,
    digest: &Digest,
    count: i64,
    last: Millis,
) -> Result<()> {
    sqlx::query(
        "UPDATE manifests SET pull_count = pull_count + ?,
                              last_pulled_at = max(coalesce(last_pulled_at, 0), ?)
         WHERE repository_id = ? AND digest = ?",
    )
    .bind(count)
    .bind(last)
    .bind(repo.0)
    .bind(digest.to_string())
    .execute(conn)
    .await?;
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
pub async fn untagged(conn: &mut Conn, repo: RepoId) -> Result<Vec<Untagged>> {
    let rows = sqlx::query(
        "SELECT m.id, m.digest, m.media_type, m.size, m.created_at FROM manifests m
         WHERE m.repository_id = ? AND m.deleted_at IS NULL AND m.subject_digest IS NULL
           AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
           AND NOT EXISTS (SELECT 1 FROM manifest_child_references c
                           JOIN manifests p ON p.id = c.parent_id
                           WHERE c.child_id = m.id AND p.deleted_at IS NULL)
         ORDER BY m.digest",
    )
    .bind(repo.0)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Untagged {
                head: head_from_row(r)?,
                created_at: r.get("created_at"),
            })
        })
        .collect()
}
