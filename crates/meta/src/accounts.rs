//! Accounts: users, robot accounts and role bindings (a role on a repository glob for a user, a
//! robot, or `anonymous`). Secrets are stored only as the hashes `auth` computes; nothing here
//! ever sees a password. Every change moves the `accounts` version, so each node's cached view
//! of who may do what is rebuilt (`auth::Access`).

use crate::db::{execute, rows, values};

use crate::{Conn, MetaError, Millis, Result};

/// A user as stored, with the hash of their password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub password_hash: String,
    /// A registry-wide administrator: manages users, robots and bindings, and may do anything.
    pub admin: bool,
    pub created_at: Millis,
    pub created_by: String,
    pub last_login_at: Option<Millis>,
}

/// A robot account (CI) as stored, with the hash of its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Robot {
    pub id: i64,
    pub name: String,
    pub secret_hash: String,
    pub description: Option<String>,
    pub created_at: Millis,
    pub created_by: String,
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
}

impl Robot {
    /// Whether the robot may log in at `now`: not revoked, not expired.
    pub fn usable(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| now < t)
    }
}

/// A role on the repositories a glob matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Pull.
    Read,
    /// Pull, push, delete and restore tags.
    Write,
    /// Everything on those repositories: delete manifests and repositories, override
    /// protection; on `**`, also run GC and manage policies.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(format!("role {other:?} is not one of read, write, admin")),
        }
    }
}

/// The subject a binding names: `user:ID`, `robot:ID` or `anonymous` (what
/// `Principal::audit_id` gives for accounts).
pub const ANONYMOUS: &str = "anonymous";

/// A role given to a subject on a repository glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub id: i64,
    pub subject: String,
    pub pattern: String,
    pub role: Role,
    pub created_at: Millis,
    pub created_by: String,
}

fn user_from_row(r: &crate::db::Row) -> Result<User> {
    Ok(User {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        password_hash: r.try_get("password_hash")?,
        admin: r.try_get("admin")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        last_login_at: r.try_get("last_login_at")?,
    })
}

fn robot_from_row(r: &crate::db::Row) -> Result<Robot> {
    Ok(Robot {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        secret_hash: r.try_get("secret_hash")?,
        description: r.try_get("description")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

fn binding_from_row(r: &crate::db::Row) -> Result<Binding> {
    let role: &str = r.try_get("role")?;
    Ok(Binding {
        id: r.try_get("id")?,
        subject: r.try_get("subject")?,
        pattern: r.try_get("pattern")?,
        role: role.parse().map_err(MetaError::Corrupt)?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

async fn bump_version(conn: &mut dyn Conn) -> Result<()> {
    crate::versions::bump(conn, "accounts").await
}

/// How many times accounts or bindings have changed; a node caching them at another version
/// reads them again.
pub async fn version(conn: &mut dyn Conn) -> Result<i64> {
    crate::versions::get(conn, "accounts").await
}

/// A new user; `None` when the name is taken.
pub async fn create_user(
    conn: &mut dyn Conn,
    name: &str,
    password_hash: &str,
    admin: bool,
    created_by: &str,
    now: Millis,
) -> Result<Option<i64>> {
    let id: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "INSERT INTO users (name, password_hash, admin, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(password_hash)
    .bind(admin)
    .bind(now)
    .bind(created_by))?;
    if id.is_some() {
        bump_version(conn).await?;
    }
    Ok(id)
}

pub async fn find_user(conn: &mut dyn Conn, name: &str) -> Result<Option<User>> {
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(
        "SELECT * FROM users WHERE name = $1"
    )
    .bind(name))?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn user_by_id(conn: &mut dyn Conn, id: i64) -> Result<Option<User>> {
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(
        "SELECT * FROM users WHERE id = $1"
    )
    .bind(id))?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn list_users(conn: &mut dyn Conn) -> Result<Vec<User>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT * FROM users ORDER BY name"
    ))?;
    rows.iter().map(user_from_row).collect()
}

pub async fn count_users(conn: &mut dyn Conn) -> Result<i64> {
    Ok(values!(conn, fetch_one, |cx| sqlx::query_scalar(
        "SELECT count(*) FROM users"
    ))?)
}

/// Replaces a user's password hash; returns whether the user exists.
pub async fn set_password(conn: &mut dyn Conn, name: &str, password_hash: &str) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query(
        "UPDATE users SET password_hash = $1 WHERE name = $2"
    )
    .bind(password_hash)
    .bind(name))?;
    bump_version(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Makes a user a registry administrator or not; returns whether the user exists.
pub async fn set_admin(conn: &mut dyn Conn, name: &str, admin: bool) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query(
        "UPDATE users SET admin = $1 WHERE name = $2"
    )
    .bind(admin)
    .bind(name))?;
    bump_version(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Removes a user and their bindings; returns whether the user existed.
pub async fn delete_user(conn: &mut dyn Conn, name: &str) -> Result<bool> {
    let id: Option<i64> = values!(conn, fetch_optional, |cx| sqlx::query_scalar(
        "DELETE FROM users WHERE name = $1 RETURNING id"
    )
    .bind(name))?;
    let Some(id) = id else { return Ok(false) };
    execute!(conn, |cx| sqlx::query(
        "DELETE FROM role_bindings WHERE subject = $1"
    )
    .bind(format!("user:{id}")))?;
    bump_version(conn).await?;
    Ok(true)
}

/// Records a successful login (written at most once a minute per user by the caller).
pub async fn touch_user(conn: &mut dyn Conn, id: i64, now: Millis) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "UPDATE users SET last_login_at = $1 WHERE id = $2"
    )
    .bind(now)
    .bind(id))?;
    Ok(())
}

