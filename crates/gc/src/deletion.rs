//! The one path by which tags and untagged manifests are removed, whoever removes them: the
//! server's deletion services for users, and policy runs. A removal checks protection (and the
//! principal's permission to override it), makes the change and writes the activity log, all
//! in the caller's transaction, so the rules and the audit apply once, to everyone.

use shipshape_meta::manifests::{self, ManifestHead};
use shipshape_meta::principal::{Permission, Principal};
use shipshape_meta::repos::RepoId;
use shipshape_meta::tags::{self, By};
use shipshape_meta::{Conn, MetaError, events};
use shipshape_oci::{Digest, RepoName, Tag};

use crate::retention::Policies;

/// The reason recorded when a protection is overridden.
pub const OVERRIDDEN: &str = events::OVERRIDDEN;

/// Why a removal was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    #[error("tag {tag} is protected by policy {policy} (pattern {pattern})")]
    Protected {
        tag: String,
        policy: String,
        pattern: String,
    },
    #[error("{who} may not override tag protection")]
    Denied { who: String },
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// A repository as removals name it: by name for the log, by row id for the catalogue.
#[derive(Clone, Copy, Debug)]
pub struct Repo<'a> {
    pub name: &'a RepoName,
    pub id: RepoId,
}

/// Refuses a change to `tag` when a policy protects it, unless `override_protection` asks to
/// go over the protection and `by` may (`Permission::OverrideProtection`). Returns whether the
/// change goes ahead over a protection, to say so in the log. The applied policies are
/// refreshed first, in the caller's transaction, so a policy another node applied counts.
pub async fn guard(
    conn: &mut dyn Conn,
    policies: &Policies,
    repo: &RepoName,
    tag: &str,
    by: &Principal,
    override_protection: bool,
) -> Result<bool, DeletionError> {
    policies.refresh(conn).await?;
    let protection = policies.protection(repo.as_str());
    match protection.protects(tag) {
        None => Ok(false),
        Some(_) if override_protection => {
            if by.may(Permission::OverrideProtection, Some(repo.as_str())) {
                Ok(true)
            } else {
                Err(DeletionError::Denied {
                    who: by.name.clone(),
                })
            }
        }
        Some((policy, pattern)) => Err(DeletionError::Protected {
            tag: tag.to_string(),
            policy: policy.to_string(),
            pattern: pattern.as_str().to_string(),
        }),
    }
}

/// Removes one tag (its image stays restorable for the window: `tags::delete` writes the
/// history) and records it with `reason`. Returns the digest it pointed at, or `None` when
/// there was no such tag. The caller has guarded it.
pub async fn remove_tag(
    conn: &mut dyn Conn,
    repo: Repo<'_>,
    tag: &Tag,
    by: &By<'_>,
    reason: Option<&str>,
) -> Result<Option<Digest>, MetaError> {
    let Some(digest) = tags::delete(conn, repo.id, tag, by).await? else {
        return Ok(None);
    };
    events::record(
        conn,
        &events::NewEvent {
            repository: Some(repo.name.as_str()),
            target: Some(tag.as_str()),
            digest: Some(digest.to_string()),
            reason,
            ..events::NewEvent::new(by.principal, events::Action::TagDelete)
        },
        by.now,
    )
    .await?;
    Ok(Some(digest))
}

/// Deletes a manifest no tag points at (it stays restorable for the window) and records it
/// with `reason`.
pub async fn remove_untagged(
    conn: &mut dyn Conn,
    repo: Repo<'_>,
    manifest: &ManifestHead,
    by: &By<'_>,
    reason: Option<&str>,
) -> Result<(), MetaError> {
    manifests::soft_delete(conn, manifest.id, by.now).await?;
    events::record(
        conn,
        &events::NewEvent {
            repository: Some(repo.name.as_str()),
            digest: Some(manifest.digest.to_string()),
            reason,
            ..events::NewEvent::new(by.principal, events::Action::ManifestDelete)
        },
        by.now,
    )
    .await
}
