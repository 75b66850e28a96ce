//! The bodies of retention policies under `/api/v1/policies` and their runs under
//! `/api/v1/policy-runs`: an applied policy, a preview's decisions, a run with its figures and
//! what it deleted. A policy document itself is sent as the operator wrote it (JSON or TOML) and
//! answered as JSON (`document`), in the shape of `shipshape_gc::retention::PolicySpec`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An applied policy.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct PolicyInfo {
    pub name: String,
    /// The policy document as applied (see the README for its fields).
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
    /// The policy in one English sentence ("In team/**, keep the 10 most recently pushed
    /// tags; delete other tags older than 30 days; untagged manifests after 7 days.").
    #[serde(default)]
    pub sentence: String,
    pub schedule: Option<String>,
    pub next_run_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub updated_by: String,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct PolicyList {
    pub policies: Vec<PolicyInfo>,
}

/// A decision on one tag or untagged manifest.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct Decision {
    /// `tag` or `manifest` (an untagged manifest).
    pub kind: String,
    /// The tag, or the manifest digest.
    pub target: String,
    pub digest: String,
    /// `delete` or `keep`.
    pub action: String,
    /// The rule that decided, e.g. `keep_latest_pushed`, `delete_older_than`, `protected`.
    pub rule: String,
    pub reason: String,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RepositoryPreview {
    pub repository: String,
    pub decisions: Vec<Decision>,
    /// Bytes these deletions take out of use that stay restorable for the restore window.
    pub bytes_held_for_restore: u64,
    /// Bytes these deletions take out of use that a collection frees at once (no window).
    pub bytes_reclaimable: u64,
}

/// What a policy run did, or a preview would do.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct PolicyFigures {
    /// Repositories evaluated.
    pub repositories: u64,
    /// Repositories that lose (or lost) a tag or manifest.
    pub repositories_affected: u64,
    pub tags_evaluated: u64,
    pub tags_deleted: u64,
    pub manifests_deleted: u64,
    /// Bytes taken out of use that stay restorable until the restore window ends.
    pub bytes_held_for_restore: u64,
    /// Bytes taken out of use that a collection frees at once (no restore window).
    pub bytes_reclaimable: u64,
}

/// What a policy would do now, and why.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct PreviewInfo {
    pub policy: String,
    /// The instant the rules were evaluated at; a run started at this instant deletes the same.
    pub evaluated_at: String,
    pub repositories: Vec<RepositoryPreview>,
    pub figures: PolicyFigures,
}

/// A run of a policy.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct PolicyRunInfo {
    pub id: i64,
    pub policy: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// `running`, `succeeded`, `cancelled` or `failed`.
    pub state: String,
    pub started_by: String,
    pub started_at: String,
    /// The instant the rules were evaluated at.
    pub evaluated_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub figures: PolicyFigures,
    pub errors: Vec<String>,
    /// The policy document the run applied.
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct PolicyRunList {
    pub runs: Vec<PolicyRunInfo>,
}

/// Something a run deleted, and why.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct PolicyRunItem {
    pub repository: String,
    /// `tag` or `manifest`.
    pub kind: String,
    pub target: String,
    pub digest: String,
    pub rule: String,
    pub reason: String,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct PolicyRunDetail {
    #[serde(flatten)]
    pub run: PolicyRunInfo,
    pub items: Vec<PolicyRunItem>,
}

/// The query string of `GET /api/v1/policy-runs` and `GET /api/v1/policies/{name}/runs`.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct RunPage {
    /// Runs with an id below this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// At most this many (default 20).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Only this policy's runs (`/api/v1/policy-runs` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}
