//! The registry's service layer: one function per operation of the distribution API, each
//! combining catalogue transactions and blob-store calls in the order the invariants demand
//! (bytes durable before the commit that makes them visible; no storage call inside a
//! transaction). HTTP handlers call exactly one of these.

mod blobs;
mod cache;
mod deletion;
mod figures;
mod health;
mod history;
mod info;
mod listing;
mod manifests;
mod protection;
mod pulls;
mod reads;
mod uploads;
mod visibility;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shipshape_meta::{Catalogue, Clock, MetaError};
use shipshape_oci::{Digest, DigestError, ManifestError, RepoName, UploadId};
use shipshape_store::{BlobStore, StoreError};

pub use blobs::{BlobRead, MountOutcome};
pub use deletion::{
    BatchRestore, BulkDeletion, DeletedTag, Freed, ManifestDeletion, Overwrite, RepositoryDeletion,
    Restorable, RestoredTag, TagsDeletion,
};
pub use figures::Figures;
pub use health::{Check, Readiness};
pub use history::CHART_POINTS;
pub use info::{
    BlobUse, Child, Kept, ManifestDetails, ManifestView, RepositoryDetails, TagDetails, TagQuery,
    TagSort,
};
pub use listing::{Page, ReferrerList};
pub use manifests::{ManifestRead, PushedManifest};
pub use uploads::UploadState;

/// Who acts, passed to every service call: checked (`Principal::may`) and recorded.
pub use shipshape_meta::principal::{Permission, Principal};

/// Domain errors of the registry. The HTTP layer maps each to an OCI error code.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("repository {0} is not known")]
    NameUnknown(RepoName),
    #[error("blob {0} is not known in this repository")]
    BlobUnknown(Digest),
    #[error(
        "blob {0} is recorded but its bytes are missing or damaged in storage; it now answers \
         as unknown, so pushing the image again uploads it (the registry log and `shipshape \
         check` have the details)"
    )]
    BlobLost(Digest),
    #[error("manifest {0} is not known in this repository")]
    ManifestUnknown(String),
    #[error("upload session is not known (finished, cancelled or expired)")]
    UploadUnknown,
    #[error("{0}")]
    DigestInvalid(String),
    #[error("content digest {actual} does not match the expected {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("{0}")]
    ManifestInvalid(#[from] ManifestError),
    #[error("manifest references content this repository does not have: {0:?}")]
    ManifestBlobUnknown(Vec<Digest>),
    #[error("manifest is larger than the {limit} bytes allowed")]
    ManifestTooLarge { limit: usize },
    #[error("chunk out of order: the session has received {received} bytes")]
    RangeInvalid {
        repo: RepoName,
        upload: UploadId,
        received: u64,
    },
    #[error("{0}")]
    SizeInvalid(String),
    #[error(
        "blob {blob} is referenced by manifest {manifest} in this repository; delete the manifest first"
    )]
    BlobInUse { blob: Digest, manifest: Digest },
    #[error(
        "manifest {manifest} is listed by index {index} in this repository; delete the index first"
    )]
    ManifestInUse { manifest: Digest, index: Digest },
    #[error("to delete repository {0}, confirm with its name (confirm={0})")]
    ConfirmationRequired(RepoName),
    #[error("tag {tag} is not known in {repo}")]
    TagUnknown { repo: RepoName, tag: String },
    #[error("{} not known in {repo}; nothing was deleted", tags_are(.tags))]
    TagsUnknown { repo: RepoName, tags: Vec<String> },
    #[error("{}", nothing_to_restore(.repo, .tag))]
    NothingToRestore { repo: RepoName, tag: String },
    #[error("{prefix} matches several manifests: {}; give more of the digest", digests(.matches))]
    DigestAmbiguous {
        prefix: String,
        matches: Vec<Digest>,
    },
    #[error("batch {0} is not known")]
    BatchUnknown(i64),
    #[error("{0}; nothing to restore")]
    AlreadyRestored(String),
    #[error("tag {tag} never pointed at {digest}; a restore points a tag back where it was")]
    NeverThere { tag: String, digest: Digest },
    #[error("{}", repository_deleted(.repo, .restorable_until))]
    RepositoryDeleted {
        repo: RepoName,
        restorable_until: Option<String>,
    },
    #[error("{}; restoring over them needs force", conflicts(.tags))]
    RestoreConflict { tags: Vec<(String, Digest)> },
    #[error(
        "manifest {0} is no longer present (its restore window has passed); it cannot be restored"
    )]
    ManifestPurged(Digest),
    #[error("tag {tag} now points at {current}; restoring over it needs force")]
    TagInUse { tag: String, current: Digest },
    #[error("{0}")]
    InvalidFilter(String),
    /// What a confirmed plan would delete is no longer what it showed; nothing was deleted.
    #[error("{0}; nothing was deleted")]
    PlanChanged(String),
    #[error(
        "tag {tag} is protected by policy {policy} (pattern {pattern}): it cannot be overwritten or deleted \
         unless an admin overrides the protection"
    )]
    Protected {
        tag: String,
        policy: String,
        pattern: String,
    },
    /// The principal may not do this (`Principal::may`).
    #[error("{who} may not {what}")]
    Denied { who: String, what: &'static str },
    #[error(
        "deletion is disabled on this registry (the operator's setting --deletion-enabled, \
         [deletion] enabled)"
    )]
    DeletionDisabled,
    #[error("request body failed: {0}")]
    Body(String),
    #[error("catalogue: {0}")]
    Meta(#[from] MetaError),
    #[error("storage: {0}")]
    Store(StoreError),
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Body(m) => RegistryError::Body(m),
            other => RegistryError::Store(other),
        }
    }
}

