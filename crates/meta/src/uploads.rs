//! Blob upload sessions. The row holds everything needed to resume after a restart: where the
//! bytes are, how many were received, what else the blob store needs to carry on (its
//! `store_state`, opaque here), and the hasher's state at that offset.

use crate::db::{execute, rows, values};
use shipshape_oci::{Algorithm, UploadId};

use crate::repos::RepoId;
use crate::{Conn, Millis, Result};

#[derive(Clone, Debug)]
pub struct Upload {
    pub id: UploadId,
    pub repository: RepoId,
    pub storage_key: String,
    pub received: u64,
    /// The blob store's own state of the session (`None` for the local store).
    pub store_state: Option<String>,
    pub hash_alg: Algorithm,
    pub hash_state: Option<Vec<u8>>,
}

pub async fn create(
    conn: &mut dyn Conn,
    id: &UploadId,
    repo: RepoId,
    storage_key: &str,
    store_state: Option<&str>,
    hash_alg: Algorithm,
    now: Millis,
) -> Result<()> {
    execute!(conn, |cx| {
        sqlx::query(
        "INSERT INTO uploads (id, repository_id, storage_key, received, store_state, hash_alg, created_at, updated_at)
         VALUES ($1, $2, $3, 0, $4, $5, $6, $7)",
    )
    .bind(id.as_str())
    .bind(repo.0)
    .bind(storage_key)
    .bind(store_state)
    .bind(hash_alg.as_str())
    .bind(now)
    .bind(now)
    })?;
    Ok(())
}

/// The session, if it exists and belongs to `repo`.
pub async fn find(conn: &mut dyn Conn, repo: RepoId, id: &UploadId) -> Result<Option<Upload>> {
    let row = rows!(conn, fetch_optional, |cx| {
        sqlx::query(
        "SELECT id, repository_id, storage_key, received, store_state, hash_alg, hash_state FROM uploads
         WHERE id = $1 AND repository_id = $2",
    )
    .bind(id.as_str())
    .bind(repo.0)
    })?;
    row.map(|r| {
        let alg: &str = r.try_get("hash_alg")?;
        Ok(Upload {
            id: id.clone(),
            repository: RepoId(r.try_get("repository_id")?),
            storage_key: r.try_get("storage_key")?,
            received: r.try_get::<i64>("received")? as u64,
            store_state: r.try_get("store_state")?,
            hash_alg: alg
                .parse()
                .map_err(|_| crate::MetaError::Corrupt(format!("upload hash_alg {alg:?}")))?,
            hash_state: r.try_get("hash_state")?,
        })
    })
    .transpose()
}

/// Claims the session for `writer` (a node's name) until `until`, if it is still at
/// `expected_received` and no other node's claim holds at `now`. Only the claim's holder
/// writes the session's bytes: on an object store two writers would send the same multipart
/// part number, and the later would replace the part the other recorded. Returns whether
/// the claim was taken; when not, read the session again to say why (moved, gone, or busy).
pub async fn claim(
    conn: &mut dyn Conn,
    id: &UploadId,
    expected_received: u64,
    writer: &str,
    now: Millis,
    until: Millis,
) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query(
        "UPDATE uploads SET writer = $1, writer_until = $2
         WHERE id = $3 AND received = $4
           AND (writer IS NULL OR writer = $1 OR writer_until <= $5)",
    )
    .bind(writer)
    .bind(until)
    .bind(id.as_str())
    .bind(expected_received as i64)
    .bind(now))?;
    Ok(done.rows_affected() == 1)
}

/// Extends `writer`'s claim to `until` while it writes (and counts the session as touched,
/// so a long chunk is not taken for abandoned); whether the claim was still its own.
pub async fn renew_claim(
    conn: &mut dyn Conn,
    id: &UploadId,
    writer: &str,
    now: Millis,
    until: Millis,
) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query(
        "UPDATE uploads SET writer_until = $1, updated_at = $2 WHERE id = $3 AND writer = $4",
    )
    .bind(until)
    .bind(now)
    .bind(id.as_str())
    .bind(writer))?;
    Ok(done.rows_affected() == 1)
}

/// Gives up `writer`'s claim without progress (its chunk failed), so a retry on any node
/// need not wait for the claim to run out.
pub async fn release_claim(conn: &mut dyn Conn, id: &UploadId, writer: &str) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "UPDATE uploads SET writer = NULL, writer_until = NULL WHERE id = $1 AND writer = $2",
    )
    .bind(id.as_str())
    .bind(writer))?;
    Ok(())
}

/// Records progress and ends `writer`'s claim, only if nobody else moved the session since
/// `expected_received` and no other node claimed it meanwhile. Returns whether the update
/// applied.
#[allow(clippy::too_many_arguments)]
pub async fn advance(
    conn: &mut dyn Conn,
    id: &UploadId,
    writer: &str,
    expected_received: u64,
    received: u64,
    store_state: Option<&str>,
    hash_state: &[u8],
    now: Millis,
) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query(
        "UPDATE uploads SET received = $1, store_state = $2, hash_state = $3, updated_at = $4,
                            writer = NULL, writer_until = NULL
         WHERE id = $5 AND received = $6 AND (writer IS NULL OR writer = $7)",
    )
    .bind(received as i64)
    .bind(store_state)
    .bind(hash_state)
    .bind(now)
    .bind(id.as_str())
    .bind(expected_received as i64)
    .bind(writer))?;
    Ok(done.rows_affected() == 1)
}

/// How many upload sessions are open (begun, neither finished, cancelled nor expired).
pub async fn open_sessions(conn: &mut dyn Conn) -> Result<u64> {
    let n: i64 = values!(conn, fetch_one, |cx| sqlx::query_scalar(
        "SELECT count(*) FROM uploads"
    ))?;
    Ok(n as u64)
}

pub async fn delete(conn: &mut dyn Conn, id: &UploadId) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id.as_str()))?;
    Ok(done.rows_affected() > 0)
}

/// An upload session untouched since before the cutoff.
#[derive(Clone, Debug)]
pub struct StaleUpload {
    pub id: String,
    pub repository: String,
    pub storage_key: String,
    pub received: u64,
    /// The blob store's own state of the session: what it needs to free what the key alone
    /// does not name (an object store's multipart upload).
    pub store_state: Option<String>,
}

pub async fn stale_uploads(
    conn: &mut dyn Conn,
    cutoff: Millis,
    limit: i64,
) -> Result<Vec<StaleUpload>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT u.id, r.name, u.storage_key, u.received, u.store_state FROM uploads u
         JOIN repositories r ON r.id = u.repository_id
         WHERE u.updated_at < $1 ORDER BY u.updated_at LIMIT $2",
    )
    .bind(cutoff)
    .bind(crate::limit(limit)))?;
    rows.iter()
        .map(|r| {
            Ok(StaleUpload {
                id: r.try_get("id")?,
                repository: r.try_get("name")?,
                storage_key: r.try_get("storage_key")?,
                received: r.try_get::<i64>("received")? as u64,
                store_state: r.try_get("store_state")?,
            })
        })
        .collect()
}

/// Forgets an upload session if it is still stale, queueing its bytes for deletion.
pub async fn expire_upload(
    conn: &mut dyn Conn,
    id: &str,
    cutoff: Millis,
    now: Millis,
) -> Result<bool> {
    let key: Option<String> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "DELETE FROM uploads WHERE id = $1 AND updated_at < $2 RETURNING storage_key",
    )
    .bind(id)
    .bind(cutoff))?;
    match key {
        Some(k) => {
            crate::queue::queue_storage_deletion(conn, &k, now).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}
