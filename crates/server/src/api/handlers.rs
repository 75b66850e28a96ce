//! Handlers of the management API: parse, call one registry function, shape the JSON.

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use shipshape_gc::selection::FilterSpec;
use shipshape_meta::events::EventFilter;
use shipshape_oci::{RepoName, Tag};

use super::extract::{ApiPath, ApiQuery};
use super::model::{self, time};
use crate::error::ApiError;
use crate::http::AppState;
use crate::registry::{Overwrite, TagQuery};
use crate::registry::{Permission, Principal};

type ApiResult = Result<Response, ApiError>;

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
}

/// Reads a small JSON body (an empty body is the type's default, when it has one).
async fn json_body<T: serde::de::DeserializeOwned>(
    body: Body,
    empty: Option<T>,
) -> Result<T, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| bad_request(e.to_string()))?;
        if buf.len() + chunk.len() > 1024 * 1024 {
            return Err(bad_request("request body over 1 MiB"));
        }
        buf.extend_from_slice(&chunk);
    }
    if buf.iter().all(u8::is_ascii_whitespace)
        && let Some(default) = empty
    {
        return Ok(default);
    }
    serde_json::from_slice(&buf).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

/// The query string of a request, parsed; unknown parameters are refused.
fn query<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(req.uri())
        .map(|q| q.0)
        .map_err(|e| bad_request(e.body_text()))
}

fn tag_name(t: &str) -> Result<Tag, ApiError> {
    t.parse::<Tag>()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", e.to_string()))
}

/// List repositories with their counts and storage figures.
#[utoipa::path(get, path = "/api/v1/repositories",
    params(("n" = Option<u64>, Query, description = "page size"),
           ("last" = Option<String>, Query, description = "list names after this one")),
    responses((status = 200, body = model::RepositoryList),
              (status = 400, description = "invalid query", body = model::ErrorBody)))]
pub async fn list_repositories(
    State(app): State<AppState>,
    axum::extract::Extension(caller): axum::extract::Extension<shipshape_auth::Caller>,
    ApiQuery(page): ApiQuery<model::RepositoryPage>,
) -> ApiResult {
    let repos = app
        .registry
        .repositories(page.last.as_deref(), page.n)
        .await?;
    // Only what the caller may read (a page may then hold fewer than asked).
    let by = &caller.principal;
    Ok(Json(model::RepositoryList {
        repositories: repos
            .into_iter()
            .filter(|r| by.may(Permission::Pull, Some(&r.summary.name)))
            .map(repository_info)
            .collect(),
    })
    .into_response())
}

pub(crate) fn repository_info(r: crate::registry::RepositoryDetails) -> model::RepositoryInfo {
    let s = r.summary;
    model::RepositoryInfo {
        name: s.name,
        created_at: time(s.created_at),
        tags: s.tags,
        manifests: s.manifests,
        untagged_manifests: s.untagged,
        last_pushed_at: s.last_pushed_at.map(time),
        last_pulled_at: s.last_pulled_at.map(time),
        usage: r.usage.into(),
    }
}

/// One repository with its counts and storage figures.
#[utoipa::path(get, path = "/api/v1/repositories/{name}",
    params(("name" = String, Path, description = "repository name, slashes included", example = "library/ubuntu")),
    responses((status = 200, body = model::RepositoryInfo), (status = 404, body = model::ErrorBody),
              (status = 400, description = "invalid repository name", body = model::ErrorBody),
              (status = 403, description = "the caller may not read the repository", body = model::ErrorBody)))]
pub async fn get_repository(app: &AppState, repo: RepoName) -> ApiResult {
    let r = app.registry.repository(&repo).await?;
    Ok(Json(repository_info(r)).into_response())
}

