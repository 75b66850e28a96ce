//! Tags and their history. Every change of a tag writes a `tag_history` row in the same
//! transaction, so a deleted tag can later be shown and restored.

use shipshape_oci::{Digest, RepoName, Tag};
use sqlx::Row;

use crate::manifests::{ManifestHead, ManifestId, ManifestRead, read_from_row};
use crate::repos::RepoId;
use crate::{Conn, Millis, Result};

/// Resolves a tag of the live repository `repo` to its manifest, with the manifest's bytes
/// when `with_payload`: one query, because a pull by tag is the registry's most frequent
/// request. `None` when the repository or the tag is not there (`repos::find` tells which).
pub async fn resolve_in_named(
    conn: &mut Conn,
    repo: &RepoName,
    tag: &Tag,
    with_payload: bool,
) -> Result<Option<ManifestRead>> {
    let row = sqlx::query(
        "SELECT m.id, m.digest, m.media_type, m.size, CASE WHEN ? THEN m.payload END AS payload
         FROM repositories r JOIN tags t ON t.repository_id = r.id JOIN manifests m ON m.id = t.manifest_id
         WHERE r.name = ? AND r.deleted_at IS NULL AND t.name = ?",
    )
    .bind(with_payload)
    .bind(repo.as_str())
    .bind(tag.as_str())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(read_from_row).transpose()
}

/// Resolves a tag to its manifest.
pub async fn resolve(conn: &mut Conn, repo: RepoId, tag: &Tag) -> Result<Option<ManifestHead>> {
    let row = sqlx::query(
        "SELECT m.id, m.digest, m.media_type, m.size FROM tags t JOIN manifests m ON m.id = t.manifest_id
         WHERE t.repository_id = ? AND t.name = ?",
    )
    .bind(repo.0)
    .bind(tag.as_str())
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(ManifestHead {
            id: ManifestId(r.get("id")),
            digest: crate::digest_col(r.get::<&str, _>("digest"))?,
            media_type: r.get("media_type"),
            size: r.get::<i64, _>("size") as u64,
        })
    })
    .transpose()
}

/// One row of tag history.
struct Change<'a> {
    tag: &'a str,
    action: &'a str,
    from: Option<&'a Digest>,
    to: Option<&'a Digest>,
}

async fn history(
    conn: &mut Conn,
    repo: RepoId,
    change: Change<'_>,
    actor: &str,
    now: Millis,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tag_history (repository_id, tag, action, from_digest, to_digest, actor, at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(repo.0)
    .bind(change.tag)
    .bind(change.action)
    .bind(change.from.map(|d| d.to_string()))
    .bind(change.to.map(|d| d.to_string()))
    .bind(actor)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    // The manifest the tag left may have lost its last tag: the collector looks at it again.
    if let Some(from) = change.from {
        let reason = format!("tag {}", change.action);
        crate::gc::queue_manifest_digest(conn, repo, from, now, &reason).await?;
    }
    Ok(())
}

/// Points a tag at a manifest; returns the digest it pointed at before, if any.
pub async fn set(
    conn: &mut Conn,
    repo: RepoId,
    tag: &Tag,
    manifest: &ManifestHead,
    actor: &str,
    now: Millis,
) -> Result<Option<Digest>> {
    let previous = resolve(conn, repo, tag).await?;
    sqlx::query(
        "INSERT INTO tags (repository_id, name, manifest_id, pushed_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (repository_id, name) DO UPDATE SET manifest_id = excluded.manifest_id,
                                                         pushed_at = excluded.pushed_at",
    )
    .bind(repo.0)
    .bind(tag.as_str())
    .bind(manifest.id.0)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    match &previous {
        None => {
            history(
                conn,
                repo,
                Change {
                    tag: tag.as_str(),
                    action: "pushed",
                    from: None,
                    to: Some(&manifest.digest),
                },
                actor,
                now,
            )
            .await?
        }
        Some(p) if p.digest != manifest.digest => {
            history(
                conn,
                repo,
                Change {
                    tag: tag.as_str(),
                    action: "moved",
                    from: Some(&p.digest),
                    to: Some(&manifest.digest),
                },
                actor,
                now,
            )
            .await?
        }
        Some(_) => {}
    }
    Ok(previous.map(|p| p.digest))
}

/// Deletes one tag; returns the digest it pointed at, or `None` if there was no such tag.
pub async fn delete(
    conn: &mut Conn,
    repo: RepoId,
    tag: &Tag,
    actor: &str,
    now: Millis,
) -> Result<Option<Digest>> {
    let Some(previous) = resolve(conn, repo, tag).await? else {
        return Ok(None);
    };
    sqlx::query("DELETE FROM tags WHERE repository_id = ? AND name = ?")
        .bind(repo.0)
        .bind(tag.as_str())
        .execute(&mut *conn)
        .await?;
    let change = Change {
        tag: tag.as_str(),
        action: "deleted",
        from: Some(&previous.digest),
        to: None,
    };
    history(conn, repo, change, actor, now).await?;
    Ok(Some(previous.digest))
}

/// Deletes every tag pointing at a manifest; returns their names.
pub async fn delete_for_manifest(
    conn: &mut Conn,
    repo: RepoId,
    manifest: &ManifestHead,
    actor: &str,
    now: Millis,
) -> Result<Vec<String>> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM tags WHERE manifest_id = ? ORDER BY name")
            .bind(manifest.id.0)
            .fetch_all(&mut *conn)
            .await?;
    sqlx::query("DELETE FROM tags WHERE manifest_id = ?")
        .bind(manifest.id.0)
        .execute(&mut *conn)
        .await?;
    for name in &names {
        let change = Change {
            tag: name,
            action: "deleted",
            from: Some(&manifest.digest),
            to: None,
        };
        history(conn, repo, change, actor, now).await?;
    }
    Ok(names)
}

