//! Reading, deleting and mounting blobs.

use bytes::Bytes;
use futures::Stream;
use shipshape_meta::{blobs, commit, events, queue, repos};
use shipshape_oci::{Digest, RepoName, UploadId};
use shipshape_store::{ByteRange, StorageKey, StoreError};

use super::{Permission, Principal, Registry, RegistryError, Result};

/// A blob about to be served.
pub struct BlobRead {
    pub digest: Digest,
    pub size: u64,
    key: StorageKey,
}

/// What a mount request led to.
pub enum MountOutcome {
    Mounted(Digest),
    /// The blob could not be mounted; a normal upload session was opened instead.
    Session(UploadId),
}

impl Registry {
    /// Looks up a blob this repository may serve.
    pub async fn stat_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobRead> {
        let mut conn = self.catalogue.reader().await?;
        Ok(find_blob(&mut conn, repo, digest).await?.1)
    }

    /// Answers a HEAD: like [`Registry::stat_blob`], and renews the blob's lease in this
    /// repository (invariant 3), because a client told "this blob exists" skips the upload and
    /// pushes a manifest that relies on it. The lease is written only when it is past half its
    /// length (the collector keeps a link for one and a half, `gc::review::lease`, so the client
    /// has a whole lease either way, whatever grace a collection is given), and the write
    /// decides: a blob the collector has just forgotten answers unknown, so the client uploads
    /// it again.
    pub async fn check_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobRead> {
        let mut conn = self.catalogue.reader().await?;
        let (repo_id, blob) = find_blob(&mut conn, repo, digest).await?;
        let lease = self.options.lease.as_millis() as shipshape_meta::Millis;
        if lease == 0 {
            return Ok(blob);
        }
        let now = self.now();
        let stale_before = now - lease / 2;
        let renewed = blobs::lease(&mut conn, repo_id, digest).await?;
        drop(conn);
        if renewed.is_some_and(|at| at >= stale_before) {
            return Ok(blob);
        }
        let mut tx = self.catalogue.begin().await?;
        // The link's foreign key means a surviving link is a surviving blob.
        let linked = blobs::renew_lease(&mut tx, repo_id, digest, now, stale_before).await?;
        commit(tx).await?;
        if linked {
            Ok(blob)
        } else {
            Err(RegistryError::BlobUnknown(digest.clone()))
        }
    }

    /// Where a client may fetch a blob found by [`Registry::stat_blob`] from the store itself,
    /// when the store hands out such URLs (S3 with `redirect_downloads`); `None`: the registry
    /// streams it ([`Registry::read_blob`]).
    pub async fn blob_download_url(&self, blob: &BlobRead) -> Result<Option<String>> {
        Ok(self.store.download_url(&blob.key).await?)
    }

    /// Streams a blob found by [`Registry::stat_blob`], or a range of it.
    pub async fn read_blob(
        &self,
        blob: &BlobRead,
        range: Option<ByteRange>,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static> {
        match self.store.read(&blob.key, range, Some(blob.size)).await {
            Ok(stream) => Ok(stream),
            Err(e @ (StoreError::NotFound(_) | StoreError::Damaged { .. })) => {
                // Lost or damaged bytes are not served. The blob is marked missing at once, as
                // `check --repair` would: HEAD then says unknown too, so the next push of an
                // image that uses it uploads it again, and that upload replaces the copy.
                tracing::error!(digest = %blob.digest, error = %e, "a blob's bytes are missing or damaged; marked missing until an upload replaces them (`shipshape check` lists the images to push again)");
                let mut tx = self.catalogue.begin().await?;
                blobs::mark_missing(&mut tx, &blob.digest).await?;
                commit(tx).await?;
                Err(RegistryError::BlobLost(blob.digest.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the blob's link from this repository. Refused while a manifest of the repository
    /// references it, because that would break the image.
    pub async fn delete_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        actor: &Principal,
    ) -> Result<()> {
        self.require(actor, Permission::Delete, repo, "delete blobs")?;
        self.require_deletion()?;
        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        let unknown = || RegistryError::BlobUnknown(digest.clone());
        let repo_id = repos::find(&mut tx, repo).await?.ok_or_else(unknown)?;
        if let Some(manifest) = blobs::referenced_in_repo(&mut tx, repo_id, digest).await? {
            return Err(RegistryError::BlobInUse {
                blob: digest.clone(),
                manifest,
            });
        }
        if !blobs::unlink(&mut tx, repo_id, digest, now).await? {
            return Err(unknown());
        }
        events::record(
            &mut tx,
            &events::NewEvent {
                repository: Some(repo.as_str()),
                digest: Some(digest.to_string()),
                ..events::NewEvent::new(actor, events::Action::BlobDelete)
            },
            now,
        )
        .await?;
        commit(tx).await?;
        Ok(())
    }

    /// Links a blob into `repo` from `from` (or, without `from`, from anywhere it is stored).
    /// Falls back to opening an upload session when the blob cannot be mounted.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
        actor: &Principal,
    ) -> Result<MountOutcome> {
        let now = self.now();
        let mut tx = self.catalogue.begin().await?;
        // The blob's review entry first, as an upload's commit takes it (`commit_blob`): a
        // review under way ends before the blob is looked up, and one that begins later sees
        // the new link; looked up first, the blob could be forgotten before it is linked.
        queue::queue_blob(&mut tx, digest, now, "blob mounted").await?;
        // A mount needs read on its source: from `from` when named, else from any repository
        // the caller may read that holds the blob. Otherwise the client uploads the bytes.
        let source = match from {
            Some(from) if actor.may(Permission::Pull, Some(from.as_str())) => {
                match repos::find(&mut tx, from).await? {
                    Some(from_id) => blobs::find_in_repo(&mut tx, from_id, digest).await?,
                    None => None,
                }
            }
            Some(_) => None,
            None if actor.may(Permission::Pull, None) => blobs::find(&mut tx, digest).await?,
            None => {
                let readable = shipshape_meta::reviews::links_of(&mut tx, digest)
                    .await?
                    .into_iter()
                    .any(|l| actor.may(Permission::Pull, Some(&l.repository)));
                if readable {
                    blobs::find(&mut tx, digest).await?
                } else {
                    None
                }
            }
        };
        if source.is_some() {
            let repo_id = repos::get_or_create(&mut tx, repo, now).await?;
            blobs::link(&mut tx, repo_id, digest, now).await?;
            commit(tx).await?;
            return Ok(MountOutcome::Mounted(digest.clone()));
        }
        drop(tx);
        Ok(MountOutcome::Session(self.start_upload(repo, None).await?))
    }
}

/// The blob if `repo` may serve it, with the repository's id.
async fn find_blob(
    conn: &mut dyn shipshape_meta::Conn,
    repo: &RepoName,
    digest: &Digest,
) -> Result<(repos::RepoId, BlobRead)> {
    let unknown = || RegistryError::BlobUnknown(digest.clone());
    let repo_id = repos::find(conn, repo).await?.ok_or_else(unknown)?;
    let blob = blobs::find_in_repo(conn, repo_id, digest)
        .await?
        .ok_or_else(unknown)?;
    Ok((
        repo_id,
        BlobRead {
            digest: blob.digest,
            size: blob.size,
            key: StorageKey::from_recorded(&blob.storage_key)?,
        },
    ))
}
