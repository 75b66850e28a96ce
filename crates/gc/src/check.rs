//! `shipshape check`: the catalogue against the blob store. Every blob present with its size
//! (and, when asked, its digest), every live manifest's blobs linked in its repository, no tag on
//! a deleted manifest, no object the catalogue does not know. Each finding has a kind, the
//! repositories and tags it affects, and what `repair` did about it.
//!
//! What `repair` does never guesses: a blob whose bytes are lost or damaged is marked missing,
//! so it answers as unknown and clients upload it again (the upload replaces the copy); an
//! unreferenced one is forgotten; a missing link is added; an orphan object is deleted. Lost
//! bytes themselves can only come back from a client: the finding names the images to push.

use futures::StreamExt;
use serde::Serialize;
use shipshape_meta::repos::RepoId;
use shipshape_meta::{Catalogue, Millis, blobs, commit};
use shipshape_meta::{consistency, reviews};
use shipshape_oci::{Digest, Digester};
use shipshape_store::{BlobStore, StorageKey, StoreError};

use crate::GcError;

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub verify_digests: bool,
    pub repair: bool,
    /// Unknown objects younger than this may be uploads being committed; they are left alone.
    pub orphan_min_age: Millis,
}

/// What is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The blob's object is not in storage.
    BlobMissing,
    /// The blob's object has another size than recorded.
    BlobSizeMismatch,
    /// The blob's object hashes to another digest (`--verify-digests`).
    BlobDigestMismatch,
    /// The blob's object cannot be read, or its recorded key is not one the store writes.
    BlobUnreadable,
    /// The blob was marked missing by an earlier repair and nobody has uploaded it since.
    BlobMarkedMissing,
    /// A live manifest references a blob its repository does not link.
    ReferenceUnlinked,
    /// A tag points at a deleted manifest.
    TagOnDeletedManifest,
    /// An object in storage the catalogue does not know (left by a crash).
    OrphanObject,
}

/// Where lost content is used: a manifest of a repository, and the tag it is pulled by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Use {
    pub repository: String,
    pub manifest: String,
    pub tag: Option<String>,
}

/// One thing found wrong.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub message: String,
    pub digest: Option<String>,
    pub repository: Option<String>,
    pub storage_key: Option<String>,
    pub size: Option<u64>,
    /// The images a lost or damaged blob breaks.
    pub affects: Vec<Use>,
    /// What `--repair` did about it.
    pub repaired: Option<String>,
    /// Whether nothing is left to do (a lost blob marked missing still needs its images
    /// pushed again).
    pub resolved: bool,
    /// What the operator can do.
    pub remedy: Option<String>,
}

impl Finding {
    fn new(kind: Kind, message: String) -> Self {
        Finding {
            kind,
            message,
            digest: None,
            repository: None,
            storage_key: None,
            size: None,
            affects: Vec::new(),
            repaired: None,
            resolved: false,
            remedy: None,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub blobs_checked: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Nothing found, or everything found resolved by the repair.
    pub fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| f.resolved)
    }
}

/// What the stored object of a blob turned out to be.
enum Stored {
    Fine,
    Bad(Kind, String),
}

async fn inspect(
    store: &dyn BlobStore,
    blob: &blobs::Blob,
    verify: bool,
) -> Result<Stored, GcError> {
    let key = match StorageKey::from_recorded(&blob.storage_key) {
        Ok(k) => k,
        Err(e) => return Ok(Stored::Bad(Kind::BlobUnreadable, e.to_string())),
    };
    match store.size(&key).await {
        Err(StoreError::NotFound(_)) => Ok(Stored::Bad(
            Kind::BlobMissing,
            "its bytes are missing from storage".into(),
        )),
        Err(e) => Ok(Stored::Bad(Kind::BlobUnreadable, e.to_string())),
        Ok(size) if size != blob.size => Ok(Stored::Bad(
            Kind::BlobSizeMismatch,
            format!(
                "storage holds {size} bytes, the catalogue says {}",
                blob.size
            ),
        )),
        Ok(_) if verify => {
            let mut digester = Digester::new(blob.digest.algorithm());
            let mut stream = store.read(&key, None, None).await?;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => digester.update(&c),
                    Err(e) => return Ok(Stored::Bad(Kind::BlobUnreadable, e.to_string())),
                }
            }
            let actual = digester.finish();
            if actual == blob.digest {
                Ok(Stored::Fine)
            } else {
                Ok(Stored::Bad(
                    Kind::BlobDigestMismatch,
                    format!("its bytes in storage hash to {actual}"),
                ))
            }
        }
        Ok(_) => Ok(Stored::Fine),
    }
}

