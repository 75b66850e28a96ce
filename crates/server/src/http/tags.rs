//! `/v2/<name>/tags/list`, sorted in byte order, paginated with `n`, `last` and `Link`.

use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shipshape_oci::RepoName;

use super::AppState;
use super::headers::{self, Query};
use crate::error::ApiError;

pub async fn list(app: &AppState, repo: RepoName, req: Request) -> Result<Response, ApiError> {
    let q = Query::of(req.uri());
    let n = headers::page_size(&q)?;
    let page = app.registry.list_tags(&repo, n, q.get("last")).await?;
    let mut resp = axum::Json(json!({ "name": repo, "tags": page.items })).into_response();
    if page.more
        && let (Some(n), Some(last)) = (n, page.items.last())
    {
        let link = headers::next_link(&format!("/v2/{repo}/tags/list"), n, last);
        headers::set(&mut resp, header::LINK, link);
    }
    Ok(resp)
}
