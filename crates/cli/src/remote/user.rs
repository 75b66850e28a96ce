//! `shipshape user ls|add|rm|passwd`: the registry's users. `user add --data-dir` adds one to a
//! data directory with no registry running on it (`crate::local_user`), the way to the first
//! administrator without `SHIPSHAPE_ADMIN_PASSWORD`.

use std::path::PathBuf;

use reqwest::Method;
use shipshape_server::api::model::accounts::{NewPassword, NewUser, UserInfo, UserList};

use super::client::decode;
use super::credentials::{self, Login, Source};
use super::login::new_password;
use super::output::{self, Format, Table};
use super::{Remote, RemoteArgs, RemoteError, Result};

/// `shipshape user …`
#[derive(clap::Args, Debug)]
pub struct UserArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// List users: administrator or not, when added and by whom, last login
    Ls,
    /// Add a user (asks for the password twice, or reads it with --password-stdin). The first
    /// user must be an administrator; access control is on from then on
    Add(AddArgs),
    /// Delete a user and the roles they have
    Rm {
        /// User name
        name: String,
    },
    /// Set a user's password: an administrator's for anyone, a user's for themselves
    Passwd {
        /// User name
        name: String,
        /// Read the password from stdin instead of asking
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Options of `shipshape user add`.
#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// User name: lower-case letters, digits, '.', '_', '-'
    pub name: String,
    /// An administrator: may do anything, including managing users, robots and roles
    #[arg(long)]
    pub admin: bool,
    /// Read the password from stdin instead of asking
    #[arg(long)]
    pub password_stdin: bool,
    /// Add the user to this data directory directly, not through a running registry (which
    /// must be stopped): how to create the first administrator without SHIPSHAPE_ADMIN_PASSWORD
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl UserArgs {
    /// `user add --data-dir`: the command that works on a data directory, not a registry.
    pub fn on_data_dir(&self) -> Option<&AddArgs> {
        match &self.command {
            UserCommand::Add(add) if add.data_dir.is_some() => Some(add),
            _ => None,
        }
    }
}

pub async fn run(args: UserArgs) -> Result<()> {
    let remote = args.remote.remote()?;
    let format = args.remote.output;
    match args.command {
        UserCommand::Ls => ls(&remote, format).await,
        UserCommand::Add(add) => {
            let password = new_password(add.password_stdin, &add.name)?;
            let body = NewUser {
                name: add.name.clone(),
                password,
                admin: add.admin,
            };
            let req = remote.request(Method::POST, "/api/v1/users").json(&body);
            let v = remote.send(req).await.map_err(needs_admin)?;
            if format == Format::Json {
                output::print_json(&v);
                return Ok(());
            }
            let user: UserInfo = decode(&v)?;
            let admin = if user.admin { " (administrator)" } else { "" };
            println!("added user {}{admin}", user.name);
            if remote.login().is_none() {
                // Accepted without credentials: this was the first user, and access control
                // has just started with it.
                println!(
                    "access control is on now; log in: shipshape login -u {} {}",
                    user.name,
                    remote.host()
                );
            }
            Ok(())
        }
        UserCommand::Rm { name } => {
            if !args.remote.yes {
                // Ask only about a user that exists, so a typo fails without a question.
                let list: UserList = remote
                    .get_json("/api/v1/users")
                    .await
                    .map_err(needs_admin)?;
                if !list.users.iter().any(|u| u.name == name) {
                    return Err(RemoteError::Usage(format!(
                        "user {name} does not exist (shipshape user ls lists them)"
                    )));
                }
            }
            output::confirm(
                args.remote.yes,
                &format!("delete user {name} and the roles they have"),
            )?;
            let req = remote.request(Method::DELETE, &format!("/api/v1/users/{name}"));
            remote.send(req).await.map_err(needs_admin)?;
            if format == Format::Table {
                println!("deleted user {name}");
            }
            Ok(())
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = new_password(password_stdin, &name)?;
            let req = remote
                .request(Method::PUT, &format!("/api/v1/users/{name}/password"))
                .json(&NewPassword {
                    password: password.clone(),
                });
            remote.send(req).await.map_err(needs_admin)?;
            if format == Format::Table {
                println!("changed the password of {name}");
            }
            // Credentials stored for this user would be refused from now on: store the new
            // password in their place.
            match remote.login() {
                Some((login, Source::File(path))) if login.user == name => {
                    let new = Login {
                        user: name,
                        password,
                    };
                    credentials::store(path, &remote.host(), &new)?;
                    if format == Format::Table {
                        println!("updated the credentials stored in {}", path.display());
                    }
                }
                Some((login, Source::Environment)) if login.user == name => {
                    eprintln!("note: SHIPSHAPE_PASSWORD still holds the old password");
                }
                _ => {}
            }
            Ok(())
        }
    }
}

async fn ls(remote: &Remote, format: Format) -> Result<()> {
    let v = remote.get("/api/v1/users").await.map_err(needs_admin)?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let list: UserList = decode(&v)?;
    let mut t = Table::new(&["USER", "ADMIN", "CREATED", "CREATED BY", "LAST LOGIN"]);
    for u in &list.users {
        t.row(vec![
            u.name.clone(),
            if u.admin { "yes" } else { "no" }.into(),
            output::time(u.created_at.as_str()),
            u.created_by.clone(),
            output::time(u.last_login_at.as_deref()),
        ]);
    }
    t.print();
    Ok(())
}

/// A refusal to manage accounts, with what to do about it.
pub(super) fn needs_admin(e: RemoteError) -> RemoteError {
    match e {
        RemoteError::Api {
            status: 403,
            code,
            message,
            detail,
        } => RemoteError::Api {
            status: 403,
            code,
            message: format!(
                "{message}; an administrator must do this (shipshape login -u ADMIN, or \
                 SHIPSHAPE_USERNAME and SHIPSHAPE_PASSWORD)"
            ),
            detail,
        },
        other => other,
    }
}
