//! `/metrics` in the Prometheus text format: HTTP requests (by route template, method and
//! status, with latencies and bytes), connections open and refused, upload sessions, storage
//! figures and filesystems, the collector's queues, runs and reclaimed bytes, policy runs,
//! the catalogue's waits and checkpoints, and requests refused because the storage was full or read-only. Every family
//! is listed in the README's "Metrics".

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use shipshape_meta::usage::Usage;

use super::AppState;
use super::observe::{BUCKETS, HttpMetrics};
use crate::registry::Registry;

/// What the server keeps for `/metrics` beyond what the services count themselves.
#[derive(Debug)]
pub struct Telemetry {
    pub http: HttpMetrics,
    /// Counted by the accept loop (`serve::run`), before any request is read.
    pub connections: crate::serve::ConnectionStats,
    /// How long storage figures are served before they are computed again.
    storage_refresh: Duration,
    usage: tokio::sync::Mutex<Option<(Instant, Usage)>>,
}

impl Telemetry {
    /// `storage_refresh`: the storage figures classify every blob and manifest (a query over
    /// the whole catalogue), so a scrape takes them again only once they are this old.
    pub fn new(storage_refresh: Duration) -> Self {
        Telemetry {
            http: HttpMetrics::default(),
            connections: crate::serve::ConnectionStats::default(),
            storage_refresh,
            usage: tokio::sync::Mutex::new(None),
        }
    }

    /// The storage figures and their age, computed again when older than `storage_refresh`
    /// (one scrape computes; others at the same time wait for it rather than compute too).
    async fn usage(&self, registry: &Registry) -> Option<(Usage, Duration)> {
        let mut cached = self.usage.lock().await;
        if let Some((at, u)) = &*cached
            && at.elapsed() < self.storage_refresh
        {
            return Some((u.clone(), at.elapsed()));
        }
        match registry.usage_total().await {
            Ok(u) => {
                *cached = Some((Instant::now(), u.clone()));
                Some((u, Duration::ZERO))
            }
            Err(e) => {
                tracing::warn!(error = %e, "computing the storage figures for /metrics failed");
                cached.as_ref().map(|(at, u)| (u.clone(), at.elapsed()))
            }
        }
    }
}

/// The text of one scrape.
#[derive(Default)]
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family with one sample per label set.
    fn metric(&mut self, name: &str, kind: &str, help: &str, samples: &[(&[(&str, &str)], u64)]) {
        self.family(name, kind, help);
        for (labels, v) in samples {
            self.sample(name, labels, v);
        }
    }
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}

