//! The configuration file and how it combines with flags and environment variables:
//! a flag or variable beats the file, the file beats the built-in default.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use shipshape_server::tls::TlsConfig;
use shipshape_server::{BlobStoreConfig, Limits, MIN_HEADER_BYTES, ServerConfig};
use shipshape_store::S3Config;

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
    /// How long a shutdown waits for requests in flight, e.g. "30s".
    pub shutdown_timeout: Option<String>,
    #[serde(default)]
    pub deletion: DeletionConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub pulls: PullsConfig,
    #[serde(default)]
    pub gc: GcFileConfig,
    #[serde(default)]
    pub uploads: UploadsConfig,
    #[serde(default)]
    pub policies: PoliciesConfig,
    #[serde(default)]
    pub events: EventsConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub tls: TlsFileConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub catalogue: CatalogueFileConfig,
    #[serde(default)]
    pub usage: UsageConfig,
}

/// The `[usage]` section: the storage figures sampled over time for the overview's chart.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageConfig {
    /// A sample is taken when the newest is older than this, e.g. "15m"; "0s": only as
    /// garbage collection runs end.
    pub sample_interval: Option<String>,
    /// How long samples are kept, e.g. "90d".
    pub sample_retention: Option<String>,
    /// How long a web page waits for current figures before it is drawn with the last ones
    /// taken, e.g. "50ms".
    pub page_wait: Option<String>,
}

/// The `[catalogue]` section: where the catalogue lives. Without `url`, SQLite in the data
/// directory. The password never goes in this file: it comes from
/// SHIPSHAPE_CATALOGUE_PASSWORD (or the whole URL from SHIPSHAPE_CATALOGUE_URL).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueFileConfig {
    /// `postgres://user@host:port/database?sslmode=…`
    pub url: Option<String>,
    /// Connections this node keeps open at most [default: 16].
    pub max_connections: Option<u32>,
    /// A statement running longer is cancelled, e.g. "60s".
    pub statement_timeout: Option<String>,
    /// A lock waited on longer fails the statement, e.g. "30s".
    pub lock_timeout: Option<String>,
    /// A transaction idle longer is ended by the server, e.g. "60s".
    pub idle_in_transaction_timeout: Option<String>,
    /// How long a node may answer a manifest GET from what it read lately, at most, when no
    /// change notice says otherwise, e.g. "5s" [default]; "0s": every GET queries.
    pub manifest_cache_ttl: Option<String>,
    /// Bring the schema up to date on start [default: true]; false: refuse to start on an
    /// older schema (run `shipshape migrate` as a separate step).
    pub migrate: Option<bool>,
}

impl CatalogueFileConfig {
    /// The catalogue's settings with the URL and password the environment gives
    /// (SHIPSHAPE_CATALOGUE_URL, SHIPSHAPE_CATALOGUE_PASSWORD): what the commands that open a
    /// data directory's catalogue without `serve`'s flags use.
    pub fn resolve_from_env(&self) -> Result<shipshape_server::CatalogueConfig, String> {
        self.resolve(
            std::env::var("SHIPSHAPE_CATALOGUE_URL").ok(),
            std::env::var("SHIPSHAPE_CATALOGUE_PASSWORD").ok(),
        )
    }

