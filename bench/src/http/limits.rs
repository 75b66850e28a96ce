//! The machine's own limits, measured in the same run: single-core SHA-256 and sequential
//! disk write (synced) and read (cold: page cache dropped first), each in MiB/s.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use sha2::{Digest as _, Sha256};

const MIB: f64 = 1024.0 * 1024.0;

/// SHA-256 over `data` in 1 MiB updates on this thread, as the registry hashes a stream.
pub fn sha256_mib_s(data: &[u8]) -> f64 {
    let started = Instant::now();
    let mut h = Sha256::new();
    for chunk in data.chunks(1 << 20) {
        h.update(chunk);
    }
    std::hint::black_box(h.finalize());
    data.len() as f64 / MIB / started.elapsed().as_secs_f64()
}

/// Writes `data` to a new file at `path` in 1 MiB writes and syncs it (like
/// `dd conv=fdatasync`); the rate includes the sync.
pub fn write_mib_s(path: &Path, data: &[u8]) -> std::io::Result<f64> {
    let _ = std::fs::remove_file(path);
    let started = Instant::now();
    let mut f = std::fs::File::create(path)?;
    for chunk in data.chunks(1 << 20) {
        f.write_all(chunk)?;
    }
    f.sync_all()?;
    Ok(data.len() as f64 / MIB / started.elapsed().as_secs_f64())
}

/// The same with direct writes (`O_DIRECT`, like `dd oflag=direct conv=fdatasync`): the bytes
/// go from the buffer to the disk without the copy into the page cache, which on a virtual
/// machine can cost more than the disk. Shipshape writes uploads this way, so the disk's limit
/// is the better of the two.
pub fn write_direct_mib_s(path: &Path, data: &[u8]) -> std::io::Result<f64> {
    use std::os::unix::fs::OpenOptionsExt as _;
    const ALIGN: usize = 4096;
    const CHUNK: usize = 1 << 20;
    let _ = std::fs::remove_file(path);
    let mut mem = vec![0u8; CHUNK + ALIGN];
    let start = mem.as_ptr().align_offset(ALIGN);
    let started = Instant::now();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)?;
    let whole = data.len() / ALIGN * ALIGN;
    for chunk in data[..whole].chunks(CHUNK) {
        let buf = &mut mem[start..start + chunk.len()];
        buf.copy_from_slice(chunk);
        f.write_all(buf)?;
    }
    drop(f);
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(&data[whole..])?;
    f.sync_all()?;
    Ok(data.len() as f64 / MIB / started.elapsed().as_secs_f64())
}

/// Empties the page cache so the next read comes from the disk. Needs root; says so if not.
pub fn drop_caches() -> std::io::Result<()> {
    // Dirty pages are not dropped; write them out first.
    sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3")
}

/// Writes every dirty page out, so one measurement's writeback does not slow the next.
pub fn sync() {
    let _ = std::process::Command::new("sync").status();
}

/// Reads `path` in 1 MiB reads; cold when `drop_caches` ran just before.
pub fn read_mib_s(path: &Path) -> std::io::Result<f64> {
    let started = Instant::now();
    let n = read_all(path)?;
    Ok(n as f64 / MIB / started.elapsed().as_secs_f64())
}

/// Reads `path` to its end in 1 MiB reads; the bytes read.
pub fn read_all(path: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let r = f.read(&mut buf)?;
        if r == 0 {
            return Ok(n);
        }
        n += r as u64;
    }
}
