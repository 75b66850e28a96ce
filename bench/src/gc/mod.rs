//! The garbage-collection benchmark (`bench-gc`): the same registry content in Shipshape and in
//! CNCF Distribution, 1% of the tags deleted, and the time until the storage is reclaimed —
//! Shipshape's online run beside Distribution's offline `garbage-collect`, quiet and under load.

pub mod distribution;
pub mod load;
pub mod model;
pub mod shipshape;

use std::path::Path;

/// Files under `dir`, recursively.
pub fn count_files(dir: &Path) -> std::io::Result<u64> {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    Ok(n)
}
