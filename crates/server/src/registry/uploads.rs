//! Blob upload sessions: start, append chunks, report status, finish, cancel.
//!
//! A session's state lives in the catalogue (the store's record of it, offset, hasher state) and
//! its bytes in the store, so a session survives a restart. Finishing verifies the digest, makes
//! the bytes durable under a fresh key, and only then commits the blob and answers.

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use shipshape_meta::{blobs, commit, queue, repos, uploads};
use shipshape_oci::{Algorithm, Digest, Digester, RepoName, UploadId};
use shipshape_store::{Body, StorageKey, StoreError, UploadRecord};

use super::{Registry, RegistryError, Result};

/// Where a session stands.
#[derive(Clone, Debug)]
pub struct UploadState {
    pub id: UploadId,
    pub received: u64,
}

/// Releases a session's write lock when the request ends, however it ends.
struct SessionGuard<'a> {
    registry: &'a Registry,
    id: UploadId,
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        self.registry
            .busy_uploads
            .lock()
            .expect("upload lock map")
            .remove(&self.id);
    }
}

/// A request body as the store takes it. Boxing it costs an indirect call per frame the client
/// sent, not per byte; an error becomes `StoreError::Body` with its message.
fn boxed_body<'a, S, E>(body: S) -> Body<'a>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'a,
    E: std::fmt::Display,
{
    body.map_err(|e| std::io::Error::other(e.to_string()))
        .boxed()
}

/// The store's state of a recorded session.
fn store_state(up: &uploads::Upload) -> Result<shipshape_store::UploadState> {
    Ok(shipshape_store::UploadState::resume(&UploadRecord {
        storage_key: up.storage_key.clone(),
        received: up.received,
        store_state: up.store_state.clone(),
    })?)
}

/// How long a node's claim on an upload session holds without renewal; the node renews it
/// three times as often while it writes, so only a node that died (or hangs) loses it.
const UPLOAD_CLAIM_MS: shipshape_meta::Millis = 60_000;

impl Registry {
    /// The smallest chunk, other than the last, the store takes without buffering it
    /// (`OCI-Chunk-Min-Length`), when it has one.
    pub fn chunk_min_length(&self) -> Option<u64> {
        self.store.chunk_min_length()
    }

    /// Opens a session. `algorithm` is the hash to compute on the fly (default sha256).
    pub async fn start_upload(
        &self,
        repo: &RepoName,
        algorithm: Option<Algorithm>,
    ) -> Result<UploadId> {
        let id = UploadId::new_random();
        // The object exists before the row that names it, so a recorded session always has bytes.
        let record = self.store.begin_upload().await?.record();
        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        let repo_id = repos::get_or_create(&mut tx, repo, now).await?;
        uploads::create(
            &mut tx,
            &id,
            repo_id,
            &record.storage_key,
            record.store_state.as_deref(),
            algorithm.unwrap_or(Algorithm::Sha256),
            now,
        )
        .await?;
        commit(tx).await?;
        Ok(id)
    }

    async fn find_upload(&self, repo: &RepoName, id: &UploadId) -> Result<uploads::Upload> {
        let mut conn = self.catalogue.reader().await?;
        let repo_id = repos::find(&mut conn, repo)
            .await?
            .ok_or(RegistryError::UploadUnknown)?;
        uploads::find(&mut conn, repo_id, id)
            .await?
            .ok_or(RegistryError::UploadUnknown)
    }

    /// How many bytes the session has received.
    pub async fn upload_status(&self, repo: &RepoName, id: &UploadId) -> Result<UploadState> {
        let up = self.find_upload(repo, id).await?;
        Ok(UploadState {
            id: up.id,
            received: up.received,
        })
    }

