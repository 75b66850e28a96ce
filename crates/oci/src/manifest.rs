//! Manifest parsing: from the bytes a client pushed to the set of things the manifest references
//! (blobs, child manifests, subject), which is all the catalogue and the collector need to know.
//! The bytes themselves are never re-serialised.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::media_type::{Classified, ManifestMediaType};

/// Largest manifest accepted, as in the reference registry.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// A content descriptor as it appears in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: Option<String>,
    pub digest: Digest,
    pub size: u64,
    /// An index entry's platform, as `os/architecture[/variant]`.
    pub platform: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    Image,
    Index,
}

/// What a pushed manifest says about the content it depends on.
#[derive(Clone, Debug)]
pub struct ParsedManifest {
    pub media_type: ManifestMediaType,
    /// For the referrers API: `artifactType`, else (image manifests) the config's media type.
    pub artifact_type: Option<String>,
    /// Config and layers that live in this registry (layers with external `urls` excluded).
    pub blobs: Vec<Descriptor>,
    /// Manifests an index lists.
    pub children: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// Top-level annotations, kept verbatim for referrer descriptors.
    pub annotations: Option<Map<String, Value>>,
}

impl ParsedManifest {
    pub fn kind(&self) -> ManifestKind {
        if self.media_type.is_index() {
            ManifestKind::Index
        } else {
            ManifestKind::Image
        }
    }
}

/// Why a manifest body was refused; each becomes `MANIFEST_INVALID` at the HTTP boundary.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("Docker schema 1 manifests are not accepted; push schema 2 or OCI")]
    Schema1,
    #[error("Content-Type {content_type:?} does not match the manifest's mediaType {body:?}")]
    MediaTypeMismatch { content_type: String, body: String },
    #[error("cannot tell the manifest's media type: set Content-Type or mediaType")]
    UnknownMediaType,
    #[error("schemaVersion must be 2")]
    SchemaVersion,
    #[error("invalid manifest: {0}")]
    Shape(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    size: i64,
    #[serde(default)]
    urls: Option<Vec<String>>,
    /// Read loosely: a platform the registry does not understand is no reason to refuse.
    #[serde(default)]
    platform: Option<Value>,
}

