//! Protected (immutable) tags: a tag matching a protected pattern of a policy that covers its
//! repository keeps the manifest it was first pushed with. Overwriting or deleting it is
//! refused unless the caller explicitly overrides the protection (an admin action; until
//! authentication exists, the override flag of the management API), and the activity log says
//! so when it happens.

use shipshape_gc::deletion::{self, DeletionError};
use shipshape_meta::Conn;
use shipshape_oci::RepoName;

use super::{Permission, Principal, Registry, RegistryError, Result};

/// The reason recorded when a protection is overridden.
pub(super) const OVERRIDDEN: &str = deletion::OVERRIDDEN;

impl Registry {
    /// Refuses unless `actor` may do `what` on `repo`: the one place a registry service asks.
    pub(super) fn require(
        &self,
        actor: &Principal,
        what: Permission,
        repo: &RepoName,
        words: &'static str,
    ) -> Result<()> {
        if actor.may(what, Some(repo.as_str())) {
            Ok(())
        } else {
            Err(RegistryError::Denied {
                who: actor.name.clone(),
                what: words,
            })
        }
    }

    /// Refuses a change to `tag` when it is protected, unless `override_protection` asks to go
    /// over it and `actor` may (`Permission::OverrideProtection`). Returns whether the change
    /// goes ahead over a protection (to say so in the log). The same guard policy runs pass
    /// (`shipshape_gc::deletion::guard`).
    pub(super) async fn guard_tag(
        &self,
        conn: &mut dyn Conn,
        repo: &RepoName,
        tag: &str,
        actor: &Principal,
        override_protection: bool,
    ) -> Result<bool> {
        deletion::guard(conn, &self.policies, repo, tag, actor, override_protection)
            .await
            .map_err(|e| match e {
                DeletionError::Protected {
                    tag,
                    policy,
                    pattern,
                } => RegistryError::Protected {
                    tag,
                    policy,
                    pattern,
                },
                DeletionError::Denied { who } => RegistryError::Denied {
                    who,
                    what: "override tag protection",
                },
                DeletionError::Meta(e) => e.into(),
            })
    }

    /// `guard_tag` for several tags at once (a manifest or repository delete takes them all).
    pub(super) async fn guard_tags(
        &self,
        conn: &mut dyn Conn,
        repo: &RepoName,
        tags: &[&str],
        actor: &Principal,
        override_protection: bool,
    ) -> Result<bool> {
        let mut overridden = false;
        for t in tags {
            overridden |= self
                .guard_tag(conn, repo, t, actor, override_protection)
                .await?;
        }
        Ok(overridden)
    }
}
