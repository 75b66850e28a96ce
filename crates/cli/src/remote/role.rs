//! `shipshape role ls|grant|revoke`: who may do what where. A role (`read`, `write`, `admin`)
//! is given to a subject (`user:NAME`, `robot:NAME`, or `anonymous` for anonymous pulls) on
//! the repositories a pattern matches.

use reqwest::Method;
use shipshape_server::api::model::accounts::{Grant, RevokeQuery, RoleList};

use super::client::decode;
use super::output::{self, Format, Table};
use super::user::needs_admin;
use super::{RemoteArgs, Result};

/// `shipshape role …`
#[derive(clap::Args, Debug)]
pub struct RoleArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: RoleCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum RoleCommand {
    /// List every role given: subject, pattern, role
    Ls,
    /// Give SUBJECT a role on the repositories PATTERN matches (replacing the role it had there)
    Grant {
        /// `user:NAME`, `robot:NAME`, or `anonymous` (which may only be given read)
        subject: String,
        /// Repository glob, e.g. `team-a/**` ('*' stays within a path segment, '**' crosses
        /// them)
        pattern: String,
        /// read: pull; write: also push, delete and restore tags; admin: also delete manifests
        /// and repositories, and override tag protection
        #[arg(value_parser = ["read", "write", "admin"])]
        role: String,
    },
    /// Take away the role SUBJECT has on PATTERN
    Revoke {
        /// `user:NAME`, `robot:NAME` or `anonymous`
        subject: String,
        /// The pattern exactly as it was granted
        pattern: String,
    },
}

pub async fn run(args: RoleArgs) -> Result<()> {
    let remote = args.remote.remote()?;
    let format = args.remote.output;
    match args.command {
        RoleCommand::Ls => {
            let v = remote.get("/api/v1/roles").await.map_err(needs_admin)?;
            if format == Format::Json {
                output::print_json(&v);
                return Ok(());
            }
            let list: RoleList = decode(&v)?;
            let mut t = Table::new(&["SUBJECT", "PATTERN", "ROLE", "CREATED", "CREATED BY"]);
            for b in &list.roles {
                t.row(vec![
                    b.subject.clone(),
                    b.pattern.clone(),
                    b.role.clone(),
                    output::time(b.created_at.as_str()),
                    b.created_by.clone(),
                ]);
            }
            t.print();
            Ok(())
        }
        RoleCommand::Grant {
            subject,
            pattern,
            role,
        } => {
            let body = Grant {
                subject,
                pattern,
                role,
            };
            let req = remote.request(Method::POST, "/api/v1/roles").json(&body);
            remote.send(req).await.map_err(needs_admin)?;
            if format == Format::Table {
                println!(
                    "granted {} on {} to {}",
                    body.role, body.pattern, body.subject
                );
            }
            Ok(())
        }
        RoleCommand::Revoke { subject, pattern } => {
            let query = RevokeQuery { subject, pattern };
            let req = remote
                .request(Method::DELETE, "/api/v1/roles")
                .query(&query);
            remote.send(req).await.map_err(needs_admin)?;
            if format == Format::Table {
                println!("revoked the role of {} on {}", query.subject, query.pattern);
            }
            Ok(())
        }
    }
}
