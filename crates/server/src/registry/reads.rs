//! Concurrent reads of the same manifest share one catalogue query.
//!
//! A deployment pulling one tag from many nodes at once sends the same manifest GET again and
//! again; each would cost a catalogue query (a round trip to a database thread). Instead, a
//! request finding a read of the same manifest *not yet started* joins it, and one query answers
//! all who joined. A read that has started is never joined: everyone who joins arrived before
//! the query began, so each answer reflects the catalogue at a moment between that request's
//! arrival and its answer, exactly as if it had queried alone (a tag moved or deleted before a
//! request arrived is never answered from older state). What is kept after the answer, on
//! PostgreSQL only, is `cache.rs`'s business.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shipshape_oci::{Reference, RepoName};
use tokio::sync::watch;

use super::manifests::ManifestRead;

/// What is being read: repository, reference, and whether the bytes are wanted.
pub(super) type ReadKey = (String, String, bool);

pub(super) fn key(repo: &RepoName, reference: &Reference, with_payload: bool) -> ReadKey {
    (
        repo.as_str().to_string(),
        reference.to_string(),
        with_payload,
    )
}

/// What a shared read found. Followers use only `Found`; after anything else they query alone,
/// so errors are always their own.
#[derive(Clone)]
pub(super) enum Shared {
    Found(ManifestRead),
    Other,
}

type Flight = watch::Sender<Option<Shared>>;

#[derive(Default, Debug)]
pub(super) struct ManifestReads {
    /// Reads that have been asked for and not started, by key.
    waiting: Mutex<HashMap<ReadKey, Arc<Flight>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Shared::Found(_) => "Found",
            Shared::Other => "Other",
        })
    }
}

/// The request's part in a read.
pub(super) enum Role {
    /// Runs the query; call [`Leader::start`] right before it and [`Leader::finish`] after.
    Leader(Leader),
    /// Joined a read not yet started; wait for its outcome.
    Follower(watch::Receiver<Option<Shared>>),
}

/// The request that runs a shared read. If it is dropped before finishing (its client went
/// away), its followers see the flight end without an answer and query alone.
pub(super) struct Leader {
    reads: Arc<ManifestReads>,
    key: ReadKey,
    flight: Arc<Flight>,
    started: bool,
}

impl ManifestReads {
    pub(super) fn join(self: &Arc<Self>, key: ReadKey) -> Role {
        let mut waiting = self.waiting.lock().expect("shared manifest reads");
        if let Some(flight) = waiting.get(&key) {
            return Role::Follower(flight.subscribe());
        }
        let flight = Arc::new(watch::channel(None).0);
        waiting.insert(key.clone(), flight.clone());
        Role::Leader(Leader {
            reads: self.clone(),
            key,
            flight,
            started: false,
        })
    }
}

impl Leader {
    /// Closes the read to newcomers: call it right before the query.
    pub(super) fn start(&mut self) {
        self.started = true;
        let mut waiting = self.reads.waiting.lock().expect("shared manifest reads");
        if waiting
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            waiting.remove(&self.key);
        }
    }

    /// Hands the outcome to everyone who joined.
    pub(super) fn finish(self, outcome: Shared) {
        self.flight.send_replace(Some(outcome));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if !self.started {
            self.start();
        }
    }
}

/// Waits for the read a follower joined; `None` when the follower must query alone.
pub(super) async fn outcome(mut rx: watch::Receiver<Option<Shared>>) -> Option<ManifestRead> {
    match rx.wait_for(Option::is_some).await.ok()?.clone() {
        Some(Shared::Found(m)) => Some(m),
        _ => None,
    }
}
