//! The logical content both registries are given, and the churn applied to it.
//!
//! Repositories of images; each image is a config and layers: two layers of a base image shared
//! by every repository, one layer from a small pool shared within its repository, and unique
//! layers. About ten blobs per manifest, so 100 000 blobs ↔ 10 000 manifests. Every blob has small
//! real bytes whose digest is its name. Churn deletes 1% of the tags per round, in a fixed
//! shuffled order, never a repository's `latest`; what each round must free follows from
//! reference counts.

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};

/// Base images; each contributes two layers that images in any repository start from.
const BASES: u32 = 40;
/// Layers shared within one repository (dependencies), one per image.
const REPO_POOL: u32 = 12;
/// Layers no other image has.
const UNIQUE_LAYERS: u32 = 8;
/// Images per repository.
const IMAGES_PER_REPO: u32 = 20;

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A deterministic generator (splitmix64): the same seed gives the same registry and churn.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What a blob is, which decides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobKind {
    Layer,
    Config { image: u32 },
}

/// One image: a tag in a repository, pointing at a manifest.
#[derive(Clone, Debug)]
pub struct Image {
    pub repo: u32,
    pub tag: String,
    /// Also tagged `latest` (the newest image of its repository): never deleted.
    pub latest: bool,
    pub config: u32,
    /// Base layers, then the repository's shared layer, then unique layers.
    pub layers: Vec<u32>,
    pub manifest_digest: String,
}

/// The whole registry, as both servers hold it.
pub struct Model {
    pub repos: Vec<String>,
    pub images: Vec<Image>,
    kinds: Vec<BlobKind>,
    digests: Vec<[u8; 32]>,
    sizes: Vec<u32>,
    /// Images in the order churn deletes them.
    pub deletion_order: Vec<u32>,
}

impl Model {
    /// A registry of about `blobs` blobs.
    pub fn new(blobs: u64, seed: u64) -> Model {
        let images_total = (blobs / 10).max(IMAGES_PER_REPO as u64) as u32;
        let repo_count = images_total.div_ceil(IMAGES_PER_REPO);
        let mut rng = Rng::new(seed);
        let mut kinds = Vec::new();
        for _ in 0..BASES * 2 {
            kinds.push(BlobKind::Layer);
        }
        let repos: Vec<String> = (0..repo_count)
            .map(|r| format!("team{:02}/service-{r:05}", r % 50))
            .collect();
        let mut images = Vec::with_capacity(images_total as usize);
        for r in 0..repo_count {
            let pool_start = kinds.len() as u32;
            for _ in 0..REPO_POOL {
                kinds.push(BlobKind::Layer);
            }
            let first = r * IMAGES_PER_REPO;
            let last = ((r + 1) * IMAGES_PER_REPO).min(images_total);
            for i in first..last {
                let config = kinds.len() as u32;
                kinds.push(BlobKind::Config { image: i });
                let base = rng.below(BASES as u64) as u32;
                let mut layers = vec![base * 2, base * 2 + 1];
                layers.push(pool_start + rng.below(REPO_POOL as u64) as u32);
                for _ in 0..UNIQUE_LAYERS {
                    layers.push(kinds.len() as u32);
                    kinds.push(BlobKind::Layer);
                }
                images.push(Image {
                    repo: r,
                    tag: format!("build-{}", i - first),
                    latest: i + 1 == last,
                    config,
                    layers,
                    manifest_digest: String::new(),
                });
            }
        }
        // Base and pool layers no image happened to pick would be garbage from the start.
        let mut used = vec![false; kinds.len()];
        for im in &images {
            used[im.config as usize] = true;
            for &l in &im.layers {
                used[l as usize] = true;
            }
        }
        let mut renumber = vec![u32::MAX; kinds.len()];
        let mut kept = Vec::new();
        for (b, kind) in kinds.iter().enumerate() {
            if used[b] {
                renumber[b] = kept.len() as u32;
                kept.push(*kind);
            }
        }
        let kinds = kept;
        for im in &mut images {
            im.config = renumber[im.config as usize];
            for l in &mut im.layers {
                *l = renumber[*l as usize];
            }
        }
        let mut model = Model {
            repos,
            images,
            kinds,
            digests: Vec::new(),
            sizes: Vec::new(),
            deletion_order: Vec::new(),
        };
        let (digests, sizes): (Vec<_>, Vec<_>) = (0..model.kinds.len() as u32)
            .map(|b| {
                let bytes = model.blob_bytes(b);
                let digest: [u8; 32] = Sha256::digest(&bytes).into();
                (digest, bytes.len() as u32)
            })
            .unzip();
        model.digests = digests;
        model.sizes = sizes;
        for i in 0..model.images.len() {
            let m = model.manifest_bytes(i as u32);
            model.images[i].manifest_digest = format!("sha256:{}", hex::encode(Sha256::digest(&m)));
        }
        let mut order: Vec<u32> = (0..model.images.len() as u32)
            .filter(|&i| !model.images[i as usize].latest)
            .collect();
        for k in (1..order.len()).rev() {
            let j = rng.below(k as u64 + 1) as usize;
            order.swap(k, j);
        }
        model.deletion_order = order;
        model
    }

