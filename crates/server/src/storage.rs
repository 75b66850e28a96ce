//! The storage the registry writes to, as its operator sees it: where it is (the paths that
//! log lines name), how often requests were refused because it was full or read-only
//! (`/metrics`), and whether it was ready when last asked (`/readyz`, logged when that
//! changes). `error.rs` decides what such a failure is answered; this is where it is logged
//! and counted, once per request, by `report_storage_failures`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::http::AppState;
use crate::registry::Readiness;

/// A storage condition an operator must fix, carried by the answer it caused.
#[derive(Clone, Debug)]
pub struct StorageFailure {
    pub kind: StorageKind,
    pub part: StoragePart,
    /// The cause as the catalogue or the store said it: logged, never sent.
    pub cause: String,
}

/// What is wrong with the storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageKind {
    /// No space left (ENOSPC, a quota, SQLite's `SQLITE_FULL`).
    Full,
    /// Writes refused (EROFS, SQLite's `SQLITE_READONLY`).
    ReadOnly,
}

/// Which part of the storage failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoragePart {
    /// The blob store.
    Store,
    /// The catalogue database.
    Catalogue,
}

impl StorageKind {
    pub fn label(self) -> &'static str {
        match self {
            StorageKind::Full => "full",
            StorageKind::ReadOnly => "read_only",
        }
    }
}

impl StoragePart {
    pub fn label(self) -> &'static str {
        match self {
            StoragePart::Store => "store",
            StoragePart::Catalogue => "catalogue",
        }
    }
}

/// Where the registry's data lives, and the storage failures answered so far.
#[derive(Debug)]
pub struct Storage {
    /// The blob store's root directory.
    pub store_root: PathBuf,
    /// The catalogue's database file, or its server's URL without the password.
    pub catalogue: String,
    /// The catalogue's database file, when it is one on this node's disk.
    pub catalogue_file: Option<PathBuf>,
    /// Refusals by [`StorageKind`] then [`StoragePart`], in the order of their variants.
    refused: [[AtomicU64; 2]; 2],
    /// Whether the last readiness check found both parts fine.
    was_ready: AtomicBool,
}

impl Storage {
    pub fn new(store_root: PathBuf, catalogue: String, catalogue_file: Option<PathBuf>) -> Self {
        Storage {
            store_root,
            catalogue,
            catalogue_file,
            refused: Default::default(),
            was_ready: AtomicBool::new(true),
        }
    }

    /// Logs a readiness check's outcome when it differs from the previous one's: a probe
    /// every few seconds would otherwise repeat the same line.
    pub fn note_readiness(&self, readiness: &Readiness) {
        let ready = readiness.ready();
        if self.was_ready.swap(ready, Ordering::Relaxed) == ready {
            return;
        }
        if ready {
            tracing::info!("ready again: the catalogue answers and the blob store takes writes");
        } else {
            tracing::warn!(
                catalogue = ?readiness.catalogue,
                store = ?readiness.store,
                store_path = %self.store_root.display(),
                catalogue_path = %self.catalogue,
                causes = %readiness.causes.join("; "),
                "not ready: /readyz answers 503"
            );
        }
    }

    fn counter(&self, kind: StorageKind, part: StoragePart) -> &AtomicU64 {
        &self.refused[kind as usize][part as usize]
    }

    /// Requests refused so far, by kind and part (the labels `/metrics` gives them).
    pub fn refusals(&self) -> Vec<(StorageKind, StoragePart, u64)> {
        let mut out = Vec::new();
        for kind in [StorageKind::Full, StorageKind::ReadOnly] {
            for part in [StoragePart::Store, StoragePart::Catalogue] {
                out.push((kind, part, self.counter(kind, part).load(Ordering::Relaxed)));
            }
        }
        out
    }

    /// Logs a failure once, naming the path that failed, and counts it.
    pub fn report(&self, failure: &StorageFailure, request: &str) {
        self.counter(failure.kind, failure.part)
            .fetch_add(1, Ordering::Relaxed);
        let path = match failure.part {
            StoragePart::Store => self.store_root.display().to_string(),
            StoragePart::Catalogue => self.catalogue.clone(),
        };
        match failure.kind {
            StorageKind::Full => tracing::error!(
                path = %path,
                part = failure.part.label(),
                error = %failure.cause,
                request,
                "the registry's storage is full: requests that store anything are answered 507 \
                 until space is freed"
            ),
            StorageKind::ReadOnly => tracing::error!(
                path = %path,
                part = failure.part.label(),
                error = %failure.cause,
                request,
                "the registry's storage is read-only: requests that store anything are answered \
                 503 until it is writable again"
            ),
        }
    }
}

/// Reports the storage failure an answer carries (see [`StorageFailure`]).
pub(crate) async fn report_storage_failures(
    State(app): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let request = format!("{} {}", req.method(), req.uri().path());
    let resp = next.run(req).await;
    if let Some(failure) = resp.extensions().get::<StorageFailure>() {
        app.storage.report(failure, &request);
    }
    resp
}