/// Delete a repository: its tags, manifests (restorable for the restore window) and blob links.
#[utoipa::path(delete, path = "/api/v1/repositories/{name}",
    params(("name" = String, Path, description = "repository name", example = "library/ubuntu"),
           ("confirm" = String, Query, description = "must repeat the repository name"),
           ("override_protection" = Option<bool>, Query, description = "also delete protected tags")),
    responses((status = 200, body = model::RepositoryDeletion),
              (status = 400, description = "invalid repository name or query, or confirmation missing", body = model::ErrorBody),
              (status = 403, description = "the repository has protected tags", body = model::ErrorBody),
              (status = 404, body = model::ErrorBody)))]
pub async fn delete_repository(
    app: &AppState,
    repo: RepoName,
    actor: &Principal,
    req: Request,
) -> ApiResult {
    let q: model::RepositoryDeleteQuery = query(&req)?;
    let done = app
        .registry
        .delete_repository(&repo, q.confirm.as_deref(), q.override_protection, actor)
        .await?;
    Ok(Json(model::RepositoryDeletion {
        repository: done.repository,
        tags: done.tags.into_iter().map(deleted_tag).collect(),
        manifests: done.manifests,
        freed: done.freed.into(),
        batch: done.batch,
    })
    .into_response())
}

fn deleted_tag(t: crate::registry::DeletedTag) -> model::DeletedTag {
    model::DeletedTag {
        tag: t.tag,
        digest: t.digest.to_string(),
    }
}

pub(crate) fn restored_tag(r: crate::registry::RestoredTag) -> model::RestoredTag {
    model::RestoredTag {
        tag: r.tag,
        digest: r.digest.to_string(),
        replaced: r.replaced.map(|d| d.to_string()),
    }
}

pub(crate) fn batch_restore(r: crate::registry::BatchRestore) -> model::BatchRestore {
    model::BatchRestore {
        repository: r.repository,
        batch: r.batch,
        tags: r.tags.into_iter().map(restored_tag).collect(),
        manifests: r.manifests,
    }
}

/// Restore a deleted repository: every tag its latest deletion removed, with its untagged
/// manifests and referrers. All or none: a tag name reused since needs `force`.
#[utoipa::path(post, path = "/api/v1/repositories/{name}/-/restore",
    params(("name" = String, Path, example = "library/ubuntu")),
    request_body(content = model::BatchRestoreRequest, description = "optional"),
    responses((status = 200, body = model::BatchRestore),
              (status = 404, description = "never deleted", body = model::ErrorBody),
              (status = 409, description = "tag names reused; use force", body = model::ErrorBody),
              (status = 410, description = "content already purged", body = model::ErrorBody),
              (status = 400, description = "invalid repository name or body", body = model::ErrorBody),
              (status = 403, description = "a reused name is protected", body = model::ErrorBody)))]
pub async fn restore_repository(
    app: &AppState,
    repo: RepoName,
    actor: &Principal,
    req: Request,
) -> ApiResult {
    let body: model::BatchRestoreRequest =
        json_body(req.into_body(), Some(Default::default())).await?;
    let r = app
        .registry
        .restore_repository(
            &repo,
            Overwrite {
                force: body.force,
                override_protection: body.override_protection,
            },
            actor,
        )
        .await?;
    Ok(Json(batch_restore(r)).into_response())
}

/// Restore every tag an operation (a batch) removed: a repository deletion, a deletion of
/// several tags, a bulk delete, a policy run's repository.
#[utoipa::path(post, path = "/api/v1/batches/{id}/restore",
    params(("id" = i64, Path, description = "the batch a deletion answered with")),
    request_body(content = model::BatchRestoreRequest, description = "optional"),
    responses((status = 200, body = model::BatchRestore),
              (status = 404, body = model::ErrorBody),
              (status = 409, description = "tag names reused; use force", body = model::ErrorBody),
              (status = 400, description = "invalid id or body", body = model::ErrorBody),
              (status = 403, description = "a reused name is protected", body = model::ErrorBody),
              (status = 410, description = "content already purged", body = model::ErrorBody)))]
