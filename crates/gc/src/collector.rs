//! The online collector: background workers that drain the review queues, the storage drainer
//! that deletes forgotten objects, and on-demand runs (with dry run, cancel and history).
//!
//! No step holds a transaction across storage I/O, and no step scans the registry: workers
//! claim due queue entries in batches and review them a few dozen per short transaction, and
//! the drainer deletes the queued keys afterwards, in parallel.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use shipshape_meta::gc::{self as q, Due, Figures, Run, RunSpec};
use shipshape_meta::manifests::ManifestId;
use shipshape_meta::{Catalogue, Clock, Conn, Millis, commit, events};
use shipshape_oci::Digest;
use shipshape_store::{BlobStore, StorageKey};
use tokio::sync::watch;

use crate::review::{self, Mode, Outcome, Rules};
use crate::{Checkpoint, GcError, sweep};

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
        conn: &mut Conn,
        rules: &Rules,
        out: &mut Outcome,
    ) -> Result<(), GcError> {
        match self {
            Batch::Manifests(ids) => review::manifests(conn, ids, rules, Mode::Run, out).await,
            Batch::Blobs(digests) => review::blobs(conn, digests, rules, Mode::Run, out).await,
        }
    }
}

#[derive(Debug)]
struct ActiveRun {
    id: i64,
    cancel: Arc<AtomicBool>,
}

/// The collector. Cheap to clone; every clone drives the same workers and runs.
#[derive(Clone, Debug)]
pub struct Collector {
    catalogue: Catalogue,
    store: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    config: GcConfig,
    metrics: Arc<Metrics>,
    active: Arc<Mutex<Option<ActiveRun>>>,
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
            active: Arc::default(),
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
    pub fn usage_rules(&self) -> shipshape_meta::usage::Rules {
        let rules = self.rules(ms(self.config.review_delay), self.config.untagged_manifests);
        shipshape_meta::usage::Rules {
            now: rules.now,
            restore_cutoff: rules.now - rules.restore_window,
            grace: rules.grace,
            link_hold: rules.link_hold(),
            manifest_lease: review::lease(rules.lease),
            untagged_manifests: rules.untagged_manifests,
            orphan_referrers: rules.orphan_referrers,
        }
    }

