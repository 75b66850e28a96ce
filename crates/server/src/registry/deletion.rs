//! Deletion users can trust: whole repositories (with a confirmation), tags in bulk by filter
//! (with a dry run that shows exactly what would go), and restoring deleted tags.

use serde::Serialize;
use shipshape_gc::selection::{self, Candidate, Decision, FilterSpec};
use shipshape_meta::{blobs, commit, events, manifests, repos, tags};
use shipshape_oci::{Digest, RepoName, Tag};

use super::{Actor, Registry, RegistryError, Result, protection};

/// What a repository deletion removed.
#[derive(Debug, Serialize)]
pub struct RepositoryDeletion {
    pub repository: String,
    pub tags: Vec<DeletedTag>,
    pub manifests: u64,
}

/// A tag and the digest it pointed at.
#[derive(Debug, Serialize)]
pub struct DeletedTag {
    pub tag: String,
    pub digest: Digest,
}

/// The outcome (or preview) of a bulk deletion.
#[derive(Debug, Serialize)]
pub struct BulkDeletion {
    pub dry_run: bool,
    /// Every tag of the repository with the decision and its reason.
    pub decisions: Vec<Decision>,
    /// The tags deleted (or, in a dry run, that would be).
    pub deleted: Vec<String>,
}

/// A restored tag.
#[derive(Debug, Serialize)]
pub struct RestoredTag {
    pub tag: String,
    pub digest: Digest,
    /// The digest the tag pointed at before, when a reused name was overwritten by force.
    pub replaced: Option<Digest>,
}

