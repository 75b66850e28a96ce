//! The catalogue's contract: what every function of every aggregate promises, written against
//! the crate's public API only (no SQL), so that the same suite runs against every backend.
//!
//! # Backends
//!
//! Each test runs its body once per backend through [`support::each_backend`], which takes the
//! catalogues from [`support::backends`]: a fresh, empty, migrated catalogue per backend and
//! per test, dropped at the end of the test. Today that list holds SQLite alone
//! (`Catalogue::open_sqlite` on a file in a temporary directory). A PostgreSQL backend is one
//! more entry there: a function that creates a fresh database (or schema) from a server named
//! by an environment variable, opens the catalogue on it, keeps a guard that drops the database
//! when the test ends, and is left out of the list when the variable is unset, so that the
//! suite still needs nothing but the machine it runs on. No test needs to change.
//!
//! # What the tests assume
//!
//! Time is explicit: every instant is a `Millis` the test passes, never a clock that moves by
//! itself, so nothing sleeps. Row ids are compared with each other, never with literals. An
//! order is asserted only where a function documents one. The concurrency tests
//! (`concurrency.rs`) start several transactions of their own at once on the same content;
//! SQLite serialises them (one writer), so there they check the result of every order, and on a
//! backend with concurrent writers they check the statements' conflict handling as well
//! (ARCHITECTURE.md, "The catalogue's concurrency model").
//!
//! A test marked `#[ignore = "bug: …"]` demonstrates a known bug and fails until it is fixed;
//! `cargo nextest run -p shipshape-meta --test contract --run-ignored only` runs those alone.

mod contract {
    pub mod support;

    mod blobs;
    mod catalogue;
    mod concurrency;
    mod events;
    mod manifests;
    mod queues;
    mod repos;
    mod runs;
    mod samples;
    mod tags;
    mod transfer;
    mod uploads;
    mod usage;
    mod web_sessions;
}