/// An index entry's platform in words, when it has an operating system and an architecture.
fn platform_words(p: &Value) -> Option<String> {
    let os = p.get("os")?.as_str()?;
    let arch = p.get("architecture")?.as_str()?;
    Some(match p.get("variant").and_then(Value::as_str) {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<Map<String, Value>>,
}

fn descriptor(raw: RawDescriptor, field: &str) -> Result<Descriptor, ManifestError> {
    let digest = raw
        .digest
        .parse::<Digest>()
        .map_err(|e| ManifestError::Shape(format!("{field}: {e}")))?;
    let size = u64::try_from(raw.size)
        .map_err(|_| ManifestError::Shape(format!("{field}: size must not be negative")))?;
    Ok(Descriptor {
        media_type: raw.media_type,
        digest,
        size,
        platform: raw.platform.as_ref().and_then(platform_words),
    })
}

/// Parses a manifest pushed with the given `Content-Type`.
///
/// The media type comes from `Content-Type` when it names a manifest format, else from the body's
/// `mediaType`, else from the body's shape (umoci and skopeo push OCI manifests without
/// `mediaType`). A body `mediaType` that contradicts `Content-Type` is refused.
pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<ParsedManifest, ManifestError> {
    let raw: RawManifest =
        serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))?;

    let from_header = match content_type.map(ManifestMediaType::classify) {
        Some(Classified::Manifest(m)) => Some(m),
        Some(Classified::Schema1) => return Err(ManifestError::Schema1),
        Some(Classified::Unsupported) => {
            return Err(ManifestError::UnsupportedMediaType(
                content_type.unwrap_or_default().to_string(),
            ));
        }
        Some(Classified::Generic) | None => None,
    };
    let from_body = match raw.media_type.as_deref().map(ManifestMediaType::classify) {
        Some(Classified::Manifest(m)) => Some(m),
        Some(Classified::Schema1) => return Err(ManifestError::Schema1),
        Some(Classified::Unsupported) | Some(Classified::Generic) => {
            return Err(ManifestError::UnsupportedMediaType(
                raw.media_type.clone().unwrap_or_default(),
            ));
        }
        None => None,
    };
    let media_type = match (from_header, from_body) {
        (Some(h), Some(b)) if h != b => {
            return Err(ManifestError::MediaTypeMismatch {
                content_type: h.as_str(),
                body: b.as_str(),
            });
        }
        (Some(h), _) => h,
        (None, Some(b)) => b,
        (None, None) if raw.manifests.is_some() => ManifestMediaType::OciIndex,
        (None, None) if raw.config.is_some() => ManifestMediaType::OciManifest,
        (None, None) => return Err(ManifestError::UnknownMediaType),
    };

    if raw.schema_version != Some(2) {
        return Err(ManifestError::SchemaVersion);
    }

    let subject = raw.subject.map(|s| descriptor(s, "subject")).transpose()?;
    let mut blobs = Vec::new();
    let mut children = Vec::new();
    let mut artifact_type = raw.artifact_type.clone();

    if media_type.is_index() {
        if raw.config.is_some() || raw.layers.is_some() {
            return Err(ManifestError::Shape(
                "an index has `manifests`, not `config` or `layers`".into(),
            ));
        }
        let manifests = raw
            .manifests
            .ok_or_else(|| ManifestError::Shape("an index needs a `manifests` array".into()))?;
        for (i, m) in manifests.into_iter().enumerate() {
            children.push(descriptor(m, &format!("manifests[{i}]"))?);
        }
    } else {
        if raw.manifests.is_some() {
            return Err(ManifestError::Shape(
                "an image manifest has `config` and `layers`, not `manifests`".into(),
            ));
        }
        let config = raw
            .config
            .ok_or_else(|| ManifestError::Shape("an image manifest needs `config`".into()))?;
        let layers = raw
            .layers
            .ok_or_else(|| ManifestError::Shape("an image manifest needs `layers`".into()))?;
        let config = descriptor(config, "config")?;
        if artifact_type.is_none() {
            artifact_type = config.media_type.clone();
        }
        blobs.push(config);
        for (i, l) in layers.into_iter().enumerate() {
            // Non-distributable layers live elsewhere: the registry neither has nor needs them.
            let external = l.urls.as_ref().is_some_and(|u| !u.is_empty());
            let d = descriptor(l, &format!("layers[{i}]"))?;
            if !external {
                blobs.push(d);
            }
        }
    }

    Ok(ParsedManifest {
        media_type,
        artifact_type,
        blobs,
        children,
        subject,
        annotations: raw.annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    const D2: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

    fn image(media_type: Option<&str>) -> String {
        let mt = media_type
            .map(|m| format!(r#""mediaType":"{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{D1}","size":2}},"layers":[{{"mediaType":"x","digest":"{D2}","size":0}},{{"mediaType":"nd","digest":"{D2}","size":5,"urls":["https://example.com/l"]}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":9}},"annotations":{{"a":"b"}},"newUnspecifiedField":1}}"#
        )
    }

    #[test]
    fn image_manifest_references() {
        let p = parse(image(Some(OCI_MANIFEST)).as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(p.kind(), ManifestKind::Image);
        assert_eq!(p.blobs.len(), 2, "external layer is not a reference");
        assert_eq!(p.subject.unwrap().digest.to_string(), D2);
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.oci.empty.v1+json")
        );
        assert_eq!(p.annotations.unwrap()["a"], "b");
    }

    #[test]
    fn media_type_resolution() {
        // No mediaType in the body (umoci): Content-Type decides, or the shape does.
        let body = image(None);
        assert_eq!(
            parse(body.as_bytes(), Some(OCI_MANIFEST))
                .unwrap()
                .media_type,
            ManifestMediaType::OciManifest
        );
        assert_eq!(
            parse(body.as_bytes(), None).unwrap().media_type,
            ManifestMediaType::OciManifest
        );
        assert_eq!(
            parse(body.as_bytes(), Some("application/json; charset=utf-8"))
                .unwrap()
                .media_type,
            ManifestMediaType::OciManifest
        );
        // Contradictions and unknown formats are refused.
        assert!(matches!(
            parse(image(Some(OCI_MANIFEST)).as_bytes(), Some(OCI_INDEX)),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            parse(body.as_bytes(), Some("text/plain")),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            parse(
                body.as_bytes(),
                Some("application/vnd.docker.distribution.manifest.v1+prettyjws")
            ),
            Err(ManifestError::Schema1)
        ));
    }

    #[test]
    fn index_children() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":10,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
        );
        let p = parse(body.as_bytes(), Some(OCI_INDEX)).unwrap();
        assert_eq!(p.kind(), ManifestKind::Index);
        assert_eq!(p.children.len(), 1);
        assert_eq!(p.children[0].platform.as_deref(), Some("linux/arm64"));
        assert!(p.blobs.is_empty());
        // A Docker list may hold OCI children (podman).
        let p = parse(
            body.as_bytes(),
            Some("application/vnd.docker.distribution.manifest.list.v2+json"),
        )
        .unwrap();
        assert_eq!(p.media_type, ManifestMediaType::DockerManifestList);
    }

    #[test]
    fn malformed_bodies() {
        for (body, ct) in [
            ("not json", OCI_MANIFEST),
            (
                r#"{"schemaVersion":1,"config":{"digest":"x","size":1},"layers":[]}"#,
                OCI_MANIFEST,
            ),
            (r#"{"schemaVersion":2,"layers":[]}"#, OCI_MANIFEST),
            (
                r#"{"schemaVersion":2,"config":{"digest":"sha256:bad","size":1},"layers":[]}"#,
                OCI_MANIFEST,
            ),
            (r#"{"schemaVersion":2,"manifests":[]}"#, OCI_MANIFEST),
            (
                r#"{"schemaVersion":2,"config":{"digest":"x","size":1},"layers":[]}"#,
                OCI_INDEX,
            ),
            (r#"{"schemaVersion":2}"#, "application/json"),
        ] {
            assert!(parse(body.as_bytes(), Some(ct)).is_err(), "{body} as {ct}");
        }
    }
}