impl Registry {
    /// Deletes a repository: its tags, its manifests (restorable for the window) and its blob
    /// links. `confirm` must repeat the repository's name.
    pub async fn delete_repository(
        &self,
        repo: &RepoName,
        confirm: Option<&str>,
        override_protection: bool,
        actor: &Actor,
    ) -> Result<RepositoryDeletion> {
        self.require_deletion()?;
        if confirm != Some(repo.as_str()) {
            return Err(RegistryError::ConfirmationRequired(repo.clone()));
        }
        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        let repo_id = repos::find(&mut tx, repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        let removed = tags::delete_all(&mut tx, repo_id, &actor.name, now).await?;
        let overridden = self.guard_tags(
            repo,
            removed.iter().map(|(t, _)| t.as_str()),
            override_protection,
        )?;
        let manifests = manifests::soft_delete_all(&mut tx, repo_id, now).await?;
        blobs::unlink_all(&mut tx, repo_id, now).await?;
        repos::mark_deleted(&mut tx, repo_id, now).await?;
        let summary = format!("{} tags, {manifests} manifests", removed.len());
        events::record(
            &mut tx,
            &events::NewEvent {
                actor: &actor.name,
                source: actor.source.as_deref(),
                action: "repository.delete",
                repository: Some(repo.as_str()),
                target: Some(&summary),
                reason: overridden.then_some(protection::OVERRIDDEN),
                ..Default::default()
            },
            now,
        )
        .await?;
        commit(tx).await?;
        Ok(RepositoryDeletion {
            repository: repo.to_string(),
            tags: removed
                .into_iter()
                .map(|(tag, digest)| DeletedTag { tag, digest })
                .collect(),
            manifests,
        })
    }

    /// Deletes the tags a filter selects, or with `dry_run` only says which it would.
    /// Decision and deletion happen in one transaction, so the set deleted is the set decided.
    pub async fn bulk_delete_tags(
        &self,
        repo: &RepoName,
        spec: &FilterSpec,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<BulkDeletion> {
        if !dry_run {
            self.require_deletion()?;
        }
        let filter = spec
            .validate()
            .map_err(|e| RegistryError::InvalidFilter(e.to_string()))?;
        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        let repo_id = repos::find(&mut tx, repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        let all = tags::list_detailed(&mut tx, repo_id).await?;
        let candidates: Vec<Candidate> = all
            .iter()
            .map(|t| Candidate {
                name: t.name.clone(),
                pushed_at: t.pushed_at,
            })
            .collect();
        let mut decisions = selection::select(&candidates, &filter, now);
        let protection = self.policies.protection(repo.as_str());
        for d in decisions.iter_mut().filter(|d| d.delete) {
            if let Some((policy, pattern)) = protection.protects(&d.tag) {
                d.delete = false;
                d.reason = format!(
                    "protected by policy {policy} (pattern {})",
                    pattern.as_str()
                );
            }
        }
        let deleted: Vec<String> = decisions
            .iter()
            .filter(|d| d.delete)
            .map(|d| d.tag.clone())
            .collect();
        if !dry_run {
            for d in decisions.iter().filter(|d| d.delete) {
                let tag: Tag = d.tag.parse().map_err(|e: shipshape_oci::NameError| {
                    RegistryError::InvalidFilter(e.to_string())
                })?;
                let digest = tags::delete(&mut tx, repo_id, &tag, &actor.name, now).await?;
                let reason = format!("bulk delete: {}", d.reason);
                events::record(
                    &mut tx,
                    &events::NewEvent {
                        actor: &actor.name,
                        source: actor.source.as_deref(),
                        action: "tag.delete",
                        repository: Some(repo.as_str()),
                        target: Some(tag.as_str()),
                        digest: digest.map(|d| d.to_string()),
                        reason: Some(&reason),
                    },
                    now,
                )
                .await?;
            }
            commit(tx).await?;
        }
        Ok(BulkDeletion {
            dry_run,
            decisions,
            deleted,
        })
    }

    /// Deletes one tag; returns the digest it pointed at.
    pub async fn delete_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        override_protection: bool,
        actor: &Actor,
    ) -> Result<Digest> {
        self.require_deletion()?;
        let overridden = self.guard_tag(repo, tag.as_str(), override_protection)?;
        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        let repo_id = repos::find(&mut tx, repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        let digest = tags::delete(&mut tx, repo_id, tag, &actor.name, now)
            .await?
            .ok_or_else(|| RegistryError::ManifestUnknown(tag.to_string()))?;
        events::record(
            &mut tx,
            &events::NewEvent {
                actor: &actor.name,
                source: actor.source.as_deref(),
                action: "tag.delete",
                repository: Some(repo.as_str()),
                target: Some(tag.as_str()),
                digest: Some(digest.to_string()),
                reason: overridden.then_some(protection::OVERRIDDEN),
            },
            now,
        )
        .await?;
        commit(tx).await?;
        Ok(digest)
    }

    /// Restores a deleted tag to the digest it last pointed at (or to `digest`), bringing back
    /// its manifest, the manifests it lists, their blob links and, if needed, the repository.
    /// A tag name reused since is only overwritten with `force`.
    pub async fn restore_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        digest: Option<Digest>,
        force: bool,
        override_protection: bool,
        actor: &Actor,
    ) -> Result<RestoredTag> {
        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        let repo_id = repos::find_any(&mut tx, repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        let digest = match digest {
            Some(d) => d,
            None => tags::last_deleted_digest(&mut tx, repo_id, tag)
                .await?
                .ok_or_else(|| RegistryError::NothingToRestore {
                    repo: repo.clone(),
                    tag: tag.to_string(),
                })?,
        };
        let manifest = manifests::find_any(&mut tx, repo_id, &digest)
            .await?
            .ok_or_else(|| RegistryError::ManifestPurged(digest.clone()))?;
        let mut overridden = false;
        if let Some(current) = tags::resolve(&mut tx, repo_id, tag).await?
            && current.digest != digest
        {
            if !force {
                return Err(RegistryError::TagInUse {
                    tag: tag.to_string(),
                    current: current.digest,
                });
            }
            overridden = self.guard_tag(repo, tag.as_str(), override_protection)?;
        }
        repos::get_or_create(&mut tx, repo, now).await?;
        manifests::revive_tree(&mut tx, repo_id, manifest.id, now).await?;
        let replaced = tags::restore(&mut tx, repo_id, tag, &manifest, &actor.name, now).await?;
        events::record(
            &mut tx,
            &events::NewEvent {
                actor: &actor.name,
                source: actor.source.as_deref(),
                action: "tag.restore",
                repository: Some(repo.as_str()),
                target: Some(tag.as_str()),
                digest: Some(digest.to_string()),
                reason: replaced.as_ref().filter(|r| **r != digest).map(|_| {
                    if overridden {
                        "forced over a reused, protected tag name (protection overridden)"
                    } else {
                        "forced over a reused tag name"
                    }
                }),
            },
            now,
        )
        .await?;
        commit(tx).await?;
        Ok(RestoredTag {
            tag: tag.to_string(),
            digest,
            replaced: replaced.filter(|r| *r != manifest.digest),
        })
    }
}
