//! Deletion users can trust: whole repositories (with a confirmation), several tags at once
//! (all or none), tags in bulk by filter (with a dry run that shows exactly what would go),
//! and undoing any of it within the restore window: one tag, a whole repository, or the batch
//! an operation removed.
//!
//! Every deletion reports what it took out of use: bytes held for restore (freed once the
//! window ends) or, with no window, bytes a collection frees at once.

use serde::Serialize;
use shipshape_gc::deletion as gc_deletion;
use shipshape_gc::selection::{self, Candidate, Decision, FilterSpec};
use shipshape_meta::manifests::{ManifestHead, ManifestId};
use shipshape_meta::repos::RepoId;
use shipshape_meta::tags::By;
use shipshape_meta::{Conn, Millis, batches, blobs, commit, events, manifests, repos, tags, usage};
use shipshape_oci::{Digest, RepoName, Tag};

use super::{Permission, Principal, Registry, RegistryError, Result, protection, visibility};

/// What a deletion took out of use.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Freed {
    /// Bytes kept for the restore window, freed by the collector once it has passed.
    pub bytes_held: u64,
    /// Bytes the collector frees at once (no restore window).
    pub bytes_reclaimable: u64,
    /// Until when the deletion can be undone (none without a restore window).
    pub restorable_until: Option<Millis>,
}

/// What a repository deletion removed.
#[derive(Debug, Serialize)]
pub struct RepositoryDeletion {
    pub repository: String,
    pub tags: Vec<DeletedTag>,
    pub manifests: u64,
    pub freed: Freed,
    pub batch: i64,
}

/// A tag and the digest it pointed at.
#[derive(Clone, Debug, Serialize)]
pub struct DeletedTag {
    pub tag: String,
    pub digest: Digest,
}

/// The outcome of deleting named tags.
#[derive(Debug, Serialize)]
pub struct TagsDeletion {
    pub dry_run: bool,
    pub deleted: Vec<DeletedTag>,
    pub freed: Freed,
    /// The batch to restore to undo it (none for a dry run).
    pub batch: Option<i64>,
}

/// The outcome (or preview) of a bulk deletion.
#[derive(Debug, Serialize)]
pub struct BulkDeletion {
    pub dry_run: bool,
    /// Every tag of the repository with the decision and its reason.
    pub decisions: Vec<Decision>,
    /// The tags deleted (or, in a dry run, that would be).
    pub deleted: Vec<String>,
    pub freed: Freed,
    pub batch: Option<i64>,
}

/// What deleting a manifest removed.
#[derive(Debug, Serialize)]
pub struct ManifestDeletion {
    pub digest: Digest,
    pub tags: Vec<String>,
    pub freed: Freed,
    pub batch: i64,
}

/// Whether a restore may point a reused tag name back: `force` overwrites what the name points
/// at now, `override_protection` even when a policy protects the name.
#[derive(Clone, Copy, Debug, Default)]
pub struct Overwrite {
    pub force: bool,
    pub override_protection: bool,
}

/// A restored tag.
#[derive(Debug, Serialize)]
pub struct RestoredTag {
    pub tag: String,
    pub digest: Digest,
    /// The digest the tag pointed at before, when a reused name was overwritten by force.
    pub replaced: Option<Digest>,
}

/// What restoring a batch (or a repository) brought back.
#[derive(Debug, Serialize)]
pub struct BatchRestore {
    pub repository: String,
    pub batch: i64,
    pub tags: Vec<RestoredTag>,
    /// Manifests brought back (for a repository: all it had, tagged or not).
    pub manifests: u64,
}

/// A tag that can go back to a manifest it left, and until when.
#[derive(Debug, Serialize)]
pub struct Restorable {
    pub id: i64,
    pub repository: String,
    pub repository_deleted: bool,
    pub tag: String,
    /// `deleted`, `overwritten` (by a push) or `replaced` (by a forced restore).
    pub how: &'static str,
    pub digest: Digest,
    pub left_at: Millis,
    pub restorable_until: Millis,
    pub actor: String,
    pub batch: Option<i64>,
    /// What the tag points at now, when its name was reused: restoring needs force.
    pub conflict: Option<Digest>,
}

