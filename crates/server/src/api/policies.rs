//! Retention policies under `/api/v1/policies` (apply, read, remove, preview, start a run) and
//! their runs under `/api/v1/policy-runs` (watch, cancel, what each deleted and why).
//!
//! A policy document is accepted as JSON or TOML (the body is read as TOML unless it starts
//! with `{`), so `shipshape policy apply -f` can send the operator's file as it is.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shipshape_auth::Caller;
use shipshape_gc::retention::{PolicySpec, Preview, RetentionError, Trigger};
use shipshape_meta::policies::{PolicyRun, RunItem, StoredPolicy};

use super::extract::{ApiPath, ApiQuery};
use super::model::policies::{
    Decision, PolicyFigures, PolicyInfo, PolicyList, PolicyRunDetail, PolicyRunInfo, PolicyRunItem,
    PolicyRunList, PreviewInfo, RepositoryPreview, RunPage,
};
use super::model::{ErrorBody, time};
use crate::error::ApiError;
use crate::http::AppState;

type ApiResult = Result<Response, ApiError>;

fn error(e: RetentionError) -> ApiError {
    e.into()
}

fn parse_document(body: &[u8]) -> Result<PolicySpec, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "POLICY_INVALID",
            "the policy document is not UTF-8 text",
        )
    })?;
    PolicySpec::parse(text).map_err(|e| error(RetentionError::Invalid(e)))
}

pub(crate) fn policy_info(p: StoredPolicy) -> PolicyInfo {
    // Applied documents were validated when applied; one that no longer reads is said as such.
    let sentence = PolicySpec::from_json(&p.document)
        .and_then(|s| s.validate())
        .map(|policy| shipshape_gc::retention::sentence(&policy))
        .unwrap_or_else(|e| format!("(the stored document does not read: {e})"));
    PolicyInfo {
        name: p.name,
        sentence,
        document: serde_json::from_str(&p.document).unwrap_or(serde_json::Value::Null),
        schedule: p.schedule,
        next_run_at: p.next_run_at.map(time),
        created_at: time(p.created_at),
        updated_at: time(p.updated_at),
        updated_by: p.updated_by,
    }
}

/// Every applied policy.
#[utoipa::path(get, path = "/api/v1/policies", responses((status = 200, body = PolicyList)))]
pub async fn list(State(app): State<AppState>) -> ApiResult {
    let all = app.retention.list().await.map_err(error)?;
    Ok(Json(PolicyList {
        policies: all.into_iter().map(policy_info).collect(),
    })
    .into_response())
}

/// One policy.
#[utoipa::path(get, path = "/api/v1/policies/{name}",
    params(("name" = String, Path, description = "policy name")),
    responses((status = 200, body = PolicyInfo), (status = 404, body = ErrorBody)))]
pub async fn get(State(app): State<AppState>, ApiPath(name): ApiPath<String>) -> ApiResult {
    let (stored, _) = app.retention.get(&name).await.map_err(error)?;
    Ok(Json(policy_info(stored)).into_response())
}

/// Create or replace a policy from a JSON or TOML document; the name in the document must be
/// the name in the path. Answers 201 when created, 200 when replaced.
#[utoipa::path(put, path = "/api/v1/policies/{name}",
    params(("name" = String, Path, description = "policy name")),
    request_body(content = String, description = "the policy document, JSON or TOML"),
    responses((status = 201, body = PolicyInfo), (status = 200, body = PolicyInfo),
              (status = 403, description = "the caller may not manage policies", body = ErrorBody),
              (status = 400, description = "invalid policy", body = ErrorBody)))]
pub async fn put(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let spec = parse_document(&body)?;
    if spec.name != name {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "POLICY_INVALID",
            format!(
                "name: the document names policy {:?} but was sent to {name:?}",
                spec.name
            ),
        ));
    }
    let (stored, created) = app
        .retention
        .apply(&spec, &caller.principal)
        .await
        .map_err(error)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(policy_info(stored))).into_response())
}

