//! Pure OCI types and rules shared by every layer: digests, repository names, tags, references,
//! upload ids, media types, manifest parsing, repository globs and the byte ranges of HTTP
//! headers. Nothing here performs I/O.

pub mod digest;
pub mod glob;
pub mod manifest;
pub mod media_type;
pub mod name;
pub mod range;

pub use digest::{Algorithm, Digest, DigestError, Digester};
pub use glob::RepoGlob;
pub use manifest::{Descriptor, ManifestError, ManifestKind, ParsedManifest};
pub use name::{NameError, Reference, RepoName, Tag, UploadId};
