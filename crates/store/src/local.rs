//! The local-filesystem backend: one file per key under the data directory. Upload sessions append
//! to `uploads/<uuid>` and are renamed to a fresh `blobs/…` key once verified, after an fsync
//! of the file and of the directory, so an acknowledged blob survives a power loss.
//!
//! Linux-only speed-ups sit behind `#[cfg(target_os = "linux")]`, each with a plain fallback
//! for other Unix hosts: direct writes (`O_DIRECT`, in [`open_direct`]; elsewhere everything
//! goes through the page cache) and non-blocking page-cache reads (`preadv2` with
//! `RWF_NOWAIT`, in [`read_cached`]; elsewhere every chunk is read on a blocking thread).

use std::path::{Path, PathBuf};

use std::os::unix::fs::FileExt as _;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use shipshape_oci::{Algorithm, Digester};
use tokio::fs::{self, File, OpenOptions};
use tokio::io::AsyncReadExt;

use crate::{
    BLOBS_PREFIX, BlobStore, Body, ByteRange, ByteStream, HEALTH_PREFIX, ObjectStream, StorageKey,
    StoreError, StoreFuture, StoredObject, UPLOADS_PREFIX, UploadState,
};

/// Size of the buffers an upload is written in.
const WRITE_BUFFER: usize = 1024 * 1024;
/// Buffers an upload holds at most: one being received, one being hashed, one being written,
/// and one waiting for the next stage.
const BUFFERS: usize = 4;
/// Direct writes need file offsets, lengths and buffer addresses on this boundary (4 KiB also
/// covers disks with 512-byte blocks).
const DIRECT_ALIGN: usize = 4096;
/// How much an upload writes through the page cache between two early syncs (when the
/// filesystem takes no direct writes): small enough that the sync ending a 16 MiB chunk (a
/// common PATCH size) finds most of it written already.
const WRITEBACK_EVERY: u64 = 8 * 1024 * 1024;
const READ_CHUNK: usize = 1024 * 1024;
/// Chunks read ahead of the client.
const READ_AHEAD: usize = 2;
/// Objects per page of a store listing.
const LIST_PAGE: usize = 1000;

