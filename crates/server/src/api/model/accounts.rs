//! The bodies of accounts under `/api/v1`: who the caller is (`whoami`), users, robots and
//! role bindings. Times are RFC 3339, as in the rest of the API.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::time;

/// `GET /api/v1/whoami`: who the request's credentials belong to.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct Whoami {
    /// The account's name (a robot's without the `robot$` prefix); `anonymous` without
    /// credentials.
    pub name: String,
    /// `anonymous`, `user`, `robot` or `system`.
    pub kind: String,
    /// Whether access control is on (a user exists).
    pub access_control: bool,
    /// May manage users, robots and roles.
    pub admin: bool,
}

/// A user.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct UserInfo {
    pub name: String,
    /// An administrator: may do anything, including managing accounts.
    pub admin: bool,
    pub created_at: String,
    /// Who added the user (`configuration` for the first administrator from the environment).
    pub created_by: String,
    /// The last password check that succeeded.
    pub last_login_at: Option<String>,
}

impl From<shipshape_auth::UserInfo> for UserInfo {
    fn from(u: shipshape_auth::UserInfo) -> Self {
        UserInfo {
            name: u.name,
            admin: u.admin,
            created_at: time(u.created_at),
            created_by: u.created_by,
            last_login_at: u.last_login_at.map(time),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct UserList {
    pub users: Vec<UserInfo>,
}

/// `POST /api/v1/users`.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1 to 64 lower-case letters, digits, `.`, `_` or `-`, starting with a letter or digit.
    pub name: String,
    pub password: String,
    /// The first user must be an administrator.
    #[serde(default)]
    pub admin: bool,
}

/// `PUT /api/v1/users/{name}/password`: an administrator for anyone, a user for themselves.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: String,
}

/// A robot account (never its secret).
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RobotInfo {
    pub name: String,
    /// What it logs in as: `robot$NAME`.
    pub login: String,
    pub description: Option<String>,
    /// `active`, `expired` or `revoked`, as of the answer.
    pub state: String,
    pub created_at: String,
    pub created_by: String,
    /// Absent: it does not expire.
    pub expires_at: Option<String>,
    /// Its secret and tokens stopped working then.
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl RobotInfo {
    /// The robot as the API shows it at `now` (milliseconds since the epoch), which decides
    /// whether it has expired.
    pub fn at(r: shipshape_auth::RobotInfo, now: i64) -> Self {
        let state = match (r.revoked_at, r.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(at)) if at <= now => "expired",
            _ => "active",
        };
        RobotInfo {
            name: r.name,
            login: r.login,
            description: r.description,
            state: state.into(),
            created_at: time(r.created_at),
            created_by: r.created_by,
            expires_at: r.expires_at.map(time),
            revoked_at: r.revoked_at.map(time),
            last_used_at: r.last_used_at.map(time),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RobotList {
    pub robots: Vec<RobotInfo>,
}

/// A role on the repositories a pattern matches.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct RoleOn {
    /// A repository glob: `*` and `?` stay within a path segment, `**` crosses them.
    pub pattern: String,
    /// `read`, `write` or `admin`.
    pub role: String,
}

/// `POST /api/v1/robots`.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewRobot {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How long it may be used (`90d`, `12h`); forever when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
    #[serde(default)]
    pub roles: Vec<RoleOn>,
}

/// The answer to `POST /api/v1/robots`: the robot, and its secret, shown this once (only its
/// hash is kept).
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct NewRobotReply {
    #[serde(flatten)]
    pub robot: RobotInfo,
    pub secret: String,
}

/// A role binding, its subject by name.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct BindingInfo {
    /// `user:NAME`, `robot:NAME` or `anonymous`.
    pub subject: String,
    pub pattern: String,
    /// `read`, `write` or `admin`.
    pub role: String,
    pub created_at: String,
    pub created_by: String,
}

impl From<shipshape_auth::BindingInfo> for BindingInfo {
    fn from(b: shipshape_auth::BindingInfo) -> Self {
        BindingInfo {
            subject: b.subject,
            pattern: b.pattern,
            role: b.role,
            created_at: time(b.created_at),
            created_by: b.created_by,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RoleList {
    pub roles: Vec<BindingInfo>,
}

/// `POST /api/v1/roles`: gives a subject a role on a pattern.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// `user:NAME`, `robot:NAME` or `anonymous` (which may only be given `read`).
    pub subject: String,
    pub pattern: String,
    /// `read`, `write` or `admin`.
    pub role: String,
}

/// The query string of `DELETE /api/v1/roles`: the binding to remove.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RevokeQuery {
    pub subject: String,
    pub pattern: String,
}
