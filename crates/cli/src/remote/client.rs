//! A small HTTP client for the management API: JSON in and out, answers read as the API's types
//! (`shipshape_server::api::model`), Basic credentials on every request when it has them
//! (`credentials.rs`), OCI-style error bodies turned into their message, connection failures
//! into their root cause.

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::credentials::{self, Login, Source};
use super::{RemoteError, Result};

/// A registry reached over HTTP.
pub struct Remote {
    base: String,
    http: reqwest::Client,
    connect_timeout: Duration,
    timeout: Duration,
    /// Sent as Basic credentials with every request.
    login: Option<(Login, Source)>,
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
            login: None,
        })
    }

    /// The same registry, asked with these credentials (or none).
    pub fn with_login(self, login: Option<(Login, Source)>) -> Self {
        Remote { login, ..self }
    }

    /// The credentials requests carry, and where they came from.
    pub fn login(&self) -> Option<&(Login, Source)> {
        self.login.as_ref()
    }

    /// The registry's key in auth files: `host:port`.
    pub fn host(&self) -> String {
        credentials::host_key(&self.base)
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
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.login {
            Some((login, _)) => req.basic_auth(&login.user, Some(&login.password)),
            None => req,
        }
    }

    /// GETs `path`: the answer as the server sent it (what `-o json` prints).
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.request(Method::GET, path)).await
    }

    /// GETs `path`, read as the API's type `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        decode(&self.get(path).await?)
    }

    /// Sends a request; its answer read as the API's type `T`.
    pub async fn send_json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        decode(&self.send(req).await?)
    }

    /// Sends a request and returns the JSON answer as the server sent it, or the API's error
    /// message.
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
                    message: self.refused_because(status, message),
                    status: status.as_u16(),
                    code,
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

    /// A 401 to credentials the user did not type names where they came from and what to do.
    fn refused_because(&self, status: reqwest::StatusCode, message: String) -> String {
        if status != reqwest::StatusCode::UNAUTHORIZED {
            return message;
        }
        match &self.login {
            Some((login, Source::Environment)) => format!(
                "{message} (user {} from SHIPSHAPE_USERNAME and SHIPSHAPE_PASSWORD)",
                login.user
            ),
            Some((login, Source::File(path))) => format!(
                "{message} (user {}, stored for {} in {}); log in again: shipshape login {}",
                login.user,
                self.host(),
                path.display(),
                self.host()
            ),
            Some((_, Source::Given)) | None => message,
        }
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

/// An answer read as the API's type `T`. One of another shape is an unexpected answer, as one
/// that is not JSON is; `-o json` prints answers without reading them, so it shows what came.
pub fn decode<T: DeserializeOwned>(v: &Value) -> Result<T> {
    T::deserialize(v).map_err(|e| {
        let name = std::any::type_name::<T>();
        let name = name.rsplit("::").next().unwrap_or(name);
        RemoteError::Protocol(format!("the answer is not a {name}: {e}"))
    })
}

/// An OCI error body as the CLI reads it. Not `model::ErrorBody`: the server's entries carry a
/// `detail` that schema leaves out, and a body from something in front of the registry may lack
/// a code or a message.
#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    code: Option<String>,
    message: Option<String>,
    #[serde(default)]
    detail: Value,
}

/// The code, message and detail of an OCI error body, or `None` when the body is not one.
fn api_error(body: &[u8]) -> Option<(String, String, Value)> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let first = parsed.errors.into_iter().next()?;
    let code = first.code.unwrap_or_else(|| "UNKNOWN".into());
    let message = match first.message {
        Some(m) if !m.is_empty() => m,
        _ => code.clone(),
    };
    Some((code, message, first.detail))
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
        let (code, message, detail) =
            api_error(br#"{"errors":[{"code":"DENIED","detail":{"protected":["v1"]}}]}"#).unwrap();
        assert_eq!((code.as_str(), message.as_str()), ("DENIED", "DENIED"));
        assert_eq!(detail, serde_json::json!({"protected": ["v1"]}));
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
