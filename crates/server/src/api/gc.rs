//! Garbage collection runs under `/api/v1/gc`: start (one at a time), the active run with live
//! figures, cancel, history, and what a run deleted or would delete.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shipshape_auth::Caller;
use shipshape_gc::StartError;
use shipshape_meta::runs::{Run, RunSpec, RunState};

use super::extract::{ApiPath, ApiQuery};
use super::model::gc::{RunFigures, RunInfo, RunItem, RunItems, RunList, RunPage, StartRun};
use super::model::{ErrorBody, time};
use crate::error::ApiError;
use crate::http::AppState;

type ApiResult = Result<Response, ApiError>;

pub(crate) fn info(r: Run) -> RunInfo {
    RunInfo {
        id: r.id,
        state: r.state.to_string(),
        dry_run: r.spec.dry_run,
        include_untagged_manifests: r.spec.include_untagged,
        sweep: r.spec.sweep,
        grace_ms: r.spec.grace_ms,
        started_by: r.started_by,
        started_at: time(r.started_at),
        finished_at: r.finished_at.map(time),
        duration_ms: r.finished_at.map(|f| f - r.started_at),
        figures: RunFigures {
            reviewed: r.figures.reviewed,
            manifests_deleted: r.figures.manifests,
            blobs_deleted: r.figures.blobs,
            bytes_deleted: r.figures.bytes,
            links_deleted: r.figures.links,
            uploads_deleted: r.figures.uploads,
            orphans_deleted: r.figures.orphans,
        },
        errors: r.errors,
        phase: r.phase,
        queued_at_start: r.queued_at_start,
    }
}

/// Start a run. Answers 202 with the run; 409 with the active run's id when one is running.
#[utoipa::path(post, path = "/api/v1/gc/runs", request_body = StartRun,
    responses((status = 202, body = RunInfo), (status = 409, body = ErrorBody),
              (status = 403, description = "the caller may not collect garbage", body = ErrorBody),
              (status = 400, body = ErrorBody)))]
pub async fn start(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> ApiResult {
    let opts: StartRun = if body.iter().all(u8::is_ascii_whitespace) {
        StartRun::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                format!("invalid JSON body: {e}"),
            )
        })?
    };
    let grace_ms = opts
        .grace
        .as_deref()
        .map(|g| {
            super::handlers::duration_ms(g).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    format!(
                        "grace: {g:?} is not a duration of at most 100 years (use e.g. 0s, 10m, \
                         24h)"
                    ),
                )
            })
        })
        .transpose()?;
    let spec = RunSpec {
        dry_run: opts.dry_run,
        include_untagged: opts
            .include_untagged_manifests
            .unwrap_or(app.collector.config().untagged_manifests),
        sweep: opts.sweep.unwrap_or(false),
        grace_ms,
    };
    match app.collector.start_run(spec, &caller.principal).await {
        Ok(run) => Ok((StatusCode::ACCEPTED, Json(info(run))).into_response()),
        Err(StartError::Active(id)) => {
            let mut resp = ApiError::new(
                StatusCode::CONFLICT,
                "GC_RUN_ACTIVE",
                format!("garbage collection run {id} is active; wait for it or cancel it"),
            )
            .into_response();
            resp.headers_mut().insert(
                "Shipshape-Active-Run",
                id.to_string().parse().expect("digits"),
            );
            Ok(resp)
        }
        Err(StartError::Gc(e)) => Err(e.into()),
    }
}

/// Runs, newest first.
#[utoipa::path(get, path = "/api/v1/gc/runs",
    params(("before" = Option<i64>, Query, description = "runs with an id below this"),
           ("limit" = Option<i64>, Query, description = "at most this many (default 20)")),
    responses((status = 200, body = RunList),
              (status = 400, description = "invalid query", body = ErrorBody)))]
pub async fn list(State(app): State<AppState>, ApiQuery(p): ApiQuery<RunPage>) -> ApiResult {
    let runs = app
        .collector
        .runs(p.before, p.limit.unwrap_or(20).clamp(1, 1000))
        .await?;
    Ok(Json(RunList {
        runs: runs.into_iter().map(info).collect(),
    })
    .into_response())
}

fn no_run(what: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "GC_RUN_UNKNOWN", what.to_string())
}

/// The active run with its figures so far.
#[utoipa::path(get, path = "/api/v1/gc/runs/active",
    responses((status = 200, body = RunInfo), (status = 404, body = ErrorBody)))]
pub async fn active(State(app): State<AppState>) -> ApiResult {
    match app.collector.active_run().await? {
        Some(r) => Ok(Json(info(r)).into_response()),
        None => Err(no_run("no garbage collection run is active")),
    }
}

/// One run.
#[utoipa::path(get, path = "/api/v1/gc/runs/{id}",
    params(("id" = i64, Path, description = "run id")),
    responses((status = 200, body = RunInfo), (status = 404, body = ErrorBody),
              (status = 400, description = "invalid id", body = ErrorBody)))]
pub async fn get(State(app): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult {
    match app.collector.run(id).await? {
        Some(r) => Ok(Json(info(r)).into_response()),
        None => Err(no_run(&format!("garbage collection run {id} is not known"))),
    }
}

/// What a run deleted, or (dry run) would delete: the items of repositories the caller may
/// read, and those of no repository (blobs, uploads, orphans) only for an administrator or a
/// caller with the admin role on `**`.
#[utoipa::path(get, path = "/api/v1/gc/runs/{id}/items",
    params(("id" = i64, Path, description = "run id")),
    responses((status = 200, body = RunItems), (status = 404, body = ErrorBody),
              (status = 400, description = "invalid id", body = ErrorBody)))]
pub async fn items(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    let Some(items) = app.collector.run_items(id, &caller.principal).await? else {
        return Err(no_run(&format!("garbage collection run {id} is not known")));
    };
    Ok(Json(RunItems {
        items: items
            .into_iter()
            .map(|i| RunItem {
                kind: i.kind.to_string(),
                repository: i.repository,
                target: i.target,
                size: i.size,
            })
            .collect(),
    })
    .into_response())
}

/// Cancel the active run; what it already deleted stays deleted and is reported.
#[utoipa::path(post, path = "/api/v1/gc/runs/{id}/cancel",
    params(("id" = i64, Path, description = "run id")),
    responses((status = 202, body = RunInfo), (status = 404, body = ErrorBody),
              (status = 403, description = "the caller may not collect garbage", body = ErrorBody),
              (status = 409, body = ErrorBody),
              (status = 400, description = "invalid id", body = ErrorBody)))]
pub async fn cancel(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    match app.collector.cancel(id, &caller.principal).await? {
        None => Err(no_run(&format!("garbage collection run {id} is not known"))),
        Some(r) if r.state != RunState::Running => Err(ApiError::new(
            StatusCode::CONFLICT,
            "GC_RUN_FINISHED",
            format!(
                "garbage collection run {id} has already finished ({})",
                r.state
            ),
        )),
        Some(r) => Ok((StatusCode::ACCEPTED, Json(info(r))).into_response()),
    }
}
