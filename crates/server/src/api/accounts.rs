//! Accounts under `/api/v1`: users, robots, roles, and who the caller is. Each handler passes
//! the caller to the access-control service, which checks that it may manage accounts.

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use shipshape_auth::Caller;
use shipshape_meta::accounts::Role;
use shipshape_meta::principal::{Kind, Permission};

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::model::ErrorBody;
use super::model::accounts::{
    Grant, NewPassword, NewRobot, NewRobotReply, NewUser, RevokeQuery, RobotInfo, RobotList,
    RoleList, UserInfo, UserList, Whoami,
};
use crate::error::ApiError;
use crate::http::{AppState, auth_error};

type ApiResult = Result<Response, ApiError>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/users", get(users).post(add_user))
        .route("/api/v1/users/{name}", delete(remove_user))
        .route("/api/v1/users/{name}/password", put(set_password))
        .route("/api/v1/robots", get(robots).post(add_robot))
        .route("/api/v1/robots/{name}/revoke", post(revoke_robot))
        .route("/api/v1/roles", get(roles).post(grant).delete(revoke))
        .route("/api/v1/token-keys/rotate", post(rotate_keys))
}

/// Starts signing tokens with a new key; tokens signed with the old ones stay valid until
/// they expire.
#[utoipa::path(post, path = "/api/v1/token-keys/rotate",
    responses((status = 200, description = "the signing keys' ids, the new one first"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn rotate_keys(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult {
    let keys = app
        .auth
        .rotate_keys(&caller.principal)
        .map_err(auth_error)?;
    Ok(Json(serde_json::json!({ "keys": keys })).into_response())
}

/// Who the credentials belong to: what `shipshape login` checks.
#[utoipa::path(get, path = "/api/v1/whoami",
    responses((status = 200, body = Whoami), (status = 401, body = ErrorBody)))]
pub async fn whoami(Extension(caller): Extension<Caller>) -> ApiResult {
    let p = &caller.principal;
    let kind = match p.kind {
        Kind::Anonymous => "anonymous",
        Kind::User => "user",
        Kind::Robot => "robot",
        Kind::System => "system",
    };
    Ok(Json(Whoami {
        name: p.name.clone(),
        kind: kind.to_string(),
        access_control: caller.enabled,
        admin: p.may(Permission::ManageAccounts, None),
    })
    .into_response())
}

#[utoipa::path(get, path = "/api/v1/users",
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn users(State(app): State<AppState>, Extension(caller): Extension<Caller>) -> ApiResult {
    let list = app
        .auth
        .users(&caller.principal)
        .await
        .map_err(auth_error)?;
    Ok(Json(UserList {
        users: list.into_iter().map(Into::into).collect(),
    })
    .into_response())
}

#[utoipa::path(post, path = "/api/v1/users", request_body = NewUser,
    responses((status = 201, body = UserInfo), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody),
              (status = 415, description = "the body is not sent as application/json", body = ErrorBody)))]
pub async fn add_user(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult {
    let user = app
        .auth
        .add_user(&caller.principal, &body.name, &body.password, body.admin)
        .await
        .map_err(auth_error)?;
    Ok((StatusCode::CREATED, Json(UserInfo::from(user))).into_response())
}

#[utoipa::path(delete, path = "/api/v1/users/{name}",
    params(("name" = String, Path, description = "user name")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_user(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult {
    app.auth
        .remove_user(&caller.principal, &name)
        .await
        .map_err(auth_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(put, path = "/api/v1/users/{name}/password", request_body = NewPassword,
    params(("name" = String, Path, description = "user name")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 415, description = "the body is not sent as application/json", body = ErrorBody)))]
pub async fn set_password(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<NewPassword>,
) -> ApiResult {
    app.auth
        .set_password(&caller.principal, &name, &body.password)
        .await
        .map_err(auth_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/api/v1/robots",
    responses((status = 200, body = RobotList), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn robots(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult {
    let list = app
        .auth
        .robots(&caller.principal)
        .await
        .map_err(auth_error)?;
    let now = app.registry.now();
    Ok(Json(RobotList {
        robots: list.into_iter().map(|r| RobotInfo::at(r, now)).collect(),
    })
    .into_response())
}

fn role(text: &str) -> Result<Role, ApiError> {
    text.parse()
        .map_err(|e: String| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", e))
}

#[utoipa::path(post, path = "/api/v1/robots", request_body = NewRobot,
    responses((status = 201, body = NewRobotReply), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody),
              (status = 415, description = "the body is not sent as application/json", body = ErrorBody)))]
pub async fn add_robot(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewRobot>,
) -> ApiResult {
    let expires_at = match &body.expires_in {
        None => None,
        Some(text) => {
            let ms = super::handlers::duration_ms(text).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    format!(
                        "expires_in: {text:?} is not a duration of at most 100 years (use e.g. \
                         90d, 12h)"
                    ),
                )
            })?;
            Some(app.registry.now() + ms)
        }
    };
    let roles = body
        .roles
        .iter()
        .map(|r| Ok((r.pattern.clone(), role(&r.role)?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let (robot, secret) = app
        .auth
        .add_robot(
            &caller.principal,
            &body.name,
            body.description.as_deref(),
            expires_at,
            &roles,
        )
        .await
        .map_err(auth_error)?;
    // Shown this once: only its hash is kept.
    let reply = NewRobotReply {
        robot: RobotInfo::at(robot, app.registry.now()),
        secret,
    };
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

#[utoipa::path(post, path = "/api/v1/robots/{name}/revoke",
    params(("name" = String, Path, description = "robot name, with or without `robot$`")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "revoked already", body = ErrorBody)))]
pub async fn revoke_robot(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult {
    app.auth
        .revoke_robot(&caller.principal, &name)
        .await
        .map_err(auth_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/api/v1/roles",
    responses((status = 200, body = RoleList), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn roles(State(app): State<AppState>, Extension(caller): Extension<Caller>) -> ApiResult {
    let list = app
        .auth
        .bindings(&caller.principal)
        .await
        .map_err(auth_error)?;
    Ok(Json(RoleList {
        roles: list.into_iter().map(Into::into).collect(),
    })
    .into_response())
}

#[utoipa::path(post, path = "/api/v1/roles", request_body = Grant,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 415, description = "the body is not sent as application/json", body = ErrorBody)))]
pub async fn grant(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<Grant>,
) -> ApiResult {
    let r = role(&body.role)?;
    app.auth
        .bind(&caller.principal, &body.subject, &body.pattern, r)
        .await
        .map_err(auth_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(delete, path = "/api/v1/roles",
    params(("subject" = String, Query, description = "`user:NAME`, `robot:NAME` or `anonymous`"),
           ("pattern" = String, Query, description = "the binding's repository pattern")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 400, description = "subject or pattern missing or invalid", body = ErrorBody)))]
pub async fn revoke(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<RevokeQuery>,
) -> ApiResult {
    app.auth
        .unbind(&caller.principal, &q.subject, &q.pattern)
        .await
        .map_err(auth_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
