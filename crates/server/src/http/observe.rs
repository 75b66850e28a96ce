//! What every HTTP request leaves for the operator: a request id (the client's `X-Request-Id`
//! when it is sane, else a fresh one; always sent back), one log line (target
//! `shipshape::request`) and its figures in the HTTP metrics. Both are written when the response
//! body has been sent or abandoned, not when the handler returns, so a blob download's duration
//! and bytes are what the client got.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};

use super::AppState;

/// The header a request id travels in, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client; a longer one is replaced, as is one with
/// anything but visible ASCII (so no id can break a log line or smuggle a header).
const MAX_REQUEST_ID: usize = 128;

/// The request's id, in the request's extensions for whatever wants to name it.
#[derive(Clone, Debug)]
pub struct RequestId(pub Arc<str>);

/// The authenticated caller's name, which the authentication layer leaves on the response for
/// the request's line (the request's own extensions are gone by then).
#[derive(Clone, Debug)]
pub(crate) struct Actor(pub String);

/// Latency buckets, in seconds: from a cached manifest read to a large blob's transfer.
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// One series of the HTTP metrics: a route, a method and a status.
#[derive(Debug, Default)]
pub struct Series {
    pub requests: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Requests at or under each of `BUCKETS` (not yet cumulative).
    pub buckets: [AtomicU64; BUCKETS.len()],
    pub micros: AtomicU64,
}

/// A series' labels: route template, method, status.
pub type Labels = (String, &'static str, u16);

/// The HTTP metrics, by (route template, method, status).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    series: RwLock<HashMap<Labels, Arc<Series>>>,
    /// Requests whose response has not finished yet.
    pub in_flight: AtomicI64,
}

impl HttpMetrics {
    fn series(&self, route: &str, method: &'static str, status: u16) -> Arc<Series> {
        let key = (route.to_string(), method, status);
        if let Some(s) = self.series.read().expect("http metrics").get(&key) {
            return s.clone();
        }
        self.series
            .write()
            .expect("http metrics")
            .entry(key)
            .or_default()
            .clone()
    }

