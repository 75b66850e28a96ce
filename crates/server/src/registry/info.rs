//! What the management API shows: repositories with their figures, tags and manifests with
//! their metadata, tag history, storage figures and the activity log.

use shipshape_gc::retention::Pattern;
use shipshape_meta::events::{self, Event, EventFilter};
use shipshape_meta::repos::{self, RepoSummary};
use shipshape_meta::tags::{self, HistoryEntry};
use shipshape_meta::usage::{self, Usage};
use shipshape_meta::{Millis, manifests};
use shipshape_oci::{Digest, RepoName, Tag};

use super::{Permission, Principal, Registry, RegistryError, Result, visibility};

/// A repository with its counts and storage figures.
#[derive(Clone, Debug)]
pub struct RepositoryDetails {
    pub summary: RepoSummary,
    pub usage: Usage,
}

/// A tag with its manifest's digest, type and total size.
#[derive(Clone, Debug)]
pub struct TagDetails {
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    /// Bytes of the manifest and everything it references, each blob once.
    pub size: u64,
    pub pushed_at: Millis,
    pub last_pulled_at: Option<Millis>,
    pub pull_count: i64,
}

/// The order of a tag listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TagSort {
    #[default]
    Name,
    /// Most recently pushed first.
    Pushed,
    /// Most recently pulled first; never pulled last.
    Pulled,
    /// Largest first.
    Size,
}

impl std::str::FromStr for TagSort {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "name" => Ok(TagSort::Name),
            "pushed" => Ok(TagSort::Pushed),
            "pulled" => Ok(TagSort::Pulled),
            "size" => Ok(TagSort::Size),
            other => Err(format!("sort {other:?}: use name, pushed, pulled or size")),
        }
    }
}

/// Which tags to list, in which order.
#[derive(Clone, Debug, Default)]
pub struct TagQuery {
    pub sort: TagSort,
    /// Reverse the order.
    pub reverse: bool,
    /// Only tags matching this pattern (a glob, or `regex:…`), as policies write them.
    pub pattern: Option<String>,
}

/// A live manifest with its tags and what holds it.
#[derive(Clone, Debug)]
pub struct ManifestDetails {
    pub summary: manifests::ManifestSummary,
    /// Why the registry still stores it, as the collector would decide now.
    pub kept: Kept,
}

/// Why a manifest is still stored: what holds it, or when the collector may take it. The
/// storage figures classify it the same way (`usage::manifest_classes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kept {
    /// Tags point at it.
    Tagged(Vec<String>),
    /// A live index of the repository lists it (the first such index, by digest).
    ChildOf(Digest),
    /// Its subject is live.
    ReferrerOf(Digest),
    /// Nothing holds it, but the registry does not collect untagged manifests (or referrers
    /// whose subject is gone).
    BySettings,
    /// Held only so that a deletion can be undone, until then.
    HeldForRestore { until: Millis },
    /// Garbage the collector leaves until then (its grace period or a client's lease).
    InGrace { until: Millis },
    /// Garbage a collection frees now.
    Collectable,
}

/// One manifest in full: what it is, what it references and who references it.
#[derive(Clone, Debug)]
pub struct ManifestView {
    pub details: ManifestDetails,
    /// The manifest's bytes as pushed.
    pub payload: Vec<u8>,
    /// The config's digest (image manifests).
    pub config: Option<Digest>,
    /// Config and layers in the manifest's order, with how widely each is shared.
    pub blobs: Vec<BlobUse>,
    /// What an index lists, in its order.
    pub children: Vec<Child>,
    /// Live referrers (signatures, SBOMs, attestations) whose subject it is.
    pub referrers: Vec<manifests::Referrer>,
}

/// A blob a manifest references.
#[derive(Clone, Debug)]
pub struct BlobUse {
    pub digest: Digest,
    pub media_type: Option<String>,
    pub size: u64,
    /// Live manifests referencing it, in every repository, this one included.
    pub manifests: i64,
    /// Live repositories holding a manifest that references it.
    pub repositories: i64,
}

