//! Applying policies to the registry: storing them, previewing them, running them by hand or
//! on schedule.
//!
//! A run evaluates each repository in the policy's scope in its own transaction and deletes
//! what the rules decide through the same catalogue calls as a user's deletion: tag history
//! (so the tag is restorable for the restore window), the activity log with the policy and rule
//! as the reason, and the collector's review queues (so the space is reclaimed online). A
//! preview is the same code in transactions that are rolled back, so a preview at instant T and
//! a run at T decide the same set.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use shipshape_meta::policies::Trigger;
use shipshape_meta::policies::{
    self as q, ItemKind, NewRun, PolicyRun, RunFigures, RunItem, StoredPolicy,
};
use shipshape_meta::principal::{Permission, Principal, System};
use shipshape_oci::RepoName;

use crate::deletion;
use shipshape_meta::runs::RunState;
use shipshape_meta::{Catalogue, Clock, Conn, MetaError, Millis, commit, events, manifests};
use shipshape_meta::{batches, repos, tags, usage};
use shipshape_oci::Tag;
use tokio::sync::watch;

use super::{
    Pattern, Policy, PolicyError, PolicySpec, Protection, RepoPattern, TagFacts, UntaggedFacts,
    evaluate,
};
use crate::{Checkpoint, Collector};

/// Why a policy operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("{0}")]
    Invalid(#[from] PolicyError),
    #[error("policy {0} does not exist")]
    NotFound(String),
    #[error("policy run {0} does not exist")]
    RunNotFound(i64),
    #[error("policy {policy} is already running (run {active}); cancel it or wait for it to end")]
    RunActive { policy: String, active: i64 },
    #[error("deletion is disabled on this registry; a policy can be previewed but not run")]
    DeletionDisabled,
    #[error("catalogue: {0}")]
    Meta(#[from] MetaError),
    /// The principal may not do this (`Principal::may`).
    #[error("{who} may not {what}")]
    Denied { who: String, what: &'static str },
}

pub type Result<T> = std::result::Result<T, RetentionError>;

/// The applied policies, compiled, shared by the runner and by the registry (which refuses to
/// overwrite or delete protected tags). A node-local cache of what the catalogue holds: every
/// change of the policies moves a version in the catalogue, and `refresh` (which the registry
/// calls in the transaction of each guarded change) compiles them again when it has moved, so
/// a policy applied through one node protects tags on every node at once.
#[derive(Clone, Debug, Default)]
pub struct Policies(Arc<RwLock<Compiled>>);

#[derive(Debug, Default)]
struct Compiled {
    /// The catalogue's version of the policies these were compiled from (`None`: never).
    version: Option<i64>,
    all: Arc<Vec<Policy>>,
}

impl Policies {
    pub fn snapshot(&self) -> Arc<Vec<Policy>> {
        self.0.read().expect("policies").all.clone()
    }

    /// Compiles the stored policies again if they changed since they were last compiled, on
    /// the caller's connection (usually the transaction about to change a tag).
    pub async fn refresh(&self, conn: &mut dyn Conn) -> std::result::Result<(), MetaError> {
        let version = q::version(conn).await?;
        if self.0.read().expect("policies").version == Some(version) {
            return Ok(());
        }
        let stored = q::list(conn).await?;
        let mut all = Vec::with_capacity(stored.len());
        for p in &stored {
            match compile(p) {
                Ok(c) => all.push(c),
                Err(e) => {
                    tracing::error!(policy = %p.name, error = %e, "stored policy no longer validates; it is not applied")
                }
            }
        }
        *self.0.write().expect("policies") = Compiled {
            version: Some(version),
            all: Arc::new(all),
        };
        Ok(())
    }

    /// The protected tag patterns that apply to a repository, from every policy covering it.
    pub fn protection(&self, repo: &str) -> Protection {
        Protection::for_repository(self.snapshot().iter(), repo)
    }
}

/// Compiles a stored policy. A stored document was valid when applied; one that no longer
/// validates (a later release tightened a rule) is reported, not silently skipped.
fn compile(p: &StoredPolicy) -> std::result::Result<Policy, PolicyError> {
    PolicySpec::from_json(&p.document)?.validate()
}

/// The decision on one tag or untagged manifest, with the digest it concerns.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ItemDecision {
    pub kind: ItemKind,
    /// The tag name, or the manifest digest.
    pub target: String,
    pub digest: String,
    pub delete: bool,
    pub rule: String,
    pub reason: String,
}

/// What a policy decides for one repository.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RepositoryDecisions {
    pub repository: String,
    pub decisions: Vec<ItemDecision>,
    /// Bytes these deletions take out of use that stay restorable for the restore window (the
    /// collector frees them once it has passed).
    pub bytes_held: u64,
    /// Bytes these deletions take out of use that the collector frees at once (no window).
    pub bytes_freed: u64,
}

