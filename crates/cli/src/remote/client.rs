//! A small HTTP client for the management API: JSON in and out, OCI-style error bodies turned
//! into their message, connection failures into their root cause.

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use super::{RemoteError, Result};

/// A registry reached over HTTP.
pub struct Remote {
    base: String,
    http: reqwest::Client,
    connect_timeout: Duration,
    timeout: Duration,
}

impl Remote {
    /// `url` may omit the scheme (`127.0.0.1:5000` means plain HTTP). A request gives up after
    /// `connect_timeout` without a connection, or `timeout` without a whole answer.
    pub fn new(url: &str, connect_timeout: Duration, timeout: Duration) -> Result<Self> {
        let url = url.trim_end_matches('/');
        let base = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("shipshape/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| RemoteError::Protocol(e.to_string()))?;
        Ok(Remote {
            base,
            http,
            connect_timeout,
            timeout,
        })
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
        let req = req
            .build()
            .map_err(|e| RemoteError::Protocol(e.to_string()))?;
        let url = req.url().to_string();
        let resp = self
            .http
            .execute(req)
            .await
            .map_err(|e| self.connect_error(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.connect_error(&e))?;
        if !status.is_success() {
            return Err(match api_error(&bytes) {
                Some((code, message, detail)) => RemoteError::Api {
                    status: status.as_u16(),
                    code,
                    message,
                    detail,
                },
                None => RemoteError::Protocol(format!(
                    "{url} answered HTTP {status} without an API error; is {} a Shipshape registry?",
                    self.base
                )),
            });
        }
        if bytes.is_empty() {
            // 204 No Content, and the like.
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            RemoteError::Protocol(format!(
                "{url} answered with something that is not JSON ({e}); is {} a Shipshape registry?",
                self.base
            ))
        })
    }

    fn connect_error(&self, e: &reqwest::Error) -> RemoteError {
        // A connection that was never made timed out on --connect-timeout, not --timeout.
        if e.is_connect() && e.is_timeout() {
            return RemoteError::ConnectTimeout {
                url: self.base.clone(),
                after: self.connect_timeout,
            };
        }
        if e.is_timeout() {
            return RemoteError::Timeout {
                url: self.base.clone(),
                after: self.timeout,
            };
        }
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

/// The code, message and detail of an OCI error body, or `None` when the body is not one.
fn api_error(body: &[u8]) -> Option<(String, String, Value)> {
    let parsed: Value = serde_json::from_slice(body).ok()?;
    let first = parsed["errors"].get(0)?;
    let code = first["code"].as_str().unwrap_or("UNKNOWN").to_string();
    let message = match first["message"].as_str() {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => code.clone(),
    };
    Some((code, message, first["detail"].clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_comes_from_the_body() {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository x is not known"}]}"#;
        let (code, message, _) = api_error(body).unwrap();
        assert_eq!(code, "NAME_UNKNOWN");
        assert_eq!(message, "repository x is not known");
        assert!(api_error(b"<html>").is_none());
    }

    #[test]
    fn scheme_defaults_to_http() {
        assert_eq!(
            Remote::new(
                "127.0.0.1:5000/",
                Duration::from_secs(1),
                Duration::from_secs(1)
            )
            .unwrap()
            .base,
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            Remote::repo_path("a/b", "tags"),
            "/api/v1/repositories/a/b/-/tags"
        );
    }
}
