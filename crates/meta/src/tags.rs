//! Tags and their history. Every change of a tag writes a `tag_history` row in the same
//! transaction, so a deleted tag can later be shown and restored.

use crate::db::{Dialect, dual, execute, rows, values};
use shipshape_oci::{Digest, RepoName, Tag};

use crate::manifests::{ManifestHead, ManifestId, ManifestRead, read_from_row};
use crate::principal::Principal;
use crate::repos::RepoId;
use crate::{Conn, Millis, Result};

/// Resolves a tag of the live repository `repo` to its manifest, with the manifest's bytes
/// when `with_payload`: one query, because a pull by tag is the registry's most frequent
/// request. `None` when the repository or the tag is not there (`repos::find` tells which).
pub async fn resolve_in_named(
    conn: &mut dyn Conn,
    repo: &RepoName,
    tag: &Tag,
    with_payload: bool,
) -> Result<Option<ManifestRead>> {
    let row = rows!(conn, fetch_optional, |cx| {
        sqlx::query(
        "SELECT m.id, m.digest, m.media_type, m.size, CASE WHEN $1 THEN m.payload END AS payload
         FROM repositories r JOIN tags t ON t.repository_id = r.id JOIN manifests m ON m.id = t.manifest_id
         WHERE r.name = $2 AND r.deleted_at IS NULL AND t.name = $3",
    )
    .bind(with_payload)
    .bind(repo.as_str())
    .bind(tag.as_str())
    })?;
    row.as_ref().map(read_from_row).transpose()
}

/// Resolves a tag to its manifest.
pub async fn resolve(conn: &mut dyn Conn, repo: RepoId, tag: &Tag) -> Result<Option<ManifestHead>> {
    let row = rows!(conn, fetch_optional, |cx| {
        sqlx::query(
        "SELECT m.id, m.digest, m.media_type, m.size FROM tags t JOIN manifests m ON m.id = t.manifest_id
         WHERE t.repository_id = $1 AND t.name = $2",
    )
    .bind(repo.0)
    .bind(tag.as_str())
    })?;
    row.map(|r| {
        Ok(ManifestHead {
            id: ManifestId(r.try_get("id")?),
            digest: crate::digest_col(r.try_get::<&str>("digest")?)?,
            media_type: r.try_get("media_type")?,
            size: r.try_get::<i64>("size")? as u64,
        })
    })
    .transpose()
}

/// Who changes tags, when, and as part of which batch (an operation that removed several tags
/// at once: a repository deletion, a bulk delete, a policy run's repository).
#[derive(Clone, Copy, Debug)]
pub struct By<'a> {
    pub principal: &'a Principal,
    pub now: Millis,
    pub batch: Option<i64>,
}

impl<'a> By<'a> {
    pub fn new(principal: &'a Principal, now: Millis) -> Self {
        By {
            principal,
            now,
            batch: None,
        }
    }

    pub fn in_batch(self, batch: i64) -> Self {
        By {
            batch: Some(batch),
            ..self
        }
    }
}

/// What a tag carried when it pointed at a manifest: kept in its history when it leaves, so a
/// restore brings back the original push time and pull figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagState {
    pub pushed_at: Millis,
    pub last_pulled_at: Option<Millis>,
    pub pull_count: i64,
}

/// A tag as it stands: its manifest and what it carries.
#[derive(Clone, Debug)]
pub struct Current {
    pub manifest: ManifestHead,
    pub state: TagState,
}

/// The tag's manifest and state, if the tag exists.
pub async fn current(conn: &mut dyn Conn, repo: RepoId, tag: &str) -> Result<Option<Current>> {
    let row = rows!(conn, fetch_optional, |cx| {
        sqlx::query(
        "SELECT m.id, m.digest, m.media_type, m.size, t.pushed_at, t.last_pulled_at, t.pull_count
         FROM tags t JOIN manifests m ON m.id = t.manifest_id
         WHERE t.repository_id = $1 AND t.name = $2",
    )
    .bind(repo.0)
    .bind(tag)
    })?;
    row.map(|r| {
        Ok(Current {
            manifest: ManifestHead {
                id: ManifestId(r.try_get("id")?),
                digest: crate::digest_col(r.try_get::<&str>("digest")?)?,
                media_type: r.try_get("media_type")?,
                size: r.try_get::<i64>("size")? as u64,
            },
            state: TagState {
                pushed_at: r.try_get("pushed_at")?,
                last_pulled_at: r.try_get("last_pulled_at")?,
                pull_count: r.try_get("pull_count")?,
            },
        })
    })
    .transpose()
}