pub async fn restore_batch(
    State(app): State<AppState>,
    axum::extract::Extension(caller): axum::extract::Extension<shipshape_auth::Caller>,
    ApiPath(id): ApiPath<i64>,
    body: axum::body::Bytes,
) -> ApiResult {
    let body: model::BatchRestoreRequest = if body.iter().all(u8::is_ascii_whitespace) {
        Default::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("invalid JSON body: {e}")))?
    };
    let r = app
        .registry
        .restore_batch(
            id,
            Overwrite {
                force: body.force,
                override_protection: body.override_protection,
            },
            &caller.principal,
        )
        .await?;
    Ok(Json(batch_restore(r)).into_response())
}

pub(crate) fn restorable_tag(e: crate::registry::Restorable) -> model::RestorableTag {
    model::RestorableTag {
        id: e.id,
        repository: e.repository,
        repository_deleted: e.repository_deleted,
        tag: e.tag,
        how: e.how.to_string(),
        digest: e.digest.to_string(),
        left_at: time(e.left_at),
        restorable_until: time(e.restorable_until),
        actor: e.actor,
        batch: e.batch,
        conflict: e.conflict.map(|d| d.to_string()),
    }
}

async fn restorable_page(
    app: &AppState,
    repo: Option<&RepoName>,
    before: Option<i64>,
    limit: Option<i64>,
    by: &Principal,
) -> ApiResult {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad_request("limit must be between 1 and 1000"));
    }
    let entries = app.registry.restorable(repo, before, limit + 1, by).await?;
    let more = entries.len() as i64 > limit;
    let tags: Vec<model::RestorableTag> = entries
        .into_iter()
        .take(limit as usize)
        .map(restorable_tag)
        .collect();
    let next = if more {
        tags.last().map(|t| t.id)
    } else {
        None
    };
    Ok(Json(model::RestorableList { tags, next }).into_response())
}

/// The restore bin: every tag that can go back to a manifest it left (deleted, overwritten by a
/// push, replaced by a forced restore), newest first, with its deadline and any conflict. Only
/// repositories the caller may read are listed; asking for one it may not read is refused.
#[utoipa::path(get, path = "/api/v1/restorable",
    params(("repository" = Option<String>, Query, description = "only this repository"),
           ("before" = Option<i64>, Query, description = "cursor: the `next` of the previous page"),
           ("limit" = Option<i64>, Query, description = "page size, 1 to 1000, default 100")),
    responses((status = 200, body = model::RestorableList), (status = 404, body = model::ErrorBody),
              (status = 403, description = "the caller may not read that repository", body = model::ErrorBody),
              (status = 400, description = "invalid repository name or query", body = model::ErrorBody)))]
pub async fn restorable(
    State(app): State<AppState>,
    axum::extract::Extension(caller): axum::extract::Extension<shipshape_auth::Caller>,
    ApiQuery(q): ApiQuery<model::RestorableQuery>,
) -> ApiResult {
    let repo = q
        .repository
        .as_deref()
        .map(|r| {
            r.parse::<RepoName>()
                .map_err(|e| ApiError::name_invalid(e.to_string()))
        })
        .transpose()?;
    restorable_page(&app, repo.as_ref(), q.before, q.limit, &caller.principal).await
}

/// The restore bin of one repository (also a deleted one).
#[utoipa::path(get, path = "/api/v1/repositories/{name}/-/restorable",
    params(("name" = String, Path, example = "library/ubuntu"),
           ("before" = Option<i64>, Query, description = "cursor: the `next` of the previous page"),
           ("limit" = Option<i64>, Query, description = "page size, 1 to 1000, default 100")),
    responses((status = 200, body = model::RestorableList), (status = 404, body = model::ErrorBody),
              (status = 400, description = "invalid repository name or query", body = model::ErrorBody),
              (status = 403, description = "the caller may not read the repository", body = model::ErrorBody)))]
pub async fn repository_restorable(
    app: &AppState,
    repo: RepoName,
    by: &Principal,
    req: Request,
) -> ApiResult {
    let q: model::RestorablePage = query(&req)?;
    restorable_page(app, Some(&repo), q.before, q.limit, by).await
}

