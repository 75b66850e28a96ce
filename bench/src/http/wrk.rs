//! Request rates and latency percentiles from wrk (Debian's package), parsed from its
//! `--latency` output.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What one wrk run measured.
#[derive(Clone, Debug, Default)]
pub struct WrkResult {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Non-2xx/3xx answers plus socket errors: a run with any is not a clean figure.
    pub errors: u64,
}

/// Runs wrk against `url` with `connections` connections for `duration`, with extra headers.
pub fn run(
    url: &str,
    connections: u32,
    duration: Duration,
    headers: &[&str],
) -> std::io::Result<WrkResult> {
    // Two threads match the two cores.
    wrk(url, 2, connections, duration, headers, None)
}

/// Runs wrk with `--latency` (at most one thread per connection, which wrk needs) and an
/// optional Lua script, and reads its figures.
fn wrk(
    url: &str,
    threads: u32,
    connections: u32,
    duration: Duration,
    headers: &[&str],
    script: Option<&Path>,
) -> std::io::Result<WrkResult> {
    let mut cmd = Command::new("wrk");
    cmd.arg("--latency")
        .args(["-t", &threads.min(connections).to_string()])
        .args(["-c", &connections.to_string()])
        .args(["-d", &format!("{}s", duration.as_secs().max(1))])
        .args(["--timeout", "10s"]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    parse(&text).ok_or_else(|| std::io::Error::other(format!("cannot read wrk output:\n{text}")))
}

/// Runs wrk with `threads` threads and `connections` connections for `duration` on `path` of
/// several servers on 127.0.0.1 (`ports`): a Lua `setup` points thread *i* at port *i* mod
/// the number of ports, so the connections are spread round-robin over the servers (wrk's
/// connections are split evenly between its threads). The `Host` header stays the first
/// server's.
pub fn run_spread(
    ports: &[u16],
    path: &str,
    threads: u32,
    connections: u32,
    duration: Duration,
    headers: &[&str],
) -> std::io::Result<WrkResult> {
    let list = ports
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let script = format!(
        "local ports = {{{list}}}\n\
         local n = 0\n\
         function setup(thread)\n  \
           n = n + 1\n  \
           thread.addr = wrk.lookup(\"127.0.0.1\", ports[((n - 1) % #ports) + 1])[1]\n\
         end\n"
    );
    let file = tempfile::Builder::new().suffix(".lua").tempfile()?;
    std::fs::write(file.path(), script)?;
    let url = format!(
        "http://127.0.0.1:{}{path}",
        ports.first().copied().unwrap_or(0)
    );
    wrk(
        &url,
        threads,
        connections,
        duration,
        headers,
        Some(file.path()),
    )
}

fn millis(s: &str) -> Option<f64> {
    let (num, factor) = if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|v| v * factor)
}

fn parse(text: &str) -> Option<WrkResult> {
    let mut r = WrkResult::default();
    let (mut p50, mut p99, mut rps) = (None, None, None);
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => p50 = millis(v),
            ["99%", v] => p99 = millis(v),
            ["Requests/sec:", v] => rps = v.parse().ok(),
            ["Non-2xx", "or", "3xx", "responses:", n] => r.errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                r.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    r.p50_ms = p50?;
    r.p99_ms = p99?;
    r.requests_per_sec = rps?;
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rates_percentiles_and_errors() {
        let out = "Running 5s test @ http://127.0.0.1:1/v2/x/manifests/v1
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   612.00us  101.00us   3.10ms   80.00%
    Req/Sec    12.00k     1.00k   14.00k    70.00%
  Latency Distribution
     50%  590.00us
     75%  650.00us
     90%  720.00us
     99%    1.20ms
  120000 requests in 5.00s, 80.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  24000.50
Transfer/sec:     16.00MB
";
        let r = parse(out).unwrap();
        assert_eq!(r.requests_per_sec, 24000.5);
        assert!((r.p50_ms - 0.59).abs() < 1e-9);
        assert!((r.p99_ms - 1.2).abs() < 1e-9);
        assert_eq!(r.errors, 7);
        assert_eq!(millis("1.50s"), Some(1500.0));
    }
}
