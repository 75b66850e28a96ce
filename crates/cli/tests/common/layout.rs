//! OCI image layouts on disk, written without umoci: real gzip'd tar layers, real image configs,
//! single-platform images (which may share layers) and multi-arch indexes, plus a reader for the
//! layouts a client writes back.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{OCI_INDEX, OCI_MANIFEST, random_bytes, sha256};

pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content descriptor: what a manifest or an index says about a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Descriptor {
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest: sha256(bytes),
            size: bytes.len(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// A filesystem layer: a tar archive of a few files, gzip-compressed.
#[derive(Clone, Debug)]
pub struct Layer {
    /// The uncompressed tar archive.
    pub tar: Vec<u8>,
    /// The blob: the gzip-compressed tar.
    pub gz: Vec<u8>,
    /// Digest of the compressed blob (what manifests list).
    pub digest: String,
    /// Digest of the uncompressed tar (what the config's `rootfs.diff_ids` lists).
    pub diff_id: String,
}

impl Layer {
    /// A layer holding exactly `files` (`path`, contents), with their parent directories.
    /// Every header is fixed (mtime 0, root-owned), so the same files give the same digest.
    pub fn from_files(files: &[(&str, Vec<u8>)]) -> Layer {
        let mut dirs = BTreeSet::new();
        for (path, _) in files {
            let mut parent = Path::new(path).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                dirs.insert(p.to_path_buf());
                parent = p.parent();
            }
        }
        let mut builder = tar::Builder::new(Vec::new());
        for dir in &dirs {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            builder
                .append_data(&mut h, format!("{}/", dir.display()), std::io::empty())
                .expect("tar directory entry");
        }
        for (path, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            builder
                .append_data(&mut h, path, data.as_slice())
                .expect("tar file entry");
        }
        let tar = builder.into_inner().expect("tar archive");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&tar).expect("gzip");
        let gz = enc.finish().expect("gzip");
        Layer {
            digest: sha256(&gz),
            diff_id: sha256(&tar),
            tar,
            gz,
        }
    }

    /// A small deterministic layer named `label`: a text file and some pseudo-random bytes.
    pub fn seeded(label: &str, seed: u64) -> Layer {
        Layer::from_files(&[
            (
                &format!("etc/{label}.txt"),
                format!("layer {label}, seed {seed}\n").into_bytes(),
            ),
            (
                &format!("opt/{label}/data.bin"),
                random_bytes(2048 + seed as usize % 512, seed),
            ),
        ])
    }

    pub fn descriptor(&self) -> Descriptor {
        Descriptor::of(OCI_LAYER_GZIP, &self.gz)
    }

    /// Paths of the entries of the archive, read back from the compressed blob.
    pub fn entries(&self) -> Vec<String> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(self.gz.as_slice()));
        archive
            .entries()
            .expect("tar entries")
            .map(|e| {
                e.expect("tar entry")
                    .path()
                    .expect("entry path")
                    .display()
                    .to_string()
            })
            .collect()
    }
}

/// A single-platform image: an OCI image config and manifest over some layers.
#[derive(Clone, Debug)]
pub struct Image {
    pub architecture: String,
    pub os: String,
    pub layers: Vec<Layer>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl Image {
    /// An image for `linux/<architecture>` whose root filesystem is `layers`, bottom first.
    pub fn new(architecture: &str, layers: &[Layer], cmd: &[&str]) -> Image {
        let config = serde_json::to_vec(&json!({
            "created": "1970-01-01T00:00:00Z",
            "architecture": architecture,
            "os": "linux",
            "config": {
                "Cmd": cmd,
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "WorkingDir": "/",
            },
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
            },
            "history": layers.iter().map(|l| json!({
                "created": "1970-01-01T00:00:00Z",
                "created_by": format!("shipshape test layer {}", l.diff_id),
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": Descriptor::of(OCI_CONFIG, &config).to_json(),
            "layers": layers.iter().map(|l| l.descriptor().to_json()).collect::<Vec<_>>(),
        }))
        .unwrap();
        Image {
            architecture: architecture.to_string(),
            os: "linux".to_string(),
            layers: layers.to_vec(),
            config,
            manifest,
        }
    }

    pub fn descriptor(&self) -> Descriptor {
        Descriptor::of(OCI_MANIFEST, &self.manifest)
    }

    pub fn digest(&self) -> String {
        sha256(&self.manifest)
    }

    pub fn config_digest(&self) -> String {
        sha256(&self.config)
    }

    /// Config and layers: the blobs (not manifests) a registry must hold for this image.
    pub fn blobs(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        out.insert(self.config_digest(), self.config.clone());
        for l in &self.layers {
            out.insert(l.digest.clone(), l.gz.clone());
        }
        out
    }

    /// Everything the image's layout holds under `blobs/`: config, layers and the manifest.
    pub fn content(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = self.blobs();
        out.insert(self.digest(), self.manifest.clone());
        out
    }
}

/// A multi-arch image: an OCI index over per-platform manifests.
#[derive(Clone, Debug)]
pub struct MultiArch {
    pub images: Vec<Image>,
    pub index: Vec<u8>,
}

impl MultiArch {
    pub fn new(images: Vec<Image>) -> MultiArch {
        let manifests: Vec<Value> = images
            .iter()
            .map(|img| {
                let mut d = img.descriptor().to_json();
                let mut platform = json!({"architecture": img.architecture, "os": img.os});
                if img.architecture == "arm64" {
                    platform["variant"] = json!("v8");
                }
                d["platform"] = platform;
                d
            })
            .collect();
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        }))
        .unwrap();
        MultiArch { images, index }
    }

