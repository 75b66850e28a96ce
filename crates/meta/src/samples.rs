//! The registry's storage figures over time (`storage_samples`), what the overview's chart
//! draws: the total as `usage` classifies it, sampled on a schedule and as each garbage
//! collection run ends, and the bytes the runs freed between samples (`gc_runs`).
//!
//! Several nodes may share the catalogue and each samples on its own schedule; a scheduled
//! sample is written only when no sample is newer than the interval, and under the interval's
//! `slot`, which is unique: of two nodes sampling the same interval at once, one writes.

use crate::db::{execute, rows, values};
use crate::usage::Usage;
use crate::{Conn, Millis, Result};

/// The registry's storage figures at one instant; `stored` is the sum of the four classes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub at: Millis,
    /// The garbage collection run whose end this sample was taken at; `None` for a sample of
    /// the schedule.
    pub gc_run: Option<i64>,
    pub stored: u64,
    pub in_use: u64,
    pub held_for_restore: u64,
    pub in_grace: u64,
    pub reclaimable: u64,
    pub blobs: u64,
    pub manifests: u64,
}

impl Sample {
    /// The figures `u` as taken at `at`.
    pub fn of(at: Millis, u: &Usage, gc_run: Option<i64>) -> Sample {
        Sample {
            at,
            gc_run,
            stored: u.stored,
            in_use: u.in_use,
            held_for_restore: u.held_for_restore,
            in_grace: u.in_grace,
            reclaimable: u.reclaimable,
            blobs: u.blobs,
            manifests: u.manifests,
        }
    }
}

/// A sample as the chart shows it: with the bytes garbage collection runs freed after the
/// first sample shown, up to and including this one's instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    pub sample: Sample,
    pub freed_by_runs: u64,
}

/// The start of both inserts: the columns, bound by `bind_sample!` in this order.
macro_rules! insert {
    () => {
        "INSERT INTO storage_samples (at, slot, gc_run_id, stored_bytes, live_bytes,
             held_bytes, grace_bytes, reclaimable_bytes, blobs, manifests)"
    };
}

/// Binds a sample to $1..$10: its time, `$slot`, its run, its figures.
macro_rules! bind_sample {
    ($q:expr, $s:expr, $slot:expr) => {
        $q.bind($s.at)
            .bind($slot)
            .bind($s.gc_run)
            .bind($s.stored as i64)
            .bind($s.in_use as i64)
            .bind($s.held_for_restore as i64)
            .bind($s.in_grace as i64)
            .bind($s.reclaimable as i64)
            .bind($s.blobs as i64)
            .bind($s.manifests as i64)
    };
}

/// Records `sample` as the sample of its interval of `interval` milliseconds (more than
/// zero), unless a sample is newer than `interval` before it or another node recorded this
/// interval's already; returns whether it was recorded. The check and the insert are one
/// statement, and the interval's slot is unique: of nodes sampling the same interval at once,
/// one records (PostgreSQL's others wait for its commit, then do nothing). Two nodes on either
/// side of an interval's boundary at once may both record: two points a moment apart.
pub async fn record_if_due(conn: &mut dyn Conn, sample: &Sample, interval: Millis) -> Result<bool> {
    let interval = interval.max(1);
    let scheduled = Sample {
        gc_run: None,
        ..sample.clone()
    };
    let done = execute!(conn, |cx| bind_sample!(
        sqlx::query(concat!(
            insert!(),
            " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
             WHERE NOT EXISTS (SELECT 1 FROM storage_samples WHERE at > $11)
             ON CONFLICT (slot) DO NOTHING"
        )),
        scheduled,
        Some(sample.at.div_euclid(interval))
    )
    .bind(sample.at - interval))?;
    Ok(done.rows_affected() == 1)
}

/// Records the sample taken as garbage collection run `run` ended.
pub async fn record_for_run(conn: &mut dyn Conn, sample: &Sample, run: i64) -> Result<()> {
    let of_run = Sample {
        gc_run: Some(run),
        ..sample.clone()
    };
    execute!(conn, |cx| bind_sample!(
        sqlx::query(concat!(
            insert!(),
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )),
        of_run,
        None::<i64>
    ))?;
    Ok(())
}

/// When the newest sample was taken, if any was.
pub async fn newest_at(conn: &mut dyn Conn) -> Result<Option<Millis>> {
    Ok(values!(conn, fetch_one, |cx| sqlx::query_scalar(
        "SELECT max(at) FROM storage_samples"
    ))?)
}

/// The samples taken at or after `since`, oldest first, at most one per `buckets`-th of the
/// time from the first of them to `now` (the newest of each: a bucket shows where it ended),
/// each with the bytes the garbage collection runs that ended after the first sample and by
/// its instant freed (dry runs free nothing).
pub async fn history(
    conn: &mut dyn Conn,
    since: Millis,
    now: Millis,
    buckets: i64,
) -> Result<Vec<Point>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "WITH first(at) AS (SELECT min(at) FROM storage_samples WHERE at >= $1),
              shown(id) AS (
                  SELECT max(s.id) FROM storage_samples s CROSS JOIN first f
                  WHERE s.at >= $1
                  GROUP BY (s.at - f.at) * $2 / (CASE WHEN $3 > f.at THEN $3 - f.at ELSE 0 END + 1))
         SELECT s.at, s.gc_run_id, s.stored_bytes, s.live_bytes, s.held_bytes, s.grace_bytes,
                s.reclaimable_bytes, s.blobs, s.manifests,
                CAST((SELECT coalesce(sum(r.bytes_deleted), 0) FROM gc_runs r, first f
                      WHERE NOT r.dry_run AND r.finished_at > f.at AND r.finished_at <= s.at)
                     AS BIGINT) AS freed
         FROM storage_samples s WHERE s.id IN (SELECT id FROM shown)
         ORDER BY s.at, s.id"
    )
    .bind(since)
    .bind(buckets.max(1))
    .bind(now))?;
    rows.iter()
        .map(|r| {
            let n = |col: &str| -> Result<u64> { Ok(r.try_get::<i64>(col)? as u64) };
            Ok(Point {
                sample: Sample {
                    at: r.try_get("at")?,
                    gc_run: r.try_get("gc_run_id")?,
                    stored: n("stored_bytes")?,
                    in_use: n("live_bytes")?,
                    held_for_restore: n("held_bytes")?,
                    in_grace: n("grace_bytes")?,
                    reclaimable: n("reclaimable_bytes")?,
                    blobs: n("blobs")?,
                    manifests: n("manifests")?,
                },
                freed_by_runs: n("freed")?,
            })
        })
        .collect()
}

/// Forgets up to `limit` samples taken before `before`; returns how many. The caller repeats
/// until fewer than `limit` go, each batch in a short transaction.
pub async fn prune(conn: &mut dyn Conn, before: Millis, limit: i64) -> Result<u64> {
    let done = execute!(conn, |cx| sqlx::query(
        "DELETE FROM storage_samples WHERE id IN (
             SELECT id FROM storage_samples WHERE at < $1 ORDER BY at LIMIT $2)"
    )
    .bind(before)
    .bind(crate::limit(limit)))?;
    Ok(done.rows_affected())
}
