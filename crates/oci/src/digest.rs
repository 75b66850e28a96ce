//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and the streaming hasher that produces them.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;
use sha2::digest::common::hazmat::SerializableState;

/// A digest algorithm the registry can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears before the `:` of a digest.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other if is_algorithm_grammar(other) => {
                Err(DigestError::UnsupportedAlgorithm(other.to_string()))
            }
            other => Err(DigestError::Malformed(other.to_string())),
        }
    }
}

/// Why a string is not a digest the registry accepts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("malformed digest {0:?}: expected <algorithm>:<lowercase hex>")]
    Malformed(String),
    #[error("unsupported digest algorithm {0:?}: use sha256 or sha512")]
    UnsupportedAlgorithm(String),
}

/// A verified-syntax content digest. The encoded part is always lowercase hex of the
/// algorithm's exact length, so two equal digests are equal strings.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex-encoded part after the `:`.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The digest of a byte slice held in memory (manifests only: blobs are streamed).
    pub fn of_bytes(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut d = Digester::new(algorithm);
        d.update(bytes);
        d.finish()
    }
}

fn is_algorithm_grammar(s: &str) -> bool {
    // algorithm = [a-z0-9]+([+._-][a-z0-9]+)*
    !s.is_empty()
        && s.split(['+', '.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || DigestError::Malformed(s.to_string());
        let (alg, hex) = s.split_once(':').ok_or_else(malformed)?;
        let algorithm = match alg.parse::<Algorithm>() {
            Ok(a) => a,
            Err(DigestError::UnsupportedAlgorithm(a)) => {
                // An unknown algorithm is only "unsupported" if the encoded part is well formed.
                let encoded_ok = !hex.is_empty()
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b));
                return Err(if encoded_ok {
                    DigestError::UnsupportedAlgorithm(a)
                } else {
                    malformed()
                });
            }
            Err(_) => return Err(malformed()),
        };
        if hex.len() != algorithm.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(malformed());
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental hasher for one of the supported algorithms. Its state can be saved and restored,
/// so an upload session can resume hashing after a restart without re-reading its bytes.
#[derive(Clone)]
pub enum Digester {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

/// Tag written before a saved hasher state, so a state from another library version is
/// recognised as foreign instead of being misread.
const STATE_FORMAT: &[u8] = b"sha2-0.11:";

impl Digester {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Digester::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Digester::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Digester::Sha256(_) => Algorithm::Sha256,
            Digester::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Digester::Sha256(h) => h.update(bytes),
            Digester::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Digester::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Digester::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }

    /// The hasher's internal state, to be stored beside an upload session.
    pub fn save_state(&self) -> Vec<u8> {
        let mut out = STATE_FORMAT.to_vec();
        match self {
            Digester::Sha256(h) => out.extend_from_slice(&h.serialize()),
            Digester::Sha512(h) => out.extend_from_slice(&h.serialize()),
        }
        out
    }

    /// Restores a state written by [`Digester::save_state`]; `None` if it cannot be decoded
    /// (another library version, corruption), in which case the caller re-hashes the bytes.
    pub fn restore_state(algorithm: Algorithm, state: &[u8]) -> Option<Self> {
        let raw = state.strip_prefix(STATE_FORMAT)?;
        match algorithm {
            Algorithm::Sha256 => {
                let arr = raw.try_into().ok()?;
                sha2::Sha256::deserialize(arr).ok().map(Digester::Sha256)
            }
            Algorithm::Sha512 => {
                let arr = raw.try_into().ok()?;
                sha2::Sha512::deserialize(arr).ok().map(Digester::Sha512)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints() {
        let d: Digest = EMPTY_SHA256.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY_SHA256);
        assert_eq!(d.algorithm(), Algorithm::Sha256);
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:totallywrong",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ":abc",
        ] {
            assert!(
                matches!(bad.parse::<Digest>(), Err(DigestError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "md5:d41d8cd98f00b204e9800998ecf8427e".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn hashes_and_resumes() {
        assert_eq!(
            Digest::of_bytes(Algorithm::Sha256, b"").to_string(),
            EMPTY_SHA256
        );
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let whole = Digest::of_bytes(alg, b"hello world, in two parts");
            let mut d = Digester::new(alg);
            d.update(b"hello world");
            let state = d.save_state();
            let mut resumed = Digester::restore_state(alg, &state).unwrap();
            resumed.update(b", in two parts");
            assert_eq!(resumed.finish(), whole);
            assert!(Digester::restore_state(alg, b"garbage").is_none());
        }
    }
}