async fn uses(catalogue: &Catalogue, digest: &Digest) -> Result<Vec<Use>, GcError> {
    let mut conn = catalogue.reader().await?;
    Ok(consistency::users_of_blob(&mut conn, digest)
        .await?
        .into_iter()
        .map(|(repository, manifest, tag)| Use {
            repository,
            manifest,
            tag,
        })
        .collect())
}

fn push_again(affects: &[Use]) -> String {
    let mut images: Vec<String> = affects
        .iter()
        .map(|u| match &u.tag {
            Some(t) => format!("{}:{t}", u.repository),
            None => format!("{}@{}", u.repository, u.manifest),
        })
        .collect();
    images.dedup();
    format!(
        "push these images again (clients upload the blob once it is marked missing): {}",
        images.join(", ")
    )
}

/// Checks one blob; returns its finding, if any.
async fn check_blob(
    catalogue: &Catalogue,
    store: &dyn BlobStore,
    blob: &blobs::Blob,
    present: bool,
    now: Millis,
    opts: &Options,
) -> Result<Option<Finding>, GcError> {
    let stored = inspect(store, blob, opts.verify_digests).await?;
    let (kind, what) = match (present, stored) {
        (true, Stored::Fine) => return Ok(None),
        (false, Stored::Fine) => {
            // Marked missing, but its object is back (restored from a backup): present again.
            let mut f = Finding::new(
                Kind::BlobMarkedMissing,
                format!(
                    "blob {} is marked missing but its bytes are in storage again",
                    blob.digest
                ),
            );
            f.digest = Some(blob.digest.to_string());
            if opts.repair {
                let mut tx = catalogue.begin().await?;
                blobs::mark_present(&mut tx, &blob.digest).await?;
                commit(tx).await?;
                f.repaired = Some("marked present again".into());
                f.resolved = true;
            } else {
                f.remedy = Some("run with --repair to serve it again".into());
            }
            return Ok(Some(f));
        }
        (false, Stored::Bad(_, what)) => (Kind::BlobMarkedMissing, what),
        (true, Stored::Bad(kind, what)) => (kind, what),
    };
    let mut f = Finding::new(kind, format!("blob {}: {what}", blob.digest));
    f.digest = Some(blob.digest.to_string());
    f.storage_key = Some(blob.storage_key.clone());
    f.size = Some(blob.size);
    f.affects = uses(catalogue, &blob.digest).await?;
    let mut tx = catalogue.begin().await?;
    let referenced = reviews::blob_referenced(&mut tx, &blob.digest).await?;
    drop(tx);
    if !referenced {
        // Nothing needs it: forgetting it loses nothing (its key goes to the drainer).
        if opts.repair {
            let mut tx = catalogue.begin().await?;
            unlink_everywhere(&mut tx, &blob.digest, now).await?;
            reviews::forget_blob(&mut tx, &blob.digest, now).await?;
            commit(tx).await?;
            f.repaired = Some("forgot the blob: no manifest references it".into());
            f.resolved = true;
        } else {
            f.remedy = Some("no manifest references it; --repair forgets it".into());
        }
        return Ok(Some(f));
    }
    f.remedy = Some(if opts.repair || kind == Kind::BlobMarkedMissing {
        push_again(&f.affects)
    } else {
        format!(
            "run with --repair to mark it missing (or pull it once: a failed read marks it), \
             then {}",
            push_again(&f.affects)
        )
    });
    if kind == Kind::BlobMarkedMissing {
        f.message = format!(
            "blob {} is marked missing ({what}) and has not been uploaded again",
            blob.digest
        );
    } else if opts.repair {
        let mut tx = catalogue.begin().await?;
        blobs::mark_missing(&mut tx, &blob.digest).await?;
        commit(tx).await?;
        f.repaired = Some(
            "marked missing: it now answers as unknown, so a client pushing an image that uses \
             it uploads it again"
                .into(),
        );
    }
    Ok(Some(f))
}

