//! The storage figures over time, for the overview's chart: a sample of the shared figures
//! (`figures.rs`) whenever the newest sample is older than the interval, old samples pruned
//! past the retention, and the history as the chart draws it. The sample at each garbage
//! collection run's end is the collector's (`Collector::execute`), written as the run ends.

use std::time::Duration;

use shipshape_meta::samples::{self, Point, Sample};
use shipshape_meta::{Millis, commit};

use super::{Registry, Result};

/// The most points the chart draws: a longer history shows the newest sample of each of this
/// many stretches of time.
pub const CHART_POINTS: i64 = 60;

/// Samples pruned per transaction.
const PRUNE_BATCH: i64 = 5_000;

fn ms(d: Duration) -> Millis {
    d.as_millis().min(Millis::MAX as u128) as Millis
}

impl Registry {
    /// Records a sample of the storage figures when the newest sample (from any node) is older
    /// than the sampling interval; returns whether this node recorded one. An interval of zero
    /// samples nothing on a schedule.
    pub async fn sample_storage(&self) -> Result<bool> {
        let interval = ms(self.options.sample_interval);
        if interval == 0 {
            return Ok(false);
        }
        // Most looks find a recent sample: those take no figures.
        let newest = {
            let mut conn = self.catalogue.reader().await?;
            samples::newest_at(&mut conn).await?
        };
        if newest.is_some_and(|t| t > self.now() - interval) {
            return Ok(false);
        }
        let figures = self.figures().await?;
        let sample = Sample::of(figures.taken_at, &figures.total, None);
        let mut tx = self.catalogue.begin().await?;
        let recorded = samples::record_if_due(&mut tx, &sample, interval).await?;
        // A sample of the figures does not change them.
        tx.leaves_figures();
        commit(tx).await?;
        Ok(recorded)
    }

    /// Forgets the samples older than the retention, a batch per transaction; returns how many.
    pub async fn prune_samples(&self) -> Result<u64> {
        let before = self.now() - ms(self.options.sample_retention);
        let mut pruned = 0;
        loop {
            let mut tx = self.catalogue.begin().await?;
            let n = samples::prune(&mut tx, before, PRUNE_BATCH).await?;
            commit(tx).await?;
            pruned += n;
            if n < PRUNE_BATCH as u64 {
                return Ok(pruned);
            }
        }
    }

    /// The storage figures over the retention, oldest first, at most `CHART_POINTS` of them,
    /// each with what garbage collection runs freed since the first.
    pub async fn storage_history(&self) -> Result<Vec<Point>> {
        let now = self.now();
        let since = now - ms(self.options.sample_retention);
        let mut conn = self.catalogue.reader().await?;
        Ok(samples::history(&mut conn, since, now, CHART_POINTS).await?)
    }
}