    /// linux/amd64 and linux/arm64 images, each with its own two layers.
    pub fn amd64_arm64(seed: u64) -> MultiArch {
        let images = ["amd64", "arm64"]
            .iter()
            .enumerate()
            .map(|(i, arch)| {
                let s = seed * 100 + i as u64 * 10;
                Image::new(
                    arch,
                    &[
                        Layer::seeded(&format!("base-{arch}"), s + 1),
                        Layer::seeded(&format!("app-{arch}"), s + 2),
                    ],
                    &["/bin/sh", "-c", &format!("echo {arch}")],
                )
            })
            .collect();
        MultiArch::new(images)
    }

    pub fn descriptor(&self) -> Descriptor {
        Descriptor::of(OCI_INDEX, &self.index)
    }

    pub fn digest(&self) -> String {
        sha256(&self.index)
    }

    /// Everything the layout holds under `blobs/`: the index, every manifest, config and layer.
    pub fn content(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for img in &self.images {
            out.extend(img.content());
        }
        out.insert(self.digest(), self.index.clone());
        out
    }
}

/// An OCI image layout directory.
pub struct OciLayout {
    pub dir: PathBuf,
}

impl OciLayout {
    /// Creates an empty layout at `dir` (the directory may or may not exist).
    pub fn create(dir: &Path) -> OciLayout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("layout dirs");
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        let layout = OciLayout {
            dir: dir.to_path_buf(),
        };
        layout.write_index(&[]);
        layout
    }

    /// An existing layout (e.g. one a client wrote).
    pub fn open(dir: &Path) -> OciLayout {
        let marker: Value = serde_json::from_slice(
            &std::fs::read(dir.join("oci-layout")).expect("oci-layout file"),
        )
        .expect("oci-layout is JSON");
        assert_eq!(marker["imageLayoutVersion"], "1.0.0", "oci-layout version");
        OciLayout {
            dir: dir.to_path_buf(),
        }
    }

    /// Writes an image and tags it `tag` in `index.json`.
    pub fn add_image(&self, tag: &str, image: &Image) {
        self.write_blobs(&image.content());
        self.tag(tag, &image.descriptor());
    }

    /// Writes a multi-arch image and tags its index `tag` in `index.json`.
    pub fn add_multi_arch(&self, tag: &str, multi: &MultiArch) {
        self.write_blobs(&multi.content());
        self.tag(tag, &multi.descriptor());
    }

    fn write_blobs(&self, blobs: &BTreeMap<String, Vec<u8>>) {
        for (digest, bytes) in blobs {
            std::fs::write(self.blob_path(digest), bytes).expect("write blob");
        }
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir.join("blobs/sha256").join(hex)
    }

    fn index(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("index.json")).expect("index.json"))
            .expect("index.json is JSON")
    }

    fn write_index(&self, entries: &[Value]) {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .expect("write index.json");
    }

    /// Points `tag` at `desc`, replacing any entry that had that name.
    fn tag(&self, tag: &str, desc: &Descriptor) {
        let mut entries: Vec<Value> = self.index()["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["annotations"][REF_NAME] != tag)
            .collect();
        let mut entry = desc.to_json();
        entry["annotations"] = json!({ REF_NAME: tag });
        entries.push(entry);
        self.write_index(&entries);
    }

    /// The descriptor `index.json` holds for `tag`; panics unless there is exactly one.
    pub fn tagged(&self, tag: &str) -> Descriptor {
        let index = self.index();
        let found: Vec<&Value> = index["manifests"]
            .as_array()
            .expect("index.json has manifests")
            .iter()
            .filter(|e| e["annotations"][REF_NAME] == tag)
            .collect();
        assert_eq!(found.len(), 1, "one index.json entry named {tag}: {index}");
        let e = found[0];
        Descriptor {
            media_type: e["mediaType"].as_str().expect("mediaType").to_string(),
            digest: e["digest"].as_str().expect("digest").to_string(),
            size: e["size"].as_u64().expect("size") as usize,
        }
    }

    /// The bytes of a blob of the layout.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.blob_path(digest)).unwrap_or_else(|e| panic!("blob {digest}: {e}"))
    }

    /// Every file under `blobs/sha256`, by digest (checked against its name).
    pub fn content(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for path in super::files_under(&self.dir.join("blobs")) {
            let rel = path.strip_prefix(self.dir.join("blobs")).unwrap();
            let digest = rel.to_string_lossy().replacen('/', ":", 1);
            let bytes = std::fs::read(&path).expect("read blob");
            assert_eq!(
                sha256(&bytes),
                digest,
                "layout blob {} content",
                path.display()
            );
            out.insert(digest, bytes);
        }
        out
    }
}