/// The tag's manifest and state, with the tag's row locked until the transaction ends. The lock
/// is taken by an update that changes nothing: it is what SQLite and PostgreSQL both offer
/// (`FOR UPDATE` is PostgreSQL's alone), and an update reads the latest committed row.
pub async fn current_locked(
    conn: &mut dyn Conn,
    repo: RepoId,
    tag: &str,
) -> Result<Option<Current>> {
    let locked: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "UPDATE tags SET manifest_id = manifest_id WHERE repository_id = $1 AND name = $2
         RETURNING CAST(1 AS BIGINT)",
    )
    .bind(repo.0)
    .bind(tag))?;
    match locked {
        Some(_) => current(conn, repo, tag).await,
        None => Ok(None),
    }
}

/// Locks every tag of the repository until the transaction ends, in name order (as
/// `current_locked` callers lock several): a decision over all of them (a bulk delete) then
/// deletes what it decided on. SQLite's writer holds the whole database already.
pub async fn lock_all(conn: &mut dyn Conn, repo: RepoId) -> Result<()> {
    values!(conn, fetch_all, |cx| sqlx::query_scalar::<_, i64>(cx.pick(
        "SELECT CAST(0 AS BIGINT) WHERE $1 IS NULL",
        "SELECT CAST(1 AS BIGINT) FROM tags WHERE repository_id = $1 ORDER BY name FOR UPDATE"
    ))
    .bind(repo.0))?;
    Ok(())
}

/// One row of tag history.
struct Change<'a> {
    tag: &'a str,
    action: &'a str,
    /// The manifest the tag left, with what the tag carried there.
    from: Option<(&'a Digest, TagState)>,
    to: Option<&'a Digest>,
}

async fn history(conn: &mut dyn Conn, repo: RepoId, change: Change<'_>, by: &By<'_>) -> Result<()> {
    let from_state = change.from.map(|(_, s)| s);
    execute!(conn, |cx| sqlx::query(
        "INSERT INTO tag_history (repository_id, tag, action, from_digest, to_digest, actor,
                                  actor_id, at, from_pushed_at, from_last_pulled_at,
                                  from_pull_count, batch)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(repo.0)
    .bind(change.tag)
    .bind(change.action)
    .bind(change.from.map(|(d, _)| d.to_string()))
    .bind(change.to.map(|d| d.to_string()))
    .bind(&by.principal.name)
    .bind(by.principal.audit_id())
    .bind(by.now)
    .bind(from_state.map(|s| s.pushed_at))
    .bind(from_state.and_then(|s| s.last_pulled_at))
    .bind(from_state.map(|s| s.pull_count))
    .bind(by.batch))?;
    // The manifest the tag left may have lost its last tag: the collector looks at it again
    // (it holds it for the restore window, whichever way the tag left).
    if let Some((from, _)) = change.from {
        let reason = format!("tag {}", change.action);
        crate::queue::queue_manifest_digest(conn, repo, from, by.now, &reason).await?;
    }
    Ok(())
}

