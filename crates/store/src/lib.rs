//! Blob bytes. The store knows nothing of manifests or repositories: it writes streams under keys
//! it chooses (never reused, so deleting an old key can never destroy a newer copy of the same
//! digest), hashes while writing, and reads back by key and byte range.
//!
//! Everything above this crate holds an `Arc<dyn BlobStore>` and never builds a key: upload
//! sessions come from [`BlobStore::begin_upload`], blobs' keys from [`BlobStore::commit`], and
//! recorded keys are only parsed back ([`StorageKey::from_recorded`]). Two backends sit behind
//! the trait: the local filesystem ([`LocalStore`]) and an S3-compatible object store
//! ([`S3Store`]); the contract tests (`contract.rs`) run against both.

#[cfg(not(unix))]
compile_error!(
    "the local blob store needs a Unix host (positional reads and writes, directory fsync)"
);

#[cfg(test)]
mod contract;
mod local;
mod s3;

pub use local::LocalStore;
pub use s3::{S3Config, S3Store};

use std::fmt;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use shipshape_oci::{Algorithm, Digester};

/// The prefix of every committed blob's key.
pub const BLOBS_PREFIX: &str = "blobs/";
/// The prefix of every unfinished upload's bytes: a session's own key in a store that moves a
/// finished upload to a blob key (local), the tail objects of a session written in place (S3).
pub const UPLOADS_PREFIX: &str = "uploads/";
/// The prefix of the objects a health probe writes and deletes ([`BlobStore::probe`]). They
/// are neither blobs nor uploads, so the listings the collector's sweep and `shipshape check`
/// make (of [`BLOBS_PREFIX`] and [`UPLOADS_PREFIX`] only) never see one: a probe's object is
/// never swept while it lives, nor counted as an orphan.
pub const HEALTH_PREFIX: &str = "health/";

/// What a store call returns. Boxed, because the store is used as `dyn BlobStore` (an `async fn`
/// in a trait is not object-safe): one allocation per call, which is per request, never per
/// chunk of a body.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// A request body on its way into the store. Boxed for the same reason; polling it costs one
/// indirect call per frame the client sent (tens of kilobytes), nothing next to hashing it.
pub type Body<'a> = BoxStream<'a, std::io::Result<Bytes>>;

/// An object's bytes on their way out of the store, in chunks of up to 1 MiB.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// A listing of the store, an object at a time.
pub type ObjectStream = BoxStream<'static, Result<StoredObject, StoreError>>;

