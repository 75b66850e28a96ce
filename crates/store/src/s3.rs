//! The S3-compatible backend, over `object_store`. An upload is written where its blob will
//! be: `begin_upload` picks the fresh `blobs/<2 hex>/<uuid>` key, appends send parts of a
//! multipart upload to it, and `commit` completes that upload, so no blob is ever copied (on
//! S3 a move is a copy and a delete).
//!
//! S3 takes parts of at least 5 MiB (all but the last), and R2 wants them all of one size, so
//! every part but the last is exactly `part_size` bytes. What an append receives beyond its
//! last whole part goes to a write-once tail object under `uploads/<uuid>/`, which the next
//! append (on any node) reads and sends ahead of its own bytes, and which `commit` sends as the
//! last part. The multipart upload's id, its parts' ETags and the tail's key all live in the
//! session's `UploadState`, so the catalogue's row is enough to carry on: nothing is ever
//! rediscovered by listing multipart uploads (which `object_store` cannot do, and which some
//! stores answer unreliably).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use shipshape_oci::{Algorithm, Digester};

use crate::{
    BlobStore, Body, ByteRange, ByteStream, Multipart, ObjectStream, Part, StorageKey, StoreError,
    StoreFuture, StoredObject, Tail, UploadState,
};

/// The smallest part S3 takes (all parts but the last).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The largest part S3 takes.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Parts per multipart upload, at most: with 10 MiB parts a blob can be about 97 GiB.
const MAX_PARTS: usize = 10_000;
/// How long a request may wait for its next bytes from the store.
const READ_STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// How to reach the bucket. Its `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// The service's address (`https://…`); `None` for AWS itself, from the region.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    /// Static credentials; without them, object_store's usual chain (instance metadata,
    /// web identity) is asked.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow an `http://` endpoint (a test server, or a store on a private network).
    pub allow_http: bool,
    /// Address the bucket in the path (`endpoint/bucket/key`) rather than as a host name:
    /// what most self-hosted stores (MinIO, garage, Ceph) expect.
    pub path_style: bool,
    /// Every part but the last has exactly this many bytes (R2 requires equal parts), and
    /// chunks smaller than it are buffered in a tail object: 5 MiB to 5 GiB.
    pub part_size: u64,
    /// Blob GETs are answered with a redirect to a URL signed for this long (at most 7 days,
    /// SigV4's limit), so clients fetch the bytes from the bucket; `None`: streamed through.
    pub redirect_downloads: Option<std::time::Duration>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "(set)"),
            )
            .field("allow_http", &self.allow_http)
            .field("path_style", &self.path_style)
            .field("part_size", &self.part_size)
            .field("redirect_downloads", &self.redirect_downloads)
            .finish()
    }
}

impl S3Config {
    /// The default part size: 10 MiB, Distribution's choice; 10 000 of them make ~97 GiB.
    pub const DEFAULT_PART_SIZE: u64 = 10 * 1024 * 1024;
}

/// The longest a SigV4 presigned URL may be valid.
const MAX_SIGNED_URL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Blob storage in an S3-compatible bucket.
#[derive(Clone, Debug)]
pub struct S3Store {
    s3: Arc<AmazonS3>,
    bucket: String,
    part_size: u64,
    /// Whether the store answers DeleteObjects; checked at open, single deletes otherwise.
    bulk_delete: Arc<AtomicBool>,
    /// How long a download URL is valid; `None`: no redirects (`S3Config::redirect_downloads`).
    redirect: Option<std::time::Duration>,
}