/// Points a tag at a manifest (a push); returns what the tag pointed at before, if anything.
/// An overwritten tag's previous manifest is recorded as left (`moved`), so it stays
/// restorable for the restore window.
pub async fn set(
    conn: &mut dyn Conn,
    repo: RepoId,
    tag: &Tag,
    manifest: &ManifestHead,
    by: &By<'_>,
) -> Result<Option<Digest>> {
    let previous = loop {
        let created: Option<i64> = values!(conn, fetch_optional, |cx| {
            sqlx::query_scalar(
            "INSERT INTO tags (repository_id, name, manifest_id, pushed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (repository_id, name) DO NOTHING RETURNING CAST(1 AS BIGINT)",
        )
        .bind(repo.0)
        .bind(tag.as_str())
        .bind(manifest.id.0)
        .bind(by.now)
        })?;
        if created.is_some() {
            break None;
        }
        // The tag exists: lock it before reading what it pointed at, so two pushes of one tag
        // each record the image the other left, in order.
        if let Some(previous) = current_locked(conn, repo, tag.as_str()).await? {
            break Some(previous);
        }
        // Deleted between the two statements (only possible with many writers): again.
    };
    if previous.is_some() {
        // Pull figures belong to the tag on its image: moved to another image, the tag starts
        // unpulled (its history keeps the old figures, for a restore).
        execute!(conn, |cx| sqlx::query(
            "UPDATE tags SET
                 pushed_at = $3,
                 last_pulled_at = CASE WHEN manifest_id = $4 THEN last_pulled_at END,
                 pull_count = CASE WHEN manifest_id = $4 THEN pull_count ELSE 0 END,
                 manifest_id = $4
             WHERE repository_id = $1 AND name = $2",
        )
        .bind(repo.0)
        .bind(tag.as_str())
        .bind(by.now)
        .bind(manifest.id.0))?;
    }
    if previous
        .as_ref()
        .is_some_and(|p| p.manifest.digest == manifest.digest)
    {
        // The same manifest pushed again: a new push time, nothing left.
        return Ok(previous.map(|p| p.manifest.digest));
    }
    let change = Change {
        tag: tag.as_str(),
        action: if previous.is_some() {
            "moved"
        } else {
            "pushed"
        },
        from: previous.as_ref().map(|p| (&p.manifest.digest, p.state)),
        to: Some(&manifest.digest),
    };
    history(conn, repo, change, by).await?;
    Ok(previous.map(|p| p.manifest.digest))
}

/// Deletes one tag; returns the digest it pointed at, or `None` if there was no such tag.
pub async fn delete(
    conn: &mut dyn Conn,
    repo: RepoId,
    tag: &Tag,
    by: &By<'_>,
) -> Result<Option<Digest>> {
    let Some(previous) = current_locked(conn, repo, tag.as_str()).await? else {
        return Ok(None);
    };
    execute!(conn, |cx| sqlx::query(
        "DELETE FROM tags WHERE repository_id = $1 AND name = $2"
    )
    .bind(repo.0)
    .bind(tag.as_str()))?;
    let change = Change {
        tag: tag.as_str(),
        action: "deleted",
        from: Some((&previous.manifest.digest, previous.state)),
        to: None,
    };
    history(conn, repo, change, by).await?;
    Ok(Some(previous.manifest.digest))
}

/// Every tag of a repository pointing at a manifest, with what each carries.
async fn tags_of_manifest(
    conn: &mut dyn Conn,
    manifest: ManifestId,
) -> Result<Vec<(String, TagState)>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT name, pushed_at, last_pulled_at, pull_count FROM tags WHERE manifest_id = $1
         ORDER BY name",
    )
    .bind(manifest.0))?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("name")?,
                TagState {
                    pushed_at: r.try_get("pushed_at")?,
                    last_pulled_at: r.try_get("last_pulled_at")?,
                    pull_count: r.try_get("pull_count")?,
                },
            ))
        })
        .collect()
}

/// Deletes every tag pointing at a manifest; returns their names.
pub async fn delete_for_manifest(
    conn: &mut dyn Conn,
    repo: RepoId,
    manifest: &ManifestHead,
    by: &By<'_>,
) -> Result<Vec<String>> {
    let tags = tags_of_manifest(conn, manifest.id).await?;
    execute!(conn, |cx| sqlx::query(
        "DELETE FROM tags WHERE manifest_id = $1"
    )
    .bind(manifest.id.0))?;
    for (name, state) in &tags {
        let change = Change {
            tag: name,
            action: "deleted",
            from: Some((&manifest.digest, *state)),
            to: None,
        };
        history(conn, repo, change, by).await?;
    }
    Ok(tags.into_iter().map(|(name, _)| name).collect())
}

/// Tag names of the live repository `repo` after `last` in byte order, at most `limit`
/// (negative: all), in one query answering one row: a row per tag would cost a hand-over from
/// the database thread each. `None` when the repository is not there.
pub async fn list_in_named(
    conn: &mut dyn Conn,
    repo: &RepoName,
    last: Option<&str>,
    limit: i64,
) -> Result<Option<Vec<String>>> {
    // Tag names never contain a space (the spec's grammar), so a space separates them.
    let row: Option<(Option<String>,)> = values!(conn, fetch_optional, |cx| {
        sqlx::query_as(cx.sql(dual!(
            "SELECT (SELECT " group_concat "(name, ' ' ORDER BY name) FROM
                   (SELECT name FROM tags WHERE repository_id = r.id AND name > $1
                    ORDER BY name LIMIT $2) page)
         FROM repositories r WHERE r.name = $3 AND r.deleted_at IS NULL"
        )))
        .bind(last.unwrap_or(""))
        .bind(crate::limit(limit))
        .bind(repo.as_str())
    })?;
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