/// Blob storage: upload sessions that become blobs under fresh keys, ranged reads, deletes and
/// listings. Implementations must keep these promises (`contract.rs` checks them):
///
/// - `begin_upload` chooses a fresh key, never used before: under [`UPLOADS_PREFIX`] for a
///   store that moves a finished upload to a blob key (local), or the blob key itself under
///   [`BLOBS_PREFIX`] for a store that writes the upload where the blob will be (S3, where a
///   move is a copy). Either way the catalogue records that key for the session, and every
///   object the session's unfinished bytes occupy is under [`UPLOADS_PREFIX`] and belongs to
///   it by [`StorageKey::recorded_owner`]: that is how the sweep tells an unfinished upload
///   from an orphan.
/// - `append` either stores the whole body and answers the advanced state, or fails and leaves
///   the session as it was (the caller keeps the state it passed, and discards the hasher).
/// - `commit` makes the session's bytes durable under a key under [`BLOBS_PREFIX`] that no
///   other session ever had, and only then returns it; the session's unfinished bytes are
///   gone afterwards.
/// - `delete` removes whatever the store holds under a key; a missing object counts as
///   deleted. `abort` drops everything an unfinished session holds; a session already gone
///   counts as aborted.
/// - `list` walks a prefix with bounded memory, whatever the number of objects.
/// - `probe` leaves nothing that a listing of [`BLOBS_PREFIX`] or [`UPLOADS_PREFIX`] shows.
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Opens an upload session under a key the store chooses.
    fn begin_upload(&self) -> StoreFuture<'_, UploadState>;

    /// Appends `body` to the session at its `received` offset, feeding every byte to `hasher`,
    /// and returns the session advanced past them; the bytes are durable when it returns. With
    /// `expected_len`, a body of another length is refused (`LengthMismatch`) and cut off again.
    /// On any failure the session is left as it was and `hasher` must be discarded. A session
    /// whose bytes are gone is `NotFound`.
    fn append<'a>(
        &'a self,
        upload: &'a UploadState,
        body: Body<'a>,
        expected_len: Option<u64>,
        hasher: &'a mut Digester,
    ) -> StoreFuture<'a, UploadState>;

    /// Hashes the session's bytes again with `algorithm`: the fallback when a saved hasher
    /// state is missing or unreadable, or when the client names another algorithm at the end.
    /// A store that cannot read an unfinished session's bytes back (S3 keeps sent parts
    /// unreadable until the upload completes) refuses with `Unsupported` once it holds any.
    fn rehash<'a>(
        &'a self,
        upload: &'a UploadState,
        algorithm: Algorithm,
    ) -> StoreFuture<'a, Digester>;

    /// Makes the session's `received` bytes a blob under a fresh key, durable when this
    /// returns. Committing a session again after a commit whose answer was lost returns the
    /// same key where the store can tell (S3); otherwise it is `NotFound`.
    fn commit<'a>(&'a self, upload: &'a UploadState) -> StoreFuture<'a, StorageKey>;

    /// Drops a session and its bytes. A session already gone counts as aborted.
    fn abort<'a>(&'a self, upload: &'a UploadState) -> StoreFuture<'a, ()>;

    /// The size of a stored object (`NotFound` if there is none).
    fn size<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, u64>;

    /// Streams an object, or the given range of it. With `expected_size`, an object of another
    /// size is refused (`Damaged`) before anything is sent, rather than sent short.
    fn read<'a>(
        &'a self,
        key: &'a StorageKey,
        range: Option<ByteRange>,
        expected_size: Option<u64>,
    ) -> StoreFuture<'a, ByteStream>;

    /// Deletes an object. A missing object counts as deleted.
    fn delete<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, ()>;

    /// Deletes many objects, each answered on its own, in order (a missing object counts as
    /// deleted). Stores with a batch delete use it (S3's DeleteObjects, 1 000 keys a request);
    /// the default deletes one by one, `parallelism` at a time.
    fn delete_many<'a>(
        &'a self,
        keys: &'a [StorageKey],
        parallelism: usize,
    ) -> BoxFuture<'a, Vec<Result<(), StoreError>>> {
        use futures::StreamExt;
        Box::pin(async move {
            let mut answers: Vec<(usize, Result<(), StoreError>)> =
                futures::stream::iter(keys.iter().cloned().enumerate())
                    .map(|(i, key)| async move { (i, self.delete(&key).await) })
                    .buffer_unordered(parallelism.max(1))
                    .collect()
                    .await;
            answers.sort_by_key(|(i, _)| *i);
            answers.into_iter().map(|(_, r)| r).collect()
        })
    }

    /// The smallest chunk, other than the last, that the store takes without buffering it
    /// (`OCI-Chunk-Min-Length`): S3's part size. `None` where any chunk is as good.
    fn chunk_min_length(&self) -> Option<u64> {
        None
    }

    /// A URL from which a client may fetch the object at `key` itself, for a limited time,
    /// when the store is set to hand them out (S3 with `redirect_downloads`): the registry then
    /// answers a blob GET with a redirect, and the bytes flow from the store, not through the
    /// node. `None` (the default) where the registry streams the bytes.
    fn download_url<'a>(&'a self, _key: &'a StorageKey) -> StoreFuture<'a, Option<String>> {
        Box::pin(async { Ok(None) })
    }

    /// Every object whose key starts with `prefix`, with its size and age, in no particular
    /// order. Objects appearing or vanishing during the listing may or may not be included.
    fn list(&self, prefix: &str) -> ObjectStream;

    /// Writes a small object under a fresh key under [`HEALTH_PREFIX`] and deletes it: the
    /// store is reachable and takes writes (`/readyz`). The error says what failed (`Full`,
    /// `ReadOnly`, another I/O error). A crash between the two leaves one small object there.
    fn probe(&self) -> StoreFuture<'_, ()>;
}

