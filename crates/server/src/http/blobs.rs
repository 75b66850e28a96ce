//! `/v2/<name>/blobs/<digest>`: GET (with ranges), HEAD, DELETE.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use shipshape_oci::range::{self, RangeRequest};
use shipshape_oci::{Digest, RepoName};
use shipshape_store::ByteRange;

use super::AppState;
use super::headers::{self, DOCKER_CONTENT_DIGEST};
use crate::error::ApiError;
use crate::registry::Principal;

fn parse_digest(raw: &str) -> Result<Digest, ApiError> {
    raw.parse::<Digest>()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", e.to_string()))
}

pub async fn get(
    app: &AppState,
    repo: RepoName,
    digest: String,
    req: Request,
    head_only: bool,
) -> Result<Response, ApiError> {
    let digest = parse_digest(&digest)?;
    let blob = if head_only {
        app.registry.check_blob(&repo, &digest).await?
    } else {
        app.registry.stat_blob(&repo, &digest).await?
    };
    if !head_only && let Some(url) = app.registry.blob_download_url(&blob).await? {
        // The client fetches the bytes from the bucket, sending its own Range there; the
        // distribution spec allows a redirect here (307, as Distribution's `redirect` does).
        let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
        headers::set(&mut resp, header::LOCATION, url);
        headers::set(&mut resp, DOCKER_CONTENT_DIGEST, blob.digest.to_string());
        // The URL expires: no cache may answer with it later.
        headers::set(&mut resp, header::CACHE_CONTROL, "no-store");
        return Ok(resp);
    }
    let asked = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let (status, range) = match range::blob_range(asked, blob.size) {
        RangeRequest::Whole => (StatusCode::OK, None),
        RangeRequest::Part { first, last } => {
            (StatusCode::PARTIAL_CONTENT, Some(ByteRange { first, last }))
        }
        RangeRequest::Unsatisfiable => {
            let mut err = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RANGE_INVALID",
                format!("the blob has {} bytes", blob.size),
            )
            .into_response();
            headers::set(
                &mut err,
                header::CONTENT_RANGE,
                format!("bytes */{}", blob.size),
            );
            return Ok(err);
        }
    };
    let length = range.map(|r| r.len()).unwrap_or(blob.size);
    let body = if head_only {
        Body::empty()
    } else {
        Body::from_stream(app.registry.read_blob(&blob, range).await?)
    };
    let mut resp = (status, body).into_response();
    headers::set(&mut resp, header::CONTENT_TYPE, "application/octet-stream");
    headers::set(&mut resp, header::CONTENT_LENGTH, length.to_string());
    headers::set(&mut resp, header::ACCEPT_RANGES, "bytes");
    headers::set(&mut resp, DOCKER_CONTENT_DIGEST, blob.digest.to_string());
    headers::set(&mut resp, header::ETAG, format!("\"{}\"", blob.digest));
    headers::set(&mut resp, header::CACHE_CONTROL, "max-age=31536000");
    if let Some(r) = range {
        headers::set(
            &mut resp,
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", r.first, r.last, blob.size),
        );
    }
    Ok(resp)
}

pub async fn delete(
    app: &AppState,
    repo: RepoName,
    digest: String,
    actor: &Principal,
) -> Result<Response, ApiError> {
    let digest = parse_digest(&digest)?;
    app.registry
        .delete_blob(&repo, &digest, actor)
        .await
        .map_err(|e| ApiError::from(e).for_distribution())?;
    let mut resp = StatusCode::ACCEPTED.into_response();
    headers::set(&mut resp, header::CONTENT_LENGTH, "0");
    Ok(resp)
}
