//! `samples`: the storage figures over time. A scheduled sample at most once per interval,
//! whichever node takes it; a run's sample whenever the run ends; the chart's history thinned
//! to the newest sample of each bucket, with what real runs freed; old samples pruned.

use std::sync::Arc;

use shipshape_meta::runs::{self, Figures, RunSpec, RunState};
use shipshape_meta::samples::{self, Sample};
use shipshape_meta::{Catalogue, Millis};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::support::*;

const INTERVAL: Millis = 15 * MINUTE;

/// Figures that add up: `n` bytes live, one held, two in grace, three reclaimable.
fn sample(at: Millis, n: u64) -> Sample {
    Sample {
        at,
        gc_run: None,
        stored: n + 6,
        in_use: n,
        held_for_restore: 1,
        in_grace: 2,
        reclaimable: 3,
        blobs: 4,
        manifests: 5,
    }
}

async fn due(cat: &Catalogue, at: Millis, n: u64, interval: Millis) -> bool {
    let mut tx = begin(cat).await;
    let recorded = samples::record_if_due(&mut tx, &sample(at, n), interval)
        .await
        .unwrap();
    commit(tx).await;
    recorded
}

async fn history(cat: &Catalogue, since: Millis, now: Millis, buckets: i64) -> Vec<(Millis, u64)> {
    samples::history(&mut reader(cat).await, since, now, buckets)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.sample.at, p.freed_by_runs))
        .collect()
}

/// A run started at `at` and ended at once, having freed `bytes`.
async fn run(cat: &Catalogue, at: Millis, dry_run: bool, bytes: u64) -> i64 {
    let mut tx = begin(cat).await;
    let spec = RunSpec {
        dry_run,
        ..RunSpec::default()
    };
    let id = runs::start_run(&mut tx, &spec, &collector(), at)
        .await
        .unwrap()
        .unwrap();
    let figures = Figures {
        bytes,
        blobs: 1,
        ..Figures::default()
    };
    runs::finish_run(&mut tx, id, RunState::Succeeded, &figures, &[], at)
        .await
        .unwrap();
    commit(tx).await;
    id
}

#[tokio::test]
async fn a_scheduled_sample_is_taken_once_per_interval_and_a_runs_whenever_it_ends() {
    each_backend(async |cat| {
        assert_eq!(
            samples::newest_at(&mut reader(cat).await).await.unwrap(),
            None
        );
        assert!(due(cat, T0, 100, INTERVAL).await, "the first sample");
        assert!(
            !due(cat, T0 + MINUTE, 101, INTERVAL).await,
            "a minute later"
        );
        assert!(
            !due(cat, T0 + INTERVAL - 1, 101, INTERVAL).await,
            "just before the interval has passed"
        );
        assert!(due(cat, T0 + INTERVAL, 102, INTERVAL).await);

        // A run's sample is taken whenever the run ends, and counts as the newest.
        let id = run(cat, T0 + 20 * MINUTE, false, 50).await;
        let mut tx = begin(cat).await;
        samples::record_for_run(&mut tx, &sample(T0 + 20 * MINUTE, 52), id)
            .await
            .unwrap();
        commit(tx).await;
        assert_eq!(
            samples::newest_at(&mut reader(cat).await).await.unwrap(),
            Some(T0 + 20 * MINUTE)
        );
        assert!(!due(cat, T0 + 30 * MINUTE, 103, INTERVAL).await);
        assert!(due(cat, T0 + 35 * MINUTE, 104, INTERVAL).await);

        let points = samples::history(&mut reader(cat).await, T0, T0 + HOUR, 100)
            .await
            .unwrap();
        let got: Vec<(Millis, Option<i64>, u64, u64)> = points
            .iter()
            .map(|p| {
                (
                    p.sample.at,
                    p.sample.gc_run,
                    p.sample.in_use,
                    p.freed_by_runs,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (T0, None, 100, 0),
                (T0 + INTERVAL, None, 102, 0),
                (T0 + 20 * MINUTE, Some(id), 52, 50),
                (T0 + 35 * MINUTE, None, 104, 50),
            ]
        );
        assert_eq!(points[2].sample, {
            let mut s = sample(T0 + 20 * MINUTE, 52);
            s.gc_run = Some(id);
            s
        });
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_sampling_the_same_interval_at_once_record_one_sample() {
    const NODES: usize = 8;
    each_backend(async |cat| {
        let start = Arc::new(Barrier::new(NODES));
        let mut tasks = JoinSet::new();
        for i in 0..NODES {
            let (cat, start) = (cat.clone(), start.clone());
            tasks.spawn(async move {
                start.wait().await;
                let mut tx = cat.begin().await.expect("begin");
                let recorded =
                    samples::record_if_due(&mut tx, &sample(T0 + i as Millis, i as u64), INTERVAL)
                        .await
                        .expect("every node's statement succeeds");
                shipshape_meta::commit(tx).await.expect("commit");
                recorded
            });
        }
        let recorded = tasks.join_all().await;
        assert_eq!(recorded.iter().filter(|r| **r).count(), 1, "{recorded:?}");
        assert_eq!(history(cat, T0, T0 + HOUR, 100).await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn the_history_shows_the_newest_sample_of_each_bucket_and_what_real_runs_freed() {
    each_backend(async |cat| {
        for i in 0..10 {
            assert!(due(cat, T0 + i * MINUTE, i as u64, MINUTE).await);
        }
        // Freed before the first sample shown, by a dry run, and by a run.
        run(cat, T0 - MINUTE, false, 1000).await;
        run(cat, T0 + 6 * MINUTE, true, 900).await;
        run(cat, T0 + 7 * MINUTE + 30 * SECOND, false, 500).await;

        // Two buckets over the ten minutes from the first sample: the newest of each.
        let now = T0 + 10 * MINUTE - 1;
        assert_eq!(
            history(cat, T0, now, 2).await,
            vec![(T0 + 4 * MINUTE, 0), (T0 + 9 * MINUTE, 500)]
        );
        // As many buckets as samples or more: every sample.
        let all = history(cat, T0, now, 10).await;
        assert_eq!(all.len(), 10);
        assert_eq!(all[7], (T0 + 7 * MINUTE, 0));
        assert_eq!(all[8], (T0 + 8 * MINUTE, 500));
        // From a later instant, the first sample shown is the first counted from.
        assert_eq!(
            history(cat, T0 + 8 * MINUTE, now, 10).await,
            vec![(T0 + 8 * MINUTE, 0), (T0 + 9 * MINUTE, 0)]
        );
        assert_eq!(history(cat, T0 + HOUR, now, 10).await, vec![]);
    })
    .await;
}

#[tokio::test]
async fn samples_older_than_the_retention_are_pruned_a_batch_at_a_time() {
    each_backend(async |cat| {
        for i in 0..8 {
            assert!(due(cat, T0 + i * MINUTE, 1, MINUTE).await);
        }
        let mut pruned = Vec::new();
        loop {
            let mut tx = begin(cat).await;
            let n = samples::prune(&mut tx, T0 + 5 * MINUTE, 3).await.unwrap();
            commit(tx).await;
            pruned.push(n);
            if n < 3 {
                break;
            }
        }
        assert_eq!(pruned, vec![3, 2]);
        let left: Vec<Millis> = history(cat, 0, T0 + HOUR, 100)
            .await
            .into_iter()
            .map(|(at, _)| at)
            .collect();
        assert_eq!(
            left,
            vec![T0 + 5 * MINUTE, T0 + 6 * MINUTE, T0 + 7 * MINUTE]
        );
    })
    .await;
}