pub async fn metrics(State(app): State<AppState>) -> Response {
    let Ok(depths) = app.collector.queue_depths().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "catalogue unavailable\n").into_response();
    };
    let mut out = Out::default();
    http(&mut out, &app.metrics.http);
    let c = &app.metrics.connections;
    out.metric(
        "shipshape_connections_open",
        "gauge",
        "Client connections open now (at most limits.max_connections).",
        &[(&[], c.open.load(Ordering::Relaxed))],
    );
    out.metric(
        "shipshape_connections_refused_total",
        "counter",
        "Connections refused because limits.max_connections were open (answered 503 UNAVAILABLE, \
         or closed when too many refusals were under way).",
        &[(&[], c.refused.load(Ordering::Relaxed))],
    );
    uploads(&mut out, &app).await;
    storage(&mut out, &app).await;
    let m = app.collector.metrics();
    out.metric(
        "shipshape_gc_queue_depth",
        "gauge",
        "Entries waiting in the collector's queues.",
        &[
            (&[("queue", "blob_reviews")], depths.blobs),
            (&[("queue", "manifest_reviews")], depths.manifests),
            (&[("queue", "storage_deletions")], depths.storage),
        ],
    );
    if let Ok(oldest) = app.registry.queue_oldest().await {
        let now = app.registry.now();
        let age = |at: Option<i64>| at.map_or(0.0, |at| (now - at).max(0) as f64 / 1e3);
        out.family(
            "shipshape_gc_queue_oldest_age_seconds",
            "gauge",
            "Age of the oldest entry of each collector queue (0 when empty). A review waits the \
             grace period (gc.review_delay) before it is due, so this sits near it when the \
             collector keeps up and grows past it when it does not.",
        );
        for (queue, at) in [
            ("blob_reviews", oldest.blobs),
            ("manifest_reviews", oldest.manifests),
            ("storage_deletions", oldest.storage),
        ] {
            out.sample(
                "shipshape_gc_queue_oldest_age_seconds",
                &[("queue", queue)],
                age(at),
            );
        }
    }
    out.metric(
        "shipshape_gc_objects_deleted_total",
        "counter",
        "Objects the collector (background passes and runs) deleted from the catalogue.",
        &[
            (
                &[("kind", "manifest")],
                m.manifests_deleted.load(Ordering::Relaxed),
            ),
            (&[("kind", "blob")], m.blobs_deleted.load(Ordering::Relaxed)),
        ],
    );
    out.metric(
        "shipshape_gc_bytes_reclaimed_total",
        "counter",
        "Bytes of blobs the collector reclaimed (background passes and runs).",
        &[(&[], m.bytes_reclaimed.load(Ordering::Relaxed))],
    );
    out.metric(
        "shipshape_gc_storage_objects_deleted_total",
        "counter",
        "Objects deleted from the blob store.",
        &[(&[], m.objects_deleted.load(Ordering::Relaxed))],
    );
    out.metric(
        "shipshape_gc_storage_errors_total",
        "counter",
        "Failed deletions of objects from the blob store (retried).",
        &[(&[], m.storage_errors.load(Ordering::Relaxed))],
    );
    out.family(
        "shipshape_gc_runs_total",
        "counter",
        "Garbage collection runs finished on this node, by state (succeeded, cancelled, failed) \
         and kind (real, dry).",
    );
    for (state, kind, n) in m.runs.get() {
        out.sample(
            "shipshape_gc_runs_total",
            &[("state", state), ("kind", kind)],
            n,
        );
    }
    let runs = m.runs_finished.load(Ordering::Relaxed);
    let run_ms = m.run_seconds_total_ms.load(Ordering::Relaxed);
    out.family(
        "shipshape_gc_run_duration_seconds",
        "summary",
        "Duration of finished garbage collection runs.",
    );
    out.sample(
        "shipshape_gc_run_duration_seconds_sum",
        &[],
        run_ms as f64 / 1e3,
    );
    out.sample("shipshape_gc_run_duration_seconds_count", &[], runs);
    policies(&mut out, &app);
    catalogue(&mut out, &app);
    out.family(
        "shipshape_storage_errors_total",
        "counter",
        "Requests refused because the registry's storage was full (507) or read-only (503), by \
         the part that failed: the blob store or the catalogue.",
    );
    for (kind, part, n) in app.storage.refusals() {
        out.sample(
            "shipshape_storage_errors_total",
            &[("kind", kind.label()), ("part", part.label())],
            n,
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out.0).into_response()
}

fn http(out: &mut Out, m: &HttpMetrics) {
    let all = m.snapshot();
    let with = |f: &dyn Fn(&super::observe::Series) -> u64| -> Vec<(Vec<String>, u64)> {
        all.iter()
            .map(|((route, method, status), s)| {
                (
                    vec![route.clone(), method.to_string(), status.to_string()],
                    f(s),
                )
            })
            .collect()
    };
    let labelled = |out: &mut Out, name: &str, rows: Vec<(Vec<String>, u64)>| {
        for (l, v) in rows {
            out.sample(
                name,
                &[("route", &l[0]), ("method", &l[1]), ("status", &l[2])],
                v,
            );
        }
    };
    out.family(
        "shipshape_http_requests_total",
        "counter",
        "HTTP requests answered, by route template, method and status.",
    );
    labelled(
        out,
        "shipshape_http_requests_total",
        with(&|s| s.requests.load(Ordering::Relaxed)),
    );
    out.family(
        "shipshape_http_request_duration_seconds",
        "histogram",
        "Time from a request's arrival to the end of its response body, by route template, \
         method and status.",
    );
    for ((route, method, status), s) in &all {
        let status = status.to_string();
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += s.buckets[i].load(Ordering::Relaxed);
            out.sample(
                "shipshape_http_request_duration_seconds_bucket",
                &[
                    ("route", route),
                    ("method", method),
                    ("status", &status),
                    ("le", &b.to_string()),
                ],
                cumulative,
            );
        }
        let labels = [
            ("route", route.as_str()),
            ("method", method),
            ("status", &status),
        ];
        let count = s.requests.load(Ordering::Relaxed);
        out.sample(
            "shipshape_http_request_duration_seconds_bucket",
            &[labels[0], labels[1], labels[2], ("le", "+Inf")],
            count,
        );
        out.sample(
            "shipshape_http_request_duration_seconds_sum",
            &labels,
            seconds(s.micros.load(Ordering::Relaxed)),
        );
        out.sample(
            "shipshape_http_request_duration_seconds_count",
            &labels,
            count,
        );
    }
    out.family(
        "shipshape_http_request_bytes_total",
        "counter",
        "Bytes of request bodies received, by route template, method and status.",
    );
    labelled(
        out,
        "shipshape_http_request_bytes_total",
        with(&|s| s.bytes_in.load(Ordering::Relaxed)),
    );
    out.family(
        "shipshape_http_response_bytes_total",
        "counter",
        "Bytes of response bodies sent, by route template, method and status.",
    );
    labelled(
        out,
        "shipshape_http_response_bytes_total",
        with(&|s| s.bytes_out.load(Ordering::Relaxed)),
    );
    out.family(
        "shipshape_http_requests_in_flight",
        "gauge",
        "Requests received whose response has not ended yet.",
    );
    out.sample(
        "shipshape_http_requests_in_flight",
        &[],
        m.in_flight.load(Ordering::Relaxed),
    );
}

