//! The collector's reviews, a batch at a time: the facts a batch of queue entries needs, read
//! with one statement per kind of fact, and the changes the reviews decide, written with one
//! statement per kind of change. A review used to cost a dozen round trips to SQLite's
//! connection thread per entry; a batch costs about as many for all its entries, so the single
//! writer is held for a few milliseconds per batch instead of a few per entry.
//!
//! Batches travel as JSON arrays bound to one parameter and unpacked in SQL (`db::dual!`).

use crate::db::{Backend, Dialect, dual, execute, rows, values};
use shipshape_oci::Digest;

use crate::blobs::Blob;
use crate::manifests::ManifestId;
use crate::queue::{merge_blob_review, merge_manifest_review};
use crate::repos::RepoId;
use crate::{Conn, Millis, Result, json};

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
pub async fn links_of(conn: &mut dyn Conn, digest: &Digest) -> Result<Vec<Link>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT rb.repository_id, r.name, rb.renewed_at,
                rb.repository_id IN (SELECT m.repository_id FROM manifest_blob_references mr
                                     JOIN manifests m ON m.id = mr.manifest_id
                                     WHERE mr.blob_digest = $1) AS referenced
         FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
         WHERE rb.digest = $1 ORDER BY rb.repository_id",
    )
    .bind(digest.to_string()))?;
    rows.iter()
        .map(|r| {
            Ok(Link {
                repo: RepoId(r.try_get("repository_id")?),
                repository: r.try_get("name")?,
                renewed_at: r.try_get("renewed_at")?,
                referenced: r.try_get("referenced")?,
            })
        })
        .collect()
}

/// Whether any manifest, in any repository and in any state, references the blob.
pub async fn blob_referenced(conn: &mut dyn Conn, digest: &Digest) -> Result<bool> {
    let found: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT CAST(1 AS BIGINT) FROM manifest_blob_references WHERE blob_digest = $1 LIMIT 1"
    )
    .bind(digest.to_string()))?;
    Ok(found.is_some())
}

/// Forgets a blob and queues its storage key for deletion. The foreign keys refuse if anything
/// still references or links it. Returns the forgotten blob, or `None` if it was already gone.
pub async fn forget_blob(
    conn: &mut dyn Conn,
    digest: &Digest,
    now: Millis,
) -> Result<Option<Blob>> {
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(
        "DELETE FROM blobs WHERE digest = $1 RETURNING size, storage_key"
    )
    .bind(digest.to_string()))?;
    let Some(row) = row else { return Ok(None) };
    let blob = Blob {
        digest: digest.clone(),
        size: row.try_get::<i64>("size")? as u64,
        storage_key: row.try_get("storage_key")?,
    };
    crate::queue::queue_storage_deletion(conn, &blob.storage_key, now).await?;
    Ok(Some(blob))
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

fn digests_json<'a>(digests: impl IntoIterator<Item = &'a Digest>) -> Result<String> {
    json(
        &digests
            .into_iter()
            .map(Digest::to_string)
            .collect::<Vec<_>>(),
    )
}

/// What a blob review needs to know.
#[derive(Clone, Debug)]
pub struct BlobFacts {
    pub digest: Digest,
    /// The entry is still queued (another review may have finished it).
    pub queued: bool,
    /// The blob's size, or `None` when the catalogue no longer has it.
    pub size: Option<u64>,
    /// Some manifest, in any repository and any state, references it.
    pub referenced: bool,
    pub links: Vec<Link>,
}

