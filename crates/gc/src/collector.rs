//! The online collector: background workers that drain the review queues, the storage drainer
//! that deletes forgotten objects, and on-demand runs (with dry run, cancel and history).
//!
//! No step holds a transaction across storage I/O, and no step scans the registry: workers
//! claim due queue entries in batches and review them a few dozen per short transaction, and
//! the drainer deletes the queued keys afterwards, in parallel.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shipshape_meta::manifests::ManifestId;
use shipshape_meta::principal::{Permission, Principal, System};
use shipshape_meta::queue::{self, Due};
use shipshape_meta::runs::{self, Figures, ItemKind, Phase, Run, RunItem, RunSpec, RunState};
use shipshape_meta::{
    Catalogue, Clock, Conn, MetaError, Millis, Tx, commit, events, policies, samples, uploads,
    usage,
};
use shipshape_oci::Digest;
use shipshape_store::{BlobStore, StorageKey};
use tokio::sync::watch;

use crate::review::{self, Mode, Outcome, Rules};
use crate::{Checkpoint, GcError, lease, sweep};

/// Collector settings (the `[gc]` and `[uploads]` sections of the configuration).
#[derive(Clone, Debug)]
pub struct GcConfig {
    /// Grace period between the event that makes something garbage and its collection.
    pub review_delay: Duration,
    /// What a client was told exists (a blob it uploaded, mounted or HEADed, a manifest it
    /// pushed) stays at least this long, whatever grace a run is given: pushes in flight never
    /// lose a blob to a collection.
    pub lease: Duration,
    /// How long deleted tags, manifests and repositories stay restorable.
    pub restore_window: Duration,
    /// Background workers; zero leaves all collection to on-demand runs.
    pub workers: usize,
    pub poll_interval: Duration,
    /// Collect manifests that no tag, index or present subject holds.
    pub untagged_manifests: bool,
    /// Collect referrers whose subject is gone.
    pub orphan_referrers: bool,
    /// Upload sessions untouched for this long are abandoned.
    pub upload_ttl: Duration,
    /// Objects the catalogue does not know must be at least this old before a sweep deletes
    /// them (an upload being committed is briefly unknown).
    pub sweep_min_age: Duration,
    /// Objects deleted from storage at once.
    pub storage_parallelism: usize,
    /// This node's name among the nodes sharing the catalogue: the runs it executes are held
    /// in its name (`runs::hold`), renewed while they go on.
    pub node: String,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            review_delay: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(3600),
            restore_window: Duration::from_secs(7 * 24 * 3600),
            workers: 1,
            poll_interval: Duration::from_secs(10),
            untagged_manifests: true,
            orphan_referrers: true,
            upload_ttl: Duration::from_secs(24 * 3600),
            sweep_min_age: Duration::from_secs(3600),
            storage_parallelism: 16,
            node: "local".into(),
        }
    }
}

/// Queue entries read or claimed at once.
const BATCH: i64 = 256;
/// Reviews sharing one transaction: enough that a review costs a fraction of a round trip to
/// the catalogue, few enough that the single writer is held for milliseconds.
const REVIEWS_PER_TX: usize = 64;
/// Passes of one run over the queues; see `run_passes`.
const MAX_PASSES: usize = 8;
/// A claimed entry is handed out again after this long (a worker that crashed mid-batch).
const CLAIM_MS: Millis = 60_000;

fn ms(d: Duration) -> Millis {
    d.as_millis().min(i64::MAX as u128) as Millis
}

/// Counters for the metrics endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    pub manifests_deleted: AtomicU64,
    pub blobs_deleted: AtomicU64,
    pub bytes_reclaimed: AtomicU64,
    pub objects_deleted: AtomicU64,
    pub storage_errors: AtomicU64,
    pub runs_finished: AtomicU64,
    pub run_seconds_total_ms: AtomicU64,
    /// Finished runs by state and kind (`real`, `dry`).
    pub runs: crate::RunCounts,
}

impl Metrics {
    fn count(&self, f: &Figures) {
        self.manifests_deleted
            .fetch_add(f.manifests, Ordering::Relaxed);
        self.blobs_deleted.fetch_add(f.blobs, Ordering::Relaxed);
        self.bytes_reclaimed.fetch_add(f.bytes, Ordering::Relaxed);
    }
}

