//! Storage figures shared between requests. The figures classify every blob and manifest of
//! the registry (one query over the whole catalogue), so they are taken once and served to
//! every request until something could have changed them: a write committed on this node, an
//! action recorded in the activity log by any node, the registry's clock reaching the instant
//! at which time alone changes them (garbage leaving its grace period, a deletion leaving its
//! restore window: the query says when), or, on a catalogue other nodes share, `MAX_AGE`
//! passing (their uploads and lease renewals record no action). A SQLite catalogue has no
//! other writer while a registry serves it (the data directory's lock keeps the offline
//! commands out), so there figures stay until something changes them. Writes that cannot
//! change them (pull counts, login times, the collector's claims) do not count as commits
//! (`Tx::leaves_figures`). Requests arriving while the figures are being taken wait for them
//! instead of taking them too, so however many ask, a node walks the catalogue at most once
//! at a time.
//!
//! Taking them costs time in proportion to the catalogue (about a second per 100 000 blobs):
//! the API waits for current figures, but a web page (a registry seen through `for_pages`)
//! waits at most `RegistryOptions::page_figures_wait` (not at all when they are being taken
//! already) and is otherwise drawn with the last figures, saying when they were taken, while
//! their retaking goes on for the next view.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shipshape_meta::usage::{self, Usage};
use shipshape_meta::{Millis, events};

use super::{Registry, Result};

/// How long figures are served, on a catalogue other nodes share, when nothing this node can
/// see has changed them.
const MAX_AGE: Duration = Duration::from_secs(10);

/// The figures of the whole registry and of every live repository, as taken at `taken_at`.
#[derive(Debug)]
pub struct Figures {
    pub total: Usage,
    /// By repository name, in name order.
    pub per_repository: Vec<(String, Usage)>,
    pub taken_at: Millis,
}

/// What the figures were taken after: the writes this node had committed and the newest
/// entry of the activity log.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Mark {
    commits: u64,
    latest_event: Option<i64>,
}

/// When figures stop being current by time alone.
#[derive(Debug)]
struct Expiry {
    /// On the registry's clock: the first change time alone makes.
    turns_at: Option<Millis>,
    /// On this process's clock.
    taken: Instant,
}

/// Figures as taken, with what they were taken after and when time alone changes them.
#[derive(Debug)]
struct Taken {
    mark: Mark,
    expiry: Expiry,
    figures: Arc<Figures>,
}

#[derive(Debug, Default)]
pub(super) struct FiguresCache {
    /// Held while figures are checked and taken: a node walks the catalogue once at a time.
    taking: tokio::sync::Mutex<()>,
    /// The figures last taken.
    last: std::sync::Mutex<Option<Taken>>,
}

/// What a registry seen by web pages (`Registry::for_pages`) remembers of one request's
/// figures.
#[derive(Debug, Default)]
pub(super) struct PageFigures {
    /// When the figures served to this request were taken, had they stopped being current.
    stale_since: std::sync::Mutex<Option<Millis>>,
}

impl Registry {
    /// This registry as one web request sees it: its storage figures are the last ones taken
    /// when taking current ones would keep the page waiting longer than
    /// `page_figures_wait` (see the module's comment and `stale_figures`).
    pub fn for_pages(&self) -> Registry {
        Registry {
            page: Some(Arc::default()),
            ..self.clone()
        }
    }

    /// When the figures this request was served were taken, if they were no longer current
    /// (only on a registry from `for_pages`).
    pub fn stale_figures(&self) -> Option<Millis> {
        self.page
            .as_ref()
            .and_then(|p| *p.stale_since.lock().expect("page figures"))
    }

    /// The storage figures: current ones (see the module's comment), or on a registry seen by
    /// a web page, the last ones taken when current ones take longer than its wait.
    pub async fn figures(&self) -> Result<Arc<Figures>> {
        let Some(page) = &self.page else {
            return self.current_figures().await;
        };
        let mark = self.mark().await?;
        if let Some(figures) = self.last_if_current(mark) {
            return Ok(figures);
        }
        let stale = |figures: Arc<Figures>| {
            *page.stale_since.lock().expect("page figures") = Some(figures.taken_at);
            Ok(figures)
        };
        // Being taken already (for another page, or the API): this page does not wait for them
        // too, nor start a second walk behind the first.
        if let Some(figures) = self.last_figures()
            && self.figures.taking.try_lock().is_err()
        {
            return stale(figures);
        }
        let me = Registry {
            page: None,
            ..self.clone()
        };
        // Spawned: when the page stops waiting, the figures are still taken, for the next view.
        let mut taking = tokio::spawn(async move { me.current_figures().await });
        let wait = self.options.page_figures_wait;
        // A zero wait does not even look: the page is drawn with what is there.
        if !wait.is_zero()
            && let Ok(taken) = tokio::time::timeout(wait, &mut taking).await
        {
            return joined(taken);
        }
        match self.last_figures() {
            Some(figures) => stale(figures),
            // Nothing taken yet: nothing to show but what is being taken.
            None => joined(taking.await),
        }
    }

    /// The figures last taken, current or not.
    fn last_figures(&self) -> Option<Arc<Figures>> {
        let last = self.figures.last.lock().expect("figures");
        last.as_ref().map(|t| t.figures.clone())
    }

    /// The storage figures, taken again only when they may have changed since they were last
    /// taken (see the module's comment).
    async fn current_figures(&self) -> Result<Arc<Figures>> {
        let _taking = self.figures.taking.lock().await;
        let mark = self.mark().await?;
        if let Some(figures) = self.last_if_current(mark) {
            return Ok(figures);
        }
        let rules = self.usage_rules();
        let taken = Instant::now();
        let mut conn = self.catalogue.reader().await?;
        let (total, turns_at) = usage::total_until(&mut conn, &rules).await?;
        let figures = Arc::new(Figures {
            total,
            per_repository: usage::per_repository(&mut conn, &rules, None).await?,
            taken_at: rules.now,
        });
        *self.figures.last.lock().expect("figures") = Some(Taken {
            mark,
            expiry: Expiry { turns_at, taken },
            figures: figures.clone(),
        });
        Ok(figures)
    }

    /// What figures taken now are taken after.
    async fn mark(&self) -> Result<Mark> {
        // The counter is read before the catalogue: a write committed after this read moves it
        // and makes the next caller take the figures again.
        let commits = self.catalogue.stats().commits.load(Ordering::Acquire);
        let mut conn = self.catalogue.reader().await?;
        Ok(Mark {
            commits,
            latest_event: events::latest_id(&mut conn).await?,
        })
    }

    /// The figures last taken, if they are current for `mark` now.
    fn last_if_current(&self, mark: Mark) -> Option<Arc<Figures>> {
        let now = self.now();
        let shared = self.catalogue.backend_name() == "postgres";
        let last = self.figures.last.lock().expect("figures");
        let t = last.as_ref()?;
        (t.mark == mark
            && now >= t.figures.taken_at
            && t.expiry.turns_at.is_none_or(|at| now < at)
            && (!shared || t.expiry.taken.elapsed() < MAX_AGE))
            .then(|| t.figures.clone())
    }
}

/// The result of the task taking the figures; its panic goes on as this request's, as if it
/// had run here (the task is only ever cancelled by the runtime stopping).
fn joined<T>(r: std::result::Result<T, tokio::task::JoinError>) -> T {
    match r {
        Ok(t) => t,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