impl Registry {
    /// What deleting `gone` (manifests whose tags were just removed, or that were themselves
    /// deleted) took out of use, measured in the deleting transaction.
    async fn freed(&self, tx: &mut dyn Conn, gone: &[ManifestId]) -> Result<Freed> {
        let rules = self.collector.usage_rules();
        let bytes = usage::bytes_only_for(tx, gone, &rules).await?;
        let window = self.options.restore_window.as_millis() as Millis;
        Ok(if window == 0 {
            Freed {
                bytes_reclaimable: bytes,
                ..Freed::default()
            }
        } else {
            Freed {
                bytes_held: bytes,
                bytes_reclaimable: 0,
                restorable_until: Some(self.now() + window),
            }
        })
    }

    /// Deletes a repository: its tags, its manifests (restorable for the window) and its blob
    /// links. `confirm` must repeat the repository's name.
    pub async fn delete_repository(
        &self,
        repo: &RepoName,
        confirm: Option<&str>,
        override_protection: bool,
        actor: &Principal,
    ) -> Result<RepositoryDeletion> {
        self.require(actor, Permission::Delete, repo, "delete repositories")?;
        self.require_deletion()?;
        if confirm != Some(repo.as_str()) {
            return Err(RegistryError::ConfirmationRequired(repo.clone()));
        }
        self.remove_repository(repo, override_protection, false, actor)
            .await
    }

    /// What deleting a repository would remove and hold, measured by making the deletion in a
    /// transaction that is rolled back (the plan a user confirms). Needs the permission the
    /// deletion needs, but no confirmation.
    pub async fn plan_repository_deletion(
        &self,
        repo: &RepoName,
        override_protection: bool,
        actor: &Principal,
    ) -> Result<RepositoryDeletion> {
        self.require(actor, Permission::Delete, repo, "delete repositories")?;
        self.remove_repository(repo, override_protection, true, actor)
            .await
    }

