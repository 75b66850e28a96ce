//! Authentication at the door: every request's credentials (Basic, or a bearer token from the
//! token endpoint) become the `Caller` that handlers and services take; `/v2/` requests are
//! then checked against what the route needs, and refused the way clients expect (401 with a
//! `WWW-Authenticate` challenge naming the scope to ask for, 403 when credentials are valid
//! but not enough). The token endpoint (`/auth/token`) speaks the Docker token scheme's GET
//! form and the OAuth2 POST form.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use shipshape_auth::{AuthError, Caller, Credentials, ResourceScope, scope};
use shipshape_meta::principal::Permission;
use shipshape_oci::{Reference, RepoName};

use super::AppState;
use super::headers::Query;
use super::path::Endpoint;
use crate::error::ApiError;

/// The credentials a request presents. A malformed `Authorization` header is refused, not
/// taken as anonymous.
pub(crate) fn credentials(headers: &HeaderMap) -> Result<Credentials, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Credentials::None);
    };
    let bad = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "the Authorization header is neither Basic credentials nor a Bearer token",
        )
    };
    let value = value.to_str().map_err(|_| bad())?;
    let (kind, rest) = value.split_once(' ').ok_or_else(bad)?;
    let rest = rest.trim();
    if kind.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, secret) = text.split_once(':').ok_or_else(bad)?;
        Ok(Credentials::Basic {
            user: user.to_string(),
            secret: secret.to_string(),
        })
    } else if kind.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Ok(Credentials::Bearer(rest.to_string()))
    } else {
        Err(bad())
    }
}

fn source(req: &Request) -> Option<String> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// The middleware: resolves the caller once per request and puts it in the request's
/// extensions. Bad credentials are refused here, whatever the route.
pub(crate) async fn authenticate(
    State(app): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let creds = match credentials(req.headers()) {
        Ok(c) => c,
        Err(e) => return challenge(&app, req.headers(), e, None, false).into_response(),
    };
    let bearer = matches!(creds, Credentials::Bearer(_));
    match app.auth.caller(&creds, source(&req)).await {
        Ok(caller) => {
            let actor = super::observe::Actor(caller.principal.name.clone());
            req.extensions_mut().insert(caller);
            let mut resp = next.run(req).await;
            resp.extensions_mut().insert(actor);
            resp
        }
        Err(e) => {
            let api = auth_error(e);
            if api.status == StatusCode::UNAUTHORIZED {
                challenge(&app, req.headers(), api, None, bearer).into_response()
            } else {
                api.into_response()
            }
        }
    }
}

/// Access control's errors as API errors (the only place they become statuses).
pub(crate) fn auth_error(e: AuthError) -> ApiError {
    let msg = e.to_string();
    match e {
        AuthError::BadCredentials | AuthError::BadToken(_) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", msg)
        }
        AuthError::RateLimited { seconds, .. } => {
            let mut api = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", msg);
            api.headers.push((header::RETRY_AFTER, seconds.to_string()));
            api
        }
        AuthError::Denied { .. } => ApiError::new(StatusCode::FORBIDDEN, "DENIED", msg),
        AuthError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", msg),
        AuthError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "CONFLICT", msg),
        AuthError::Invalid(_) => ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", msg),
        AuthError::Meta(m) => crate::error::of_meta(&m),
        AuthError::Keys(_) => ApiError::internal(&msg),
    }
}

