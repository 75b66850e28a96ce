//! Protected (immutable) tags: a tag matching a protected pattern of a policy that covers its
//! repository keeps the manifest it was first pushed with. Overwriting or deleting it is
//! refused unless the caller explicitly overrides the protection (an admin action; until
//! authentication exists, the override flag of the management API), and the activity log says
//! so when it happens.

use shipshape_meta::Conn;
use shipshape_oci::RepoName;

use super::{Registry, RegistryError, Result};

/// The reason recorded when a protection is overridden.
pub(super) const OVERRIDDEN: &str = "protection overridden";

impl Registry {
    /// Refuses a change to `tag` when it is protected and `override_protection` is not set.
    /// Returns whether the change goes ahead over a protection (to say so in the log).
    pub(super) async fn guard_tag(
        &self,
        conn: &mut dyn Conn,
        repo: &RepoName,
        tag: &str,
        override_protection: bool,
    ) -> Result<bool> {
        self.policies.refresh(conn).await?;
        let protection = self.policies.protection(repo.as_str());
        match protection.protects(tag) {
            None => Ok(false),
            Some(_) if override_protection => Ok(true),
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
        override_protection: bool,
    ) -> Result<bool> {
        let mut overridden = false;
        for t in tags {
            overridden |= self.guard_tag(conn, repo, t, override_protection).await?;
        }
        Ok(overridden)
    }
}