    async fn remove_repository(
        &self,
        repo: &RepoName,
        override_protection: bool,
        dry_run: bool,
        actor: &Principal,
    ) -> Result<RepositoryDeletion> {
        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        let repo_id = repos::find(&mut tx, repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        let batch = batches::create(
            &mut tx,
            batches::Operation::RepositoryDelete,
            repo_id,
            actor,
            now,
        )
        .await?;
        let by = By::new(actor, now).in_batch(batch);
        let live: Vec<ManifestId> = manifests::summaries(&mut tx, repo_id)
            .await?
            .into_iter()
            .map(|m| m.head.id)
            .collect();
        let removed = tags::delete_all(&mut tx, repo_id, &by).await?;
        let overridden = self
            .guard_tags(
                &mut tx,
                repo,
                &tag_names(&removed),
                actor,
                override_protection,
            )
            .await?;
        let manifests = manifests::soft_delete_all(&mut tx, repo_id, now).await?;
        blobs::unlink_all(&mut tx, repo_id, now).await?;
        repos::mark_deleted(&mut tx, repo_id, now).await?;
        let freed = self.freed(&mut tx, &live).await?;
        let summary = format!("{} tags, {manifests} manifests", removed.len());
        events::record(
            &mut tx,
            &events::NewEvent {
                repository: Some(repo.as_str()),
                target: Some(&summary),
                reason: overridden.then_some(protection::OVERRIDDEN),
                ..events::NewEvent::new(actor, events::Action::RepositoryDelete)
            },
            now,
        )
        .await?;
        if dry_run {
            // Rolled back: the deletion was made only to measure it (nothing is logged).
            drop(tx);
        } else {
            commit(tx).await?;
        }
        Ok(RepositoryDeletion {
            repository: repo.to_string(),
            tags: removed
                .into_iter()
                .map(|(tag, digest)| DeletedTag { tag, digest })
                .collect(),
            manifests,
            freed,
            batch,
        })
    }

    /// Deletes the named tags, all or none: every name is checked (it exists, it is not
    /// protected unless overridden) before anything is deleted. With `dry_run`, only says what
    /// would go and what it would free.
    pub async fn delete_tags(
        &self,
        repo: &RepoName,
        names: &[Tag],
        override_protection: bool,
        dry_run: bool,
        actor: &Principal,
    ) -> Result<TagsDeletion> {
        self.require(actor, Permission::Push, repo, "delete tags")?;
        if !dry_run {
            self.require_deletion()?;
        }
        if names.is_empty() {
            return Err(RegistryError::InvalidFilter("name at least one tag".into()));
        }
        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        let repo_id = repos::find(&mut tx, repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        // The tags are locked as they are checked, so no other deletion or push changes them
        // before this one is done (PostgreSQL runs transactions side by side); in name order,
        // so two deletions of overlapping sets cannot wait on each other.
        let mut in_lock_order: Vec<&Tag> = names.iter().collect();
        in_lock_order.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        in_lock_order.dedup_by(|a, b| a.as_str() == b.as_str());
        let mut unknown = Vec::new();
        for t in in_lock_order {
            if tags::current_locked(&mut tx, repo_id, t.as_str())
                .await?
                .is_none()
            {
                unknown.push(t.to_string());
            }
        }
        if !unknown.is_empty() {
            return Err(RegistryError::TagsUnknown {
                repo: repo.clone(),
                tags: unknown,
            });
        }
        let overridden = self
            .guard_tags(
                &mut tx,
                repo,
                &names.iter().map(Tag::as_str).collect::<Vec<_>>(),
                actor,
                override_protection,
            )
            .await?;
        let batch =
            batches::create(&mut tx, batches::Operation::TagDelete, repo_id, actor, now).await?;
        let by = By::new(actor, now).in_batch(batch);
        let mut deleted = Vec::new();
        let mut gone = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let target = gc_deletion::Repo {
            name: repo,
            id: repo_id,
        };
        for t in names.iter().filter(|t| seen.insert(t.as_str())) {
            let head = tags::resolve(&mut tx, repo_id, t)
                .await?
                .expect("checked above, in this transaction");
            // A dry run records too: it is all rolled back.
            gc_deletion::remove_tag(
                &mut tx,
                target,
                t,
                &by,
                overridden.then_some(protection::OVERRIDDEN),
            )
            .await?;
            gone.push(head.id);
            deleted.push(DeletedTag {
                tag: t.to_string(),
                digest: head.digest,
            });
        }
        let freed = self.freed(&mut tx, &gone).await?;
        if dry_run {
            // Rolled back: the deletions were made only to measure what they free.
            drop(tx);
        } else {
            shipshape_fault::point("delete.before-commit");
            commit(tx).await?;
            shipshape_fault::point("delete.committed");
        }
        Ok(TagsDeletion {
            dry_run,
            deleted,
            freed,
            batch: (!dry_run).then_some(batch),
        })
    }

    /// Deletes the tags a filter selects, or with `dry_run` only says which it would and what
    /// that would free. Decision and deletion happen in one transaction, so the set deleted is
    /// the set decided. Protected tags are kept unless `override_protection`.
    pub async fn bulk_delete_tags(
        &self,
        repo: &RepoName,
        spec: &FilterSpec,
        dry_run: bool,
        override_protection: bool,
        actor: &Principal,
    ) -> Result<BulkDeletion> {
        self.require(actor, Permission::Push, repo, "delete tags")?;
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
        // "The set deleted is the set decided" needs the tags held still meanwhile.
        tags::lock_all(&mut tx, repo_id).await?;
        let all = tags::list_detailed(&mut tx, repo_id).await?;
        let candidates: Vec<Candidate> = all
            .iter()
            .map(|t| Candidate {
                name: t.name.clone(),
                pushed_at: t.pushed_at,
            })
            .collect();
        let mut decisions = selection::select(&candidates, &filter, now);
        // Protected tags are kept, or deleted over the protection when the caller asks and may
        // (the guard every removal passes).
        for d in decisions.iter_mut().filter(|d| d.delete) {
            match self
                .guard_tag(&mut tx, repo, &d.tag, actor, override_protection)
                .await
            {
                Ok(false) => {}
                Ok(true) => d.reason = format!("{}; {}", d.reason, protection::OVERRIDDEN),
                Err(RegistryError::Protected {
                    policy, pattern, ..
                }) => {
                    d.delete = false;
                    d.reason = format!("protected by policy {policy} (pattern {pattern})");
                }
                Err(e) => return Err(e),
            }
        }
        let deleted: Vec<String> = decisions
            .iter()
            .filter(|d| d.delete)
            .map(|d| d.tag.clone())
            .collect();
        let batch = batches::create(
            &mut tx,
            batches::Operation::TagBulkDelete,
            repo_id,
            actor,
            now,
        )
        .await?;
        let by = By::new(actor, now).in_batch(batch);
        let mut gone = Vec::new();
        for d in decisions.iter().filter(|d| d.delete) {
            let tag: Tag = d.tag.parse().map_err(|e: shipshape_oci::NameError| {
                RegistryError::InvalidFilter(e.to_string())
            })?;
            let info = all.iter().find(|t| t.name == d.tag).expect("listed above");
            gone.push(info.manifest_id);
            let reason = format!("bulk delete: {}", d.reason);
            let target = gc_deletion::Repo {
                name: repo,
                id: repo_id,
            };
            // A dry run records too: it is all rolled back.
            gc_deletion::remove_tag(&mut tx, target, &tag, &by, Some(&reason)).await?;
        }
        let freed = self.freed(&mut tx, &gone).await?;
        if dry_run {
            drop(tx);
        } else {
            commit(tx).await?;
        }
        Ok(BulkDeletion {
            dry_run,
            decisions,
            deleted,
            freed,
            batch: (!dry_run).then_some(batch),
        })
    }

    /// Deletes one tag; returns the digest it pointed at.
    pub async fn delete_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        override_protection: bool,
        actor: &Principal,
    ) -> Result<Digest> {
        self.require(actor, Permission::Push, repo, "delete tags")?;
        let done = self
            .delete_tags(
                repo,
                std::slice::from_ref(tag),
                override_protection,
                false,
                actor,
            )
            .await
            .map_err(|e| match e {
                RegistryError::TagsUnknown { repo, mut tags } => RegistryError::TagUnknown {
                    repo,
                    tag: tags.pop().unwrap_or_default(),
                },
                other => other,
            })?;
        Ok(done
            .deleted
            .into_iter()
            .next()
            .expect("one tag deleted")
            .digest)
    }

    /// A manifest of the repository named by a digest or a unique prefix of one (as tables
    /// print them); deleted ones too when `deleted_too`.
    pub(super) async fn manifest_by_prefix(
        &self,
        conn: &mut dyn Conn,
        repo: &RepoName,
        repo_id: RepoId,
        prefix: &str,
        deleted_too: bool,
    ) -> Result<ManifestHead> {
        let hex = prefix.split_once(':').map_or(prefix, |(_, h)| h);
        if hex.is_empty() || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(RegistryError::DigestInvalid(format!(
                "{prefix:?} is neither a digest nor the start of one (sha256:0123456789ab, or \
                 its hex digits alone)"
            )));
        }
        let found = manifests::find_by_prefix(conn, repo_id, prefix, deleted_too, 5).await?;
        match found.len() {
            0 => Err(RegistryError::ManifestUnknown(format!(
                "{prefix} in {repo}"
            ))),
            1 => Ok(found.into_iter().next().expect("one")),
            _ => Err(RegistryError::DigestAmbiguous {
                prefix: prefix.to_string(),
                matches: found.into_iter().map(|m| m.digest).collect(),
            }),
        }
    }