pub(crate) fn tag_info(t: crate::registry::TagDetails) -> model::TagInfo {
    model::TagInfo {
        name: t.name,
        digest: t.digest.to_string(),
        media_type: t.media_type,
        size: t.size,
        pushed_at: time(t.pushed_at),
        last_pulled_at: t.last_pulled_at.map(time),
        pull_count: t.pull_count,
    }
}

/// Tags of a repository with digest, size, push and pull times.
#[utoipa::path(get, path = "/api/v1/repositories/{name}/-/tags",
    params(("name" = String, Path, description = "repository name", example = "library/ubuntu"),
           ("sort" = Option<String>, Query, description = "`name` (default), `pushed`, `pulled` or `size`; newest or largest first"),
           ("reverse" = Option<bool>, Query, description = "reverse the order"),
           ("pattern" = Option<String>, Query, description = "only tags matching this glob, or `regex:…`"),
           ("limit" = Option<u64>, Query, description = "at most this many tags (1 to 10000)"),
           ("offset" = Option<u64>, Query, description = "skip this many (the previous page's `next`)")),
    responses((status = 200, body = model::TagList), (status = 400, body = model::ErrorBody),
              (status = 404, body = model::ErrorBody),
              (status = 403, description = "the caller may not read the repository", body = model::ErrorBody)))]
pub async fn list_tags(app: &AppState, repo: RepoName, req: Request) -> ApiResult {
    let q: model::TagListQuery = query(&req)?;
    let tag_query = TagQuery {
        sort: q
            .sort
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(bad_request)?
            .unwrap_or_default(),
        reverse: q.reverse,
        pattern: q.pattern,
    };
    if q.limit.is_some_and(|l| !(1..=10_000).contains(&l)) {
        return Err(bad_request("limit: give a number from 1 to 10000"));
    }
    let tags = app.registry.tag_details(&repo, &tag_query).await?;
    let total = tags.len() as u64;
    let offset = q.offset.unwrap_or(0);
    let page: Vec<_> = tags
        .into_iter()
        .skip(offset as usize)
        .take(q.limit.map_or(usize::MAX, |l| l as usize))
        .collect();
    let end = offset + page.len() as u64;
    Ok(Json(model::TagList {
        repository: repo.to_string(),
        tags: page.into_iter().map(tag_info).collect(),
        next: (q.limit.is_some() && end < total).then_some(end),
    })
    .into_response())
}

/// One tag.
#[utoipa::path(get, path = "/api/v1/repositories/{name}/-/tags/{tag}",
    params(("name" = String, Path, example = "library/ubuntu"), ("tag" = String, Path)),
    responses((status = 200, body = model::TagInfo), (status = 404, body = model::ErrorBody),
              (status = 400, description = "invalid repository name or tag", body = model::ErrorBody),
              (status = 403, description = "the caller may not read the repository", body = model::ErrorBody)))]
pub async fn get_tag(app: &AppState, repo: RepoName, tag: Tag) -> ApiResult {
    let found = app.registry.tag(&repo, &tag).await?;
    Ok(Json(tag_info(found)).into_response())
}

/// Delete one tag; its manifest stays. The tag can be restored.
#[utoipa::path(delete, path = "/api/v1/repositories/{name}/-/tags/{tag}",
    params(("name" = String, Path, example = "library/ubuntu"), ("tag" = String, Path),
           ("override_protection" = Option<bool>, Query, description = "delete a protected tag")),
    responses((status = 200, body = model::DeletedTag), (status = 404, body = model::ErrorBody),
              (status = 403, description = "the tag is protected", body = model::ErrorBody),
              (status = 400, description = "invalid repository name, tag or query", body = model::ErrorBody)))]
