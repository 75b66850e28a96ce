//! Pull tracking, cheap: pulls are counted in memory and written in one transaction per flush
//! (every `flush_interval`, and at shutdown). A crash loses at most one interval of counts; the
//! pulls themselves are never affected. An interval of zero writes every pull at once.

use std::collections::HashMap;
use std::sync::Mutex;

use shipshape_meta::{Millis, commit, manifests, repos, tags};
use shipshape_oci::{Digest, RepoName};

use super::{Registry, Result};

/// What was pulled: repository, the tag if the client named one, and the manifest.
type PullKey = (RepoName, Option<String>, Digest);

#[derive(Default, Debug)]
pub(super) struct PullCounts {
    /// Pull count and latest pull time per key since the last flush.
    pending: Mutex<HashMap<PullKey, (i64, Millis)>>,
}

impl Registry {
    /// Notes a pull of a manifest, by tag when the client named one.
    pub async fn record_pull(&self, repo: &RepoName, tag: Option<&str>, digest: &Digest) {
        let now = self.now();
        {
            let mut pending = self.pulls.pending.lock().expect("pull counts");
            let entry = pending
                .entry((repo.clone(), tag.map(str::to_string), digest.clone()))
                .or_insert((0, now));
            entry.0 += 1;
            entry.1 = entry.1.max(now);
        }
        if self.options.pull_flush_interval.is_zero()
            && let Err(e) = self.flush_pulls().await
        {
            tracing::warn!(error = %e, "recording pulls failed");
        }
    }

    /// Writes the pulls counted since the last flush.
    pub async fn flush_pulls(&self) -> Result<()> {
        let batch: Vec<_> = self
            .pulls
            .pending
            .lock()
            .expect("pull counts")
            .drain()
            .collect();
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.catalogue.begin().await?;
        tx.leaves_figures();
        for ((repo, tag, digest), (count, last)) in batch {
            let Some(repo_id) = repos::find(&mut tx, &repo).await? else {
                continue;
            };
            manifests::record_pulls(&mut tx, repo_id, &digest, count, last).await?;
            if let Some(tag) = tag {
                tags::record_pulls(&mut tx, repo_id, &tag, count, last).await?;
            }
        }
        commit(tx).await?;
        Ok(())
    }
}
