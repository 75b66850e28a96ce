//! The management API's extractors: axum's `Path`, `Query` and `Json`, whose refusals are the
//! API's JSON error body (`400 INVALID_REQUEST` with axum's message saying what was wrong)
//! instead of axum's plain-text answers, which no client of the API can read as an error.
//! A JSON body sent without `Content-Type: application/json` stays a 415, so that a browser
//! form can never post to the API; it too gets the JSON body.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

fn invalid(status: StatusCode, message: String) -> ApiError {
    ApiError::new(status, "INVALID_REQUEST", message)
}

/// Path parameters; one that does not parse (an id past `i64`) is a 400.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| invalid(e.status(), e.body_text()))
    }
}

/// The query string; an unknown parameter or a value that does not parse is a 400.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| invalid(StatusCode::BAD_REQUEST, e.body_text()))
    }
}

/// A JSON body: 415 without its content type, 400 when it is not JSON or not of the shape
/// asked for (axum says 422 for the latter; the API answers every malformed body with 400).
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|j| ApiJson(j.0))
            .map_err(|e: JsonRejection| {
                let status = match e.status() {
                    StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                    other => other,
                };
                invalid(status, e.body_text())
            })
    }
}
