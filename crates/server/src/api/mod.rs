//! The management API under `/api/v1`: repositories, tags with their metadata, tag history,
//! restore, bulk deletion, storage figures and the activity log, described by the OpenAPI
//! document at `/api/v1/openapi.json`.
//!
//! Repository names contain slashes, so sub-resources of a repository sit after a `/-/`
//! separator (no repository name component can be `-`):
//! `/api/v1/repositories/team/app/-/tags/v1`.

mod accounts;
mod extract;
pub(crate) mod gc;
pub(crate) mod handlers;
pub mod model;
pub(crate) mod policies;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use shipshape_auth::Caller;
use shipshape_meta::principal::Permission;
use shipshape_oci::{RepoName, Tag};
use utoipa::OpenApi;

use crate::error::ApiError;
use crate::http::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shipshape management API",
        description = "Repositories, tags, deletion and restore, storage figures, the activity log, \
                       garbage collection and retention policies. \
                       Repository names may contain slashes; sub-resources follow a `/-/` separator. \
                       Once access control is on, every answer holds only the repositories the \
                       caller may read (listings, the activity log, the restore bin, storage \
                       rows, policy previews, run items); entries that name no repository \
                       (accounts, policies, runs) only administrators and callers with the \
                       admin role on `**` see."
    ),
    paths(
        openapi,
        handlers::list_repositories,
        handlers::get_repository,
        handlers::delete_repository,
        handlers::restore_repository,
        handlers::repository_restorable,
        handlers::restorable,
        handlers::restore_batch,
        handlers::list_tags,
        handlers::get_tag,
        handlers::delete_tag,
        handlers::delete_tags,
        handlers::tag_history,
        handlers::repository_history,
        handlers::restore_tag,
        handlers::bulk_delete,
        handlers::list_manifests,
        handlers::get_manifest,
        handlers::delete_manifest,
        handlers::repository_usage,
        handlers::usage,
        handlers::list_events,
        gc::start,
        gc::list,
        gc::active,
        gc::get,
        gc::items,
        gc::cancel,
        policies::list,
        policies::get,
        policies::put,
        policies::remove,
        policies::preview_saved,
        policies::preview_draft,
        policies::start,
        policies::runs_of,
        policies::runs,
        policies::run,
        policies::cancel,
        accounts::whoami,
        accounts::users,
        accounts::add_user,
        accounts::remove_user,
        accounts::set_password,
        accounts::robots,
        accounts::add_robot,
        accounts::revoke_robot,
        accounts::roles,
        accounts::grant,
        accounts::revoke,
        accounts::rotate_keys,
    ),
    modifiers(&LoginRequired)
)]
pub struct ApiDoc;

/// Every operation but this document's answers 401 once access control is on and the request
/// carries no valid login (`logged_in`): said once here rather than on each operation. The
/// answer is the one the account operations document already.
struct LoginRequired;

impl utoipa::Modify for LoginRequired {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let unauthorised = doc
            .paths
            .paths
            .values_mut()
            .flat_map(operations)
            .find_map(|responses| responses.get("401").cloned())
            .expect("the account operations document their 401");
        for (path, item) in doc.paths.paths.iter_mut() {
            if path == "/api/v1/openapi.json" {
                continue;
            }
            for responses in operations(item) {
                responses
                    .entry("401".to_string())
                    .or_insert_with(|| unauthorised.clone());
            }
        }
    }
}

/// The answers of each operation of a path.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> Vec<&mut std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>>>
{
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
    .map(|op| &mut op.responses.responses)
    .collect()
}