    /// The catalogue's settings: the URL from `url_env` (SHIPSHAPE_CATALOGUE_URL) or the file,
    /// the password from `password_env` when set.
    pub fn resolve(
        &self,
        url_env: Option<String>,
        password_env: Option<String>,
    ) -> Result<shipshape_server::CatalogueConfig, String> {
        let Some(url) = url_env.or(self.url.clone()) else {
            if self.max_connections.is_some()
                || self.statement_timeout.is_some()
                || self.lock_timeout.is_some()
                || self.idle_in_transaction_timeout.is_some()
                || self.manifest_cache_ttl.is_some()
            {
                return Err(
                    "[catalogue] settings need a PostgreSQL url (catalogue.url or \
                            SHIPSHAPE_CATALOGUE_URL); without one the catalogue is SQLite in \
                            the data directory"
                        .into(),
                );
            }
            return Ok(shipshape_server::CatalogueConfig::Sqlite);
        };
        if !shipshape_meta::is_postgres_url(&url) {
            return Err(format!(
                "catalogue.url: {} is not a PostgreSQL URL (postgres://user@host/database); \
                 leave it out for SQLite in the data directory",
                shipshape_meta::redacted_url(&url)
            ));
        }
        let mut options = shipshape_meta::PostgresOptions::new(url);
        options.password = password_env;
        if let Some(n) = self.max_connections {
            if n == 0 {
                return Err("catalogue.max_connections: at least 1".into());
            }
            options.max_connections = n;
        }
        for (value, field, slot) in [
            (
                &self.statement_timeout,
                "catalogue.statement_timeout",
                &mut options.statement_timeout,
            ),
            (
                &self.lock_timeout,
                "catalogue.lock_timeout",
                &mut options.lock_timeout,
            ),
            (
                &self.idle_in_transaction_timeout,
                "catalogue.idle_in_transaction_timeout",
                &mut options.idle_in_transaction_timeout,
            ),
            (
                &self.manifest_cache_ttl,
                "catalogue.manifest_cache_ttl",
                &mut options.manifest_cache_ttl,
            ),
        ] {
            if let Some(v) = value {
                *slot = duration(field, v)?;
            }
        }
        Ok(shipshape_server::CatalogueConfig::Postgres {
            options,
            migrate: self.migrate.unwrap_or(true),
        })
    }
}

/// The `[metrics]` section: what `/metrics` serves.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// How long the storage figures are served before they are computed again, e.g. "1m".
    pub storage_refresh: Option<String>,
}

/// The `[storage]` section: where blob bytes are kept (the data directory's `store/` unless
/// `s3` is set). The catalogue stays in the data directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub s3: Option<S3FileConfig>,
}

/// `[storage] s3 = { … }`: an S3-compatible bucket. Credentials never go in this file: they
/// come from SHIPSHAPE_S3_ACCESS_KEY_ID and SHIPSHAPE_S3_SECRET_ACCESS_KEY (without them, the
/// usual AWS chain: instance metadata, web identity).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3FileConfig {
    /// The service's URL; AWS's own endpoint for the region when absent.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// The region requests are signed for [default: us-east-1].
    pub region: Option<String>,
    /// Allow a plain `http://` endpoint.
    #[serde(default)]
    pub allow_http: bool,
    /// Bucket in the path rather than the host name (MinIO, garage, Ceph).
    #[serde(default)]
    pub path_style: bool,
    /// Bytes of every multipart part but the last, 5 MiB to 5 GiB [default: 10 MiB].
    pub part_size: Option<u64>,
    /// Answer blob GETs with a redirect to a URL signed for this long, e.g. "15m", so that
    /// clients download from the bucket [default: off, the node streams the bytes].
    pub redirect_downloads: Option<String>,
}

/// The `[limits]` section: what a client may hold of the server, and for how long.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// A request header must be complete this long after it began, e.g. "30s".
    pub header_timeout: Option<String>,
    /// A connection with no request in flight is closed after this long, e.g. "2m".
    pub idle_timeout: Option<String>,
    /// A body that sends (or a client that takes) nothing for this long is dropped, e.g. "2m".
    pub body_timeout: Option<String>,
    /// Connections served at once; 0: no limit.
    pub max_connections: Option<usize>,
    /// The largest request header, in bytes.
    pub max_header_bytes: Option<usize>,
}

/// The `[auth]` section: access control. Passwords never go in this file: the first
/// administrator's comes from SHIPSHAPE_ADMIN_PASSWORD.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Name of the first administrator, created on start when no user exists.
    pub admin_user: Option<String>,
    /// The token endpoint's address as clients reach it.
    pub token_realm: Option<String>,
    /// The name tokens are issued for.
    pub service: Option<String>,
}

