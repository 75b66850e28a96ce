//! The `shipshape` command. `serve` runs the registry; `repo`, `tag`, `usage`, `events`, the
//! account commands and the rest drive a running registry through its management API
//! (`remote/`); `check` and `user add --data-dir` work on a data directory.

mod check;
mod config;
mod local_user;
mod logging;
mod migrate;
mod offline;
mod remote;
mod transfer;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Shipshape: a self-hosted OCI container registry that keeps itself clean.
#[derive(Parser, Debug)]
#[command(name = "shipshape", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the registry. With no options: SQLite catalogue and blobs under ./shipshape-data,
    /// listening on 127.0.0.1:5000.
    Serve(Box<ServeArgs>),
    /// Verify the catalogue against the blob store (every blob present with its size, every
    /// reference resolved, no unknown objects); --repair fixes what it can. Safe while the
    /// registry serves the same data directory.
    Check(check::CheckArgs),
    /// Bring a PostgreSQL catalogue's schema up to date (`[catalogue] url` of --config, or
    /// SHIPSHAPE_CATALOGUE_URL), for nodes started with `[catalogue] migrate = false`
    Migrate(migrate::MigrateArgs),
    /// Write a whole registry (catalogue, accounts, history and blobs) to a directory, to move
    /// it to other backends with `import` or to keep as a backup. It reads one snapshot and may
    /// run while the registry serves; stop the registry first when moving it
    Export(transfer::ExportArgs),
    /// Fill a new, empty registry (the catalogue and store --config names) from an export
    Import(transfer::ImportArgs),
    /// List, delete and restore repositories of a running registry
    Repo(remote::repo::RepoArgs),
    /// List, delete (all named or none, or in bulk), trace and restore tags of a running
    /// registry
    Tag(remote::tag::TagArgs),
    /// List the manifests of a repository; delete images by digest (or a unique prefix)
    Manifest(remote::manifest::ManifestArgs),
    /// The restore bin: tags that can go back to a manifest they left, with their deadlines
    Restorable(remote::restorable::RestorableArgs),
    /// Undo a deletion: restore every tag one operation removed (the batch it printed)
    Undo(remote::restorable::UndoArgs),
    /// Show storage figures of a running registry: stored and only-here bytes, and what holds
    /// them: in use, held for restore, in grace, reclaimable
    Usage(remote::usage::UsageArgs),
    /// Show the activity log of a running registry
    Events(remote::events::EventsArgs),
    /// Garbage collection runs of a running registry: start (with --dry-run, --wait), status,
    /// cancel, list, items
    Gc(remote::gc::GcArgs),
    /// Retention policies of a running registry: ls, get, apply -f FILE, rm, preview, run,
    /// runs, show, cancel
    Policy(remote::policy::PolicyArgs),
    /// Check a user's (or robot's) credentials with a registry and store them in the containers
    /// auth file podman and skopeo read ($REGISTRY_AUTH_FILE, else
    /// ~/.config/containers/auth.json); the other commands then send them
    Login(remote::login::LoginArgs),
    /// Remove the credentials stored for a registry
    Logout(remote::login::LogoutArgs),
    /// Users of a running registry: ls, add, rm, passwd; `add --data-dir` works on a stopped
    /// registry's data directory
    User(remote::user::UserArgs),
    /// Robot accounts of a running registry: ls, add (prints the secret once), revoke
    Robot(remote::robot::RobotArgs),
    /// Roles on repository patterns: ls, grant SUBJECT PATTERN ROLE, revoke SUBJECT PATTERN
    Role(remote::role::RoleArgs),
}

