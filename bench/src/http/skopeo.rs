//! The real client: skopeo copying between an OCI image layout and a registry over plain HTTP.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> std::io::Result<Duration> {
    let started = Instant::now();
    let out = Command::new("skopeo").args(args).output()?;
    let took = started.elapsed();
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "skopeo {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(took)
}

/// `skopeo copy --preserve-digests oci:LAYOUT:tag docker://HOST/repo:tag`; the wall time.
pub fn push(layout: &Path, tag: &str, host: &str, repo: &str) -> std::io::Result<Duration> {
    let src = format!("oci:{}:{tag}", layout.display());
    let dst = format!("docker://{host}/{repo}:{tag}");
    run(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--preserve-digests",
        &src,
        &dst,
    ])
}

/// `skopeo copy docker://HOST/repo:tag oci:DIR:tag` into a fresh directory; the wall time.
/// skopeo verifies every digest and writes the blobs to `dir` (no fsync).
pub fn pull(host: &str, repo: &str, tag: &str, dir: &Path) -> std::io::Result<Duration> {
    let _ = std::fs::remove_dir_all(dir);
    let src = format!("docker://{host}/{repo}:{tag}");
    let dst = format!("oci:{}:{tag}", dir.display());
    let took = run(&["copy", "--quiet", "--src-tls-verify=false", &src, &dst]);
    let _ = std::fs::remove_dir_all(dir);
    took
}