impl S3Store {
    /// Connects to the bucket and checks that it takes a write and a delete. Warns (once, in
    /// the log) when the bucket keeps old versions, where a delete frees nothing, and when it
    /// has no batch delete, where deletes go one by one.
    pub async fn open(config: &S3Config) -> Result<Self, StoreError> {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&config.part_size) {
            return Err(StoreError::BadConfig(format!(
                "part_size {} is outside S3's {MIN_PART_SIZE}..={MAX_PART_SIZE} bytes",
                config.part_size
            )));
        }
        if config
            .redirect_downloads
            .is_some_and(|d| d.is_zero() || d > MAX_SIGNED_URL)
        {
            return Err(StoreError::BadConfig(
                "redirect_downloads must be more than 0s and at most 7 days (SigV4's limit)".into(),
            ));
        }
        // object_store's default 30 s limit covers a whole request, body included, and a
        // body cut by it is fetched again only within the 3 minutes of retries: a pull of a
        // large blob to a slow client would fail. A stall limit per read (reqwest's read
        // timeout, which also bounds the wait for an answer after a part is sent) catches a
        // hung store without limiting long transfers; the server's own body timeout limits
        // stalled clients.
        let client = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_timeout_disabled()
            .with_read_timeout(READ_STALL);
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_client_options(client)
            .with_virtual_hosted_style_request(!config.path_style);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        // The default retry policy already backs off on 5xx, 429 and SlowDown (up to 10
        // times within 3 minutes), which is the throttling S3 and its imitators answer.
        let s3 = builder
            .build()
            .map_err(|e| StoreError::BadConfig(e.to_string()))?;
        let store = S3Store {
            s3: Arc::new(s3),
            bucket: config.bucket.clone(),
            part_size: config.part_size,
            bulk_delete: Arc::new(AtomicBool::new(true)),
            redirect: config.redirect_downloads,
        };
        store.check_bucket().await?;
        Ok(store)
    }

    /// Writes and deletes a probe object; what the answers say about the bucket is logged.
    async fn check_bucket(&self) -> Result<(), StoreError> {
        let key = StorageKey::new_health();
        let put = self
            .s3
            .put(
                &path(&key),
                PutPayload::from_static(b"shipshape start-up check\n"),
            )
            .await
            .map_err(|e| self.error(&key, e))?;
        let batch = self.delete_batch(std::slice::from_ref(&key)).await;
        if let Some(Err(e)) = batch.into_iter().next() {
            tracing::warn!(
                bucket = %self.bucket,
                error = %e,
                "the store refused a batch delete (DeleteObjects): deleting one object at a time"
            );
            self.bulk_delete.store(false, Ordering::Relaxed);
            self.delete(&key).await?;
        }
        // A versioned bucket answers every PUT with a version id ("null" once suspended), but
        // so do stores without versioning (garage names each write): the deleted probe still
        // readable by its version is what says that deleted bytes stay stored.
        if let Some(version) = put.version.filter(|v| v != "null") {
            let options = GetOptions {
                version: Some(version),
                ..GetOptions::default()
            };
            if self.s3.get_opts(&path(&key), options).await.is_ok() {
                tracing::warn!(
                    bucket = %self.bucket,
                    "the bucket keeps object versions: a deleted blob's bytes stay stored (and \
                     billed) until a lifecycle rule expires noncurrent versions; turn \
                     versioning off or add a NoncurrentVersionExpiration rule"
                );
            }
        }
        Ok(())
    }

    /// A store error for an object_store error about `key`.
    fn error(&self, key: &StorageKey, e: object_store::Error) -> StoreError {
        match e {
            object_store::Error::NotFound { .. } => StoreError::NotFound(key.clone()),
            e => StoreError::Io(std::io::Error::other(format!(
                "bucket {}, object {key}: {e}",
                self.bucket
            ))),
        }
    }

    /// The bytes of a tail object, which the state says hold `len` bytes.
    async fn read_tail(&self, session: &StorageKey, tail: &Tail) -> Result<Bytes, StoreError> {
        let key = StorageKey::from_recorded(&tail.key)?;
        let bytes = self
            .s3
            .get(&path(&key))
            .await
            .map(|r| r.into_stream())
            .map_err(|e| match self.error(&key, e) {
                // A session whose tail is gone was aborted (or committed): the session is.
                StoreError::NotFound(_) => StoreError::NotFound(session.clone()),
                e => e,
            })?
            .try_fold(BytesMut::new(), |mut buf, chunk| async move {
                buf.extend_from_slice(&chunk);
                Ok(buf)
            })
            .await
            .map_err(|e| self.error(&key, e))?;
        if bytes.len() as u64 != tail.len {
            return Err(StoreError::Damaged {
                key,
                expected: tail.len,
                stored: bytes.len() as u64,
            });
        }
        Ok(bytes.freeze())
    }

    /// Sends one part; returns it as the state records it.
    async fn put_part(
        s3: Arc<AmazonS3>,
        key: StorageKey,
        upload_id: String,
        number: u32,
        data: Bytes,
    ) -> Result<Part, object_store::Error> {
        let size = data.len() as u64;
        let id = s3
            .put_part(
                &path(&key),
                &upload_id,
                number as usize - 1,
                PutPayload::from(data),
            )
            .await?;
        Ok(Part {
            number,
            etag: id.content_id,
            size,
        })
    }

    /// See [`BlobStore::append`]. Whole parts are sent as soon as they fill, one in flight
    /// while the next is received: at most two parts of memory per upload.
    async fn append(
        &self,
        upload: &UploadState,
        mut body: Body<'_>,
        expected_len: Option<u64>,
        hasher: &mut Digester,
    ) -> Result<UploadState, StoreError> {
        let part_size = self.part_size as usize;
        let mut buf = BytesMut::new();
        // Read when the first byte arrives: the empty PUT that ends many uploads costs nothing.
        let mut tail = upload.tail.as_ref();
        let mut multipart = upload.multipart.clone();
        let created_here = multipart.is_none();
        let mut in_flight: Option<tokio::task::JoinHandle<Result<Part, object_store::Error>>> =
            None;
        let mut h = hasher.clone();
        let mut received = 0u64;
        let result: Result<(), StoreError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| StoreError::Body(e.to_string()))?;
                received += chunk.len() as u64;
                if expected_len.is_some_and(|e| received > e) {
                    // Refused at the end (with the length it had); nothing more is sent.
                    continue;
                }
                if chunk.is_empty() {
                    continue;
                }
                if let Some(tail) = tail.take() {
                    // Hashed when it arrived; only sent now.
                    buf.reserve(part_size);
                    buf.extend_from_slice(&self.read_tail(&upload.key, tail).await?);
                }
                h.update(&chunk);
                let mut rest = &chunk[..];
                while !rest.is_empty() {
                    let take = (part_size - buf.len()).min(rest.len());
                    buf.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if buf.len() < part_size {
                        continue;
                    }
                    let data = std::mem::replace(&mut buf, BytesMut::with_capacity(part_size));
                    if multipart.is_none() {
                        let id = self
                            .s3
                            .create_multipart(&path(&upload.key))
                            .await
                            .map_err(|e| self.error(&upload.key, e))?;
                        multipart = Some(Multipart {
                            upload_id: id,
                            parts: Vec::new(),
                        });
                    }
                    let mp = multipart.as_mut().expect("begun above");
                    if let Some(task) = in_flight.take() {
                        mp.parts.push(self.joined(&upload.key, task).await?);
                    }
                    if mp.parts.len() + 1 >= MAX_PARTS {
                        return Err(StoreError::Unsupported(
                            "hold a blob of more than 9 999 parts (raise part_size)",
                        ));
                    }
                    let number = mp.parts.len() as u32 + 1;
                    in_flight = Some(tokio::spawn(Self::put_part(
                        self.s3.clone(),
                        upload.key.clone(),
                        mp.upload_id.clone(),
                        number,
                        data.freeze(),
                    )));
                }
            }
            if let (Some(task), Some(mp)) = (in_flight.take(), &mut multipart) {
                mp.parts.push(self.joined(&upload.key, task).await?);
            }
            Ok(())
        }
        .await;
        let result = match (result, expected_len) {
            (Ok(()), Some(expected)) if expected != received => {
                Err(StoreError::LengthMismatch { expected, received })
            }
            (result, _) => result,
        };
        let result = match result {
            // Nothing arrived: the session stands as it was.
            Ok(()) if received == 0 => Ok(upload.clone()),
            Ok(()) => {
                self.write_tail(upload, multipart.clone(), buf, received)
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(state) => {
                *hasher = h;
                // Retired by the state the caller recorded: nothing it holds points at them.
                self.delete_quietly(&upload.retired).await;
                Ok(state)
            }
            Err(e) => {
                if let Some(task) = in_flight {
                    task.abort();
                }
                // A multipart upload this call began is known to nobody: end it here.
                if let (true, Some(mp)) = (created_here, &multipart) {
                    let _ = self
                        .s3
                        .abort_multipart(&path(&upload.key), &mp.upload_id)
                        .await;
                }
                Err(e)
            }
        }
    }

    /// The part a spawned upload sent.
    async fn joined(
        &self,
        key: &StorageKey,
        task: tokio::task::JoinHandle<Result<Part, object_store::Error>>,
    ) -> Result<Part, StoreError> {
        task.await
            .map_err(std::io::Error::other)?
            .map_err(|e| self.error(key, e))
    }

    /// Stores what did not fill a part as the session's new tail and answers the advanced
    /// state, which retires the tail it was built on.
    async fn write_tail(
        &self,
        upload: &UploadState,
        multipart: Option<Multipart>,
        rest: BytesMut,
        received: u64,
    ) -> Result<UploadState, StoreError> {
        let end = upload.received + received;
        let tail = if rest.is_empty() {
            None
        } else {
            let key = StorageKey::new_tail(&upload.key, end);
            let len = rest.len() as u64;
            self.s3
                .put(&path(&key), PutPayload::from(rest.freeze()))
                .await
                .map_err(|e| self.error(&key, e))?;
            Some(Tail { key: key.0, len })
        };
        let retired = match &upload.tail {
            Some(t) if tail.as_ref() != Some(t) => vec![StorageKey::from_recorded(&t.key)?],
            _ => Vec::new(),
        };
        Ok(UploadState {
            key: upload.key.clone(),
            received: end,
            multipart,
            tail,
            retired,
        })
    }

    /// See [`BlobStore::commit`]: the tail becomes the last part (or the whole object, for a
    /// blob that never filled a part), the multipart upload is completed at the session's key,
    /// and the session's tail objects are deleted.
    async fn commit(&self, upload: &UploadState) -> Result<StorageKey, StoreError> {
        let key = &upload.key;
        let tail = match &upload.tail {
            Some(t) => match self.read_tail(key, t).await {
                Ok(bytes) => Some(bytes),
                Err(e @ StoreError::NotFound(_)) => return self.committed_before(upload, e).await,
                Err(e) => return Err(e),
            },
            None => None,
        };
        match &upload.multipart {
            None => {
                let data = tail.unwrap_or_default();
                self.s3
                    .put(&path(key), PutPayload::from(data))
                    .await
                    .map_err(|e| self.error(key, e))?;
            }
            Some(mp) => {
                let mut parts = mp.parts.clone();
                if let Some(data) = tail {
                    let number = parts.len() as u32 + 1;
                    let part = Self::put_part(
                        self.s3.clone(),
                        key.clone(),
                        mp.upload_id.clone(),
                        number,
                        data,
                    )
                    .await;
                    match part {
                        Ok(p) => parts.push(p),
                        Err(e) => {
                            let e = self.error(key, e);
                            return self.committed_before(upload, e).await;
                        }
                    }
                }
                let ids = parts
                    .iter()
                    .map(|p| PartId {
                        content_id: p.etag.clone(),
                    })
                    .collect();
                if let Err(e) = self
                    .s3
                    .complete_multipart(&path(key), &mp.upload_id, ids)
                    .await
                {
                    let e = self.error(key, e);
                    return self.committed_before(upload, e).await;
                }
            }
        }
        self.drop_tails(upload).await;
        Ok(key.clone())
    }

    /// After a commit step failed with `failure`: the session's blob if an earlier commit
    /// made it (its answer was lost and the client asks again), else the failure (`NotFound`
    /// for a session aborted or committed elsewhere).
    async fn committed_before(
        &self,
        upload: &UploadState,
        failure: StoreError,
    ) -> Result<StorageKey, StoreError> {
        let key = &upload.key;
        match self.s3.head(&path(key)).await {
            Ok(meta) if meta.size == upload.received => {
                self.drop_tails(upload).await;
                Ok(key.clone())
            }
            Ok(meta) => Err(StoreError::Damaged {
                key: key.clone(),
                expected: upload.received,
                stored: meta.size,
            }),
            Err(_) => Err(failure),
        }
    }

    /// Deletes every tail object of the session: those its state names, and any an append
    /// that lost a race (or failed after writing its tail) left beside them. A failure is
    /// left to the sweep, which finds them once the session is gone.
    async fn drop_tails(&self, upload: &UploadState) {
        let prefix = StorageKey::tails_of(&upload.key);
        let mut keys: Vec<StorageKey> = upload.retired.clone();
        keys.extend(
            upload
                .tail
                .as_ref()
                .and_then(|t| StorageKey::from_recorded(&t.key).ok()),
        );
        let listed: Vec<StorageKey> = self
            .list_objects(&prefix)
            .filter_map(|o| futures::future::ready(o.ok().map(|o| o.key)))
            .collect()
            .await;
        keys.extend(listed);
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys.dedup();
        self.delete_quietly(&keys).await;
    }

    async fn delete_quietly(&self, keys: &[StorageKey]) {
        if keys.is_empty() {
            return;
        }
        for (key, result) in keys.iter().zip(self.delete_batch(keys).await) {
            if let Err(e) = result {
                tracing::debug!(%key, error = %e, "a tail object is left to the sweep");
            }
        }
    }

    /// See [`BlobStore::abort`]: ends the multipart upload by its recorded id and deletes the
    /// tail objects. The session's key itself is left alone: after a commit it is a blob.
    async fn abort(&self, upload: &UploadState) -> Result<(), StoreError> {
        if let Some(mp) = &upload.multipart {
            match self
                .s3
                .abort_multipart(&path(&upload.key), &mp.upload_id)
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error(&upload.key, e)),
            }
        }
        self.drop_tails(upload).await;
        Ok(())
    }

    async fn rehash(
        &self,
        upload: &UploadState,
        algorithm: Algorithm,
    ) -> Result<Digester, StoreError> {
        if upload
            .multipart
            .as_ref()
            .is_some_and(|m| !m.parts.is_empty())
        {
            return Err(StoreError::Unsupported(
                "read back the parts of an unfinished multipart upload",
            ));
        }
        let mut hasher = Digester::new(algorithm);
        if let Some(tail) = &upload.tail {
            hasher.update(&self.read_tail(&upload.key, tail).await?);
        }
        Ok(hasher)
    }

    async fn read(
        &self,
        key: &StorageKey,
        range: Option<ByteRange>,
        expected_size: Option<u64>,
    ) -> Result<ByteStream, StoreError> {
        let options = GetOptions {
            range: range.map(|r| GetRange::Bounded(r.first..r.last + 1)),
            ..GetOptions::default()
        };
        let got = match self.s3.get_opts(&path(key), options).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::NotFound(key.clone()));
            }
            // A range past the end of a short object is refused; say why if we can.
            Err(e) => {
                if let Some(expected) = expected_size {
                    let stored = self.size(key).await?;
                    if stored != expected {
                        return Err(StoreError::Damaged {
                            key: key.clone(),
                            expected,
                            stored,
                        });
                    }
                }
                return Err(self.error(key, e));
            }
        };
        // The answer names the object's whole size, ranged or not: no HEAD needed.
        if let Some(expected) = expected_size
            && got.meta.size != expected
        {
            return Err(StoreError::Damaged {
                key: key.clone(),
                expected,
                stored: got.meta.size,
            });
        }
        let (bucket, key) = (self.bucket.clone(), key.clone());
        Ok(got
            .into_stream()
            .map_err(move |e| std::io::Error::other(format!("bucket {bucket}, object {key}: {e}")))
            .boxed())
    }

    async fn size(&self, key: &StorageKey) -> Result<u64, StoreError> {
        self.s3
            .head(&path(key))
            .await
            .map(|m| m.size)
            .map_err(|e| self.error(key, e))
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        match self.s3.delete(&path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(key, e)),
        }
    }

    /// Deletes `keys` with DeleteObjects (1 000 keys a request, 20 requests at a time), or
    /// one by one where the store has no batch delete. One answer per key, in order.
    async fn delete_batch(&self, keys: &[StorageKey]) -> Vec<Result<(), StoreError>> {
        if !self.bulk_delete.load(Ordering::Relaxed) {
            let mut out = Vec::with_capacity(keys.len());
            for some in keys.chunks(16) {
                out.extend(futures::future::join_all(some.iter().map(|k| self.delete(k))).await);
            }
            return out;
        }
        let paths: Vec<object_store::Result<Path>> = keys.iter().map(|k| Ok(path(k))).collect();
        let mut answers: std::collections::HashMap<String, Result<(), StoreError>> = self
            .s3
            .delete_stream(futures::stream::iter(paths).boxed())
            .map(|r| match r {
                Ok(p) => (p.to_string(), Ok(())),
                Err(object_store::Error::NotFound { path, .. }) => (path, Ok(())),
                Err(e) => (
                    error_path(&e).unwrap_or_default(),
                    Err(StoreError::Io(std::io::Error::other(e.to_string()))),
                ),
            })
            .collect()
            .await;
        // An error that names no key is the whole request's: every key without an answer
        // shares it.
        let shared = answers.remove("");
        keys.iter()
            .map(|k| match answers.remove(k.as_str()) {
                Some(r) => r,
                None => match &shared {
                    Some(Err(e)) => Err(StoreError::Io(std::io::Error::other(e.to_string()))),
                    _ => Ok(()),
                },
            })
            .collect()
    }

    /// The objects under `prefix`. object_store lists whole path segments, so the listing
    /// asks for the last whole segment and keeps the keys that start with the prefix; it
    /// pages through 1 000 keys a request, so memory stays bounded.
    fn list_objects(&self, prefix: &str) -> ObjectStream {
        let dir = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        let dir = (!dir.is_empty()).then(|| Path::from(dir));
        let (prefix, bucket) = (prefix.to_string(), self.bucket.clone());
        self.s3
            .list(dir.as_ref())
            .filter_map(move |o| {
                let out = match o {
                    Ok(meta) => {
                        let key = meta.location.as_ref();
                        match StorageKey::from_recorded(key) {
                            // Not one of ours (or not a key this store could write).
                            Err(_) => None,
                            Ok(_) if !key.starts_with(&prefix) => None,
                            Ok(key) => Some(Ok(StoredObject {
                                key,
                                size: meta.size,
                                modified: meta.last_modified.into(),
                            })),
                        }
                    }
                    Err(e) => Some(Err(StoreError::Io(std::io::Error::other(format!(
                        "listing bucket {bucket}: {e}"
                    ))))),
                };
                futures::future::ready(out)
            })
            .boxed()
    }

    async fn probe(&self) -> Result<(), StoreError> {
        let key = StorageKey::new_health();
        self.s3
            .put(
                &path(&key),
                PutPayload::from_static(b"shipshape health probe\n"),
            )
            .await
            .map_err(|e| self.error(&key, e))?;
        self.delete(&key).await
    }
}