/// A preview of a policy at one instant.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Preview {
    pub policy: String,
    pub evaluated_at: Millis,
    pub repositories: Vec<RepositoryDecisions>,
    pub figures: PreviewFigures,
}

pub type PreviewFigures = RunFigures;

/// A repository that patterns under test match ([`Retention::matching`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Matched {
    pub repository: String,
    /// Its tags the tag pattern matches, in name order.
    pub tags: Vec<String>,
    /// How many tags it has in all.
    pub tags_total: usize,
}

/// Stores, previews and runs retention policies.
#[derive(Clone, Debug)]
pub struct Retention {
    catalogue: Catalogue,
    clock: Arc<dyn Clock>,
    policies: Policies,
    /// Off when the operator disabled deletion: runs are refused, previews still work.
    deletion_enabled: bool,
    /// The collector, whose rules say what the deletions take out of use.
    collector: Collector,
    checkpoint: Checkpoint,
    /// Finished runs by state and trigger, for the metrics.
    runs: Arc<crate::RunCounts>,
    /// What runs deleted, for the metrics.
    deleted: Arc<RunTotals>,
}

/// What policy runs deleted since the process started.
#[derive(Debug, Default)]
pub struct RunTotals {
    pub tags: std::sync::atomic::AtomicU64,
    pub manifests: std::sync::atomic::AtomicU64,
    /// Bytes the deletions took out of use (held for restore, or reclaimable at once).
    pub bytes: std::sync::atomic::AtomicU64,
}

impl Retention {
    /// Loads the applied policies and marks runs a stopped process left running as failed.
    pub async fn open(
        catalogue: Catalogue,
        clock: Arc<dyn Clock>,
        deletion_enabled: bool,
        collector: Collector,
    ) -> Result<Self> {
        let r = Retention {
            catalogue,
            clock,
            policies: Policies::default(),
            deletion_enabled,
            collector,
            checkpoint: Checkpoint::default(),
            runs: Arc::default(),
            deleted: Arc::default(),
        };
        let mut tx = r.catalogue.begin().await?;
        q::fail_interrupted_runs(&mut tx, r.clock.now(), r.collector.node(), true).await?;
        commit(tx).await?;
        r.reload().await?;
        Ok(r)
    }

    /// Finished runs by state and trigger (`schedule`, `manual`).
    pub fn run_counts(&self) -> &crate::RunCounts {
        &self.runs
    }

    /// What finished policy runs deleted.
    pub fn run_totals(&self) -> &RunTotals {
        &self.deleted
    }

    /// Where a run can be held after a number of repositories (for tests).
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The shared, compiled set of applied policies.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    async fn reload(&self) -> Result<()> {
        self.policies
            .refresh(&mut self.catalogue.reader().await?)
            .await?;
        Ok(())
    }

