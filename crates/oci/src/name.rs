//! Repository names, tags, manifest references and upload ids, each validated once by the
//! OCI distribution grammar and then carried as a typed value.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use crate::digest::{Digest, DigestError};

/// The longest repository name accepted. Clients cap `host/name` at 255 characters.
pub const MAX_NAME_LEN: usize = 255;

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("name grammar")
});
static TAG_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("tag grammar"));

/// Why a name, tag or reference was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "invalid repository name {0:?}: lowercase letters and digits in path components separated by '/', with '.', '_', '__' or '-' inside a component, at most 255 characters"
    )]
    Repository(String),
    #[error(
        "invalid tag {0:?}: 1 to 128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'"
    )]
    Tag(String),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// A repository name such as `team/app`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RepoName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_NAME_LEN || !NAME_RE.is_match(s) {
            return Err(NameError::Repository(s.to_string()));
        }
        Ok(RepoName(s.to_string()))
    }
}

/// A tag name such as `v1.2` or `latest`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !TAG_RE.is_match(s) {
            return Err(NameError::Tag(s.to_string()));
        }
        Ok(Tag(s.to_string()))
    }
}

/// What follows `/manifests/`: a tag or a digest. Tags cannot contain `:`, digests always do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(s.parse()?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

/// The opaque id of a blob upload session (a random UUID, shown without dashes).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    pub fn new_random() -> Self {
        UploadId(uuid::Uuid::new_v4().simple().to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UploadId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let u = uuid::Uuid::try_parse(s).map_err(|_| ())?;
        Ok(UploadId(u.simple().to_string()))
    }
}

macro_rules! string_newtype_traits {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    )*};
}
string_newtype_traits!(RepoName, Tag, UploadId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for good in ["a", "library/ubuntu", "a.b_c__d---e/f0", "team-a/app/sub"] {
            assert!(good.parse::<RepoName>().is_ok(), "{good}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "A",
            "Team/app",
            "a/../b",
            "..",
            "a//b",
            "/a",
            "a/",
            "a___b",
            "-a",
            "a.",
            long.as_str(),
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        let max = "a".repeat(128);
        for good in ["latest", "v1.2.3", "_x", "A-b.c_d", max.as_str()] {
            assert!(good.parse::<Tag>().is_ok(), "{good}");
        }
        let too_long = "a".repeat(129);
        for bad in ["", ".x", "-x", "a/b", "a:b", too_long.as_str()] {
            assert!(bad.parse::<Tag>().is_err(), "{bad}");
        }
    }

    #[test]
    fn references() {
        assert!(matches!("v1".parse::<Reference>(), Ok(Reference::Tag(_))));
        assert!(matches!(
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse::<Reference>(),
            Ok(Reference::Digest(_))
        ));
        assert!("sha256:nope".parse::<Reference>().is_err());
    }

    #[test]
    fn upload_ids() {
        let id = UploadId::new_random();
        assert_eq!(id.as_str().parse::<UploadId>().unwrap(), id);
        assert!("../etc/passwd".parse::<UploadId>().is_err());
    }
}
