//! The route table. `/v2/…` paths go through the one path parser, then to the handler for
//! (endpoint, method); each handler lives in the module of its resource.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tower_http::set_header::SetResponseHeaderLayer;

use super::path::{self, Endpoint};
use super::{AppState, auth, blobs, catalog, manifests, referrers, tags, uploads};
use crate::error::ApiError;
use shipshape_auth::Caller;

pub fn router(state: AppState) -> Router {
    // The probes answer without a caller: resolving one reads the catalogue, and a liveness
    // probe that failed while PostgreSQL is down would have every node restarted for it.
    let probes = Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready));
    Router::new()
        .route("/v2", any(v2))
        .route("/v2/", any(v2))
        .route("/v2/{*rest}", any(v2))
        .route("/metrics", get(super::metrics::metrics))
        .route("/auth/token", get(auth::token_get).post(auth::token_post))
        .merge(crate::api::router(state.clone()))
        .merge(crate::ui::routes(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::storage::report_storage_failures,
        ))
        .merge(probes)
        .layer(SetResponseHeaderLayer::overriding(
            header::HeaderName::from_static("docker-distribution-api-version"),
            HeaderValue::from_static("registry/2.0"),
        ))
        // Outermost, so its line and figures cover every answer, refusals included.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::observe::observe,
        ))
        .with_state(state)
}

/// `/healthz`: the process is alive and serving HTTP; nothing else is checked.
async fn health() -> &'static str {
    "ok\n"
}

/// `/readyz`: 200 when the catalogue answers a read and the blob store takes a write, 503
/// otherwise; the body says how each stands (`ok`, `full`, `read_only`, `unavailable`).
async fn ready(State(app): State<AppState>) -> Response {
    let readiness = app.registry.readiness().await;
    app.storage.note_readiness(&readiness);
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "ready": readiness.ready(),
        "catalogue": readiness.catalogue,
        "store": readiness.store,
    });
    (status, axum::Json(body)).into_response()
}

async fn v2(State(app): State<AppState>, req: Request) -> Response {
    let caller = req
        .extensions()
        .get::<Caller>()
        .cloned()
        .expect("the authentication layer runs first");
    let actor = &caller.principal;
    let rest = req
        .uri()
        .path()
        .strip_prefix("/v2")
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string();
    let endpoint = match path::parse(&rest) {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let method = req.method().clone();
    if let Err(e) = auth::authorize_v2(&app, req.headers(), &caller, &endpoint, &method) {
        return e.into_response();
    }
    // A request refused before its body was read leaves unread bytes on the connection; the
    // connection is then closed, and saying so keeps clients from reusing it.
    let has_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let result = match (endpoint, method) {
        (Endpoint::Base, Method::GET | Method::HEAD) => Ok(base()),
        (Endpoint::Catalog, Method::GET) => catalog::list(&app, actor, req).await,
        (Endpoint::Tags(repo), Method::GET) => tags::list(&app, repo, req).await,
        (Endpoint::Manifest(repo, r), Method::GET) => manifests::get(&app, repo, r, false).await,
        (Endpoint::Manifest(repo, r), Method::HEAD) => manifests::get(&app, repo, r, true).await,
        (Endpoint::Manifest(repo, r), Method::PUT) => {
            manifests::put(&app, repo, r, actor, req).await
        }
        (Endpoint::Manifest(repo, r), Method::DELETE) => {
            manifests::delete(&app, repo, r, actor).await
        }
        (Endpoint::Blob(repo, d), Method::GET) => blobs::get(&app, repo, d, req, false).await,
        (Endpoint::Blob(repo, d), Method::HEAD) => blobs::get(&app, repo, d, req, true).await,
        (Endpoint::Blob(repo, d), Method::DELETE) => blobs::delete(&app, repo, d, actor).await,
        (Endpoint::Uploads(repo), Method::POST) => uploads::start(&app, repo, actor, req).await,
        (Endpoint::Upload(repo, id), Method::GET) => uploads::status(&app, repo, id).await,
        (Endpoint::Upload(repo, id), Method::PATCH) => uploads::patch(&app, repo, id, req).await,
        (Endpoint::Upload(repo, id), Method::PUT) => uploads::finish(&app, repo, id, req).await,
        (Endpoint::Upload(repo, id), Method::DELETE) => uploads::cancel(&app, repo, id).await,
        (Endpoint::Referrers(repo, d), Method::GET) => referrers::list(&app, repo, d, req).await,
        _ => Err(ApiError::method_not_allowed()),
    };
    match result {
        Ok(resp) => resp,
        Err(e) => {
            let mut resp = e.into_response();
            if has_body {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            resp
        }
    }
}

fn base() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response()
}
