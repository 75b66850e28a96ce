//! Where the remote commands' credentials come from, and where `shipshape login` keeps them:
//! `SHIPSHAPE_USERNAME` and `SHIPSHAPE_PASSWORD` when set; else the first entry for the
//! registry in the auth files podman reads, in its order (`$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json` where `podman login` writes,
//! `~/.config/containers/auth.json`), then Docker's `~/.docker/config.json`. The files hold `{"auths": {"HOST:PORT": {"auth":
//! base64("user:password")}}}`, keyed by the registry's host and port without a scheme, as
//! podman keys them. Credential helpers (`credsStore`, `credHelpers`) are not consulted.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Map, Value};

use super::{RemoteError, Result};

/// A user name (a robot's is `robot$NAME`) and its password or secret.
#[derive(Clone)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("user", &self.user).finish()
    }
}

/// Where a command's credentials came from, for the message when the registry refuses them.
#[derive(Clone, Debug)]
pub enum Source {
    /// `SHIPSHAPE_USERNAME` and `SHIPSHAPE_PASSWORD`.
    Environment,
    /// An auth file's entry for the registry.
    File(PathBuf),
    /// The command's own arguments (`shipshape login`).
    Given,
}

/// The key of a registry in an auth file: its host and port as written, without the scheme or
/// a path (`http://127.0.0.1:5000/` is `127.0.0.1:5000`).
pub fn host_key(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// The containers auth file `shipshape login` writes: `$REGISTRY_AUTH_FILE`, else
/// `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/containers/auth.json`), which podman,
/// skopeo and buildah read too, and which survives a reboot (podman's own default, under
/// `$XDG_RUNTIME_DIR`, does not).
pub fn auth_file() -> Option<PathBuf> {
    auth_file_in(&non_empty_var)
}

fn auth_file_in(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var("REGISTRY_AUTH_FILE")
        .map(PathBuf::from)
        .or_else(|| config_auth_file(var))
}

/// `$XDG_CONFIG_HOME/containers/auth.json`, else `~/.config/containers/auth.json`.
fn config_auth_file(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let config = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(config.join("containers").join("auth.json"))
}

/// The files credentials are looked up in, in podman's order: `$REGISTRY_AUTH_FILE`, podman's
/// own `$XDG_RUNTIME_DIR/containers/auth.json` (without that variable, as in a root shell or
/// over `su`, `/run/containers/UID/auth.json`, where podman then writes),
/// `~/.config/containers/auth.json`, then Docker's `$DOCKER_CONFIG/config.json`
/// (`~/.docker/config.json`). Unset variables leave theirs out.
fn lookup_files(var: &dyn Fn(&str) -> Option<String>, uid: u32) -> Vec<PathBuf> {
    let runtime = Some(
        var("XDG_RUNTIME_DIR")
            .map(|d| Path::new(&d).join("containers"))
            .unwrap_or_else(|| PathBuf::from(format!("/run/containers/{uid}")))
            .join("auth.json"),
    );
    let docker = var("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| Path::new(&h).join(".docker")))
        .map(|d| d.join("config.json"));
    let mut files: Vec<PathBuf> = Vec::new();
    let candidates = [
        var("REGISTRY_AUTH_FILE").map(PathBuf::from),
        runtime,
        config_auth_file(var),
        docker,
    ];
    for path in candidates.into_iter().flatten() {
        if !files.contains(&path) {
            files.push(path);
        }
    }
    files
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The credentials to send to the registry keyed `key`, and where they came from; `None`
/// when there are none (the commands then ask anonymously, which works while access control
/// is off).
pub fn for_registry(key: &str) -> Result<Option<(Login, Source)>> {
    match (
        std::env::var("SHIPSHAPE_USERNAME").ok(),
        std::env::var("SHIPSHAPE_PASSWORD").ok(),
    ) {
        (Some(user), Some(password)) => {
            return Ok(Some((Login { user, password }, Source::Environment)));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(RemoteError::Usage(
                "SHIPSHAPE_USERNAME and SHIPSHAPE_PASSWORD go together: set both, or neither \
                 to use the credentials of `shipshape login`"
                    .into(),
            ));
        }
        (None, None) => {}
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    for path in lookup_files(&non_empty_var, uid) {
        if let Some(doc) = read(&path)?
            && let Some(login) = entry(&doc, key)
        {
            return Ok(Some((login, Source::File(path))));
        }
    }
    Ok(None)
}

/// An auth file's JSON object, `None` when the file does not exist.
fn read(path: &Path) -> Result<Option<Map<String, Value>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(RemoteError::Usage(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    if text.trim().is_empty() {
        return Ok(Some(Map::new()));
    }
    match serde_json::from_str(&text) {
        Ok(Value::Object(doc)) => Ok(Some(doc)),
        _ => Err(RemoteError::Usage(format!(
            "{} is not a JSON object of credentials (\"auths\"); fix or remove it",
            path.display()
        ))),
    }
}

/// The credentials `doc` holds for `key`: an entry under that exact key, else one whose key
/// names the same host and port with a scheme or path (`https://HOST:PORT/v2/`, as older
/// Docker versions wrote).
fn entry(doc: &Map<String, Value>, key: &str) -> Option<Login> {
    let auths = doc.get("auths")?.as_object()?;
    let found = auths
        .get(key)
        .or_else(|| {
            auths
                .iter()
                .find(|(k, _)| k.contains("://") && host_key(k) == key)
                .map(|(_, v)| v)
        })?
        .as_object()?;
    if let Some(encoded) = found.get("auth").and_then(Value::as_str) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return Some(Login {
            user: user.to_string(),
            password: password.to_string(),
        });
    }
    // Some tools write the two fields apart.
    let user = found.get("username")?.as_str()?;
    let password = found.get("password")?.as_str()?;
    Some(Login {
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// Stores `login` for `key` in the auth file at `path`, keeping every other entry and key of
/// the file; the file is replaced at once (written beside it, then renamed), mode 0600.
pub fn store(path: &Path, key: &str, login: &Login) -> Result<()> {
    let mut doc = read(path)?.unwrap_or_default();
    let auths = doc
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(auths) = auths.as_object_mut() else {
        return Err(RemoteError::Usage(format!(
            "\"auths\" in {} is not an object; fix or remove it",
            path.display()
        )));
    };
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", login.user, login.password));
    auths.insert(key.to_string(), serde_json::json!({ "auth": encoded }));
    write_atomically(path, &doc)
}

/// Removes the entry for `key` from the auth file at `path`; whether there was one.
pub fn remove(path: &Path, key: &str) -> Result<bool> {
    let Some(mut doc) = read(path)? else {
        return Ok(false);
    };
    let removed = doc
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .and_then(|auths| auths.remove(key))
        .is_some();
    if removed {
        write_atomically(path, &doc)?;
    }
    Ok(removed)
}

/// Writes `doc` to a new file beside `path` (mode 0600), syncs it and renames it over `path`,
/// so a reader sees the old file or the new one, never a part. The directory is created (mode
/// 0700) if missing.
fn write_atomically(path: &Path, doc: &Map<String, Value>) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| {
        RemoteError::Usage(format!("cannot {what} {}: {e}", path.display()))
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&dir)
        .map_err(|e| fail("create the directory of", e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "auth.json".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let temp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = (|| {
        let mut file = options.open(&temp)?;
        let mut bytes = serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // The rename is durable once the directory is.
        std::fs::File::open(&dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(fail("write", e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_host_and_port() {
        assert_eq!(host_key("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(host_key("https://reg.example.com/"), "reg.example.com");
        assert_eq!(host_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(host_key("https://r.example:443/v2/"), "r.example:443");
    }

    #[test]
    fn files_are_looked_up_in_podmans_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let all = env(&[
            ("REGISTRY_AUTH_FILE", "/given/auth.json"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("HOME", "/home/op"),
        ]);
        assert_eq!(
            lookup_files(&all, 1000),
            [
                "/given/auth.json",
                "/run/user/1000/containers/auth.json",
                "/home/op/.config/containers/auth.json",
                "/home/op/.docker/config.json",
            ]
            .map(PathBuf::from)
        );
        assert_eq!(auth_file_in(&all), Some(PathBuf::from("/given/auth.json")));
        let plain = env(&[
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("XDG_CONFIG_HOME", "/cfg"),
            ("DOCKER_CONFIG", "/dock"),
            ("HOME", "/home/op"),
        ]);
        assert_eq!(
            lookup_files(&plain, 1000),
            [
                "/run/user/1000/containers/auth.json",
                "/cfg/containers/auth.json",
                "/dock/config.json",
            ]
            .map(PathBuf::from)
        );
        // `login` keeps writing where a reboot does not wipe it.
        assert_eq!(
            auth_file_in(&plain),
            Some(PathBuf::from("/cfg/containers/auth.json"))
        );
        assert_eq!(
            lookup_files(&env(&[("HOME", "/home/op")]), 1000),
            [
                "/run/containers/1000/auth.json",
                "/home/op/.config/containers/auth.json",
                "/home/op/.docker/config.json"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            lookup_files(&env(&[]), 0),
            [PathBuf::from("/run/containers/0/auth.json")]
        );
    }

    #[test]
    fn entries_decode_in_both_shapes() {
        let doc: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "auths": {
                "a:5000": {"auth": "dXNlcjpwYTpzcw=="},
                "https://b:5000/v2/": {"username": "robot$ci", "password": "s"},
                "c:5000": {"identitytoken": "x"}
            },
            "credsStore": "desktop"
        }))
        .unwrap();
        let a = entry(&doc, "a:5000").unwrap();
        assert_eq!((a.user.as_str(), a.password.as_str()), ("user", "pa:ss"));
        let b = entry(&doc, "b:5000").unwrap();
        assert_eq!((b.user.as_str(), b.password.as_str()), ("robot$ci", "s"));
        assert!(entry(&doc, "c:5000").is_none());
        assert!(entry(&doc, "d:5000").is_none());
    }

    #[test]
    fn store_keeps_other_entries_and_remove_takes_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(
            &path,
            r#"{"auths":{"other:1":{"auth":"eDp5"}},"credHelpers":{"x":"y"}}"#,
        )
        .unwrap();
        let login = Login {
            user: "admin".into(),
            password: "p".into(),
        };
        store(&path, "here:5000", &login).unwrap();
        let doc = read(&path).unwrap().unwrap();
        assert_eq!(doc["auths"]["other:1"]["auth"], "eDp5");
        assert_eq!(doc["credHelpers"]["x"], "y");
        assert_eq!(entry(&doc, "here:5000").unwrap().user, "admin");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(remove(&path, "here:5000").unwrap());
        assert!(!remove(&path, "here:5000").unwrap());
        let doc = read(&path).unwrap().unwrap();
        assert_eq!(doc["auths"]["other:1"]["auth"], "eDp5");
        // A new file, in a directory not there yet.
        let fresh = dir.path().join("new").join("auth.json");
        store(&fresh, "here:5000", &login).unwrap();
        assert_eq!(
            entry(&read(&fresh).unwrap().unwrap(), "here:5000")
                .unwrap()
                .user,
            "admin"
        );
    }
}
