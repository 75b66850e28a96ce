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

use crate::registry::{Actor, Registry};

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    pub registry: Registry,
    pub collector: shipshape_gc::Collector,
    pub retention: shipshape_gc::retention::Retention,
}

/// The caller of a request. Until authentication exists, everyone is `anonymous`.
fn actor(peer: Option<SocketAddr>) -> Actor {
    Actor::anonymous(peer.map(|p| p.ip().to_string()))
}
