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

#[derive(Debug, Default)]
pub(super) struct FiguresCache {
    slot: tokio::sync::Mutex<Option<(Mark, Expiry, Arc<Figures>)>>,
}

impl Registry {
    /// The storage figures, taken again only when they may have changed since they were last
    /// taken (see the module's comment).
    pub async fn figures(&self) -> Result<Arc<Figures>> {
        let mut slot = self.figures.slot.lock().await;
        // The counter is read before the catalogue: a write committed after this read moves it
        // and makes the next caller take the figures again.
        let commits = self.catalogue.stats().commits.load(Ordering::Acquire);
        let mut conn = self.catalogue.reader().await?;
        let mark = Mark {
            commits,
            latest_event: events::latest_id(&mut conn).await?,
        };
        let now = self.now();
        let shared = self.catalogue.backend_name() == "postgres";
        if let Some((taken, expiry, figures)) = &*slot
            && *taken == mark
            && now >= figures.taken_at
            && expiry.turns_at.is_none_or(|t| now < t)
            && (!shared || expiry.taken.elapsed() < MAX_AGE)
        {
            return Ok(figures.clone());
        }
        let rules = self.usage_rules();
        let taken = Instant::now();
        let (total, turns_at) = usage::total_until(&mut conn, &rules).await?;
        let figures = Arc::new(Figures {
            total,
            per_repository: usage::per_repository(&mut conn, &rules, None).await?,
            taken_at: rules.now,
        });
        *slot = Some((mark, Expiry { turns_at, taken }, figures.clone()));
        Ok(figures)
    }
}