/// Where an upload session stands in the store: its key, how many bytes it holds, and what a
/// backend needs to carry on (an object store's multipart upload). Opaque to callers, who keep
/// it in the catalogue's `uploads` row as an [`UploadRecord`] and hand it back on the next
/// request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadState {
    key: StorageKey,
    received: u64,
    multipart: Option<Multipart>,
    /// Bytes received but not yet in a part, in an object of their own (S3).
    tail: Option<Tail>,
    /// Tail objects this state no longer needs, deleted by the next append from it: not by
    /// the append that made it, whose caller may yet fail to record it.
    retired: Vec<StorageKey>,
}

/// Received bytes that do not fill a part yet, kept in a write-once object under
/// [`UPLOADS_PREFIX`] until the next append prepends them (or the commit sends them as the
/// last part).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tail {
    pub key: String,
    pub len: u64,
}

/// An object store's multipart upload in progress: its id and the parts sent so far.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Multipart {
    pub upload_id: String,
    pub parts: Vec<Part>,
}

/// One part of a multipart upload.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Part {
    pub number: u32,
    pub etag: String,
    pub size: u64,
}

/// An upload session as the catalogue's `uploads` row holds it, column by column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRecord {
    /// The key the session's bytes accumulate under (the sweep asks the catalogue about it).
    pub storage_key: String,
    /// Bytes received so far.
    pub received: u64,
    /// Whatever else the backend needs to resume, as JSON; `None` for the local store.
    pub store_state: Option<String>,
}

/// The backend-specific part of an upload's state, as stored in `store_state`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Extra {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multipart: Option<Multipart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tail: Option<Tail>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    retired: Vec<String>,
}

impl UploadState {
    /// A fresh session under `key` (for backends).
    fn fresh(key: StorageKey) -> Self {
        UploadState {
            key,
            received: 0,
            multipart: None,
            tail: None,
            retired: Vec::new(),
        }
    }

    /// Bytes received so far: the session's offset.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The key the session's bytes are under.
    pub fn key(&self) -> &StorageKey {
        &self.key
    }

    /// What the catalogue records.
    pub fn record(&self) -> UploadRecord {
        let plain = self.multipart.is_none() && self.tail.is_none() && self.retired.is_empty();
        let store_state = (!plain).then(|| {
            serde_json::to_string(&Extra {
                multipart: self.multipart.clone(),
                tail: self.tail.clone(),
                retired: self.retired.iter().map(|k| k.0.clone()).collect(),
            })
            .expect("upload state serialises")
        });
        UploadRecord {
            storage_key: self.key.as_str().to_string(),
            received: self.received,
            store_state,
        }
    }

    /// The session the catalogue recorded. Refuses a key that could escape the store and a
    /// backend state that does not parse.
    pub fn resume(record: &UploadRecord) -> Result<Self, StoreError> {
        let key = StorageKey::from_recorded(&record.storage_key)?;
        let extra = match record.store_state.as_deref() {
            None => Extra {
                multipart: None,
                tail: None,
                retired: Vec::new(),
            },
            Some(s) => {
                serde_json::from_str::<Extra>(s).map_err(|e| StoreError::BadState(e.to_string()))?
            }
        };
        // Every object a state names is deleted some day: none may lie outside the store.
        if let Some(t) = &extra.tail {
            StorageKey::from_recorded(&t.key)?;
        }
        let retired = extra
            .retired
            .iter()
            .map(|k| StorageKey::from_recorded(k))
            .collect::<Result<_, _>>()?;
        Ok(UploadState {
            key,
            received: record.received,
            multipart: extra.multipart,
            tail: extra.tail,
            retired,
        })
    }
}

/// Where a blob's bytes live inside the store. Chosen by the store, recorded by the catalogue.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StorageKey(String);