/// The object_store path of a key. Keys hold only `[A-Za-z0-9_-]` segments, which paths take
/// as they are.
fn path(key: &StorageKey) -> Path {
    Path::from(key.as_str())
}

/// The key a failed delete names, if any.
fn error_path(e: &object_store::Error) -> Option<String> {
    match e {
        object_store::Error::NotFound { path, .. }
        | object_store::Error::AlreadyExists { path, .. }
        | object_store::Error::Precondition { path, .. }
        | object_store::Error::NotModified { path, .. }
        | object_store::Error::PermissionDenied { path, .. }
        | object_store::Error::Unauthenticated { path, .. } => Some(path.clone()),
        _ => None,
    }
}

impl BlobStore for S3Store {
    fn download_url<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let Some(valid) = self.redirect else {
                return Ok(None);
            };
            use object_store::signer::{Method, Signer as _};
            // Signing is local (no request to the store): the URL says nothing of whether the
            // object exists, which the catalogue has already answered.
            let url = self
                .s3
                .signed_url(Method::GET, &path(key), valid)
                .await
                .map_err(|e| self.error(key, e))?;
            Ok(Some(url.to_string()))
        })
    }

    fn begin_upload(&self) -> StoreFuture<'_, UploadState> {
        // Nothing to create yet: the multipart upload begins with the first whole part, so a
        // small blob is one PUT at commit.
        Box::pin(async { Ok(UploadState::fresh(StorageKey::new_blob())) })
    }

    fn append<'a>(
        &'a self,
        upload: &'a UploadState,
        body: Body<'a>,
        expected_len: Option<u64>,
        hasher: &'a mut Digester,
    ) -> StoreFuture<'a, UploadState> {
        Box::pin(self.append(upload, body, expected_len, hasher))
    }

    fn rehash<'a>(
        &'a self,
        upload: &'a UploadState,
        algorithm: Algorithm,
    ) -> StoreFuture<'a, Digester> {
        Box::pin(self.rehash(upload, algorithm))
    }

    fn commit<'a>(&'a self, upload: &'a UploadState) -> StoreFuture<'a, StorageKey> {
        Box::pin(self.commit(upload))
    }

    fn abort<'a>(&'a self, upload: &'a UploadState) -> StoreFuture<'a, ()> {
        Box::pin(self.abort(upload))
    }

    fn size<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, u64> {
        Box::pin(self.size(key))
    }

    fn read<'a>(
        &'a self,
        key: &'a StorageKey,
        range: Option<ByteRange>,
        expected_size: Option<u64>,
    ) -> StoreFuture<'a, ByteStream> {
        Box::pin(self.read(key, range, expected_size))
    }

    fn delete<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        Box::pin(self.delete(key))
    }

    /// DeleteObjects runs its own concurrency (object_store: 20 requests of 1 000 keys).
    fn delete_many<'a>(
        &'a self,
        keys: &'a [StorageKey],
        _parallelism: usize,
    ) -> futures::future::BoxFuture<'a, Vec<Result<(), StoreError>>> {
        Box::pin(self.delete_batch(keys))
    }

    fn chunk_min_length(&self) -> Option<u64> {
        Some(self.part_size)
    }

    fn list(&self, prefix: &str) -> ObjectStream {
        self.list_objects(prefix)
    }

    fn probe(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.probe())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path as FsPath;

    use futures::TryStreamExt;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder as ConnBuilder;
    use shipshape_oci::Digest;

    use super::*;
    use crate::{BLOBS_PREFIX, UPLOADS_PREFIX};

    const BUCKET: &str = "test";
    const P: u64 = MIN_PART_SIZE;

    /// An S3 server in this process (s3s-fs over `root`, which holds the bucket as a
    /// directory), on a loopback port of its own.
    pub(crate) async fn s3_server(root: &FsPath) -> std::net::SocketAddr {
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let fs = s3s_fs::FileSystem::new(root).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single("testkey", "testsecret"));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = ConnBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        addr
    }

    fn config(addr: std::net::SocketAddr) -> S3Config {
        S3Config {
            endpoint: Some(format!("http://{addr}")),
            bucket: BUCKET.into(),
            region: "us-east-1".into(),
            access_key_id: Some("testkey".into()),
            secret_access_key: Some("testsecret".into()),
            allow_http: true,
            path_style: true,
            part_size: P,
            redirect_downloads: None,
        }
    }

    /// A store over a fresh bucket, the server's directory, and the server's address (for a
    /// second node).
    async fn store() -> (S3Store, tempfile::TempDir, std::net::SocketAddr) {
        let dir = tempfile::tempdir().unwrap();
        let addr = s3_server(dir.path()).await;
        (S3Store::open(&config(addr)).await.unwrap(), dir, addr)
    }

    /// Bytes that differ at every offset, so a misplaced part or tail cannot go unnoticed.
    fn bytes(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// `data` as a request body of frames of at most `frame` bytes.
    fn body_of(data: &[u8], frame: usize) -> Body<'static> {
        let frames: Vec<std::io::Result<Bytes>> = data
            .chunks(frame.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(frames).boxed()
    }

    async fn read_all(store: &S3Store, key: &StorageKey, range: Option<ByteRange>) -> Vec<u8> {
        let chunks: Vec<Bytes> = BlobStore::read(store, key, range, None)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        chunks.concat()
    }

    async fn owned(store: &S3Store, session: &StorageKey) -> Vec<String> {
        store
            .list_objects("")
            .map(|o| o.unwrap().key)
            .filter(|k| futures::future::ready(&k.recorded_owner() == session))
            .map(|k| k.as_str().to_string())
            .collect()
            .await
    }

    /// Multipart uploads the server still holds parts of (s3s-fs keeps them beside the
    /// bucket, as `.upload_id-<id>.part-<n>`).
    fn parts_held(root: &FsPath) -> usize {
        std::fs::read_dir(root)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".upload_id-")
            })
            .count()
    }

    #[tokio::test]
    async fn the_s3_store_keeps_the_blob_store_contract() {
        let (store, _dir, _) = store().await;
        crate::contract::contract(Arc::new(store)).await;
    }

    /// Chunks smaller than a part, each appended on the other of two nodes from the state the
    /// catalogue recorded, add up to whole parts of exactly the part size and a tail; the
    /// blob reads back byte for byte, whole and by ranges, and no tail object is left.
    #[tokio::test]
    async fn a_chunked_upload_continues_on_another_node_and_reads_back() {
        let (first, _dir, addr) = store().await;
        let second = S3Store::open(&config(addr)).await.unwrap();
        assert!(
            first.bulk_delete.load(Ordering::Relaxed),
            "s3s-fs answers DeleteObjects"
        );
        let nodes = [&first, &second];
        let data = bytes(3 * P as usize + 7);
        let chunk = 1536 * 1024 + 3;
        let mut record = first.begin_upload().await.unwrap().record();
        let mut hash_state = Digester::new(Algorithm::Sha256).save_state();
        for (i, piece) in data.chunks(chunk).enumerate() {
            let node = nodes[i % 2];
            let state = UploadState::resume(&record).unwrap();
            let mut h = Digester::restore_state(Algorithm::Sha256, &hash_state).unwrap();
            let next = BlobStore::append(
                node,
                &state,
                body_of(piece, 64 * 1024),
                Some(piece.len() as u64),
                &mut h,
            )
            .await
            .unwrap();
            record = next.record();
            hash_state = h.save_state();
            let parts = next.multipart.as_ref().map_or(0, |m| m.parts.len() as u64);
            let tail = next.tail.as_ref().map_or(0, |t| t.len);
            assert_eq!(
                parts * P + tail,
                next.received(),
                "parts and tail hold every byte"
            );
            assert!(tail < P);
        }
        let state = UploadState::resume(&record).unwrap();
        assert_eq!(state.received(), data.len() as u64);
        let parts = &state.multipart.as_ref().unwrap().parts;
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.size == P), "{parts:?}");
        let h = Digester::restore_state(Algorithm::Sha256, &hash_state).unwrap();
        assert_eq!(h.finish(), Digest::of_bytes(Algorithm::Sha256, &data));

        let key = BlobStore::commit(&second, &state).await.unwrap();
        assert_eq!(
            &key,
            state.key(),
            "written in place: the session's key is the blob's"
        );
        assert!(key.as_str().starts_with(BLOBS_PREFIX));
        assert_eq!(first.size(&key).await.unwrap(), data.len() as u64);
        assert!(read_all(&first, &key, None).await == data);
        for (a, b) in [(0, 0), (P - 1, P), (P + 5, 3 * P + 6), (3 * P, 3 * P + 6)] {
            let range = ByteRange { first: a, last: b };
            assert!(
                read_all(&second, &key, Some(range)).await == data[a as usize..=b as usize],
                "range {a}-{b}"
            );
        }
        assert_eq!(owned(&first, &key).await, vec![key.as_str().to_string()]);
        // A commit whose answer was lost is asked again: the same blob.
        assert_eq!(BlobStore::commit(&first, &state).await.unwrap(), key);
    }

    /// More than two parts in one append, sent with one part in flight while the next is
    /// received; the last part is the short tail.
    #[tokio::test]
    async fn a_large_append_becomes_a_multipart_upload() {
        let (store, _dir, _) = store().await;
        let data = bytes(2 * P as usize + 1234);
        let up = store.begin_upload().await.unwrap();
        let mut h = Digester::new(Algorithm::Sha256);
        let up = BlobStore::append(&store, &up, body_of(&data, 100_000), None, &mut h)
            .await
            .unwrap();
        assert_eq!(up.multipart.as_ref().unwrap().parts.len(), 2);
        assert_eq!(up.tail.as_ref().unwrap().len, 1234);
        assert!(matches!(
            BlobStore::rehash(&store, &up, Algorithm::Sha256).await,
            Err(StoreError::Unsupported(_))
        ));
        let key = BlobStore::commit(&store, &up).await.unwrap();
        let stored = read_all(&store, &key, None).await;
        assert_eq!(stored.len(), data.len());
        assert!(stored == data);
        assert_eq!(
            BlobStore::read(&store, &key, None, Some(data.len() as u64 + 1))
                .await
                .err()
                .map(|e| e.to_string()),
            Some(
                StoreError::Damaged {
                    key: key.clone(),
                    expected: data.len() as u64 + 1,
                    stored: data.len() as u64
                }
                .to_string()
            )
        );
    }

    /// Aborting a session with sent parts and a tail ends its multipart upload and deletes its
    /// tails: the server holds nothing of it, and the session is gone for an append or a
    /// commit.
    #[tokio::test]
    async fn an_aborted_upload_leaves_nothing() {
        let (store, dir, _) = store().await;
        let data = bytes(P as usize + 10);
        let up = store.begin_upload().await.unwrap();
        let mut h = Digester::new(Algorithm::Sha256);
        let up = BlobStore::append(&store, &up, body_of(&data, 1 << 20), None, &mut h)
            .await
            .unwrap();
        assert_eq!(parts_held(dir.path()), 1, "one part sent");
        assert_eq!(owned(&store, up.key()).await.len(), 1, "one tail");
        BlobStore::abort(&store, &up).await.unwrap();
        assert_eq!(parts_held(dir.path()), 0);
        assert_eq!(owned(&store, up.key()).await, Vec::<String>::new());
        let mut h = Digester::new(Algorithm::Sha256);
        assert!(matches!(
            BlobStore::append(&store, &up, body_of(b"more", 4), None, &mut h).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            BlobStore::commit(&store, &up).await,
            Err(StoreError::NotFound(_))
        ));
        // A state that never reached a part aborts too (nothing but a tail to delete).
        let up = store.begin_upload().await.unwrap();
        let up = BlobStore::append(&store, &up, body_of(b"small", 5), None, &mut h)
            .await
            .unwrap();
        BlobStore::abort(&store, &up).await.unwrap();
        assert_eq!(owned(&store, up.key()).await, Vec::<String>::new());
    }

    /// Each append retires the tail it started from, and the next append deletes it: an
    /// upload in many small chunks keeps at most two tails, and a failed append leaves the
    /// state it started from usable.
    #[tokio::test]
    async fn old_tails_are_deleted_and_a_failed_append_changes_nothing() {
        let (store, _dir, _) = store().await;
        let mut up = store.begin_upload().await.unwrap();
        let mut h = Digester::new(Algorithm::Sha256);
        for piece in [&b"one "[..], b"two ", b"three ", b"four"] {
            up = BlobStore::append(&store, &up, body_of(piece, 3), None, &mut h)
                .await
                .unwrap();
            assert!(owned(&store, up.key()).await.len() <= 2);
        }
        let failing = futures::stream::iter(vec![
            Ok(Bytes::from(bytes(P as usize + 1))),
            Err(std::io::Error::other("connection reset")),
        ])
        .boxed();
        let mut lost = h.clone();
        assert!(matches!(
            BlobStore::append(&store, &up, failing, None, &mut lost).await,
            Err(StoreError::Body(_))
        ));
        let up = BlobStore::append(&store, &up, body_of(b"!", 1), None, &mut h)
            .await
            .unwrap();
        let up = UploadState::resume(&up.record()).unwrap();
        let key = BlobStore::commit(&store, &up).await.unwrap();
        assert_eq!(read_all(&store, &key, None).await, b"one two three four!");
        assert_eq!(
            h.finish(),
            Digest::of_bytes(Algorithm::Sha256, b"one two three four!")
        );
    }

    /// The sizes around the part size, each sent in appends of a little over half a part
    /// (so tails carry over and complete parts), read back byte for byte with every part
    /// but the last of exactly the part size.
    #[tokio::test]
    async fn sizes_around_the_part_size_round_trip() {
        let (store, _dir, _) = store().await;
        let p = P as usize;
        for size in [0, 1, p - 1, p, p + 1, 3 * p + 7] {
            let data = bytes(size);
            let mut up = store.begin_upload().await.unwrap();
            let mut h = Digester::new(Algorithm::Sha256);
            for piece in data.chunks(p / 2 + 1) {
                up = BlobStore::append(&store, &up, body_of(piece, 4096), None, &mut h)
                    .await
                    .unwrap();
            }
            let up = UploadState::resume(&up.record()).unwrap();
            let parts = up.multipart.as_ref().map_or(&[][..], |m| &m.parts[..]);
            assert!(parts.iter().all(|part| part.size == P), "{size}: {parts:?}");
            assert_eq!(h.finish(), Digest::of_bytes(Algorithm::Sha256, &data));
            let key = BlobStore::commit(&store, &up).await.unwrap();
            assert_eq!(store.size(&key).await.unwrap(), size as u64, "{size}");
            assert!(read_all(&store, &key, None).await == data, "{size}");
            assert_eq!(owned(&store, &key).await, vec![key.as_str().to_string()]);
        }
    }

    #[test]
    fn tails_belong_to_their_session() {
        let session = StorageKey::new_blob();
        let tail = StorageKey::new_tail(&session, 42);
        assert!(tail.as_str().starts_with(UPLOADS_PREFIX));
        assert_eq!(tail.recorded_owner(), session);
        assert!(tail.as_str().starts_with(&StorageKey::tails_of(&session)));
        // Everything else is its own owner: a local upload, a blob, a probe's object.
        for key in ["uploads/0123abcd", "blobs/ab/abcdef", "health/xyz"] {
            let key = StorageKey::from_recorded(key).unwrap();
            assert_eq!(key.recorded_owner(), key);
        }
    }

    /// Credentials the store refuses stop the open, with the bucket named.
    #[tokio::test]
    async fn a_store_that_refuses_the_credentials_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let addr = s3_server(dir.path()).await;
        let mut c = config(addr);
        c.secret_access_key = Some("wrong".into());
        let e = S3Store::open(&c).await.unwrap_err();
        assert!(e.to_string().contains("bucket test"), "{e}");
    }

    #[tokio::test]
    async fn a_part_size_s3_refuses_is_refused_at_open() {
        let mut c = config("127.0.0.1:9".parse().unwrap());
        c.part_size = MIN_PART_SIZE - 1;
        assert!(matches!(
            S3Store::open(&c).await,
            Err(StoreError::BadConfig(_))
        ));
    }
}