pub async fn check(
    catalogue: &Catalogue,
    store: &dyn BlobStore,
    now: Millis,
    opts: &Options,
) -> Result<Report, GcError> {
    let mut report = Report::default();
    let mut after: Option<String> = None;
    loop {
        let mut conn = catalogue.reader().await?;
        let page = consistency::blobs_page(&mut conn, after.as_deref(), 500).await?;
        drop(conn);
        let Some((last, _)) = page.last() else { break };
        after = Some(last.digest.to_string());
        for (blob, present) in page {
            report.blobs_checked += 1;
            if let Some(f) = check_blob(catalogue, store, &blob, present, now, opts).await? {
                report.findings.push(f);
            }
        }
    }

    let mut conn = catalogue.reader().await?;
    let unlinked = consistency::unlinked_references(&mut conn).await?;
    let dangling_tags = consistency::tags_on_deleted(&mut conn).await?;
    drop(conn);
    for (repo_id, repo, manifest, blob) in unlinked {
        let mut f = Finding::new(
            Kind::ReferenceUnlinked,
            format!(
                "{repo}: manifest {manifest} references blob {blob}, which the repository does not link"
            ),
        );
        f.digest = Some(blob.clone());
        f.repository = Some(repo.clone());
        if opts.repair {
            let digest: Digest = blob
                .parse()
                .map_err(|e| shipshape_meta::MetaError::Corrupt(format!("{blob}: {e}")))?;
            let mut tx = catalogue.begin().await?;
            blobs::link(&mut tx, RepoId(repo_id), &digest, now).await?;
            commit(tx).await?;
            f.repaired = Some(format!("linked blob {blob} into {repo}"));
            f.resolved = true;
        } else {
            f.remedy = Some("--repair links it".into());
        }
        report.findings.push(f);
    }
    for (repo, tag, digest) in dangling_tags {
        let mut f = Finding::new(
            Kind::TagOnDeletedManifest,
            format!("{repo}:{tag} points at deleted manifest {digest}"),
        );
        f.repository = Some(repo);
        f.digest = Some(digest);
        f.remedy = Some("delete the tag, or restore the manifest's tags".into());
        report.findings.push(f);
    }

    let orphans =
        crate::sweep::sweep(catalogue, store, now, opts.orphan_min_age, !opts.repair).await?;
    for item in orphans.items {
        let mut f = Finding::new(
            Kind::OrphanObject,
            format!(
                "object {} ({} bytes) is not known to the catalogue",
                item.target, item.size
            ),
        );
        f.storage_key = Some(item.target.clone());
        f.size = Some(item.size);
        if opts.repair {
            f.repaired = Some(format!("deleted orphan object {}", item.target));
            f.resolved = true;
        } else {
            f.remedy = Some("--repair deletes it".into());
        }
        report.findings.push(f);
    }
    Ok(report)
}

async fn unlink_everywhere(
    tx: &mut dyn shipshape_meta::Conn,
    digest: &Digest,
    now: Millis,
) -> Result<(), GcError> {
    for link in reviews::links_of(tx, digest).await? {
        blobs::unlink(tx, link.repo, digest, now).await?;
    }
    Ok(())
}
