//! The HTTP surface: the distribution API under `/v2`, and health endpoints. Handlers parse and
//! validate, call one registry function, and shape the response.

mod auth;
mod blobs;
mod catalog;
mod headers;
mod manifests;
mod metrics;
pub mod observe;
pub mod path;
mod referrers;
mod router;
mod tags;
mod uploads;

pub use metrics::Telemetry;
pub use router::router;

use std::sync::Arc;

use crate::registry::Registry;

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
    pub auth: shipshape_auth::Auth,
    /// The token endpoint's address as clients must reach it, when the operator set it;
    /// otherwise it is built from the request's `Host`.
    pub auth_realm: Option<String>,
    /// The server speaks TLS (the realm it names is then `https`).
    pub tls: bool,
    /// Where the data lives, and the storage failures answered so far.
    pub storage: Arc<crate::storage::Storage>,
    /// The HTTP metrics and the storage figures `/metrics` serves.
    pub metrics: Arc<Telemetry>,
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

pub(crate) use auth::{auth_error, require_login};
