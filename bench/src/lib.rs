//! Benchmarks of Shipshape beside CNCF Distribution, on the same machine in the same run.
//!
//! Every figure is the median of several runs and carries its spread; results are reported
//! (Markdown and JSON under `bench/results/`), never asserted. `bench/README.md` says how to run
//! them and what limits each figure.

pub mod garage;
pub mod gc;
pub mod http;
pub mod nodes;
pub mod report;
pub mod servers;
pub mod soak;
pub mod stats;
