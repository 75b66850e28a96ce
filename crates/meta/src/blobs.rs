//! Blobs (global, deduplicated by digest) and their links into repositories.

use crate::db::{execute, rows, values};
use shipshape_oci::Digest;

use crate::repos::RepoId;
use crate::{Conn, Millis, Result};

/// A stored blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    /// Where the store keeps the bytes; only the store interprets it.
    pub storage_key: String,
}

fn blob_from_row(row: &crate::db::Row) -> Result<Blob> {
    Ok(Blob {
        digest: crate::digest_col(row.try_get::<&str>("digest")?)?,
        size: row.try_get::<i64>("size")? as u64,
        storage_key: row.try_get("storage_key")?,
    })
}

/// The blob with this digest, wherever it is linked, if its bytes are present.
pub async fn find(conn: &mut dyn Conn, digest: &Digest) -> Result<Option<Blob>> {
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(
        "SELECT digest, size, storage_key FROM blobs WHERE digest = $1 AND state = 'present'",
    )
    .bind(digest.to_string()))?;
    row.as_ref().map(blob_from_row).transpose()
}

/// The blob with this digest as recorded, and whether its bytes are present (a blob marked
/// missing is recorded but answers as unknown until it is uploaded again).
pub async fn find_recorded(conn: &mut dyn Conn, digest: &Digest) -> Result<Option<(Blob, bool)>> {
    let row = rows!(conn, fetch_optional, |cx| {
        sqlx::query(
        "SELECT digest, size, storage_key, state = 'present' AS present FROM blobs WHERE digest = $1",
    )
    .bind(digest.to_string())
    })?;
    row.map(|r| Ok((blob_from_row(&r)?, r.try_get::<bool>("present")?)))
        .transpose()
}

/// Marks a blob's bytes as missing: it answers as unknown (HEAD and GET 404) so clients upload
/// it again, and no new manifest may reference it until they do. Returns whether it was found.
pub async fn mark_missing(conn: &mut dyn Conn, digest: &Digest) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query(
        "UPDATE blobs SET state = 'missing' WHERE digest = $1"
    )
    .bind(digest.to_string()))?;
    Ok(done.rows_affected() > 0)
}

/// Serves a blob marked missing again (its bytes came back, e.g. from a backup).
pub async fn mark_present(conn: &mut dyn Conn, digest: &Digest) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query(
        "UPDATE blobs SET state = 'present' WHERE digest = $1"
    )
    .bind(digest.to_string()))?;
    Ok(done.rows_affected() > 0)
}

/// Makes a verified upload the blob's copy in place of a missing or damaged one, queueing the
/// old key for deletion (keys are never reused, so deleting it cannot touch the new copy).
/// Returns the old key, or `None` when the recorded key is no longer `expected_old` (another
/// upload replaced it first, or the collector forgot the blob).
pub async fn replace_copy(
    conn: &mut dyn Conn,
    digest: &Digest,
    expected_old: &str,
    new_key: &str,
    now: Millis,
) -> Result<Option<String>> {
    let done = execute!(conn, |cx| {
        sqlx::query(
        "UPDATE blobs SET storage_key = $1, state = 'present' WHERE digest = $2 AND storage_key = $3",
    )
    .bind(new_key)
    .bind(digest.to_string())
    .bind(expected_old)
    })?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    crate::queue::queue_storage_deletion(conn, expected_old, now).await?;
    Ok(Some(expected_old.to_string()))
}

/// The blob if this repository may serve it (its bytes present).
pub async fn find_in_repo(
    conn: &mut dyn Conn,
    repo: RepoId,
    digest: &Digest,
) -> Result<Option<Blob>> {
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(
        "SELECT b.digest, b.size, b.storage_key FROM blobs b
         JOIN repository_blobs rb ON rb.digest = b.digest
         WHERE rb.repository_id = $1 AND b.digest = $2 AND b.state = 'present'",
    )
    .bind(repo.0)
    .bind(digest.to_string()))?;
    row.as_ref().map(blob_from_row).transpose()
}

