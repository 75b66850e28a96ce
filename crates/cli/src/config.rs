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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionConfig {
    pub enabled: Option<bool>,
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

pub fn merge(file: FileConfig, args: &ServeArgs) -> ServerConfig {
    let default = ServerConfig::default();
    ServerConfig {
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
    }
}