async fn uploads(out: &mut Out, app: &AppState) {
    let Ok((open, busy)) = app.registry.upload_sessions().await else {
        return;
    };
    out.metric(
        "shipshape_upload_sessions",
        "gauge",
        "Upload sessions begun and not yet finished, cancelled or expired (uploads.ttl).",
        &[(&[], open)],
    );
    out.metric(
        "shipshape_upload_sessions_in_flight",
        "gauge",
        "Upload sessions with a request sending data to this node now.",
        &[(&[], busy as u64)],
    );
}

async fn storage(out: &mut Out, app: &AppState) {
    if let Some((u, age)) = app.metrics.usage(&app.registry).await {
        out.metric(
            "shipshape_storage_bytes",
            "gauge",
            "Bytes of blobs and manifests by what holds them (the classes of `shipshape usage`; \
             they sum to what is stored): in_use, held_for_restore, in_grace, reclaimable.",
            &[
                (&[("class", "in_use")], u.in_use),
                (&[("class", "held_for_restore")], u.held_for_restore),
                (&[("class", "in_grace")], u.in_grace),
                (&[("class", "reclaimable")], u.reclaimable),
            ],
        );
        out.metric(
            "shipshape_storage_objects",
            "gauge",
            "Blobs and manifests the catalogue holds.",
            &[
                (&[("kind", "blob")], u.blobs),
                (&[("kind", "manifest")], u.manifests),
            ],
        );
        out.family(
            "shipshape_storage_figures_age_seconds",
            "gauge",
            "How old the storage figures are (computed again once older than \
             metrics.storage_refresh).",
        );
        out.sample(
            "shipshape_storage_figures_age_seconds",
            &[],
            age.as_secs_f64(),
        );
    }
    let parts = [
        ("store", Some(app.storage.store_root.as_path())),
        ("catalogue", app.storage.catalogue_file.as_deref()),
    ];
    let figures: Vec<_> = parts
        .iter()
        .filter_map(|(part, path)| filesystem((*path)?).map(|f| (*part, f)))
        .collect();
    out.family(
        "shipshape_filesystem_size_bytes",
        "gauge",
        "Size of the filesystem holding each part of the storage (store, catalogue).",
    );
    for (part, (size, _)) in &figures {
        out.sample("shipshape_filesystem_size_bytes", &[("part", part)], size);
    }
    out.family(
        "shipshape_filesystem_available_bytes",
        "gauge",
        "Bytes the registry's user may still write on the filesystem of each part of the \
         storage (store, catalogue).",
    );
    for (part, (_, avail)) in &figures {
        out.sample(
            "shipshape_filesystem_available_bytes",
            &[("part", part)],
            avail,
        );
    }
}

