//! Online garbage collection, storage sweep, GC runs and retention policies: reserved for the
//! collector. The catalogue already records every reference it will need.
