//! Blob bytes. The store knows nothing of manifests or repositories: it writes streams under keys
//! it chooses (never reused, so deleting an old key can never destroy a newer copy of the same
//! digest), hashes while writing, and reads back by key and byte range.
//!
//! Only the local filesystem backend exists so far; an S3-compatible backend will sit beside it
//! behind the same methods.

mod local;

pub use local::{LIST_PAGE, LocalStore};

use std::fmt;

/// Where a blob's bytes live inside the store. Chosen by the store, recorded by the catalogue.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StorageKey(String);

impl StorageKey {
    /// A key for a fresh blob: `blobs/<2 hex>/<uuid>`, spread over prefixes.
    pub fn new_blob() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        StorageKey(format!("blobs/{}/{}", &id[..2], id))
    }

    /// Rebuilds a key recorded by the catalogue. Refuses anything that could escape the store.
    pub fn from_recorded(s: &str) -> Result<Self, StoreError> {
        let ok = !s.is_empty()
            && !s.starts_with('/')
            && s.split('/').all(|p| {
                !p.is_empty()
                    && p != "."
                    && p != ".."
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if ok {
            Ok(StorageKey(s.to_string()))
        } else {
            Err(StoreError::BadKey(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// An object found by listing the store.
#[derive(Clone, Debug)]
pub struct StoredObject {
    pub key: StorageKey,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

/// A byte range of a stored object, inclusive of both ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {0} not found")]
    NotFound(StorageKey),
    /// The object's size is not the size recorded for it: lost bytes, or a damaged disk.
    #[error("object {key} holds {stored} bytes where {expected} were stored")]
    Damaged {
        key: StorageKey,
        expected: u64,
        stored: u64,
    },
    #[error("invalid storage key {0:?}")]
    BadKey(String),
    /// The request body failed mid-stream (client went away, or the body was too large).
    #[error("request body failed: {0}")]
    Body(String),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
}