/// A manifest an index lists.
#[derive(Clone, Debug)]
pub struct Child {
    pub digest: Digest,
    pub media_type: Option<String>,
    pub size: u64,
    /// `os/architecture[/variant]`, when the index says.
    pub platform: Option<String>,
}

impl Registry {
    /// The storage figures' rules: the collector's, now.
    pub(super) fn usage_rules(&self) -> usage::Rules {
        self.collector.usage_rules()
    }

    /// The live repository of that name; a deleted one is told as such, with how long it can
    /// still be restored.
    pub(super) async fn live_repo(
        &self,
        conn: &mut dyn shipshape_meta::Conn,
        repo: &RepoName,
    ) -> Result<repos::RepoId> {
        if let Some(id) = repos::find(conn, repo).await? {
            return Ok(id);
        }
        match repos::deleted_at(conn, repo).await? {
            Some(at) => {
                let window = self.options.restore_window.as_millis() as Millis;
                let until = at + window;
                Err(RegistryError::RepositoryDeleted {
                    repo: repo.clone(),
                    restorable_until: (until > self.now()).then(|| crate::api::model::time(until)),
                })
            }
            None => Err(RegistryError::NameUnknown(repo.clone())),
        }
    }

    /// Live repositories with counts and figures, in name order. The figures are the shared
    /// ones (`figures.rs`): classifying every repository again per request took seconds at
    /// 10 000 tags (`bench-ui`).
    pub async fn repositories(
        &self,
        last: Option<&str>,
        n: Option<u64>,
    ) -> Result<Vec<RepositoryDetails>> {
        let summaries = {
            let mut conn = self.catalogue.reader().await?;
            let limit = n.map(|n| n as i64).unwrap_or(-1);
            repos::summaries(&mut conn, None, last, limit).await?
        };
        let figures = self.figures().await?;
        let by_name: std::collections::HashMap<&str, &Usage> = figures
            .per_repository
            .iter()
            .map(|(name, u)| (name.as_str(), u))
            .collect();
        let mut details = Vec::with_capacity(summaries.len());
        for summary in summaries {
            let usage = match by_name.get(summary.name.as_str()) {
                Some(u) => (*u).clone(),
                // Created since the figures were taken (by another node's first upload).
                None => match summary.name.parse::<RepoName>() {
                    Ok(name) => match self.repository_usage(&name).await {
                        Ok(u) => u,
                        // Deleted meanwhile: listed as the summaries had it.
                        Err(RegistryError::NameUnknown(_)) => Usage::default(),
                        Err(e) => return Err(e),
                    },
                    Err(_) => Usage::default(),
                },
            };
            details.push(RepositoryDetails { usage, summary });
        }
        Ok(details)
    }

    /// One repository's counts and figures (the shared figures, as `repositories`).
    pub async fn repository(&self, repo: &RepoName) -> Result<RepositoryDetails> {
        let summary = {
            let mut conn = self.catalogue.reader().await?;
            self.live_repo(&mut conn, repo).await?;
            repos::summaries(&mut conn, Some(repo.as_str()), None, 1)
                .await?
                .pop()
                .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?
        };
        let usage = self.repository_usage(repo).await?;
        Ok(RepositoryDetails { summary, usage })
    }

    /// The tags of a repository with their metadata, filtered and sorted as asked.
    pub async fn tag_details(&self, repo: &RepoName, query: &TagQuery) -> Result<Vec<TagDetails>> {
        let pattern = query
            .pattern
            .as_deref()
            .map(|p| Pattern::parse("pattern", p))
            .transpose()
            .map_err(|e| RegistryError::InvalidFilter(e.to_string()))?;
        let mut conn = self.catalogue.reader().await?;
        let repo_id = self.live_repo(&mut conn, repo).await?;
        let sizes = manifests::tagged_tree_sizes(&mut conn, repo_id).await?;
        let mut out: Vec<TagDetails> = tags::list_detailed(&mut conn, repo_id)
            .await?
            .into_iter()
            .filter(|t| pattern.as_ref().is_none_or(|p| p.matches(&t.name)))
            .map(|t| TagDetails {
                size: sizes.get(&t.manifest_id).copied().unwrap_or(0),
                name: t.name,
                digest: t.digest,
                media_type: t.media_type,
                pushed_at: t.pushed_at,
                last_pulled_at: t.last_pulled_at,
                pull_count: t.pull_count,
            })
            .collect();
        // The listing comes in name order; a stable sort keeps it for ties.
        match query.sort {
            TagSort::Name => {}
            TagSort::Pushed => out.sort_by_key(|t| std::cmp::Reverse(t.pushed_at)),
            TagSort::Pulled => out.sort_by_key(|t| std::cmp::Reverse(t.last_pulled_at)),
            TagSort::Size => out.sort_by_key(|t| std::cmp::Reverse(t.size)),
        }
        if query.reverse {
            out.reverse();
        }
        Ok(out)
    }