/// One tag with its metadata.
pub async fn detailed(conn: &mut dyn Conn, repo: RepoId, tag: &Tag) -> Result<Option<TagInfo>> {
    let row = rows!(conn, fetch_optional, |cx| {
        sqlx::query(
        "SELECT t.name, m.digest, m.media_type, m.id, t.pushed_at, t.last_pulled_at, t.pull_count
         FROM tags t JOIN manifests m ON m.id = t.manifest_id
         WHERE t.repository_id = $1 AND t.name = $2",
    )
    .bind(repo.0)
    .bind(tag.as_str())
    })?;
    row.as_ref().map(tag_info_from_row).transpose()
}

fn tag_info_from_row(r: &crate::db::Row) -> Result<TagInfo> {
    Ok(TagInfo {
        name: r.try_get("name")?,
        digest: crate::digest_col(r.try_get::<&str>("digest")?)?,
        media_type: r.try_get("media_type")?,
        manifest_id: ManifestId(r.try_get("id")?),
        pushed_at: r.try_get("pushed_at")?,
        last_pulled_at: r.try_get("last_pulled_at")?,
        pull_count: r.try_get("pull_count")?,
    })
}

/// Every tag of a repository, in byte order of name.
pub async fn list_detailed(conn: &mut dyn Conn, repo: RepoId) -> Result<Vec<TagInfo>> {
    let rows = rows!(conn, fetch_all, |cx| {
        sqlx::query(
        "SELECT t.name, m.digest, m.media_type, m.id, t.pushed_at, t.last_pulled_at, t.pull_count
         FROM tags t JOIN manifests m ON m.id = t.manifest_id
         WHERE t.repository_id = $1 ORDER BY t.name",
    )
    .bind(repo.0)
    })?;
    rows.iter().map(tag_info_from_row).collect()
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
    conn: &mut dyn Conn,
    repo: RepoId,
    tag: Option<&Tag>,
    limit: i64,
) -> Result<Vec<HistoryEntry>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT tag, action, from_digest, to_digest, actor, at FROM tag_history
         WHERE repository_id = $1 AND ($2 IS NULL OR tag = $3) ORDER BY id DESC LIMIT $4",
    )
    .bind(repo.0)
    .bind(tag.map(Tag::as_str))
    .bind(tag.map(Tag::as_str))
    .bind(crate::limit(limit)))?;
    rows.iter()
        .map(|r| {
            let digest = |col: &str| {
                r.try_get::<Option<&str>>(col)?
                    .map(crate::digest_col)
                    .transpose()
            };
            Ok(HistoryEntry {
                tag: r.try_get("tag")?,
                action: r.try_get("action")?,
                from_digest: digest("from_digest")?,
                to_digest: digest("to_digest")?,
                actor: r.try_get("actor")?,
                at: r.try_get("at")?,
            })
        })
        .collect()
}

/// The digest a tag last left, however it left it (deleted, overwritten by a push, or by a
/// forced restore): what restoring the tag without a digest brings back.
pub async fn last_left_digest(
    conn: &mut dyn Conn,
    repo: RepoId,
    tag: &Tag,
) -> Result<Option<Digest>> {
    let d: Option<String> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT from_digest FROM tag_history
         WHERE repository_id = $1 AND tag = $2 AND from_digest IS NOT NULL
         ORDER BY id DESC LIMIT 1",
    )
    .bind(repo.0)
    .bind(tag.as_str()))?;
    d.as_deref().map(crate::digest_col).transpose()
}

/// Whether the tag ever pointed at `digest` (pushed, moved or restored there, or left it).
pub async fn ever_pointed_at(
    conn: &mut dyn Conn,
    repo: RepoId,
    tag: &Tag,
    digest: &Digest,
) -> Result<bool> {
    let found: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT CAST(1 AS BIGINT) FROM tag_history WHERE repository_id = $1 AND tag = $2
           AND (to_digest = $3 OR from_digest = $3) LIMIT 1",
    )
    .bind(repo.0)
    .bind(tag.as_str())
    .bind(digest.to_string()))?;
    Ok(found.is_some())
}