/// A new robot; `None` when the name is taken.
pub async fn create_robot(
    conn: &mut dyn Conn,
    name: &str,
    secret_hash: &str,
    description: Option<&str>,
    expires_at: Option<Millis>,
    created_by: &str,
    now: Millis,
) -> Result<Option<i64>> {
    let id: Option<i64> = values!(conn, fetch_optional, |cx| {
        sqlx::query_scalar(
        "INSERT INTO robots (name, secret_hash, description, created_at, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(secret_hash)
    .bind(description)
    .bind(now)
    .bind(created_by)
    .bind(expires_at)
    })?;
    if id.is_some() {
        bump_version(conn).await?;
    }
    Ok(id)
}

pub async fn find_robot(conn: &mut dyn Conn, name: &str) -> Result<Option<Robot>> {
    let row = rows!(conn, fetch_optional, |cx| sqlx::query(
        "SELECT * FROM robots WHERE name = $1"
    )
    .bind(name))?;
    row.as_ref().map(robot_from_row).transpose()
}

pub async fn list_robots(conn: &mut dyn Conn) -> Result<Vec<Robot>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT * FROM robots ORDER BY name"
    ))?;
    rows.iter().map(robot_from_row).collect()
}

/// Revokes a robot (its tokens stop working at once); returns whether it existed and was not
/// revoked already.
pub async fn revoke_robot(conn: &mut dyn Conn, name: &str, now: Millis) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query(
        "UPDATE robots SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL"
    )
    .bind(now)
    .bind(name))?;
    bump_version(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Records that a robot was used (written at most once a minute per robot by the caller).
pub async fn touch_robot(conn: &mut dyn Conn, id: i64, now: Millis) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "UPDATE robots SET last_used_at = $1 WHERE id = $2"
    )
    .bind(now)
    .bind(id))?;
    Ok(())
}

/// Gives `subject` `role` on `pattern`, replacing the role it had there.
pub async fn bind(
    conn: &mut dyn Conn,
    subject: &str,
    pattern: &str,
    role: Role,
    created_by: &str,
    now: Millis,
) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "INSERT INTO role_bindings (subject, pattern, role, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (subject, pattern) DO UPDATE SET role = excluded.role,
             created_at = excluded.created_at, created_by = excluded.created_by",
    )
    .bind(subject)
    .bind(pattern)
    .bind(role.as_str())
    .bind(now)
    .bind(created_by))?;
    bump_version(conn).await
}

/// Removes a binding; returns whether it existed.
pub async fn unbind(conn: &mut dyn Conn, subject: &str, pattern: &str) -> Result<bool> {
    let done = execute!(conn, |cx| sqlx::query(
        "DELETE FROM role_bindings WHERE subject = $1 AND pattern = $2"
    )
    .bind(subject)
    .bind(pattern))?;
    bump_version(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Every binding, by subject then pattern.
pub async fn bindings(conn: &mut dyn Conn) -> Result<Vec<Binding>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT * FROM role_bindings ORDER BY subject, pattern"
    ))?;
    rows.iter().map(binding_from_row).collect()
}