pub async fn delete_tag(
    app: &AppState,
    repo: RepoName,
    tag: Tag,
    actor: &Principal,
    req: Request,
) -> ApiResult {
    let q: model::OverrideQuery = query(&req)?;
    let digest = app
        .registry
        .delete_tag(&repo, &tag, q.override_protection, actor)
        .await?;
    Ok(Json(model::DeletedTag {
        tag: tag.to_string(),
        digest: digest.to_string(),
    })
    .into_response())
}

/// Delete several tags at once: every name is checked first, and either all go or none.
#[utoipa::path(post, path = "/api/v1/repositories/{name}/-/tags/delete",
    params(("name" = String, Path, example = "library/ubuntu")),
    request_body = model::TagsDeleteRequest,
    responses((status = 200, body = model::TagsDeletion),
              (status = 404, description = "a tag is not known; nothing was deleted", body = model::ErrorBody),
              (status = 403, description = "a tag is protected; nothing was deleted", body = model::ErrorBody),
              (status = 400, description = "invalid repository name, tag or body", body = model::ErrorBody)))]
pub async fn delete_tags(
    app: &AppState,
    repo: RepoName,
    actor: &Principal,
    req: Request,
) -> ApiResult {
    let body: model::TagsDeleteRequest = json_body(req.into_body(), None).await?;
    let names = body
        .tags
        .iter()
        .map(|t| tag_name(t))
        .collect::<Result<Vec<Tag>, ApiError>>()?;
    let done = app
        .registry
        .delete_tags(&repo, &names, body.override_protection, body.dry_run, actor)
        .await?;
    Ok(Json(model::TagsDeletion {
        dry_run: done.dry_run,
        deleted: done.deleted.into_iter().map(deleted_tag).collect(),
        freed: done.freed.into(),
        batch: done.batch,
    })
    .into_response())
}

const HISTORY_LIMIT: i64 = 1000;

fn history(repo: &RepoName, entries: Vec<shipshape_meta::tags::HistoryEntry>) -> Response {
    Json(model::History {
        repository: repo.to_string(),
        entries: entries
            .into_iter()
            .map(|e| model::HistoryEntry {
                tag: e.tag,
                action: e.action.to_string(),
                from_digest: e.from_digest.map(|d| d.to_string()),
                to_digest: e.to_digest.map(|d| d.to_string()),
                actor: e.actor,
                at: time(e.at),
            })
            .collect(),
    })
    .into_response()
}

/// Every change of one tag, newest first.
#[utoipa::path(get, path = "/api/v1/repositories/{name}/-/tags/{tag}/history",
    params(("name" = String, Path, example = "library/ubuntu"), ("tag" = String, Path)),
    responses((status = 200, body = model::History), (status = 404, body = model::ErrorBody),
              (status = 400, description = "invalid repository name or tag", body = model::ErrorBody),
              (status = 403, description = "the caller may not read the repository", body = model::ErrorBody)))]
pub async fn tag_history(app: &AppState, repo: RepoName, tag: Tag) -> ApiResult {
    let entries = app
        .registry
        .tag_history(&repo, Some(&tag), HISTORY_LIMIT)
        .await?;
    Ok(history(&repo, entries))
}

/// Every tag change of a repository (also a deleted one), newest first.
#[utoipa::path(get, path = "/api/v1/repositories/{name}/-/history",
    params(("name" = String, Path, example = "library/ubuntu")),
    responses((status = 200, body = model::History), (status = 404, body = model::ErrorBody),
              (status = 400, description = "invalid repository name", body = model::ErrorBody),
              (status = 403, description = "the caller may not read the repository", body = model::ErrorBody)))]
pub async fn repository_history(app: &AppState, repo: RepoName) -> ApiResult {
    let entries = app.registry.tag_history(&repo, None, HISTORY_LIMIT).await?;
    Ok(history(&repo, entries))
}