/// What the tag carried when it last pointed at `digest`: recorded when it left (newer
/// history), or else the time it was pushed there (history written before that was recorded).
pub async fn state_when_left(
    conn: &mut dyn Conn,
    repo: RepoId,
    tag: &Tag,
    digest: &Digest,
) -> Result<Option<TagState>> {
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(
        "SELECT from_pushed_at, from_last_pulled_at, from_pull_count FROM tag_history
         WHERE repository_id = $1 AND tag = $2 AND from_digest = $3
         ORDER BY id DESC LIMIT 1",
    )
    .bind(repo.0)
    .bind(tag.as_str())
    .bind(digest.to_string()))?;
    if let Some(r) = row
        && let Some(pushed_at) = r.try_get::<Option<Millis>>("from_pushed_at")?
    {
        return Ok(Some(TagState {
            pushed_at,
            last_pulled_at: r.try_get("from_last_pulled_at")?,
            pull_count: r.try_get::<Option<i64>>("from_pull_count")?.unwrap_or(0),
        }));
    }
    let pushed: Option<Millis> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "SELECT at FROM tag_history WHERE repository_id = $1 AND tag = $2 AND to_digest = $3
         ORDER BY id DESC LIMIT 1",
    )
    .bind(repo.0)
    .bind(tag.as_str())
    .bind(digest.to_string()))?;
    Ok(pushed.map(|pushed_at| TagState {
        pushed_at,
        ..TagState::default()
    }))
}

/// Points a tag at a manifest again as a restore, recorded as such, with the push time and
/// pull figures it had there (`state`); returns what the tag pointed at before (when a reused
/// name is overwritten by force, which leaves that manifest restorable in turn).
pub async fn restore(
    conn: &mut dyn Conn,
    repo: RepoId,
    tag: &Tag,
    manifest: &ManifestHead,
    state: TagState,
    by: &By<'_>,
) -> Result<Option<Digest>> {
    let previous = current_locked(conn, repo, tag.as_str()).await?;
    execute!(conn, |cx| sqlx::query(
        "INSERT INTO tags (repository_id, name, manifest_id, pushed_at, last_pulled_at, pull_count)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (repository_id, name) DO UPDATE SET manifest_id = excluded.manifest_id,
             pushed_at = excluded.pushed_at, last_pulled_at = excluded.last_pulled_at,
             pull_count = excluded.pull_count",
    )
    .bind(repo.0)
    .bind(tag.as_str())
    .bind(manifest.id.0)
    .bind(state.pushed_at)
    .bind(state.last_pulled_at)
    .bind(state.pull_count))?;
    let left = previous
        .as_ref()
        .filter(|p| p.manifest.digest != manifest.digest);
    let change = Change {
        tag: tag.as_str(),
        action: "restored",
        from: left.map(|p| (&p.manifest.digest, p.state)),
        to: Some(&manifest.digest),
    };
    history(conn, repo, change, by).await?;
    Ok(previous.map(|p| p.manifest.digest))
}

/// Deletes every tag of a repository (repository deletion); returns (name, digest) pairs.
pub async fn delete_all(
    conn: &mut dyn Conn,
    repo: RepoId,
    by: &By<'_>,
) -> Result<Vec<(String, Digest)>> {
    let tags = list_detailed(conn, repo).await?;
    execute!(conn, |cx| sqlx::query(
        "DELETE FROM tags WHERE repository_id = $1"
    )
    .bind(repo.0))?;
    for t in &tags {
        let state = TagState {
            pushed_at: t.pushed_at,
            last_pulled_at: t.last_pulled_at,
            pull_count: t.pull_count,
        };
        let change = Change {
            tag: &t.name,
            action: "deleted",
            from: Some((&t.digest, state)),
            to: None,
        };
        history(conn, repo, change, by).await?;
    }
    Ok(tags.into_iter().map(|t| (t.name, t.digest)).collect())
}

