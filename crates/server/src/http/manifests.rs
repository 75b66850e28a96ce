//! `/v2/<name>/manifests/<reference>`: GET, HEAD, PUT, DELETE.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use shipshape_oci::manifest::MAX_MANIFEST_BYTES;
use shipshape_oci::{NameError, Reference, RepoName};

use super::AppState;
use super::headers::{self, DOCKER_CONTENT_DIGEST, OCI_SUBJECT};
use crate::error::ApiError;
use crate::registry::Principal;
use crate::registry::RegistryError;

/// Parses a reference for reading or deleting: a malformed tag is simply not there (404, as
/// the conformance suite requires); a malformed digest is a bad request.
fn lookup_reference(raw: &str) -> Result<Reference, ApiError> {
    raw.parse::<Reference>().map_err(|e| match e {
        NameError::Tag(_) => RegistryError::ManifestUnknown(raw.to_string()).into(),
        other => ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", other.to_string()),
    })
}

pub async fn get(
    app: &AppState,
    repo: RepoName,
    reference: String,
    head_only: bool,
) -> Result<Response, ApiError> {
    let reference = lookup_reference(&reference)?;
    let m = app
        .registry
        .get_manifest(&repo, &reference, !head_only)
        .await?;
    let mut resp = match m.payload {
        Some(bytes) => Body::from(bytes).into_response(),
        None => Response::new(Body::empty()),
    };
    headers::set(&mut resp, header::CONTENT_TYPE, &m.media_type);
    headers::set(&mut resp, header::CONTENT_LENGTH, m.size.to_string());
    headers::set(&mut resp, DOCKER_CONTENT_DIGEST, m.digest.to_string());
    headers::set(&mut resp, header::ETAG, format!("\"{}\"", m.digest));
    Ok(resp)
}

pub async fn put(
    app: &AppState,
    repo: RepoName,
    reference: String,
    actor: &Principal,
    req: Request,
) -> Result<Response, ApiError> {
    // The body (at most 4 MiB) is read before anything is judged, so a refusal reaches the
    // client as an answer rather than as a connection reset in the middle of its upload.
    let content_type = headers::content_type(req.headers()).map(str::to_string);
    let body = read_limited(req.into_body()).await?;
    let reference = reference.parse::<Reference>().map_err(|e| match e {
        NameError::Tag(_) => ApiError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", e.to_string()),
        other => ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", other.to_string()),
    })?;
    let pushed = app
        .registry
        .put_manifest(&repo, &reference, content_type.as_deref(), &body, actor)
        .await?;
    let mut resp = StatusCode::CREATED.into_response();
    headers::set(
        &mut resp,
        header::LOCATION,
        format!("/v2/{repo}/manifests/{}", pushed.digest),
    );
    headers::set(&mut resp, DOCKER_CONTENT_DIGEST, pushed.digest.to_string());
    headers::set(&mut resp, header::CONTENT_LENGTH, "0");
    if let Some(subject) = pushed.subject {
        headers::set(&mut resp, OCI_SUBJECT, subject.to_string());
    }
    Ok(resp)
}

/// Reads a manifest body, refusing it once it passes the size limit.
async fn read_limited(body: Body) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::Body(e.to_string()))?;
        if buf.len() + chunk.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::ManifestTooLarge {
                limit: MAX_MANIFEST_BYTES,
            }
            .into());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

pub async fn delete(
    app: &AppState,
    repo: RepoName,
    reference: String,
    actor: &Principal,
) -> Result<Response, ApiError> {
    let reference = lookup_reference(&reference)?;
    app.registry
        .delete_manifest(&repo, &reference, actor)
        .await
        .map_err(|e| ApiError::from(e).for_distribution())?;
    let mut resp = StatusCode::ACCEPTED.into_response();
    headers::set(&mut resp, header::CONTENT_LENGTH, "0");
    Ok(resp)
}