/// A run's batch of queue entries of one kind.
enum Batch<'a> {
    Manifests(&'a [ManifestId]),
    Blobs(&'a [Digest]),
}

impl Batch<'_> {
    async fn review(
        &self,
        conn: &mut dyn Conn,
        rules: &Rules,
        out: &mut Outcome,
    ) -> Result<(), GcError> {
        match self {
            Batch::Manifests(ids) => review::manifests(conn, ids, rules, Mode::Run, out).await,
            Batch::Blobs(digests) => review::blobs(conn, digests, rules, Mode::Run, out).await,
        }
    }
}

/// The collector. Cheap to clone; every clone drives the same workers and runs.
#[derive(Clone, Debug)]
pub struct Collector {
    catalogue: Catalogue,
    store: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    config: GcConfig,
    metrics: Arc<Metrics>,
    /// Serialises passes over the queues between the workers and a run, so a run's figures
    /// count what it deleted and not what a worker deleted beside it.
    pass: Arc<tokio::sync::Mutex<()>>,
    checkpoint: Checkpoint,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("a garbage collection run is already active: {0}")]
    Active(i64),
    #[error(transparent)]
    Gc(#[from] GcError),
}

impl Collector {
    pub fn new(
        catalogue: Catalogue,
        store: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        config: GcConfig,
    ) -> Self {
        Collector {
            catalogue,
            store,
            clock,
            config,
            metrics: Arc::default(),
            pass: Arc::default(),
            checkpoint: Checkpoint::default(),
        }
    }