/// Restore a tag to the manifest it last left (deleted, or overwritten by a push), or to the
/// digest given; also one deleted with its manifest or repository.
#[utoipa::path(post, path = "/api/v1/repositories/{name}/-/tags/{tag}/restore",
    params(("name" = String, Path, example = "library/ubuntu"), ("tag" = String, Path)),
    request_body(content = model::RestoreRequest, description = "optional"),
    responses((status = 200, body = model::RestoredTag),
              (status = 404, description = "never left a manifest", body = model::ErrorBody),
              (status = 409, description = "the name was reused; use force", body = model::ErrorBody),
              (status = 403, description = "the reused name is protected", body = model::ErrorBody),
              (status = 410, description = "the manifest has been purged", body = model::ErrorBody),
              (status = 400, description = "invalid repository name, tag, body or digest; or the tag never pointed at that digest", body = model::ErrorBody)))]
pub async fn restore_tag(
    app: &AppState,
    repo: RepoName,
    tag: Tag,
    actor: &Principal,
    req: Request,
) -> ApiResult {
    let body: model::RestoreRequest =
        json_body(req.into_body(), Some(model::RestoreRequest::default())).await?;
    let r = app
        .registry
        .restore_tag(
            &repo,
            &tag,
            body.digest.as_deref(),
            Overwrite {
                force: body.force,
                override_protection: body.override_protection,
            },
            actor,
        )
        .await?;
    Ok(Json(restored_tag(r)).into_response())
}

/// Delete tags in bulk by combined filters, or preview with `dry_run`.
#[utoipa::path(post, path = "/api/v1/repositories/{name}/-/bulk-delete",
    params(("name" = String, Path, example = "library/ubuntu")),
    request_body = model::BulkDeleteRequest,
    responses((status = 200, body = model::BulkDeleteResult),
              (status = 400, description = "invalid repository name, body or filter", body = model::ErrorBody),
              (status = 403, description = "a selected tag is protected; nothing was deleted", body = model::ErrorBody),
              (status = 404, body = model::ErrorBody)))]
pub async fn bulk_delete(
    app: &AppState,
    repo: RepoName,
    actor: &Principal,
    req: Request,
) -> ApiResult {
    let body: model::BulkDeleteRequest = json_body(req.into_body(), None).await?;
    let spec = FilterSpec {
        delete_regex: body.delete_regex,
        keep_regex: body.keep_regex,
        keep_latest: body.keep_latest,
        older_than: body.older_than,
    };
    let r = app
        .registry
        .bulk_delete_tags(&repo, &spec, body.dry_run, body.override_protection, actor)
        .await?;
    Ok(Json(model::BulkDeleteResult {
        dry_run: r.dry_run,
        deleted: r.deleted,
        decisions: r
            .decisions
            .into_iter()
            .map(|d| model::Decision {
                tag: d.tag,
                delete: d.delete,
                reason: d.reason,
            })
            .collect(),
        freed: r.freed.into(),
        batch: r.batch,
    })
    .into_response())
}

pub(crate) fn manifest_info(m: crate::registry::ManifestDetails) -> model::ManifestInfo {
    let s = m.summary;
    let kind = if !s.tags.is_empty() {
        "tagged"
    } else if s.parents > 0 {
        "child"
    } else if s.subject.is_some() {
        "referrer"
    } else {
        "untagged"
    };
    model::ManifestInfo {
        digest: s.head.digest.to_string(),
        media_type: s.head.media_type,
        artifact_type: s.artifact_type,
        size: s.head.size,
        kind: kind.to_string(),
        tags: s.tags,
        subject: s.subject.map(|d| d.to_string()),
        listed_by: s.parents,
        referrers: s.referrers,
        created_at: time(s.created_at),
        last_pulled_at: s.last_pulled_at.map(time),
        pull_count: s.pull_count,
        why_kept: m.kept.into(),
    }
}

/// The live manifests of a repository: tagged, children of indexes, referrers and untagged.
#[utoipa::path(get, path = "/api/v1/repositories/{name}/-/manifests",
    params(("name" = String, Path, example = "library/ubuntu")),
    responses((status = 200, body = model::ManifestList), (status = 404, body = model::ErrorBody),
              (status = 400, description = "invalid repository name", body = model::ErrorBody),
              (status = 403, description = "the caller may not read the repository", body = model::ErrorBody)))]