    pub fn blob_count(&self) -> usize {
        self.kinds.len()
    }

    /// Tags: one per image, plus `latest` in every repository.
    pub fn tag_count(&self) -> usize {
        self.images.len() + self.repos.len()
    }

    pub fn digest(&self, blob: u32) -> String {
        format!("sha256:{}", hex::encode(self.digests[blob as usize]))
    }

    pub fn hex(&self, blob: u32) -> String {
        hex::encode(self.digests[blob as usize])
    }

    pub fn size(&self, blob: u32) -> u64 {
        self.sizes[blob as usize] as u64
    }

    /// The bytes of a blob: a config names its image; a layer is 200–2000 pseudo-random bytes.
    pub fn blob_bytes(&self, blob: u32) -> Vec<u8> {
        match self.kinds[blob as usize] {
            BlobKind::Config { image } => format!(
                "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Labels\":{{\"bench.image\":\"{image}\"}}}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}}}}"
            )
            .into_bytes(),
            BlobKind::Layer => {
                let mut rng = Rng::new(0xB10B_0000 ^ blob as u64);
                let len = 200 + rng.below(1800) as usize;
                let mut out = format!("shipshape-bench layer {blob}\n").into_bytes();
                while out.len() < len {
                    out.extend_from_slice(&rng.next_u64().to_le_bytes());
                }
                out.truncate(len);
                out
            }
        }
    }

    /// Every blob an image references: config first, then layers.
    pub fn blobs_of(&self, image: u32) -> impl Iterator<Item = u32> + '_ {
        let im = &self.images[image as usize];
        std::iter::once(im.config).chain(im.layers.iter().copied())
    }

    /// The manifest as pushed: an OCI image manifest, compact JSON.
    pub fn manifest_bytes(&self, image: u32) -> Vec<u8> {
        let im = &self.images[image as usize];
        let layers: Vec<String> = im
            .layers
            .iter()
            .map(|&l| {
                format!(
                    "{{\"mediaType\":\"{LAYER_TYPE}\",\"digest\":\"{}\",\"size\":{}}}",
                    self.digest(l),
                    self.size(l)
                )
            })
            .collect();
        format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"{MANIFEST_TYPE}\",\"config\":{{\"mediaType\":\"{CONFIG_TYPE}\",\"digest\":\"{}\",\"size\":{}}},\"layers\":[{}]}}",
            self.digest(im.config),
            self.size(im.config),
            layers.join(",")
        )
        .into_bytes()
    }

    /// Images deleted per round: 1% of the tags.
    pub fn churn_per_round(&self) -> usize {
        self.tag_count().div_ceil(100)
    }

    /// The images round `k` deletes (rounds never overlap).
    pub fn round(&self, k: usize) -> &[u32] {
        let c = self.churn_per_round();
        let start = (k * c).min(self.deletion_order.len());
        let end = ((k + 1) * c).min(self.deletion_order.len());
        &self.deletion_order[start..end]
    }

    /// How many rounds the registry can take.
    pub fn rounds(&self) -> usize {
        self.deletion_order.len() / self.churn_per_round()
    }
}

