//! Readiness (`/readyz`): whether the catalogue answers a read and the blob store takes a
//! write, each within `PROBE_TIMEOUT`, and if not, what is wrong with it.

use std::time::Duration;

use shipshape_meta::MetaError;
use shipshape_store::StoreError;

use super::Registry;

/// How long a part may take to answer before it counts as unavailable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How one part of the storage stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Ok,
    /// No space left: writes are refused (507).
    Full,
    /// Writes are refused (503); reads go on.
    ReadOnly,
    /// It failed otherwise, or did not answer within the probe's timeout.
    Unavailable,
}

/// The catalogue's and the store's checks, with the causes of those that failed (for the log;
/// they name paths, so they are not sent).
#[derive(Clone, Debug)]
pub struct Readiness {
    pub catalogue: Check,
    pub store: Check,
    pub causes: Vec<String>,
}

impl Readiness {
    /// Both parts are fine: the registry can serve every request, pushes included.
    pub fn ready(&self) -> bool {
        self.catalogue == Check::Ok && self.store == Check::Ok
    }
}

impl Registry {
    /// Reads the catalogue and writes (then deletes) a probe object in the store, at once.
    pub async fn readiness(&self) -> Readiness {
        let (catalogue, store) = tokio::join!(
            tokio::time::timeout(PROBE_TIMEOUT, self.catalogue.ping()),
            tokio::time::timeout(PROBE_TIMEOUT, self.store.probe()),
        );
        let mut causes = Vec::new();
        let catalogue = match catalogue {
            Ok(Ok(())) => Check::Ok,
            Ok(Err(e)) => {
                causes.push(e.to_string());
                match e {
                    MetaError::Full(_) => Check::Full,
                    MetaError::ReadOnly(_) => Check::ReadOnly,
                    _ => Check::Unavailable,
                }
            }
            Err(_) => {
                causes.push(format!("catalogue: no answer within {PROBE_TIMEOUT:?}"));
                Check::Unavailable
            }
        };
        let store = match store {
            Ok(Ok(())) => Check::Ok,
            Ok(Err(e)) => {
                causes.push(e.to_string());
                match e {
                    StoreError::Full { .. } => Check::Full,
                    StoreError::ReadOnly { .. } => Check::ReadOnly,
                    _ => Check::Unavailable,
                }
            }
            Err(_) => {
                causes.push(format!("store: no answer within {PROBE_TIMEOUT:?}"));
                Check::Unavailable
            }
        };
        Readiness {
            catalogue,
            store,
            causes,
        }
    }
}
