//! Run leases: the node executing a GC or policy run holds it in the catalogue until a time it
//! keeps moving forward, so that when the node dies, another node's collector sees the lease
//! run out and fails the run, and the registry-wide singleton (one GC run, one run per policy)
//! is free again (`Collector::take_over_dead_runs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use shipshape_meta::{Catalogue, Clock, Millis, Tx, commit};

/// How long a run stays held after its last renewal: long enough that a node busy with a
/// batch renews in time, short enough that a dead node's run frees the registry soon.
pub const RUN_LEASE_MS: Millis = 2 * 60 * 1000;

/// How often the node executing a run renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(20);

type Hold = dyn Fn(&mut Tx, Millis) -> Pin<Box<dyn Future<Output = shipshape_meta::Result<bool>> + Send + '_>>
    + Send
    + Sync;

/// Renews a run's lease every `RENEW_EVERY` until dropped (the run ended) or the run is no
/// longer running (another node failed it, or it was finished).
pub(crate) struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) fn renew<F>(catalogue: Catalogue, clock: Arc<dyn Clock>, hold: F) -> Renewal
where
    F: for<'t> Fn(
            &'t mut Tx,
            Millis,
        )
            -> Pin<Box<dyn Future<Output = shipshape_meta::Result<bool>> + Send + 't>>
        + Send
        + Sync
        + 'static,
{
    let hold: Box<Hold> = Box::new(hold);
    Renewal(tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let renewed = async {
                let mut tx = catalogue.begin().await?;
                let held = hold(&mut tx, clock.now() + RUN_LEASE_MS).await?;
                commit(tx).await?;
                Ok::<_, shipshape_meta::MetaError>(held)
            };
            match renewed.await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, "renewing a run's lease failed"),
            }
        }
    }))
}
