//! A small closed-loop load generator for HEAD requests, because wrk 4.1 (Debian's) waits for
//! a body after a HEAD answer that carries the GET's Content-Length and so never completes one.
//! Like wrk: N keep-alive connections, each sending its next request when the answer arrives,
//! for a fixed time; every request's latency is kept for the percentiles.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wrk::WrkResult;

/// Runs HEAD `path` on `host` (`127.0.0.1:PORT`) over `connections` connections.
pub async fn run(
    host: &str,
    path: &str,
    headers: &[&str],
    connections: u32,
    duration: Duration,
) -> std::io::Result<WrkResult> {
    let mut request = format!("HEAD {path} HTTP/1.1\r\nHost: {host}\r\n");
    for h in headers {
        request += &format!("{h}\r\n");
    }
    request += "\r\n";
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (host, request) = (host.to_string(), request.clone());
        tasks.push(tokio::spawn(async move {
            connection(&host, request.as_bytes(), deadline).await
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.map_err(std::io::Error::other)??;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1000.0
    };
    Ok(WrkResult {
        requests_per_sec: latencies.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    })
}

/// One connection's loop: latencies in microseconds, and answers other than 200.
async fn connection(
    host: &str,
    request: &[u8],
    deadline: Instant,
) -> std::io::Result<(Vec<u32>, u64)> {
    let mut stream = TcpStream::connect(host).await?;
    stream.set_nodelay(true)?;
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = 0;
    let mut buf = vec![0u8; 16 * 1024];
    while Instant::now() < deadline {
        let t0 = Instant::now();
        stream.write_all(request).await?;
        let mut filled = 0;
        // A HEAD answer is headers only: it ends at the first empty line.
        loop {
            let n = stream.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err(std::io::Error::other("the server closed the connection"));
            }
            let from = filled.saturating_sub(3);
            filled += n;
            if buf[from..filled].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
            if filled == buf.len() {
                return Err(std::io::Error::other("answer headers larger than 16 KiB"));
            }
        }
        if !buf.starts_with(b"HTTP/1.1 200") {
            errors += 1;
        }
        latencies.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
    Ok((latencies, errors))
}
