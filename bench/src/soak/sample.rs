//! One sample of the soak: the server process's memory and descriptors, the catalogue's and the
//! store's size on disk, what the catalogue holds, and each kind of operation's count, errors
//! and latencies since the previous sample.

use std::path::Path;

use serde::Serialize;

use super::Kind;
use super::load::Window;
use super::registry::Counts;
use crate::servers::Server;
use crate::stats::Samples;

/// One kind of operation over a sample's window.
#[derive(Clone, Debug, Serialize)]
pub struct OpFigures {
    pub kind: Kind,
    /// Operations that succeeded.
    pub count: u64,
    pub errors: u64,
    /// Pulls and deletes of tags deleted meanwhile (correct answers, not timed).
    pub gone: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    #[serde(skip)]
    pub latencies_ms: Samples,
}

impl OpFigures {
    fn new(kind: Kind, latencies: Vec<f64>, errors: u64, gone: u64) -> OpFigures {
        let latencies_ms = Samples { values: latencies };
        let known = |v: f64| (!v.is_nan()).then_some(v);
        OpFigures {
            kind,
            count: latencies_ms.len() as u64,
            errors,
            gone,
            p50_ms: known(latencies_ms.median()),
            p99_ms: known(latencies_ms.percentile(0.99)),
            latencies_ms,
        }
    }

    /// The figures of several windows taken together.
    pub fn merge(kind: Kind, parts: &[&OpFigures]) -> OpFigures {
        let latencies = parts
            .iter()
            .flat_map(|p| p.latencies_ms.values.iter().copied())
            .collect();
        OpFigures::new(
            kind,
            latencies,
            parts.iter().map(|p| p.errors).sum(),
            parts.iter().map(|p| p.gone).sum(),
        )
    }
}

/// The soak at one instant, and its operations since the previous sample.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// Seconds since the load started.
    pub at_s: f64,
    pub rss_mib: f64,
    /// Of the RSS, what SQLite holds (its connections' page caches and statements).
    pub sqlite_mib: f64,
    /// The server's threads (SQLite's connections and tokio's blocking pool each have theirs).
    pub threads: u64,
    pub open_fds: u64,
    /// `catalogue.db` and its write-ahead log.
    pub catalogue_bytes: u64,
    /// The write-ahead log alone: SQLite reuses it after a checkpoint but never shrinks it.
    pub catalogue_wal_bytes: u64,
    /// The database file's pages in use (not on its free list), as of its last checkpoint: the
    /// file keeps the size of the most it ever held, this follows what it holds.
    pub catalogue_used_bytes: u64,
    pub store_bytes: u64,
    pub store_files: u64,
    pub tags: u64,
    pub manifests: u64,
    /// Manifests no tag points at: those deleted and held for the restore window.
    pub untagged_manifests: u64,
    /// Tags the load tracks as alive (the pullers choose among them).
    pub tracked_tags: u64,
    /// One entry per kind, in [`Kind::ALL`]'s order.
    pub ops: Vec<OpFigures>,
}

impl Sample {
    /// Reads the server's process and data directory now; `counts` are the catalogue's,
    /// `windows` the load's operations since the previous sample.
    pub fn take(
        at_s: f64,
        server: &Server,
        counts: Counts,
        tracked_tags: u64,
        windows: [Window; 5],
    ) -> Sample {
        let (store_files, store_bytes) = dir_usage(&server.data.join("store"));
        let wal = file_bytes(&server.data.join("catalogue.db-wal"));
        Sample {
            at_s,
            rss_mib: server.rss_mib(),
            sqlite_mib: counts.sqlite_bytes as f64 / 1048576.0,
            threads: server.threads(),
            open_fds: open_fds(server.pid()),
            catalogue_bytes: file_bytes(&server.data.join("catalogue.db")) + wal,
            catalogue_wal_bytes: wal,
            catalogue_used_bytes: pages_in_use(&server.data.join("catalogue.db")),
            store_bytes,
            store_files,
            tags: counts.tags,
            manifests: counts.manifests,
            untagged_manifests: counts.untagged,
            tracked_tags,
            ops: Kind::ALL
                .into_iter()
                .zip(windows)
                .map(|(k, w)| OpFigures::new(k, w.latencies_ms, w.errors, w.gone))
                .collect(),
        }
    }

    pub fn op(&self, kind: Kind) -> &OpFigures {
        &self.ops[kind.index()]
    }

    /// Consecutive samples as one: the state at the last, the operations of all.
    pub fn merge(group: &[Sample]) -> Sample {
        let last = group.last().expect("a non-empty group");
        Sample {
            ops: Kind::ALL
                .into_iter()
                .map(|k| OpFigures::merge(k, &group.iter().map(|s| s.op(k)).collect::<Vec<_>>()))
                .collect(),
            ..last.clone()
        }
    }
}

/// Whether the process is still running: a child that died stays a zombie until reaped, so
/// the state is read rather than the directory's presence.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("State:"))
                .map(|state| !state.trim_start().starts_with(['Z', 'X']))
        })
        .unwrap_or(false)
}

fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// Bytes of a SQLite database's pages not on its free list, read from the file's header
/// (page size at offset 16, pages at 28, free-list pages at 36, big-endian; a page size of 1
/// means 65 536). The header is rewritten at each checkpoint. 0 when it cannot be read.
fn pages_in_use(path: &Path) -> u64 {
    let mut header = [0u8; 100];
    let read = std::fs::File::open(path).and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut header)
    });
    if read.is_err() {
        return 0;
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let be32 = |at: usize| u64::from(u32::from_be_bytes(header[at..at + 4].try_into().unwrap()));
    be32(28).saturating_sub(be32(36)) * page_size
}

fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Files under `dir` and their bytes; files that vanish while it is walked (the collector
/// deleting them) are skipped.
fn dir_usage(dir: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => {
                    files += 1;
                    bytes += m.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}