/// The facts of each blob of the batch. The links of a blob no manifest references are all of
/// them; those of a referenced blob are the ones queued for a re-check.
pub async fn blob_facts(conn: &mut dyn Conn, digests: &[Digest]) -> Result<Vec<BlobFacts>> {
    let batch = digests_json(digests)?;
    // The entries are locked before the facts are read, until the review's settle commits:
    // an event that queues one of these blobs meanwhile (a purge, an unlink, an upload) waits
    // and queues it afresh after the settle, instead of being deleted with the entry.
    // PostgreSQL runs that event beside the review; SQLite's single writer never does.
    if let Backend::Postgres(cx) = conn.backend() {
        sqlx::query(
            "SELECT digest FROM gc_blob_reviews
             WHERE digest IN (SELECT value FROM json_array_elements_text($1::json))
             ORDER BY digest FOR UPDATE",
        )
        .bind(&batch)
        .fetch_all(cx)
        .await?;
    }
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(cx.sql(dual!(
        "SELECT j.value AS digest, b.size,
                EXISTS (SELECT 1 FROM gc_blob_reviews q WHERE q.digest = j.value) AS queued,
                EXISTS (SELECT 1 FROM manifest_blob_references mr
                        WHERE mr.blob_digest = j.value) AS referenced
         FROM " texts(1) " j LEFT JOIN blobs b ON b.digest = j.value"
    )))
    .bind(&batch))?;
    let mut facts = rows
        .iter()
        .map(|r| {
            Ok(BlobFacts {
                digest: crate::digest_col(r.try_get::<&str>("digest")?)?,
                queued: r.try_get::<bool>("queued")?,
                size: r.try_get::<Option<i64>>("size")?.map(|s| s as u64),
                referenced: r.try_get::<bool>("referenced")?,
                links: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // A link needs its own check only when some manifest references the blob: otherwise no
    // manifest of any repository does, and every link goes. Then only the links an event named
    // are checked (the repositories of a purge, an upload, a mount), each with one probe per
    // manifest of its repository, and they are found from the queue, not among the blob's
    // links: a base layer shared by thousands of repositories costs what the churn named. (Found
    // the other way round, a batch holding a base layer walked all of its links, 5 000 at 1 M
    // blobs: 150 ms per batch.) The joins are written in the order they must run.
    let (referenced, unreferenced): (Vec<&BlobFacts>, Vec<&BlobFacts>) =
        facts.iter().partition(|f| f.referenced);
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(cx.sql(dual!(
        "SELECT rb.digest, rb.repository_id, r.name, rb.renewed_at, FALSE AS referenced
         FROM " texts(1) " u
         " cross_join " repository_blobs rb ON rb.digest = u.value
         " cross_join " repositories r ON r.id = rb.repository_id
         UNION ALL
         SELECT rb.digest, rb.repository_id, r.name, rb.renewed_at,
                EXISTS (SELECT 1 FROM manifests m " cross_join " manifest_blob_references mr
                        ON mr.manifest_id = m.id
                        WHERE m.repository_id = rb.repository_id
                          AND mr.blob_digest = rb.digest) AS referenced
         FROM " texts(2) " x
         " cross_join " gc_link_reviews l ON l.digest = x.value
         " cross_join " repository_blobs rb
              ON rb.repository_id = l.repository_id AND rb.digest = l.digest
         " cross_join " repositories r ON r.id = rb.repository_id"
    )))
    .bind(digests_json(unreferenced.iter().map(|f| &f.digest))?)
    .bind(digests_json(referenced.iter().map(|f| &f.digest))?))?;
    let index: std::collections::HashMap<String, usize> = facts
        .iter()
        .enumerate()
        .map(|(i, f)| (f.digest.to_string(), i))
        .collect();
    for r in &rows {
        let Some(&i) = index.get(r.try_get::<&str>("digest")?) else {
            continue;
        };
        facts[i].links.push(Link {
            repo: RepoId(r.try_get("repository_id")?),
            repository: r.try_get("name")?,
            renewed_at: r.try_get("renewed_at")?,
            referenced: r.try_get::<bool>("referenced")?,
        });
    }
    Ok(facts)
}

/// What a manifest review needs to know.
#[derive(Clone, Debug)]
pub struct ManifestFacts {
    pub id: ManifestId,
    /// When the entry was queued, or `None` when it is no longer queued.
    pub queued_at: Option<Millis>,
    /// The manifest, or `None` when the catalogue no longer has it.
    pub state: Option<ManifestState>,
}

/// The facts of each manifest of the batch.
pub async fn manifest_facts(conn: &mut dyn Conn, ids: &[ManifestId]) -> Result<Vec<ManifestFacts>> {
    let batch = json(&ids.iter().map(|i| i.0).collect::<Vec<_>>())?;
    // Locked until the settle commits, as in `blob_facts`.
    if let Backend::Postgres(cx) = conn.backend() {
        sqlx::query(
            "SELECT manifest_id FROM gc_manifest_reviews
             WHERE manifest_id IN
                   (SELECT CAST(value AS BIGINT) FROM json_array_elements_text($1::json))
             ORDER BY manifest_id FOR UPDATE",
        )
        .bind(&batch)
        .fetch_all(cx)
        .await?;
    }
    let rows = rows!(conn, fetch_all, |cx| {
        sqlx::query(cx.sql(dual!(
        "SELECT j.value AS id, q.queued_at, m.repository_id, r.name, m.digest, m.size,
                m.created_at, m.pushed_at, m.deleted_at, m.subject_digest,
                EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id) AS tagged,
                EXISTS (SELECT 1 FROM manifest_child_references c WHERE c.child_id = m.id) AS listed,
                EXISTS (SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id
                        AND s.digest = m.subject_digest) AS subject_present,
                (SELECT max(h.at) FROM tag_history h WHERE h.repository_id = m.repository_id
                        AND h.from_digest = m.digest) AS last_untagged_at
         FROM " ids(1) " j
         LEFT JOIN gc_manifest_reviews q ON q.manifest_id = j.value
         LEFT JOIN manifests m ON m.id = j.value
         LEFT JOIN repositories r ON r.id = m.repository_id"
    )))
    .bind(batch)
    })?;
    rows.iter()
        .map(|r| {
            let state = match r.try_get::<Option<&str>>("digest")? {
                None => None,
                Some(digest) => Some(ManifestState {
                    repo: RepoId(r.try_get("repository_id")?),
                    repository: r.try_get("name")?,
                    digest: crate::digest_col(digest)?,
                    size: r.try_get::<i64>("size")? as u64,
                    created_at: r.try_get("created_at")?,
                    deleted_at: r.try_get("deleted_at")?,
                    tagged: r.try_get::<bool>("tagged")?,
                    listed: r.try_get::<bool>("listed")?,
                    subject: r
                        .try_get::<Option<&str>>("subject_digest")?
                        .map(crate::digest_col)
                        .transpose()?,
                    subject_present: r.try_get::<bool>("subject_present")?,
                    pushed_at: r.try_get("pushed_at")?,
                    last_untagged_at: r.try_get("last_untagged_at")?,
                }),
            };
            Ok(ManifestFacts {
                id: ManifestId(r.try_get("id")?),
                queued_at: r.try_get("queued_at")?,
                state,
            })
        })
        .collect()
}

/// Removes finished blob entries and defers the others to their time.
pub async fn settle_blobs(
    conn: &mut dyn Conn,
    done: &[Digest],
    later: &[(Digest, Millis)],
) -> Result<()> {
    if !done.is_empty() {
        let done = digests_json(done)?;
        for table in ["gc_blob_reviews", "gc_link_reviews"] {
            // The table comes from the constant list above, never from input.
            let sql = match table {
                "gc_blob_reviews" => dual!("DELETE FROM gc_blob_reviews WHERE digest IN " texts(1)),
                _ => dual!("DELETE FROM gc_link_reviews WHERE digest IN " texts(1)),
            };
            execute!(conn, |cx| sqlx::query(cx.sql(sql)).bind(&done))?;
        }
    }
    if !later.is_empty() {
        let pairs: Vec<(String, Millis)> = later.iter().map(|(d, t)| (d.to_string(), *t)).collect();
        execute!(conn, |cx| sqlx::query(cx.sql(dual!(
            "UPDATE gc_blob_reviews SET not_before = j.t
             FROM (SELECT value ->> 0 AS d, CAST(value ->> 1 AS BIGINT) AS t
                   FROM " json_rows(1) ") j
             WHERE digest = j.d"
        )))
        .bind(json(&pairs)?))?;
    }
    Ok(())
}

/// Removes finished manifest entries and defers the others to their time.
pub async fn settle_manifests(
    conn: &mut dyn Conn,
    done: &[ManifestId],
    later: &[(ManifestId, Millis)],
) -> Result<()> {
    if !done.is_empty() {
        let ids: Vec<i64> = done.iter().map(|i| i.0).collect();
        execute!(conn, |cx| {
            sqlx::query(cx.sql(dual!(
                "DELETE FROM gc_manifest_reviews WHERE manifest_id IN " ids(1)
            )))
            .bind(json(&ids)?)
        })?;
    }
    if !later.is_empty() {
        let pairs: Vec<(i64, Millis)> = later.iter().map(|(i, t)| (i.0, *t)).collect();
        execute!(conn, |cx| sqlx::query(cx.sql(dual!(
            "UPDATE gc_manifest_reviews SET not_before = j.t
             FROM (SELECT CAST(value ->> 0 AS BIGINT) AS id, CAST(value ->> 1 AS BIGINT) AS t
                   FROM " json_rows(1) ") j
             WHERE manifest_id = j.id"
        )))
        .bind(json(&pairs)?))?;
    }
    Ok(())
}

/// Removes repository links whose lease ended at `renewed_by` or before and that no manifest of
/// their repository references; returns those removed. The caller has checked both on the facts
/// it read; both are checked again here, because a manifest push relies on the links it renews
/// (`manifests::missing_references`), holding their row locks until it commits its references.
/// On PostgreSQL the links are locked first, in the order pushes take them: the deleting
/// statement then starts after any such push committed, and sees its references (a statement
/// that waited for a row lock would re-check the row but not a subquery); a push that comes
/// later waits for this transaction and finds the link gone. The renewal alone does not keep a
/// link: a push whose clock reads no later than the collector's cutoff (no lease, or nodes'
/// clocks apart) leaves it as old as the cutoff.
pub async fn unlink(
    conn: &mut dyn Conn,
    links: &[(RepoId, Digest)],
    renewed_by: Millis,
) -> Result<Vec<(RepoId, Digest)>> {
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let pairs = json(
        &links
            .iter()
            .map(|(r, d)| (r.0, d.to_string()))
            .collect::<Vec<_>>(),
    )?;
    if let Backend::Postgres(cx) = conn.backend() {
        sqlx::query(
            "SELECT repository_id FROM repository_blobs WHERE (repository_id, digest) IN
                 (SELECT CAST(value ->> 0 AS BIGINT), value ->> 1 FROM json_array_elements($1::json))
             ORDER BY repository_id, digest FOR UPDATE",
        )
        .bind(&pairs)
        .fetch_all(cx)
        .await?;
    }
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(cx.sql(dual!(
        "DELETE FROM repository_blobs WHERE renewed_at <= $2 AND (repository_id, digest) IN
             (SELECT CAST(value ->> 0 AS BIGINT), value ->> 1 FROM " json_rows(1) ")
           AND NOT EXISTS (SELECT 1 FROM manifests m " cross_join " manifest_blob_references mr
                           ON mr.manifest_id = m.id
                           WHERE m.repository_id = repository_blobs.repository_id
                             AND mr.blob_digest = repository_blobs.digest)
         RETURNING repository_id, digest"
    )))
    .bind(&pairs)
    .bind(renewed_by))?;
    let removed = rows
        .iter()
        .map(|r| {
            Ok((
                RepoId(r.try_get("repository_id")?),
                crate::digest_col(r.try_get::<&str>("digest")?)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    // The review entries of every link looked at go: a kept link was renewed, and whatever
    // renewed it queued its own review.
    execute!(conn, |cx| sqlx::query(cx.sql(dual!(
        "DELETE FROM gc_link_reviews WHERE (repository_id, digest) IN
             (SELECT CAST(value ->> 0 AS BIGINT), value ->> 1 FROM " json_rows(1) ")"
    )))
    .bind(&pairs))?;
    Ok(removed)
}

/// Forgets blobs and queues their storage keys for the drainer (invariant 1: forget first,
/// delete after the commit). A blob something still links or references is left as it is (a
/// push may have renewed a link since the facts were read; the foreign keys are the backstop).
/// Returns the blobs forgotten.
pub async fn forget_blobs(
    conn: &mut dyn Conn,
    digests: &[Digest],
    now: Millis,
) -> Result<Vec<Blob>> {
    if digests.is_empty() {
        return Ok(Vec::new());
    }
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(cx.sql(dual!(
        "DELETE FROM blobs WHERE digest IN " texts(1) "
             AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blobs.digest)
             AND NOT EXISTS (SELECT 1 FROM manifest_blob_references mr
                             WHERE mr.blob_digest = blobs.digest)
         RETURNING digest, size, storage_key"
    )))
    .bind(digests_json(digests)?))?;
    let forgotten = rows
        .iter()
        .map(|r| {
            Ok(Blob {
                digest: crate::digest_col(r.try_get::<&str>("digest")?)?,
                size: r.try_get::<i64>("size")? as u64,
                storage_key: r.try_get("storage_key")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let keys: Vec<&str> = forgotten.iter().map(|b| b.storage_key.as_str()).collect();
    execute!(conn, |cx| sqlx::query(cx.sql(dual!(
        "INSERT INTO storage_deletions (storage_key, queued_at)
         SELECT value, $2 FROM " texts(1) " k WHERE true ON CONFLICT (storage_key) DO NOTHING"
    )))
    .bind(json(&keys)?)
    .bind(now))?;
    Ok(forgotten)
}

/// Forgets manifests: queues what they referenced (blobs, listed children, referrers in their
/// repository) for review, then removes them with their outgoing references. The caller has
/// checked that no tag points at them and no index lists them.
pub async fn purge_manifests(conn: &mut dyn Conn, ids: &[ManifestId], now: Millis) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let batch = json(&ids.iter().map(|i| i.0).collect::<Vec<_>>())?;
    execute!(conn, |cx| sqlx::query(cx.sql(dual!(
        "INSERT INTO gc_blob_reviews (digest, queued_at, reason)
         SELECT DISTINCT blob_digest, $2, 'manifest purged' FROM manifest_blob_references
         WHERE manifest_id IN " ids(1) " ORDER BY blob_digest"
        merge_blob_review!()
    )))
    .bind(&batch)
    .bind(now))?;
    execute!(conn, |cx| sqlx::query(cx.sql(dual!(
        "INSERT INTO gc_link_reviews (digest, repository_id)
         SELECT DISTINCT mr.blob_digest, m.repository_id FROM manifest_blob_references mr
         JOIN manifests m ON m.id = mr.manifest_id
         WHERE mr.manifest_id IN " ids(1) "
         ON CONFLICT (digest, repository_id) DO NOTHING"
    )))
    .bind(&batch))?;
    execute!(conn, |cx| sqlx::query(cx.sql(dual!(
        "INSERT INTO gc_manifest_reviews (manifest_id, queued_at, reason)
         SELECT DISTINCT child_id, $2, 'index purged' FROM manifest_child_references
         WHERE parent_id IN " ids(1) " ORDER BY child_id"
        merge_manifest_review!()
    )))
    .bind(&batch)
    .bind(now))?;
    execute!(conn, |cx| sqlx::query(cx.sql(dual!(
        "INSERT INTO gc_manifest_reviews (manifest_id, queued_at, reason)
         SELECT DISTINCT s.id, $2, 'subject purged' FROM manifests p
         JOIN manifests s ON s.repository_id = p.repository_id AND s.subject_digest = p.digest
         WHERE p.id IN " ids(1) " ORDER BY s.id"
        merge_manifest_review!()
    )))
    .bind(&batch)
    .bind(now))?;
    for sql in [
        dual!("DELETE FROM manifest_blob_references WHERE manifest_id IN " ids(1)),
        dual!("DELETE FROM manifest_child_references WHERE parent_id IN " ids(1)),
        dual!("DELETE FROM manifests WHERE id IN " ids(1)),
    ] {
        execute!(conn, |cx| sqlx::query(cx.sql(sql)).bind(&batch))?;
    }
    Ok(())
}