    pub fn config(&self) -> &GcConfig {
        &self.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Where a real run can be held after a number of deletions (for tests).
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    fn rules(&self, grace: Millis, untagged: bool) -> Rules {
        Rules {
            now: self.clock.now(),
            grace,
            lease: ms(self.config.lease),
            restore_window: ms(self.config.restore_window),
            untagged_manifests: untagged,
            orphan_referrers: self.config.orphan_referrers,
        }
    }

    /// The rules the storage figures classify by: the workers' rules at `now`.
    pub fn usage_rules(&self) -> usage::Rules {
        self.usage_rules_for(
            &self.rules(ms(self.config.review_delay), self.config.untagged_manifests),
        )
    }

    /// The classification of storage that matches a review under `rules`.
    fn usage_rules_for(&self, rules: &Rules) -> usage::Rules {
        usage::Rules {
            now: rules.now,
            restore_cutoff: rules.now - rules.restore_window,
            grace: rules.grace,
            link_hold: rules.link_hold(),
            manifest_lease: review::lease(rules.lease),
            untagged_manifests: rules.untagged_manifests,
            orphan_referrers: rules.orphan_referrers,
        }
    }

    /// The registry's storage figures now, classified as the figures everywhere are, as a
    /// sample for the storage chart; `None` when they cannot be taken (logged): a run's end is
    /// recorded without its sample rather than not at all.
    async fn storage_sample(&self) -> Option<samples::Sample> {
        let rules = self.usage_rules();
        let taken = async {
            let mut conn = self.catalogue.reader().await?;
            usage::total(&mut conn, &rules).await
        };
        match taken.await {
            Ok(u) => Some(samples::Sample::of(rules.now, &u, None)),
            Err(e) => {
                tracing::warn!(error = %e, "taking the storage figures after a gc run failed");
                None
            }
        }
    }

    /// This node's name, in whose name its runs are held.
    pub fn node(&self) -> &str {
        &self.config.node
    }

    /// Marks runs a previous process of this node left running as failed, and those other
    /// nodes stopped renewing. Call once at start.
    pub async fn recover(&self) -> Result<(), GcError> {
        let mut tx = self.catalogue.begin().await?;
        let n =
            runs::fail_interrupted_runs(&mut tx, self.clock.now(), &self.config.node, true).await?;
        commit(tx).await?;
        if n > 0 {
            tracing::warn!(
                runs = n,
                "garbage collection runs interrupted by a stop marked failed"
            );
        }
        Ok(())
    }

    /// Records one entry of the activity log in a transaction of its own.
    async fn log(&self, e: &events::NewEvent<'_>) -> Result<(), GcError> {
        let mut tx = self.catalogue.begin().await?;
        events::record(&mut tx, e, self.clock.now()).await?;
        commit(tx).await?;
        Ok(())
    }

    /// Forgets activity-log entries older than `retention`, the items of GC and policy runs
    /// that finished before then (their figures stay), and tag history older than that too
    /// unless the restore window still needs it, a batch per transaction. Returns how many
    /// entries went.
    pub async fn prune_history(&self, retention: Duration) -> Result<u64, GcError> {
        const PRUNE_BATCH: i64 = 5_000;
        let now = self.clock.now();
        let events_before = now - ms(retention);
        let history_before = now - ms(retention.max(self.config.restore_window));
        let mut pruned = 0;
        loop {
            let mut tx = self.catalogue.begin().await?;
            let n = events::prune(&mut tx, events_before, PRUNE_BATCH).await?
                + runs::prune_items(&mut tx, events_before, PRUNE_BATCH).await?
                + policies::prune_run_items(&mut tx, events_before, PRUNE_BATCH).await?
                + events::prune_tag_history(&mut tx, history_before, PRUNE_BATCH).await?;
            commit(tx).await?;
            pruned += n;
            if n == 0 {
                return Ok(pruned);
            }
        }
    }

    /// Starts the background workers; they stop when `stop` turns true.
    pub fn spawn_workers(&self, stop: watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
        (0..self.config.workers)
            .map(|n| {
                let me = self.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    loop {
                        if *stop.borrow() {
                            break;
                        }
                        if let Err(e) = me.background_pass().await {
                            tracing::warn!(worker = n, error = %e, "collector pass failed");
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(me.config.poll_interval) => {}
                            _ = stop.changed() => {}
                        }
                    }
                })
            })
            .collect()
    }

    /// One pass of a background worker over everything due.
    pub async fn background_pass(&self) -> Result<Outcome, GcError> {
        let _pass = self.pass.lock().await;
        self.take_over_dead_runs().await?;
        let rules = self.rules(ms(self.config.review_delay), self.config.untagged_manifests);
        let mut out = self.drain_due(&rules).await?;
        out.merge(self.expire_uploads(&rules, None).await?);
        self.drain_storage(false).await?;
        self.metrics.count(&out.figures);
        if out.figures.deleted() > 0 {
            // One entry for the pass, not one per object: a busy registry's collector would
            // otherwise fill the log.
            let reason = format!("online collector: {}", summary(&out.figures));
            let by = Principal::system(System::Collector);
            let f = &out.figures;
            tracing::info!(
                target: "shipshape::audit",
                action = "gc.collect",
                actor = %by.name,
                actor_id = by.audit_id(),
                manifests = f.manifests,
                blobs = f.blobs,
                bytes = f.bytes,
                links = f.links,
                uploads = f.uploads,
                "the online collector deleted garbage"
            );
            self.log(&events::NewEvent {
                reason: Some(&reason),
                ..events::NewEvent::new(&by, events::Action::GcCollect)
            })
            .await?;
        }
        Ok(out)
    }

    /// A worker's review: claims due entries in batches until none is left, reviewing
    /// `REVIEWS_PER_TX` of them per transaction.
    async fn drain_due(&self, rules: &Rules) -> Result<Outcome, GcError> {
        let mut out = Outcome::default();
        loop {
            let mut rules = rules.clone();
            rules.now = self.clock.now();
            let due = Due {
                now: rules.now,
                queued_by: rules.now - rules.grace,
                claim_until: rules.now + CLAIM_MS,
            };
            let mut tx = self.catalogue.begin_unsynced().await?;
            tx.leaves_figures();
            let manifests = queue::claim_manifests(&mut tx, due, BATCH).await?;
            // Blob reviews need no queue delay: a link's lease is the grace period.
            let blob_due = Due {
                queued_by: rules.now,
                ..due
            };
            let digests = queue::claim_blobs(&mut tx, blob_due, BATCH).await?;
            commit(tx).await?;
            if manifests.is_empty() && digests.is_empty() {
                return Ok(out);
            }
            for chunk in manifests.chunks(REVIEWS_PER_TX) {
                let mut tx = self.catalogue.begin_unsynced().await?;
                review::manifests(&mut tx, chunk, &rules, Mode::Worker, &mut out).await?;
                commit(tx).await?;
            }
            for chunk in digests.chunks(REVIEWS_PER_TX) {
                let mut tx = self.catalogue.begin_unsynced().await?;
                review::blobs(&mut tx, chunk, &rules, Mode::Worker, &mut out).await?;
                commit(tx).await?;
            }
        }
    }

    /// A run's review: every queued entry in (queued_at, key) order under the run's rules,
    /// whatever the workers' claims and deferrals say, repeated while a pass deletes something
    /// (a purge queues what the purged manifest referenced), at most `MAX_PASSES` times; each
    /// batch of `REVIEWS_PER_TX` entries in its own transaction, which also records what it
    /// deleted and learns whether a cancel was asked.
    async fn run_passes(&self, rules: &Rules, run: &RunProgress) -> Result<Outcome, GcError> {
        let mut out = Outcome::default();
        // Each pass after the first follows the cascade of the one before (index → children →
        // blobs, subject → referrers); a bound keeps a run finite while pushes keep adding
        // work, which the next run or the workers take.
        for _ in 0..MAX_PASSES {
            let mut rules = rules.clone();
            rules.now = self.clock.now();
            let deleted_before = out.figures.deleted();
            let mut cursor = None;
            loop {
                let batch = {
                    let mut conn = self.catalogue.reader().await?;
                    queue::manifest_entries_after(&mut conn, cursor, BATCH).await?
                };
                let Some(last) = batch.last() else { break };
                cursor = Some(*last);
                let ids: Vec<ManifestId> = batch.into_iter().map(|(_, id)| id).collect();
                for chunk in ids.chunks(REVIEWS_PER_TX) {
                    // Asked in the catalogue, from any node; one indexed read per batch.
                    if self.cancel_asked(run).await? {
                        return Ok(out);
                    }
                    let one = self
                        .review_batch(Batch::Manifests(chunk), &rules, run)
                        .await?;
                    self.after_review(&mut out, one, run).await;
                }
            }
            let mut cursor: Option<(Millis, String)> = None;
            loop {
                let batch = {
                    let mut conn = self.catalogue.reader().await?;
                    queue::blob_entries_after(&mut conn, cursor.clone(), BATCH).await?
                };
                let Some((t, d)) = batch.last() else { break };
                cursor = Some((*t, d.to_string()));
                let digests: Vec<Digest> = batch.into_iter().map(|(_, d)| d).collect();
                for chunk in digests.chunks(REVIEWS_PER_TX) {
                    // Asked in the catalogue, from any node; one indexed read per batch.
                    if self.cancel_asked(run).await? {
                        return Ok(out);
                    }
                    let one = self.review_batch(Batch::Blobs(chunk), &rules, run).await?;
                    self.after_review(&mut out, one, run).await;
                }
            }
            if out.figures.deleted() == deleted_before {
                return Ok(out);
            }
        }
        Ok(out)
    }

    /// Reviews one batch of a run in a transaction of its own that also records the batch's
    /// items and the run's figures so far.
    async fn review_batch(
        &self,
        batch: Batch<'_>,
        rules: &Rules,
        run: &RunProgress,
    ) -> Result<Outcome, GcError> {
        let mut one = Outcome::default();
        let mut tx = self.catalogue.begin_unsynced().await?;
        batch.review(&mut tx, rules, &mut one).await?;
        self.record(&mut tx, run, &one).await?;
        commit(tx).await?;
        shipshape_fault::point("gc.batch-reviewed");
        Ok(one)
    }

    /// Adds a batch's deletions to the run's items and figures, in the batch's transaction,
    /// and notes a cancel asked meanwhile (from this node or another).
    async fn record(&self, tx: &mut Tx, run: &RunProgress, one: &Outcome) -> Result<(), GcError> {
        runs::add_run_items(tx, run.id, &one.items).await?;
        let mut so_far = *run.figures.lock().expect("run progress");
        so_far.add(&one.figures);
        if runs::record_progress(tx, run.id, &so_far).await? {
            run.cancel.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Records the step a run begins, for its page on any node.
    async fn phase(&self, id: i64, phase: Phase, queued: Option<u64>) -> Result<(), GcError> {
        let mut tx = self.catalogue.begin_unsynced().await?;
        runs::set_phase(&mut tx, id, phase, queued).await?;
        commit(tx).await?;
        Ok(())
    }

    /// Counts a committed batch into the run and passes the checkpoint.
    async fn after_review(&self, out: &mut Outcome, one: Outcome, run: &RunProgress) {
        run.figures.lock().expect("run progress").add(&one.figures);
        // A real run's items are already in the catalogue, so only its figures are kept:
        // memory stays flat however much a run deletes.
        out.figures.add(&one.figures);
        self.checkpoint.pass(out.figures.deleted()).await;
    }

    async fn expire_uploads(&self, rules: &Rules, run: Option<i64>) -> Result<Outcome, GcError> {
        let mut out = Outcome::default();
        let cutoff = rules.now - ms(self.config.upload_ttl);
        loop {
            let mut conn = self.catalogue.reader().await?;
            let stale = uploads::stale_uploads(&mut conn, cutoff, BATCH).await?;
            drop(conn);
            if stale.is_empty() {
                return Ok(out);
            }
            let mut tx = self.catalogue.begin().await?;
            let before = out.items.len();
            for s in &stale {
                review::upload(&mut tx, s, cutoff, rules, &mut out).await?;
            }
            if let Some(run) = run {
                runs::add_run_items(&mut tx, run, &out.items[before..]).await?;
            }
            commit(tx).await?;
            let expired: std::collections::HashSet<&str> = out.items[before..]
                .iter()
                .map(|i| i.target.as_str())
                .collect();
            for s in stale.iter().filter(|s| expired.contains(s.id.as_str())) {
                self.abort_forgotten_upload(s).await;
            }
            if (stale.len() as i64) < BATCH {
                return Ok(out);
            }
        }
    }

    /// Frees what an expired session held beyond its key, which the drainer deletes: an
    /// object store's multipart upload (invisible to listings, so no sweep would find it) and
    /// its tail objects. After the commit that forgot the session; a failure is logged, and
    /// the bucket's lifecycle rule for incomplete multipart uploads is the backstop.
    async fn abort_forgotten_upload(&self, s: &uploads::StaleUpload) {
        if s.store_state.is_none() {
            return;
        }
        let record = shipshape_store::UploadRecord {
            storage_key: s.storage_key.clone(),
            received: s.received,
            store_state: s.store_state.clone(),
        };
        let aborted = match shipshape_store::UploadState::resume(&record) {
            Ok(state) => self.store.abort(&state).await,
            Err(e) => Err(e),
        };
        if let Err(e) = aborted {
            tracing::warn!(upload = %s.id, key = %s.storage_key, error = %e, "an expired upload's multipart upload was not aborted");
        }
    }

    /// Deletes the objects whose keys the catalogue has forgotten, in parallel batches. A
    /// missing object counts as deleted; a failure is retried later with back-off. A `run`
    /// (asked to free everything now) also takes keys another drain claimed.
    pub async fn drain_storage(&self, run: bool) -> Result<u64, GcError> {
        let mut deleted = 0;
        loop {
            let now = self.clock.now();
            let mut tx = self.catalogue.begin().await?;
            tx.leaves_figures();
            let (until, limit) = (now + CLAIM_MS, BATCH);
            let keys = if run {
                queue::claim_storage_deletions_for_run(&mut tx, now, until, limit).await?
            } else {
                queue::claim_storage_deletions(&mut tx, now, until, limit).await?
            };
            commit(tx).await?;
            if keys.is_empty() {
                return Ok(deleted);
            }
            shipshape_fault::point("gc.deletions-claimed");
            // Keys the store could never have written have nothing to delete.
            let (valid, invalid): (Vec<_>, Vec<_>) = keys
                .into_iter()
                .map(|k| (StorageKey::from_recorded(&k).ok(), k))
                .partition(|(parsed, _)| parsed.is_some());
            let parsed: Vec<StorageKey> = valid.iter().filter_map(|(k, _)| k.clone()).collect();
            // One batch request per 1 000 keys on S3; parallel single deletes elsewhere.
            let answers = self
                .store
                .delete_many(&parsed, self.config.storage_parallelism)
                .await;
            shipshape_fault::point("gc.objects-deleted");
            let mut results: Vec<(String, bool)> =
                invalid.into_iter().map(|(_, k)| (k, true)).collect();
            for ((_, key), answer) in valid.into_iter().zip(answers) {
                if let Err(e) = &answer {
                    tracing::warn!(key, error = %e, "deleting a forgotten object failed");
                }
                results.push((key, answer.is_ok()));
            }
            let (done, failed): (Vec<_>, Vec<_>) = results.iter().partition(|(_, ok)| *ok);
            let done: Vec<&str> = done.iter().map(|(k, _)| k.as_str()).collect();
            // No sync needed: if a power loss undoes this commit, the keys are claimed again once
            // their claim expires, and an object already gone counts as deleted.
            let mut tx = self.catalogue.begin_unsynced().await?;
            queue::storage_deleted(&mut tx, &done).await?;
            for (key, _) in &failed {
                queue::storage_deletion_failed(&mut tx, key, now).await?;
                self.metrics.storage_errors.fetch_add(1, Ordering::Relaxed);
            }
            commit(tx).await?;
            deleted += done.len() as u64;
            self.metrics
                .objects_deleted
                .fetch_add(done.len() as u64, Ordering::Relaxed);
            // A short batch was everything due; an all-failed one would fail again now.
            if results.len() < BATCH as usize || failed.len() == results.len() {
                return Ok(deleted);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    /// Fails the GC and policy runs whose node stopped renewing their lease (it died): the
    /// registry-wide singletons they hold are free again. Every node's workers look.
    async fn take_over_dead_runs(&self) -> Result<(), GcError> {
        let now = self.clock.now();
        let mut tx = self.catalogue.begin().await?;
        let gc = runs::fail_interrupted_runs(&mut tx, now, &self.config.node, false).await?;
        let policy =
            shipshape_meta::policies::fail_interrupted_runs(&mut tx, now, &self.config.node, false)
                .await?;
        commit(tx).await?;
        if gc + policy > 0 {
            tracing::warn!(
                gc_runs = gc,
                policy_runs = policy,
                "runs whose node stopped renewing them marked failed"
            );
        }
        Ok(())
    }

    // Runs

    /// Starts a run in the background; answers at once with its id. At most one run is active
    /// in the registry (the catalogue refuses a second, from any node).
    pub async fn start_run(&self, spec: RunSpec, by: &Principal) -> Result<Run, StartError> {
        GcError::check(by, Permission::CollectGarbage, "start garbage collection")?;
        let now = self.clock.now();
        let mut tx = self.catalogue.begin().await.map_err(GcError::from)?;
        let id = match runs::start_run(&mut tx, &spec, by, now)
            .await
            .map_err(GcError::from)?
        {
            Ok(id) => id,
            Err(active) => return Err(StartError::Active(active)),
        };
        runs::hold(&mut tx, id, &self.config.node, now + lease::RUN_LEASE_MS)
            .await
            .map_err(GcError::from)?;
        let run = runs::get_run(&mut tx, id)
            .await
            .map_err(GcError::from)?
            .ok_or_else(|| GcError::Meta(MetaError::Corrupt(format!("run {id} vanished"))))?;
        commit(tx).await.map_err(GcError::from)?;
        let (me, by) = (self.clone(), by.clone());
        tokio::spawn(async move {
            me.execute(id, spec, &by).await;
        });
        Ok(run)
    }

    /// Runs, newest first, before the id `before` when given.
    pub async fn runs(&self, before: Option<i64>, limit: i64) -> Result<Vec<Run>, GcError> {
        let mut conn = self.catalogue.reader().await?;
        Ok(runs::list_runs(&mut conn, before, limit).await?)
    }

    /// One run.
    pub async fn run(&self, id: i64) -> Result<Option<Run>, GcError> {
        let mut conn = self.catalogue.reader().await?;
        Ok(runs::get_run(&mut conn, id).await?)
    }

    /// The active run, wherever it executes.
    pub async fn active_run(&self) -> Result<Option<Run>, GcError> {
        let mut conn = self.catalogue.reader().await?;
        Ok(runs::active_run(&mut conn).await?)
    }

    /// What a run deleted (or would delete) as `by` may see it, or `None` when there is no
    /// such run: the items of repositories it may read, and those of no repository (blobs,
    /// uploads, orphans) only when it may see the registry as a whole.
    pub async fn run_items(
        &self,
        id: i64,
        by: &Principal,
    ) -> Result<Option<Vec<RunItem>>, GcError> {
        let mut conn = self.catalogue.reader().await?;
        if runs::get_run(&mut conn, id).await?.is_none() {
            return Ok(None);
        }
        let mut items = runs::run_items(&mut conn, id).await?;
        let registry_wide = by.may(Permission::SeeRegistryWide, None);
        items.retain(|i| match &i.repository {
            Some(r) => by.may(Permission::Pull, Some(r)),
            None => registry_wide,
        });
        Ok(Some(items))
    }

    /// How deep each queue is, for metrics.
    pub async fn queue_depths(&self) -> Result<queue::QueueDepths, GcError> {
        let mut conn = self.catalogue.reader().await?;
        Ok(queue::queue_depths(&mut conn).await?)
    }

    /// Asks a run to stop after the batch it is on; what it already deleted stays deleted and
    /// is reported. The ask is written in the run's row, so the node executing the run sees it
    /// whichever node was asked. Returns the run, or `None` when there is no such run.
    pub async fn cancel(&self, id: i64, by: &Principal) -> Result<Option<Run>, GcError> {
        GcError::check(by, Permission::CollectGarbage, "cancel garbage collection")?;
        let mut tx = self.catalogue.begin().await?;
        let run = runs::request_cancel(&mut tx, id).await?;
        commit(tx).await?;
        Ok(run)
    }

    async fn execute(&self, id: i64, spec: RunSpec, by: &Principal) {
        let _lease = lease::renew(self.catalogue.clone(), self.clock.clone(), {
            let node = self.config.node.clone();
            move |tx, until| {
                let node = node.clone();
                Box::pin(async move { runs::hold(tx, id, &node, until).await })
            }
        });
        let started = std::time::Instant::now();
        let grace = spec.grace_ms.unwrap_or(ms(self.config.review_delay));
        let run = RunProgress {
            id,
            cancel: AtomicBool::new(false),
            figures: Mutex::new(Figures::default()),
        };
        let result = if spec.dry_run {
            self.dry_run(id, &spec, grace).await
        } else {
            self.real_run(&spec, grace, &run).await
        };
        let (state, figures, errors) = match result {
            Ok(f) if run.cancelled() => (RunState::Cancelled, f, vec![]),
            Ok(f) => (RunState::Succeeded, f, vec![]),
            Err(e) => {
                let f = *run.figures.lock().expect("run progress");
                (RunState::Failed, f, vec![e.to_string()])
            }
        };
        let now = self.clock.now();
        let what = if spec.dry_run {
            format!("dry run, would delete {}", summary(&figures))
        } else {
            summary(&figures)
        };
        let reason = format!("run {id} {state}: {what}");
        // The storage chart's point after the run, written as the run is said to have ended
        // (and taken at or after that instant): whoever sees the run finished finds the drop
        // it made in the figures.
        let sample = if spec.dry_run {
            None
        } else {
            self.storage_sample().await
        };
        let finish = async {
            let mut tx = self.catalogue.begin().await?;
            runs::finish_run(&mut tx, id, state, &figures, &errors, now).await?;
            if let Some(s) = &sample {
                samples::record_for_run(&mut tx, s, id).await?;
            }
            // One entry per run with its figures; what it deleted is the run's item list.
            events::record(
                &mut tx,
                &events::NewEvent {
                    target: Some(&id.to_string()),
                    reason: Some(&reason),
                    ..events::NewEvent::new(by, events::Action::GcRun)
                },
                now,
            )
            .await?;
            commit(tx).await?;
            Ok::<_, GcError>(())
        };
        if let Err(e) = finish.await {
            tracing::error!(run = id, error = %e, "recording the end of a gc run failed");
        }
        self.metrics.runs_finished.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .run_seconds_total_ms
            .fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.metrics
            .runs
            .add(state, if spec.dry_run { "dry" } else { "real" });
        // A run that failed is something to look at; one that ended otherwise is news.
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(
                    target: "shipshape::audit",
                    $level,
                    action = "gc.run",
                    actor = %by.name,
                    actor_id = by.audit_id(),
                    source = by.source.as_deref(),
                    run = id,
                    state = %state,
                    dry_run = spec.dry_run,
                    seconds = started.elapsed().as_secs_f64(),
                    reviewed = figures.reviewed,
                    manifests = figures.manifests,
                    blobs = figures.blobs,
                    bytes = figures.bytes,
                    links = figures.links,
                    uploads = figures.uploads,
                    orphans = figures.orphans,
                    error = errors.first().map(String::as_str),
                    "garbage collection run finished"
                )
            };
        }
        if state == RunState::Failed {
            line!(tracing::Level::WARN);
        } else {
            line!(tracing::Level::INFO);
        }
    }

    /// Whether a cancel was asked of the run (read from the catalogue, between phases).
    async fn cancel_asked(&self, run: &RunProgress) -> Result<bool, GcError> {
        if !run.cancelled() {
            let mut conn = self.catalogue.reader().await?;
            if runs::cancel_requested(&mut conn, run.id).await? {
                run.cancel.store(true, Ordering::Relaxed);
            }
        }
        Ok(run.cancelled())
    }

    async fn real_run(
        &self,
        spec: &RunSpec,
        grace: Millis,
        run: &RunProgress,
    ) -> Result<Figures, GcError> {
        let _pass = self.pass.lock().await;
        let rules = self.rules(grace, spec.include_untagged);
        let began = std::time::Instant::now();
        let queued = {
            let mut conn = self.catalogue.reader().await?;
            let depths = queue::queue_depths(&mut conn).await?;
            depths.blobs + depths.manifests
        };
        self.phase(run.id, Phase::Reviewing, Some(queued)).await?;
        let mut out = self.run_passes(&rules, run).await?;
        let reviewed = began.elapsed();
        if !self.cancel_asked(run).await? {
            self.phase(run.id, Phase::Uploads, None).await?;
            let uploads = self.expire_uploads(&rules, Some(run.id)).await?;
            run.figures
                .lock()
                .expect("run progress")
                .add(&uploads.figures);
            out.figures.add(&uploads.figures);
        }
        if spec.sweep && !self.cancel_asked(run).await? {
            self.phase(run.id, Phase::Sweeping, None).await?;
            let orphans = sweep::sweep(
                &self.catalogue,
                &*self.store,
                self.clock.now(),
                ms(self.config.sweep_min_age),
                false,
            )
            .await?;
            let mut tx = self.catalogue.begin().await?;
            runs::add_run_items(&mut tx, run.id, &orphans.items).await?;
            commit(tx).await?;
            run.figures
                .lock()
                .expect("run progress")
                .add(&orphans.figures);
            out.figures.add(&orphans.figures);
        }
        let swept = began.elapsed();
        // Freed means gone from storage, not only forgotten.
        self.phase(run.id, Phase::Draining, None).await?;
        self.drain_storage(true).await?;
        shipshape_fault::point("gc.drained");
        tracing::debug!(
            run = run.id,
            review_ms = reviewed.as_secs_f64() * 1e3,
            uploads_and_sweep_ms = (swept - reviewed).as_secs_f64() * 1e3,
            drain_ms = (began.elapsed() - swept).as_secs_f64() * 1e3,
            "gc run phases"
        );
        self.metrics.count(&out.figures);
        Ok(out.figures)
    }

    /// Lists what a run with these rules would delete now, read on a reader connection by the
    /// same classification as the storage figures (`usage::collectable`): a dry run takes no
    /// write lock, so pushes never wait behind it, and what it lists is what `usage` calls
    /// reclaimable.
    async fn dry_run(&self, id: i64, spec: &RunSpec, grace: Millis) -> Result<Figures, GcError> {
        let rules = self.rules(grace, spec.include_untagged);
        let usage_rules = self.usage_rules_for(&rules);
        let mut out = Outcome::default();
        {
            let mut conn = self.catalogue.reader().await?;
            let depths = queue::queue_depths(&mut conn).await?;
            out.figures.reviewed = depths.blobs + depths.manifests;
            for c in usage::collectable(&mut conn, &usage_rules).await? {
                out.add(RunItem {
                    kind: c.kind,
                    repository: c.repository,
                    target: c.target,
                    size: c.size,
                });
            }
            let cutoff = rules.now - ms(self.config.upload_ttl);
            for s in uploads::stale_uploads(&mut conn, cutoff, i64::MAX).await? {
                out.add(RunItem {
                    kind: ItemKind::Upload,
                    repository: Some(s.repository),
                    target: s.id,
                    size: s.received,
                });
            }
        }
        if spec.sweep {
            let orphans = sweep::sweep(
                &self.catalogue,
                &*self.store,
                self.clock.now(),
                ms(self.config.sweep_min_age),
                true,
            )
            .await?;
            out.merge(orphans);
        }
        let mut tx = self.catalogue.begin().await?;
        runs::add_run_items(&mut tx, id, &out.items).await?;
        commit(tx).await?;
        Ok(out.figures)
    }
}

/// A real run as it goes: its id, whether a cancel was asked, its figures so far.
#[derive(Debug)]
struct RunProgress {
    id: i64,
    cancel: AtomicBool,
    figures: Mutex<Figures>,
}

impl RunProgress {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// A run's or pass's figures in words, for the activity log.
pub fn summary(f: &Figures) -> String {
    let mut parts = vec![
        format!("{} manifests", f.manifests),
        format!("{} blobs", f.blobs),
        format!("{} bytes", f.bytes),
    ];
    if f.links > 0 {
        parts.push(format!("{} repository links", f.links));
    }
    if f.uploads > 0 {
        parts.push(format!("{} abandoned uploads", f.uploads));
    }
    if f.orphans > 0 {
        parts.push(format!("{} orphan objects", f.orphans));
    }
    parts.join(", ")
}
