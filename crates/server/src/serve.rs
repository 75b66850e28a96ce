//! Serving connections: the accept loop, one task per connection, the [`Limits`] a client is
//! held to (header, idle and body timeouts, the number of connections, the size of request
//! headers), and the graceful shutdown `Server::shutdown` asks for.
//!
//! Why not `axum::serve`: it takes no settings for hyper's connections and bounds nothing, so a
//! client that sends half a header, or stops sending an upload's body, holds its connection for
//! ever. hyper-util's `auto::Builder` is what `axum::serve` runs inside; here it is given the
//! settings, and each connection runs beside a watchdog that closes it when a limit passes.
//!
//! The timeouts are measured here rather than by hyper's own `header_read_timeout`, because
//! hyper starts that one when a connection begins waiting for a request, so for HTTP/1.1 it
//! would also be the idle timeout, and a client's pool (Go's keeps idle connections 90 s)
//! would find its connections closed under it. Here, a connection is:
//! - *waiting for a header* from its first byte (or from its accept) until hyper hands the
//!   request to the router: `header_timeout` bounds that;
//! - *busy* while a request is in flight, until its response's body has been sent: a request
//!   body that yields nothing for `body_timeout` while the handler waits for it fails (its
//!   answer is then 408 and the connection closes), and so does a response the client takes
//!   nothing of for `body_timeout`;
//! - *idle* otherwise: `idle_timeout` bounds that.
//!
//! HTTP/2 connections (recognised by their preface) have no header phase: they are busy while
//! a stream is open and idle otherwise.

use std::convert::Infallible;
use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

use crate::tls::Tls;

/// What a client may hold of the server, and for how long. A zero duration is no limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A request's header (request line and fields) must be complete this long after its first
    /// byte, or after the connection was accepted; otherwise the connection is closed.
    pub header_timeout: Duration,
    /// A connection with no request in flight is closed after this long.
    pub idle_timeout: Duration,
    /// A request whose body sends no byte for this long while the server waits for it is
    /// dropped (answered 408, connection closed); so is a connection whose client takes no
    /// byte of a response for this long. An upload session keeps what it had before.
    pub body_timeout: Duration,
    /// Connections served at once (TLS handshakes included); 0: no limit. Over it, a plain
    /// HTTP connection is answered 503 `UNAVAILABLE` and closed, an HTTPS one closed.
    pub max_connections: usize,
    /// The largest request header, request line included, in bytes; larger ones get 431.
    /// At least [`MIN_HEADER_BYTES`] in effect.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            body_timeout: Duration::from_secs(120),
            max_connections: 1024,
            max_header_bytes: 64 * 1024,
        }
    }
}

/// Refusals (503 answers to connections over the limit) under way at once; beyond this, a
/// connection over the limit is closed without an answer, so refusing costs bounded resources.
const MAX_REFUSALS: usize = 64;

/// How long a refusal may take, its answer and the reading of what the client sent.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// How often, at most, refused connections are logged.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// The smallest read buffer hyper accepts, so the smallest `max_header_bytes` in effect.
pub const MIN_HEADER_BYTES: usize = 8192;

/// What the accept loop counts for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub open: AtomicU64,
    /// Refused because `max_connections` were open.
    pub refused: AtomicU64,
}

