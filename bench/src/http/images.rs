//! Test images: layers of pseudo-random bytes (incompressible, so no layer is cheaper to store
//! than its size), an image config and an OCI image manifest, held in memory for the lean
//! client and written as an OCI image layout for skopeo.

use std::path::Path;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
// Uncompressed tar: the digest is the diff id, so skopeo has nothing to recompute or recompress.
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// One blob and its digest (`sha256:<hex>`).
#[derive(Clone, Debug)]
pub struct Blob {
    pub digest: String,
    pub data: Bytes,
}

impl Blob {
    pub fn new(data: Bytes) -> Blob {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
        Blob { digest, data }
    }

    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// An image: config, layers and the manifest that lists them.
#[derive(Clone, Debug)]
pub struct Image {
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub manifest: Blob,
}

impl Image {
    /// An image over the given layers; `label` makes configs (and so manifests) distinct.
    pub fn new(label: &str, layers: Vec<Blob>) -> Image {
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": { "Labels": { "bench": label } },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        });
        let config = Blob::new(Bytes::from(config.to_string()));
        let descriptors: Vec<_> = layers
            .iter()
            .map(|l| serde_json::json!({"mediaType": LAYER_TYPE, "digest": l.digest, "size": l.len()}))
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": config.digest, "size": config.len()},
            "layers": descriptors,
        });
        let manifest = Blob::new(Bytes::from(manifest.to_string()));
        Image {
            config,
            layers,
            manifest,
        }
    }

    /// Config and layers, the blobs a push uploads before the manifest.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(self.layers.iter())
    }

    /// Bytes of config and layers.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs().map(Blob::len).sum()
    }

    /// Writes an OCI image layout at `dir` holding this image under `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> std::io::Result<()> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs)?;
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
        for b in self.blobs().chain(std::iter::once(&self.manifest)) {
            std::fs::write(blobs.join(b.hex()), &b.data)?;
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": MANIFEST_TYPE,
                "digest": self.manifest.digest,
                "size": self.manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        std::fs::write(dir.join("index.json"), index.to_string())
    }
}

/// `len` pseudo-random bytes from `seed` (xorshift64*: fast, and different seeds never
/// produce equal layers in practice).
pub fn random_bytes(seed: u64, len: usize) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = vec![0u8; len];
    for chunk in out.chunks_mut(8) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    Bytes::from(out)
}

/// Layers of the given sizes, seeded from `seed` upward.
pub fn layers(seed: u64, sizes: &[usize]) -> Vec<Blob> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| Blob::new(random_bytes(seed + i as u64, n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_differ_and_the_layout_names_every_blob() {
        let img = Image::new("t", layers(1, &[1000, 1000]));
        assert_ne!(img.layers[0].digest, img.layers[1].digest);
        let dir = tempfile::tempdir().unwrap();
        img.write_layout(dir.path(), "v1").unwrap();
        for b in img.blobs() {
            let on_disk = std::fs::read(dir.path().join("blobs/sha256").join(b.hex())).unwrap();
            assert_eq!(Blob::new(on_disk.into()).digest, b.digest);
        }
    }
}