    /// Takes the session's write lock, or answers 416 with the current offset if it is busy.
    async fn lock_session(&self, repo: &RepoName, id: &UploadId) -> Result<SessionGuard<'_>> {
        let fresh = self
            .busy_uploads
            .lock()
            .expect("upload lock map")
            .insert(id.clone(), ())
            .is_none();
        if !fresh {
            let up = self.find_upload(repo, id).await?;
            return Err(RegistryError::RangeInvalid {
                repo: repo.clone(),
                upload: id.clone(),
                received: up.received,
            });
        }
        Ok(SessionGuard {
            registry: self,
            id: id.clone(),
        })
    }

    /// The hasher positioned at the session's offset: restored from the saved state, or
    /// rebuilt from the bytes if the state is missing or unreadable.
    async fn session_hasher(
        &self,
        up: &uploads::Upload,
        state: &shipshape_store::UploadState,
    ) -> Result<Digester> {
        if up.received == 0 {
            return Ok(Digester::new(up.hash_alg));
        }
        if let Some(h) = up
            .hash_state
            .as_deref()
            .and_then(|s| Digester::restore_state(up.hash_alg, s))
        {
            return Ok(h);
        }
        Ok(self.store.rehash(state, up.hash_alg).await?)
    }

    /// Appends a request body to a locked session. `range` is the client's `Content-Range`
    /// (inclusive), checked against the offset; a body of another length is refused and
    /// leaves the session as it was. Returns the advanced session and its hasher.
    async fn append_locked(
        &self,
        repo: &RepoName,
        up: &uploads::Upload,
        range: Option<(u64, u64)>,
        body: Body<'_>,
    ) -> Result<(shipshape_store::UploadState, Digester)> {
        let out_of_order = || RegistryError::RangeInvalid {
            repo: repo.clone(),
            upload: up.id.clone(),
            received: up.received,
        };
        if let Some((first, last)) = range
            && (first != up.received || last < first)
        {
            return Err(out_of_order());
        }
        // The session lock keeps this node's requests apart; on a store other nodes write
        // too, the claim keeps them out. A local store has one node (the catalogue is bound
        // to it), so it needs no claim and no extra commit per chunk.
        let node = self.collector.config().node.as_str();
        let claim = self.options.shared_store;
        if claim && !self.claim_session(up, node).await? {
            return Err(self.refusal(repo, up).await);
        }
        let appended = self
            .append_claimed(up, claim.then_some(node), range, body)
            .await;
        if claim && appended.is_err() {
            // Best effort: a claim not released runs out on its own.
            if let Err(e) = self.release_session(up, node).await {
                tracing::warn!(upload = %up.id, error = %e, "releasing an upload's claim failed");
            }
        }
        let (state, hasher) = appended?;
        shipshape_fault::point("upload.chunk-stored");
        let record = state.record();
        let mut tx = self.catalogue.begin().await?;
        let moved = uploads::advance(
            &mut tx,
            &up.id,
            node,
            up.received,
            record.received,
            record.store_state.as_deref(),
            &hasher.save_state(),
            self.now(),
        )
        .await?;
        commit(tx).await?;
        if !moved {
            // Another node took the claim over (this one could not renew it in time), or the
            // session was cancelled or expired meanwhile.
            return Err(self.refusal(repo, up).await);
        }
        Ok((state, hasher))
    }

    /// Claims the session for this node from the offset it read (`uploads::claim`). Not synced:
    /// a claim lost with the machine is one nobody holds.
    async fn claim_session(&self, up: &uploads::Upload, node: &str) -> Result<bool> {
        let now = self.now();
        let mut tx = self.catalogue.begin_unsynced().await?;
        let claimed = uploads::claim(
            &mut tx,
            &up.id,
            up.received,
            node,
            now,
            now + UPLOAD_CLAIM_MS,
        )
        .await?;
        commit(tx).await?;
        Ok(claimed)
    }

    /// Extends this node's claim; whether it was still this node's.
    async fn renew_claim(&self, up: &uploads::Upload, node: &str) -> Result<bool> {
        let now = self.now();
        let mut tx = self.catalogue.begin_unsynced().await?;
        let held = uploads::renew_claim(&mut tx, &up.id, node, now, now + UPLOAD_CLAIM_MS).await?;
        commit(tx).await?;
        Ok(held)
    }

    async fn release_session(&self, up: &uploads::Upload, node: &str) -> Result<()> {
        let mut tx = self.catalogue.begin_unsynced().await?;
        uploads::release_claim(&mut tx, &up.id, node).await?;
        commit(tx).await?;
        Ok(())
    }

    /// Why this node may not write the session: it is gone (404), or another node moved it
    /// or is writing it (416 with the offset now, so the client re-syncs).
    async fn refusal(&self, repo: &RepoName, up: &uploads::Upload) -> RegistryError {
        match self.find_upload(repo, &up.id).await {
            Ok(now) => RegistryError::RangeInvalid {
                repo: repo.clone(),
                upload: up.id.clone(),
                received: now.received,
            },
            Err(e) => e,
        }
    }

    /// Appends the body; under `claimed_by`'s claim, renewing it while the bytes flow.
    async fn append_claimed(
        &self,
        up: &uploads::Upload,
        claimed_by: Option<&str>,
        range: Option<(u64, u64)>,
        body: Body<'_>,
    ) -> Result<(shipshape_store::UploadState, Digester)> {
        let state = store_state(up)?;
        let mut hasher = self.session_hasher(up, &state).await?;
        let announced = range.map(|(first, last)| last - first + 1);
        let every = std::time::Duration::from_millis(UPLOAD_CLAIM_MS as u64 / 3);
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut append = self.store.append(&state, body, announced, &mut hasher);
        let appended = loop {
            tokio::select! {
                out = &mut append => break out,
                Some(node) = async { renew.tick().await; claimed_by } => {
                    if !self.renew_claim(up, node).await? {
                        return Err(RegistryError::UploadUnknown);
                    }
                }
            }
        };
        drop(append);
        let state = match appended {
            Ok(s) => s,
            Err(StoreError::NotFound(_)) => return Err(RegistryError::UploadUnknown),
            Err(StoreError::LengthMismatch { expected, received }) => {
                let (first, last) = range.unwrap_or_default();
                return Err(RegistryError::SizeInvalid(format!(
                    "Content-Range {first}-{last} announces {expected} bytes but the body had {received}"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        Ok((state, hasher))
    }

    /// Appends a chunk (PATCH).
    pub async fn upload_chunk<S, E>(
        &self,
        repo: &RepoName,
        id: &UploadId,
        range: Option<(u64, u64)>,
        body: S,
    ) -> Result<UploadState>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let _guard = self.lock_session(repo, id).await?;
        let up = self.find_upload(repo, id).await?;
        let (state, _) = self
            .append_locked(repo, &up, range, boxed_body(body))
            .await?;
        Ok(UploadState {
            id: id.clone(),
            received: state.received(),
        })
    }

    /// Finishes a session (PUT), with an optional last chunk in `body`. On a digest mismatch
    /// the session and its bytes are discarded.
    pub async fn finish_upload<S, E>(
        &self,
        repo: &RepoName,
        id: &UploadId,
        expected: std::result::Result<Digest, RegistryError>,
        range: Option<(u64, u64)>,
        body: S,
    ) -> Result<Digest>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let _guard = self.lock_session(repo, id).await?;
        let up = self.find_upload(repo, id).await?;
        let expected = match expected {
            Ok(d) => d,
            Err(e) => {
                self.discard_upload(&up).await?;
                return Err(e);
            }
        };
        let (state, hasher) = self
            .append_locked(repo, &up, range, boxed_body(body))
            .await?;
        let actual = if hasher.algorithm() == expected.algorithm() {
            hasher.finish()
        } else {
            self.store
                .rehash(&state, expected.algorithm())
                .await?
                .finish()
        };
        if actual != expected {
            self.discard_upload(&up).await?;
            return Err(RegistryError::DigestMismatch { expected, actual });
        }
        self.commit_blob(repo, &state, &expected, Some(id)).await?;
        Ok(expected)
    }

    /// Cancels a session (DELETE).
    pub async fn cancel_upload(&self, repo: &RepoName, id: &UploadId) -> Result<()> {
        let _guard = self.lock_session(repo, id).await?;
        let up = self.find_upload(repo, id).await?;
        self.discard_upload(&up).await
    }

    /// Forgets a session, then drops its bytes.
    async fn discard_upload(&self, up: &uploads::Upload) -> Result<()> {
        let state = store_state(up)?;
        let mut tx = self.catalogue.begin().await?;
        uploads::delete(&mut tx, &up.id).await?;
        commit(tx).await?;
        self.store.abort(&state).await?;
        Ok(())
    }

    /// A whole blob in one request (POST with `?digest=`). No session is recorded: the bytes
    /// go to an unrecorded upload session, and only a verified blob reaches the catalogue, so a
    /// refused request leaves nothing (a crash mid-request leaves an orphan object that the
    /// storage sweep removes).
    pub async fn upload_monolithic<S, E>(
        &self,
        repo: &RepoName,
        digest: Digest,
        body: S,
    ) -> Result<Digest>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let session = self.store.begin_upload().await?;
        let mut hasher = Digester::new(digest.algorithm());
        let state = match self
            .store
            .append(&session, boxed_body(body), None, &mut hasher)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                self.store.abort(&session).await?;
                return Err(e.into());
            }
        };
        let actual = hasher.finish();
        if actual != digest {
            self.store.abort(&state).await?;
            return Err(RegistryError::DigestMismatch {
                expected: digest,
                actual,
            });
        }
        self.commit_blob(repo, &state, &digest, None).await?;
        Ok(digest)
    }

    /// Makes verified upload bytes a blob of `repo`: durable under a fresh key first, then one
    /// transaction that records the blob (unless the catalogue has it already), links it, and
    /// forgets the session. When the recorded copy is missing or damaged, the upload replaces
    /// it: re-pushing an image repairs a blob whose bytes were lost.
    async fn commit_blob(
        &self,
        repo: &RepoName,
        upload: &shipshape_store::UploadState,
        digest: &Digest,
        session: Option<&UploadId>,
    ) -> Result<()> {
        let size = upload.received();
        let blob_key = self.store.commit(upload).await?;
        shipshape_fault::point("upload.blob-stored");
        // Looked at before the transaction: no storage call happens inside one.
        let damaged = self.damaged_copy(digest).await?;
        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        let repo_id = repos::get_or_create(&mut tx, repo, now).await?;
        // The blob's review entry is taken first, as the collector takes it before it unlinks
        // or forgets the blob (`reviews::blob_facts`): a review under way ends before the
        // blob is looked up (one it forgot is not found, and this copy is recorded), and one
        // that begins later waits and then sees this link. Looked up first, the blob could be
        // forgotten before the link is written, which the database then refuses.
        queue::queue_blob(&mut tx, digest, now, "blob uploaded").await?;
        let recorded = blobs::find_recorded(&mut tx, digest).await?;
        let mut ours_kept = false;
        let mut replaced = None;
        match recorded {
            None => {
                // Another upload of the same bytes may commit first: then ours is discarded.
                ours_kept = blobs::insert(
                    &mut tx,
                    &blobs::Blob {
                        digest: digest.clone(),
                        size,
                        storage_key: blob_key.as_str().to_string(),
                    },
                    now,
                )
                .await?
            }
            Some((old, _)) if damaged.as_deref() == Some(old.storage_key.as_str()) => {
                ours_kept =
                    blobs::replace_copy(&mut tx, digest, &old.storage_key, blob_key.as_str(), now)
                        .await?
                        .is_some();
                if ours_kept {
                    tracing::warn!(%digest, old_key = old.storage_key, "an upload replaced a blob's missing or damaged copy");
                    replaced = StorageKey::from_recorded(&old.storage_key).ok();
                }
            }
            Some(_) => {}
        }
        if !ours_kept {
            // The catalogue already has these bytes under another key; ours are never recorded
            // as a blob. Queued for the drainer in this transaction, so no crash leaves the copy
            // behind, and deleted once answered: unlinking a large file takes a while.
            queue::queue_storage_deletion(&mut tx, blob_key.as_str(), now).await?;
        }
        blobs::link(&mut tx, repo_id, digest, now).await?;
        if let Some(id) = session {
            uploads::delete(&mut tx, id).await?;
        }
        commit(tx).await?;
        shipshape_fault::point("upload.blob-recorded");
        if !ours_kept {
            self.background.spawn(self.clone().discard_copy(blob_key));
        }
        if let Some(old) = replaced {
            // The damaged copy was queued for deletion in the commit; delete it now.
            self.background.spawn(self.clone().discard_copy(old));
        }
        Ok(())
    }

    /// The storage key of the recorded copy of `digest` when that copy is marked missing, or is
    /// absent from storage or of the wrong size: an upload of the right bytes replaces it.
    async fn damaged_copy(&self, digest: &Digest) -> Result<Option<String>> {
        let recorded = {
            let mut conn = self.catalogue.reader().await?;
            blobs::find_recorded(&mut conn, digest).await?
        };
        let Some((blob, present)) = recorded else {
            return Ok(None);
        };
        if !present {
            return Ok(Some(blob.storage_key));
        }
        let Ok(key) = StorageKey::from_recorded(&blob.storage_key) else {
            return Ok(Some(blob.storage_key));
        };
        Ok(match self.store.size(&key).await {
            Ok(n) if n == blob.size => None,
            Ok(_) | Err(StoreError::NotFound(_)) => Some(blob.storage_key),
            Err(e) => return Err(e.into()),
        })
    }

    /// Deletes a redundant or replaced copy queued by `commit_blob`, then forgets its key. On failure the
    /// key stays queued and the collector's drainer deletes it later; deleting it twice is
    /// harmless, since the key is never reused and a missing object counts as deleted.
    async fn discard_copy(self, key: StorageKey) {
        let forget = async {
            self.store.delete(&key).await?;
            let mut tx = self.catalogue.begin_unsynced().await?;
            queue::storage_deleted(&mut tx, &[key.as_str()]).await?;
            commit(tx).await?;
            Ok::<_, RegistryError>(())
        };
        if let Err(e) = forget.await {
            tracing::warn!(key = key.as_str(), error = %e, "deleting a redundant upload left it to the collector");
        }
    }
}
