//! `shipshape login` and `logout`: check a user's (or robot's) credentials with the registry and
//! keep them in the containers auth file podman and skopeo read, or take them out again; and
//! the password prompts the account commands share (no echo on a terminal, or `--password-stdin`
//! as docker and podman take it).

use std::io::{BufRead, IsTerminal, Read, Write};

use shipshape_server::api::model::accounts::Whoami;

use super::client::decode;
use super::credentials::{self, Login, Source};
use super::output::{self, Format};
use super::{RemoteArgs, RemoteError, Result};

/// `shipshape login [REGISTRY]`
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The registry (`HOST:PORT` or a URL) [default: --registry]
    #[arg(value_name = "REGISTRY")]
    pub server: Option<String>,
    /// User name; a robot's is `robot$NAME` [default: asked on the terminal]
    #[arg(long, short = 'u', value_name = "USER")]
    pub username: Option<String>,
    /// Read the password from stdin (without asking), as `docker login --password-stdin` does
    #[arg(long)]
    pub password_stdin: bool,
}

/// `shipshape logout [REGISTRY]`
#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The registry (`HOST:PORT` or a URL) [default: --registry]
    #[arg(value_name = "REGISTRY")]
    pub server: Option<String>,
}

pub async fn login(args: LoginArgs) -> Result<()> {
    let url = args.server.as_deref().unwrap_or(&args.remote.registry);
    let remote = args.remote.anonymous(url)?;
    let host = remote.host();
    let user = match args.username {
        Some(u) => u,
        None if args.password_stdin => {
            return Err(RemoteError::Usage(
                "--password-stdin reads only the password: give the user name with -u USER".into(),
            ));
        }
        None => ask_line("Username: ")?,
    };
    let password = read_secret(args.password_stdin, "Password: ")?;
    let login = Login { user, password };
    let checked = remote.with_login(Some((login.clone(), Source::Given)));
    let v = match checked.get("/api/v1/whoami").await {
        Ok(v) => v,
        Err(RemoteError::Api { status: 401, .. }) => {
            return Err(refused(&args.remote, url, &host).await);
        }
        Err(e) => return Err(e),
    };
    let who: Whoami = decode(&v)?;
    if who.kind == "anonymous" {
        return Err(RemoteError::Protocol(format!(
            "{host} took the credentials of {} for an anonymous caller; nothing was stored",
            login.user
        )));
    }
    let path = credentials::auth_file().ok_or_else(|| {
        RemoteError::Usage(
            "nowhere to store the credentials: set HOME, or REGISTRY_AUTH_FILE to a file".into(),
        )
    })?;
    credentials::store(&path, &host, &login)?;
    if args.remote.output == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let what = match (who.kind.as_str(), who.admin) {
        (_, true) => "an administrator",
        ("robot", false) => "a robot",
        _ => "a user",
    };
    println!("logged in to {host} as {} ({what})", login.user);
    println!("credentials stored in {}", path.display());
    Ok(())
}

/// Why the registry refused a login, in one line: the credentials are wrong, or there is
/// nothing to log in to yet (no user exists, so access control is off).
async fn refused(args: &RemoteArgs, url: &str, host: &str) -> RemoteError {
    let off = match args.anonymous(url) {
        Ok(r) => r
            .get_json::<Whoami>("/api/v1/whoami")
            .await
            .is_ok_and(|w| !w.access_control),
        Err(_) => false,
    };
    RemoteError::Usage(if off {
        format!(
            "{host} has no users yet, so there is nothing to log in to (access control is off); \
             create the first administrator: shipshape user add --admin NAME --registry {url}"
        )
    } else {
        format!("wrong user name or password for {host}; nothing was stored")
    })
}

pub async fn logout(args: LogoutArgs) -> Result<()> {
    let url = args.server.as_deref().unwrap_or(&args.remote.registry);
    let host = args.remote.anonymous(url)?.host();
    let path = credentials::auth_file().ok_or_else(|| {
        RemoteError::Usage("no auth file to log out of: set HOME or REGISTRY_AUTH_FILE".into())
    })?;
    let removed = credentials::remove(&path, &host)?;
    if args.remote.output == Format::Table {
        if removed {
            println!("removed the credentials for {host} from {}", path.display());
        } else {
            println!("no credentials for {host} in {}", path.display());
        }
    }
    Ok(())
}

/// A password or secret: all of stdin (less its final line break) with `from_stdin`, else
/// asked on the terminal without echo.
pub(super) fn read_secret(from_stdin: bool, prompt: &str) -> Result<String> {
    let secret = if from_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| RemoteError::Usage(format!("cannot read the password from stdin: {e}")))?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        text.strip_suffix('\r').unwrap_or(text).to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(RemoteError::Usage(
                "stdin is not a terminal to ask for the password on: pass --password-stdin and \
                 write the password to stdin"
                    .into(),
            ));
        }
        rpassword::prompt_password(prompt)
            .map_err(|e| RemoteError::Usage(format!("cannot read the password: {e}")))?
    };
    if secret.is_empty() {
        return Err(RemoteError::Usage("the password is empty".into()));
    }
    Ok(secret)
}

/// A new password for `name`: from stdin with `from_stdin`, else asked twice on the terminal.
pub fn new_password(from_stdin: bool, name: &str) -> Result<String> {
    let first = read_secret(from_stdin, &format!("New password for {name}: "))?;
    if !from_stdin {
        let again = read_secret(false, "Again: ")?;
        if again != first {
            return Err(RemoteError::Usage(
                "the two passwords differ; nothing was changed".into(),
            ));
        }
    }
    Ok(first)
}

/// A line typed on the terminal after `prompt`.
fn ask_line(prompt: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(RemoteError::Usage(
            "stdin is not a terminal to ask for the user name on: pass -u USER".into(),
        ));
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| RemoteError::Usage(format!("cannot read the user name: {e}")))?;
    let line = line.trim().to_string();
    if line.is_empty() {
        return Err(RemoteError::Usage("no user name given".into()));
    }
    Ok(line)
}