/// The size of the filesystem holding `path` and what an unprivileged user may still write.
#[cfg(unix)]
fn filesystem(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    // The catalogue is a file; its directory is what has a filesystem worth asking about.
    let dir = if path.is_dir() { path } else { path.parent()? };
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a buffer of the type statvfs(3) fills.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled the buffer.
    let st = unsafe { st.assume_init() };
    // The fields' widths differ between platforms (u64 on Linux, u32 on others).
    #[allow(clippy::unnecessary_cast)]
    let frag = st.f_frsize as u64;
    #[allow(clippy::unnecessary_cast)]
    let (blocks, available) = (st.f_blocks as u64, st.f_bavail as u64);
    Some((blocks * frag, available * frag))
}

#[cfg(not(unix))]
fn filesystem(_: &std::path::Path) -> Option<(u64, u64)> {
    None
}

fn policies(out: &mut Out, app: &AppState) {
    out.family(
        "shipshape_policy_runs_total",
        "counter",
        "Retention policy runs finished on this node, by state (succeeded, cancelled, failed) \
         and trigger (schedule, manual).",
    );
    for (state, trigger, n) in app.retention.run_counts().get() {
        out.sample(
            "shipshape_policy_runs_total",
            &[("state", state), ("trigger", trigger)],
            n,
        );
    }
    let t = app.retention.run_totals();
    out.metric(
        "shipshape_policy_deleted_total",
        "counter",
        "Tags and untagged manifests retention policy runs deleted.",
        &[
            (&[("kind", "tag")], t.tags.load(Ordering::Relaxed)),
            (&[("kind", "manifest")], t.manifests.load(Ordering::Relaxed)),
        ],
    );
    out.metric(
        "shipshape_policy_bytes_total",
        "counter",
        "Bytes retention policy runs took out of use (held for the restore window, then \
         reclaimed by the collector).",
        &[(&[], t.bytes.load(Ordering::Relaxed))],
    );
}

fn catalogue(out: &mut Out, app: &AppState) {
    let c = app.registry.catalogue_stats();
    out.family(
        "shipshape_catalogue_wait_seconds",
        "summary",
        "Time spent waiting for a catalogue connection: the single writer (pool=write) or a \
         pooled reader (pool=read).",
    );
    for (pool, n, micros) in [
        ("write", &c.write_waits, &c.write_wait_micros),
        ("read", &c.read_waits, &c.read_wait_micros),
    ] {
        out.sample(
            "shipshape_catalogue_wait_seconds_sum",
            &[("pool", pool)],
            seconds(micros.load(Ordering::Relaxed)),
        );
        out.sample(
            "shipshape_catalogue_wait_seconds_count",
            &[("pool", pool)],
            n.load(Ordering::Relaxed),
        );
    }
    out.metric(
        "shipshape_catalogue_idle_checkpoints_total",
        "counter",
        "Checkpoints of the catalogue's write-ahead log made while the writer was idle.",
        &[(&[], c.idle_checkpoints.load(Ordering::Relaxed))],
    );
    out.metric(
        "shipshape_catalogue_listening",
        "gauge",
        "1 while this node receives the PostgreSQL catalogue's change notices, which let it \
         answer manifest reads from its cache; 0 otherwise (and always on SQLite).",
        &[(&[], u64::from(c.changes.listening()))],
    );
    out.metric(
        "shipshape_catalogue_change_notices_total",
        "counter",
        "Change notices received from the PostgreSQL catalogue (one per transaction of any node \
         that changed repositories, tags or manifests).",
        &[(&[], c.changes.notices())],
    );
    out.metric(
        "shipshape_manifest_cache_hits_total",
        "counter",
        "Manifest GETs and HEADs answered from this node's cache, without a catalogue query.",
        &[(&[], app.registry.manifest_cache_hits())],
    );
    if let Some(bytes) = c.sqlite_memory_bytes() {
        out.metric(
            "shipshape_catalogue_sqlite_memory_bytes",
            "gauge",
            "Memory SQLite holds in this process: its connections' page caches and statements.",
            &[(&[], bytes)],
        );
    }
    if let Some(wal) = c.wal_bytes() {
        out.metric(
            "shipshape_catalogue_wal_bytes",
            "gauge",
            "Size of the catalogue's write-ahead log file (emptied by checkpoints).",
            &[(&[], wal)],
        );
    }
}
