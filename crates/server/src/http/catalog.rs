//! `/v2/_catalog`: repository names, sorted and paginated like tags.

use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::headers::{self, Query};
use crate::error::ApiError;
use crate::registry::Principal;

pub async fn list(app: &AppState, actor: &Principal, req: Request) -> Result<Response, ApiError> {
    let q = Query::of(req.uri());
    let n = headers::page_size(&q)?;
    let page = app
        .registry
        .list_repositories_for(actor, n, q.get("last"))
        .await?;
    let mut resp = axum::Json(json!({ "repositories": page.items })).into_response();
    if page.more
        && let (Some(n), Some(last)) = (n, page.items.last())
    {
        headers::set(
            &mut resp,
            header::LINK,
            headers::next_link("/v2/_catalog", n, last),
        );
    }
    Ok(resp)
}