/// The token endpoint's address as clients reach it: the configured realm, or this server
/// as the request named it.
fn realm(app: &AppState, headers: &HeaderMap) -> String {
    if let Some(r) = &app.auth_realm {
        return r.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if app.tls { "https" } else { "http" };
    format!("{scheme}://{host}/auth/token")
}

/// A 401 with the challenge clients follow: `Bearer realm,service[,scope][,error]`.
fn challenge(
    app: &AppState,
    headers: &HeaderMap,
    mut e: ApiError,
    scope: Option<String>,
    token_presented: bool,
) -> ApiError {
    let mut value = format!(
        "Bearer realm=\"{}\",service=\"{}\"",
        realm(app, headers),
        app.auth.service()
    );
    if let Some(scope) = scope {
        value.push_str(&format!(",scope=\"{scope}\""));
    }
    if token_presented {
        value.push_str(
            if e.status == StatusCode::UNAUTHORIZED
                && e.errors.iter().any(|x| x.1.contains("token"))
            {
                ",error=\"invalid_token\""
            } else {
                ",error=\"insufficient_scope\""
            },
        );
    }
    e.headers.push((header::WWW_AUTHENTICATE, value));
    e
}

/// What a `/v2/` route needs: the token action, the permission, and the repository.
fn needs(endpoint: &Endpoint, method: &Method) -> Option<(&'static str, Permission, RepoName)> {
    let read = matches!(*method, Method::GET | Method::HEAD);
    Some(match endpoint {
        Endpoint::Base | Endpoint::Catalog => return None,
        Endpoint::Tags(repo) | Endpoint::Referrers(repo, _) => {
            ("pull", Permission::Pull, repo.clone())
        }
        Endpoint::Manifest(repo, r) => match *method {
            Method::GET | Method::HEAD => ("pull", Permission::Pull, repo.clone()),
            // A tag's delete is a writer's; a manifest's (by digest) an admin's.
            Method::DELETE => match r.parse::<Reference>() {
                Ok(Reference::Tag(_)) => ("delete", Permission::Push, repo.clone()),
                _ => ("delete", Permission::Delete, repo.clone()),
            },
            _ => ("push", Permission::Push, repo.clone()),
        },
        Endpoint::Blob(repo, _) => {
            if read {
                ("pull", Permission::Pull, repo.clone())
            } else {
                ("delete", Permission::Delete, repo.clone())
            }
        }
        Endpoint::Uploads(repo) | Endpoint::Upload(repo, _) => {
            ("push", Permission::Push, repo.clone())
        }
    })
}

/// Refuses a `/v2/` request its caller may not make: 401 with the scope to ask for when the
/// caller is anonymous or its token lacks the scope, 403 when valid credentials are not
/// enough. `GET /v2/` answers 401 to an anonymous caller once access control is on, which is
/// how clients learn they must log in.
pub(crate) fn authorize_v2(
    app: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    endpoint: &Endpoint,
    method: &Method,
) -> Result<(), ApiError> {
    if !caller.enabled {
        return Ok(());
    }
    let token = caller.scopes.is_some();
    let Some((action, permission, repo)) = needs(endpoint, method) else {
        if matches!(endpoint, Endpoint::Base) && !caller.authenticated() {
            return Err(challenge(
                app,
                headers,
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "authentication required",
                ),
                None,
                false,
            ));
        }
        return Ok(());
    };
    let allowed = caller.principal.may(permission, Some(repo.as_str()))
        && caller.token_allows(repo.as_str(), action);
    if allowed {
        return Ok(());
    }
    let asked = match action {
        "push" => "pull,push",
        other => other,
    };
    let scope = format!("repository:{repo}:{asked}");
    if !caller.authenticated() {
        return Err(challenge(
            app,
            headers,
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                format!("authentication required to {action} {repo}"),
            ),
            Some(scope),
            false,
        ));
    }
    let denied = ApiError::new(
        StatusCode::FORBIDDEN,
        "DENIED",
        format!("{} may not {action} {repo}", caller.principal.name),
    );
    if token {
        // A valid token without the scope: 403 with the challenge to ask for it. Clients
        // that hold a token for another scope (oras-py reuses the one it got first) fetch a
        // new one on a 403; those that ask for every scope up front never see it.
        return Err(challenge(app, headers, denied, Some(scope), true));
    }
    Err(denied)
}

/// The management API needs credentials once access control is on; what each caller may then
/// do is the services' to check.
pub(crate) fn require_login(app: &AppState, caller: &Caller) -> Result<(), ApiError> {
    if caller.enabled && !caller.authenticated() {
        let mut e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "log in first (shipshape login, or Basic credentials)",
        );
        e.headers.push((
            header::WWW_AUTHENTICATE,
            format!("Basic realm=\"{}\"", app.auth.service()),
        ));
        return Err(e);
    }
    Ok(())
}

/// `GET /auth/token?service=…&scope=…[&offline_token=true]`, credentials by Basic (or none).
pub(crate) async fn token_get(State(app): State<AppState>, req: Request) -> Response {
    let q = Query::of(req.uri());
    let scopes: Vec<ResourceScope> = q.all("scope").into_iter().flat_map(scope::parse).collect();
    let offline = q.get("offline_token") == Some("true");
    let service = q.get("service").map(str::to_string);
    let (headers, src) = (req.headers().clone(), source(&req));
    drop(req);
    let result = async {
        let creds = credentials(&headers)?;
        if matches!(creds, Credentials::Bearer(_)) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                "present Basic credentials (or none) to get a token",
            ));
        }
        check_service(&app, service.as_deref())?;
        app.auth
            .issue(&creds, src, &scopes, offline)
            .await
            .map_err(auth_error)
    }
    .await;
    match result {
        Ok(reply) => Json(reply).into_response(),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            challenge(&app, &headers, e, None, false).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /auth/token`, the OAuth2 form: `grant_type=password` (username, password) or
/// `grant_type=refresh_token`, with `service`, `client_id`, `scope` (space-separated) and
/// `access_type=offline` for a refresh token.
pub(crate) async fn token_post(State(app): State<AppState>, req: Request) -> Response {
    let src = source(&req);
    let body = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "the form is too large",
            )
            .into_response();
        }
    };
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str);
    let result = async {
        check_service(&app, field("service"))?;
        let scopes = field("scope").map(scope::parse).unwrap_or_default();
        let offline = field("access_type") == Some("offline");
        match field("grant_type") {
            Some("password") => {
                let creds = Credentials::Basic {
                    user: field("username").unwrap_or_default().to_string(),
                    secret: field("password").unwrap_or_default().to_string(),
                };
                app.auth
                    .issue(&creds, src, &scopes, offline)
                    .await
                    .map_err(auth_error)
            }
            Some("refresh_token") => {
                let token = field("refresh_token").ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "INVALID_REQUEST",
                        "refresh_token is missing",
                    )
                })?;
                app.auth.refresh(token, &scopes).await.map_err(auth_error)
            }
            other => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                format!("grant_type {other:?} is not supported; use password or refresh_token"),
            )),
        }
    }
    .await;
    match result {
        Ok(reply) => Json(reply).into_response(),
        Err(e) => e.into_response(),
    }
}

fn check_service(app: &AppState, asked: Option<&str>) -> Result<(), ApiError> {
    match asked {
        Some(s) if s != app.auth.service() => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            format!("this token service is {:?}, not {s:?}", app.auth.service()),
        )),
        _ => Ok(()),
    }
}
