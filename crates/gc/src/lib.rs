//! Garbage collection and retention. Today: `selection`, the pure rules that decide which tags
//! a bulk deletion removes (and, later, which a retention policy removes). The online collector,
//! storage sweep and GC runs will live here too.

pub mod selection;
