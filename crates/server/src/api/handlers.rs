//! Handlers of the management API: parse, call one registry function, shape the JSON.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use shipshape_gc::selection::FilterSpec;
use shipshape_meta::events::EventFilter;
use shipshape_oci::{Digest, RepoName, Tag};

use super::model::{self, time};
use crate::error::ApiError;
use crate::http::AppState;
use crate::registry::Actor;

type ApiResult = Result<Response, ApiError>;

fn actor(peer: Option<SocketAddr>) -> Actor {
    Actor::anonymous(peer.map(|p| p.ip().to_string()))
}

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

#[derive(Deserialize)]
pub struct Page {
    n: Option<u64>,
    last: Option<String>,
}

/// List repositories.
#[utoipa::path(get, path = "/api/v1/repositories",
    params(("n" = Option<u64>, Query, description = "page size"),
           ("last" = Option<String>, Query, description = "list names after this one")),
    responses((status = 200, body = model::RepositoryList)))]
pub async fn list_repositories(State(app): State<AppState>, Query(page): Query<Page>) -> ApiResult {
    let repos = app
        .registry
        .repositories(page.last.as_deref(), page.n)
        .await?;
    Ok(Json(model::RepositoryList {
        repositories: repos.into_iter().map(repository_info).collect(),
    })
    .into_response())
}

fn repository_info(r: shipshape_meta::repos::RepoSummary) -> model::RepositoryInfo {
    model::RepositoryInfo {
        name: r.name,
        created_at: time(r.created_at),
        tags: r.tags,
        manifests: r.manifests,
    }
}

/// One repository.
#[utoipa::path(get, path = "/api/v1/repositories/{name}",
    params(("name" = String, Path, description = "repository name, slashes included")),
    responses((status = 200, body = model::RepositoryInfo), (status = 404, body = model::ErrorBody)))]
pub async fn get_repository(app: &AppState, repo: RepoName) -> ApiResult {
    let r = app.registry.repository(&repo).await?;
    Ok(Json(repository_info(r)).into_response())
}

#[derive(Deserialize)]
struct Confirm {
    confirm: Option<String>,
    #[serde(default)]
    override_protection: bool,
}

/// `?override_protection=true`: delete protected tags too (an admin action, logged as such).
#[derive(serde::Deserialize, Default)]
struct Override {
    #[serde(default)]
    override_protection: bool,
}

/// Delete a repository: its tags, manifests (restorable for the restore window) and blob links.
#[utoipa::path(delete, path = "/api/v1/repositories/{name}",
    params(("name" = String, Path, description = "repository name"),
           ("confirm" = String, Query, description = "must repeat the repository name"),
           ("override_protection" = Option<bool>, Query, description = "also delete protected tags")),
    responses((status = 200, body = model::RepositoryDeletion),
              (status = 400, description = "confirmation missing", body = model::ErrorBody),
              (status = 403, description = "the repository has protected tags", body = model::ErrorBody),
              (status = 404, body = model::ErrorBody)))]
pub async fn delete_repository(
    app: &AppState,
    repo: RepoName,
    peer: Option<SocketAddr>,
    req: Request,
) -> ApiResult {
    let q: Query<Confirm> =
        Query::try_from_uri(req.uri()).map_err(|e| bad_request(e.to_string()))?;
    let done = app
        .registry
        .delete_repository(
            &repo,
            q.confirm.as_deref(),
            q.override_protection,
            &actor(peer),
        )
        .await?;
    Ok(Json(model::RepositoryDeletion {
        repository: done.repository,
        tags: done
            .tags
            .into_iter()
            .map(|t| model::DeletedTag {
                tag: t.tag,
                digest: t.digest.to_string(),
            })
            .collect(),
        manifests: done.manifests,
    })
    .into_response())
}

fn tag_info(t: crate::registry::TagDetails) -> model::TagInfo {
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
    params(("name" = String, Path, description = "repository name")),
    responses((status = 200, body = model::TagList), (status = 404, body = model::ErrorBody)))]
