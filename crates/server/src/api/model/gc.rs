//! The bodies of garbage collection runs under `/api/v1/gc`: the options a run starts with,
//! a run with its figures, and what it deleted.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Options of a run; everything is optional.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// List what would be deleted, delete nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Also delete manifests that no tag, index or present subject holds; default: what the
    /// registry's background collector does (`gc.untagged_manifests`), so a run frees what the
    /// storage figures call reclaimable.
    pub include_untagged_manifests: Option<bool>,
    /// A grace period for this run only (e.g. `0s`, `10m`); default: the configured review
    /// delay. A blob or manifest a client was just told exists keeps its lease whatever the
    /// grace (`gc.lease`), so pushes in flight never fail.
    pub grace: Option<String>,
    /// Also sweep storage for objects the catalogue does not know (default false): the sweep
    /// lists the whole store, so its cost follows the store's size, not the churn. Ask for it
    /// after a crash, or now and then.
    pub sweep: Option<bool>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RunFigures {
    pub reviewed: u64,
    pub manifests_deleted: u64,
    pub blobs_deleted: u64,
    /// Bytes of the blobs and manifests deleted (or, in a dry run, that would be), and of
    /// orphan objects swept.
    pub bytes_deleted: u64,
    pub links_deleted: u64,
    pub uploads_deleted: u64,
    pub orphans_deleted: u64,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RunInfo {
    pub id: i64,
    /// `running`, `succeeded`, `cancelled` or `failed`.
    pub state: String,
    pub dry_run: bool,
    pub include_untagged_manifests: bool,
    pub sweep: bool,
    /// The grace period of this run in milliseconds, when one was given.
    pub grace_ms: Option<i64>,
    pub started_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    /// Deleted so far, or (dry run) that would be.
    pub figures: RunFigures,
    pub errors: Vec<String>,
    /// The step a running run is on: `starting`, `reviewing` (the queued manifests and
    /// blobs), `uploads` (expiring abandoned sessions), `sweeping` (listing the store) or
    /// `draining` (deleting bytes from storage); a finished run's last.
    #[serde(default)]
    pub phase: String,
    /// Review entries queued when the run began, which `figures.reviewed` counts towards (it
    /// may pass it: what a run deletes queues what it referenced).
    #[serde(default)]
    pub queued_at_start: Option<u64>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RunList {
    pub runs: Vec<RunInfo>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RunItem {
    /// `manifest`, `blob`, `link`, `upload` or `orphan`.
    pub kind: String,
    pub repository: Option<String>,
    /// A digest, an upload id or a storage key.
    pub target: String,
    pub size: u64,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RunItems {
    pub items: Vec<RunItem>,
}

/// The query string of `GET /api/v1/gc/runs`.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct RunPage {
    /// Runs with an id below this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// At most this many (default 20).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}