/// Accepts connections until `stop` fires, serving each in a task of its own; then stops
/// accepting, lets every connection finish what it is doing (idle ones close at once) for at
/// most `shutdown_timeout`, and closes those still open.
pub(crate) async fn run(
    listener: TcpListener,
    tls: Option<Tls>,
    app: Router,
    limits: Limits,
    shutdown_timeout: Duration,
    stop: oneshot::Receiver<()>,
    stats: Arc<crate::http::Telemetry>,
) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(match limits.max_connections {
        0 => Semaphore::MAX_PERMITS,
        n => n.min(Semaphore::MAX_PERMITS),
    }));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let mut last_refusal_logged: Option<Instant> = None;
    let (drain, draining) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = accept(&listener) => match accepted {
                Ok((tcp, peer)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let serving = connection(
                            tcp,
                            peer,
                            tls.clone(),
                            app.clone(),
                            limits.clone(),
                            draining.clone(),
                            slot,
                        );
                        let open = OpenConnection::count(stats.clone());
                        connections.spawn(async move {
                            serving.await;
                            drop(open);
                        });
                    }
                    Err(_) => {
                        stats.connections.refused.fetch_add(1, Ordering::Relaxed);
                        if last_refusal_logged.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY) {
                            last_refusal_logged = Some(Instant::now());
                            tracing::warn!(
                                %peer,
                                max_connections = limits.max_connections,
                                "connection refused: the server holds max_connections \
                                 connections (logged at most once a minute)"
                            );
                        }
                        refuse(tcp, tls.is_some(), &refusals);
                    }
                },
                Err(e) => accept_failed(e).await,
            },
            Some(_) = connections.join_next() => {}
        }
    }
    drop(listener);
    let _ = drain.send(true);
    let drained = tokio::time::timeout(shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            timeout = ?shutdown_timeout,
            "requests still in flight when the shutdown timeout passed; closing their connections"
        );
        connections.shutdown().await;
    }
}

/// Counts a connection as open until its task ends, however it ends.
struct OpenConnection(Arc<crate::http::Telemetry>);

impl OpenConnection {
    fn count(stats: Arc<crate::http::Telemetry>) -> Self {
        stats.connections.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(stats)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The next connection, with Nagle's algorithm off (see `crate::send_at_once`).
pub(crate) async fn accept(listener: &TcpListener) -> std::io::Result<(TcpStream, SocketAddr)> {
    let (tcp, peer) = listener.accept().await?;
    crate::send_at_once(&tcp);
    Ok((tcp, peer))
}

/// As axum's own listener does: a failed connection is skipped; anything else (out of file
/// descriptors, say) is logged and the next accept waits a second for things to improve.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The answer to a plain-HTTP connection over the limit.
const BUSY_BODY: &str = r#"{"errors":[{"code":"UNAVAILABLE","message":"the registry is serving its maximum number of connections (max_connections); retry shortly"}]}"#;

/// Answers a connection over the limit with 503 (plain HTTP; an HTTPS one is closed, since an
/// answer would need a handshake first), within bounds: at most `MAX_REFUSALS` at once, each
/// for at most `REFUSAL_TIMEOUT`.
fn refuse(mut tcp: TcpStream, tls: bool, refusals: &Arc<Semaphore>) {
    if tls {
        return;
    }
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let answer = async {
            // A client reads an answer only once it has sent its request (hyper's refuses an
            // answer that comes first): wait for the end of its header, up to a bound.
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 16 * 1024 {
                match tcp.read(&mut buf).await? {
                    0 => return Ok(()),
                    n => seen.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
                 Retry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{BUSY_BODY}",
                BUSY_BODY.len()
            );
            tcp.write_all(head.as_bytes()).await?;
            tcp.shutdown().await?;
            // Closing with the request's body unread would reset the connection before the
            // client reads the answer: read what it sends until it closes.
            while tcp.read(&mut buf).await? > 0 {}
            std::io::Result::Ok(())
        };
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, answer).await;
    });
}

/// One connection: its TLS handshake if any, then HTTP until the client closes, a limit
/// passes, or the shutdown ends it. Holds its `slot` of `max_connections` throughout.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<Tls>,
    app: Router,
    limits: Arc<Limits>,
    mut draining: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    match tls {
        None => serve_http(tcp, peer, app, limits, draining).await,
        Some(tls) => {
            let stream = tokio::select! {
                stream = tls.handshake(tcp, peer) => stream,
                _ = draining.wait_for(|d| *d) => None,
            };
            if let Some(stream) = stream {
                serve_http(stream, peer, app, limits, draining).await;
            }
        }
    }
}