/// Blob storage in a directory on the local filesystem.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        fs::create_dir_all(root.join(BLOBS_PREFIX)).await?;
        fs::create_dir_all(root.join(UPLOADS_PREFIX)).await?;
        fs::create_dir_all(root.join(HEALTH_PREFIX)).await?;
        Ok(LocalStore { root })
    }

    /// Creates a small file under `health/` and removes it. Not synced: a full or read-only
    /// filesystem, or one the process may not write, refuses the write itself.
    async fn probe(&self) -> Result<(), StoreError> {
        let path = self.path(&StorageKey::new_health());
        let written = fs::write(&path, b"shipshape health probe\n").await;
        let removed = fs::remove_file(&path).await;
        written?;
        Ok(removed?)
    }

    fn path(&self, key: &StorageKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// Creates the empty file an upload session appends to, under a fresh key.
    async fn begin(&self) -> Result<UploadState, StoreError> {
        let key = StorageKey::new_upload();
        File::create(self.path(&key)).await?;
        Ok(UploadState::fresh(key))
    }

    /// `append`, with direct writes or (for tests of the fallback) without.
    ///
    /// The request is received on the runtime into a few reused buffers; a blocking thread
    /// hashes each one and hands it to a second thread that writes it, so receiving, hashing and
    /// the disk overlap instead of taking turns (see [`hash_and_write`]). Anything past the
    /// session's offset left by an earlier crash or a refused body is cut off first; on failure
    /// the file is cut back to the offset.
    async fn append_via<S, E>(
        &self,
        upload: &UploadState,
        body: S,
        expected_len: Option<u64>,
        hasher: &mut Digester,
        try_direct: bool,
    ) -> Result<UploadState, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let offset = upload.received;
        let path = self.path(&upload.key);
        let file = match OpenOptions::new().write(true).open(&path).await {
            Ok(f) => f.into_std().await,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(upload.key.clone()));
            }
            Err(e) => return Err(e.into()),
        };
        let (full_tx, mut full_rx) = tokio::sync::mpsc::channel(BUFFERS);
        let (free_tx, free_rx) = tokio::sync::mpsc::channel(BUFFERS);
        let mut writer_hasher = hasher.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let direct = if try_direct { open_direct(&path) } else { None };
            let result = hash_and_write(
                &file,
                direct,
                offset,
                &mut full_rx,
                free_tx,
                &mut writer_hasher,
            );
            (file, result.map(|n| (n, writer_hasher)))
        });
        let received = feed(body, offset, full_tx, free_rx).await;
        let (file, written) = writer.await.map_err(std::io::Error::other)?;
        let result = match (received, written) {
            (Ok(()), Ok((n, _))) if expected_len.is_some_and(|e| e != n) => {
                Err(StoreError::LengthMismatch {
                    expected: expected_len.unwrap_or_default(),
                    received: n,
                })
            }
            (Ok(()), Ok((n, h))) => Ok((n, h)),
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(e.into()),
        };
        let file = File::from_std(file);
        match result {
            Ok((written, h)) => {
                file.sync_data().await?;
                *hasher = h;
                Ok(UploadState {
                    received: offset + written,
                    ..upload.clone()
                })
            }
            Err(e) => {
                // Not synced: should a crash undo the cut, the next append cuts again.
                file.set_len(offset).await?;
                Err(e)
            }
        }
    }

    async fn rehash(
        &self,
        upload: &UploadState,
        algorithm: Algorithm,
    ) -> Result<Digester, StoreError> {
        let file = match File::open(self.path(&upload.key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(upload.key.clone()));
            }
            Err(e) => return Err(e.into()),
        };
        let mut reader = file.take(upload.received);
        let mut hasher = Digester::new(algorithm);
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hasher)
    }

    /// Makes a finished upload a blob: cuts it to the bytes received (a refused body may have
    /// left more), syncs it and moves it to a fresh key. The bytes are durable when this
    /// returns.
    async fn commit(&self, upload: &UploadState) -> Result<StorageKey, StoreError> {
        let from = self.path(&upload.key);
        let file = match OpenOptions::new().write(true).open(&from).await {
            Ok(f) => f.into_std().await,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(upload.key.clone()));
            }
            Err(e) => return Err(e.into()),
        };
        let (received, key) = (upload.received, upload.key.clone());
        // A long upload's file can be old; the storage sweep judges orphans by age, so the new
        // blob must look new until the catalogue has recorded it.
        tokio::task::spawn_blocking(move || {
            let stored = file.metadata()?.len();
            if stored < received {
                return Ok(Err(StoreError::Damaged {
                    key,
                    expected: received,
                    stored,
                }));
            }
            if stored > received {
                file.set_len(received)?;
            }
            file.set_modified(std::time::SystemTime::now())?;
            file.sync_all().map(Ok)
        })
        .await
        .map_err(std::io::Error::other)???;
        let key = StorageKey::new_blob();
        let to = self.path(&key);
        let dir = to
            .parent()
            .expect("blob keys have a directory")
            .to_path_buf();
        fs::create_dir_all(&dir).await?;
        fs::rename(&from, &to).await?;
        sync_dir(&dir).await?;
        sync_dir(from.parent().expect("upload keys have a directory")).await?;
        Ok(key)
    }

    async fn size(&self, key: &StorageKey) -> Result<u64, StoreError> {
        match fs::metadata(self.path(key)).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(key.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Streams an object, or the given range of it. The next chunk is read from the disk while
    /// the previous one is being sent, with at most `READ_AHEAD` chunks waiting; no thread is
    /// held while a slow client keeps the stream waiting.
    async fn read(
        &self,
        key: &StorageKey,
        range: Option<ByteRange>,
        expected_size: Option<u64>,
    ) -> Result<ByteStream, StoreError> {
        let file = match File::open(self.path(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(key.clone()));
            }
            Err(e) => return Err(e.into()),
        };
        let stored = file.metadata().await?.len();
        if let Some(expected) = expected_size
            && stored != expected
        {
            return Err(StoreError::Damaged {
                key: key.clone(),
                expected,
                stored,
            });
        }
        let (start, len) = match range {
            Some(r) => (r.first, r.len()),
            None => (0, stored),
        };
        let file = std::sync::Arc::new(file.into_std().await);
        let (tx, mut rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        tokio::spawn(read_ahead(file, start, len, tx));
        Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        match fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The objects under `prefix`, an object at a time, read from pages that a blocking task
    /// walks at most two ahead of the reader: a listing's memory stays bounded however many
    /// objects the store holds.
    fn list_objects(&self, prefix: &str) -> ObjectStream {
        let pages = match listing_dir(prefix) {
            Ok(dir) => self.list_pages(dir, prefix.to_string(), LIST_PAGE),
            Err(e) => return futures::stream::once(async { Err(e) }).boxed(),
        };
        futures::stream::unfold(
            (pages, Vec::new().into_iter()),
            |(mut pages, mut page)| async move {
                loop {
                    if let Some(o) = page.next() {
                        return Some((Ok(o), (pages, page)));
                    }
                    match pages.recv().await? {
                        Ok(p) => page = p.into_iter(),
                        // The walk stops after an error; the next receive ends the listing.
                        Err(e) => return Some((Err(e), (pages, page))),
                    }
                }
            },
        )
        .boxed()
    }

    /// Walks the directory `dir` (relative to the root) in pages of at most `page` objects
    /// whose keys start with `prefix`, on a blocking task.
    fn list_pages(
        &self,
        dir: &str,
        prefix: String,
        page: usize,
    ) -> tokio::sync::mpsc::Receiver<Result<Vec<StoredObject>, StoreError>> {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let root = self.root.clone();
        let start = root.join(dir);
        let page = page.max(1);
        tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(page);
            let mut dirs = vec![start];
            while let Some(dir) = dirs.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e.into()));
                        return;
                    }
                };
                for entry in entries {
                    let entry = match entry {
                        Ok(e) => e,
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e.into()));
                            return;
                        }
                    };
                    let Ok(meta) = entry.metadata() else { continue };
                    let path = entry.path();
                    let Some(rel) = path.strip_prefix(&root).ok().and_then(|p| p.to_str()) else {
                        continue;
                    };
                    if meta.is_dir() {
                        // Only directories that can hold a key with the prefix.
                        let below = format!("{rel}/");
                        if below.starts_with(&prefix) || prefix.starts_with(&below) {
                            dirs.push(path);
                        }
                        continue;
                    }
                    if !rel.starts_with(&prefix) {
                        continue;
                    }
                    let Ok(key) = StorageKey::from_recorded(rel) else {
                        continue;
                    };
                    batch.push(StoredObject {
                        key,
                        size: meta.len(),
                        modified: meta.modified().unwrap_or(std::time::UNIX_EPOCH),
                    });
                    if batch.len() == page {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(page));
                        if tx.blocking_send(Ok(full)).is_err() {
                            return; // the reader gave up
                        }
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.blocking_send(Ok(batch));
            }
        });
        rx
    }
}

