//! `/v2/<name>/blobs/uploads/[<id>]`: POST (session, monolithic, mount), PATCH, PUT, GET, DELETE.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use shipshape_oci::{Algorithm, Digest, RepoName, UploadId};

use super::AppState;
use super::headers::{
    self, DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID, OCI_CHUNK_MIN_LENGTH, Query,
};
use crate::error::{ApiError, upload_range};
use crate::registry::{MountOutcome, Principal, RegistryError};

/// An upload session's state. Every answer about a session carries `OCI-Chunk-Min-Length` when
/// the store has a smallest useful chunk (S3's part size), so a client sizes its PATCHes from
/// the first answer on.
fn session_response(
    app: &AppState,
    status: StatusCode,
    repo: &RepoName,
    id: &UploadId,
    received: u64,
) -> Response {
    let mut resp = status.into_response();
    if let Some(min) = app.registry.chunk_min_length() {
        headers::set(&mut resp, OCI_CHUNK_MIN_LENGTH, min.to_string());
    }
    headers::set(
        &mut resp,
        header::LOCATION,
        format!("/v2/{repo}/blobs/uploads/{id}"),
    );
    headers::set(&mut resp, header::RANGE, upload_range(received));
    headers::set(&mut resp, DOCKER_UPLOAD_UUID, id.as_str());
    headers::set(&mut resp, header::CONTENT_LENGTH, "0");
    resp
}

fn blob_created(repo: &RepoName, digest: &Digest) -> Response {
    let mut resp = StatusCode::CREATED.into_response();
    headers::set(
        &mut resp,
        header::LOCATION,
        format!("/v2/{repo}/blobs/{digest}"),
    );
    headers::set(&mut resp, DOCKER_CONTENT_DIGEST, digest.to_string());
    headers::set(&mut resp, header::CONTENT_LENGTH, "0");
    resp
}

fn parse_id(raw: &str) -> Result<UploadId, ApiError> {
    raw.parse::<UploadId>()
        .map_err(|_| RegistryError::UploadUnknown.into())
}

/// The client's `Content-Range`. A malformed one is answered like an out-of-order chunk (416
/// with the session's current `Range`), so the client can re-sync.
async fn content_range(
    app: &AppState,
    parsed: Result<Option<(u64, u64)>, ()>,
    repo: &RepoName,
    id: &UploadId,
) -> Result<Option<(u64, u64)>, ApiError> {
    match parsed {
        Ok(range) => Ok(range),
        Err(()) => {
            let state = app.registry.upload_status(repo, id).await?;
            Err(RegistryError::RangeInvalid {
                repo: repo.clone(),
                upload: id.clone(),
                received: state.received,
            }
            .into())
        }
    }
}

pub async fn start(
    app: &AppState,
    repo: RepoName,
    actor: &Principal,
    req: Request,
) -> Result<Response, ApiError> {
    let q = Query::of(req.uri());
    if let Some(mount) = q.get("mount") {
        // A mount that cannot be made falls back to a plain session, as the spec says; so does
        // one naming a malformed digest or source.
        if let Ok(digest) = mount.parse::<Digest>() {
            let from = q.get("from").and_then(|f| f.parse::<RepoName>().ok());
            if q.get("from").is_some() && from.is_none() {
                let id = app.registry.start_upload(&repo, None).await?;
                return Ok(session_response(app, StatusCode::ACCEPTED, &repo, &id, 0));
            }
            return Ok(
                match app
                    .registry
                    .mount_blob(&repo, &digest, from.as_ref(), actor)
                    .await?
                {
                    MountOutcome::Mounted(d) => blob_created(&repo, &d),
                    MountOutcome::Session(id) => {
                        session_response(app, StatusCode::ACCEPTED, &repo, &id, 0)
                    }
                },
            );
        }
    }
    if let Some(digest) = q.get("digest") {
        let digest = digest.parse::<Digest>().map_err(RegistryError::from)?;
        let stored = app
            .registry
            .upload_monolithic(&repo, digest, req.into_body().into_data_stream())
            .await?;
        return Ok(blob_created(&repo, &stored));
    }
    let algorithm = match q.get("digest-algorithm") {
        None => None,
        Some(a) => Some(a.parse::<Algorithm>().map_err(RegistryError::from)?),
    };
    let id = app.registry.start_upload(&repo, algorithm).await?;
    Ok(session_response(app, StatusCode::ACCEPTED, &repo, &id, 0))
}

pub async fn status(app: &AppState, repo: RepoName, id: String) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let state = app.registry.upload_status(&repo, &id).await?;
    Ok(session_response(
        app,
        StatusCode::NO_CONTENT,
        &repo,
        &id,
        state.received,
    ))
}

pub async fn patch(
    app: &AppState,
    repo: RepoName,
    id: String,
    req: Request,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let parsed = headers::upload_content_range(req.headers());
    let range = content_range(app, parsed, &repo, &id).await?;
    let state = app
        .registry
        .upload_chunk(&repo, &id, range, req.into_body().into_data_stream())
        .await?;
    Ok(session_response(
        app,
        StatusCode::ACCEPTED,
        &repo,
        &id,
        state.received,
    ))
}

pub async fn finish(
    app: &AppState,
    repo: RepoName,
    id: String,
    req: Request,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let parsed = headers::upload_content_range(req.headers());
    let range = content_range(app, parsed, &repo, &id).await?;
    let expected = match Query::of(req.uri()).get("digest") {
        None => Err(RegistryError::DigestInvalid(
            "the digest query parameter is required to finish an upload".into(),
        )),
        Some(d) => d.parse::<Digest>().map_err(RegistryError::from),
    };
    let digest = app
        .registry
        .finish_upload(
            &repo,
            &id,
            expected,
            range,
            req.into_body().into_data_stream(),
        )
        .await?;
    Ok(blob_created(&repo, &digest))
}

pub async fn cancel(app: &AppState, repo: RepoName, id: String) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    app.registry.cancel_upload(&repo, &id).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    headers::set(&mut resp, header::CONTENT_LENGTH, "0");
    Ok(resp)
}
