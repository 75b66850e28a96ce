//! The queries of `shipshape check`: the catalogue walked a page at a time, what a lost blob
//! breaks, references a repository cannot serve, tags on deleted manifests, and which storage
//! keys the catalogue knows (everything else in the store is an orphan).

use crate::db::{Dialect, dual, rows, values};
use shipshape_oci::Digest;

use crate::blobs::Blob;
use crate::{Conn, Result};

/// Blobs in digest order after `after`, at most `limit`, each with whether its bytes are
/// present (not marked missing): the check walks them in pages.
pub async fn blobs_page(
    conn: &mut dyn Conn,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(Blob, bool)>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT digest, size, storage_key, state = 'present' AS present FROM blobs
         WHERE ($1 IS NULL OR digest > $1) ORDER BY digest LIMIT $2",
    )
    .bind(after)
    .bind(crate::limit(limit)))?;
    rows.iter()
        .map(|r| {
            Ok((
                Blob {
                    digest: crate::digest_col(r.try_get::<&str>("digest")?)?,
                    size: r.try_get::<i64>("size")? as u64,
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
    conn: &mut dyn Conn,
    digest: &Digest,
) -> Result<Vec<(String, String, Option<String>)>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT r.name AS repository, m.digest, t.name AS tag FROM manifest_blob_references mr
         JOIN manifests m ON m.id = mr.manifest_id JOIN repositories r ON r.id = m.repository_id
         LEFT JOIN tags t ON t.manifest_id = m.id
         WHERE mr.blob_digest = $1 AND m.deleted_at IS NULL
         UNION
         SELECT r.name, p.digest, t.name FROM manifest_blob_references mr
         JOIN manifest_child_references c ON c.child_id = mr.manifest_id
         JOIN manifests p ON p.id = c.parent_id JOIN repositories r ON r.id = p.repository_id
         JOIN tags t ON t.manifest_id = p.id
         WHERE mr.blob_digest = $1 AND p.deleted_at IS NULL
         ORDER BY 1, 3, 2",
    )
    .bind(digest.to_string()))?;
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
pub async fn unlinked_references(
    conn: &mut dyn Conn,
) -> Result<Vec<(i64, String, String, String)>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT m.repository_id, r.name, m.digest, mr.blob_digest
         FROM manifest_blob_references mr
         JOIN manifests m ON m.id = mr.manifest_id
         JOIN repositories r ON r.id = m.repository_id
         WHERE m.deleted_at IS NULL AND NOT EXISTS (
             SELECT 1 FROM repository_blobs rb
             WHERE rb.repository_id = m.repository_id AND rb.digest = mr.blob_digest)
         ORDER BY r.name, m.digest",
    ))?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("repository_id")?,
                r.try_get("name")?,
                r.try_get("digest")?,
                r.try_get("blob_digest")?,
            ))
        })
        .collect()
}

/// (repository, tag, digest) of tags that point at a deleted manifest.
pub async fn tags_on_deleted(conn: &mut dyn Conn) -> Result<Vec<(String, String, String)>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT r.name, t.name AS tag, m.digest FROM tags t
         JOIN manifests m ON m.id = t.manifest_id JOIN repositories r ON r.id = t.repository_id
         WHERE m.deleted_at IS NOT NULL ORDER BY r.name, t.name",
    ))?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("tag")?, r.try_get("digest")?)))
        .collect()
}

/// Of these storage keys, the ones the catalogue knows (a blob, an upload, or a pending
/// deletion): everything else in the store is an orphan.
pub async fn known_keys(
    conn: &mut dyn Conn,
    keys: &[String],
) -> Result<std::collections::HashSet<String>> {
    let mut known = std::collections::HashSet::new();
    for chunk in keys.chunks(200) {
        let json = crate::json(chunk)?;
        let rows: Vec<String> = values!(conn, fetch_all, |cx| sqlx::query_scalar(cx.sql(dual!(
            "SELECT k.value FROM " texts(1) " k
             WHERE EXISTS (SELECT 1 FROM blobs WHERE storage_key = k.value)
                OR EXISTS (SELECT 1 FROM uploads WHERE storage_key = k.value)
                OR EXISTS (SELECT 1 FROM storage_deletions WHERE storage_key = k.value)"
        )))
        .bind(json))?;
        known.extend(rows);
    }
    Ok(known)
}
