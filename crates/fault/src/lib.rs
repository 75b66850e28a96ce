//! Named points where the crash tests kill the process with `SIGKILL`, as a power cut, the
//! OOM killer or an operator's `kill -9` would: between the steps whose order the invariants
//! of `shared/design.md` are about (bytes durable, then one transaction; forget, then delete).
//!
//! `shipshape_fault::point("upload.blob-stored")` is an empty inline function unless the
//! `armed` feature is on, which only the test suite's build of the binary has. Armed, the
//! environment variable `SHIPSHAPE_FAULT_POINT=NAME` kills the process the first time it
//! reaches `NAME`, and `NAME@N` the `N`-th time; without the variable nothing happens.

/// Every point, in the order a request or run reaches them. `crash_matrix.rs` runs one crash
/// at each and fails on a point it does not cover, so a new point comes with its test.
pub const POINTS: &[&str] = &[
    // A chunk's bytes are in the store; the session's new offset is not yet recorded.
    "upload.chunk-stored",
    // An upload's bytes are committed under their blob key; the catalogue has no row yet.
    "upload.blob-stored",
    // The blob is recorded and linked; the client has no answer yet.
    "upload.blob-recorded",
    // A manifest and its tag are written in a transaction not yet committed.
    "manifest.before-commit",
    // The manifest push is committed; the client has no answer yet.
    "manifest.committed",
    // A tag deletion is written in a transaction not yet committed.
    "delete.before-commit",
    // The deletion is committed; the client has no answer yet.
    "delete.committed",
    // A restore is written in a transaction not yet committed.
    "restore.before-commit",
    // The restore is committed; the client has no answer yet.
    "restore.committed",
    // A GC run committed one batch of reviews (what it forgot is queued for deletion).
    "gc.batch-reviewed",
    // A drain claimed storage keys to delete and has deleted none yet.
    "gc.deletions-claimed",
    // A drain deleted the objects; the catalogue still lists their keys.
    "gc.objects-deleted",
    // A GC run did all its work; its end is not recorded.
    "gc.drained",
    // A policy run applied its decision to one repository in a transaction not yet committed.
    "policy.before-commit",
    // A policy run committed one repository; its progress is not recorded.
    "policy.repository-done",
    // One schema migration is applied and committed; the next is not.
    "migrate.applied",
];

/// Kills the process here when the test suite armed this point; nothing otherwise.
#[cfg(feature = "armed")]
pub fn point(name: &'static str) {
    armed::reach(name);
}

/// Kills the process here when the test suite armed this point; nothing otherwise.
#[cfg(not(feature = "armed"))]
#[inline(always)]
pub fn point(_name: &'static str) {}

#[cfg(feature = "armed")]
mod armed {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// The armed point's name and on which of its visits to fire.
    fn armed() -> Option<&'static (String, u64)> {
        static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
        ARMED
            .get_or_init(|| {
                let spec = std::env::var("SHIPSHAPE_FAULT_POINT").ok()?;
                let (name, nth) = match spec.split_once('@') {
                    Some((name, n)) => (name, n.parse().expect("SHIPSHAPE_FAULT_POINT=NAME@N")),
                    None => (spec.as_str(), 1),
                };
                assert!(
                    super::POINTS.contains(&name),
                    "SHIPSHAPE_FAULT_POINT names no point: {name}"
                );
                Some((name.to_string(), nth))
            })
            .as_ref()
    }

    pub(super) fn reach(name: &'static str) {
        debug_assert!(super::POINTS.contains(&name), "{name} is not in POINTS");
        static VISITS: AtomicU64 = AtomicU64::new(0);
        let Some((armed, nth)) = armed() else { return };
        if armed != name || VISITS.fetch_add(1, Ordering::SeqCst) + 1 != *nth {
            return;
        }
        eprintln!("shipshape: fault point {name} reached: killing the process");
        // SAFETY: getpid and kill have no preconditions; SIGKILL ends the process here, with
        // no destructor, flush or commit run after it.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        loop {
            std::thread::park();
        }
    }
}
