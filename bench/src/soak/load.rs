//! The soak's load, all at once for the whole run: pushers of new tags, pullers of tags the load
//! still keeps, a deleter of random tags, and the retention policy's and the collector's runs.
//! Each operation is recorded in a [`Recorder`] that the sampler drains, and the tags alive are
//! tracked in [`Tags`] so that a failing pull of one of them is known to be an error.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::Kind;
use super::registry::{self, Outcome};
use crate::gc::model::Rng;

/// Fault messages kept (and printed as they happen): enough to diagnose, bounded when a dead
/// server makes every request fail.
const FAULTS_KEPT: usize = 20;

/// The operations of one kind finished since the last sample.
#[derive(Clone, Debug, Default)]
pub struct Window {
    pub latencies_ms: Vec<f64>,
    pub errors: u64,
    /// Pulls and deletes of tags that were deleted meanwhile: correct answers, not timed.
    pub gone: u64,
}

/// What the load did, per kind, since the last `take`; and every misbehaviour seen.
#[derive(Default)]
pub struct Recorder {
    windows: Mutex<[Window; 5]>,
    faults: Mutex<Vec<String>>,
    fault_count: AtomicU64,
}

impl Recorder {
    fn with<R>(&self, kind: Kind, f: impl FnOnce(&mut Window) -> R) -> R {
        f(&mut self.windows.lock().expect("recorder")[kind.index()])
    }

    fn done(&self, kind: Kind, ms: f64) {
        self.with(kind, |w| w.latencies_ms.push(ms));
    }

    fn outcome(&self, kind: Kind, started: Instant, result: Result<Outcome, String>) {
        match result {
            Ok(Outcome::Done) => self.done(kind, ms_since(started)),
            Ok(Outcome::Gone) => self.with(kind, |w| w.gone += 1),
            Err(e) => self.fail(kind, e),
        }
    }

    fn fail(&self, kind: Kind, message: String) {
        self.with(kind, |w| w.errors += 1);
        self.fault(format!("{}: {message}", kind.name()));
    }

    /// Records an answer a correct registry never gives.
    pub fn fault(&self, message: String) {
        let n = self.fault_count.fetch_add(1, Ordering::Relaxed);
        if (n as usize) < FAULTS_KEPT {
            eprintln!("ERROR {message}");
            self.faults.lock().expect("faults").push(message);
        }
    }

    /// The windows since the last call, emptied.
    pub fn take(&self) -> [Window; 5] {
        std::mem::take(&mut *self.windows.lock().expect("recorder"))
    }

    /// How many misbehaviours were seen, and the first few.
    pub fn faults(&self) -> (u64, Vec<String>) {
        (
            self.fault_count.load(Ordering::Relaxed),
            self.faults.lock().expect("faults").clone(),
        )
    }
}

/// The tags the load pushed and has not seen deleted, per repository.
pub struct Tags {
    repos: Vec<String>,
    live: Mutex<Vec<Vec<String>>>,
}

impl Tags {
    fn new(repos: Vec<String>) -> Tags {
        let live = Mutex::new(vec![Vec::new(); repos.len()]);
        Tags { repos, live }
    }

    fn add(&self, repo: usize, tag: String) {
        self.live.lock().expect("tags")[repo].push(tag);
    }

    fn pick(&self, rng: &mut Rng) -> Option<(usize, String)> {
        let live = self.live.lock().expect("tags");
        let repo = rng.below(live.len() as u64) as usize;
        let tags = &live[repo];
        (!tags.is_empty()).then(|| (repo, tags[rng.below(tags.len() as u64) as usize].clone()))
    }

    /// Takes a random tag of a random repository out, unless that leaves it fewer than `keep`.
    fn take_one(&self, rng: &mut Rng, keep: usize) -> Option<(usize, String)> {
        let mut live = self.live.lock().expect("tags");
        let repo = rng.below(live.len() as u64) as usize;
        let tags = &mut live[repo];
        (tags.len() > keep).then(|| {
            (
                repo,
                tags.swap_remove(rng.below(tags.len() as u64) as usize),
            )
        })
    }

    fn forget(&self, deleted: &[(String, String)]) {
        let mut by_repo: HashMap<&str, HashSet<&str>> = HashMap::new();
        for (repo, tag) in deleted {
            by_repo.entry(repo).or_default().insert(tag);
        }
        let mut live = self.live.lock().expect("tags");
        for (r, name) in self.repos.iter().enumerate() {
            if let Some(gone) = by_repo.get(name.as_str()) {
                live[r].retain(|t| !gone.contains(t.as_str()));
            }
        }
    }

    pub fn count(&self) -> usize {
        self.live.lock().expect("tags").iter().map(Vec::len).sum()
    }
}

/// The shape of the load.
#[derive(Clone, Debug)]
pub struct Plan {
    pub repos: Vec<String>,
    pub pushers: usize,
    /// Each pusher starts a push this often (sooner never; later when the last one was slow).
    pub push_every: Duration,
    pub pullers: usize,
    pub pull_every: Duration,
    pub delete_every: Duration,
    /// The deleter leaves a repository at least this many of its tags.
    pub delete_keep: usize,
    pub policy: String,
    pub policy_every: Duration,
    pub gc_every: Duration,
}