    /// Creates or replaces a policy. Returns the stored policy and whether it is new.
    pub async fn apply(&self, spec: &PolicySpec, by: &Principal) -> Result<(StoredPolicy, bool)> {
        check(by, "apply retention policies")?;
        let policy = spec.validate()?;
        let now = self.clock.now();
        let document = serde_json::to_string(spec).expect("a policy serialises");
        let schedule = policy.schedule().map(|s| s.to_string());
        let mut tx = self.catalogue.begin().await?;
        let created = q::put(
            &mut tx,
            &q::PolicyRow {
                name: policy.name(),
                document: &document,
                schedule: schedule.as_deref(),
                next_run_at: policy.schedule().map(|s| s.next_after(now)),
                by,
            },
            now,
        )
        .await?;
        events::record(
            &mut tx,
            &events::NewEvent {
                target: Some(policy.name()),
                reason: Some(if created { "created" } else { "updated" }),
                ..events::NewEvent::new(by, events::Action::PolicyApply)
            },
            now,
        )
        .await?;
        let stored = q::get(&mut tx, policy.name())
            .await?
            .expect("the policy was just written");
        commit(tx).await?;
        self.reload().await?;
        Ok((stored, created))
    }

    /// Removes a policy. Its runs stay in the history.
    pub async fn remove(&self, name: &str, by: &Principal) -> Result<()> {
        check(by, "remove retention policies")?;
        let now = self.clock.now();
        let mut tx = self.catalogue.begin().await?;
        if !q::remove(&mut tx, name).await? {
            return Err(RetentionError::NotFound(name.into()));
        }
        events::record(
            &mut tx,
            &events::NewEvent {
                target: Some(name),
                ..events::NewEvent::new(by, events::Action::PolicyRemove)
            },
            now,
        )
        .await?;
        commit(tx).await?;
        self.reload().await
    }

    pub async fn get(&self, name: &str) -> Result<(StoredPolicy, Policy)> {
        let stored = q::get(&mut self.catalogue.reader().await?, name)
            .await?
            .ok_or_else(|| RetentionError::NotFound(name.into()))?;
        let policy = compile(&stored)?;
        Ok((stored, policy))
    }

    pub async fn list(&self) -> Result<Vec<StoredPolicy>> {
        Ok(q::list(&mut self.catalogue.reader().await?).await?)
    }

    /// Protection for `repo` while evaluating `policy`: the policy's own patterns and those of
    /// every other applied policy covering the repository (a draft replaces its saved version).
    fn protection_for(&self, policy: &Policy, repo: &str) -> Protection {
        let saved = self.policies.snapshot();
        let others = saved.iter().filter(|p| p.name() != policy.name());
        Protection::for_repository(others.chain(std::iter::once(policy)), repo)
    }

    /// What `policy` (applied or a draft) would delete now, and why, for every repository in
    /// its scope that `by` may read (the figures count those alone). Nothing is changed.
    pub async fn preview(&self, policy: &Policy, by: &Principal) -> Result<Preview> {
        let now = self.clock.now();
        let mut repos = self.repositories_in_scope(policy).await?;
        repos.retain(|(_, name)| by.may(Permission::Pull, Some(name)));
        let mut figures = RunFigures::default();
        let mut out = Vec::with_capacity(repos.len());
        for (id, name) in repos {
            let mut tx = self.catalogue.begin().await?;
            let (decided, f) = self
                .apply_to_repository(&mut tx, policy, id, &name, now, &Deleter::Preview { by })
                .await?;
            // Rolled back: the deletions were made only to measure what they free.
            shipshape_meta::rollback(tx).await?;
            figures.add(&f);
            out.push(decided);
        }
        Ok(Preview {
            policy: policy.name().to_string(),
            evaluated_at: now,
            repositories: out,
            figures,
        })
    }