/// The directory a listing of `prefix` walks: everything up to its last `/` (the root for a
/// prefix without one). Refuses a prefix that could leave the store.
fn listing_dir(prefix: &str) -> Result<&str, StoreError> {
    let (dir, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
    if !dir.is_empty() {
        StorageKey::from_recorded(dir).map_err(|_| StoreError::BadKey(prefix.to_string()))?;
    }
    Ok(dir)
}

/// Every call is one boxed future per request; the work stays in the inherent methods above.
/// Calls that write say a full or read-only filesystem as such, naming the store's root
/// (`StoreError::at`).
impl BlobStore for LocalStore {
    fn begin_upload(&self) -> StoreFuture<'_, UploadState> {
        Box::pin(async move { self.begin().await.map_err(|e| e.at(&self.root)) })
    }

    fn append<'a>(
        &'a self,
        upload: &'a UploadState,
        body: Body<'a>,
        expected_len: Option<u64>,
        hasher: &'a mut Digester,
    ) -> StoreFuture<'a, UploadState> {
        Box::pin(async move {
            self.append_via(upload, body, expected_len, hasher, true)
                .await
                .map_err(|e| e.at(&self.root))
        })
    }

    fn rehash<'a>(
        &'a self,
        upload: &'a UploadState,
        algorithm: Algorithm,
    ) -> StoreFuture<'a, Digester> {
        Box::pin(LocalStore::rehash(self, upload, algorithm))
    }

    fn commit<'a>(&'a self, upload: &'a UploadState) -> StoreFuture<'a, StorageKey> {
        Box::pin(async move {
            LocalStore::commit(self, upload)
                .await
                .map_err(|e| e.at(&self.root))
        })
    }

    fn abort<'a>(&'a self, upload: &'a UploadState) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            LocalStore::delete(self, &upload.key)
                .await
                .map_err(|e| e.at(&self.root))
        })
    }

    fn size<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, u64> {
        Box::pin(LocalStore::size(self, key))
    }

    fn read<'a>(
        &'a self,
        key: &'a StorageKey,
        range: Option<ByteRange>,
        expected_size: Option<u64>,
    ) -> StoreFuture<'a, ByteStream> {
        Box::pin(LocalStore::read(self, key, range, expected_size))
    }

    fn delete<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            LocalStore::delete(self, key)
                .await
                .map_err(|e| e.at(&self.root))
        })
    }

    fn list(&self, prefix: &str) -> ObjectStream {
        self.list_objects(prefix)
    }

    fn probe(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move { LocalStore::probe(self).await.map_err(|e| e.at(&self.root)) })
    }
}