/// What one registry still holds, round after round: reference counts of blobs and of
/// (repository, blob) links, so each round's exact garbage is known in advance.
#[derive(Clone)]
pub struct Holdings {
    refs: Vec<u32>,
    links: HashMap<(u32, u32), u32>,
    deleted: Vec<bool>,
    pub next_round: usize,
}

/// What deleting a round's images must free.
#[derive(Clone, Debug, Default)]
pub struct Garbage {
    /// Blobs no remaining manifest references.
    pub blobs: Vec<u32>,
    pub bytes: u64,
    /// Repository links no remaining manifest of the repository references.
    pub links: u64,
    pub manifests: u64,
}

impl Holdings {
    pub fn new(model: &Model) -> Holdings {
        let mut refs = vec![0u32; model.blob_count()];
        let mut links = HashMap::new();
        for (i, im) in model.images.iter().enumerate() {
            for b in model.blobs_of(i as u32) {
                refs[b as usize] += 1;
                *links.entry((im.repo, b)).or_insert(0) += 1;
            }
        }
        Holdings {
            refs,
            links,
            deleted: vec![false; model.images.len()],
            next_round: 0,
        }
    }

    /// Takes the next round: its images and what deleting them frees.
    pub fn take_round(&mut self, model: &Model) -> (Vec<u32>, Garbage) {
        self.take(model, usize::MAX)
    }

    /// Takes the next round but deletes at most `limit` of its images (a fixed churn, whatever
    /// the registry's size); the rest of the round is never deleted.
    pub fn take(&mut self, model: &Model, limit: usize) -> (Vec<u32>, Garbage) {
        let round = model.round(self.next_round);
        let images = round[..limit.min(round.len())].to_vec();
        self.next_round += 1;
        let mut g = Garbage::default();
        for &i in &images {
            self.deleted[i as usize] = true;
            g.manifests += 1;
            let repo = model.images[i as usize].repo;
            for b in model.blobs_of(i) {
                let r = &mut self.refs[b as usize];
                *r -= 1;
                if *r == 0 {
                    g.blobs.push(b);
                    g.bytes += model.size(b);
                }
                let l = self.links.get_mut(&(repo, b)).expect("link counted");
                *l -= 1;
                if *l == 0 {
                    g.links += 1;
                }
            }
        }
        (images, g)
    }

    pub fn is_deleted(&self, image: u32) -> bool {
        self.deleted[image as usize]
    }

    /// Images still tagged.
    pub fn survivors(&self) -> Vec<u32> {
        (0..self.deleted.len() as u32)
            .filter(|&i| !self.deleted[i as usize])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_ten_blobs_per_manifest_and_rounds_free_only_unshared_blobs() {
        let m = Model::new(10_000, 7);
        assert_eq!(m.images.len(), 1000);
        assert!((9_000..11_000).contains(&m.blob_count()));
        let mut h = Holdings::new(&m);
        let (imgs, g) = h.take_round(&m);
        assert_eq!(imgs.len(), m.churn_per_round());
        // Config and unique layers always go; base layers never.
        assert!(g.blobs.len() >= imgs.len() * 9);
        assert!(g.blobs.iter().all(|&b| b >= 2 * BASES));
        let (next, _) = h.take_round(&m);
        assert!(next.iter().all(|i| !imgs.contains(i)));
    }
}