    /// The repositories `by` may read that one of `repositories` matches, each with its tags
    /// that `tag` matches (every tag when `None`), in name order: the matching a policy's
    /// evaluation does (`RepoPattern::matches`, `Pattern::matches`) over the registry as it is
    /// now, so an operator can check patterns before saving them. Changes nothing.
    pub async fn matching(
        &self,
        repositories: &[RepoPattern],
        tag: Option<&Pattern>,
        by: &Principal,
    ) -> Result<Vec<Matched>> {
        let mut conn = self.catalogue.reader().await?;
        let mut all = repos::all_live(&mut conn).await?;
        all.retain(|(_, name)| {
            repositories.iter().any(|p| p.matches(name)) && by.may(Permission::Pull, Some(name))
        });
        all.sort_by(|a, b| a.1.cmp(&b.1));
        let mut out = Vec::with_capacity(all.len());
        for (id, repository) in all {
            let rows = tags::list_detailed(&mut conn, id).await?;
            let tags_total = rows.len();
            let mut tags: Vec<String> = rows
                .into_iter()
                .map(|t| t.name)
                .filter(|t| tag.is_none_or(|p| p.matches(t)))
                .collect();
            tags.sort();
            out.push(Matched {
                repository,
                tags,
                tags_total,
            });
        }
        Ok(out)
    }

    async fn repositories_in_scope(&self, policy: &Policy) -> Result<Vec<(repos::RepoId, String)>> {
        let all = repos::all_live(&mut self.catalogue.reader().await?).await?;
        Ok(all
            .into_iter()
            .filter(|(_, name)| policy.applies_to(name))
            .collect())
    }

    /// Evaluates one repository and makes the deletions in `tx`; the caller commits (a run) or
    /// rolls back (a preview).
    async fn apply_to_repository(
        &self,
        tx: &mut dyn Conn,
        policy: &Policy,
        repo_id: repos::RepoId,
        repo: &str,
        now: Millis,
        deleter: &Deleter<'_>,
    ) -> Result<(RepositoryDecisions, RunFigures)> {
        // Protection as the catalogue has it now, whichever node applied the policies.
        self.policies.refresh(tx).await?;
        let tag_rows = tags::list_detailed(tx, repo_id).await?;
        let untagged = manifests::untagged(tx, repo_id).await?;
        let tag_facts: Vec<TagFacts> = tag_rows
            .iter()
            .map(|t| TagFacts {
                name: t.name.clone(),
                pushed_at: t.pushed_at,
                last_pulled_at: t.last_pulled_at,
                pull_count: t.pull_count,
            })
            .collect();
        let untagged_facts: Vec<UntaggedFacts> = untagged
            .iter()
            .map(|m| UntaggedFacts {
                digest: m.head.digest.to_string(),
                created_at: m.created_at,
            })
            .collect();
        let protection = self.protection_for(policy, repo);
        let evaluation = evaluate(policy, &tag_facts, &untagged_facts, &protection, now);

        let mut decisions = Vec::with_capacity(tag_rows.len() + untagged.len());
        for (row, d) in tag_rows.iter().zip(&evaluation.tags) {
            decisions.push(ItemDecision {
                kind: ItemKind::Tag,
                target: row.name.clone(),
                digest: row.digest.to_string(),
                delete: d.delete,
                rule: d.rule.to_string(),
                reason: d.reason.clone(),
            });
        }
        for (m, d) in untagged.iter().zip(&evaluation.untagged) {
            decisions.push(ItemDecision {
                kind: ItemKind::Manifest,
                target: m.head.digest.to_string(),
                digest: m.head.digest.to_string(),
                delete: d.delete,
                rule: d.rule.to_string(),
                reason: d.reason.clone(),
            });
        }
        let mut figures = RunFigures {
            repositories: 1,
            tags_evaluated: tag_rows.len() as u64,
            ..Default::default()
        };
        let mut freed_manifests = Vec::new();
        // One batch for everything the policy removes from this repository, so the restore bin
        // can bring it back at once.
        let mut by = tags::By::new(deleter.principal(), now);
        if decisions.iter().any(|d| d.delete) {
            let batch = batches::create(
                tx,
                batches::Operation::PolicyRun,
                repo_id,
                deleter.principal(),
                now,
            )
            .await?;
            by = by.in_batch(batch);
            figures.repositories_affected = 1;
        }
        let by_digest: HashMap<String, &manifests::Untagged> = untagged
            .iter()
            .map(|m| (m.head.digest.to_string(), m))
            .collect();
        let repo_name: RepoName = repo
            .parse()
            .map_err(|e| MetaError::Corrupt(format!("stored repository name {repo:?}: {e}")))?;
        let target = deletion::Repo {
            name: &repo_name,
            id: repo_id,
        };
        for (i, d) in decisions.iter().enumerate().filter(|(_, d)| d.delete) {
            let reason = format!("policy {}: {}: {}", policy.name(), d.rule, d.reason);
            if d.kind == ItemKind::Tag {
                let tag: Tag = d.target.parse().map_err(|e: shipshape_oci::NameError| {
                    MetaError::Corrupt(format!("stored tag {:?}: {e}", d.target))
                })?;
                // The evaluation kept protected tags already; a run also passes the guard users
                // pass, which keeps a tag that a policy applied since protects. (A preview may
                // be of a draft that changes protection: the evaluation alone decides there.)
                if matches!(deleter, Deleter::Run { .. }) {
                    let guarded = deletion::guard(
                        tx,
                        &self.policies,
                        &repo_name,
                        tag.as_str(),
                        by.principal,
                        false,
                    )
                    .await;
                    match guarded {
                        Ok(_) => {}
                        Err(deletion::DeletionError::Meta(e)) => return Err(e.into()),
                        Err(_) => continue,
                    }
                }
                deletion::remove_tag(tx, target, &tag, &by, Some(&reason)).await?;
                freed_manifests.push(tag_rows[i].manifest_id);
                figures.tags_deleted += 1;
            } else {
                let head = &by_digest[&d.target].head;
                deletion::remove_untagged(tx, target, head, &by, Some(&reason)).await?;
                freed_manifests.push(head.id);
                figures.manifests_deleted += 1;
            }
            if let Deleter::Run { run, .. } = deleter {
                q::add_run_item(
                    tx,
                    *run,
                    &RunItem {
                        repository: repo.to_string(),
                        kind: d.kind,
                        target: d.target.clone(),
                        digest: d.digest.clone(),
                        rule: d.rule.clone(),
                        reason: d.reason.clone(),
                    },
                )
                .await?;
            }
        }
        // A manifest still tagged under another name frees nothing: the query sees the tags.
        let rules = self.collector.usage_rules();
        let out_of_use = usage::bytes_only_for(tx, &freed_manifests, &rules).await?;
        if self.collector.config().restore_window.is_zero() {
            figures.bytes_freed = out_of_use;
        } else {
            figures.bytes_held = out_of_use;
        }
        Ok((
            RepositoryDecisions {
                repository: repo.to_string(),
                decisions,
                bytes_held: figures.bytes_held,
                bytes_freed: figures.bytes_freed,
            },
            figures,
        ))
    }