/// Records a new blob unless one with this digest is recorded already; returns whether this
/// copy became the blob's. Two clients finishing an upload of the same layer at once both
/// succeed: one copy is recorded, the other is the caller's to discard.
pub async fn insert(conn: &mut dyn Conn, blob: &Blob, now: Millis) -> Result<bool> {
    let recorded: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "INSERT INTO blobs (digest, size, storage_key, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (digest) DO NOTHING RETURNING CAST(1 AS BIGINT)",
    )
    .bind(blob.digest.to_string())
    .bind(blob.size as i64)
    .bind(&blob.storage_key)
    .bind(now))?;
    Ok(recorded.is_some())
}

/// Lets `repo` serve the blob (an upload or a mount), renewing the link's lease, and queues the
/// blob for review: if no manifest comes to reference it, the collector reclaims it.
pub async fn link(conn: &mut dyn Conn, repo: RepoId, digest: &Digest, now: Millis) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "INSERT INTO repository_blobs (repository_id, digest, created_at, renewed_at)
         VALUES ($1, $2, $3, $3)
         ON CONFLICT (repository_id, digest) DO UPDATE SET renewed_at = CASE
             WHEN repository_blobs.renewed_at < excluded.renewed_at THEN excluded.renewed_at
             ELSE repository_blobs.renewed_at END",
    )
    .bind(repo.0)
    .bind(digest.to_string())
    .bind(now))?;
    crate::queue::queue_link(conn, repo, digest, now, "blob uploaded").await
}

/// When the link's lease is older than `stale_before`, renews it; returns whether the link
/// still exists. A client just told "this blob exists" can rely on it for the grace period.
pub async fn renew_lease(
    conn: &mut dyn Conn,
    repo: RepoId,
    digest: &Digest,
    now: Millis,
    stale_before: Millis,
) -> Result<bool> {
    let found: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "UPDATE repository_blobs SET renewed_at = $1
         WHERE repository_id = $2 AND digest = $3 AND renewed_at < $4 RETURNING CAST(1 AS BIGINT)",
    )
    .bind(now)
    .bind(repo.0)
    .bind(digest.to_string())
    .bind(stale_before))?;
    if found.is_some() {
        return Ok(true);
    }
    let found: Option<i64> = values!(conn, fetch_optional, |cx| {
        sqlx::query_scalar(
        "SELECT CAST(1 AS BIGINT) FROM repository_blobs WHERE repository_id = $1 AND digest = $2"
    )
    .bind(repo.0)
    .bind(digest.to_string())
    })?;
    Ok(found.is_some())
}

/// The time the link's lease was last renewed, if the repository links the blob.
pub async fn lease(conn: &mut dyn Conn, repo: RepoId, digest: &Digest) -> Result<Option<Millis>> {
    Ok(values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT renewed_at FROM repository_blobs WHERE repository_id = $1 AND digest = $2",
    )
    .bind(repo.0)
    .bind(digest.to_string()))?)
}

/// Removes the repository's link; returns whether there was one.
pub async fn unlink(
    conn: &mut dyn Conn,
    repo: RepoId,
    digest: &Digest,
    now: Millis,
) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query(
        "DELETE FROM repository_blobs WHERE repository_id = $1 AND digest = $2"
    )
    .bind(repo.0)
    .bind(digest.to_string()))?;
    if done.rows_affected() > 0 {
        crate::queue::queue_blob(conn, digest, now, "blob deleted").await?;
    }
    Ok(done.rows_affected() > 0)
}

/// A manifest of `repo` that references the blob, if any.
pub async fn referenced_in_repo(
    conn: &mut dyn Conn,
    repo: RepoId,
    digest: &Digest,
) -> Result<Option<Digest>> {
    let d: Option<String> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT m.digest FROM manifest_blob_references r
         JOIN manifests m ON m.id = r.manifest_id
         WHERE m.repository_id = $1 AND r.blob_digest = $2 AND m.deleted_at IS NULL LIMIT 1",
    )
    .bind(repo.0)
    .bind(digest.to_string()))?;
    d.as_deref().map(crate::digest_col).transpose()
}

/// Removes every blob link of a repository (repository deletion); returns how many.
pub async fn unlink_all(conn: &mut dyn Conn, repo: RepoId, now: Millis) -> Result<u64> {
    crate::queue::queue_links_of(conn, repo, now, "repository deleted").await?;
    let done = execute!(conn, |cx| sqlx::query(
        "DELETE FROM repository_blobs WHERE repository_id = $1"
    )
    .bind(repo.0))?;
    Ok(done.rows_affected())
}