pub async fn list_tags(app: &AppState, repo: RepoName) -> ApiResult {
    let tags = app.registry.tag_details(&repo).await?;
    Ok(Json(model::TagList {
        repository: repo.to_string(),
        tags: tags.into_iter().map(tag_info).collect(),
    })
    .into_response())
}

/// One tag.
#[utoipa::path(get, path = "/api/v1/repositories/{name}/-/tags/{tag}",
    params(("name" = String, Path), ("tag" = String, Path)),
    responses((status = 200, body = model::TagInfo), (status = 404, body = model::ErrorBody)))]
pub async fn get_tag(app: &AppState, repo: RepoName, tag: Tag) -> ApiResult {
    let found = app
        .registry
        .tag_details(&repo)
        .await?
        .into_iter()
        .find(|t| t.name == tag.as_str())
        .ok_or_else(|| crate::registry::RegistryError::ManifestUnknown(tag.to_string()))?;
    Ok(Json(tag_info(found)).into_response())
}

/// Delete one tag; its manifest stays. The tag can be restored.
#[utoipa::path(delete, path = "/api/v1/repositories/{name}/-/tags/{tag}",
    params(("name" = String, Path), ("tag" = String, Path),
           ("override_protection" = Option<bool>, Query, description = "delete a protected tag")),
    responses((status = 200, body = model::DeletedTag), (status = 404, body = model::ErrorBody),
              (status = 403, description = "the tag is protected", body = model::ErrorBody)))]
pub async fn delete_tag(
    app: &AppState,
    repo: RepoName,
    tag: Tag,
    peer: Option<SocketAddr>,
    req: Request,
) -> ApiResult {
    let q: Query<Override> =
        Query::try_from_uri(req.uri()).map_err(|e| bad_request(e.to_string()))?;
    let digest = app
        .registry
        .delete_tag(&repo, &tag, q.override_protection, &actor(peer))
        .await?;
    Ok(Json(model::DeletedTag {
        tag: tag.to_string(),
        digest: digest.to_string(),
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
                action: e.action,
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
    params(("name" = String, Path), ("tag" = String, Path)),
    responses((status = 200, body = model::History), (status = 404, body = model::ErrorBody)))]
pub async fn tag_history(app: &AppState, repo: RepoName, tag: Tag) -> ApiResult {
    let entries = app
        .registry
        .tag_history(&repo, Some(&tag), HISTORY_LIMIT)
        .await?;
    Ok(history(&repo, entries))
}

/// Every tag change of a repository (also a deleted one), newest first.
#[utoipa::path(get, path = "/api/v1/repositories/{name}/-/history",
    params(("name" = String, Path)),
    responses((status = 200, body = model::History), (status = 404, body = model::ErrorBody)))]
pub async fn repository_history(app: &AppState, repo: RepoName) -> ApiResult {
    let entries = app.registry.tag_history(&repo, None, HISTORY_LIMIT).await?;
    Ok(history(&repo, entries))
}

/// Restore a deleted tag (also one deleted with its manifest or repository).
#[utoipa::path(post, path = "/api/v1/repositories/{name}/-/tags/{tag}/restore",
    params(("name" = String, Path), ("tag" = String, Path)),
    request_body(content = model::RestoreRequest, description = "optional"),
    responses((status = 200, body = model::RestoredTag),
              (status = 404, description = "never deleted", body = model::ErrorBody),
              (status = 409, description = "the name was reused; use force", body = model::ErrorBody),
              (status = 403, description = "the reused name is protected", body = model::ErrorBody),
              (status = 410, description = "the manifest has been purged", body = model::ErrorBody)))]
pub async fn restore_tag(
    app: &AppState,
    repo: RepoName,
    tag: Tag,
    peer: Option<SocketAddr>,
    req: Request,
) -> ApiResult {
    let body: model::RestoreRequest =
        json_body(req.into_body(), Some(model::RestoreRequest::default())).await?;
    let digest = body
        .digest
        .map(|d| d.parse::<Digest>())
        .transpose()
        .map_err(|e| bad_request(e.to_string()))?;
    let r = app
        .registry
        .restore_tag(
            &repo,
            &tag,
            digest,
            body.force,
            body.override_protection,
            &actor(peer),
        )
        .await?;
    Ok(Json(model::RestoredTag {
        tag: r.tag,
        digest: r.digest.to_string(),
        replaced: r.replaced.map(|d| d.to_string()),
    })
    .into_response())
}

