//! What the management API shows: repositories, tags with their metadata, tag history, storage
//! figures and the activity log.

use shipshape_meta::events::{self, Event, EventFilter};
use shipshape_meta::repos::{self, RepoSummary};
use shipshape_meta::tags::{self, HistoryEntry};
use shipshape_meta::usage::{self, Usage};
use shipshape_meta::{Millis, manifests};
use shipshape_oci::{Digest, RepoName, Tag};

use super::{Registry, RegistryError, Result};

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

impl Registry {
    /// Live repositories with counts, in name order.
    pub async fn repositories(
        &self,
        last: Option<&str>,
        n: Option<u64>,
    ) -> Result<Vec<RepoSummary>> {
        let mut conn = self.catalogue.reader().await?;
        let limit = n.map(|n| n as i64).unwrap_or(-1);
        Ok(repos::summaries(&mut conn, None, last, limit).await?)
    }

    /// One repository's summary.
    pub async fn repository(&self, repo: &RepoName) -> Result<RepoSummary> {
        let mut conn = self.catalogue.reader().await?;
        repos::summaries(&mut conn, Some(repo.as_str()), None, 1)
            .await?
            .pop()
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))
    }

    /// Every tag of a repository with its metadata.
    pub async fn tag_details(&self, repo: &RepoName) -> Result<Vec<TagDetails>> {
        let mut conn = self.catalogue.reader().await?;
        let repo_id = repos::find(&mut conn, repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        let mut out = Vec::new();
        for t in tags::list_detailed(&mut conn, repo_id).await? {
            let size = manifests::tree_size(&mut conn, t.manifest_id).await?;
            out.push(TagDetails {
                name: t.name,
                digest: t.digest,
                media_type: t.media_type,
                size,
                pushed_at: t.pushed_at,
                last_pulled_at: t.last_pulled_at,
                pull_count: t.pull_count,
            });
        }
        Ok(out)
    }

    /// History of one tag (or all tags) of a repository, newest first. Deleted repositories
    /// keep their history, so a deleted tag can be found and restored.
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
        Ok(tags::history_of(&mut conn, repo_id, tag, limit).await?)
    }

    /// Storage figures for the whole registry and per repository (or only `only`).
    pub async fn usage(&self, only: Option<&RepoName>) -> Result<(Usage, Vec<(String, Usage)>)> {
        let mut conn = self.catalogue.reader().await?;
        let cutoff = self.restore_cutoff();
        let total = usage::total(&mut conn, cutoff).await?;
        let per = usage::per_repository(&mut conn, cutoff, only.map(RepoName::as_str)).await?;
        if let Some(repo) = only
            && per.is_empty()
        {
            return Err(RegistryError::NameUnknown(repo.clone()));
        }
        Ok((total, per))
    }

    /// The activity log, newest first.
    pub async fn events(&self, filter: &EventFilter, limit: i64) -> Result<Vec<Event>> {
        let mut conn = self.catalogue.reader().await?;
        Ok(events::list(&mut conn, filter, limit).await?)
    }
}