/// The running load; `stop` ends it.
pub struct Load {
    tasks: Vec<JoinHandle<()>>,
    pub recorder: Arc<Recorder>,
    pub tags: Arc<Tags>,
}

/// Calls `op` every `period` until the task is aborted.
async fn every<F, Fut>(period: Duration, mut op: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        op().await;
    }
}

/// What every task of the load shares.
#[derive(Clone)]
struct Ctx {
    http: reqwest::Client,
    base: Arc<str>,
    recorder: Arc<Recorder>,
    tags: Arc<Tags>,
}

impl Load {
    pub fn start(base: &str, plan: &Plan) -> Load {
        let ctx = Ctx {
            http: registry::client(),
            base: base.into(),
            recorder: Arc::default(),
            tags: Arc::new(Tags::new(plan.repos.clone())),
        };
        let mut tasks = Vec::new();
        for n in 0..plan.pushers {
            tasks.push(tokio::spawn(pusher(ctx.clone(), plan.push_every, n)));
        }
        for n in 0..plan.pullers {
            tasks.push(tokio::spawn(puller(ctx.clone(), plan.pull_every, n)));
        }
        tasks.push(tokio::spawn(deleter(
            ctx.clone(),
            plan.delete_every,
            plan.delete_keep,
        )));
        tasks.push(tokio::spawn(policy(
            ctx.clone(),
            plan.policy_every,
            plan.policy.clone(),
        )));
        tasks.push(tokio::spawn(collector(ctx.clone(), plan.gc_every)));
        Load {
            tasks,
            recorder: ctx.recorder,
            tags: ctx.tags,
        }
    }

    /// Aborts every task: an operation in flight is neither counted nor waited for.
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// A fixed seed per task: two soaks of the same length choose alike.
fn seed(n: usize) -> u64 {
    0x50A4_0000 + n as u64
}

async fn pusher(ctx: Ctx, period: Duration, n: usize) {
    let mut rng = Rng::new(seed(n));
    let mut k = 0u64;
    every(period, || {
        k += 1;
        let repo = rng.below(ctx.tags.repos.len() as u64) as usize;
        let tag = format!("p{n}-{k}");
        let ctx = ctx.clone();
        async move {
            let started = Instant::now();
            let name = &ctx.tags.repos[repo];
            match registry::push_image(&ctx.http, &ctx.base, name, &tag).await {
                Ok(()) => {
                    ctx.recorder.done(Kind::Push, ms_since(started));
                    ctx.tags.add(repo, tag);
                }
                Err(e) => ctx.recorder.fail(Kind::Push, format!("{name}:{tag}: {e}")),
            }
        }
    })
    .await
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

async fn puller(ctx: Ctx, period: Duration, n: usize) {
    let mut rng = Rng::new(seed(100 + n));
    every(period, || {
        let target = ctx.tags.pick(&mut rng);
        let ctx = ctx.clone();
        async move {
            let Some((repo, tag)) = target else { return };
            let name = &ctx.tags.repos[repo];
            let started = Instant::now();
            let result = registry::pull_image(&ctx.http, &ctx.base, name, &tag).await;
            let result = result.map_err(|e| format!("{name}:{tag}: {e}"));
            ctx.recorder.outcome(Kind::Pull, started, result);
        }
    })
    .await
}

/// Deletes random tags as users do, from any age: the policy trims the oldest, this the rest.
async fn deleter(ctx: Ctx, period: Duration, keep: usize) {
    let mut rng = Rng::new(seed(200));
    every(period, || {
        // Taken out of the tracked tags first, so pullers stop choosing it.
        let target = ctx.tags.take_one(&mut rng, keep);
        let ctx = ctx.clone();
        async move {
            let Some((repo, tag)) = target else { return };
            let name = &ctx.tags.repos[repo];
            let started = Instant::now();
            let result = registry::delete_tag(&ctx.http, &ctx.base, name, &tag).await;
            let result = result.map_err(|e| format!("{name}:{tag}: {e}"));
            ctx.recorder.outcome(Kind::Delete, started, result);
        }
    })
    .await
}

async fn policy(ctx: Ctx, period: Duration, name: String) {
    every(period, || async {
        match registry::policy_run(&ctx.http, &ctx.base, &name).await {
            Ok(Some((ms, deleted))) => {
                ctx.tags.forget(&deleted);
                ctx.recorder.done(Kind::Policy, ms);
            }
            Ok(None) => {}
            Err(e) => ctx.recorder.fail(Kind::Policy, e),
        }
    })
    .await
}

async fn collector(ctx: Ctx, period: Duration) {
    every(period, || async {
        match registry::gc_run(&ctx.http, &ctx.base).await {
            Ok(Some(ms)) => ctx.recorder.done(Kind::Gc, ms),
            Ok(None) => {}
            Err(e) => ctx.recorder.fail(Kind::Gc, e),
        }
    })
    .await
}