/// An upload's write buffer, whose first byte sits on a `DIRECT_ALIGN` boundary. An upload
/// reuses its few buffers: a fresh 1 MiB buffer per MiB received cost the kernel a page fault
/// and a zeroed page per 4 KiB, a tenth of a push's CPU.
struct Buffer {
    mem: Vec<u8>,
    start: usize,
    len: usize,
}

impl Buffer {
    fn new() -> Self {
        let mem = vec![0u8; WRITE_BUFFER + DIRECT_ALIGN];
        let start = mem.as_ptr().align_offset(DIRECT_ALIGN);
        Buffer { mem, start, len: 0 }
    }

    fn bytes(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }

    /// Copies as much of `src` as fits below `cap` bytes and returns how much that was.
    fn fill(&mut self, src: &[u8], cap: usize) -> usize {
        let n = src.len().min(cap - self.len);
        let at = self.start + self.len;
        self.mem[at..at + n].copy_from_slice(&src[..n]);
        self.len += n;
        n
    }
}

/// Receives the body into buffers for the hashing thread, taking them back from the writer
/// once written. The first buffer is cut short so that it ends on a `DIRECT_ALIGN` boundary of
/// the file: every later one can then be written directly. Returns the body's error if it
/// fails; a writer that stopped early has its own error, reported by `append`.
async fn feed<S, E>(
    body: S,
    offset: u64,
    full: tokio::sync::mpsc::Sender<Buffer>,
    mut free: tokio::sync::mpsc::Receiver<Buffer>,
) -> Result<(), StoreError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut made = 0;
    let mut cap = WRITE_BUFFER - (offset % DIRECT_ALIGN as u64) as usize;
    let mut current: Option<Buffer> = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StoreError::Body(e.to_string()))?;
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let buf = match current.as_mut() {
                Some(buf) => buf,
                None if made < BUFFERS => {
                    made += 1;
                    current.insert(Buffer::new())
                }
                None => match free.recv().await {
                    Some(buf) => current.insert(buf),
                    None => return Ok(()), // the writer stopped
                },
            };
            rest = &rest[buf.fill(rest, cap)..];
            if buf.len == cap {
                let buf = current.take().expect("the buffer just filled");
                if full.send(buf).await.is_err() {
                    return Ok(());
                }
                cap = WRITE_BUFFER;
            }
        }
    }
    if let Some(buf) = current.filter(|b| b.len > 0) {
        let _ = full.send(buf).await;
    }
    Ok(())
}

