//! The storage sweep: objects in the blob store that the catalogue does not know (left by a
//! crash between writing bytes and recording them, or between forgetting and deleting) are
//! deleted once older than a threshold. Safe while the registry runs: keys are never reused
//! (invariant 1), and an object being committed is younger than the threshold.

use shipshape_meta::consistency;
use shipshape_meta::runs::{ItemKind, RunItem};
use shipshape_meta::{Catalogue, Millis};
use shipshape_store::{LIST_PAGE, LocalStore};

use crate::GcError;
use crate::review::Outcome;

/// Finds (and unless `dry_run`, deletes) unknown objects older than `min_age`, a page of the
/// store listing at a time.
pub async fn sweep(
    catalogue: &Catalogue,
    store: &LocalStore,
    now: Millis,
    min_age: Millis,
    dry_run: bool,
) -> Result<Outcome, GcError> {
    let mut out = Outcome::default();
    let cutoff =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis((now - min_age).max(0) as u64);
    for prefix in ["blobs", "uploads"] {
        let mut pages = store.list_pages(prefix, LIST_PAGE);
        while let Some(page) = pages.recv().await {
            let old: Vec<_> = page?.into_iter().filter(|o| o.modified < cutoff).collect();
            let keys: Vec<String> = old.iter().map(|o| o.key.as_str().to_string()).collect();
            let mut conn = catalogue.reader().await?;
            let known = consistency::known_keys(&mut conn, &keys).await?;
            drop(conn);
            for o in old {
                if known.contains(o.key.as_str()) {
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