    /// One tag with its metadata.
    pub async fn tag(&self, repo: &RepoName, tag: &Tag) -> Result<TagDetails> {
        let mut conn = self.catalogue.reader().await?;
        let repo_id = self.live_repo(&mut conn, repo).await?;
        let t = tags::detailed(&mut conn, repo_id, tag)
            .await?
            .ok_or_else(|| RegistryError::TagUnknown {
                repo: repo.clone(),
                tag: tag.to_string(),
            })?;
        let size = manifests::tree_size(&mut conn, t.manifest_id).await?;
        Ok(TagDetails {
            name: t.name,
            digest: t.digest,
            media_type: t.media_type,
            size,
            pushed_at: t.pushed_at,
            last_pulled_at: t.last_pulled_at,
            pull_count: t.pull_count,
        })
    }

    /// The live manifests of a repository, by digest, each with why it is kept.
    pub async fn manifests(&self, repo: &RepoName) -> Result<Vec<ManifestDetails>> {
        let mut conn = self.catalogue.reader().await?;
        let repo_id = self.live_repo(&mut conn, repo).await?;
        self.manifests_of(&mut conn, repo_id).await
    }

    async fn manifests_of(
        &self,
        conn: &mut dyn shipshape_meta::Conn,
        repo_id: repos::RepoId,
    ) -> Result<Vec<ManifestDetails>> {
        let rules = self.usage_rules();
        let summaries = manifests::summaries(conn, repo_id).await?;
        let classes: std::collections::HashMap<_, _> =
            usage::manifest_classes(conn, &rules, repo_id)
                .await?
                .into_iter()
                .map(|c| (c.id, c.class))
                .collect();
        let mut indexes: std::collections::HashMap<manifests::ManifestId, Digest> =
            std::collections::HashMap::new();
        for (child, index) in manifests::listing_indexes(conn, repo_id).await? {
            indexes.entry(child).or_insert(index);
        }
        let window = self.options.restore_window.as_millis() as Millis;
        Ok(summaries
            .into_iter()
            .map(|summary| {
                let class = classes
                    .get(&summary.head.id)
                    .copied()
                    .unwrap_or(usage::Class::Live);
                let kept = kept(&summary, class, indexes.get(&summary.head.id), window);
                ManifestDetails { summary, kept }
            })
            .collect())
    }

    /// One live manifest, by digest or a unique prefix of one.
    pub async fn manifest(&self, repo: &RepoName, prefix: &str) -> Result<ManifestDetails> {
        let mut conn = self.catalogue.reader().await?;
        let repo_id = self.live_repo(&mut conn, repo).await?;
        let head = self
            .manifest_by_prefix(&mut conn, repo, repo_id, prefix, false)
            .await?;
        self.manifests_of(&mut conn, repo_id)
            .await?
            .into_iter()
            .find(|m| m.summary.head.id == head.id)
            .ok_or_else(|| RegistryError::ManifestUnknown(prefix.to_string()))
    }

