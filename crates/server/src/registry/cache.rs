//! Manifests read lately, answered again while the catalogue vouches for them (PostgreSQL
//! only).
//!
//! Several nodes share one catalogue, and a manifest GET that queries it costs both sides a
//! round trip; with one node's connections spread over three, fewer identical reads meet in
//! flight (`reads.rs`), and three nodes kept 68–81% of one node's GET rate, 135% with this
//! cache (bench/README.md, runs L and M).
//!
//! An entry is stamped with the catalogue's change generation read before its query
//! (`shipshape_meta::changes`) and answers only while that generation has not moved: a commit
//! of this node moves it before the request that made it is answered, another node's commit
//! when its change notice arrives (a millisecond or so; `[catalogue] manifest_cache_ttl`, 5 s,
//! bounds how long a notice that never comes could leave an entry standing). A GET on one node
//! in the moment after a push or delete on another may thus still see the tag as it was.
//!
//! Only what a GET or HEAD serves is kept: nothing here answers whether a blob exists, which
//! gates upload skipping, mounts and the collector (ARCHITECTURE.md, the invariant "A manifest
//! read never answers from before a change this node made"). Misses and errors are never kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use shipshape_meta::changes::Changes;

use super::manifests::ManifestRead;
use super::reads::ReadKey;

/// Manifest bytes kept at most (a manifest is at most 4 MiB); past it, new reads are not kept
/// until the next change empties the cache.
const BUDGET_BYTES: usize = 64 << 20;

#[derive(Default, Debug)]
pub(super) struct ManifestCache {
    entries: Mutex<Entries>,
    hits: AtomicU64,
}

#[derive(Default, Debug)]
struct Entries {
    /// The generation every entry was stamped with: on a change, all are dropped at once.
    generation: u64,
    map: HashMap<ReadKey, (Instant, ManifestRead)>,
    bytes: usize,
}

impl Entries {
    /// Moves to `generation`, dropping what was stamped before; false when the map is already
    /// newer (the caller read its generation before a change this map has seen).
    fn at(&mut self, generation: u64) -> bool {
        if self.generation > generation {
            return false;
        }
        if self.generation < generation {
            self.generation = generation;
            self.map.clear();
            self.bytes = 0;
        }
        true
    }
}

impl ManifestCache {
    /// A read that is still what the catalogue holds, as far as this node has been told.
    pub(super) fn get(&self, changes: &Changes, key: &ReadKey) -> Option<ManifestRead> {
        let generation = changes.stamp()?;
        let mut entries = self.entries.lock().expect("manifest cache");
        if !entries.at(generation) {
            return None;
        }
        let (at, read) = entries.map.get(key)?;
        let fresh = at.elapsed() < changes.ttl();
        if fresh {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        fresh.then(|| read.clone())
    }

    pub(super) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Keeps `read`, found by a query that began after `stamp` was read, unless anything
    /// changed since.
    pub(super) fn put(&self, changes: &Changes, key: ReadKey, stamp: u64, read: &ManifestRead) {
        let mut entries = self.entries.lock().expect("manifest cache");
        // Checked under the lock: a change after it moves the generation, and the next `get`
        // drops this entry with the rest.
        if !changes.current(stamp) || !entries.at(stamp) {
            return;
        }
        let size = read.payload.as_ref().map_or(0, |p| p.len());
        if entries.bytes + size > BUDGET_BYTES {
            return;
        }
        entries.bytes += size;
        if let Some((_, old)) = entries.map.insert(key, (Instant::now(), read.clone())) {
            entries.bytes -= old.payload.as_ref().map_or(0, |p| p.len());
        }
    }
}