/// The upload file opened a second time, for direct writes: the bytes go from the buffer to
/// the disk without being copied into the page cache. On the machines measured that copy cost
/// more CPU than hashing, and a push is CPU-bound. `None` where the filesystem refuses
/// (ramfs, and tmpfs before Linux 6.6): everything then goes through the page cache.
fn open_direct(path: &Path) -> Option<std::fs::File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// The hashing side of `append`, on a blocking thread: hashes each buffer and passes it to a
/// writer thread, so that a buffer is written while the next is hashed.
fn hash_and_write(
    file: &std::fs::File,
    direct: Option<std::fs::File>,
    offset: u64,
    full: &mut tokio::sync::mpsc::Receiver<Buffer>,
    free: tokio::sync::mpsc::Sender<Buffer>,
    hasher: &mut Digester,
) -> std::io::Result<u64> {
    file.set_len(offset)?;
    std::thread::scope(|scope| {
        let (to_writer, from_hasher) = std::sync::mpsc::sync_channel::<Buffer>(BUFFERS);
        let writer = scope.spawn(move || write_buffers(file, direct, offset, from_hasher, free));
        while let Some(buf) = full.blocking_recv() {
            hasher.update(buf.bytes());
            if to_writer.send(buf).is_err() {
                break; // the writer failed; its error is returned below
            }
        }
        full.close();
        drop(to_writer);
        writer.join().expect("the writer does not panic")
    })
}

/// Writes the buffers one after the other from `offset` and hands each back to `feed`. Bytes
/// that go through the page cache are synced early by a second thread every `WRITEBACK_EVERY`
/// bytes: without that, the kernel starts writing back only when a large share of memory is
/// dirty, and the final sync of a large blob would wait for the whole blob. The early syncs
/// speed things up and prove nothing: their errors are kept and reported (a failed writeback
/// reports its error once per open file, and it must not be lost to the final sync), and
/// `append` syncs once more after the last byte.
fn write_buffers(
    file: &std::fs::File,
    mut direct: Option<std::fs::File>,
    offset: u64,
    buffers: std::sync::mpsc::Receiver<Buffer>,
    free: tokio::sync::mpsc::Sender<Buffer>,
) -> std::io::Result<u64> {
    std::thread::scope(|scope| {
        let (sync_tx, sync_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let syncer = scope.spawn(move || {
            let mut outcome = Ok(());
            while sync_rx.recv().is_ok() {
                if let Err(e) = file.sync_data() {
                    outcome = Err(e);
                }
            }
            outcome
        });
        let mut pos = offset;
        let mut unsynced = 0u64;
        let mut wrote = Ok(());
        for mut buf in buffers {
            match write_at(file, &mut direct, pos, buf.bytes()) {
                Ok(cached) => unsynced += cached,
                Err(e) => {
                    wrote = Err(e);
                    break;
                }
            }
            pos += buf.len as u64;
            if unsynced >= WRITEBACK_EVERY {
                // A sync already running or queued covers these bytes too.
                let _ = sync_tx.try_send(());
                unsynced = 0;
            }
            buf.len = 0;
            let _ = free.blocking_send(buf);
        }
        drop(sync_tx);
        let synced = syncer.join().expect("the sync thread does not panic");
        wrote?;
        synced?;
        Ok(pos - offset)
    })
}

/// Writes `data` at `pos`: its whole blocks directly when there is a direct handle and `pos`
/// is aligned, the rest through the page cache. Returns how many bytes went through the cache.
fn write_at(
    file: &std::fs::File,
    direct: &mut Option<std::fs::File>,
    pos: u64,
    data: &[u8],
) -> std::io::Result<u64> {
    let mut whole = 0;
    if let Some(d) = direct.as_ref()
        && pos.is_multiple_of(DIRECT_ALIGN as u64)
    {
        whole = data.len() / DIRECT_ALIGN * DIRECT_ALIGN;
        match d.write_all_at(&data[..whole], pos) {
            Ok(()) => {}
            // A filesystem can accept the flag at open and refuse the write: go through the
            // page cache from here on (this write included).
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                *direct = None;
                whole = 0;
            }
            Err(e) => return Err(e),
        }
    }
    file.write_all_at(&data[whole..], pos + whole as u64)?;
    Ok((data.len() - whole) as u64)
}