/// The `[tls]` section: serve HTTPS.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFileConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert: Option<PathBuf>,
    /// PEM private key of the certificate (PKCS#8, RSA or SEC1).
    pub key: Option<PathBuf>,
}

/// The `[events]` section: the activity log.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// How long entries are kept, e.g. "90d".
    pub retention: Option<String>,
}

/// The `[policies]` section: the retention scheduler.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    /// How often the scheduler looks for due policies, e.g. "30s".
    pub poll_interval: Option<String>,
}

/// The `[gc]` section: the online collector.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcFileConfig {
    /// Grace period before anything that became garbage is collected, e.g. "24h".
    pub review_delay: Option<String>,
    /// How long what a client was told exists stays, whatever the grace, e.g. "1h".
    pub lease: Option<String>,
    pub workers: Option<usize>,
    pub poll_interval: Option<String>,
    pub untagged_manifests: Option<bool>,
    pub orphan_referrers: Option<bool>,
    pub sweep_min_age: Option<String>,
}

/// The `[uploads]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadsConfig {
    /// Upload sessions untouched for this long are abandoned, e.g. "24h".
    pub ttl: Option<String>,
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
    /// `text`, `json` or `auto` (text on a terminal, JSON otherwise).
    pub format: Option<crate::logging::Format>,
}

impl S3FileConfig {
    /// The store's settings, with the keys from the environment.
    pub fn with_keys(
        self,
        access_key_id: Option<String>,
        secret: Option<String>,
    ) -> Result<S3Config, String> {
        let redirect_downloads = self
            .redirect_downloads
            .as_deref()
            .map(|d| duration("[storage] s3.redirect_downloads", d))
            .transpose()?;
        Ok(S3Config {
            endpoint: self.endpoint,
            bucket: self.bucket,
            region: self.region.unwrap_or_else(|| "us-east-1".into()),
            access_key_id,
            secret_access_key: secret,
            allow_http: self.allow_http,
            path_style: self.path_style,
            part_size: self.part_size.unwrap_or(S3Config::DEFAULT_PART_SIZE),
            redirect_downloads,
        })
    }
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

/// The certificate and key, each from its flag or variable or else the file; both or neither.
fn tls(file: &TlsFileConfig, args: &ServeArgs) -> Result<Option<TlsConfig>, String> {
    let cert = args.tls_cert.clone().or(file.cert.clone());
    let key = args.tls_key.clone().or(file.key.clone());
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsConfig::new(cert, key))),
        (None, None) => Ok(None),
        (Some(cert), None) => Err(format!(
            "a TLS certificate ({}) needs its key: pass --tls-key or set [tls] key",
            cert.display()
        )),
        (None, Some(key)) => Err(format!(
            "a TLS key ({}) needs its certificate: pass --tls-cert or set [tls] cert",
            key.display()
        )),
    }
}

/// The `[limits]` settings, each from its flag or variable or else the file.
fn limits(file: &LimitsConfig, args: &ServeArgs) -> Result<Limits, String> {
    let default = Limits::default();
    let pick = |flag: &Option<String>, file: &Option<String>, field: &str, default| match flag
        .as_ref()
        .or(file.as_ref())
    {
        Some(v) => duration(field, v),
        None => Ok(default),
    };
    let max_header_bytes = args
        .max_header_bytes
        .or(file.max_header_bytes)
        .unwrap_or(default.max_header_bytes);
    if max_header_bytes < MIN_HEADER_BYTES {
        return Err(format!(
            "limits.max_header_bytes: {max_header_bytes} is below the smallest the server can \
             hold to ({MIN_HEADER_BYTES})"
        ));
    }
    Ok(Limits {
        header_timeout: pick(
            &args.header_timeout,
            &file.header_timeout,
            "limits.header_timeout",
            default.header_timeout,
        )?,
        idle_timeout: pick(
            &args.idle_timeout,
            &file.idle_timeout,
            "limits.idle_timeout",
            default.idle_timeout,
        )?,
        body_timeout: pick(
            &args.body_timeout,
            &file.body_timeout,
            "limits.body_timeout",
            default.body_timeout,
        )?,
        max_connections: args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(default.max_connections),
        max_header_bytes,
    })
}

