//! The soak benchmark (`bench-soak`): one Shipshape under steady push, pull, delete, retention
//! and collection load for an hour, sampled every few seconds, so that memory, descriptors,
//! catalogue size, errors and tail latencies can be seen to stay flat once the restore window
//! and the activity log's retention are reached. It reports; it fails only when the registry
//! misbehaves (an error a correct registry never gives, or the server dying).

pub mod load;
pub mod plot;
pub mod registry;
pub mod report;
pub mod sample;

use serde::Serialize;

/// The operations of the load, each timed and counted per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Push,
    Pull,
    Delete,
    Policy,
    Gc,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Push, Kind::Pull, Kind::Delete, Kind::Policy, Kind::Gc];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Push => "push",
            Kind::Pull => "pull",
            Kind::Delete => "delete",
            Kind::Policy => "policy run",
            Kind::Gc => "gc run",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}