/// A tag that left a manifest which is still there to go back to.
#[derive(Clone, Debug)]
pub struct Restorable {
    /// The history entry recording the departure; newest entries have the largest ids.
    pub id: i64,
    pub repository: String,
    /// The repository itself was deleted (and comes back with the tag).
    pub repository_deleted: bool,
    pub tag: String,
    /// How the tag left: `deleted`, `moved` (overwritten by a push) or `restored` (overwritten
    /// by a forced restore).
    pub how: String,
    pub digest: Digest,
    pub left_at: Millis,
    pub actor: String,
    pub batch: Option<i64>,
    /// What the tag points at now, when its name was reused: restoring needs force.
    pub current: Option<Digest>,
}

/// Tags that left a manifest after `cutoff` and can go back to it (the manifest is still in
/// the catalogue and the tag does not point at it now), newest first: the restore bin, of one
/// repository or of the registry. `before` is the id of the last entry of the previous page.
/// `visible`, when given, keeps only the entries of repositories it names.
pub async fn restorable(
    conn: &mut dyn Conn,
    repo: Option<RepoId>,
    cutoff: Millis,
    before: Option<i64>,
    limit: i64,
    visible: Option<&[String]>,
) -> Result<Vec<Restorable>> {
    let names = visible.map(crate::json).transpose()?;
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(cx.sql(dual!(
        "SELECT h.id, r.name AS repository, r.deleted_at IS NOT NULL AS repository_deleted,
                h.tag, h.action, h.from_digest, h.at, h.actor, h.batch, cur.digest AS current
         FROM tag_history h
         JOIN repositories r ON r.id = h.repository_id
         LEFT JOIN tags t ON t.repository_id = h.repository_id AND t.name = h.tag
         LEFT JOIN manifests cur ON cur.id = t.manifest_id
         WHERE h.from_digest IS NOT NULL AND h.at > $1
           AND ($2 IS NULL OR h.repository_id = $2)
           AND ($3 IS NULL OR h.id < $3)
           AND (cur.digest IS NULL OR cur.digest <> h.from_digest)
           AND NOT EXISTS (SELECT 1 FROM tag_history n
                           WHERE n.repository_id = h.repository_id AND n.tag = h.tag
                             AND n.from_digest = h.from_digest AND n.id > h.id)
           AND EXISTS (SELECT 1 FROM manifests m
                       WHERE m.repository_id = h.repository_id AND m.digest = h.from_digest)
           AND ($5 IS NULL OR r.name IN " texts(5) ")
         ORDER BY h.id DESC LIMIT $4"
    )))
    .bind(cutoff)
    .bind(repo.map(|r| r.0))
    .bind(before)
    .bind(crate::limit(limit))
    .bind(names))?;
    rows.iter()
        .map(|r| {
            Ok(Restorable {
                id: r.try_get("id")?,
                repository: r.try_get("repository")?,
                repository_deleted: r.try_get("repository_deleted")?,
                tag: r.try_get("tag")?,
                how: r.try_get("action")?,
                digest: crate::digest_col(r.try_get::<&str>("from_digest")?)?,
                left_at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                batch: r.try_get("batch")?,
                current: r
                    .try_get::<Option<&str>>("current")?
                    .map(crate::digest_col)
                    .transpose()?,
            })
        })
        .collect()
}

/// The tags a batch removed, with the digest each left, in name order.
pub async fn removed_in_batch(conn: &mut dyn Conn, batch: i64) -> Result<Vec<(String, Digest)>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT tag, from_digest FROM tag_history
         WHERE batch = $1 AND action = 'deleted' AND from_digest IS NOT NULL ORDER BY tag, id",
    )
    .bind(batch))?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("tag")?,
                crate::digest_col(r.try_get::<&str>("from_digest")?)?,
            ))
        })
        .collect()
}

/// Adds a batch of pulls to tag counters and last-pulled times.
pub async fn record_pulls(
    conn: &mut dyn Conn,
    repo: RepoId,
    tag: &str,
    count: i64,
    last: Millis,
) -> Result<()> {
    execute!(conn, |cx| sqlx::query(cx.sql(dual!(
        "UPDATE tags SET pull_count = pull_count + $1,
                         last_pulled_at = " greatest "(coalesce(last_pulled_at, 0), $2)
         WHERE repository_id = $3 AND name = $4"
    )))
    .bind(count)
    .bind(last)
    .bind(repo.0)
    .bind(tag))?;
    Ok(())
}