    fn record(&self, done: &Done, took: Duration, bytes_out: u64) {
        let s = self.series(&done.route, done.method, done.status.as_u16());
        s.requests.fetch_add(1, Ordering::Relaxed);
        s.bytes_in
            .fetch_add(done.received.load(Ordering::Relaxed), Ordering::Relaxed);
        s.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
        s.micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            s.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every series, sorted by its labels.
    pub fn snapshot(&self) -> Vec<(Labels, Arc<Series>)> {
        let mut all: Vec<_> = self
            .series
            .read()
            .expect("http metrics")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// A method as a label: the ones the API has, else `other` (a client's invented methods must
/// not each make a series).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The route template: axum's matched route, or for the catch-all routes of names with
/// slashes (`/v2/…`, `/api/v1/repositories/…`) the endpoint's; `unmatched` for a path no route
/// serves, so that scanners probing random paths add no series.
fn route_of(req: &Request) -> String {
    match req.extensions().get::<MatchedPath>() {
        Some(m) if m.as_str().starts_with("/v2") => super::path::template(req.uri().path()).into(),
        Some(m) if m.as_str() == "/api/v1/repositories/{*rest}" => {
            crate::api::repository_template(req.uri().path(), req.method()).into()
        }
        Some(m) => m.as_str().to_string(),
        None => "unmatched".into(),
    }
}

fn sane_request_id(v: &HeaderValue) -> Option<&str> {
    let b = v.as_bytes();
    let ok =
        !b.is_empty() && b.len() <= MAX_REQUEST_ID && b.iter().all(|c| (0x21..=0x7e).contains(c));
    ok.then(|| v.to_str().ok()).flatten()
}

/// A header's value for the log, cut to a bounded length.
fn header_text(req: &Request, name: HeaderName) -> Option<String> {
    let v = req.headers().get(name)?.to_str().ok()?;
    Some(v.chars().take(256).collect())
}

/// The middleware, outermost: ids the request, counts its body, and leaves the line and the
/// figures to the response body's end.
pub(crate) async fn observe(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id: Arc<str> = match req.headers().get(&REQUEST_ID).and_then(sane_request_id) {
        Some(id) => id.into(),
        None => uuid::Uuid::new_v4().simple().to_string().into(),
    };
    let received = Arc::new(AtomicU64::new(0));
    let done = Done {
        metrics: app.metrics.clone(),
        route: route_of(&req),
        method: method_label(req.method()),
        method_sent: req.method().as_str().chars().take(32).collect(),
        // The path without the query string, which can carry what belongs to no log.
        path: req.uri().path().chars().take(1024).collect(),
        status: StatusCode::OK,
        request_id: id.clone(),
        actor: None,
        length: None,
        source: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        user_agent: header_text(&req, header::USER_AGENT),
        started,
        received: received.clone(),
    };
    let (parts, body) = req.into_parts();
    let mut req = Request::from_parts(
        parts,
        Body::new(Counted {
            inner: body,
            count: received,
        }),
    );
    req.extensions_mut().insert(RequestId(id.clone()));
    app.metrics.http.in_flight.fetch_add(1, Ordering::Relaxed);
    // Whatever the request logs on its way (an internal error's cause) names its id; at
    // error level, so that it is there whenever errors are logged.
    let span = tracing::error_span!("request", request_id = %id);
    let mut resp = tracing::Instrument::instrument(next.run(req), span).await;
    resp.headers_mut().insert(
        REQUEST_ID,
        HeaderValue::from_str(&id).expect("a request id is visible ASCII"),
    );
    // What "the whole body was sent" means: hyper stops polling a body once its announced
    // length is out (and never polls a HEAD's), so its end is not always seen.
    let length = resp.body().size_hint().exact().or_else(|| {
        resp.headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
    });
    let done = Done {
        status: resp.status(),
        actor: resp.extensions().get::<Actor>().map(|a| a.0.clone()),
        length: if done.method == "HEAD" {
            Some(0)
        } else {
            length
        },
        ..done
    };
    resp.map(|body| {
        Body::new(Finishing {
            inner: body,
            sent: 0,
            done: Some(done),
        })
    })
}

/// A request body that counts what it yields.
struct Counted {
    inner: Body,
    count: Arc<AtomicU64>,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What the request's line and metrics need once its response has ended.
struct Done {
    metrics: Arc<super::metrics::Telemetry>,
    route: String,
    /// The method as a metrics label (`other` for one the API does not have).
    method: &'static str,
    /// The method as the client sent it, for the log.
    method_sent: String,
    path: String,
    status: StatusCode,
    request_id: Arc<str>,
    actor: Option<String>,
    source: Option<String>,
    user_agent: Option<String>,
    started: Instant,
    received: Arc<AtomicU64>,
    /// The response body's announced length, when it has one (0 for a HEAD).
    length: Option<u64>,
}

impl Done {
    /// Logs the request and counts it. `complete`: the whole response body was sent.
    fn finish(self, bytes_out: u64, complete: bool) {
        let took = self.started.elapsed();
        let m = &self.metrics.http;
        m.in_flight.fetch_sub(1, Ordering::Relaxed);
        m.record(&self, took, bytes_out);
        let status = self.status.as_u16();
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(
                    target: "shipshape::request",
                    $level,
                    method = %self.method_sent,
                    route = %self.route,
                    path = %self.path,
                    status,
                    bytes_in = self.received.load(Ordering::Relaxed),
                    bytes_out,
                    duration_ms = took.as_micros() as f64 / 1e3,
                    actor = self
                        .actor
                        .as_deref()
                        .unwrap_or(shipshape_meta::principal::ANONYMOUS_NAME),
                    request_id = %self.request_id,
                    source = self.source.as_deref(),
                    user_agent = self.user_agent.as_deref(),
                    aborted = (!complete).then_some(true),
                    "{} {} {}",
                    self.method_sent,
                    self.route,
                    status
                )
            };
        }
        // Probes and scrapes come every few seconds: a successful one is not news.
        let probe = matches!(self.route.as_str(), "/healthz" | "/readyz" | "/metrics");
        if status >= 500 {
            line!(tracing::Level::WARN);
        } else if probe && status < 300 {
            line!(tracing::Level::DEBUG);
        } else {
            line!(tracing::Level::INFO);
        }
    }
}

/// A response body that logs and counts its request when it ends, or when it is dropped
/// before (the client went away, or the server cut the connection off).
struct Finishing {
    inner: Body,
    sent: u64,
    done: Option<Done>,
}

impl http_body::Body for Finishing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
            }
            Poll::Ready(None) => {
                if let Some(done) = self.done.take() {
                    done.finish(self.sent, true);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(done) = self.done.take() {
                    done.finish(self.sent, false);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Finishing {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let complete =
                self.inner.is_end_stream() || done.length.is_some_and(|n| self.sent >= n);
            done.finish(self.sent, complete);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounded_visible_ids_are_taken_from_clients() {
        let take = |v: &[u8]| {
            HeaderValue::from_bytes(v)
                .ok()
                .and_then(|h| sane_request_id(&h).map(str::to_string))
        };
        assert_eq!(take(b"abc-123_x.y:z").as_deref(), Some("abc-123_x.y:z"));
        assert_eq!(take(b""), None);
        assert_eq!(take(b"has space"), None);
        assert_eq!(take(b"tab\there"), None);
        assert_eq!(take("caf\u{e9}".as_bytes()), None);
        assert_eq!(
            take(&[b'a'; MAX_REQUEST_ID]).map(|s| s.len()),
            Some(MAX_REQUEST_ID)
        );
        assert_eq!(take(&[b'a'; MAX_REQUEST_ID + 1]), None);
    }
}