/// Options of `shipshape serve`. Each overrides the same setting of the config file; each can
/// also be set by the environment variable shown.
#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:5000]
    #[arg(long, env = "SHIPSHAPE_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<std::net::SocketAddr>,

    /// Directory for the catalogue and the blobs [default: ./shipshape-data]
    #[arg(long, env = "SHIPSHAPE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// TOML configuration file (keys: listen, data_dir, allow_public_without_auth,
    /// shutdown_timeout, [auth]
    /// admin_user, token_realm and service,
    /// [deletion] enabled and restore_window, [pulls] flush_interval, [gc] review_delay,
    /// lease, workers, poll_interval, untagged_manifests, orphan_referrers and sweep_min_age,
    /// [uploads] ttl, [policies] poll_interval, [events] retention, [log] filter and format,
    /// [metrics] storage_refresh, [tls] cert and key, [limits] header_timeout, idle_timeout,
    /// body_timeout, max_connections and max_header_bytes, [storage] s3 = { endpoint, bucket,
    /// region, allow_http, path_style, part_size }: blobs in an S3-compatible bucket, keys from
    /// SHIPSHAPE_S3_ACCESS_KEY_ID and SHIPSHAPE_S3_SECRET_ACCESS_KEY)
    #[arg(long, env = "SHIPSHAPE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Allow or forbid the OCI delete endpoints (forbidden: they answer 405 UNSUPPORTED)
    /// [default: true]
    #[arg(long, env = "SHIPSHAPE_DELETION_ENABLED", value_name = "BOOL")]
    deletion_enabled: Option<bool>,

    /// How long deleted tags, manifests and repositories stay restorable [default: 7d]
    #[arg(long, env = "SHIPSHAPE_RESTORE_WINDOW", value_name = "DURATION")]
    restore_window: Option<String>,

    /// How often pull counts are written to the catalogue; 0s writes each pull at once
    /// [default: 10s]
    #[arg(long, env = "SHIPSHAPE_PULL_FLUSH_INTERVAL", value_name = "DURATION")]
    pull_flush_interval: Option<String>,

    /// Grace period of the garbage collector: nothing is collected sooner than this after the
    /// event that made it garbage [default: 24h]
    #[arg(long, env = "SHIPSHAPE_GC_REVIEW_DELAY", value_name = "DURATION")]
    gc_review_delay: Option<String>,

    /// How long a blob a client was told exists (uploaded, mounted or HEADed) or a manifest it
    /// pushed stays, whatever grace a collection run is given, so pushes in flight never fail
    /// [default: 1h]
    #[arg(long, env = "SHIPSHAPE_GC_LEASE", value_name = "DURATION")]
    gc_lease: Option<String>,

    /// Background collector workers; 0 leaves collection to on-demand runs [default: 1]
    #[arg(long, env = "SHIPSHAPE_GC_WORKERS", value_name = "N")]
    gc_workers: Option<usize>,

    /// How often the collector workers look for due work [default: 10s]
    #[arg(long, env = "SHIPSHAPE_GC_POLL_INTERVAL", value_name = "DURATION")]
    gc_poll_interval: Option<String>,

    /// Collect manifests no tag, index or present subject holds [default: true]
    #[arg(long, env = "SHIPSHAPE_GC_UNTAGGED_MANIFESTS", value_name = "BOOL")]
    gc_untagged_manifests: Option<bool>,

    /// Collect referrers whose subject is gone [default: true]
    #[arg(long, env = "SHIPSHAPE_GC_ORPHAN_REFERRERS", value_name = "BOOL")]
    gc_orphan_referrers: Option<bool>,

    /// Storage objects the catalogue does not know are swept only when older than this
    /// [default: 1h]
    #[arg(long, env = "SHIPSHAPE_GC_SWEEP_MIN_AGE", value_name = "DURATION")]
    gc_sweep_min_age: Option<String>,

    /// Upload sessions untouched for this long are abandoned and collected [default: 24h]
    #[arg(long, env = "SHIPSHAPE_UPLOAD_TTL", value_name = "DURATION")]
    upload_ttl: Option<String>,

    /// How often the scheduler looks for retention policies that are due [default: 30s]
    #[arg(long, env = "SHIPSHAPE_POLICY_POLL_INTERVAL", value_name = "DURATION")]
    policy_poll_interval: Option<String>,

    /// How long the activity log keeps its entries [default: 90d]
    #[arg(long, env = "SHIPSHAPE_EVENTS_RETENTION", value_name = "DURATION")]
    events_retention: Option<String>,

    /// Serve on a non-loopback address although no authentication is configured
    #[arg(long, env = "SHIPSHAPE_ALLOW_PUBLIC_WITHOUT_AUTH")]
    allow_public_without_auth: bool,

    /// Name of the first administrator, created on start when no user exists (with
    /// SHIPSHAPE_ADMIN_PASSWORD); access control starts with it [default: admin]
    #[arg(long, env = "SHIPSHAPE_ADMIN_USER", value_name = "NAME")]
    admin_user: Option<String>,

    /// Password of the first administrator (from the environment only, never a flag, so it
    /// stays out of process listings)
    #[arg(skip = std::env::var("SHIPSHAPE_ADMIN_PASSWORD").ok())]
    admin_password: Option<String>,

    /// The PostgreSQL catalogue's URL, when several nodes share one (from the environment
    /// only, since it may hold a password: SHIPSHAPE_CATALOGUE_URL) [default: `[catalogue]
    /// url`, else SQLite in the data directory]
    #[arg(skip = std::env::var("SHIPSHAPE_CATALOGUE_URL").ok())]
    catalogue_url: Option<String>,

    /// The PostgreSQL catalogue's password, kept out of the URL (from the environment only:
    /// SHIPSHAPE_CATALOGUE_PASSWORD)
    #[arg(skip = std::env::var("SHIPSHAPE_CATALOGUE_PASSWORD").ok())]
    catalogue_password: Option<String>,

    /// Access key of the S3 bucket of `[storage] s3` (from the environment only:
    /// SHIPSHAPE_S3_ACCESS_KEY_ID)
    #[arg(skip = std::env::var("SHIPSHAPE_S3_ACCESS_KEY_ID").ok())]
    s3_access_key_id: Option<String>,

    /// Secret key of the S3 bucket (from the environment only, never a flag or the file:
    /// SHIPSHAPE_S3_SECRET_ACCESS_KEY)
    #[arg(skip = std::env::var("SHIPSHAPE_S3_SECRET_ACCESS_KEY").ok())]
    s3_secret_access_key: Option<String>,

    /// The token endpoint's address as clients reach it, when a proxy changes it
    /// [default: this server's /auth/token as the request named it]
    #[arg(long, env = "SHIPSHAPE_TOKEN_REALM", value_name = "URL")]
    token_realm: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate first); needs
    /// --tls-key. Both files are read again on SIGHUP and when either changes
    #[arg(long, env = "SHIPSHAPE_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// The PEM private key (PKCS#8, RSA or SEC1) of --tls-cert
    #[arg(long, env = "SHIPSHAPE_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// A request's header must be complete this long after its first byte (or after the
    /// connection opened), or the connection is closed; 0s: no limit [default: 30s]
    #[arg(long, env = "SHIPSHAPE_HEADER_TIMEOUT", value_name = "DURATION")]
    header_timeout: Option<String>,

    /// A connection with no request in flight is closed after this long; 0s: never
    /// [default: 2m]
    #[arg(long, env = "SHIPSHAPE_IDLE_TIMEOUT", value_name = "DURATION")]
    idle_timeout: Option<String>,

    /// A request body that sends no byte for this long is dropped (408; an upload session
    /// keeps what it had and can be resumed), and so is a connection whose client takes no
    /// byte of a response for this long; 0s: never [default: 2m]
    #[arg(long, env = "SHIPSHAPE_BODY_TIMEOUT", value_name = "DURATION")]
    body_timeout: Option<String>,

    /// Connections served at once; more are answered 503 and closed (over HTTPS, closed);
    /// 0: no limit [default: 1024]
    #[arg(long, env = "SHIPSHAPE_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,

    /// The largest request header (request line and fields) in bytes; larger ones are
    /// answered 431; at least 8192 [default: 65536]
    #[arg(long, env = "SHIPSHAPE_MAX_HEADER_BYTES", value_name = "BYTES")]
    max_header_bytes: Option<usize>,

    /// On SIGTERM or Ctrl-C, how long requests in flight may take to finish before their
    /// connections are closed (a second signal stops at once) [default: 30s]
    #[arg(long, env = "SHIPSHAPE_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    shutdown_timeout: Option<String>,

    /// Log filter in tracing's syntax, e.g. `info`, `shipshape_server=debug`, or
    /// `info,shipshape::request=warn` to keep only failed requests [default: info]
    #[arg(long, env = "SHIPSHAPE_LOG", value_name = "FILTER")]
    log: Option<String>,

    /// How the log (on stderr) is written: text, json (one object per line), or auto: text on
    /// a terminal, json otherwise [default: auto]
    #[arg(long, env = "SHIPSHAPE_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<logging::Format>,

    /// How long /metrics serves the storage figures before computing them again (they
    /// classify every blob and manifest); 0s: at every scrape [default: 1m]
    #[arg(
        long,
        env = "SHIPSHAPE_METRICS_STORAGE_REFRESH",
        value_name = "DURATION"
    )]
    metrics_storage_refresh: Option<String>,

    /// How often the storage figures are sampled for the overview's chart (when the newest
    /// sample, from any node, is older than this); 0s: only as garbage collection runs end
    /// [default: 15m]
    #[arg(long, env = "SHIPSHAPE_USAGE_SAMPLE_INTERVAL", value_name = "DURATION")]
    usage_sample_interval: Option<String>,

    /// How long samples of the storage figures are kept (and the overview's chart looks back)
    /// [default: 90d]
    #[arg(
        long,
        env = "SHIPSHAPE_USAGE_SAMPLE_RETENTION",
        value_name = "DURATION"
    )]
    usage_sample_retention: Option<String>,

    /// How long a web page waits for current storage figures (taking them classifies every
    /// blob and manifest: about a second per 100 000 blobs) before it is drawn with the last
    /// ones taken, saying when they were taken [default: 50ms]
    #[arg(long, env = "SHIPSHAPE_USAGE_PAGE_WAIT", value_name = "DURATION")]
    usage_page_wait: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Check(args) => check::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Export(args) => transfer::export(args),
        Command::Import(args) => transfer::import(args),
        Command::Repo(args) => remote::run(remote::repo::run(args)),
        Command::Tag(args) => remote::run(remote::tag::run(args)),
        Command::Manifest(args) => remote::run(remote::manifest::run(args)),
        Command::Restorable(args) => remote::run(remote::restorable::run(args)),
        Command::Undo(args) => remote::run(remote::restorable::undo(args)),
        Command::Usage(args) => remote::run(remote::usage::run(args)),
        Command::Events(args) => remote::run(remote::events::run(args)),
        Command::Gc(args) => remote::run(remote::gc::run(args)),
        Command::Policy(args) => remote::run(remote::policy::run(args)),
        Command::Login(args) => remote::run(remote::login::login(args)),
        Command::Logout(args) => remote::run(remote::login::logout(args)),
        Command::User(args) => match args.on_data_dir() {
            Some(add) => local_user::add(add, args.remote.output),
            None => remote::run(remote::user::run(args)),
        },
        Command::Robot(args) => remote::run(remote::robot::run(args)),
        Command::Role(args) => remote::run(remote::role::run(args)),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let file = match args
        .config
        .as_deref()
        .map(config::FileConfig::load)
        .transpose()
    {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let log_filter = args
        .log
        .clone()
        .or(file.log.filter.clone())
        .unwrap_or_else(|| "info".into());
    logging::init(
        &log_filter,
        args.log_format.or(file.log.format).unwrap_or_default(),
    );
    let config = match config::merge(file, &args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    shipshape_server::limit_malloc_arenas();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown_timeout = config.shutdown_timeout;
    runtime.block_on(async move {
        let server = match shipshape_server::Server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("shipshape: serving the registry on {}", server.base_url());
        wait_for_signal(&server).await;
        tracing::info!(
            timeout = %humantime::format_duration(shutdown_timeout),
            "shutting down: no new connections; requests in flight may finish within the \
             timeout (a second signal stops at once)"
        );
        tokio::select! {
            done = server.shutdown() => match done {
                Ok(()) => {
                    tracing::info!("shut down");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            _ = second_signal() => {
                eprintln!(
                    "error: a second signal: stopping without waiting for the requests in \
                     flight (pulls counted since the last flush are not recorded)"
                );
                ExitCode::FAILURE
            }
        }
    })
}

/// Waits for the signal that ends a shutdown early: Ctrl-C or SIGTERM again.
async fn second_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Waits for Ctrl-C or SIGTERM. With TLS, SIGHUP reloads the certificate meanwhile; without,
/// SIGHUP keeps its default (the process ends).
async fn wait_for_signal(server: &shipshape_server::Server) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut hup = server
            .serves_tls()
            .then(|| signal(SignalKind::hangup()).expect("SIGHUP handler"));
        let hangup = async |hup: &mut Option<tokio::signal::unix::Signal>| match hup {
            Some(hup) => hup.recv().await,
            None => std::future::pending().await,
        };
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => return,
                _ = term.recv() => return,
                _ = hangup(&mut hup) => {
                    tracing::info!("SIGHUP: reloading the TLS certificate");
                    // A failure is logged, and the previous certificate stays.
                    let _ = server.reload_tls().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = server;
        let _ = ctrl_c.await;
    }
}