pub async fn list_manifests(app: &AppState, repo: RepoName) -> ApiResult {
    let all = app.registry.manifests(&repo).await?;
    Ok(Json(model::ManifestList {
        repository: repo.to_string(),
        manifests: all.into_iter().map(manifest_info).collect(),
    })
    .into_response())
}

/// One manifest, by digest or a unique prefix of one.
#[utoipa::path(get, path = "/api/v1/repositories/{name}/-/manifests/{digest}",
    params(("name" = String, Path, example = "library/ubuntu"), ("digest" = String, Path, description = "a digest or a unique prefix")),
    responses((status = 200, body = model::ManifestInfo), (status = 404, body = model::ErrorBody),
              (status = 400, description = "invalid repository name, or the prefix is ambiguous", body = model::ErrorBody),
              (status = 403, description = "the caller may not read the repository", body = model::ErrorBody)))]
pub async fn get_manifest(app: &AppState, repo: RepoName, digest: &str) -> ApiResult {
    let m = app.registry.manifest(&repo, digest).await?;
    Ok(Json(manifest_info(m)).into_response())
}

/// Delete a manifest (by digest or unique prefix) with every tag pointing at it; restorable
/// for the restore window.
#[utoipa::path(delete, path = "/api/v1/repositories/{name}/-/manifests/{digest}",
    params(("name" = String, Path, example = "library/ubuntu"), ("digest" = String, Path, description = "a digest or a unique prefix"),
           ("override_protection" = Option<bool>, Query, description = "delete protected tags too")),
    responses((status = 200, body = model::ManifestDeletion), (status = 404, body = model::ErrorBody),
              (status = 409, description = "an index lists it", body = model::ErrorBody),
              (status = 403, description = "a tag on it is protected", body = model::ErrorBody),
              (status = 400, description = "invalid repository name, digest or query", body = model::ErrorBody)))]
pub async fn delete_manifest(
    app: &AppState,
    repo: RepoName,
    digest: &str,
    actor: &Principal,
    req: Request,
) -> ApiResult {
    let q: model::OverrideQuery = query(&req)?;
    let done = app
        .registry
        .delete_manifest_by_prefix(&repo, digest, q.override_protection, actor)
        .await?;
    Ok(Json(model::ManifestDeletion {
        digest: done.digest.to_string(),
        tags: done.tags,
        freed: done.freed.into(),
        batch: done.batch,
    })
    .into_response())
}

/// Storage figures of one repository.
#[utoipa::path(get, path = "/api/v1/repositories/{name}/-/usage",
    params(("name" = String, Path, example = "library/ubuntu")),
    responses((status = 200, body = model::RepositoryUsage), (status = 404, body = model::ErrorBody),
              (status = 400, description = "invalid repository name", body = model::ErrorBody),
              (status = 403, description = "the caller may not read the repository", body = model::ErrorBody)))]
pub async fn repository_usage(app: &AppState, repo: RepoName) -> ApiResult {
    let u = app.registry.repository_usage(&repo).await?;
    Ok(Json(model::RepositoryUsage {
        name: repo.to_string(),
        figures: u.into(),
    })
    .into_response())
}

/// Storage figures: in total and per repository, correct under deduplication. The total is
/// the whole registry's, for every caller (it names no repository); the per-repository rows
/// are only those of repositories the caller may read.
#[utoipa::path(get, path = "/api/v1/usage",
    responses((status = 200, body = model::UsageReport)))]
pub async fn usage(
    State(app): State<AppState>,
    axum::extract::Extension(caller): axum::extract::Extension<shipshape_auth::Caller>,
) -> ApiResult {
    let (total, per) = app.registry.usage(&caller.principal).await?;
    Ok(Json(model::UsageReport {
        total: total.into(),
        repositories: per
            .into_iter()
            .map(|(name, u)| model::RepositoryUsage {
                name,
                figures: u.into(),
            })
            .collect(),
    })
    .into_response())
}