    /// Deletes a manifest named by digest or unique prefix, with every tag pointing at it
    /// (the management API's delete; `/v2` has its own).
    pub async fn delete_manifest_by_prefix(
        &self,
        repo: &RepoName,
        prefix: &str,
        override_protection: bool,
        actor: &Principal,
    ) -> Result<ManifestDeletion> {
        self.require(actor, Permission::Delete, repo, "delete manifests")?;
        self.require_deletion()?;
        self.manifest_deletion(repo, prefix, override_protection, None, false, actor)
            .await
    }

    /// What deleting the manifest `digest` would remove and hold, measured by making the
    /// deletion in a transaction that is rolled back (the plan a user confirms). Refused as the
    /// deletion would be: the manifest listed by an index, a protected tag on it.
    pub async fn plan_manifest_deletion(
        &self,
        repo: &RepoName,
        digest: &Digest,
        actor: &Principal,
    ) -> Result<ManifestDeletion> {
        self.require(actor, Permission::Delete, repo, "delete manifests")?;
        self.manifest_deletion(repo, &digest.to_string(), false, None, true, actor)
            .await
    }

    /// Deletes the manifest `digest` as its plan said: only while exactly the tags `planned`
    /// point at it, checked in the deleting transaction; otherwise nothing is deleted
    /// (`PlanChanged`).
    pub async fn delete_manifest_as_planned(
        &self,
        repo: &RepoName,
        digest: &Digest,
        planned: &[String],
        actor: &Principal,
    ) -> Result<ManifestDeletion> {
        self.require(actor, Permission::Delete, repo, "delete manifests")?;
        self.require_deletion()?;
        self.manifest_deletion(
            repo,
            &digest.to_string(),
            false,
            Some(planned),
            false,
            actor,
        )
        .await
    }