impl From<DigestError> for RegistryError {
    fn from(e: DigestError) -> Self {
        RegistryError::DigestInvalid(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, RegistryError>;

fn repository_deleted(repo: &RepoName, until: &Option<String>) -> String {
    match until {
        Some(t) => format!(
            "repository {repo} was deleted; it can be restored until {t} (shipshape repo \
             restore {repo}, or POST …/-/restore)"
        ),
        None => format!("repository {repo} was deleted"),
    }
}

fn tags_are(tags: &[String]) -> String {
    match tags {
        [one] => format!("tag {one} is"),
        many => format!("tags {} are", many.join(", ")),
    }
}

fn nothing_to_restore(repo: &RepoName, tag: &str) -> String {
    if tag.is_empty() {
        format!("repository {repo} was never deleted; nothing to restore")
    } else {
        format!("tag {tag} of {repo} never left a manifest; nothing to restore")
    }
}

fn digests(d: &[Digest]) -> String {
    d.iter()
        .map(Digest::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn conflicts(tags: &[(String, Digest)]) -> String {
    let each: Vec<String> = tags
        .iter()
        .map(|(t, d)| format!("{t} now points at {d}"))
        .collect();
    format!("tag names reused since: {}", each.join(", "))
}

/// Registry settings the service layer needs.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    pub deletion_enabled: bool,
    /// How long deleted tags, manifests and repositories stay restorable.
    pub restore_window: std::time::Duration,
    /// How often counted pulls are written; zero writes each pull at once.
    pub pull_flush_interval: std::time::Duration,
    /// How long a client told "this blob exists" can rely on it; a HEAD renews it.
    pub lease: std::time::Duration,
    /// Other nodes write this blob store too (a bucket): an upload session is claimed in the
    /// catalogue before its bytes are written (`uploads::claim`).
    pub shared_store: bool,
    /// The storage figures are sampled when the newest sample is older than this; zero: only
    /// as garbage collection runs end.
    pub sample_interval: std::time::Duration,
    /// How long samples of the storage figures are kept (and the chart looks back).
    pub sample_retention: std::time::Duration,
    /// How long a web page waits for current storage figures before it is drawn with the last
    /// ones taken (`figures.rs`).
    pub page_figures_wait: std::time::Duration,
}

/// The registry service: catalogue, blob store, clock and per-session locks.
#[derive(Clone, Debug)]
pub struct Registry {
    catalogue: Catalogue,
    store: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    options: RegistryOptions,
    /// Upload sessions being written right now. One writer per session; a second request on a
    /// busy session is told to re-sync (416), as the spec allows.
    busy_uploads: Arc<Mutex<HashMap<UploadId, ()>>>,
    pulls: Arc<pulls::PullCounts>,
    reads: Arc<reads::ManifestReads>,
    cache: Arc<cache::ManifestCache>,
    /// Applied retention policies: their protected tag patterns guard pushes and deletes.
    policies: shipshape_gc::retention::Policies,
    /// Work a request leaves to finish after its answer (deleting a redundant upload); the
    /// server waits for it when it shuts down.
    background: tokio_util::task::TaskTracker,
    /// The collector, whose rules classify storage figures the way it collects.
    collector: shipshape_gc::Collector,
    /// The storage figures last taken, shared by the requests that read them.
    figures: Arc<figures::FiguresCache>,
    /// Set on the registry one web page sees (`for_pages`).
    page: Option<Arc<figures::PageFigures>>,
}

impl Registry {
    pub fn new(
        catalogue: Catalogue,
        store: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        options: RegistryOptions,
        policies: shipshape_gc::retention::Policies,
        collector: shipshape_gc::Collector,
    ) -> Self {
        Registry {
            catalogue,
            store,
            clock,
            options,
            busy_uploads: Arc::default(),
            pulls: Arc::default(),
            reads: Arc::default(),
            cache: Arc::default(),
            policies,
            background: tokio_util::task::TaskTracker::new(),
            collector,
            figures: Arc::default(),
            page: None,
        }
    }

    /// Waits for the work requests left to finish after their answers, including work started
    /// while waiting.
    pub async fn settle(&self) {
        self.background.close();
        self.background.wait().await;
        self.background.reopen();
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// The registry clock's current time.
    pub fn now(&self) -> shipshape_meta::Millis {
        self.clock.now()
    }

    fn require_deletion(&self) -> Result<()> {
        if self.options.deletion_enabled {
            Ok(())
        } else {
            Err(RegistryError::DeletionDisabled)
        }
    }
}