/// Reads `len` bytes from `start` in chunks of `READ_CHUNK` and sends them on; stops when the
/// receiver is gone (the client left). What the page cache holds is copied on this task, which
/// cannot block; only the rest goes to a blocking thread, so a warm pull costs no thread
/// hand-over per chunk.
async fn read_ahead(
    file: std::sync::Arc<std::fs::File>,
    mut pos: u64,
    len: u64,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    let end = pos + len;
    while pos < end {
        let want = (end - pos).min(READ_CHUNK as u64) as usize;
        let mut buf = read_buffer(want);
        read_cached(&file, &mut buf, pos, want);
        let chunk = if buf.len() == want {
            Ok(buf)
        } else {
            let f = file.clone();
            tokio::task::spawn_blocking(move || read_exact_into(&f, buf, pos, want))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        };
        let failed = chunk.is_err();
        if tx.send(chunk.map(returning)).await.is_err() || failed {
            return;
        }
        pos += want as u64;
    }
}

/// Read buffers, handed back when a connection has sent their bytes and shared by all reads: a
/// fresh 1 MiB allocation per chunk costs the kernel a page fault per 4 KiB of it, which on a
/// warm pull costs more than the copy. At most `SPARE_READ_BUFFERS` wait here.
static SPARES: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
const SPARE_READ_BUFFERS: usize = 16;

fn spares() -> std::sync::MutexGuard<'static, Vec<Vec<u8>>> {
    SPARES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An empty buffer with room for `want` (at most `READ_CHUNK`) bytes. Only whole chunks come
/// from the spares: a small blob (a config) or the tail of a large one gets a buffer of its own
/// size rather than holding a whole chunk's memory while it is sent.
fn read_buffer(want: usize) -> Vec<u8> {
    if want < READ_CHUNK {
        return Vec::with_capacity(want);
    }
    let mut buf = spares()
        .pop()
        .unwrap_or_else(|| Vec::with_capacity(READ_CHUNK));
    buf.clear();
    buf
}

/// `buf` as bytes that come back to the spares once dropped.
fn returning(buf: Vec<u8>) -> Bytes {
    Bytes::from_owner(Returned(buf))
}

struct Returned(Vec<u8>);

impl AsRef<[u8]> for Returned {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Returned {
    fn drop(&mut self) {
        let mut spares = spares();
        if spares.len() < SPARE_READ_BUFFERS && self.0.capacity() == READ_CHUNK {
            spares.push(std::mem::take(&mut self.0));
        }
    }
}

/// Appends to `buf` (up to `want` bytes) what the page cache holds of the file from `pos` on,
/// without waiting for the disk (`RWF_NOWAIT`). Stops at the first byte that would need the disk,
/// and on any error: the blocking read that follows reads the rest and reports real errors.
#[cfg(target_os = "linux")]
fn read_cached(file: &std::fs::File, buf: &mut Vec<u8>, pos: u64, want: usize) {
    use std::os::fd::AsRawFd as _;
    while buf.len() < want {
        let left = want - buf.len();
        let spare = &mut buf.spare_capacity_mut()[..left];
        let iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        };
        let offset = (pos + buf.len() as u64) as libc::off_t;
        // SAFETY: the iovec covers spare capacity of `buf`, which outlives the call; the kernel
        // writes at most `iov_len` bytes there and says how many.
        let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
        if n <= 0 {
            return;
        }
        // SAFETY: the kernel initialised these `n` bytes, within the capacity.
        unsafe { buf.set_len(buf.len() + n as usize) };
    }
}

/// Without `RWF_NOWAIT` nothing can be read without risking a wait: the blocking read does it all.
#[cfg(not(target_os = "linux"))]
fn read_cached(_file: &std::fs::File, _buf: &mut Vec<u8>, _pos: u64, _want: usize) {}

/// Fills `buf` to `want` bytes from the file at `pos + buf.len()`, waiting for the disk; a file
/// that ends sooner is an error.
fn read_exact_into(
    file: &std::fs::File,
    mut buf: Vec<u8>,
    pos: u64,
    want: usize,
) -> std::io::Result<Vec<u8>> {
    let have = buf.len();
    buf.resize(want, 0);
    file.read_exact_at(&mut buf[have..], pos + have as u64)?;
    Ok(buf)
}

async fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(std::io::Error::other)??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shipshape_oci::Digest;

    /// The backend-neutral contract (`contract.rs`), against this store.
    #[tokio::test]
    async fn the_local_store_keeps_the_blob_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        crate::contract::contract(std::sync::Arc::new(store)).await;
    }

    /// A stray file with a name no key can have is not listed; a key's directories are walked
    /// only where the prefix can match.
    #[tokio::test]
    async fn a_listing_skips_what_is_not_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/ab")).unwrap();
        std::fs::write(dir.path().join("blobs/ab/x.tmp"), b"?").unwrap();
        std::fs::write(dir.path().join("blobs/ab/abcd"), b"12").unwrap();
        let keys = |prefix: &'static str| {
            let store = store.clone();
            async move {
                let mut keys: Vec<String> = store
                    .list(prefix)
                    .map(|o| o.unwrap().key.as_str().to_string())
                    .collect()
                    .await;
                keys.sort();
                keys
            }
        };
        assert_eq!(keys("").await, ["blobs/ab/abcd"]);
        assert_eq!(keys("blobs/a").await, ["blobs/ab/abcd"]);
        assert!(keys("blobs/b").await.is_empty());
        let mut bad = store.list("blobs/../..");
        assert!(matches!(bad.next().await, Some(Err(StoreError::BadKey(_)))));
    }

    #[tokio::test]
    async fn a_large_append_hashes_and_stores_every_byte() {
        large_appends(true).await;
    }

    #[tokio::test]
    async fn without_direct_writes_a_large_append_goes_through_the_page_cache() {
        large_appends(false).await;
    }

    /// Several early syncs' worth in pieces of an odd size, after a first small append, then a
    /// second large append from an unaligned offset: the buffers end on block boundaries only
    /// after the first of each append.
    async fn large_appends(try_direct: bool) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        let mut up = store.begin().await.unwrap();
        let data: Vec<u8> = (0..3 * WRITEBACK_EVERY + 12_345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut h = Digester::new(Algorithm::Sha256);
        let first = futures::stream::iter([Ok::<_, String>(Bytes::from_static(b"x"))]);
        up = store
            .append_via(&up, first, None, &mut h, try_direct)
            .await
            .unwrap();
        let mut whole = b"x".to_vec();
        for part in [&data[..], &data[..WRITE_BUFFER + 3]] {
            let pieces: Vec<Result<Bytes, String>> = part
                .chunks(65_537)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            let before = up.received();
            up = store
                .append_via(
                    &up,
                    futures::stream::iter(pieces),
                    Some(part.len() as u64),
                    &mut h,
                    try_direct,
                )
                .await
                .unwrap();
            assert_eq!(up.received() - before, part.len() as u64);
            whole.extend_from_slice(part);
        }
        assert_eq!(h.finish(), Digest::of_bytes(Algorithm::Sha256, &whole));
        let key = LocalStore::commit(&store, &up).await.unwrap();
        let got: Vec<u8> = LocalStore::read(&store, &key, None, None)
            .await
            .unwrap()
            .map(|c| c.unwrap().to_vec())
            .concat()
            .await;
        assert!(got == whole, "the blob reads back as written");
    }

    /// Reads pass whether or not the page cache served them, since the blocking read fills in
    /// whatever `read_cached` left. This fails if a warm file ever stops being read without a
    /// blocking thread (the flag refused, an offset wrong). The file is made beside the sources,
    /// not in the temporary directory: tmpfs (`/tmp` on many hosts) refuses `RWF_NOWAIT`, which
    /// the store survives but this test is about.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_warm_file_is_read_from_the_page_cache_without_waiting() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("object");
        let data: Vec<u8> = (0..3 * READ_CHUNK + 5).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mut buf = Vec::with_capacity(READ_CHUNK);
        read_cached(&file, &mut buf, READ_CHUNK as u64 + 7, READ_CHUNK);
        assert_eq!(
            buf.len(),
            READ_CHUNK,
            "the page cache served the whole chunk"
        );
        assert!(buf == data[READ_CHUNK + 7..2 * READ_CHUNK + 7]);
    }

    /// A file the page cache holds only in part (on Linux: evicted, then a few pages read
    /// back) and one that ends before the length asked for: every byte arrives in order, and a
    /// short file is an error rather than a short blob.
    #[tokio::test]
    async fn partly_cached_and_short_files_read_correctly() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        let key = StorageKey::new_blob();
        let path = store.path(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let data: Vec<u8> = (0..3 * READ_CHUNK + 5).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        file.sync_all().unwrap();
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd as _;
            // SAFETY: a plain advice call on an open descriptor.
            let advised =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            assert_eq!(advised, 0);
        }
        let mut page = [0u8; 100];
        file.read_exact_at(&mut page, READ_CHUNK as u64 + 4096)
            .unwrap();
        let read = |range| {
            let store = store.clone();
            let key = key.clone();
            async move {
                let mut got = Vec::new();
                let mut chunks = LocalStore::read(&store, &key, range, None).await.unwrap();
                while let Some(c) = chunks.next().await {
                    got.extend_from_slice(&c?);
                }
                Ok::<_, std::io::Error>(got)
            }
        };
        assert!(
            read(None).await.unwrap() == data,
            "the whole blob, in order"
        );
        let range = ByteRange {
            first: 10,
            last: 2 * READ_CHUNK as u64,
        };
        assert!(read(Some(range)).await.unwrap() == data[10..=2 * READ_CHUNK]);
        let short = ByteRange {
            first: 0,
            last: data.len() as u64 + 9,
        };
        let err = read(Some(short)).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    /// Whether `dir`'s filesystem takes an aligned direct write, found out without the code
    /// under test: ramfs (and tmpfs before Linux 6.6) refuses `O_DIRECT` at open, and some filesystems accept the
    /// flag and refuse the write.
    #[cfg(target_os = "linux")]
    fn takes_direct_writes(dir: &Path) -> bool {
        use std::os::unix::fs::OpenOptionsExt as _;
        let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(dir.join("probe"))
        else {
            return false;
        };
        let mut block = Buffer::new();
        block.fill(&[7u8; DIRECT_ALIGN], DIRECT_ALIGN);
        file.write_all_at(block.bytes(), 0).is_ok()
    }

    #[cfg(not(target_os = "linux"))]
    fn takes_direct_writes(_dir: &Path) -> bool {
        false
    }

    /// The appends above pass whether or not their blocks went directly: a refused direct
    /// write falls back to the page cache. This one checks the path taken. Where the
    /// filesystem takes direct writes, only the tail of a buffer goes through the page cache,
    /// so it fails if the buffers' alignment or the split into whole blocks and a tail ever
    /// makes the disk refuse them. Where it does not (ramfs, or a host without `O_DIRECT`),
    /// every byte goes through the page cache and the direct handle is given up.
    #[test]
    fn whole_blocks_go_directly_and_only_the_tail_through_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let direct_ok = takes_direct_writes(dir.path());
        eprintln!(
            "{}: direct writes {}",
            dir.path().display(),
            if direct_ok { "taken" } else { "refused" }
        );
        let path = dir.path().join("object");
        let file = std::fs::File::create(&path).unwrap();
        let mut direct = open_direct(&path);
        let data: Vec<u8> = (0..WRITE_BUFFER + 5_000).map(|i| (i % 253) as u8).collect();
        let mut first = Buffer::new();
        assert_eq!(first.fill(&data, WRITE_BUFFER), WRITE_BUFFER);
        let cached_first = write_at(&file, &mut direct, 0, first.bytes()).unwrap();
        let mut tail = Buffer::new();
        tail.fill(&data[WRITE_BUFFER..], WRITE_BUFFER);
        let cached_tail = write_at(&file, &mut direct, WRITE_BUFFER as u64, tail.bytes()).unwrap();
        if direct_ok {
            assert_eq!(cached_first, 0, "a whole buffer went directly");
            assert_eq!(cached_tail, (5_000 % DIRECT_ALIGN) as u64);
            assert!(direct.is_some(), "a direct write was refused");
        } else {
            assert_eq!(cached_first, WRITE_BUFFER as u64);
            assert_eq!(cached_tail, 5_000);
            assert!(direct.is_none(), "the refused direct handle is given up");
        }
        assert!(
            std::fs::read(&path).unwrap() == data,
            "the object reads back as written"
        );
    }

    #[test]
    fn recorded_keys_cannot_escape() {
        assert!(StorageKey::from_recorded("blobs/ab/abcdef").is_ok());
        for bad in ["", "/etc/passwd", "blobs/../x", "blobs//x", "a/./b"] {
            assert!(StorageKey::from_recorded(bad).is_err(), "{bad}");
        }
    }
}
