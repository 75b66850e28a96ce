//! Pushing, reading and deleting manifests.

use bytes::Bytes;
use shipshape_meta::manifests::{self, ManifestHead, NewManifest};
use shipshape_meta::tags::By;
use shipshape_meta::{commit, events, repos, tags};
use shipshape_oci::manifest::{self, MAX_MANIFEST_BYTES};
use shipshape_oci::{Algorithm, Digest, Reference, RepoName};

use super::reads::{self, Leader, Role, Shared};
use super::{Permission, Principal, Registry, RegistryError, Result};

/// A manifest about to be served.
#[derive(Clone, Debug)]
pub struct ManifestRead {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The exact bytes pushed; `None` when only the headers were asked for. Shared, not
    /// copied, between the requests a shared read answers.
    pub payload: Option<Bytes>,
}

/// The outcome of a manifest push.
pub struct PushedManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

impl Registry {
    async fn resolve(
        &self,
        conn: &mut dyn shipshape_meta::Conn,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<ManifestHead> {
        let repo_id = repos::find(conn, repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        let found = match reference {
            Reference::Tag(t) => tags::resolve(conn, repo_id, t).await?,
            Reference::Digest(d) => manifests::find(conn, repo_id, d).await?,
        };
        found.ok_or_else(|| RegistryError::ManifestUnknown(reference.to_string()))
    }

    /// Finds a manifest by tag or digest; with `with_payload`, also its bytes. Concurrent
    /// identical reads share one query (`reads.rs` says why that answers each correctly), and
    /// on PostgreSQL a read may be answered from what was read lately (`cache.rs`).
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        with_payload: bool,
    ) -> Result<ManifestRead> {
        let key = reads::key(repo, reference, with_payload);
        let changes = self.catalogue.changes();
        let found = match self.cache.get(changes, &key) {
            Some(m) => m,
            None => match self.reads.join(key.clone()) {
                Role::Follower(rx) => match reads::outcome(rx).await {
                    Some(m) => m,
                    None => self.read_manifest(key, repo, reference, None).await?,
                },
                Role::Leader(leader) => {
                    self.read_manifest(key, repo, reference, Some(leader))
                        .await?
                }
            },
        };
        // A pull is a GET of the manifest, as Docker Hub counts it: tools that poll digests
        // with HEAD (Renovate, Flux, `crane digest`) would otherwise keep every tag "recently
        // pulled" and defeat retention by pull time.
        if with_payload {
            let tag = match reference {
                Reference::Tag(t) => Some(t.as_str()),
                Reference::Digest(_) => None,
            };
            self.record_pull(repo, tag, &found.digest).await;
        }
        Ok(found)
    }

    /// One catalogue query for a manifest; a `leader` hands the outcome to those who joined.
    /// What it finds is kept (`cache.rs`) when the catalogue can vouch for it.
    async fn read_manifest(
        &self,
        key: reads::ReadKey,
        repo: &RepoName,
        reference: &Reference,
        mut leader: Option<Leader>,
    ) -> Result<ManifestRead> {
        let with_payload = key.2;
        let mut conn = self.catalogue.reader().await?;
        if let Some(l) = &mut leader {
            l.start();
        }
        let stamp = self.catalogue.changes().stamp();
        let found = match reference {
            Reference::Tag(t) => tags::resolve_in_named(&mut conn, repo, t, with_payload).await?,
            Reference::Digest(d) => {
                manifests::find_in_named(&mut conn, repo, d, with_payload).await?
            }
        };
        let read = match found {
            Some((head, payload)) if payload.is_some() || !with_payload => ManifestRead {
                digest: head.digest,
                media_type: head.media_type,
                size: head.size,
                payload: payload.map(Bytes::from),
            },
            // Only a miss pays for telling an unknown repository from an unknown manifest.
            _ => {
                if let Some(l) = leader {
                    l.finish(Shared::Other);
                }
                return Err(if repos::find(&mut conn, repo).await?.is_none() {
                    RegistryError::NameUnknown(repo.clone())
                } else {
                    RegistryError::ManifestUnknown(reference.to_string())
                });
            }
        };
        if let Some(stamp) = stamp {
            self.cache.put(self.catalogue.changes(), key, stamp, &read);
        }
        if let Some(l) = leader {
            l.finish(Shared::Found(read.clone()));
        }
        Ok(read)
    }

    /// Stores a manifest and, when pushed by tag, points the tag at it. Every blob and child
    /// manifest it references must already be in the repository; that check and the insert of
    /// the references happen in one transaction.
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: &[u8],
        actor: &Principal,
    ) -> Result<PushedManifest> {
        self.require(actor, Permission::Push, repo, "push")?;
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::ManifestTooLarge {
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let algorithm = match reference {
            Reference::Digest(d) => d.algorithm(),
            Reference::Tag(_) => Algorithm::Sha256,
        };
        let digest = Digest::of_bytes(algorithm, body);
        if let Reference::Digest(expected) = reference
            && *expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
        let parsed = manifest::parse(body, content_type)?;
        let blob_digests: Vec<Digest> = parsed.blobs.iter().map(|d| d.digest.clone()).collect();
        let child_digests: Vec<Digest> = parsed.children.iter().map(|d| d.digest.clone()).collect();
        let media_type = parsed.media_type.as_str();
        let annotations = parsed
            .annotations
            .as_ref()
            .map(|a| serde_json::Value::Object(a.clone()).to_string());
        let subject = parsed.subject.as_ref().map(|s| s.digest.clone());

        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        let repo_id = repos::get_or_create(&mut tx, repo, now).await?;
        let missing =
            manifests::missing_references(&mut tx, repo_id, &blob_digests, &child_digests, now)
                .await?;
        if !missing.is_empty() {
            return Err(RegistryError::ManifestBlobUnknown(missing));
        }
        let (id, created) = manifests::insert(
            &mut tx,
            repo_id,
            &NewManifest {
                digest: &digest,
                media_type: &media_type,
                artifact_type: parsed.artifact_type.as_deref(),
                payload: body,
                subject: subject.as_ref(),
                annotations,
                blobs: &blob_digests,
                children: &child_digests,
            },
            now,
        )
        .await?;
        let by = By::new(actor, now);
        if let Reference::Tag(tag) = reference {
            let head = ManifestHead {
                id,
                digest: digest.clone(),
                media_type: media_type.clone(),
                size: body.len() as u64,
            };
            let previous = tags::set(&mut tx, repo_id, tag, &head, &by).await?;
            if previous.as_ref().is_some_and(|p| *p != digest) {
                // Refusing drops the transaction: neither the manifest nor the move is kept.
                self.guard_tag(&mut tx, repo, tag.as_str(), actor, false)
                    .await?;
            }
            events::record(
                &mut tx,
                &events::NewEvent {
                    repository: Some(repo.as_str()),
                    target: Some(tag.as_str()),
                    digest: Some(digest.to_string()),
                    reason: previous
                        .as_ref()
                        .filter(|p| **p != digest)
                        .map(|_| "moved from another manifest, which stays restorable"),
                    ..events::NewEvent::new(actor, events::Action::TagPush)
                },
                now,
            )
            .await?;
        } else {
            // Pushed by digest (an index's child, an artifact, a referrer): recorded too.
            events::record(
                &mut tx,
                &events::NewEvent {
                    repository: Some(repo.as_str()),
                    digest: Some(digest.to_string()),
                    reason: (!created).then_some("pushed again"),
                    ..events::NewEvent::new(actor, events::Action::ManifestPush)
                },
                now,
            )
            .await?;
        }
        shipshape_fault::point("manifest.before-commit");
        commit(tx).await?;
        shipshape_fault::point("manifest.committed");
        Ok(PushedManifest { digest, subject })
    }

    /// Deletes a tag (reference is a tag) or a manifest with every tag pointing at it
    /// (reference is a digest). Returns the names of the tags removed. A deleted manifest is
    /// gone for clients at once but stays restorable for the restore window.
    pub async fn delete_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        actor: &Principal,
    ) -> Result<Vec<String>> {
        // A tag's delete is a writer's (`delete_tag` checks); a manifest's an admin's.
        if let Reference::Digest(_) = reference {
            self.require(actor, Permission::Delete, repo, "delete manifests")?;
        }
        self.require_deletion()?;
        match reference {
            Reference::Tag(tag) => {
                self.delete_tag(repo, tag, false, actor)
                    .await
                    .map_err(|e| match e {
                        RegistryError::TagUnknown { tag, .. } => {
                            RegistryError::ManifestUnknown(tag)
                        }
                        other => other,
                    })?;
                Ok(vec![tag.to_string()])
            }
            Reference::Digest(_) => {
                let mut tx = self.catalogue.begin().await?;
                let head = self.resolve(&mut tx, repo, reference).await?;
                let repo_id = repos::find(&mut tx, repo)
                    .await?
                    .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
                let (removed, _) = self
                    .remove_manifest(&mut tx, repo, repo_id, &head, false, actor)
                    .await?;
                commit(tx).await?;
                Ok(removed)
            }
        }
    }
}
