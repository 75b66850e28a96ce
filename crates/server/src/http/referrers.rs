//! `/v2/<name>/referrers/<digest>`: an OCI index of the manifests whose subject is the digest.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use shipshape_oci::{Digest, RepoName};

use super::AppState;
use super::headers::{self, OCI_FILTERS_APPLIED, Query};
use crate::error::ApiError;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub async fn list(
    app: &AppState,
    repo: RepoName,
    digest: String,
    req: Request,
) -> Result<Response, ApiError> {
    let subject = digest
        .parse::<Digest>()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", e.to_string()))?;
    let q = Query::of(req.uri());
    let list = app
        .registry
        .referrers(&repo, &subject, q.get("artifactType"))
        .await?;
    let manifests: Vec<Value> = list
        .referrers
        .into_iter()
        .map(|r| {
            let mut d = Map::new();
            d.insert("mediaType".into(), json!(r.media_type));
            d.insert("digest".into(), json!(r.digest));
            d.insert("size".into(), json!(r.size));
            if let Some(t) = r.artifact_type {
                d.insert("artifactType".into(), json!(t));
            }
            if let Some(a) = r
                .annotations
                .and_then(|a| serde_json::from_str::<Value>(&a).ok())
            {
                d.insert("annotations".into(), a);
            }
            Value::Object(d)
        })
        .collect();
    let body = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let mut resp = axum::Json(body).into_response();
    headers::set(&mut resp, header::CONTENT_TYPE, OCI_INDEX);
    if list.filtered {
        headers::set(&mut resp, OCI_FILTERS_APPLIED, "artifactType");
    }
    Ok(resp)
}