/// Delete tags in bulk by combined filters, or preview with `dry_run`.
#[utoipa::path(post, path = "/api/v1/repositories/{name}/-/bulk-delete",
    params(("name" = String, Path)),
    request_body = model::BulkDeleteRequest,
    responses((status = 200, body = model::BulkDeleteResult),
              (status = 400, description = "invalid filter", body = model::ErrorBody)))]
pub async fn bulk_delete(
    app: &AppState,
    repo: RepoName,
    peer: Option<SocketAddr>,
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
        .bulk_delete_tags(&repo, &spec, body.dry_run, &actor(peer))
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
    })
    .into_response())
}

fn usage_report(
    total: shipshape_meta::usage::Usage,
    per: Vec<(String, shipshape_meta::usage::Usage)>,
) -> Response {
    Json(model::UsageReport {
        total: total.into(),
        repositories: per
            .into_iter()
            .map(|(name, u)| model::RepositoryUsage {
                name,
                figures: u.into(),
            })
            .collect(),
    })
    .into_response()
}

/// Storage figures of one repository (and the registry's total).
#[utoipa::path(get, path = "/api/v1/repositories/{name}/-/usage",
    params(("name" = String, Path)),
    responses((status = 200, body = model::UsageReport), (status = 404, body = model::ErrorBody)))]
pub async fn repository_usage(app: &AppState, repo: RepoName) -> ApiResult {
    let (total, per) = app.registry.usage(Some(&repo)).await?;
    Ok(usage_report(total, per))
}

/// Storage figures: in total and per repository, correct under deduplication.
#[utoipa::path(get, path = "/api/v1/usage",
    responses((status = 200, body = model::UsageReport)))]
pub async fn usage(State(app): State<AppState>) -> ApiResult {
    let (total, per) = app.registry.usage(None).await?;
    Ok(usage_report(total, per))
}

#[derive(Deserialize)]
pub struct EventQuery {
    repository: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

/// An RFC 3339 time, or a duration meaning that long ago (`24h`).
fn instant(field: &str, value: &str, now: i64) -> Result<i64, ApiError> {
    if let Ok(t) = humantime::parse_rfc3339_weak(value) {
        let ms = t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        return Ok(ms);
    }
    if let Ok(d) = humantime::parse_duration(value) {
        return Ok(now - d.as_millis() as i64);
    }
    Err(bad_request(format!(
        "{field}: {value:?} is neither an RFC 3339 time nor a duration such as 24h"
    )))
}

/// The activity log, newest first, filtered and paginated.
#[utoipa::path(get, path = "/api/v1/events",
    params(("repository" = Option<String>, Query),
           ("action" = Option<String>, Query, description = "exact (`tag.delete`) or family (`tag`)"),
           ("since" = Option<String>, Query, description = "RFC 3339 time or a duration ago"),
           ("until" = Option<String>, Query, description = "RFC 3339 time or a duration ago"),
           ("before" = Option<i64>, Query, description = "cursor: the `next` of the previous page"),
           ("limit" = Option<i64>, Query, description = "page size, 1 to 1000, default 100")),
    responses((status = 200, body = model::EventList), (status = 400, body = model::ErrorBody)))]
pub async fn list_events(State(app): State<AppState>, Query(q): Query<EventQuery>) -> ApiResult {
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
    let events = app.registry.events(&filter, limit + 1).await?;
    let more = events.len() as i64 > limit;
    let events: Vec<model::Event> = events
        .into_iter()
        .take(limit as usize)
        .map(|e| model::Event {
            id: e.id,
            at: time(e.at),
            actor: e.actor,
            source: e.source,
            action: e.action,
            repository: e.repository,
            target: e.target,
            digest: e.digest,
            reason: e.reason,
        })
        .collect();
    let next = if more {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(model::EventList { events, next }).into_response())
}
