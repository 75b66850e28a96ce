//! Who acts: the one identity every service call takes, reads included, and what the activity
//! log, tag history, batches and runs record of it. Access control decides what a principal may
//! do (`Grants`); until it exists, every caller is the anonymous principal with every
//! permission, and the seam is what matters.

use std::fmt;
use std::sync::Arc;

/// What kind of identity acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A request that presented no credentials.
    Anonymous,
    /// A person's account.
    User,
    /// A robot account (CI).
    Robot,
    /// The registry itself: the scheduler, the collector, housekeeping.
    System,
}

/// The registry's own actors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum System {
    /// Starts scheduled policy runs.
    Scheduler,
    /// The online collector's background passes.
    Collector,
    /// Start-up recovery, pruning and other upkeep.
    Housekeeping,
    /// A command run against the data directory (`shipshape check --repair`).
    Operator,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Scheduler => "scheduler",
            System::Collector => "collector",
            System::Housekeeping => "housekeeping",
            System::Operator => "operator",
        }
    }
}

/// Something a principal may or may not do. Each is checked by the service that does it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read manifests, blobs, tags and figures.
    Pull,
    /// Upload blobs, push manifests and tags, delete and restore tags.
    Push,
    /// Delete manifests and repositories.
    Delete,
    /// Overwrite or delete a tag a policy protects.
    OverrideProtection,
    /// Start and cancel garbage collection.
    CollectGarbage,
    /// Apply, remove and run retention policies.
    ManagePolicies,
    /// Create and remove users and robots, and give roles.
    ManageAccounts,
    /// See what names no repository: the activity log's account, policy and collection
    /// entries, and a collection run's items that belong to no repository. Asked registry-wide
    /// (`None`); repositories' own entries need `Pull` on each.
    SeeRegistryWide,
}

/// Access control's answer to "may this principal do this, here?" (`None`: registry-wide).
pub type Decider = dyn Fn(Permission, Option<&str>) -> bool + Send + Sync;

/// What a principal may do, and where. Access control will add grants on repository patterns.
#[derive(Clone)]
pub enum Grants {
    /// Every permission on every repository: the anonymous caller before access control, and
    /// the registry's own actors.
    Everything,
    /// Decided by access control for each permission and repository (`None`: registry-wide).
    Decide(Arc<Decider>),
}

impl fmt::Debug for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grants::Everything => f.write_str("Everything"),
            Grants::Decide(_) => f.write_str("Decide(..)"),
        }
    }
}

/// The name an anonymous caller acts under, in the activity log and the request log.
pub const ANONYMOUS_NAME: &str = "anonymous";

/// An identity acting on the registry, with the source of its request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub kind: Kind,
    /// The account's row id (users and robots); `None` for the others.
    pub id: Option<i64>,
    /// The name the log shows, kept as it was when the action happened.
    pub name: String,
    /// Where the request came from (the client's address), when it came over the network.
    pub source: Option<String>,
    pub grants: Grants,
}

impl Principal {
    /// A caller that presented no credentials. Until access control exists it may do
    /// everything.
    pub fn anonymous(source: Option<String>) -> Self {
        Principal {
            kind: Kind::Anonymous,
            id: None,
            name: ANONYMOUS_NAME.into(),
            source,
            grants: Grants::Everything,
        }
    }

    /// One of the registry's own actors.
    pub fn system(which: System) -> Self {
        Principal {
            kind: Kind::System,
            id: None,
            name: which.name().into(),
            source: None,
            grants: Grants::Everything,
        }
    }

    /// Whether this principal may do `what` on `repository` (`None`: registry-wide).
    pub fn may(&self, what: Permission, repository: Option<&str>) -> bool {
        match &self.grants {
            Grants::Everything => true,
            Grants::Decide(f) => f(what, repository),
        }
    }

    /// The stable identity the audit columns keep beside the name: `user:ID`, `robot:ID`,
    /// `system:NAME`, or `None` for an anonymous caller.
    pub fn audit_id(&self) -> Option<String> {
        match (self.kind, self.id) {
            (Kind::User, Some(id)) => Some(format!("user:{id}")),
            (Kind::Robot, Some(id)) => Some(format!("robot:{id}")),
            (Kind::System, _) => Some(format!("system:{}", self.name)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_ids_name_the_kind_and_the_account() {
        assert_eq!(Principal::anonymous(None).audit_id(), None);
        assert_eq!(
            Principal::system(System::Scheduler).audit_id().as_deref(),
            Some("system:scheduler")
        );
        let mut robot = Principal::anonymous(Some("10.0.0.1".into()));
        (robot.kind, robot.id, robot.name) = (Kind::Robot, Some(7), "ci".into());
        assert_eq!(robot.audit_id().as_deref(), Some("robot:7"));
    }

    #[test]
    fn grants_decide_per_permission_and_repository() {
        let mut p = Principal::anonymous(None);
        assert!(p.may(Permission::OverrideProtection, Some("a/b")));
        p.grants = Grants::Decide(Arc::new(|what, repo| {
            what == Permission::Pull && repo.is_some_and(|r| r.starts_with("team/"))
        }));
        assert!(p.may(Permission::Pull, Some("team/web")));
        assert!(!p.may(Permission::Pull, Some("other/web")));
        assert!(!p.may(Permission::Push, Some("team/web")));
    }
}