pub fn merge(file: FileConfig, args: &ServeArgs) -> Result<ServerConfig, String> {
    let default = ServerConfig::default();
    let tls = tls(&file.tls, args)?;
    let limits = limits(&file.limits, args)?;
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
    let pick = |flag: &Option<String>, file: &Option<String>, field: &str, default| match flag
        .as_ref()
        .or(file.as_ref())
    {
        Some(v) => duration(field, v),
        None => Ok(default),
    };
    let gd = default.gc.clone();
    let gc = shipshape_gc::GcConfig {
        review_delay: pick(
            &args.gc_review_delay,
            &file.gc.review_delay,
            "gc.review_delay",
            gd.review_delay,
        )?,
        lease: pick(&args.gc_lease, &file.gc.lease, "gc.lease", gd.lease)?,
        poll_interval: pick(
            &args.gc_poll_interval,
            &file.gc.poll_interval,
            "gc.poll_interval",
            gd.poll_interval,
        )?,
        sweep_min_age: pick(
            &args.gc_sweep_min_age,
            &file.gc.sweep_min_age,
            "gc.sweep_min_age",
            gd.sweep_min_age,
        )?,
        upload_ttl: pick(
            &args.upload_ttl,
            &file.uploads.ttl,
            "uploads.ttl",
            gd.upload_ttl,
        )?,
        workers: args.gc_workers.or(file.gc.workers).unwrap_or(gd.workers),
        untagged_manifests: args
            .gc_untagged_manifests
            .or(file.gc.untagged_manifests)
            .unwrap_or(gd.untagged_manifests),
        orphan_referrers: args
            .gc_orphan_referrers
            .or(file.gc.orphan_referrers)
            .unwrap_or(gd.orphan_referrers),
        restore_window,
        ..gd
    };
    let blob_store = match file.storage.s3 {
        None => BlobStoreConfig::Local,
        Some(s3) => BlobStoreConfig::S3(s3.with_keys(
            args.s3_access_key_id.clone(),
            args.s3_secret_access_key.clone(),
        )?),
    };
    Ok(ServerConfig {
        blob_store,
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
        gc,
        policy_poll_interval: pick(
            &args.policy_poll_interval,
            &file.policies.poll_interval,
            "policies.poll_interval",
            default.policy_poll_interval,
        )?,
        events_retention: pick(
            &args.events_retention,
            &file.events.retention,
            "events.retention",
            default.events_retention,
        )?,
        first_admin: args.admin_password.clone().map(|password| {
            let name = args
                .admin_user
                .clone()
                .or(file.auth.admin_user.clone())
                .unwrap_or_else(|| "admin".into());
            (name, password)
        }),
        token_realm: args.token_realm.clone().or(file.auth.token_realm),
        token_service: file.auth.service.unwrap_or(default.token_service),
        tls,
        limits,
        shutdown_timeout: pick(
            &args.shutdown_timeout,
            &file.shutdown_timeout,
            "shutdown_timeout",
            default.shutdown_timeout,
        )?,
        metrics_storage_refresh: pick(
            &args.metrics_storage_refresh,
            &file.metrics.storage_refresh,
            "metrics.storage_refresh",
            default.metrics_storage_refresh,
        )?,
        catalogue: file
            .catalogue
            .resolve(args.catalogue_url.clone(), args.catalogue_password.clone())?,
        usage_sample_interval: pick(
            &args.usage_sample_interval,
            &file.usage.sample_interval,
            "usage.sample_interval",
            default.usage_sample_interval,
        )?,
        usage_sample_retention: pick(
            &args.usage_sample_retention,
            &file.usage.sample_retention,
            "usage.sample_retention",
            default.usage_sample_retention,
        )?,
        usage_page_wait: pick(
            &args.usage_page_wait,
            &file.usage.page_wait,
            "usage.page_wait",
            default.usage_page_wait,
        )?,
    })
}