/// Tag names of the live repository `repo` after `last` in byte order, at most `limit`
/// (negative: all), in one query answering one row: a row per tag would cost a hand-over from
/// the database thread each. `None` when the repository is not there.
pub async fn list_in_named(
    conn: &mut Conn,
    repo: &RepoName,
    last: Option<&str>,
    limit: i64,
) -> Result<Option<Vec<String>>> {
    // Tag names never contain a space (the spec's grammar), so a space separates them.
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT (SELECT group_concat(name, ' ' ORDER BY name) FROM
                   (SELECT name FROM tags WHERE repository_id = r.id AND name > ? ORDER BY name LIMIT ?))
         FROM repositories r WHERE r.name = ? AND r.deleted_at IS NULL",
    )
    .bind(last.unwrap_or(""))
    .bind(limit)
    .bind(repo.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(names,)| {
        names
            .map(|n| n.split(' ').map(str::to_string).collect())
            .unwrap_or_default()
    }))
}

/// A tag with what users want to know about it.
#[derive(Clone, Debug)]
pub struct TagInfo {
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    pub manifest_id: ManifestId,
    pub pushed_at: Millis,
    pub last_pulled_at: Option<Millis>,
    pub pull_count: i64,
}

/// Every tag of a repository, in byte order of name.
pub async fn list_detailed(conn: &mut Conn, repo: RepoId) -> Result<Vec<TagInfo>> {
    let rows = sqlx::query(
        "SELECT t.name, m.digest, m.media_type, m.id, t.pushed_at, t.last_pulled_at, t.pull_count
         FROM tags t JOIN manifests m ON m.id = t.manifest_id
         WHERE t.repository_id = ? ORDER BY t.name",
    )
    .bind(repo.0)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TagInfo {
                name: r.get("name"),
                digest: crate::digest_col(r.get::<&str, _>("digest"))?,
                media_type: r.get("media_type"),
                manifest_id: ManifestId(r.get("id")),
                pushed_at: r.get("pushed_at"),
                last_pulled_at: r.get("last_pulled_at"),
                pull_count: r.get("pull_count"),
            })
        })
        .collect()
}

/// One change in a tag's history.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    pub tag: String,
    pub action: String,
    pub from_digest: Option<Digest>,
    pub to_digest: Option<Digest>,
    pub actor: String,
    pub at: Millis,
}

