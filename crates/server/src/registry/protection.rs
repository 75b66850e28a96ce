//! Protected (immutable) tags: a tag matching a protected pattern of a policy that covers its
//! repository keeps the manifest it was first pushed with. Overwriting or deleting it is
//! refused unless the caller explicitly overrides the protection (an admin action; until
//! authentication exists, the override flag of the management API), and the activity log says
//! so when it happens.

use shipshape_meta::Conn;
use shipshape_oci::RepoName;

use super::{Permission, Principal, Registry, RegistryError, Result};

/// The reason recorded when a protection is overridden.
pub(super) const OVERRIDDEN: &str = "protection overridden";

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
    /// goes ahead over a protection (to say so in the log).
    pub(super) async fn guard_tag(
        &self,
        conn: &mut dyn Conn,
        repo: &RepoName,
        tag: &str,
        actor: &Principal,
        override_protection: bool,
    ) -> Result<bool> {
        self.policies.refresh(conn).await?;
        let protection = self.policies.protection(repo.as_str());
        match protection.protects(tag) {
            None => Ok(false),
            Some(_) if override_protection => {
                if actor.may(Permission::OverrideProtection, Some(repo.as_str())) {
                    Ok(true)
                } else {
                    Err(RegistryError::Denied {
                        who: actor.name.clone(),
                        what: "override tag protection",
                    })
                }
            }
            Some((policy, pattern)) => Err(RegistryError::Protected {
                tag: tag.to_string(),
                policy: policy.to_string(),
                pattern: pattern.as_str().to_string(),
            }),
        }
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
