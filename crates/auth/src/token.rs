//! Signed tokens: short-lived access tokens carrying the scopes granted (the Docker token
//! scheme's `access` claim), and refresh tokens for the OAuth2 form. HMAC-SHA256 with keys the
//! registry generates on first start and keeps in its data directory (mode 0600): the registry
//! is both issuer and verifier, so no public key needs to leave it. Rotation adds a key that
//! signs from then on; the retired ones keep verifying until every token they signed has
//! expired.

use std::path::{Path, PathBuf};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::scope::ResourceScope;

/// The issuer every token names.
pub const ISSUER: &str = "shipshape";
/// How long an access token is valid, in seconds (clients clamp anything under 60).
pub const ACCESS_SECONDS: i64 = 300;
/// How long a refresh token is valid, in seconds; a retired key verifies this long after its
/// retirement.
pub const REFRESH_SECONDS: i64 = 7 * 24 * 3600;

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The account: `user:ID` or `robot:ID`; `anonymous` for a token issued without
    /// credentials.
    pub sub: String,
    /// The account's name when the token was issued (for the log's display name).
    pub name: String,
    /// The service the token is for (`aud`).
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    /// `access` for an access token, `refresh` for a refresh token.
    pub typ: String,
    #[serde(default)]
    pub access: Vec<ResourceScope>,
}

/// Why a token is refused. The message never repeats the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    /// URL-safe base64 of 32 random bytes.
    secret: String,
    created_at: i64,
    /// When a newer key took over signing; verified until then plus `REFRESH_SECONDS`.
    retired_at: Option<i64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<StoredKey>,
}

/// The signing keys. The last one signs; all verify.
#[derive(Clone)]
pub struct Keys {
    path: PathBuf,
    file: KeyFile,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("Keys")
            .field("path", &self.path)
            .field(
                "kids",
                &self.file.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn new_key(now_secs: i64) -> StoredKey {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    StoredKey {
        kid: uuid::Uuid::new_v4().simple().to_string(),
        secret: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        created_at: now_secs,
        retired_at: None,
    }
}

impl Keys {
    /// Opens the key file under `dir`, creating it (mode 0600) with a first key when missing;
    /// retired keys whose tokens have all expired are dropped.
    pub fn open_or_create(dir: &Path, now_secs: i64) -> std::io::Result<Keys> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("token-signing-keys.json");
        let mut keys = match std::fs::read(&path) {
            Ok(bytes) => Keys {
                file: serde_json::from_slice(&bytes).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })?,
                path,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Keys {
                file: KeyFile::default(),
                path,
            },
            Err(e) => return Err(e),
        };
        let before = keys.file.keys.len();
        keys.file
            .keys
            .retain(|k| k.retired_at.is_none_or(|t| t + REFRESH_SECONDS > now_secs));
        if keys.file.keys.is_empty() {
            keys.file.keys.push(new_key(now_secs));
        }
        if keys.file.keys.len() != before {
            keys.save()?;
        }
        Ok(keys)
    }

    /// Starts signing with a new key; the previous ones verify until their tokens expire.
    pub fn rotate(&mut self, now_secs: i64) -> std::io::Result<()> {
        for k in &mut self.file.keys {
            k.retired_at.get_or_insert(now_secs);
        }
        self.file.keys.push(new_key(now_secs));
        self.save()
    }

    /// How many keys verify (the signing one and the retired ones still needed).
    pub fn len(&self) -> usize {
        self.file.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.file.keys.is_empty()
    }

    fn save(&self) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(&self.file).expect("keys serialise"))?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }

    fn secret(k: &StoredKey) -> Vec<u8> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&k.secret)
            .unwrap_or_default()
    }

    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &Claims) -> String {
        let key = self.file.keys.last().expect("at least one key");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_secret(&Self::secret(key)),
        )
        .expect("HS256 signs any claims")
    }

    /// The claims of a token this registry signed for `service`, if it is valid at `now`.
    pub fn verify(&self, token: &str, service: &str, now_secs: i64) -> Result<Claims, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Invalid("no key id".into()))?;
        let key = self
            .file
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| TokenError::Invalid("signed with an unknown key".into()))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[service]);
        validation.set_issuer(&[ISSUER]);
        // Expiry is checked below against the registry's clock, not the system's.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(&Self::secret(key)),
            &validation,
        )
        .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let claims = data.claims;
        if claims.exp <= now_secs {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now_secs + 60 {
            return Err(TokenError::Invalid("not valid yet".into()));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64, typ: &str) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "user:1".into(),
            name: "alice".into(),
            aud: "registry".into(),
            exp: now + ACCESS_SECONDS,
            nbf: now,
            iat: now,
            jti: "j".into(),
            typ: typ.into(),
            access: vec![ResourceScope::repository("team/app", &["pull"])],
        }
    }

    #[test]
    fn tokens_verify_until_they_expire_and_only_for_their_service() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open_or_create(dir.path(), 1_000).unwrap();
        let token = keys.sign(&claims(1_000, "access"));
        assert_eq!(
            keys.verify(&token, "registry", 1_001).unwrap().name,
            "alice"
        );
        assert!(matches!(
            keys.verify(&token, "registry", 1_000 + ACCESS_SECONDS),
            Err(TokenError::Expired)
        ));
        assert!(keys.verify(&token, "other", 1_001).is_err());
        // A byte changed anywhere breaks the signature.
        let mut tampered = token.clone().into_bytes();
        let i = tampered.len() / 2;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert!(
            keys.verify(std::str::from_utf8(&tampered).unwrap(), "registry", 1_001)
                .is_err()
        );
    }

    #[test]
    fn the_key_file_is_private_and_rotation_keeps_old_tokens_valid() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut keys = Keys::open_or_create(dir.path(), 1_000).unwrap();
        let mode = std::fs::metadata(dir.path().join("token-signing-keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let old = keys.sign(&claims(1_000, "access"));
        keys.rotate(1_010).unwrap();
        let new = keys.sign(&claims(1_010, "access"));
        assert!(keys.verify(&old, "registry", 1_020).is_ok());
        assert!(keys.verify(&new, "registry", 1_020).is_ok());
        // Reopened: the same keys; once every token of the retired key expired, it is dropped.
        let again = Keys::open_or_create(dir.path(), 1_020).unwrap();
        assert_eq!(again.len(), 2);
        let later = Keys::open_or_create(dir.path(), 1_010 + REFRESH_SECONDS + 1).unwrap();
        assert_eq!(later.len(), 1);
        assert!(later.verify(&new, "registry", 1_020).is_ok());
        assert!(later.verify(&old, "registry", 1_020).is_err());
    }
}