/// History of one tag, or of every tag of the repository, newest first.
pub async fn history_of(
    conn: &mut Conn,
    repo: RepoId,
    tag: Option<&Tag>,
    limit: i64,
) -> Result<Vec<HistoryEntry>> {
    let rows = sqlx::query(
        "SELECT tag, action, from_digest, to_digest, actor, at FROM tag_history
         WHERE repository_id = ? AND (? IS NULL OR tag = ?) ORDER BY at DESC, id DESC LIMIT ?",
    )
    .bind(repo.0)
    .bind(tag.map(Tag::as_str))
    .bind(tag.map(Tag::as_str))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let digest = |col: &str| {
                r.get::<Option<&str>, _>(col)
                    .map(crate::digest_col)
                    .transpose()
            };
            Ok(HistoryEntry {
                tag: r.get("tag"),
                action: r.get("action"),
                from_digest: digest("from_digest")?,
                to_digest: digest("to_digest")?,
                actor: r.get("actor"),
                at: r.get("at"),
            })
        })
        .collect()
}

/// The digest a tag pointed at when it was last deleted, if it ever was.
pub async fn last_deleted_digest(
    conn: &mut Conn,
    repo: RepoId,
    tag: &Tag,
) -> Result<Option<Digest>> {
    let d: Option<String> = sqlx::query_scalar(
        "SELECT from_digest FROM tag_history WHERE repository_id = ? AND tag = ? AND action = 'deleted'
         ORDER BY at DESC, id DESC LIMIT 1",
    )
    .bind(repo.0)
    .bind(tag.as_str())
    .fetch_optional(conn)
    .await?;
    d.as_deref().map(crate::digest_col).transpose()
}

/// Points a tag at a manifest again as a restore, recorded as such; returns the digest the tag
/// pointed at before (when a reused name is overwritten by force).
pub async fn restore(
    conn: &mut Conn,
    repo: RepoId,
    tag: &Tag,
    manifest: &ManifestHead,
    actor: &str,
    now: Millis,
) -> Result<Option<Digest>> {
    let previous = resolve(conn, repo, tag).await?;
    sqlx::query(
        "INSERT INTO tags (repository_id, name, manifest_id, pushed_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (repository_id, name) DO UPDATE SET manifest_id = excluded.manifest_id,
                                                         pushed_at = excluded.pushed_at",
    )
    .bind(repo.0)
    .bind(tag.as_str())
    .bind(manifest.id.0)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let change = Change {
        tag: tag.as_str(),
        action: "restored",
        from: previous.as_ref().map(|p| &p.digest),
        to: Some(&manifest.digest),
    };
    history(conn, repo, change, actor, now).await?;
    Ok(previous.map(|p| p.digest))
}

/// Deletes every tag of a repository (repository deletion); returns (name, digest) pairs.
pub async fn delete_all(
    conn: &mut Conn,
    repo: RepoId,
    actor: &str,
    now: Millis,
) -> Result<Vec<(String, Digest)>> {
    let tags = list_detailed(conn, repo).await?;
    sqlx::query("DELETE FROM tags WHERE repository_id = ?")
        .bind(repo.0)
        .execute(&mut *conn)
        .await?;
    for t in &tags {
        let change = Change {
            tag: &t.name,
            action: "deleted",
            from: Some(&t.digest),
            to: None,
        };
        history(conn, repo, change, actor, now).await?;
    }
    Ok(tags.into_iter().map(|t| (t.name, t.digest)).collect())
}

/// Adds a batch of pulls to tag counters and last-pulled times.
pub async fn record_pulls(
    conn: &mut Conn,
    repo: RepoId,
    tag: &str,
    count: i64,
    last: Millis,
) -> Result<()> {
    sqlx::query(
        "UPDATE tags SET pull_count = pull_count + ?,
                         last_pulled_at = max(coalesce(last_pulled_at, 0), ?)
         WHERE repository_id = ? AND name = ?",
    )
    .bind(count)
    .bind(last)
    .bind(repo.0)
    .bind(tag)
    .execute(conn)
    .await?;
    Ok(())
}
