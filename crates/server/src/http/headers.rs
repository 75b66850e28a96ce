//! Small helpers for the headers and query strings of the distribution API.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::response::Response;

use crate::error::ApiError;
use axum::http::StatusCode;

pub const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
pub const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
pub const OCI_CHUNK_MIN_LENGTH: HeaderName = HeaderName::from_static("oci-chunk-min-length");
pub const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
pub const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// Query parameters, read from the URL only (never from a form body: the body is the blob).
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn of(uri: &Uri) -> Self {
        Query(
            form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// Every value given for `key`, in order (`scope` may be repeated).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `n` for pagination: absent, or a non-negative integer.
pub fn page_size(q: &Query) -> Result<Option<u64>, ApiError> {
    match q.get("n") {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("n must be a non-negative integer, not {s:?}"),
            )
        }),
    }
}

pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// An upload chunk's `Content-Range` (`shipshape_oci::range::upload_content_range`): absent,
/// or `Err` when present but malformed.
pub fn upload_content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = v.to_str().map_err(|_| ())?;
    shipshape_oci::range::upload_content_range(text)
        .map(Some)
        .ok_or(())
}

/// Sets a header from a string known to be valid (digests, paths, numbers).
pub fn set(resp: &mut Response, name: HeaderName, value: impl AsRef<str>) {
    if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
        resp.headers_mut().insert(name, v);
    }
}

/// A `Link` header for the next page.
pub fn next_link(path: &str, n: u64, last: &str) -> String {
    let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
    format!("<{path}?n={n}&last={last}>; rel=\"next\"")
}