    /// Marks runs a previous process left running as failed. Call once at start.
    pub async fn recover(&self) -> Result<(), GcError> {
        let mut tx = self.catalogue.begin().await?;
        let n = q::fail_interrupted_runs(&mut tx, self.clock.now()).await?;
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

    /// Forgets activity-log entries older than `retention`, and tag history older than that
    /// too unless the restore window still needs it, a batch per transaction. Returns how many
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
        let rules = self.rules(ms(self.config.review_delay), self.config.untagged_manifests);
        let mut out = self.drain_due(&rules).await?;
        out.merge(self.expire_uploads(&rules, None).await?);
        self.drain_storage().await?;
        self.metrics.count(&out.figures);
        if out.figures.deleted() > 0 {
            // One entry for the pass, not one per object: a busy registry's collector would
            // otherwise fill the log.
            let reason = format!("online collector: {}", summary(&out.figures));
            self.log(&events::NewEvent {
                actor: COLLECTOR,
                action: "gc.collect",
                reason: Some(&reason),
                ..Default::default()
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
            let manifests = q::claim_manifests(&mut tx, due, BATCH).await?;
            // Blob reviews need no queue delay: a link's lease is the grace period.
            let blob_due = Due {
                queued_by: rules.now,
                ..due
            };
            let digests = q::claim_blobs(&mut tx, blob_due, BATCH).await?;
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
    /// (a purge queues what the purged manifest referenced), at most `MAX_PASSES` times. With
    /// `dry`, every review happens in that one transaction (the caller rolls it back);
    /// otherwise each batch of `REVIEWS_PER_TX` entries in its own.
    async fn run_passes(
        &self,
        rules: &Rules,
        cancel: &AtomicBool,
        mut dry: Option<&mut Conn>,
        progress: Option<(i64, &Mutex<Figures>)>,
    ) -> Result<Outcome, GcError> {
        let mut out = Outcome::default();
        // Each pass after the first follows the cascade of the one before (index → children →
        // blobs, subject → referrers); a bound keeps a run finite while pushes keep adding
        // work, which the next run or the workers take.
        for _ in 0..MAX_PASSES {
            let mut rules = rules.clone();
            if dry.is_none() {
                rules.now = self.clock.now();
            }
            let deleted_before = out.figures.deleted();
            let mut cursor = None;
            loop {
                let batch = match dry.as_deref_mut() {
                    Some(conn) => q::manifest_entries_after(conn, cursor, BATCH).await?,
                    None => {
                        let mut conn = self.catalogue.reader().await?;
                        q::manifest_entries_after(&mut conn, cursor, BATCH).await?
                    }
                };
                let Some(last) = batch.last() else { break };
                cursor = Some(*last);
                let ids: Vec<ManifestId> = batch.into_iter().map(|(_, id)| id).collect();
                for chunk in ids.chunks(REVIEWS_PER_TX) {
                    if cancel.load(Ordering::Relaxed) {
                        return Ok(out);
                    }
                    let one = self
                        .review_batch(
                            dry.as_deref_mut(),
                            Batch::Manifests(chunk),
                            &rules,
                            progress,
                        )
                        .await?;
                    self.after_review(&mut out, one, progress).await;
                }
            }
            let mut cursor: Option<(Millis, String)> = None;
            loop {
                let batch = match dry.as_deref_mut() {
                    Some(conn) => q::blob_entries_after(conn, cursor.clone(), BATCH).await?,
                    None => {
                        let mut conn = self.catalogue.reader().await?;
                        q::blob_entries_after(&mut conn, cursor.clone(), BATCH).await?
                    }
                };
                let Some((t, d)) = batch.last() else { break };
                cursor = Some((*t, d.to_string()));
                let digests: Vec<Digest> = batch.into_iter().map(|(_, d)| d).collect();
                for chunk in digests.chunks(REVIEWS_PER_TX) {
                    if cancel.load(Ordering::Relaxed) {
                        return Ok(out);
                    }
                    let one = self
                        .review_batch(dry.as_deref_mut(), Batch::Blobs(chunk), &rules, progress)
                        .await?;
                    self.after_review(&mut out, one, progress).await;
                }
            }
            if out.figures.deleted() == deleted_before {
                return Ok(out);
            }
        }
        Ok(out)
    }

    /// Reviews one batch of a run: in the dry run's transaction, or in a transaction of its own
    /// that also records the batch's items and figures.
    async fn review_batch(
        &self,
        dry: Option<&mut Conn>,
        batch: Batch<'_>,
        rules: &Rules,
        progress: Option<(i64, &Mutex<Figures>)>,
    ) -> Result<Outcome, GcError> {
        let mut one = Outcome::default();
        match dry {
            Some(conn) => batch.review(conn, rules, &mut one).await?,
            None => {
                let mut tx = self.catalogue.begin_unsynced().await?;
                batch.review(&mut tx, rules, &mut one).await?;
                self.record(&mut tx, progress, &one).await?;
                commit(tx).await?;
            }
        }
        Ok(one)
    }

    /// Adds a batch's deletions to the run's items and figures, in the batch's transaction.
    async fn record(
        &self,
        tx: &mut Conn,
        progress: Option<(i64, &Mutex<Figures>)>,
        one: &Outcome,
    ) -> Result<(), GcError> {
        let Some((run, live)) = progress else {
            return Ok(());
        };
        q::add_run_items(tx, run, &one.items).await?;
        let mut so_far = *live.lock().expect("run progress");
        so_far.add(&one.figures);
        q::record_progress(tx, run, &so_far).await?;
        Ok(())
    }

    /// Counts a committed batch into the run and passes the checkpoint (a real run only).
    async fn after_review(
        &self,
        out: &mut Outcome,
        one: Outcome,
        progress: Option<(i64, &Mutex<Figures>)>,
    ) {
        self.report(out, one, progress);
        if progress.is_some() {
            self.checkpoint.pass(out.figures.deleted()).await;
        }
    }

    /// Counts a review into the run. A real run's items are already in the catalogue, so only
    /// its figures are kept: memory stays flat however much a run deletes.
    fn report(&self, out: &mut Outcome, one: Outcome, progress: Option<(i64, &Mutex<Figures>)>) {
        match progress {
            Some((_, live)) => {
                live.lock().expect("run progress").add(&one.figures);
                out.figures.add(&one.figures);
            }
            None => out.merge(one),
        }
    }

    async fn expire_uploads(&self, rules: &Rules, run: Option<i64>) -> Result<Outcome, GcError> {
        let mut out = Outcome::default();
        let cutoff = rules.now - ms(self.config.upload_ttl);
        loop {
            let mut conn = self.catalogue.reader().await?;
            let stale = q::stale_uploads(&mut conn, cutoff, BATCH).await?;
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
                q::add_run_items(&mut tx, run, &out.items[before..]).await?;
            }
            commit(tx).await?;
            if (stale.len() as i64) < BATCH {
                return Ok(out);
            }
        }
    }

    /// Deletes the objects whose keys the catalogue has forgotten, in parallel batches. A
    /// missing object counts as deleted; a failure is retried later with back-off.
    pub async fn drain_storage(&self) -> Result<u64, GcError> {
        let mut deleted = 0;
        loop {
            let now = self.clock.now();
            let mut tx = self.catalogue.begin().await?;
            let keys = q::claim_storage_deletions(&mut tx, now, now + CLAIM_MS, BATCH).await?;
            commit(tx).await?;
            if keys.is_empty() {
                return Ok(deleted);
            }
            let results: Vec<(String, bool)> = futures::stream::iter(keys)
                .map(|key| async move {
                    let ok = match StorageKey::from_recorded(&key) {
                        Ok(k) => match self.store.delete(&k).await {
                            Ok(()) => true,
                            Err(e) => {
                                tracing::warn!(key, error = %e, "deleting a forgotten object failed");
                                false
                            }
                        },
                        // Never a key the store could have written: nothing to delete.
                        Err(_) => true,
                    };
                    (key, ok)
                })
                .buffer_unordered(self.config.storage_parallelism.max(1))
                .collect()
                .await;
            let (done, failed): (Vec<_>, Vec<_>) = results.iter().partition(|(_, ok)| *ok);
            let done: Vec<&str> = done.iter().map(|(k, _)| k.as_str()).collect();
            // No sync needed: if a power loss undoes this commit, the keys are claimed again once
            // their claim expires, and an object already gone counts as deleted.
            let mut tx = self.catalogue.begin_unsynced().await?;
            q::storage_deleted(&mut tx, &done).await?;
            for (key, _) in &failed {
                q::storage_deletion_failed(&mut tx, key, now).await?;
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
    // Runs

    /// Starts a run in the background; answers at once with its id.
    pub async fn start_run(&self, spec: RunSpec) -> Result<Run, StartError> {
        let now = self.clock.now();
        let mut tx = self.catalogue.begin().await.map_err(GcError::from)?;
        let id = match q::start_run(&mut tx, &spec, now)
            .await
            .map_err(GcError::from)?
        {
            Ok(id) => id,
            Err(active) => return Err(StartError::Active(active)),
        };
        let run = q::get_run(&mut tx, id)
            .await
            .map_err(GcError::from)?
            .expect("run just inserted");
        commit(tx).await.map_err(GcError::from)?;
        let cancel = Arc::new(AtomicBool::new(false));
        *self.active.lock().expect("active run") = Some(ActiveRun {
            id,
            cancel: cancel.clone(),
        });
        let me = self.clone();
        tokio::spawn(async move {
            me.execute(id, spec, cancel).await;
        });
        Ok(run)
    }

    /// Asks the active run to stop; what it already deleted stays deleted and is reported.
    /// Returns false when `id` is not the active run.
    pub fn cancel(&self, id: i64) -> bool {
        match &*self.active.lock().expect("active run") {
            Some(a) if a.id == id => {
                a.cancel.store(true, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    async fn execute(&self, id: i64, spec: RunSpec, cancel: Arc<AtomicBool>) {
        let started = std::time::Instant::now();
        let grace = spec.grace_ms.unwrap_or(ms(self.config.review_delay));
        let live = Mutex::new(Figures::default());
        let result = if spec.dry_run {
            self.dry_run(id, &spec, grace, &cancel).await
        } else {
            self.real_run(id, &spec, grace, &cancel, &live).await
        };
        let (state, figures, errors) = match result {
            Ok(f) if cancel.load(Ordering::Relaxed) => ("cancelled", f, vec![]),
            Ok(f) => ("succeeded", f, vec![]),
            Err(e) => {
                let f = *live.lock().expect("run progress");
                ("failed", f, vec![e.to_string()])
            }
        };
        let now = self.clock.now();
        let what = if spec.dry_run {
            format!("dry run, would delete {}", summary(&figures))
        } else {
            summary(&figures)
        };
        let reason = format!("run {id} {state}: {what}");
        let finish = async {
            let mut tx = self.catalogue.begin().await?;
            q::finish_run(&mut tx, id, state, &figures, &errors, now).await?;
            // One entry per run with its figures; what it deleted is the run's item list.
            events::record(
                &mut tx,
                &events::NewEvent {
                    actor: &spec.started_by,
                    action: "gc.run",
                    target: Some(&id.to_string()),
                    reason: Some(&reason),
                    ..Default::default()
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
        *self.active.lock().expect("active run") = None;
        tracing::info!(
            run = id,
            state,
            dry_run = spec.dry_run,
            reviewed = figures.reviewed,
            manifests = figures.manifests,
            blobs = figures.blobs,
            bytes = figures.bytes,
            links = figures.links,
            uploads = figures.uploads,
            orphans = figures.orphans,
            "garbage collection run finished"
        );
    }

    async fn real_run(
        &self,
        id: i64,
        spec: &RunSpec,
        grace: Millis,
        cancel: &AtomicBool,
        live: &Mutex<Figures>,
    ) -> Result<Figures, GcError> {
        let _pass = self.pass.lock().await;
        let rules = self.rules(grace, spec.include_untagged);
        let progress = (id, live);
        let began = std::time::Instant::now();
        let mut out = self
            .run_passes(&rules, cancel, None, Some(progress))
            .await?;
        let reviewed = began.elapsed();
        if !cancel.load(Ordering::Relaxed) {
            let uploads = self.expire_uploads(&rules, Some(id)).await?;
            self.report(&mut out, uploads, Some(progress));
        }
        if spec.sweep && !cancel.load(Ordering::Relaxed) {
            let orphans = sweep::sweep(
                &self.catalogue,
                &*self.store,
                self.clock.now(),
                ms(self.config.sweep_min_age),
                false,
            )
            .await?;
            let mut tx = self.catalogue.begin().await?;
            q::add_run_items(&mut tx, id, &orphans.items).await?;
            commit(tx).await?;
            self.report(&mut out, orphans, Some(progress));
        }
        let swept = began.elapsed();
        // Freed means gone from storage, not only forgotten.
        self.drain_storage().await?;
        tracing::debug!(
            run = id,
            review_ms = reviewed.as_secs_f64() * 1e3,
            uploads_and_sweep_ms = (swept - reviewed).as_secs_f64() * 1e3,
            drain_ms = (began.elapsed() - swept).as_secs_f64() * 1e3,
            "gc run phases"
        );
        self.metrics.count(&out.figures);
        Ok(out.figures)
    }

    /// Reviews everything a real run would, inside one transaction that is rolled back: the
    /// list is exactly what a run would delete at this moment, cascades included.
    async fn dry_run(
        &self,
        id: i64,
        spec: &RunSpec,
        grace: Millis,
        cancel: &AtomicBool,
    ) -> Result<Figures, GcError> {
        let rules = self.rules(grace, spec.include_untagged);
        let mut out;
        {
            let mut tx = self.catalogue.begin().await?;
            out = self.run_passes(&rules, cancel, Some(&mut tx), None).await?;
            let cutoff = rules.now - ms(self.config.upload_ttl);
            let stale = q::stale_uploads(&mut tx, cutoff, i64::MAX).await?;
            for s in &stale {
                review::upload(&mut tx, s, cutoff, &rules, &mut out).await?;
            }
            // Dropping the transaction rolls every change back.
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
        q::add_run_items(&mut tx, id, &out.items).await?;
        commit(tx).await?;
        Ok(out.figures)
    }
}

/// The actor the activity log names for the online collector's own passes.
pub const COLLECTOR: &str = "gc";

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
