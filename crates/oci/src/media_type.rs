//! Manifest media types the registry stores: OCI image manifest and index (named by `oci-spec`),
//! and their Docker schema2 counterparts.

use oci_spec::image::MediaType;

pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The manifest formats a client may push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestMediaType {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerManifestList,
}

/// How a media type string relates to the formats above.
#[derive(Debug, PartialEq, Eq)]
pub enum Classified {
    Manifest(ManifestMediaType),
    /// Docker schema 1: deprecated, refused on push.
    Schema1,
    /// Says nothing about the format (`application/json`, `*/*`, empty).
    Generic,
    Unsupported,
}

impl ManifestMediaType {
    pub fn as_str(self) -> String {
        match self {
            ManifestMediaType::OciManifest => MediaType::ImageManifest.to_string(),
            ManifestMediaType::OciIndex => MediaType::ImageIndex.to_string(),
            ManifestMediaType::DockerManifest => DOCKER_MANIFEST_V2.to_string(),
            ManifestMediaType::DockerManifestList => DOCKER_MANIFEST_LIST.to_string(),
        }
    }

    /// Whether this format lists child manifests rather than blobs.
    pub fn is_index(self) -> bool {
        matches!(
            self,
            ManifestMediaType::OciIndex | ManifestMediaType::DockerManifestList
        )
    }

    /// Classifies a media type, ignoring parameters such as `; charset=utf-8`.
    pub fn classify(raw: &str) -> Classified {
        let essence = raw.split(';').next().unwrap_or("").trim();
        if essence.is_empty()
            || essence.eq_ignore_ascii_case("application/json")
            || essence.eq_ignore_ascii_case("application/octet-stream")
            || essence == "*/*"
        {
            return Classified::Generic;
        }
        match MediaType::from(essence) {
            MediaType::ImageManifest => Classified::Manifest(ManifestMediaType::OciManifest),
            MediaType::ImageIndex => Classified::Manifest(ManifestMediaType::OciIndex),
            MediaType::Other(s) if s == DOCKER_MANIFEST_V2 => {
                Classified::Manifest(ManifestMediaType::DockerManifest)
            }
            MediaType::Other(s) if s == DOCKER_MANIFEST_LIST => {
                Classified::Manifest(ManifestMediaType::DockerManifestList)
            }
            MediaType::Other(s) if s == DOCKER_SCHEMA1 || s == DOCKER_SCHEMA1_SIGNED => {
                Classified::Schema1
            }
            _ => Classified::Unsupported,
        }
    }
}
