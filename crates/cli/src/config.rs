//! The configuration file and how it combines with flags and environment variables:
//! a flag or variable beats the file, the file beats the built-in default.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use shipshape_server::ServerConfig;

use crate::ServeArgs;

/// The TOML file accepted by `--config`. Unknown keys are refused, so a typo is not silently
/// ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<std::net::SocketAddr>,
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub allow_public_without_auth: bool,
    #[serde(default)]
    pub deletion: DeletionConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub pulls: PullsConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullsConfig {
    /// How often pull counts are written, e.g. "10s"; "0s" writes each pull at once.
    pub flush_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionConfig {
    pub enabled: Option<bool>,
    /// How long deleted tags stay restorable, e.g. "7d".
    pub restore_window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub filter: Option<String>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }
}

fn duration(field: &str, value: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(value)
        .map_err(|e| format!("{field}: invalid duration {value:?} (e.g. 7d, 12h, 30s): {e}"))
}

pub fn merge(file: FileConfig, args: &ServeArgs) -> Result<ServerConfig, String> {
    let default = ServerConfig::default();
    let restore_window = match args
        .restore_window
        .as_ref()
        .or(file.deletion.restore_window.as_ref())
    {
        Some(v) => duration("deletion.restore_window", v)?,
        None => default.restore_window,
    };
    let pull_flush_interval = match args
        .pull_flush_interval
        .as_ref()
        .or(file.pulls.flush_interval.as_ref())
    {
        Some(v) => duration("pulls.flush_interval", v)?,
        None => default.pull_flush_interval,
    };
    Ok(ServerConfig {
        listen: args.listen.or(file.listen).unwrap_or(default.listen),
        data_dir: args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or(default.data_dir),
        deletion_enabled: args
            .deletion_enabled
            .or(file.deletion.enabled)
            .unwrap_or(default.deletion_enabled),
        allow_public_without_auth: args.allow_public_without_auth || file.allow_public_without_auth,
        restore_window,
        pull_flush_interval,
    })
}
