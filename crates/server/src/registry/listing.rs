//! Listings: tags of a repository, the repository catalogue, and referrers of a manifest.

use shipshape_meta::manifests::{self, Referrer};
use shipshape_meta::{repos, tags};
use shipshape_oci::{Digest, RepoName};

use super::{Permission, Principal};
use super::{Registry, RegistryError, Result};

/// One page of a sorted listing; `more` says whether entries remain after it.
pub struct Page {
    pub items: Vec<String>,
    pub more: bool,
}

/// Referrers of a subject, and whether an artifact-type filter was applied.
pub struct ReferrerList {
    pub referrers: Vec<Referrer>,
    pub filtered: bool,
}

/// Largest page served; a larger `n` is clamped and the client follows `Link`.
pub const MAX_PAGE: u64 = 10_000;

fn page(mut items: Vec<String>, limit: Option<u64>) -> Page {
    let more = limit.is_some_and(|n| items.len() as u64 > n);
    if let Some(n) = limit {
        items.truncate(n as usize);
    }
    Page { items, more }
}

/// The SQL limit: one more than asked, to know whether more remain; -1 means all.
fn sql_limit(n: Option<u64>) -> i64 {
    n.map(|n| n as i64 + 1).unwrap_or(-1)
}

impl Registry {
    /// Tags of a repository in byte order, after `last`, at most `n`.
    pub async fn list_tags(
        &self,
        repo: &RepoName,
        n: Option<u64>,
        last: Option<&str>,
    ) -> Result<Page> {
        let n = n.map(|n| n.min(MAX_PAGE));
        let mut conn = self.catalogue.reader().await?;
        let items = tags::list_in_named(&mut conn, repo, last, sql_limit(n))
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.clone()))?;
        Ok(page(items, n))
    }

    /// Repository names in byte order, after `last`, at most `n`.
    pub async fn list_repositories(&self, n: Option<u64>, last: Option<&str>) -> Result<Page> {
        let n = n.map(|n| n.min(MAX_PAGE));
        let mut conn = self.catalogue.reader().await?;
        let items = repos::list(&mut conn, last, sql_limit(n)).await?;
        Ok(page(items, n))
    }

    /// `list_repositories` with only the repositories `actor` may read.
    pub async fn list_repositories_for(
        &self,
        actor: &Principal,
        n: Option<u64>,
        last: Option<&str>,
    ) -> Result<Page> {
        if actor.may(Permission::Pull, None) {
            return self.list_repositories(n, last).await;
        }
        const BATCH: i64 = 1_000;
        let n = n.map(|n| n.min(MAX_PAGE));
        let mut conn = self.catalogue.reader().await?;
        let (mut items, mut cursor) = (Vec::new(), last.map(str::to_string));
        loop {
            let batch = repos::list(&mut conn, cursor.as_deref(), BATCH).await?;
            let exhausted = (batch.len() as i64) < BATCH;
            cursor = batch.last().cloned();
            items.extend(
                batch
                    .into_iter()
                    .filter(|r| actor.may(Permission::Pull, Some(r))),
            );
            if exhausted || n.is_some_and(|n| items.len() as u64 > n) {
                return Ok(page(items, n));
            }
        }
    }

    /// Manifests of `repo` whose subject is `subject`. An unknown repository or subject simply
    /// has none.
    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<ReferrerList> {
        let mut conn = self.catalogue.reader().await?;
        let referrers = match repos::find(&mut conn, repo).await? {
            Some(repo_id) => {
                manifests::referrers(&mut conn, repo_id, subject, artifact_type).await?
            }
            None => Vec::new(),
        };
        Ok(ReferrerList {
            referrers,
            filtered: artifact_type.is_some(),
        })
    }
}