    /// One live manifest in full (by digest or a unique prefix): its bytes, the blobs it
    /// references with how widely each is shared, the manifests it lists, its referrers. A
    /// look, not a pull: no pull is counted.
    pub async fn manifest_view(&self, repo: &RepoName, prefix: &str) -> Result<ManifestView> {
        let details = self.manifest(repo, prefix).await?;
        let mut conn = self.catalogue.reader().await?;
        let repo_id = self.live_repo(&mut conn, repo).await?;
        let digest = details.summary.head.digest.clone();
        let payload = manifests::find_in_named(&mut conn, repo, &digest, true)
            .await?
            .and_then(|(_, p)| p)
            .ok_or_else(|| RegistryError::ManifestUnknown(digest.to_string()))?;
        let parsed =
            shipshape_oci::manifest::parse(&payload, Some(&details.summary.head.media_type))
                .map_err(|e| {
                    RegistryError::Meta(shipshape_meta::MetaError::Corrupt(format!(
                        "stored manifest {digest}: {e}"
                    )))
                })?;
        let sharing: std::collections::HashMap<Digest, manifests::SharedBlob> =
            manifests::blobs_shared(&mut conn, details.summary.head.id)
                .await?
                .into_iter()
                .map(|b| (b.digest.clone(), b))
                .collect();
        let config = (!parsed.media_type.is_index())
            .then(|| parsed.blobs.first().map(|d| d.digest.clone()))
            .flatten();
        let blobs = parsed
            .blobs
            .iter()
            .map(|d| {
                let shared = sharing.get(&d.digest);
                BlobUse {
                    digest: d.digest.clone(),
                    media_type: d.media_type.clone(),
                    size: shared.map_or(d.size, |b| b.size),
                    manifests: shared.map_or(0, |b| b.manifests),
                    repositories: shared.map_or(0, |b| b.repositories),
                }
            })
            .collect();
        let children = parsed
            .children
            .into_iter()
            .map(|d| Child {
                digest: d.digest,
                media_type: d.media_type,
                size: d.size,
                platform: d.platform,
            })
            .collect();
        let referrers = manifests::referrers(&mut conn, repo_id, &digest, None).await?;
        Ok(ManifestView {
            details,
            payload,
            config,
            blobs,
            children,
            referrers,
        })
    }

    /// History of one tag (or all tags) of a repository, newest first. Deleted repositories
    /// keep their history, so a deleted tag can be found and restored. A tag with no history
    /// at all is unknown.
    pub async fn tag_history(
        &self,
        repo: &RepoName,
        tag: Option<&Tag>,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>> {
        let mut conn = self.catalogue.reader().await?;
        let repo_id = repos::find_any(&mut conn, repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        let entries = tags::history_of(&mut conn, repo_id, tag, limit).await?;
        if let Some(tag) = tag
            && entries.is_empty()
        {
            return Err(RegistryError::TagUnknown {
                repo: repo.clone(),
                tag: tag.to_string(),
            });
        }
        Ok(entries)
    }

    /// Storage figures for the whole registry and per repository, the latter only of the
    /// repositories `by` may read. The registry's total names no repository and is everyone's:
    /// it is the capacity all repositories share.
    pub async fn usage(&self, by: &Principal) -> Result<(Usage, Vec<(String, Usage)>)> {
        let figures = self.figures().await?;
        let per = figures
            .per_repository
            .iter()
            .filter(|(name, _)| by.may(Permission::Pull, Some(name)))
            .cloned()
            .collect();
        Ok((figures.total.clone(), per))
    }

    /// Storage figures of the whole registry (what `/metrics` shows).
    pub async fn usage_total(&self) -> Result<Usage> {
        Ok(self.figures().await?.total.clone())
    }

    /// Upload sessions open (in the catalogue) and those with a request writing to them now
    /// (on this node).
    pub async fn upload_sessions(&self) -> Result<(u64, usize)> {
        let mut conn = self.catalogue.reader().await?;
        let open = shipshape_meta::uploads::open_sessions(&mut conn).await?;
        let busy = self.busy_uploads.lock().expect("upload locks").len();
        Ok((open, busy))
    }

    /// When the oldest entry of each collector queue was queued.
    pub async fn queue_oldest(&self) -> Result<shipshape_meta::queue::QueueOldest> {
        let mut conn = self.catalogue.reader().await?;
        Ok(shipshape_meta::queue::oldest_entries(&mut conn).await?)
    }

    /// Manifest reads answered from this node's cache (`cache.rs`).
    pub fn manifest_cache_hits(&self) -> u64 {
        self.cache.hits()
    }

    /// The catalogue's waits, checkpoints and log size.
    pub fn catalogue_stats(&self) -> &shipshape_meta::CatalogueStats {
        self.catalogue.stats()
    }

    /// Storage figures of one repository: from the shared figures, or taken for it alone when
    /// those were taken before it existed (its first upload on another node records no action).
    pub async fn repository_usage(&self, repo: &RepoName) -> Result<Usage> {
        // One connection at a time: `figures` takes its own.
        {
            let mut conn = self.catalogue.reader().await?;
            self.live_repo(&mut conn, repo).await?;
        }
        let figures = self.figures().await?;
        if let Some((_, u)) = figures
            .per_repository
            .iter()
            .find(|(n, _)| n == repo.as_str())
        {
            return Ok(u.clone());
        }
        if self.stale_figures().is_some() {
            // A page drawn with the last figures says so; taking this repository's alone
            // would cost as much as taking them all.
            return Ok(Usage::default());
        }
        let mut conn = self.catalogue.reader().await?;
        usage::per_repository(&mut conn, &self.usage_rules(), Some(repo.as_str()))
            .await?
            .pop()
            .map(|(_, u)| u)
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))
    }

