//! A place where a run can be held, so that a test can act in the middle of a run (cancel it,
//! stop the server) at a known point instead of racing it. Unarmed, passing costs one lock.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Shared by a runner and whoever arms it.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint(Arc<Mutex<Option<Armed>>>);

#[derive(Debug)]
struct Armed {
    after: u64,
    reached: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// The holder's side of an armed checkpoint.
#[derive(Debug)]
pub struct Held {
    reached: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl Held {
    /// Waits until a run stops at the checkpoint. Panics if the checkpoint is dropped first.
    pub async fn reached(&mut self) {
        (&mut self.reached)
            .await
            .expect("the run ended without reaching the checkpoint");
    }

    /// Lets the run go on.
    pub fn release(self) {
        let _ = self.release.send(());
    }
}

impl Checkpoint {
    /// Holds the next run that has done at least `after` units of work (deletions for a GC run,
    /// repositories for a policy run), until the returned handle is released or dropped.
    pub fn arm(&self, after: u64) -> Held {
        let (reached_tx, reached) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        *self.0.lock().expect("checkpoint") = Some(Armed {
            after,
            reached: reached_tx,
            release: release_rx,
        });
        Held { reached, release }
    }

    /// Called by a run after each unit of work; waits there while armed for this point.
    pub(crate) async fn pass(&self, done: u64) {
        let armed = {
            let mut slot = self.0.lock().expect("checkpoint");
            match &*slot {
                Some(a) if done >= a.after => slot.take(),
                _ => None,
            }
        };
        if let Some(a) = armed {
            let _ = a.reached.send(());
            let _ = a.release.await;
        }
    }
}