/// Remove a policy; its runs stay in the history, and what it deleted stays deleted.
#[utoipa::path(delete, path = "/api/v1/policies/{name}",
    params(("name" = String, Path, description = "policy name")),
    responses((status = 204), (status = 404, body = ErrorBody),
              (status = 403, description = "the caller may not manage policies", body = ErrorBody)))]
pub async fn remove(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult {
    app.retention
        .remove(&name, &caller.principal)
        .await
        .map_err(error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

impl From<shipshape_meta::policies::RunFigures> for PolicyFigures {
    fn from(f: shipshape_meta::policies::RunFigures) -> Self {
        PolicyFigures {
            repositories: f.repositories,
            repositories_affected: f.repositories_affected,
            tags_evaluated: f.tags_evaluated,
            tags_deleted: f.tags_deleted,
            manifests_deleted: f.manifests_deleted,
            bytes_held_for_restore: f.bytes_held,
            bytes_reclaimable: f.bytes_freed,
        }
    }
}

pub(crate) fn preview_info(p: Preview) -> PreviewInfo {
    PreviewInfo {
        policy: p.policy,
        evaluated_at: time(p.evaluated_at),
        repositories: p
            .repositories
            .into_iter()
            .map(|r| RepositoryPreview {
                repository: r.repository,
                bytes_held_for_restore: r.bytes_held,
                bytes_reclaimable: r.bytes_freed,
                decisions: r
                    .decisions
                    .into_iter()
                    .map(|d| Decision {
                        kind: d.kind.to_string(),
                        target: d.target,
                        digest: d.digest,
                        action: if d.delete { "delete" } else { "keep" }.to_string(),
                        rule: d.rule,
                        reason: d.reason,
                    })
                    .collect(),
            })
            .collect(),
        figures: p.figures.into(),
    }
}

/// Preview an applied policy: every tag in its scope with keep or delete and the rule that
/// decided, and the bytes that would be freed. Nothing changes. Only repositories the caller
/// may read are evaluated and shown; the figures count those alone.
#[utoipa::path(post, path = "/api/v1/policies/{name}/preview",
    params(("name" = String, Path, description = "policy name")),
    responses((status = 200, body = PreviewInfo), (status = 404, body = ErrorBody)))]
pub async fn preview_saved(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult {
    let (_, policy) = app.retention.get(&name).await.map_err(error)?;
    let p = app
        .retention
        .preview(&policy, &caller.principal)
        .await
        .map_err(error)?;
    Ok(Json(preview_info(p)).into_response())
}

/// Preview a draft policy (JSON or TOML) without applying it; like a saved policy's preview,
/// only over the repositories the caller may read.
#[utoipa::path(post, path = "/api/v1/policies/preview",
    request_body(content = String, description = "the policy document, JSON or TOML"),
    responses((status = 200, body = PreviewInfo),
              (status = 400, description = "invalid policy", body = ErrorBody)))]
pub async fn preview_draft(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> ApiResult {
    let policy = parse_document(&body)?
        .validate()
        .map_err(|e| error(RetentionError::Invalid(e)))?;
    let p = app
        .retention
        .preview(&policy, &caller.principal)
        .await
        .map_err(error)?;
    Ok(Json(preview_info(p)).into_response())
}

pub(crate) fn run_info(r: PolicyRun) -> PolicyRunInfo {
    PolicyRunInfo {
        id: r.id,
        policy: r.policy,
        trigger: r.trigger.to_string(),
        state: r.state.to_string(),
        started_by: r.started_by,
        started_at: time(r.started_at),
        evaluated_at: time(r.evaluated_at),
        finished_at: r.finished_at.map(time),
        duration_ms: r.finished_at.map(|f| f - r.started_at),
        figures: r.figures.into(),
        errors: r.errors,
        document: serde_json::from_str(&r.document).unwrap_or(serde_json::Value::Null),
    }
}

pub(crate) fn item(i: RunItem) -> PolicyRunItem {
    PolicyRunItem {
        repository: i.repository,
        kind: i.kind.to_string(),
        target: i.target,
        digest: i.digest,
        rule: i.rule,
        reason: i.reason,
    }
}

/// Start a run of a policy now. Answers 202 with the run; 409 when it is already running.
#[utoipa::path(post, path = "/api/v1/policies/{name}/runs",
    params(("name" = String, Path, description = "policy name")),
    responses((status = 202, body = PolicyRunInfo), (status = 404, body = ErrorBody),
              (status = 403, description = "the caller may not run policies", body = ErrorBody),
              (status = 409, body = ErrorBody),
              (status = 405, description = "deletion is disabled", body = ErrorBody)))]