    /// The activity log, newest first, as `by` may see it (`visibility`): the entries of
    /// repositories it may read, and those naming no repository only when it may see the
    /// registry as a whole. An action filter must name a recorded action or a family of them;
    /// a repository filter, one `by` may read.
    pub async fn events(
        &self,
        filter: &EventFilter,
        limit: i64,
        by: &Principal,
    ) -> Result<Vec<Event>> {
        if let Some(action) = &filter.action
            && !events::is_known_action(action)
        {
            return Err(RegistryError::InvalidFilter(format!(
                "action {action:?} is not recorded; use one of {} or a family such as tag",
                events::Action::ALL.map(|a| a.as_str()).join(", ")
            )));
        }
        let mut conn = self.catalogue.reader().await?;
        // A repository filter names a repository that exists or existed (deleted ones keep
        // their log); a typo is told, not answered with an empty log.
        if let Some(name) = &filter.repository {
            let repo: RepoName = name
                .parse()
                .map_err(|e| RegistryError::InvalidFilter(format!("repository {name:?}: {e}")))?;
            // Refused before it is looked up: whether it exists is not the caller's to learn.
            self.require(
                by,
                Permission::Pull,
                &repo,
                "read this repository's activity",
            )?;
            if repos::find_any(&mut conn, &repo).await?.is_none() {
                return Err(RegistryError::NameUnknown(repo));
            }
        }
        let registry_wide = visibility::sees_registry_wide(by);
        let visible = if registry_wide && visibility::reads_everything(by) {
            None
        } else {
            Some(events::Visible {
                repositories: visibility::readable(by, events::repositories(&mut conn).await?),
                registry_wide,
            })
        };
        Ok(events::list(&mut conn, filter, visible.as_ref(), limit).await?)
    }
}

/// Why a manifest is kept, from its class and what holds it. A live manifest is held by its
/// tags first, then by an index listing it, then by its subject; one nothing holds is live
/// only because the settings keep its kind.
fn kept(
    m: &manifests::ManifestSummary,
    class: usage::Class,
    index: Option<&Digest>,
    window: Millis,
) -> Kept {
    match class {
        usage::Class::Live => {
            if !m.tags.is_empty() {
                Kept::Tagged(m.tags.clone())
            } else if let Some(index) = index {
                Kept::ChildOf(index.clone())
            } else if let Some(subject) = &m.subject {
                Kept::ReferrerOf(subject.clone())
            } else {
                Kept::BySettings
            }
        }
        usage::Class::Held { since } => Kept::HeldForRestore {
            until: since + window,
        },
        usage::Class::Grace { until } => Kept::InGrace { until },
        usage::Class::Reclaimable => Kept::Collectable,
    }
}
