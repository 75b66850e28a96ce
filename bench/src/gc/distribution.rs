//! Writes the model as CNCF Distribution's filesystem driver lays it out: every blob (manifests
//! included) under `blobs/sha256/XX/DIGEST/data`, and per repository the links a push leaves:
//! `_layers` for config and layers, `_manifests/revisions` for each manifest, and for each tag
//! `current/link` and `index/sha256/DIGEST/link`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::model::Model;

fn put(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().expect("a parent directory"))?;
    std::fs::write(path, bytes)
}

/// The `docker/registry/v2` directory under a storage root.
pub fn v2(root: &Path) -> PathBuf {
    root.join("docker/registry/v2")
}

fn blob_data(v2: &Path, hex: &str) -> PathBuf {
    v2.join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]))
}

/// Writes the model under `root`, on two threads (one for blobs, one for repositories).
pub fn populate(model: &Model, root: &Path) -> std::io::Result<()> {
    let v2 = v2(root);
    std::thread::scope(|s| {
        let blobs = s.spawn(|| -> std::io::Result<()> {
            for b in 0..model.blob_count() as u32 {
                put(&blob_data(&v2, &model.hex(b)), &model.blob_bytes(b))?;
            }
            for i in 0..model.images.len() as u32 {
                let hex = model.images[i as usize].manifest_digest["sha256:".len()..].to_string();
                put(&blob_data(&v2, &hex), &model.manifest_bytes(i))?;
            }
            Ok(())
        });
        let repos = s.spawn(|| -> std::io::Result<()> {
            let mut linked: HashSet<(u32, u32)> = HashSet::new();
            for (i, im) in model.images.iter().enumerate() {
                let repo = v2.join("repositories").join(&model.repos[im.repo as usize]);
                for b in model.blobs_of(i as u32) {
                    if linked.insert((im.repo, b)) {
                        let hex = model.hex(b);
                        put(
                            &repo.join(format!("_layers/sha256/{hex}/link")),
                            model.digest(b).as_bytes(),
                        )?;
                    }
                }
                let digest = &im.manifest_digest;
                let hex = &digest["sha256:".len()..];
                let m = repo.join("_manifests");
                put(
                    &m.join(format!("revisions/sha256/{hex}/link")),
                    digest.as_bytes(),
                )?;
                let mut names = vec![im.tag.as_str()];
                if im.latest {
                    names.push("latest");
                }
                for tag in names {
                    let t = m.join("tags").join(tag);
                    put(&t.join("current/link"), digest.as_bytes())?;
                    put(
                        &t.join(format!("index/sha256/{hex}/link")),
                        digest.as_bytes(),
                    )?;
                }
            }
            Ok(())
        });
        blobs.join().expect("blob writer")?;
        repos.join().expect("repository writer")
    })?;
    std::process::Command::new("sync").status()?;
    Ok(())
}

/// The digests (hex) of every blob Distribution stores, manifests included.
pub fn stored_blobs(root: &Path) -> std::io::Result<HashSet<String>> {
    let mut out = HashSet::new();
    let dir = v2(root).join("blobs/sha256");
    for prefix in std::fs::read_dir(&dir)? {
        for blob in std::fs::read_dir(prefix?.path())? {
            let blob = blob?;
            if blob.path().join("data").exists() {
                out.insert(blob.file_name().to_string_lossy().into_owned());
            }
        }
    }
    Ok(out)
}