    async fn manifest_deletion(
        &self,
        repo: &RepoName,
        prefix: &str,
        override_protection: bool,
        planned: Option<&[String]>,
        dry_run: bool,
        actor: &Principal,
    ) -> Result<ManifestDeletion> {
        let mut tx = self.catalogue.begin().await?;
        let repo_id = repos::find(&mut tx, repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        let head = self
            .manifest_by_prefix(&mut tx, repo, repo_id, prefix, false)
            .await?;
        let (removed, batch) = self
            .remove_manifest(&mut tx, repo, repo_id, &head, override_protection, actor)
            .await?;
        if let Some(planned) = planned {
            let sorted = |tags: &[String]| {
                let mut t = tags.to_vec();
                t.sort();
                t.dedup();
                t
            };
            if sorted(planned) != sorted(&removed) {
                // Dropped: rolled back, nothing deleted.
                return Err(RegistryError::PlanChanged(format!(
                    "the tags on {} changed since the plan (planned: {}; now: {})",
                    head.digest,
                    names_or_none(planned),
                    names_or_none(&removed)
                )));
            }
        }
        let freed = self.freed(&mut tx, &[head.id]).await?;
        if dry_run {
            // Rolled back: the deletion was made only to measure it (nothing is logged).
            drop(tx);
        } else {
            commit(tx).await?;
        }
        Ok(ManifestDeletion {
            digest: head.digest,
            tags: removed,
            freed,
            batch,
        })
    }

    /// Deletes a manifest and its tags in the caller's transaction, refusing when an index
    /// lists it or a tag is protected; records the deletion. Returns the tags removed and the
    /// batch.
    pub(super) async fn remove_manifest(
        &self,
        tx: &mut dyn Conn,
        repo: &RepoName,
        repo_id: RepoId,
        head: &ManifestHead,
        override_protection: bool,
        actor: &Principal,
    ) -> Result<(Vec<String>, i64)> {
        if let Some(index) = manifests::referencing_parent(tx, head.id).await? {
            return Err(RegistryError::ManifestInUse {
                manifest: head.digest.clone(),
                index,
            });
        }
        let now = self.now();
        let batch =
            batches::create(tx, batches::Operation::ManifestDelete, repo_id, actor, now).await?;
        let by = By::new(actor, now).in_batch(batch);
        let removed = tags::delete_for_manifest(tx, repo_id, head, &by).await?;
        let overridden = self
            .guard_tags(
                tx,
                repo,
                &removed.iter().map(String::as_str).collect::<Vec<_>>(),
                actor,
                override_protection,
            )
            .await?;
        manifests::soft_delete(tx, head.id, now).await?;
        let tags_note = removed.join(",");
        events::record(
            tx,
            &events::NewEvent {
                repository: Some(repo.as_str()),
                target: (!removed.is_empty()).then_some(tags_note.as_str()),
                digest: Some(head.digest.to_string()),
                reason: overridden.then_some(protection::OVERRIDDEN),
                ..events::NewEvent::new(actor, events::Action::ManifestDelete)
            },
            now,
        )
        .await?;
        Ok((removed, batch))
    }

    /// Points `tag` back at `digest` in the caller's transaction, bringing back the manifest
    /// with what it needs (listed manifests, referrers, blob links) and the push time and pull
    /// figures the tag had there. Refuses when the name was reused and not `force`d, or when
    /// the reused name is protected and not overridden. Returns what was replaced and whether a
    /// protection was overridden.
    async fn restore_one(
        &self,
        tx: &mut dyn Conn,
        (repo, repo_id): (&RepoName, RepoId),
        tag: &Tag,
        manifest: &ManifestHead,
        how: Overwrite,
        by: &By<'_>,
    ) -> Result<Option<(Option<Digest>, bool)>> {
        let mut overridden = false;
        let current = tags::resolve(tx, repo_id, tag).await?;
        if current
            .as_ref()
            .is_some_and(|c| c.digest == manifest.digest)
        {
            // Already there (restored before): nothing changes, nothing is recorded.
            return Ok(None);
        }
        if let Some(current) = current {
            if !how.force {
                return Err(RegistryError::TagInUse {
                    tag: tag.to_string(),
                    current: current.digest,
                });
            }
            overridden = self
                .guard_tag(
                    tx,
                    repo,
                    tag.as_str(),
                    by.principal,
                    how.override_protection,
                )
                .await?;
        }
        manifests::revive_tree(tx, repo_id, manifest.id, by.now).await?;
        let state = tags::state_when_left(tx, repo_id, tag, &manifest.digest)
            .await?
            .unwrap_or(tags::TagState {
                pushed_at: by.now,
                ..Default::default()
            });
        let replaced = tags::restore(tx, repo_id, tag, manifest, state, by).await?;
        Ok(Some((replaced, overridden)))
    }

    /// Restores a tag to the manifest it last left (deleted, overwritten by a push, or by a
    /// forced restore), or to `digest` (a digest or a unique prefix of one), bringing back what
    /// that manifest needs and, if needed, the repository. A tag name reused since is only
    /// overwritten with `force`.
    pub async fn restore_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        digest: Option<&str>,
        how: Overwrite,
        actor: &Principal,
    ) -> Result<RestoredTag> {
        self.require(actor, Permission::Push, repo, "restore tags")?;
        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        let repo_id = repos::find_any(&mut tx, repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        let manifest = match digest {
            Some(prefix) => {
                let m = self
                    .manifest_by_prefix(&mut tx, repo, repo_id, prefix, true)
                    .await?;
                // A restore points a tag back where it was, not at any image.
                if !tags::ever_pointed_at(&mut tx, repo_id, tag, &m.digest).await? {
                    return Err(RegistryError::NeverThere {
                        tag: tag.to_string(),
                        digest: m.digest,
                    });
                }
                m
            }
            None => {
                let digest = tags::last_left_digest(&mut tx, repo_id, tag)
                    .await?
                    .ok_or_else(|| RegistryError::NothingToRestore {
                        repo: repo.clone(),
                        tag: tag.to_string(),
                    })?;
                manifests::find_any(&mut tx, repo_id, &digest)
                    .await?
                    .ok_or(RegistryError::ManifestPurged(digest))?
            }
        };
        repos::get_or_create(&mut tx, repo, now).await?;
        let by = By::new(actor, now);
        let Some((replaced, overridden)) = self
            .restore_one(&mut tx, (repo, repo_id), tag, &manifest, how, &by)
            .await?
        else {
            return Err(RegistryError::AlreadyRestored(format!(
                "{repo}:{tag} already points at {}",
                manifest.digest
            )));
        };
        events::record(
            &mut tx,
            &events::NewEvent {
                repository: Some(repo.as_str()),
                target: Some(tag.as_str()),
                digest: Some(manifest.digest.to_string()),
                reason: replaced.as_ref().map(|_| {
                    if overridden {
                        "forced over a reused, protected tag name (protection overridden)"
                    } else {
                        "forced over a reused tag name"
                    }
                }),
                ..events::NewEvent::new(actor, events::Action::TagRestore)
            },
            now,
        )
        .await?;
        shipshape_fault::point("restore.before-commit");
        commit(tx).await?;
        shipshape_fault::point("restore.committed");
        Ok(RestoredTag {
            tag: tag.to_string(),
            digest: manifest.digest,
            replaced,
        })
    }

    /// Restores every tag a batch removed (and, for a repository's deletion, the repository
    /// with its untagged manifests and referrers), all or none: a name reused since needs
    /// `force`, and a manifest already purged fails the whole restore.
    pub async fn restore_batch(
        &self,
        batch: i64,
        how: Overwrite,
        actor: &Principal,
    ) -> Result<BatchRestore> {
        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        let info = batches::get(&mut tx, batch)
            .await?
            .ok_or(RegistryError::BatchUnknown(batch))?;
        let repo: RepoName = info
            .repository
            .parse()
            .map_err(|e| shipshape_meta::MetaError::Corrupt(format!("repository name: {e}")))?;
        let what = if info.action == batches::Operation::RepositoryDelete.as_str() {
            Permission::Delete
        } else {
            Permission::Push
        };
        self.require(actor, what, &repo, "restore what this batch removed")?;
        let repo_id = repos::find_any(&mut tx, &repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        let removed = tags::removed_in_batch(&mut tx, batch).await?;
        // Checked first, so nothing is restored when one tag cannot be.
        let mut conflicts = Vec::new();
        let mut plan = Vec::new();
        for (name, digest) in &removed {
            let tag: Tag = name
                .parse()
                .map_err(|e| shipshape_meta::MetaError::Corrupt(format!("tag {name:?}: {e}")))?;
            let manifest = manifests::find_any(&mut tx, repo_id, digest)
                .await?
                .ok_or_else(|| RegistryError::ManifestPurged(digest.clone()))?;
            if let Some(current) = tags::resolve(&mut tx, repo_id, &tag).await?
                && current.digest != *digest
                && !how.force
            {
                conflicts.push((name.clone(), current.digest));
            }
            plan.push((tag, manifest));
        }
        if !conflicts.is_empty() {
            return Err(RegistryError::RestoreConflict { tags: conflicts });
        }
        // A repository's deletion, and a manifest's (untagged, it has no tag to come back
        // with), deleted their manifests at the batch's instant.
        let revives = info.action == batches::Operation::RepositoryDelete.as_str()
            || info.action == batches::Operation::ManifestDelete.as_str();
        let revivable = if revives {
            manifests::count_deleted_at(&mut tx, repo_id, info.at).await?
        } else {
            0
        };
        repos::get_or_create(&mut tx, &repo, now).await?;
        let by = By::new(actor, now);
        let mut restored = Vec::new();
        let mut overridden = false;
        for (tag, manifest) in plan {
            let Some((replaced, o)) = self
                .restore_one(&mut tx, (&repo, repo_id), &tag, &manifest, how, &by)
                .await?
            else {
                continue;
            };
            overridden |= o;
            restored.push(RestoredTag {
                tag: tag.to_string(),
                digest: manifest.digest,
                replaced,
            });
        }
        if revives {
            manifests::revive_deleted_at(&mut tx, repo_id, info.at, now).await?;
        }
        // Everything the deletion took is back: the tags' images and the rest alike.
        let manifests = revivable;
        if restored.is_empty() && manifests == 0 {
            return Err(RegistryError::AlreadyRestored(format!(
                "everything batch {batch} removed from {repo} is back already"
            )));
        }
        let action = if info.action == batches::Operation::RepositoryDelete.as_str() {
            events::Action::RepositoryRestore
        } else {
            events::Action::TagRestore
        };
        let target = if info.action == batches::Operation::ManifestDelete.as_str() {
            format!(
                "batch {batch} ({}): {} tags, {manifests} manifests",
                info.action,
                restored.len()
            )
        } else {
            format!("batch {batch} ({}): {} tags", info.action, restored.len())
        };
        events::record(
            &mut tx,
            &events::NewEvent {
                repository: Some(repo.as_str()),
                target: Some(&target),
                reason: overridden.then_some(protection::OVERRIDDEN),
                ..events::NewEvent::new(actor, action)
            },
            now,
        )
        .await?;
        commit(tx).await?;
        Ok(BatchRestore {
            repository: repo.to_string(),
            batch,
            tags: restored,
            manifests,
        })
    }

    /// Restores a deleted repository: every tag its latest deletion removed, its untagged
    /// manifests and referrers.
    pub async fn restore_repository(
        &self,
        repo: &RepoName,
        how: Overwrite,
        actor: &Principal,
    ) -> Result<BatchRestore> {
        self.require(actor, Permission::Delete, repo, "restore repositories")?;
        let batch = {
            let mut conn = self.catalogue.reader().await?;
            let repo_id = repos::find_any(&mut conn, repo)
                .await?
                .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
            batches::latest(&mut conn, repo_id, batches::Operation::RepositoryDelete)
                .await?
                .ok_or_else(|| RegistryError::NothingToRestore {
                    repo: repo.clone(),
                    tag: String::new(),
                })?
        };
        self.restore_batch(batch, how, actor).await
    }

    /// The restore bin: tags that can go back to a manifest they left, newest first, of one
    /// repository or of the registry, after the entry `before` of the previous page; only of
    /// repositories `by` may read (one it may not is refused, before it is looked up).
    pub async fn restorable(
        &self,
        repo: Option<&RepoName>,
        before: Option<i64>,
        limit: i64,
        by: &Principal,
    ) -> Result<Vec<Restorable>> {
        if let Some(r) = repo {
            self.require(
                by,
                Permission::Pull,
                r,
                "read this repository's restore bin",
            )?;
        }
        let mut conn = self.catalogue.reader().await?;
        let repo_id = match repo {
            Some(r) => Some(
                repos::find_any(&mut conn, r)
                    .await?
                    .ok_or_else(|| RegistryError::NameUnknown(r.clone()))?,
            ),
            None => None,
        };
        let visible = match repo {
            None if !visibility::reads_everything(by) => {
                Some(visibility::readable(by, repos::all_names(&mut conn).await?))
            }
            _ => None,
        };
        let window = self.options.restore_window.as_millis() as Millis;
        let entries = tags::restorable(
            &mut conn,
            repo_id,
            self.now() - window,
            before,
            limit,
            visible.as_deref(),
        )
        .await?;
        Ok(entries
            .into_iter()
            .map(|e| Restorable {
                id: e.id,
                repository: e.repository,
                repository_deleted: e.repository_deleted,
                tag: e.tag,
                how: match e.how.as_str() {
                    "moved" => "overwritten",
                    "restored" => "replaced",
                    _ => "deleted",
                },
                digest: e.digest,
                left_at: e.left_at,
                restorable_until: e.left_at + window,
                actor: e.actor,
                batch: e.batch,
                conflict: e.current,
            })
            .collect())
    }
}

/// The names of (tag, digest) pairs.
/// Tag names for a message, or "none".
fn names_or_none(tags: &[String]) -> String {
    if tags.is_empty() {
        "none".into()
    } else {
        tags.join(", ")
    }
}

fn tag_names(pairs: &[(String, Digest)]) -> Vec<&str> {
    pairs.iter().map(|(t, _)| t.as_str()).collect()
}
