//! Garbage collection and retention.
//!
//! - `review`: the re-check of one queued blob or manifest, in the caller's transaction.
//! - `collector`: background workers over the review queues, the storage drainer, GC runs.
//! - `sweep`: deletes objects the catalogue does not know (crash leftovers).
//! - `checkpoint`: holds a run at a known point, for tests that act in the middle of one.
//! - `deletion`: the one path by which users and policy runs remove tags and manifests.
//! - `check`: verifies the catalogue against the blob store, and repairs what it can.
//! - `selection`: the pure rules that decide which tags a bulk deletion removes.
//! - `retention`: retention policies, their validation and pure evaluation.

pub mod check;
pub mod checkpoint;
pub mod collector;
pub mod deletion;
pub mod lease;
pub mod retention;
pub mod review;
pub mod selection;
pub mod sweep;

pub use checkpoint::{Checkpoint, Held};
pub use collector::{Collector, GcConfig, Metrics, StartError};

/// Finished runs counted by outcome and kind, for the metrics: GC runs (kind `real` or `dry`)
/// and policy runs (kind: the trigger).
#[derive(Debug, Default)]
pub struct RunCounts(
    std::sync::Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>,
);

impl RunCounts {
    pub(crate) fn add(&self, state: shipshape_meta::runs::RunState, kind: &'static str) {
        *self
            .0
            .lock()
            .expect("run counts")
            .entry((state.as_str(), kind))
            .or_default() += 1;
    }

    /// `(state, kind, runs)` for every pair seen so far.
    pub fn get(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.0
            .lock()
            .expect("run counts")
            .iter()
            .map(|(&(state, kind), &n)| (state, kind, n))
            .collect()
    }
}

/// Errors of the collector.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("catalogue: {0}")]
    Meta(#[from] shipshape_meta::MetaError),
    #[error("storage: {0}")]
    Store(#[from] shipshape_store::StoreError),
    /// The principal may not do this (`Principal::may`).
    #[error("{who} may not {what}")]
    Denied { who: String, what: &'static str },
}

impl GcError {
    /// Refuses unless `by` may do `what` registry-wide.
    pub fn check(
        by: &shipshape_meta::Principal,
        what: shipshape_meta::principal::Permission,
        words: &'static str,
    ) -> Result<(), GcError> {
        if by.may(what, None) {
            Ok(())
        } else {
            Err(GcError::Denied {
                who: by.name.clone(),
                what: words,
            })
        }
    }
}
