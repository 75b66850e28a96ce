//! `shipshape robot ls|add|revoke`: robot accounts for CI and other machines. A robot logs in
//! as `robot$NAME` with a secret the registry shows once, when it is added.

use reqwest::Method;
use shipshape_server::api::model::accounts::{NewRobot, NewRobotReply, RobotList, RoleOn};

use super::client::decode;
use super::output::{self, Format, Table};
use super::user::needs_admin;
use super::{Remote, RemoteArgs, RemoteError, Result};

/// `shipshape robot …`
#[derive(clap::Args, Debug)]
pub struct RobotArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: RobotCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum RobotCommand {
    /// List robots: state, expiry, last use
    Ls,
    /// Add a robot with roles on repository patterns; prints its login and its secret, which
    /// is shown only this once
    Add {
        /// Robot name: lower-case letters, digits, '.', '_', '-'
        name: String,
        /// What it is for
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// How long it may be used, e.g. 90d or 12h [default: no expiry]
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        /// A role on the repositories a pattern matches, e.g. team-a/**=write ('*' stays within
        /// a path segment, '**' crosses them; roles: read, write, admin). Repeat for more
        #[arg(long = "role", value_name = "PATTERN=ROLE", value_parser = role_on)]
        roles: Vec<(String, String)>,
    },
    /// Revoke a robot: its secret and every token it holds stop working at once
    Revoke {
        /// Robot name (without `robot$`)
        name: String,
    },
}

/// `PATTERN=ROLE` of `--role`.
fn role_on(s: &str) -> std::result::Result<(String, String), String> {
    match s.rsplit_once('=') {
        Some((pattern, role)) if !pattern.is_empty() && !role.is_empty() => {
            Ok((pattern.to_string(), role.to_string()))
        }
        _ => Err(format!(
            "{s:?} is not PATTERN=ROLE (e.g. team-a/**=write; roles: read, write, admin)"
        )),
    }
}

pub async fn run(args: RobotArgs) -> Result<()> {
    let remote = args.remote.remote()?;
    let format = args.remote.output;
    match args.command {
        RobotCommand::Ls => ls(&remote, format).await,
        RobotCommand::Add {
            name,
            description,
            expires_in,
            roles,
        } => {
            let body = NewRobot {
                name: robot_name(&name),
                description,
                expires_in,
                roles: roles
                    .into_iter()
                    .map(|(pattern, role)| RoleOn { pattern, role })
                    .collect(),
            };
            let req = remote.request(Method::POST, "/api/v1/robots").json(&body);
            let v = remote.send(req).await.map_err(needs_admin)?;
            if format == Format::Json {
                output::print_json(&v);
                return Ok(());
            }
            let reply: NewRobotReply = decode(&v)?;
            let robot = &reply.robot;
            let roles: Vec<String> = body
                .roles
                .iter()
                .map(|r| format!("{} on {}", r.role, r.pattern))
                .collect();
            let roles = if roles.is_empty() {
                "no roles yet; give it some with shipshape role grant".to_string()
            } else {
                roles.join(", ")
            };
            let expires = match robot.expires_at.as_deref() {
                Some(at) => format!("expires {}", output::time(at)),
                None => "does not expire".into(),
            };
            println!("added robot {} ({roles}; {expires})", robot.name);
            println!("login:  {}", robot.login);
            println!("secret: {}", reply.secret);
            println!("The secret will not be shown again: store it now (e.g. as a CI secret).");
            Ok(())
        }
        RobotCommand::Revoke { name } => {
            let name = robot_name(&name);
            if !args.remote.yes {
                // Ask only about a robot that exists, so a typo fails without a question.
                let list: RobotList = remote
                    .get_json("/api/v1/robots")
                    .await
                    .map_err(needs_admin)?;
                if !list.robots.iter().any(|r| r.name == name) {
                    return Err(RemoteError::Usage(format!(
                        "robot {name} does not exist (shipshape robot ls lists them)"
                    )));
                }
            }
            output::confirm(
                args.remote.yes,
                &format!("revoke robot {name} (its secret and tokens stop working at once)"),
            )?;
            let req = remote.request(Method::POST, &format!("/api/v1/robots/{name}/revoke"));
            remote.send(req).await.map_err(needs_admin)?;
            if format == Format::Table {
                println!("revoked robot {name}");
            }
            Ok(())
        }
    }
}

/// A robot's name, also when given as its login (`robot$ci`).
fn robot_name(name: &str) -> String {
    name.strip_prefix("robot$").unwrap_or(name).to_string()
}

async fn ls(remote: &Remote, format: Format) -> Result<()> {
    let v = remote.get("/api/v1/robots").await.map_err(needs_admin)?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let list: RobotList = decode(&v)?;
    let mut t = Table::new(&[
        "ROBOT",
        "LOGIN",
        "STATE",
        "EXPIRES",
        "LAST USED",
        "CREATED BY",
        "DESCRIPTION",
    ]);
    for r in &list.robots {
        t.row(vec![
            r.name.clone(),
            r.login.clone(),
            r.state.clone(),
            output::time(r.expires_at.as_deref()),
            output::time(r.last_used_at.as_deref()),
            r.created_by.clone(),
            r.description.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    t.print();
    Ok(())
}
