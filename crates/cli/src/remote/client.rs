//! A small HTTP client for the management API: JSON in and out, OCI-style error bodies turned
//! into their message, connection failures into their root cause.

use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use super::{RemoteError, Result};

/// A registry reached over HTTP.
pub struct Remote {
    base: String,
    http: reqwest::Client,
}

impl Remote {
    /// `url` may omit the scheme (`127.0.0.1:5000` means plain HTTP).
    pub fn new(url: &str) -> Result<Self> {
        let url = url.trim_end_matches('/');
        let base = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("shipshape/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::Protocol(e.to_string()))?;
        Ok(Remote { base, http })
    }

    /// `path` of a repository's resource: names keep their slashes, sub-resources follow `/-/`.
    pub fn repo_path(repo: &str, sub: &str) -> String {
        let repo = repo.trim_matches('/');
        if sub.is_empty() {
            format!("/api/v1/repositories/{repo}")
        } else {
            format!("/api/v1/repositories/{repo}/-/{sub}")
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.request(Method::GET, path)).await
    }

    /// Sends a request and returns the JSON answer, or the API's error message.
    pub async fn send(&self, req: RequestBuilder) -> Result<Value> {
        let resp = req.send().await.map_err(|e| self.connect_error(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.connect_error(&e))?;
        if !status.is_success() {
            return Err(RemoteError::Api {
                status: status.as_u16(),
                message: api_message(status, &bytes),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            RemoteError::Protocol(format!(
                "the answer is not JSON ({e}); is {} a Shipshape registry?",
                self.base
            ))
        })
    }

    fn connect_error(&self, e: &reqwest::Error) -> RemoteError {
        // reqwest's own message only says "error sending request"; the cause is the news.
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        RemoteError::Connect {
            url: self.base.clone(),
            reason: cause.to_string(),
        }
    }
}

/// The message of an OCI error body, or the status when the body is not one.
fn api_message(status: reqwest::StatusCode, body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let first = parsed.as_ref().and_then(|v| v["errors"].get(0));
    match first {
        Some(e) => match (e["message"].as_str(), e["code"].as_str()) {
            (Some(m), _) if !m.is_empty() => m.to_string(),
            (_, Some(code)) => format!("{code} (HTTP {})", status.as_u16()),
            _ => format!("HTTP {status}"),
        },
        None => format!("HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_comes_from_the_body() {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository x is not known"}]}"#;
        assert_eq!(
            api_message(reqwest::StatusCode::NOT_FOUND, body),
            "repository x is not known"
        );
        assert_eq!(
            api_message(reqwest::StatusCode::BAD_GATEWAY, b"<html>"),
            "HTTP 502 Bad Gateway"
        );
    }

    #[test]
    fn scheme_defaults_to_http() {
        assert_eq!(
            Remote::new("127.0.0.1:5000/").unwrap().base,
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            Remote::repo_path("a/b", "tags"),
            "/api/v1/repositories/a/b/-/tags"
        );
    }
}
