//! Hostile and broken clients meet the server's limits (`[limits]`): a client that sends half
//! a header, stalls an upload's body, stops reading a response, sends an oversized header or
//! opens more connections than allowed loses its connection (or is refused), and the server
//! keeps serving everyone else. A stalled upload's session keeps what it had, and is resumed.
//!
//! Each test shortens only the limit it is about; none measures time: they wait for outcomes
//! (a connection closed, a slot freed) with `wait_until` and `PATIENCE` as the only bound.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const REPO: &str = "limits/app";

/// A short limit: long enough for any honest client of these tests, short enough to wait for.
const SHORT: Duration = Duration::from_millis(500);

async fn connect(s: &TestServer) -> TcpStream {
    TcpStream::connect(s.host()).await.expect("connect")
}

/// Reads until the server closes the connection (EOF or reset); returns what arrived. Fails
/// the test if the server keeps the connection open past `PATIENCE`.
async fn read_until_closed(tcp: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let reading = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, reading)
        .await
        .unwrap_or_else(|_| panic!("the server kept {what} open for {PATIENCE:?}"));
    got
}

/// Sends a GET of `/healthz` on a kept-alive connection and reads its whole answer.
async fn health_on(tcp: &mut TcpStream) {
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: registry\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"ok\n") {
        let n = tokio::time::timeout(PATIENCE, tcp.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        assert!(n > 0, "the connection closed before its answer");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
}

/// The status of a GET of `/healthz` from a fresh client.
async fn health(s: &TestServer) -> StatusCode {
    client()
        .get(s.url("/healthz"))
        .send()
        .await
        .expect("an answer")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_half_a_header_is_disconnected() {
    let s = TestServer::start_with(|c| c.limits.header_timeout = SHORT).await;
    let mut slow = connect(&s).await;
    slow.write_all(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\nUser-Agent: slo")
        .await
        .unwrap();
    let answer = read_until_closed(&mut slow, "a connection with half a header").await;
    assert!(answer.is_empty(), "no answer to half a header: {answer:?}");
    // A connection that sends nothing at all is held to the same limit.
    let mut silent = connect(&s).await;
    read_until_closed(&mut silent, "a silent connection").await;
    assert_eq!(health(&s).await, StatusCode::OK, "the server still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let s = TestServer::start_with(|c| {
        c.limits.idle_timeout = SHORT;
        c.limits.header_timeout = PATIENCE * 2;
    })
    .await;
    let mut idle = connect(&s).await;
    health_on(&mut idle).await;
    // The header timeout is longer than the test's patience: only the idle timeout closes it.
    read_until_closed(&mut idle, "an idle kept-alive connection").await;
    assert_eq!(health(&s).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_refused_until_others_close() {
    let s = TestServer::start_with(|c| c.limits.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = connect(&s).await;
        health_on(&mut tcp).await; // accepted and served, and kept alive
        held.push(tcp);
    }
    let mut over = connect(&s).await;
    over.write_all(b"GET /healthz HTTP/1.1\r\nHost: registry\r\n\r\n")
        .await
        .unwrap();
    let answer =
        String::from_utf8(read_until_closed(&mut over, "a connection over the limit").await)
            .expect("a text answer");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    assert!(answer.contains("UNAVAILABLE"), "{answer}");
    assert!(answer.contains("max_connections"), "{answer}");
    let resp = client().get(s.url("/v2/")).send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "and for a real client"
    );

    // The held connections are still served, and /metrics counts them and the refusals.
    health_on(&mut held[0]).await;
    held[0]
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let scraped = String::from_utf8(read_until_closed(&mut held[0], "the metrics").await).unwrap();
    let value = |name: &str| -> u64 {
        scraped
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {scraped}"))
    };
    assert_eq!(value("shipshape_connections_open"), 3);
    assert!(
        value("shipshape_connections_refused_total") >= 2,
        "{scraped}"
    );
    // One closes: its slot serves the next client.
    drop(held.pop());
    wait_until("a slot to free once a connection closed", || async {
        (health(&s).await == StatusCode::OK).then_some(())
    })
    .await;
    health_on(&mut held[1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_dropped_and_its_session_resumes() {
    let s = TestServer::start_with(|c| c.limits.body_timeout = SHORT).await;
    let c = client();
    let blob = random_bytes(300_000, 21);
    let r = c
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = header(&r, "location").unwrap().to_string();
    let r = c
        .patch(s.url(&loc))
        .header("content-range", "0-99999")
        .body(blob[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    // The next chunk: half of it, then nothing.
    let mut stalled = connect(&s).await;
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: registry\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 100000\r\nContent-Range: 100000-199999\r\n\r\n"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&blob[100_000..150_000]).await.unwrap();
    let answer = String::from_utf8_lossy(
        &read_until_closed(&mut stalled, "a stalled upload's connection").await,
    )
    .to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");

    // The session has what it had before the stalled request, and resumes from there.
    let r = c.get(s.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), Some("0-99999"));
    let r = c
        .patch(s.url(&loc))
        .header("content-range", "100000-199999")
        .body(blob[100_000..200_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), Some("0-199999"));
    let r = c
        .put(s.url(&format!("{loc}?digest={}", sha256(&blob))))
        .header("content-range", "200000-299999")
        .body(blob[200_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = c
        .get(s.url(&format!("/v2/{REPO}/blobs/{}", sha256(&blob))))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(sha256(&got.bytes().await.unwrap()), sha256(&blob));
    assert!(s.upload_objects().await.is_empty(), "no upload object left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_a_response_is_dropped() {
    // One connection at a time: while the reader that stopped holds it, everyone else is
    // refused; once the body timeout drops it, the next client is served.
    let s = TestServer::start_with(|c| {
        c.limits.body_timeout = SHORT;
        c.limits.max_connections = 1;
    })
    .await;
    // Larger than what the loopback's socket buffers hold, so the server's writes must wait.
    let blob = random_bytes(48 << 20, 22);
    let digest = push_blob(&client(), &s.base, REPO, &blob).await;
    let get = format!("GET /v2/{REPO}/blobs/{digest} HTTP/1.1\r\nHost: registry\r\n\r\n");
    let get = get.as_bytes();
    let host = &s.host();
    // The pushing client's connection may hold the one slot a moment longer.
    let mut reader = wait_until("the slot for the reader", || async move {
        let mut tcp = TcpStream::connect(host).await.ok()?;
        tcp.write_all(get).await.ok()?;
        let mut first = [0u8; 12];
        tcp.read_exact(&mut first).await.ok()?;
        (&first == b"HTTP/1.1 200").then_some(tcp)
    })
    .await;
    // It reads nothing more.
    wait_until("the stalled reader's connection to be dropped", || async {
        (health(&s).await == StatusCode::OK).then_some(())
    })
    .await;
    let rest = read_until_closed(&mut reader, "a connection whose reader stopped").await;
    assert!(
        rest.len() < blob.len(),
        "the connection was closed before the blob was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_header_is_refused_with_431() {
    let s = TestServer::start_with(|c| c.limits.max_header_bytes = 16 * 1024).await;
    let c = client();
    let r = c
        .get(s.url("/v2/"))
        .header("x-padding", "a".repeat(10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "a header under the limit");
    let r = c
        .get(s.url("/v2/"))
        .header("x-padding", "a".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(health(&s).await, StatusCode::OK, "the server still serves");
}