/// Serves HTTP/1.1 or HTTP/2 on `io` beside the watchdog of its limits.
async fn serve_http<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: Arc<Limits>,
    mut draining: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        io,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        let body_timeout = limits.body_timeout;
        hyper::service::service_fn(move |req| {
            handle(app.clone(), req, peer, activity.clone(), body_timeout)
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper-util's builder has no `max_header_size`: the read buffer's bound is what refuses a
    // header that does not fit in it (431). It also bounds each read of a body (hyper's
    // default is ~400 KiB): 64 KiB reads cost a few more system calls per MiB received, which
    // the store's 1 MiB buffers absorb.
    builder
        .http1()
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    builder
        .http2()
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = draining.wait_for(|d| *d), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            why = activity.expired(&limits) => {
                tracing::debug!(%peer, "connection closed: {why}");
                return;
            }
        }
    }
}

/// One request: the peer's address for the handlers, the body timeout on the way in, and the
/// connection's activity until the response's body has been sent.
async fn handle(
    app: Router,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    activity: Arc<Activity>,
    body_timeout: Duration,
) -> Result<Response<Tracked>, Infallible> {
    let guard = InFlight::begin(activity);
    let timed_out = Arc::new(AtomicBool::new(false));
    req.extensions_mut().insert(ConnectInfo(peer));
    let req = req.map(|body| {
        axum::body::Body::new(TimedBody {
            inner: body,
            timeout: body_timeout,
            sleep: None,
            armed: false,
            timed_out: timed_out.clone(),
        })
    });
    let Ok(mut resp) = app.oneshot(req).await;
    if timed_out.load(Ordering::Relaxed) {
        // The handler answered its failure to read the body; what it is, is a timeout, and
        // the rest of the body will not be read, so the connection cannot carry another
        // request.
        *resp.status_mut() = StatusCode::REQUEST_TIMEOUT;
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(resp.map(|body| Tracked {
        inner: body,
        in_flight: Some(guard),
    }))
}

/// What a request body that sent nothing for the body timeout fails with.
#[derive(Debug)]
struct BodyTimeout(Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no data received for {} (the server's body_timeout); the request was dropped, \
             and an upload session keeps only what it had before it",
            humantime::format_duration(self.0)
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that fails with [`BodyTimeout`] when, while it is read, the client sends
/// nothing for `timeout`. The timer runs only while the handler waits for data.
struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
    timed_out: Arc<AtomicBool>,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending if this.timeout.is_zero() => Poll::Pending,
            Poll::Pending => {
                if !this.armed {
                    let deadline = Instant::now() + this.timeout;
                    match &mut this.sleep {
                        Some(sleep) => sleep.as_mut().reset(deadline),
                        None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                    this.armed = true;
                }
                let sleep = this.sleep.as_mut().expect("armed above");
                if sleep.as_mut().poll(cx).is_ready() {
                    this.timed_out.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Box::new(BodyTimeout(this.timeout)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request in flight until it has been sent (or dropped).
struct Tracked {
    inner: axum::body::Body,
    in_flight: Option<InFlight>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.in_flight = None;
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

/// A request in flight on a connection, from the router's call until its response is sent.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: Arc<Activity>) -> Self {
        activity.update(|s| {
            s.phase = match s.phase {
                Phase::Busy(n) => Phase::Busy(n + 1),
                Phase::Header(_) | Phase::Idle(_) => Phase::Busy(1),
            };
            true
        });
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|s| {
            s.phase = match s.phase {
                Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                _ => Phase::Idle(Instant::now()),
            };
            true
        });
    }
}

/// Where a connection stands, as its limits see it.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request's header since this instant (its first byte, or the accept).
    Header(Instant),
    /// This many requests in flight.
    Busy(usize),
    /// No request in flight since this instant.
    Idle(Instant),
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Whether any byte was read yet (the first ones tell HTTP/2 from HTTP/1).
    read_any: bool,
    http2: bool,
    /// Since when a write has been waiting for the client to take bytes.
    write_stalled: Option<Instant>,
}

/// A connection's activity, updated by its I/O and its requests and watched by its task.
#[derive(Debug)]
struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Activity {
            state: Mutex::new(State {
                phase: Phase::Header(Instant::now()),
                read_any: false,
                http2: false,
                write_stalled: None,
            }),
            changed: Notify::new(),
        }
    }

    /// Applies `change`; wakes the watchdog when it says the deadline may have moved.
    fn update(&self, change: impl FnOnce(&mut State) -> bool) {
        let wake = change(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        if wake {
            self.changed.notify_one();
        }
    }

    /// Bytes arrived: an idle HTTP/1 connection is now waiting for a header.
    fn received(&self, bytes: &[u8]) {
        self.update(|s| {
            if !s.read_any {
                s.read_any = true;
                s.http2 = bytes.starts_with(b"PRI ");
                if s.http2 {
                    s.phase = Phase::Idle(Instant::now());
                    return true;
                }
            }
            match s.phase {
                Phase::Idle(_) if !s.http2 => {
                    s.phase = Phase::Header(Instant::now());
                    true
                }
                _ => false,
            }
        });
    }

    /// A write went through (`false`) or must wait for the client (`true`).
    fn wrote(&self, waiting: bool) {
        self.update(|s| match (waiting, s.write_stalled) {
            (true, None) => {
                s.write_stalled = Some(Instant::now());
                true
            }
            (false, Some(_)) => {
                s.write_stalled = None;
                false
            }
            _ => false,
        });
    }

    /// The next instant a limit passes, and which.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, &'static str)> {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let after =
            |since: Instant, limit: Duration, why| (!limit.is_zero()).then(|| (since + limit, why));
        let phase = match s.phase {
            Phase::Header(since) => after(
                since,
                limits.header_timeout,
                "no complete request header within header_timeout",
            ),
            Phase::Idle(since) => after(since, limits.idle_timeout, "idle for idle_timeout"),
            Phase::Busy(_) => None,
        };
        let stalled = s.write_stalled.and_then(|since| {
            after(
                since,
                limits.body_timeout,
                "the client took no byte of the response for body_timeout",
            )
        });
        match (phase, stalled) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Resolves when a limit has passed, with which.
    async fn expired(&self, limits: &Limits) -> &'static str {
        loop {
            match self.deadline(limits) {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// A connection's I/O, reporting what moves to its [`Activity`].
struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
        {
            self.activity.received(&buf.filled()[before..]);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.activity.wrote(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.activity.wrote(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.activity.wrote(polled.is_pending());
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_do_not_wait_to_fill_segments() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = accept(&listener).await.unwrap();
        assert!(accepted.nodelay().unwrap());
    }

    #[tokio::test]
    async fn each_phase_has_its_limit() {
        let limits = Limits {
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(100),
            ..Limits::default()
        };
        const HEADER: &str = "no complete request header within header_timeout";
        const IDLE: &str = "idle for idle_timeout";
        const STALLED: &str = "the client took no byte of the response for body_timeout";
        let why = |a: &Activity| a.deadline(&limits).map(|(_, why)| why);
        let a = Arc::new(Activity::new());
        assert_eq!(why(&a), Some(HEADER), "a new connection");
        a.received(b"GET / HTTP/1.1\r\n\r\n");
        let busy = InFlight::begin(a.clone());
        assert_eq!(
            why(&a),
            None,
            "a request in flight has no deadline of its own"
        );
        let second = InFlight::begin(a.clone());
        a.wrote(true);
        assert_eq!(
            why(&a),
            Some(STALLED),
            "a response the client does not take"
        );
        a.wrote(false);
        drop(busy);
        assert_eq!(why(&a), None, "one request still in flight");
        drop(second);
        assert_eq!(why(&a), Some(IDLE));
        a.received(b"GET / HT");
        assert_eq!(why(&a), Some(HEADER), "half a header");
        let now = Limits {
            header_timeout: Duration::from_nanos(1),
            ..limits.clone()
        };
        assert_eq!(a.expired(&now).await, HEADER);

        let h2 = Activity::new();
        h2.received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        h2.received(b"more frames");
        assert_eq!(why(&h2), Some(IDLE), "HTTP/2 has no header phase");
    }
}
