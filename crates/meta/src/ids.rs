//! Row ids of the aggregates, apart from the aggregates, so that the review queues (which the
//! aggregates fill) and the aggregates both depend on them and not on each other.

/// Row id of a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RepoId(pub i64);

/// Row id of a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ManifestId(pub i64);
