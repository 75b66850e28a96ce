//! The JSON shapes of the management API, with their OpenAPI schemas. Times are RFC 3339 UTC
//! strings; sizes are bytes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Formats catalogue milliseconds as RFC 3339.
pub fn time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[derive(Serialize, ToSchema)]
pub struct RepositoryInfo {
    pub name: String,
    pub created_at: String,
    pub tags: i64,
    pub manifests: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RepositoryList {
    pub repositories: Vec<RepositoryInfo>,
}

#[derive(Serialize, ToSchema)]
pub struct TagInfo {
    pub name: String,
    pub digest: String,
    pub media_type: String,
    /// Bytes of the manifest and everything it references, each blob once.
    pub size: u64,
    pub pushed_at: String,
    pub last_pulled_at: Option<String>,
    pub pull_count: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TagList {
    pub repository: String,
    pub tags: Vec<TagInfo>,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryEntry {
    pub tag: String,
    /// `pushed`, `moved`, `deleted` or `restored`.
    pub action: String,
    pub from_digest: Option<String>,
    pub to_digest: Option<String>,
    pub actor: String,
    pub at: String,
}

#[derive(Serialize, ToSchema)]
pub struct History {
    pub repository: String,
    pub entries: Vec<HistoryEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct DeletedTag {
    pub tag: String,
    pub digest: String,
}

#[derive(Serialize, ToSchema)]
pub struct RepositoryDeletion {
    pub repository: String,
    pub tags: Vec<DeletedTag>,
    /// Manifests deleted; restorable until the restore window ends.
    pub manifests: u64,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The digest to point the tag at; default: the one it pointed at when last deleted.
    pub digest: Option<String>,
    /// Overwrite the tag if its name has been reused since.
    #[serde(default)]
    pub force: bool,
    /// With `force`, overwrite a protected tag too (an admin action, logged as such).
    #[serde(default)]
    pub override_protection: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RestoredTag {
    pub tag: String,
    pub digest: String,
    pub replaced: Option<String>,
}

/// Filters that combine: a tag is deleted only when every given one says so.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDeleteRequest {
    /// Delete only tags whose whole name matches this regular expression.
    pub delete_regex: Option<String>,
    /// Never delete tags whose whole name matches this regular expression.
    pub keep_regex: Option<String>,
    /// Keep the N most recently pushed tags of the repository.
    pub keep_latest: Option<usize>,
    /// Delete only tags pushed longer ago than this (e.g. `30d`, `12h`).
    pub older_than: Option<String>,
    /// Only report what would be deleted.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Decision {
    pub tag: String,
    pub delete: bool,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct BulkDeleteResult {
    pub dry_run: bool,
    /// Tags deleted, or that would be in a dry run.
    pub deleted: Vec<String>,
    /// Every tag of the repository with its decision and the reason.
    pub decisions: Vec<Decision>,
}

#[derive(Serialize, ToSchema, Debug, PartialEq, Eq)]
pub struct UsageFigures {
    pub stored_bytes: u64,
    /// Bytes no other repository has (equal to stored for the total).
    pub unique_bytes: u64,
    /// Bytes no manifest needs: what a collection frees.
    pub reclaimable_bytes: u64,
    /// Bytes needed only by deleted content that can still be restored.
    pub held_for_restore_bytes: u64,
    pub blobs: u64,
}

impl From<shipshape_meta::usage::Usage> for UsageFigures {
    fn from(u: shipshape_meta::usage::Usage) -> Self {
        UsageFigures {
            stored_bytes: u.stored,
            unique_bytes: u.unique,
            reclaimable_bytes: u.reclaimable,
            held_for_restore_bytes: u.held_for_restore,
            blobs: u.blobs,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RepositoryUsage {
    pub name: String,
    #[serde(flatten)]
    pub figures: UsageFigures,
}

#[derive(Serialize, ToSchema)]
pub struct UsageReport {
    pub total: UsageFigures,
    pub repositories: Vec<RepositoryUsage>,
}

#[derive(Serialize, ToSchema)]
pub struct Event {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub source: Option<String>,
    pub action: String,
    pub repository: Option<String>,
    pub target: Option<String>,
    pub digest: Option<String>,
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<Event>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorItem {
    pub code: String,
    pub message: String,
}

/// Errors use the same body as the distribution API.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub errors: Vec<ErrorItem>,
}
