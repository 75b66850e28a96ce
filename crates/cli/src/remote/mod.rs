//! The operator commands that drive a running registry through its management API
//! (`/api/v1`): repositories, tags, usage, the activity log, garbage collection runs and retention policies. One file per command group;
//! `client.rs` is the HTTP wrapper, `output.rs` the tables and prompts they share.

mod client;
pub mod events;
pub mod gc;
mod output;
pub mod policy;
pub mod repo;
pub mod tag;
pub mod usage;

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
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// Do not ask before destructive actions (required when stdin is not a terminal)
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
}

/// Why a remote command failed; printed as one `error: …` line.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The registry answered with an error; the message is the API's.
    #[error("{message}")]
    Api { status: u16, message: String },
    #[error("cannot reach the registry at {url}: {reason}")]
    Connect { url: String, reason: String },
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

/// Runs a remote command to completion and turns its outcome into the exit code.
pub fn run<F>(command: F) -> ExitCode
where
    F: std::future::Future<Output = Result<()>>,
{
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
