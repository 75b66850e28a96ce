//! `shipshape check`: the catalogue against the blob store. Every blob present with its size
//! (and, when asked, its digest), every live manifest's blobs linked in its repository, no tag on
//! a deleted manifest, no object the catalogue does not know. `repair` fixes what can be fixed
//! without guessing and says what it did; what needs a re-push is reported only.

use futures::StreamExt;
use shipshape_meta::gc as q;
use shipshape_meta::repos::RepoId;
use shipshape_meta::{Catalogue, Millis, blobs, commit};
use shipshape_oci::Digester;
use shipshape_store::{LocalStore, StorageKey, StoreError};

use crate::GcError;

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub verify_digests: bool,
    pub repair: bool,
    /// Unknown objects younger than this may be uploads being committed; they are left alone.
    pub orphan_min_age: Millis,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub blobs_checked: u64,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
    /// What `repair` did, one line each.
    pub repaired: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

pub async fn check(
    catalogue: &Catalogue,
    store: &LocalStore,
    now: Millis,
    opts: &Options,
) -> Result<Report, GcError> {
    let mut report = Report::default();
    let mut after: Option<String> = None;
    loop {
        let mut conn = catalogue.reader().await?;
        let page = q::blobs_page(&mut conn, after.as_deref(), 500).await?;
        drop(conn);
        let Some(last) = page.last() else { break };
        after = Some(last.digest.to_string());
        for blob in page {
            report.blobs_checked += 1;
            let key = match StorageKey::from_recorded(&blob.storage_key) {
                Ok(k) => k,
                Err(e) => {
                    report.problems.push(format!("blob {}: {e}", blob.digest));
                    continue;
                }
            };
            match store.size(&key).await {
                Err(StoreError::NotFound(_)) => {
                    let mut tx = catalogue.begin().await?;
                    let referenced = q::blob_referenced(&mut tx, &blob.digest).await?;
                    if referenced {
                        report.problems.push(format!(
                            "blob {} is missing from storage (key {key}); images that use it must be pushed again",
                            blob.digest
                        ));
                    } else if opts.repair {
                        unlink_everywhere(&mut tx, &blob.digest, now).await?;
                        q::forget_blob(&mut tx, &blob.digest, now).await?;
                        commit(tx).await?;
                        report.problems.push(format!(
                            "blob {} is missing from storage and unreferenced",
                            blob.digest
                        ));
                        report.repaired.push(format!(
                            "forgot blob {} (missing, unreferenced)",
                            blob.digest
                        ));
                    } else {
                        report.problems.push(format!(
                            "blob {} is missing from storage and unreferenced (repair forgets it)",
                            blob.digest
                        ));
                    }
                }
                Err(e) => report.problems.push(format!("blob {}: {e}", blob.digest)),
                Ok(size) if size != blob.size => report.problems.push(format!(
                    "blob {} has {size} bytes in storage, the catalogue says {}",
                    blob.digest, blob.size
                )),
                Ok(_) if opts.verify_digests => {
                    let mut digester = Digester::new(blob.digest.algorithm());
                    let mut stream = store.read(&key, None).await?;
                    while let Some(chunk) = stream.next().await {
                        digester.update(&chunk.map_err(StoreError::from)?);
                    }
                    let actual = digester.finish();
                    if actual != blob.digest {
                        report.problems.push(format!(
                            "blob {} hashes to {actual} in storage",
                            blob.digest
                        ));
                    }
                }
                Ok(_) => {}
            }
        }
    }

    let mut conn = catalogue.reader().await?;
    let unlinked = q::unlinked_references(&mut conn).await?;
    let dangling_tags = q::tags_on_deleted(&mut conn).await?;
    drop(conn);
    for (repo_id, repo, manifest, blob) in unlinked {
        report.problems.push(format!(
            "{repo}: manifest {manifest} references blob {blob}, which the repository does not link"
        ));
        if opts.repair {
            let digest = blob
                .parse()
                .map_err(|e| shipshape_meta::MetaError::Corrupt(format!("{blob}: {e}")))?;
            let mut tx = catalogue.begin().await?;
            blobs::link(&mut tx, RepoId(repo_id), &digest, now).await?;
            commit(tx).await?;
            report.repaired.push(format!("{repo}: linked blob {blob}"));
        }
    }
    for (repo, tag, digest) in dangling_tags {
        report
            .problems
            .push(format!("{repo}:{tag} points at deleted manifest {digest}"));
    }

    let orphans =
        crate::sweep::sweep(catalogue, store, now, opts.orphan_min_age, !opts.repair).await?;
    for item in orphans.items {
        report.problems.push(format!(
            "object {} ({} bytes) is not known to the catalogue",
            item.target, item.size
        ));
        if opts.repair {
            report
                .repaired
                .push(format!("deleted orphan object {}", item.target));
        }
    }
    Ok(report)
}

async fn unlink_everywhere(
    tx: &mut shipshape_meta::Conn,
    digest: &shipshape_oci::Digest,
    now: Millis,
) -> Result<(), GcError> {
    for link in q::links_of(tx, digest).await? {
        blobs::unlink(tx, link.repo, digest, now).await?;
    }
    Ok(())
}