impl StorageKey {
    /// A key for a fresh blob: `blobs/<2 hex>/<uuid>`, spread over prefixes. Backends call it
    /// in `commit`; it is public only for the GC benchmark, which writes a local store's files
    /// directly (a million commits would take hours). The server and the collector never call
    /// it: their keys come from the store.
    pub fn new_blob() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        StorageKey(format!("{BLOBS_PREFIX}{}/{}", &id[..2], id))
    }

    /// A key for a health probe's object: `health/<uuid>`.
    fn new_health() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        StorageKey(format!("{HEALTH_PREFIX}{id}"))
    }

    /// A key for a fresh upload session: `uploads/<uuid>`.
    fn new_upload() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        StorageKey(format!("{UPLOADS_PREFIX}{id}"))
    }

    /// A tail object of the session written in place at `session` (a `blobs/<2 hex>/<uuid>`
    /// key): `uploads/<uuid>/<end offset>-<random>`, write-once, so that an append that fails
    /// after writing its tail never changes what the recorded state points at.
    fn new_tail(session: &StorageKey, end: u64) -> Self {
        let id = session.0.rsplit('/').next().unwrap_or_default();
        let nonce = &uuid::Uuid::new_v4().simple().to_string()[..12];
        StorageKey(format!("{UPLOADS_PREFIX}{id}/{end}-{nonce}"))
    }

    /// The prefix under which every tail object of the session at `session` lies.
    fn tails_of(session: &StorageKey) -> String {
        let id = session.0.rsplit('/').next().unwrap_or_default();
        format!("{UPLOADS_PREFIX}{id}/")
    }

    /// The key the catalogue records for whatever this object belongs to: for a tail object
    /// of a session written in place (`uploads/<uuid>/…`), that session's key
    /// (`blobs/<2 hex>/<uuid>`); for any other object, its own key. The sweep asks the
    /// catalogue about this key, so an unfinished upload's tail is never taken for an orphan.
    pub fn recorded_owner(&self) -> StorageKey {
        let session = self
            .0
            .strip_prefix(UPLOADS_PREFIX)
            .and_then(|rest| rest.split_once('/'))
            .map(|(id, _)| id)
            .filter(|id| id.len() > 2);
        match session {
            Some(id) => StorageKey(format!("{BLOBS_PREFIX}{}/{id}", &id[..2])),
            None => self.clone(),
        }
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

    /// The key as the catalogue records it.
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
    /// A recorded upload state the store cannot read back.
    #[error("invalid upload state: {0}")]
    BadState(String),
    /// A body of another length than announced; nothing of it was kept.
    #[error("the body held {received} bytes where {expected} were announced")]
    LengthMismatch { expected: u64, received: u64 },
    /// The request body failed mid-stream (client went away, or the body was too large).
    #[error("request body failed: {0}")]
    Body(String),
    /// No space left where the store writes (a full filesystem, or a quota). Nothing of the
    /// failed write is kept: an append leaves its session as it was.
    #[error("no space left for the blob store at {location}: {source}")]
    Full {
        location: String,
        source: std::io::Error,
    },
    /// Where the store writes refuses writes (a filesystem mounted, or remounted, read-only).
    #[error("the blob store at {location} is read-only: {source}")]
    ReadOnly {
        location: String,
        source: std::io::Error,
    },
    /// A store configuration that cannot work (named in the message).
    #[error("blob store configuration: {0}")]
    BadConfig(String),
    /// What this store cannot do (S3: hash an unfinished upload's parts again).
    #[error("the blob store cannot {0}")]
    Unsupported(&'static str),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// An I/O error that says the storage at `location` is full or read-only, as [`Full`] or
    /// [`ReadOnly`], so that it can be answered for what it is; anything else as it was.
    ///
    /// [`Full`]: StoreError::Full
    /// [`ReadOnly`]: StoreError::ReadOnly
    pub fn at(self, location: &std::path::Path) -> StoreError {
        use std::io::ErrorKind as K;
        match self {
            StoreError::Io(source) => match source.kind() {
                K::StorageFull | K::QuotaExceeded => StoreError::Full {
                    location: location.display().to_string(),
                    source,
                },
                K::ReadOnlyFilesystem => StoreError::ReadOnly {
                    location: location.display().to_string(),
                    source,
                },
                _ => StoreError::Io(source),
            },
            e => e,
        }
    }
}