/// The routes of the management API.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/repositories", get(handlers::list_repositories))
        .route("/api/v1/repositories/{*rest}", any(repository))
        .route("/api/v1/usage", get(handlers::usage))
        .route("/api/v1/restorable", get(handlers::restorable))
        .route(
            "/api/v1/batches/{id}/restore",
            axum::routing::post(handlers::restore_batch),
        )
        .route("/api/v1/events", get(handlers::list_events))
        .route("/api/v1/gc/runs", get(gc::list).post(gc::start))
        .route("/api/v1/gc/runs/active", get(gc::active))
        .route("/api/v1/gc/runs/{id}", get(gc::get))
        .route("/api/v1/gc/runs/{id}/items", get(gc::items))
        .route(
            "/api/v1/gc/runs/{id}/cancel",
            axum::routing::post(gc::cancel),
        )
        .route("/api/v1/policies", get(policies::list))
        .route(
            "/api/v1/policies/preview",
            axum::routing::post(policies::preview_draft),
        )
        .route(
            "/api/v1/policies/{name}",
            get(policies::get)
                .put(policies::put)
                .delete(policies::remove),
        )
        .route(
            "/api/v1/policies/{name}/preview",
            axum::routing::post(policies::preview_saved),
        )
        .route(
            "/api/v1/policies/{name}/runs",
            get(policies::runs_of).post(policies::start),
        )
        .route("/api/v1/policy-runs", get(policies::runs))
        .route("/api/v1/policy-runs/{id}", get(policies::run))
        .route(
            "/api/v1/policy-runs/{id}/cancel",
            axum::routing::post(policies::cancel),
        )
        .merge(accounts::router())
        .route_layer(axum::middleware::from_fn_with_state(state, logged_in))
        .route("/api/v1/openapi.json", get(openapi))
}

/// Once access control is on, the management API answers only callers who logged in.
async fn logged_in(
    State(app): State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(caller) = req.extensions().get::<Caller>()
        && let Err(e) = crate::http::require_login(&app, caller)
    {
        return e.into_response();
    }
    next.run(req).await
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json",
    responses((status = 200, description = "the OpenAPI document of this API")))]
async fn openapi() -> Response {
    axum::Json(ApiDoc::openapi()).into_response()
}

/// A sub-resource of a repository.
enum Sub {
    Repository,
    Restore,
    Restorable,
    Tags,
    TagsDelete,
    Tag(Tag),
    TagHistory(Tag),
    TagRestore(Tag),
    BulkDelete,
    History,
    Usage,
    Manifests,
    Manifest(String),
}

impl Sub {
    /// The route as logs and metrics name it, without the repository or tag.
    fn template(&self) -> &'static str {
        match self {
            Sub::Repository => "/api/v1/repositories/{name}",
            Sub::Restore => "/api/v1/repositories/{name}/-/restore",
            Sub::Restorable => "/api/v1/repositories/{name}/-/restorable",
            Sub::Tags => "/api/v1/repositories/{name}/-/tags",
            Sub::TagsDelete => "/api/v1/repositories/{name}/-/tags/delete",
            Sub::Tag(_) => "/api/v1/repositories/{name}/-/tags/{tag}",
            Sub::TagHistory(_) => "/api/v1/repositories/{name}/-/tags/{tag}/history",
            Sub::TagRestore(_) => "/api/v1/repositories/{name}/-/tags/{tag}/restore",
            Sub::BulkDelete => "/api/v1/repositories/{name}/-/bulk-delete",
            Sub::History => "/api/v1/repositories/{name}/-/history",
            Sub::Usage => "/api/v1/repositories/{name}/-/usage",
            Sub::Manifests => "/api/v1/repositories/{name}/-/manifests",
            Sub::Manifest(_) => "/api/v1/repositories/{name}/-/manifests/{digest}",
        }
    }
}

/// The route template of a `/api/v1/repositories/…` path.
pub(crate) fn repository_template(path: &str, method: &Method) -> &'static str {
    let rest = path.trim_start_matches("/api/v1/repositories/");
    parse(rest, method).map_or("/api/v1/repositories/{invalid}", |(_, sub)| sub.template())
}

