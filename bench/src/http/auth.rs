//! What access control costs a manifest read: the manifest-read benchmark's GET by tag (wrk,
//! the same connection counts and duration) on one Shipshape data directory, first with access
//! control off (anonymous), then, after a restart with `SHIPSHAPE_ADMIN_PASSWORD` (access
//! control on once the administrator exists), with Basic credentials on every request, with a
//! bearer token fetched once from `/auth/token`, and anonymously through a read binding for
//! anonymous callers. Shipshape only: Distribution has no counterpart here.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::client::Client;
use super::images;
use super::{Bench, Result, load_average, wrk};
use crate::report::Better;
use crate::servers::{Kind, Server};

/// The section's name in the table.
pub const SECTION: &str = "manifest GET by tag, access control (wrk)";
const ADMIN: (&str, &str) = ("bench-admin", "bench-admin-password");
const READER: (&str, &str) = ("bench-reader", "bench-reader-password");
const REPO: &str = "bench/app";
/// The access-control ways, in the order of the table; the first is the baseline.
const WAYS: [&str; 4] = [
    "anonymous, access control off",
    "Basic on every request",
    "bearer token (fetched once)",
    "anonymous, access control on (anonymous read binding)",
];

/// The headers wrk sends: the manifest-read benchmark's `Accept`, and the way's
/// `Authorization` when it has one.
fn headers(accept: &str, authorization: Option<&str>) -> Vec<String> {
    let mut h = vec![accept.to_string()];
    if let Some(a) = authorization {
        h.push(format!("Authorization: {a}"));
    }
    h
}

/// Runs the section: `plan.repeat` rounds, each on a fresh data directory.
pub(super) async fn run(b: &mut Bench) -> Result<()> {
    for rep in 0..b.plan.repeat {
        round(b, rep).await?;
    }
    let baseline: Vec<(String, f64)> = b
        .table
        .figures
        .iter()
        .filter(|f| f.section == SECTION && f.name.starts_with(WAYS[0]))
        .map(|f| (f.name.replacen(WAYS[0], "", 1), f.shipshape.median()))
        .collect();
    for f in &mut b.table.figures {
        if f.section != SECTION || f.name.starts_with(WAYS[0]) {
            continue;
        }
        let Some(way) = WAYS[1..].iter().find(|w| f.name.starts_with(**w)) else {
            continue;
        };
        let rest = f.name.replacen(way, "", 1);
        if let Some((_, base)) = baseline.iter().find(|(r, _)| *r == rest) {
            f.note = format!(
                "{:.0}% of anonymous with access control off",
                100.0 * f.shipshape.median() / base
            );
        }
    }
    Ok(())
}

