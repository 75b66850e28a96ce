//! Who may do what: a snapshot of the accounts and role bindings, and the grants it gives each
//! principal. Pure once loaded: `View::may` answers from the snapshot alone.

use std::collections::HashMap;

use shipshape_meta::accounts::{Binding, Role};
use shipshape_meta::principal::Permission;
use shipshape_meta::{Millis, accounts};
use shipshape_oci::RepoGlob;

/// An account a request acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Account {
    Anonymous,
    User { id: i64, name: String, admin: bool },
    Robot { id: i64, name: String },
}

impl Account {
    /// The subject bindings and tokens name: `user:ID`, `robot:ID` or `anonymous`.
    pub fn subject(&self) -> String {
        match self {
            Account::Anonymous => accounts::ANONYMOUS.into(),
            Account::User { id, .. } => format!("user:{id}"),
            Account::Robot { id, .. } => format!("robot:{id}"),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Account::Anonymous => "anonymous",
            Account::User { name, .. } | Account::Robot { name, .. } => name,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct RobotState {
    pub name: String,
    pub expires_at: Option<Millis>,
    pub revoked: bool,
}

/// The accounts and bindings as the catalogue had them at `version`.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub(crate) version: i64,
    /// Access control is on once any user exists.
    pub(crate) enabled: bool,
    pub(crate) users: HashMap<i64, (String, bool)>,
    pub(crate) robots: HashMap<i64, RobotState>,
    bindings: Vec<(String, RepoGlob, Role)>,
}

impl View {
    pub(crate) fn new(
        version: i64,
        users: Vec<accounts::User>,
        robots: Vec<accounts::Robot>,
        bindings: Vec<Binding>,
    ) -> View {
        View {
            version,
            enabled: !users.is_empty(),
            users: users
                .into_iter()
                .map(|u| (u.id, (u.name, u.admin)))
                .collect(),
            robots: robots
                .into_iter()
                .map(|r| {
                    (
                        r.id,
                        RobotState {
                            name: r.name,
                            expires_at: r.expires_at,
                            revoked: r.revoked_at.is_some(),
                        },
                    )
                })
                .collect(),
            bindings: bindings
                .into_iter()
                // A pattern that no longer compiles grants nothing (it was checked when bound).
                .filter_map(|b| Some((b.subject, RepoGlob::parse(&b.pattern).ok()?, b.role)))
                .collect(),
        }
    }

    /// The account as it stands now, or `None` when it was removed, revoked or has expired.
    pub fn current(&self, account: &Account, now: Millis) -> Option<Account> {
        match account {
            Account::Anonymous => Some(Account::Anonymous),
            Account::User { id, .. } => self.users.get(id).map(|(name, admin)| Account::User {
                id: *id,
                name: name.clone(),
                admin: *admin,
            }),
            Account::Robot { id, .. } => self.robots.get(id).and_then(|r| {
                (!r.revoked && r.expires_at.is_none_or(|t| now < t)).then(|| Account::Robot {
                    id: *id,
                    name: r.name.clone(),
                })
            }),
        }
    }

    /// The highest role `account` holds on `repo`, counting what anonymous callers hold too.
    pub fn role_on(&self, account: &Account, repo: &str) -> Option<Role> {
        let subject = account.subject();
        self.bindings
            .iter()
            .filter(|(s, glob, _)| {
                (*s == subject || s == accounts::ANONYMOUS) && glob.matches(repo)
            })
            .map(|(_, _, role)| *role)
            .max()
    }

    /// Whether `account` holds `role` on every repository (a binding on `**`).
    fn role_everywhere(&self, account: &Account) -> Option<Role> {
        let subject = account.subject();
        self.bindings
            .iter()
            .filter(|(s, glob, _)| *s == subject && glob.as_str() == "**")
            .map(|(_, _, role)| *role)
            .max()
    }

    /// Whether `account` may do `what` on `repo` (`None`: registry-wide).
    pub fn may(&self, account: &Account, what: Permission, repo: Option<&str>) -> bool {
        if !self.enabled {
            return true;
        }
        if let Account::User { admin: true, .. } = account {
            return true;
        }
        let needed = match what {
            Permission::Pull => Role::Read,
            Permission::Push => Role::Write,
            Permission::Delete | Permission::OverrideProtection => Role::Admin,
            Permission::CollectGarbage
            | Permission::ManagePolicies
            | Permission::SeeRegistryWide => {
                return self.role_everywhere(account) == Some(Role::Admin);
            }
            Permission::ManageAccounts => return false,
        };
        let held = match repo {
            Some(repo) => self.role_on(account, repo),
            None => self.role_everywhere(account),
        };
        held.is_some_and(|r| r >= needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> View {
        let user = |id, name: &str, admin| accounts::User {
            id,
            name: name.into(),
            password_hash: String::new(),
            admin,
            created_at: 0,
            created_by: "t".into(),
            last_login_at: None,
        };
        let bind = |subject: &str, pattern: &str, role| Binding {
            id: 0,
            subject: subject.into(),
            pattern: pattern.into(),
            role,
            created_at: 0,
            created_by: "t".into(),
        };
        let robot = accounts::Robot {
            id: 7,
            name: "ci".into(),
            secret_hash: String::new(),
            description: None,
            created_at: 0,
            created_by: "t".into(),
            expires_at: Some(1_000),
            revoked_at: None,
            last_used_at: None,
        };
        View::new(
            1,
            vec![
                user(1, "root", true),
                user(2, "dev", false),
                user(3, "ops", false),
            ],
            vec![robot],
            vec![
                bind("user:2", "team-a/**", Role::Write),
                bind("user:2", "team-a/prod/**", Role::Read),
                bind("user:3", "**", Role::Admin),
                bind("robot:7", "team-a/app", Role::Write),
                bind("anonymous", "public/**", Role::Read),
            ],
        )
    }

    #[test]
    fn roles_follow_the_repository_tree_and_the_highest_wins() {
        let v = view();
        let dev = Account::User {
            id: 2,
            name: "dev".into(),
            admin: false,
        };
        assert!(v.may(&dev, Permission::Push, Some("team-a/web")));
        assert!(
            v.may(&dev, Permission::Push, Some("team-a/prod/web")),
            "write on team-a/** covers it"
        );
        assert!(!v.may(&dev, Permission::Delete, Some("team-a/web")));
        assert!(!v.may(&dev, Permission::Pull, Some("team-b/web")));
        assert!(
            v.may(&dev, Permission::Pull, Some("public/x")),
            "what anonymous may, everyone may"
        );
        assert!(!v.may(&dev, Permission::CollectGarbage, None));
        let ops = Account::User {
            id: 3,
            name: "ops".into(),
            admin: false,
        };
        assert!(v.may(&ops, Permission::Delete, Some("any/repo")));
        assert!(v.may(&ops, Permission::CollectGarbage, None));
        assert!(v.may(&ops, Permission::SeeRegistryWide, None));
        assert!(
            !v.may(&dev, Permission::SeeRegistryWide, None),
            "write on a subtree is not registry-wide"
        );
        assert!(!v.may(&ops, Permission::ManageAccounts, None));
        let root = Account::User {
            id: 1,
            name: "root".into(),
            admin: true,
        };
        assert!(v.may(&root, Permission::ManageAccounts, None));
        assert!(!v.may(&Account::Anonymous, Permission::Pull, Some("team-a/web")));
        assert!(v.may(&Account::Anonymous, Permission::Pull, Some("public/a/b")));
        assert!(!v.may(&Account::Anonymous, Permission::Push, Some("public/a")));
    }

    #[test]
    fn revoked_expired_and_removed_accounts_are_gone() {
        let v = view();
        let robot = Account::Robot {
            id: 7,
            name: "ci".into(),
        };
        assert!(v.current(&robot, 999).is_some());
        assert!(v.current(&robot, 1_000).is_none(), "expired");
        let gone = Account::User {
            id: 9,
            name: "x".into(),
            admin: false,
        };
        assert!(v.current(&gone, 0).is_none());
        // An admin flag in an old token does not outlive the account's.
        let claimed = Account::User {
            id: 2,
            name: "dev".into(),
            admin: true,
        };
        assert_eq!(
            v.current(&claimed, 0),
            Some(Account::User {
                id: 2,
                name: "dev".into(),
                admin: false
            })
        );
    }

    #[test]
    fn without_users_everything_is_allowed() {
        let v = View::default();
        assert!(v.may(&Account::Anonymous, Permission::Delete, Some("a")));
    }
}
