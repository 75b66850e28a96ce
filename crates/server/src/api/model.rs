//! The JSON shapes of the management API, with their OpenAPI schemas: every request and
//! response body and query string of `/api/v1`, shared by the server (which serialises answers
//! and reads requests) and its clients (`shipshape`'s remote commands, which read answers and
//! send requests). Times are RFC 3339 UTC strings (in [`accounts`], milliseconds since the
//! epoch); sizes are bytes.
//!
//! Repositories, tags, manifests, restores, usage and the activity log are here; garbage
//! collection runs in [`gc`], retention policies and their runs in [`policies`], users, robots
//! and roles in [`accounts`]. The schemas' descriptions come from the doc comments of the
//! bodies, so a body type or field gains one only as a change of the OpenAPI document.

pub mod accounts;
pub mod gc;
pub mod policies;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Formats catalogue milliseconds as RFC 3339.
pub fn time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RepositoryInfo {
    pub name: String,
    pub created_at: String,
    pub tags: i64,
    pub manifests: i64,
    /// Live manifests no tag points at (index children and referrers included).
    pub untagged_manifests: i64,
    /// The latest push of a tag or manifest.
    pub last_pushed_at: Option<String>,
    /// The latest pull (GET) of a manifest.
    pub last_pulled_at: Option<String>,
    pub usage: UsageFigures,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RepositoryList {
    pub repositories: Vec<RepositoryInfo>,
}

/// The query string of `GET /api/v1/repositories`: a page of names.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct RepositoryPage {
    /// At most this many repositories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    /// Only names after this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
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

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct TagList {
    pub repository: String,
    pub tags: Vec<TagInfo>,
    /// Pass as `offset` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// The query string of `GET /api/v1/repositories/{name}/-/tags`.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct TagListQuery {
    /// `name` (the default), `pushed`, `pulled` or `size`; newest or largest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// Reverse the order.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reverse: bool,
    /// Only tags matching this glob, or `regex:…` matching the whole tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// At most this many tags (1 to 10 000); all when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Skip this many tags of the ordered listing (the `next` of the previous page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct HistoryEntry {
    pub tag: String,
    /// `pushed`, `moved`, `deleted` or `restored`.
    pub action: String,
    pub from_digest: Option<String>,
    pub to_digest: Option<String>,
    pub actor: String,
    pub at: String,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct History {
    pub repository: String,
    pub entries: Vec<HistoryEntry>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct DeletedTag {
    pub tag: String,
    pub digest: String,
}

/// What a deletion took out of use.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct Freed {
    /// Bytes kept for the restore window; the collector frees them once it has passed.
    pub bytes_held_for_restore: u64,
    /// Bytes the collector frees at once (the registry has no restore window).
    pub bytes_reclaimable: u64,
    /// Until when the deletion can be undone; absent without a restore window.
    pub restorable_until: Option<String>,
}

impl From<crate::registry::Freed> for Freed {
    fn from(f: crate::registry::Freed) -> Self {
        Freed {
            bytes_held_for_restore: f.bytes_held,
            bytes_reclaimable: f.bytes_reclaimable,
            restorable_until: f.restorable_until.map(time),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RepositoryDeletion {
    pub repository: String,
    pub tags: Vec<DeletedTag>,
    /// Manifests deleted; restorable until the restore window ends.
    pub manifests: u64,
    #[serde(flatten)]
    pub freed: Freed,
    /// Restore it with `POST /api/v1/batches/{batch}/restore`, or the repository's restore.
    pub batch: i64,
}

/// The query string of `DELETE /api/v1/repositories/{name}`.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RepositoryDeleteQuery {
    /// Must repeat the repository name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm: Option<String>,
    /// Delete protected tags too (an admin action, logged as such).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub override_protection: bool,
}

/// The query string of deleting a tag or a manifest: `?override_protection=true` deletes
/// protected tags too (an admin action, logged as such).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct OverrideQuery {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub override_protection: bool,
}

/// Tags to delete together: all of them, or none when one cannot be.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct TagsDeleteRequest {
    pub tags: Vec<String>,
    /// Delete protected tags too (an admin action, logged as such).
    #[serde(default)]
    pub override_protection: bool,
    /// Only report what would be deleted and freed.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct TagsDeletion {
    pub dry_run: bool,
    pub deleted: Vec<DeletedTag>,
    #[serde(flatten)]
    pub freed: Freed,
    /// The batch that undoes it (absent for a dry run).
    pub batch: Option<i64>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The digest (or a unique prefix of one) to point the tag at; default: the one it last
    /// left (when deleted, or overwritten by a push).
    pub digest: Option<String>,
    /// Overwrite the tag if its name has been reused since.
    #[serde(default)]
    pub force: bool,
    /// With `force`, overwrite a protected tag too (an admin action, logged as such).
    #[serde(default)]
    pub override_protection: bool,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RestoredTag {
    pub tag: String,
    pub digest: String,
    pub replaced: Option<String>,
}

/// Options of a repository's or a batch's restore.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct BatchRestoreRequest {
    /// Overwrite tag names reused since.
    #[serde(default)]
    pub force: bool,
    /// With `force`, overwrite protected tags too.
    #[serde(default)]
    pub override_protection: bool,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct BatchRestore {
    pub repository: String,
    pub batch: i64,
    pub tags: Vec<RestoredTag>,
    /// Manifests brought back beside the tags' (a repository's untagged ones).
    pub manifests: u64,
}

/// A tag that can go back to a manifest it left.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RestorableTag {
    /// The history entry: pass as `before` for the next page.
    pub id: i64,
    pub repository: String,
    /// The repository was deleted; restoring brings it back.
    pub repository_deleted: bool,
    pub tag: String,
    /// `deleted`, `overwritten` (by a push) or `replaced` (by a forced restore).
    pub how: String,
    pub digest: String,
    pub left_at: String,
    pub restorable_until: String,
    pub actor: String,
    /// The operation that removed it; restoring the batch brings back all of it.
    pub batch: Option<i64>,
    /// What the tag points at now, when its name was reused: restoring needs force.
    pub conflict: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RestorableList {
    pub tags: Vec<RestorableTag>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next: Option<i64>,
}

/// The query string of `GET /api/v1/restorable`.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RestorableQuery {
    /// Only this repository (also a deleted one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The cursor: the `next` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// The query string of `GET /api/v1/repositories/{name}/-/restorable`.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RestorablePage {
    /// The cursor: the `next` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// A live manifest.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct ManifestInfo {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    /// Bytes of the manifest itself.
    pub size: u64,
    /// `tagged`, `child` (listed by an index), `referrer` (of a subject) or `untagged`.
    pub kind: String,
    pub tags: Vec<String>,
    pub subject: Option<String>,
    /// Live indexes listing it.
    pub listed_by: i64,
    /// Live referrers (signatures, SBOMs) of it.
    pub referrers: i64,
    pub created_at: String,
    pub last_pulled_at: Option<String>,
    pub pull_count: i64,
    /// Why the registry still stores it, as the collector would decide now.
    pub why_kept: WhyKept,
}

/// Why a manifest is still stored.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq, Eq)]
pub struct WhyKept {
    /// `tagged`, `child` (a live index lists it), `referrer` (its subject is live), `settings`
    /// (nothing holds it, but the registry keeps untagged manifests), `held_for_restore`,
    /// `in_grace` or `collectable` (a collection frees it now).
    pub reason: String,
    /// `tagged`: the tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `child`: the index listing it; `referrer`: its subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<String>,
    /// `held_for_restore`: until when it can be restored; `in_grace`: until when the collector
    /// leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

impl From<crate::registry::Kept> for WhyKept {
    fn from(k: crate::registry::Kept) -> Self {
        use crate::registry::Kept;
        let plain = |reason: &str| WhyKept {
            reason: reason.to_string(),
            tags: Vec::new(),
            of: None,
            until: None,
        };
        match k {
            Kept::Tagged(tags) => WhyKept {
                tags,
                ..plain("tagged")
            },
            Kept::ChildOf(d) => WhyKept {
                of: Some(d.to_string()),
                ..plain("child")
            },
            Kept::ReferrerOf(d) => WhyKept {
                of: Some(d.to_string()),
                ..plain("referrer")
            },
            Kept::BySettings => plain("settings"),
            Kept::HeldForRestore { until } => WhyKept {
                until: Some(time(until)),
                ..plain("held_for_restore")
            },
            Kept::InGrace { until } => WhyKept {
                until: Some(time(until)),
                ..plain("in_grace")
            },
            Kept::Collectable => plain("collectable"),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct ManifestList {
    pub repository: String,
    pub manifests: Vec<ManifestInfo>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct ManifestDeletion {
    pub digest: String,
    /// Tags that pointed at it, deleted with it.
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub freed: Freed,
    pub batch: i64,
}

/// Filters that combine: a tag is deleted only when every given one says so.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
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
    /// Delete protected tags the filters select too (an admin action, logged as such).
    #[serde(default)]
    pub override_protection: bool,
}

/// A bulk deletion's decision on one tag. Named `BulkDecision` in the OpenAPI document: the
/// schema `Decision` is a retention policy's (`policies::Decision`), and two schemas of one
/// name would leave one of the two operations described with the other's.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
#[schema(as = BulkDecision)]
pub struct Decision {
    pub tag: String,
    pub delete: bool,
    pub reason: String,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct BulkDeleteResult {
    pub dry_run: bool,
    /// Tags deleted, or that would be in a dry run.
    pub deleted: Vec<String>,
    /// Every tag of the repository with its decision and the reason.
    pub decisions: Vec<Decision>,
    #[serde(flatten)]
    pub freed: Freed,
    pub batch: Option<i64>,
}

/// Bytes of blobs and manifests, each counted once, by what holds them: `stored_bytes` is the
/// sum of in use, held for restore, in grace and reclaimable.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq, Eq)]
pub struct UsageFigures {
    pub stored_bytes: u64,
    /// Bytes no other repository has (equal to stored for the total).
    pub unique_bytes: u64,
    /// Needed by live content (tagged images, what they list, their referrers).
    pub in_use_bytes: u64,
    /// Needed only by deleted content that can still be restored.
    pub held_for_restore_bytes: u64,
    /// Garbage the collector leaves for now: within its grace period, or a blob a client was
    /// just told exists.
    pub in_grace_bytes: u64,
    /// Garbage a collection frees now (`shipshape gc start`, or the background workers).
    pub reclaimable_bytes: u64,
    pub blobs: u64,
    pub manifests: u64,
}

impl From<shipshape_meta::usage::Usage> for UsageFigures {
    fn from(u: shipshape_meta::usage::Usage) -> Self {
        UsageFigures {
            stored_bytes: u.stored,
            unique_bytes: u.unique,
            in_use_bytes: u.in_use,
            held_for_restore_bytes: u.held_for_restore,
            in_grace_bytes: u.in_grace,
            reclaimable_bytes: u.reclaimable,
            blobs: u.blobs,
            manifests: u.manifests,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RepositoryUsage {
    pub name: String,
    #[serde(flatten)]
    pub figures: UsageFigures,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct UsageReport {
    pub total: UsageFigures,
    pub repositories: Vec<RepositoryUsage>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
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

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct EventList {
    pub events: Vec<Event>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next: Option<i64>,
}

/// The query string of `GET /api/v1/events`. `since` and `until` take an RFC 3339 time, a date
/// (midnight UTC) or a duration meaning that long ago (`24h`).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Exact (`tag.delete`) or a family (`tag`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The cursor: the `next` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct ErrorItem {
    pub code: String,
    pub message: String,
}

/// Errors use the same body as the distribution API.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct ErrorBody {
    pub errors: Vec<ErrorItem>,
}
