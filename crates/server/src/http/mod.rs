//! The HTTP surface: the distribution API under `/v2`, and health endpoints. Handlers parse and
//! validate, call one registry function, and shape the response.

mod blobs;
mod catalog;
mod headers;
mod manifests;
mod metrics;
pub mod path;
mod referrers;
mod router;
mod tags;
mod uploads;

pub use router::router;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::registry::{Principal, Registry};

/// Shared state of every handler. Cloned for every request, so it is one reference count:
/// the services inside hold paths, configuration and several pools each.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Services>);

/// What the handlers call.
#[derive(Debug)]
pub struct Services {
    pub registry: Registry,
    pub collector: shipshape_gc::Collector,
    pub retention: shipshape_gc::retention::Retention,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The caller of a request, as every service call takes it. Until authentication exists,
/// everyone is the anonymous principal, with the client's address as the source.
pub(crate) fn actor(peer: Option<SocketAddr>) -> Principal {
    Principal::anonymous(peer.map(|p| p.ip().to_string()))
}