pub async fn start(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult {
    let run = app
        .retention
        .start(&name, Trigger::Manual, &caller.principal)
        .await
        .map_err(error)?;
    Ok((StatusCode::ACCEPTED, Json(run_info(run))).into_response())
}

/// Runs of one policy, newest first.
#[utoipa::path(get, path = "/api/v1/policies/{name}/runs",
    params(("name" = String, Path, description = "policy name"),
           ("before" = Option<i64>, Query, description = "runs with an id below this"),
           ("limit" = Option<i64>, Query, description = "at most this many (default 20)")),
    responses((status = 200, body = PolicyRunList),
              (status = 400, description = "invalid query", body = ErrorBody)))]
pub async fn runs_of(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(p): ApiQuery<RunPage>,
) -> ApiResult {
    runs_page(&app, Some(&name), &p).await
}

/// Runs of every policy (or of `policy`), newest first.
#[utoipa::path(get, path = "/api/v1/policy-runs",
    params(("policy" = Option<String>, Query, description = "only this policy's runs"),
           ("before" = Option<i64>, Query, description = "runs with an id below this"),
           ("limit" = Option<i64>, Query, description = "at most this many (default 20)")),
    responses((status = 200, body = PolicyRunList),
              (status = 400, description = "invalid query", body = ErrorBody)))]
pub async fn runs(State(app): State<AppState>, ApiQuery(p): ApiQuery<RunPage>) -> ApiResult {
    runs_page(&app, p.policy.as_deref(), &p).await
}

async fn runs_page(app: &AppState, policy: Option<&str>, p: &RunPage) -> ApiResult {
    let runs = app
        .retention
        .runs(policy, p.before, p.limit.unwrap_or(20).clamp(1, 1000))
        .await
        .map_err(error)?;
    Ok(Json(PolicyRunList {
        runs: runs.into_iter().map(run_info).collect(),
    })
    .into_response())
}

/// One run, with what it deleted and the rule that decided each: the items of the
/// repositories the caller may read (the figures are the whole run's).
#[utoipa::path(get, path = "/api/v1/policy-runs/{id}",
    params(("id" = i64, Path, description = "run id")),
    responses((status = 200, body = PolicyRunDetail), (status = 404, body = ErrorBody),
              (status = 400, description = "invalid id", body = ErrorBody)))]
pub async fn run(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    let (run, items) = app
        .retention
        .run(id, &caller.principal)
        .await
        .map_err(error)?;
    Ok(Json(PolicyRunDetail {
        run: run_info(run),
        items: items.into_iter().map(item).collect(),
    })
    .into_response())
}

/// Cancel a run after the repository it is working on; what it deleted stays deleted (and
/// restorable) and is reported.
#[utoipa::path(post, path = "/api/v1/policy-runs/{id}/cancel",
    params(("id" = i64, Path, description = "run id")),
    responses((status = 202, body = PolicyRunInfo), (status = 404, body = ErrorBody),
              (status = 403, description = "the caller may not manage policies", body = ErrorBody),
              (status = 409, body = ErrorBody),
              (status = 400, description = "invalid id", body = ErrorBody)))]
pub async fn cancel(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    let run = app
        .retention
        .cancel(id, &caller.principal)
        .await
        .map_err(error)?;
    if run.state != shipshape_meta::runs::RunState::Running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "POLICY_RUN_FINISHED",
            format!("policy run {id} has already finished ({})", run.state),
        ));
    }
    Ok((StatusCode::ACCEPTED, Json(run_info(run))).into_response())
}