/// The longest duration the API takes for a grace period or an expiry: a hundred years, beyond
/// any use and far from overflowing the `i64` milliseconds that times are added to.
const LONGEST_MS: i64 = 36_525 * 24 * 3_600_000;

/// A duration (`90d`, `12h`) in milliseconds, if it is one of at most a hundred years.
pub(crate) fn duration_ms(text: &str) -> Option<i64> {
    let d = humantime::parse_duration(text).ok()?;
    i64::try_from(d.as_millis())
        .ok()
        .filter(|ms| *ms <= LONGEST_MS)
}

/// An RFC 3339 time, a date (midnight UTC), or a duration meaning that long ago (`24h`).
pub(crate) fn instant(field: &str, value: &str, now: i64) -> Result<i64, ApiError> {
    let to_ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    };
    if let Ok(t) = humantime::parse_rfc3339_weak(value) {
        return Ok(to_ms(t));
    }
    let is_date = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if is_date && let Ok(t) = humantime::parse_rfc3339(&format!("{value}T00:00:00Z")) {
        return Ok(to_ms(t));
    }
    if let Ok(d) = humantime::parse_duration(value) {
        // Longer ago than any time there is: every time is after it.
        let ago = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        return Ok(now.saturating_sub(ago));
    }
    Err(bad_request(format!(
        "{field}: {value:?} is neither a time (2026-05-01T12:00:00Z), a date (2026-05-01) nor a \
         duration such as 24h"
    )))
}

pub(crate) fn event(e: shipshape_meta::events::Event) -> model::Event {
    model::Event {
        id: e.id,
        at: time(e.at),
        actor: e.actor,
        source: e.source,
        action: e.action.to_string(),
        repository: e.repository,
        target: e.target,
        digest: e.digest,
        reason: e.reason,
    }
}

/// The activity log, newest first, filtered and paginated. A caller sees the entries of the
/// repositories it may read; entries that name no repository (accounts, policies, garbage
/// collection) only an administrator or a caller with the admin role on `**` sees. A page
/// holds `limit` entries the caller may see, and its cursor skips none.
#[utoipa::path(get, path = "/api/v1/events",
    params(("repository" = Option<String>, Query),
           ("action" = Option<String>, Query, description = "exact (`tag.delete`) or family (`tag`)"),
           ("since" = Option<String>, Query, description = "RFC 3339 time, a date, or a duration ago"),
           ("until" = Option<String>, Query, description = "RFC 3339 time, a date, or a duration ago"),
           ("before" = Option<i64>, Query, description = "cursor: the `next` of the previous page"),
           ("limit" = Option<i64>, Query, description = "page size, 1 to 1000, default 100")),
    responses((status = 200, body = model::EventList), (status = 400, body = model::ErrorBody),
              (status = 403, description = "the caller may not read that repository", body = model::ErrorBody),
              (status = 404, description = "no such repository, now or before", body = model::ErrorBody)))]
pub async fn list_events(
    State(app): State<AppState>,
    axum::extract::Extension(caller): axum::extract::Extension<shipshape_auth::Caller>,
    ApiQuery(q): ApiQuery<model::EventQuery>,
) -> ApiResult {
    let now = app.registry.now();
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad_request("limit must be between 1 and 1000"));
    }
    let filter = EventFilter {
        repository: q.repository,
        action: q.action,
        since: q
            .since
            .as_deref()
            .map(|s| instant("since", s, now))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|s| instant("until", s, now))
            .transpose()?,
        before: q.before,
    };
    let events = app
        .registry
        .events(&filter, limit + 1, &caller.principal)
        .await?;
    let more = events.len() as i64 > limit;
    let events: Vec<model::Event> = events.into_iter().take(limit as usize).map(event).collect();
    let next = if more {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(model::EventList { events, next }).into_response())
}