fn parse(rest: &str, method: &Method) -> Result<(RepoName, Sub), ApiError> {
    let (name, sub) = match rest.split_once("/-/") {
        Some((n, s)) => (n, Some(s)),
        None => (rest.trim_end_matches('/'), None),
    };
    let name = name
        .replace("%2F", "/")
        .replace("%2f", "/")
        .parse::<RepoName>()
        .map_err(|e| ApiError::name_invalid(e.to_string()))?;
    let tag = |t: &str| {
        t.parse::<Tag>().map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "TAG_INVALID",
                e.to_string(),
            )
        })
    };
    let segs: Vec<&str> = sub.map(|s| s.split('/').collect()).unwrap_or_default();
    let sub = match segs.as_slice() {
        [] => Sub::Repository,
        ["restore"] => Sub::Restore,
        ["restorable"] => Sub::Restorable,
        ["tags"] => Sub::Tags,
        ["tags", "delete"] if method == Method::POST => Sub::TagsDelete,
        ["manifests"] => Sub::Manifests,
        ["manifests", d] => Sub::Manifest(d.to_string()),
        ["tags", t] => Sub::Tag(tag(t)?),
        ["tags", t, "history"] => Sub::TagHistory(tag(t)?),
        ["tags", t, "restore"] => Sub::TagRestore(tag(t)?),
        ["bulk-delete"] => Sub::BulkDelete,
        ["history"] => Sub::History,
        ["usage"] => Sub::Usage,
        _ => return Err(ApiError::not_found_endpoint()),
    };
    Ok((name, sub))
}

async fn repository(State(app): State<AppState>, req: Request) -> Response {
    let caller = req
        .extensions()
        .get::<Caller>()
        .cloned()
        .expect("the authentication layer runs first");
    let peer = &caller.principal;
    let rest = req
        .uri()
        .path()
        .trim_start_matches("/api/v1/repositories/")
        .to_string();
    let method = req.method().clone();
    let (repo, sub) = match parse(&rest, &method) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    // Reading a repository's details needs read on it; changes are checked by the services.
    if method == Method::GET && !peer.may(Permission::Pull, Some(repo.as_str())) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "DENIED",
            format!("{} may not read {repo}", peer.name),
        )
        .into_response();
    }
    let result = match (sub, method) {
        (Sub::Repository, Method::GET) => handlers::get_repository(&app, repo).await,
        (Sub::Repository, Method::DELETE) => {
            handlers::delete_repository(&app, repo, peer, req).await
        }
        (Sub::Restore, Method::POST) => handlers::restore_repository(&app, repo, peer, req).await,
        (Sub::Restorable, Method::GET) => {
            handlers::repository_restorable(&app, repo, peer, req).await
        }
        (Sub::Tags, Method::GET) => handlers::list_tags(&app, repo, req).await,
        (Sub::TagsDelete, Method::POST) => handlers::delete_tags(&app, repo, peer, req).await,
        (Sub::Manifests, Method::GET) => handlers::list_manifests(&app, repo).await,
        (Sub::Manifest(d), Method::GET) => handlers::get_manifest(&app, repo, &d).await,
        (Sub::Manifest(d), Method::DELETE) => {
            handlers::delete_manifest(&app, repo, &d, peer, req).await
        }
        (Sub::Tag(t), Method::GET) => handlers::get_tag(&app, repo, t).await,
        (Sub::Tag(t), Method::DELETE) => handlers::delete_tag(&app, repo, t, peer, req).await,
        (Sub::TagHistory(t), Method::GET) => handlers::tag_history(&app, repo, t).await,
        (Sub::TagRestore(t), Method::POST) => handlers::restore_tag(&app, repo, t, peer, req).await,
        (Sub::BulkDelete, Method::POST) => handlers::bulk_delete(&app, repo, peer, req).await,
        (Sub::History, Method::GET) => handlers::repository_history(&app, repo).await,
        (Sub::Usage, Method::GET) => handlers::repository_usage(&app, repo).await,
        _ => Err(ApiError::method_not_allowed()),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}