async fn round(b: &mut Bench, rep: usize) -> Result<()> {
    b.seq += 1;
    let dir = b.setup.work.join(format!("auth-{}", b.seq));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let accept = format!("Accept: {}", images::MANIFEST_TYPE);

    // Access control off: no user yet. The image goes in anonymously.
    eprintln!("access control {rep}: off");
    let server = Server::shipshape(&b.setup.shipshape_bin, &dir, &[])?;
    Client::new(&server.base)
        .push_image(REPO, "v1", &b.app, super::Upload::Monolithic, false)
        .await?;
    let url = format!("{}/v2/{REPO}/manifests/v1", server.base);
    probe(&url, &accept, None, StatusCode::OK).await?;
    measure(b, &server, WAYS[0], &headers(&accept, None)).await?;
    server.stop();

    // The same data directory, restarted with the first administrator: access control on.
    eprintln!("access control {rep}: on");
    let server = Server::shipshape_with_env(
        &b.setup.shipshape_bin,
        &dir,
        &[],
        &[
            ("SHIPSHAPE_ADMIN_USER", ADMIN.0),
            ("SHIPSHAPE_ADMIN_PASSWORD", ADMIN.1),
        ],
    )?;
    // A new process, so a new port.
    let url = format!("{}/v2/{REPO}/manifests/v1", server.base);
    probe(&url, &accept, None, StatusCode::UNAUTHORIZED).await?;
    let http = reqwest::Client::new();
    for (path, body) in [
        (
            "/api/v1/users",
            json!({"name": READER.0, "password": READER.1}),
        ),
        (
            "/api/v1/roles",
            json!({"subject": format!("user:{}", READER.0), "pattern": "bench/**", "role": "read"}),
        ),
    ] {
        let resp = http
            .post(format!("{}{path}", server.base))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .json(&body)
            .send()
            .await?;
        if !resp.status().is_success() {
            let status = resp.status();
            return Err(format!("POST {path}: {status} {}", resp.text().await?).into());
        }
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", READER.0, READER.1))
    );
    // The first requests after a start find no verified password: each verifies it (argon2)
    // on its own until one has been remembered. Measured once, as its own figures.
    cold_basic(b, &server, &accept, &basic).await?;
    probe(&url, &accept, Some(&basic), StatusCode::OK).await?;
    let token: Value = http
        .get(format!("{}/auth/token", server.base))
        .query(&[
            ("service", "shipshape"),
            ("scope", &format!("repository:{REPO}:pull")),
        ])
        .basic_auth(READER.0, Some(READER.1))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let bearer = format!(
        "Bearer {}",
        token["token"]
            .as_str()
            .ok_or("the token endpoint gave no token")?
    );
    probe(&url, &accept, Some(&bearer), StatusCode::OK).await?;
    // Basic and bearer alternate which goes first; a token lives 300 s, longer than both.
    let mut authenticated = [(WAYS[1], basic), (WAYS[2], bearer)];
    if rep % 2 == 1 {
        authenticated.reverse();
    }
    for (way, authorization) in &authenticated {
        eprintln!("access control {rep}: {way}");
        measure(b, &server, way, &headers(&accept, Some(authorization))).await?;
    }

    // Anonymous again, now through a binding: what access control costs without credentials.
    let resp = http
        .post(format!("{}/api/v1/roles", server.base))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .json(&json!({"subject": "anonymous", "pattern": "bench/**", "role": "read"}))
        .send()
        .await?;
    if !resp.status().is_success() {
        return Err(format!("anonymous binding: {}", resp.status()).into());
    }
    probe(&url, &accept, None, StatusCode::OK).await?;
    eprintln!("access control {rep}: {}", WAYS[3]);
    measure(b, &server, WAYS[3], &headers(&accept, None)).await?;
    eprintln!("access control {rep}: done, {}", load_average());
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// One GET with `authorization`, which must be answered `want`: the way measured is the way
/// meant (a wrong header would otherwise show up only as wrk's error count).
async fn probe(
    url: &str,
    accept: &str,
    authorization: Option<&str>,
    want: StatusCode,
) -> Result<()> {
    let (name, value) = accept.split_once(": ").ok_or("an Accept header")?;
    let mut req = reqwest::Client::new().get(url).header(name, value);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let got = req.send().await?.status();
    if got != want {
        return Err(format!("GET {url} with {authorization:?}: {got}, expected {want}").into());
    }
    Ok(())
}

/// The manifest-read benchmark's GET loop with `headers`, at each connection count.
async fn measure(b: &mut Bench, server: &Server, way: &str, headers: &[String]) -> Result<()> {
    let url = format!("{}/v2/{REPO}/manifests/v1", server.base);
    let h: Vec<&str> = headers.iter().map(String::as_str).collect();
    // Warms connections, caches and the allocator before anything is recorded, as the
    // manifest-read benchmark does.
    wrk::run(&url, 16, Duration::from_secs(1), &h)?;
    for &c in &b.plan.connections {
        let cpu = server.cpu_seconds();
        let r = wrk::run(&url, c, b.plan.wrk_duration, &h)?;
        // The server's CPU per request: what access control adds to each read, steadier than
        // the rate on a machine whose speed moves from one run to the next.
        let requests = r.requests_per_sec * b.plan.wrk_duration.as_secs_f64();
        let cpu_us = (server.cpu_seconds() - cpu) * 1e6 / requests.max(1.0);
        if r.errors > 0 {
            return Err(format!("{way} at {c} connections: {} errors", r.errors).into());
        }
        for (what, unit, better, value) in [
            ("requests/s", "req/s", Better::Higher, r.requests_per_sec),
            ("p50", "ms", Better::Lower, r.p50_ms),
            ("p99", "ms", Better::Lower, r.p99_ms),
            ("server CPU per request", "µs", Better::Lower, cpu_us),
        ] {
            b.table.sample(
                SECTION,
                &format!("{way}, {c} conn.: {what}"),
                unit,
                better,
                Kind::Shipshape,
                value,
            );
        }
    }
    Ok(())
}

/// The first two seconds of Basic requests at the most connections, right after a start:
/// every request in flight before the first verification is remembered verifies the password
/// itself. Its rate, p99 and the server's peak memory over it.
async fn cold_basic(b: &mut Bench, server: &Server, accept: &str, basic: &str) -> Result<()> {
    let c = b.plan.connections.iter().copied().max().unwrap_or(64);
    let url = format!("{}/v2/{REPO}/manifests/v1", server.base);
    let auth = format!("Authorization: {basic}");
    server.reset_peak_rss();
    let before = server.rss_mib();
    let started = Instant::now();
    let r = wrk::run(&url, c, Duration::from_secs(2), &[accept, &auth])?;
    eprintln!(
        "access control: cold Basic burst took {:.1} s, {} errors",
        started.elapsed().as_secs_f64(),
        r.errors
    );
    let name = format!("Basic, first 2 s after a start, {c} conn.");
    for (what, unit, better, value) in [
        ("requests/s", "req/s", Better::Higher, r.requests_per_sec),
        ("p99", "ms", Better::Lower, r.p99_ms),
        ("server RSS before", "MiB", Better::Lower, before),
        (
            "server peak RSS",
            "MiB",
            Better::Lower,
            server.peak_rss_mib(),
        ),
    ] {
        b.table.sample(
            SECTION,
            &format!("{name}: {what}"),
            unit,
            better,
            Kind::Shipshape,
            value,
        );
    }
    Ok(())
}