    /// Starts a run of an applied policy in the background. The rules are evaluated at the
    /// instant the run starts.
    pub async fn start(&self, name: &str, trigger: Trigger, by: &Principal) -> Result<PolicyRun> {
        check(by, "run retention policies")?;
        let (stored, policy) = self.get(name).await?;
        if !self.deletion_enabled {
            return Err(RetentionError::DeletionDisabled);
        }
        let now = self.clock.now();
        let mut tx = self.catalogue.begin().await?;
        let id = q::start_run(
            &mut tx,
            &NewRun {
                policy: name,
                document: &stored.document,
                trigger,
                started_by: by,
            },
            now,
        )
        .await?
        .map_err(|active| RetentionError::RunActive {
            policy: name.into(),
            active,
        })?;
        q::hold(
            &mut tx,
            id,
            self.collector.node(),
            now + crate::lease::RUN_LEASE_MS,
        )
        .await?;
        let run = q::get_run(&mut tx, id)
            .await?
            .expect("the run was just written");
        commit(tx).await?;
        let this = self.clone();
        let by = by.clone();
        tokio::spawn(async move {
            this.execute(id, &policy, trigger, &by, now).await;
        });
        Ok(run)
    }

    async fn execute(
        &self,
        id: i64,
        policy: &Policy,
        trigger: Trigger,
        by: &Principal,
        now: Millis,
    ) {
        let _lease = crate::lease::renew(self.catalogue.clone(), self.clock.clone(), {
            let node = self.collector.node().to_string();
            move |tx, until| {
                let node = node.clone();
                Box::pin(async move { q::hold(tx, id, &node, until).await })
            }
        });
        let mut figures = RunFigures::default();
        let mut errors = Vec::new();
        let state = match self
            .execute_repositories(id, policy, by, now, &mut figures, &mut errors)
            .await
        {
            Ok(true) => RunState::Cancelled,
            Ok(false) if errors.is_empty() => RunState::Succeeded,
            Ok(false) => RunState::Failed,
            Err(e) => {
                errors.push(e.to_string());
                RunState::Failed
            }
        };
        let reason = format!(
            "run {id} ({}) {state}: {} tags and {} untagged manifests deleted in {} of {} \
             repositories; {} bytes held for restore, {} bytes reclaimable",
            trigger.as_str(),
            figures.tags_deleted,
            figures.manifests_deleted,
            figures.repositories_affected,
            figures.repositories,
            figures.bytes_held,
            figures.bytes_freed,
        );
        // A scheduled run that changed nothing leaves only its run record: every minute's
        // empty run would otherwise bury the log.
        let quiet = trigger == Trigger::Schedule && figures.deleted() == 0 && errors.is_empty();
        let finish = async {
            let mut tx = self.catalogue.begin().await?;
            q::finish_run(&mut tx, id, state, &figures, &errors, self.clock.now()).await?;
            if !quiet {
                events::record(
                    &mut tx,
                    &events::NewEvent {
                        target: Some(policy.name()),
                        reason: Some(&reason),
                        ..events::NewEvent::new(by, events::Action::PolicyRun)
                    },
                    self.clock.now(),
                )
                .await?;
            }
            commit(tx).await
        };
        if let Err(e) = finish.await {
            tracing::error!(run = id, error = %e, "recording the end of a policy run failed");
        }
        self.runs.add(state, trigger.as_str());
        {
            use std::sync::atomic::Ordering::Relaxed;
            let d = &self.deleted;
            d.tags.fetch_add(figures.tags_deleted, Relaxed);
            d.manifests.fetch_add(figures.manifests_deleted, Relaxed);
            d.bytes
                .fetch_add(figures.bytes_held + figures.bytes_freed, Relaxed);
        }
        // A run that failed is something to look at; one that ended otherwise is news.
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(
                    target: "shipshape::audit",
                    $level,
                    action = "policy.run",
                    actor = %by.name,
                    actor_id = by.audit_id(),
                    source = by.source.as_deref(),
                    run = id,
                    policy = policy.name(),
                    trigger = trigger.as_str(),
                    state = %state,
                    repositories = figures.repositories,
                    repositories_affected = figures.repositories_affected,
                    tags_deleted = figures.tags_deleted,
                    manifests_deleted = figures.manifests_deleted,
                    bytes_held = figures.bytes_held,
                    bytes_freed = figures.bytes_freed,
                    error = errors.first().map(String::as_str),
                    "policy run finished"
                )
            };
        }
        if state == RunState::Failed {
            line!(tracing::Level::WARN);
        } else {
            line!(tracing::Level::INFO);
        }
    }

    /// Returns whether the run was cancelled.
    async fn execute_repositories(
        &self,
        id: i64,
        policy: &Policy,
        by: &Principal,
        now: Millis,
        figures: &mut RunFigures,
        errors: &mut Vec<String>,
    ) -> Result<bool> {
        for (done, (repo_id, name)) in (1..).zip(self.repositories_in_scope(policy).await?) {
            let mut tx = self.catalogue.begin().await?;
            let deleter = Deleter::Run { run: id, by };
            match self
                .apply_to_repository(&mut tx, policy, repo_id, &name, now, &deleter)
                .await
            {
                Ok((_, f)) => {
                    shipshape_fault::point("policy.before-commit");
                    commit(tx).await?;
                    shipshape_fault::point("policy.repository-done");
                    figures.add(&f);
                }
                Err(e) => {
                    drop(tx);
                    errors.push(format!("{name}: {e}"));
                }
            }
            self.checkpoint.pass(done).await;
            let mut tx = self.catalogue.begin().await?;
            let cancel = q::record_progress(&mut tx, id, figures).await?;
            commit(tx).await?;
            if cancel {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Asks a run to stop after the repository it is working on; what it deleted stays
    /// deleted (and restorable) and is reported.
    pub async fn cancel(&self, id: i64, by: &Principal) -> Result<PolicyRun> {
        check(by, "cancel policy runs")?;
        let mut tx = self.catalogue.begin().await?;
        let run = q::request_cancel(&mut tx, id)
            .await?
            .ok_or(RetentionError::RunNotFound(id))?;
        commit(tx).await?;
        Ok(run)
    }

    /// A run, with the items of the repositories `by` may read (the run's figures are its
    /// own, whoever asks).
    pub async fn run(&self, id: i64, by: &Principal) -> Result<(PolicyRun, Vec<RunItem>)> {
        let mut conn = self.catalogue.reader().await?;
        let run = q::get_run(&mut conn, id)
            .await?
            .ok_or(RetentionError::RunNotFound(id))?;
        let mut items = q::run_items(&mut conn, id).await?;
        items.retain(|i| by.may(Permission::Pull, Some(&i.repository)));
        Ok((run, items))
    }

    pub async fn runs(
        &self,
        policy: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<PolicyRun>> {
        Ok(q::list_runs(&mut self.catalogue.reader().await?, policy, before, limit).await?)
    }

    /// Starts the runs that are due; returns the ids started. The scheduler calls this every
    /// poll interval; tests may call it directly.
    pub async fn start_due(&self) -> Result<Vec<i64>> {
        let now = self.clock.now();
        let due = q::due(&mut self.catalogue.reader().await?, now).await?;
        let mut started = Vec::new();
        for (name, was_due) in due {
            let Ok((_, policy)) = self.get(&name).await else {
                continue;
            };
            let Some(schedule) = policy.schedule() else {
                continue;
            };
            // The next run keeps to the schedule: a run late by the poll interval does not make
            // every later one late too.
            let next = schedule.next_due(was_due, now);
            let mut tx = self.catalogue.begin().await?;
            let moved = q::advance_schedule(&mut tx, &name, now, next).await?;
            commit(tx).await?;
            if !moved {
                continue;
            }
            match self
                .start(
                    &name,
                    Trigger::Schedule,
                    &Principal::system(System::Scheduler),
                )
                .await
            {
                Ok(run) => started.push(run.id),
                Err(RetentionError::RunActive { active, .. }) => {
                    tracing::warn!(policy = %name, active, "scheduled run skipped: the previous run is still going");
                }
                Err(e) => {
                    tracing::error!(policy = %name, error = %e, "scheduled run failed to start")
                }
            }
        }
        Ok(started)
    }

    /// Checks for due policies every `poll` until `stop` turns true.
    pub fn spawn_scheduler(
        &self,
        poll: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    return;
                }
                if let Err(e) = this.start_due().await {
                    tracing::warn!(error = %e, "checking for due retention policies failed");
                }
            }
        })
    }
}

/// Who deletes: a preview records nothing; a run records events and run items.
enum Deleter<'a> {
    Preview { by: &'a Principal },
    Run { run: i64, by: &'a Principal },
}

impl Deleter<'_> {
    fn principal(&self) -> &Principal {
        match self {
            Deleter::Preview { by } | Deleter::Run { by, .. } => by,
        }
    }
}

/// Refuses unless `by` may manage retention policies.
fn check(by: &Principal, words: &'static str) -> Result<()> {
    if by.may(Permission::ManagePolicies, None) {
        Ok(())
    } else {
        Err(RetentionError::Denied {
            who: by.name.clone(),
            what: words,
        })
    }
}
