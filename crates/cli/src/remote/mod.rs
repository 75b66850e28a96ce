//! The operator commands that drive a running registry through its management API
//! (`/api/v1`): repositories, tags, usage, the activity log, garbage collection runs, retention
//! policies, and users, robots and roles (with `login`). One file per command group;
//! `client.rs` is the HTTP wrapper, `credentials.rs` where its credentials come from,
//! `output.rs` the tables and prompts they share.

mod client;
mod credentials;
pub mod events;
pub mod gc;
pub mod login;
pub mod manifest;
pub(crate) mod output;
pub mod policy;
pub mod repo;
pub mod restorable;
pub mod robot;
pub mod role;
pub mod tag;
pub mod usage;
pub mod user;

use std::process::ExitCode;

pub use client::Remote;
pub use output::Format;

/// Options every remote command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct RemoteArgs {
    /// Base URL of the registry to manage
    #[arg(
        long,
        global = true,
        env = "SHIPSHAPE_REGISTRY",
        default_value = "http://127.0.0.1:5000",
        value_name = "URL"
    )]
    pub registry: String,

    /// Output format: aligned tables for people, the API's JSON for scripts
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// Do not ask before destructive actions (required when stdin is not a terminal)
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,

    /// Give up on a request that has not been answered within this long
    #[arg(long, global = true, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub timeout: std::time::Duration,

    /// Give up on connecting to the registry after this long
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub connect_timeout: std::time::Duration,
}

impl RemoteArgs {
    /// The registry these options name, asked with the credentials there are for it
    /// (`credentials::for_registry`).
    pub fn remote(&self) -> Result<Remote> {
        let remote = self.anonymous(&self.registry)?;
        let login = credentials::for_registry(&remote.host())?;
        Ok(remote.with_login(login))
    }

    /// The registry at `url`, asked without credentials.
    pub fn anonymous(&self, url: &str) -> Result<Remote> {
        // The registry's base URL; a URL copied with the API's path still works.
        let base = url.trim_end_matches('/');
        let base = base.strip_suffix("/v2").unwrap_or(base);
        let base = base.strip_suffix("/api/v1").unwrap_or(base);
        Remote::new(base, self.connect_timeout, self.timeout)
    }
}

fn duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|_| format!("{s:?} is not a duration (use e.g. 30s, 2m)"))
}

/// Why a remote command failed; printed as one `error: …` line.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The registry answered with an error; the message is the API's, with a hint naming the
    /// command's flag where one would get past the refusal.
    #[error("{}", explain(.code, .message, .detail))]
    Api {
        status: u16,
        code: String,
        message: String,
        detail: serde_json::Value,
    },
    #[error("cannot reach the registry at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the registry at {url} did not answer within {} (--timeout)", humantime::format_duration(*.after))]
    Timeout {
        url: String,
        after: std::time::Duration,
    },
    #[error("cannot connect to the registry at {url} within {} (--connect-timeout)", humantime::format_duration(*.after))]
    ConnectTimeout {
        url: String,
        after: std::time::Duration,
    },
    #[error("unexpected answer from the registry: {0}")]
    Protocol(String),
    #[error("{0}")]
    Usage(String),
    #[error("not confirmed; nothing was changed")]
    Declined,
    #[error("refusing to {0} without confirmation: stdin is not a terminal; pass --yes to confirm")]
    NotATerminal(String),
}

pub type Result<T> = std::result::Result<T, RemoteError>;

/// An API refusal in this command's words: where a flag would get past it, the flag is named
/// (the API names its fields, and the CLI's users pass flags).
fn explain(code: &str, message: &str, detail: &serde_json::Value) -> String {
    match code {
        "DENIED" if detail.get("protected").is_some() => {
            format!("{message}; an admin may pass --override-protection")
        }
        "TAG_IN_USE" => format!(
            "{}; pass --force (with --yes off a terminal) to restore over it",
            message
                .trim_end_matches("; restoring over it needs force")
                .trim_end_matches("; restoring over them needs force")
        ),
        _ => message.to_string(),
    }
}

/// `n thing` or `n things`.
pub fn plural(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// Runs a remote command to completion and turns its outcome into the exit code.
pub fn run<F>(command: F) -> ExitCode
where
    F: std::future::Future<Output = Result<()>>,
{
    restore_sigpipe();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the server put in its message.
            let line = e.to_string().replace(['\n', '\r'], " ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

/// Lets a closed pipe end the command quietly, as it does other command-line tools
/// (`shipshape gc items 5 | head -3`): Rust ignores SIGPIPE, so printing would otherwise panic.
/// Only the operator commands (these and `shipshape check`) do this; the server must survive
/// clients that go away.
pub(crate) fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default touches no Rust state, and runs
    // before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
