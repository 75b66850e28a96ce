//! The storage sweep: objects in the blob store that the catalogue does not know (left by a
//! crash between writing bytes and recording them, or between forgetting and deleting) are
//! deleted once older than a threshold. Safe while the registry runs: keys are never reused
//! (invariant 1), and an object being committed is younger than the threshold.

use futures::StreamExt;
use shipshape_meta::consistency;
use shipshape_meta::runs::{ItemKind, RunItem};
use shipshape_meta::{Catalogue, Millis};
use shipshape_store::{BLOBS_PREFIX, BlobStore, StorageKey, StoreError, UPLOADS_PREFIX};

use crate::GcError;
use crate::review::Outcome;

/// Objects asked about in one catalogue read: the sweep holds at most this many (plus what the
/// store's listing reads ahead), however many objects the store holds.
const PAGE: usize = 1000;

/// Finds (and unless `dry_run`, deletes) unknown objects older than `min_age`, a page of the
/// store listing at a time.
pub async fn sweep(
    catalogue: &Catalogue,
    store: &dyn BlobStore,
    now: Millis,
    min_age: Millis,
    dry_run: bool,
) -> Result<Outcome, GcError> {
    let mut out = Outcome::default();
    let cutoff =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis((now - min_age).max(0) as u64);
    for prefix in [BLOBS_PREFIX, UPLOADS_PREFIX] {
        let mut pages = store.list(prefix).chunks(PAGE);
        while let Some(page) = pages.next().await {
            let mut old = Vec::with_capacity(page.len());
            for o in page {
                let o = o?;
                if o.modified < cutoff {
                    old.push(o);
                }
            }
            // An object is asked about as what owns it: an S3 upload's tail objects under
            // `uploads/` belong to the session recorded under its blob key.
            let owners: Vec<String> = old
                .iter()
                .map(|o| o.key.recorded_owner().as_str().to_string())
                .collect();
            let mut conn = catalogue.reader().await?;
            let known = consistency::known_keys(&mut conn, &owners).await?;
            drop(conn);
            for (o, owner) in old.into_iter().zip(&owners) {
                if known.contains(owner) && !outlived_its_session(store, &o.key).await? {
                    continue;
                }
                if !dry_run {
                    store.delete(&o.key).await?;
                }
                out.add(RunItem {
                    kind: ItemKind::Orphan,
                    repository: None,
                    target: o.key.as_str().to_string(),
                    size: o.size,
                });
            }
        }
    }
    Ok(out)
}

/// Whether `key` is an upload's tail object whose session has become a blob: the session's
/// key then holds an object (a session written in place has none until its commit), and the
/// commit that made it deletes the tails, so one left over (the delete failed, or a racing
/// append wrote it late) is garbage although the catalogue knows its owner. Costs a HEAD per
/// old tail, and old tails are rare.
async fn outlived_its_session(store: &dyn BlobStore, key: &StorageKey) -> Result<bool, GcError> {
    let owner = key.recorded_owner();
    if &owner == key {
        return Ok(false);
    }
    match store.size(&owner).await {
        Ok(_) => Ok(true),
        Err(StoreError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
