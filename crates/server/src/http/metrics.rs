//! `/metrics` in the Prometheus text format: the collector's queue depths, what it reclaimed,
//! and its runs; requests refused because the storage was full or read-only.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

pub async fn metrics(State(app): State<AppState>) -> Response {
    let Ok(depths) = app.collector.queue_depths().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "catalogue unavailable\n").into_response();
    };
    let m = app.collector.metrics();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    metric(
        "shipshape_gc_queue_depth",
        "gauge",
        "Entries waiting in the collector's queues.",
        &[
            ("{queue=\"blob_reviews\"}", depths.blobs),
            ("{queue=\"manifest_reviews\"}", depths.manifests),
            ("{queue=\"storage_deletions\"}", depths.storage),
        ],
    );
    metric(
        "shipshape_gc_objects_deleted_total",
        "counter",
        "Objects the collector deleted from the catalogue.",
        &[
            (
                "{kind=\"manifest\"}",
                m.manifests_deleted.load(Ordering::Relaxed),
            ),
            ("{kind=\"blob\"}", m.blobs_deleted.load(Ordering::Relaxed)),
        ],
    );
    metric(
        "shipshape_gc_bytes_reclaimed_total",
        "counter",
        "Bytes of blobs the collector reclaimed.",
        &[("", m.bytes_reclaimed.load(Ordering::Relaxed))],
    );
    metric(
        "shipshape_gc_storage_objects_deleted_total",
        "counter",
        "Objects deleted from the blob store.",
        &[("", m.objects_deleted.load(Ordering::Relaxed))],
    );
    metric(
        "shipshape_gc_storage_errors_total",
        "counter",
        "Failed deletions of objects from the blob store (retried).",
        &[("", m.storage_errors.load(Ordering::Relaxed))],
    );
    let refusals: Vec<(String, u64)> = app
        .storage
        .refusals()
        .into_iter()
        .map(|(kind, part, n)| {
            (
                format!("{{kind=\"{}\",part=\"{}\"}}", kind.label(), part.label()),
                n,
            )
        })
        .collect();
    let refusals: Vec<(&str, u64)> = refusals.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    metric(
        "shipshape_storage_errors_total",
        "counter",
        "Requests refused because the registry's storage was full (507) or read-only (503), by \
         the part that failed: the blob store or the catalogue.",
        &refusals,
    );
    let runs = m.runs_finished.load(Ordering::Relaxed);
    let run_ms = m.run_seconds_total_ms.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "# HELP shipshape_gc_run_duration_seconds Duration of finished garbage collection runs.\n\
         # TYPE shipshape_gc_run_duration_seconds summary\n\
         shipshape_gc_run_duration_seconds_sum {}.{:03}\n\
         shipshape_gc_run_duration_seconds_count {runs}",
        run_ms / 1000,
        run_ms % 1000
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
