//! `runs` and `policies`: one active GC run in the registry and one active run per policy,
//! cancels through the run's row, interrupted runs failed at start-up, items kept in the order
//! written; policies stored, scheduled and versioned.

use shipshape_meta::policies::{self, NewRun, PolicyRow, RunFigures, Trigger};
use shipshape_meta::runs::{self, Figures, ItemKind, RunItem, RunSpec, RunState};

use super::support::*;

#[tokio::test]
async fn one_gc_run_is_active_at_a_time_and_a_cancel_is_a_flag_in_its_row() {
    each_backend(async |cat| {
        let by = anonymous();
        let spec = RunSpec {
            dry_run: true,
            include_untagged: true,
            sweep: false,
            grace_ms: Some(0),
        };
        let mut tx = begin(cat).await;
        let first = runs::start_run(&mut tx, &spec, &by, T0)
            .await
            .unwrap()
            .expect("no run is active");
        assert_eq!(
            runs::start_run(&mut tx, &RunSpec::default(), &collector(), T0 + 1)
                .await
                .unwrap(),
            Err(first)
        );
        commit(tx).await;

        let mut tx = begin(cat).await;
        let run = runs::active_run(&mut tx).await.unwrap().unwrap();
        assert_eq!(
            (run.id, run.state, run.spec.clone()),
            (first, RunState::Running, spec.clone())
        );
        assert_eq!(
            (run.started_by.as_str(), run.started_at, run.finished_at),
            ("anonymous", T0, None)
        );
        assert!(!run.cancel_requested);
        let progress = Figures {
            reviewed: 10,
            manifests: 1,
            blobs: 2,
            bytes: 300,
            links: 3,
            uploads: 0,
            orphans: 0,
        };
        assert!(
            !runs::record_progress(&mut tx, first, &progress)
                .await
                .unwrap()
        );

        let asked = runs::request_cancel(&mut tx, first).await.unwrap().unwrap();
        assert!(asked.cancel_requested);
        assert_eq!(asked.figures, progress);
        assert!(runs::cancel_requested(&mut tx, first).await.unwrap());
        assert!(
            runs::record_progress(&mut tx, first, &progress)
                .await
                .unwrap()
        );
        assert!(
            runs::request_cancel(&mut tx, first + 1000)
                .await
                .unwrap()
                .is_none()
        );

        let mut last = progress;
        last.add(&Figures {
            reviewed: 1,
            blobs: 1,
            bytes: 5,
            ..Figures::default()
        });
        assert_eq!(last.deleted(), 1 + 3 + 3);
        let errors = vec!["blob x: refused".to_string()];
        runs::finish_run(
            &mut tx,
            first,
            RunState::Cancelled,
            &last,
            &errors,
            T0 + HOUR,
        )
        .await
        .unwrap();
        assert!(runs::active_run(&mut tx).await.unwrap().is_none());
        let done = runs::get_run(&mut tx, first).await.unwrap().unwrap();
        assert_eq!(
            (
                done.state,
                done.finished_at,
                done.figures,
                done.errors.clone()
            ),
            (RunState::Cancelled, Some(T0 + HOUR), last, errors)
        );

        // Finished: the next run starts; a cancel of the finished one changes nothing.
        let second = runs::start_run(&mut tx, &RunSpec::default(), &collector(), T0 + 2 * HOUR)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(second, first);
        let second_run = runs::get_run(&mut tx, second).await.unwrap().unwrap();
        assert_eq!(second_run.started_by, "collector");
        assert!(!second_run.cancel_requested);
        let old = runs::get_run(&mut tx, first).await.unwrap().unwrap();
        assert_eq!(old.state, RunState::Cancelled);

        let listed: Vec<i64> = runs::list_runs(&mut tx, None, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(listed, vec![second, first]);
        let page: Vec<i64> = runs::list_runs(&mut tx, Some(second), 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(page, vec![first]);
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn runs_left_running_by_a_stopped_process_are_failed() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let id = runs::start_run(&mut tx, &RunSpec::default(), &anonymous(), T0)
            .await
            .unwrap()
            .unwrap();
        commit(tx).await;

        let mut tx = begin(cat).await;
        assert_eq!(
            runs::fail_interrupted_runs(&mut tx, T0 + HOUR, "node-a", true)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            runs::fail_interrupted_runs(&mut tx, T0 + HOUR, "node-a", true)
                .await
                .unwrap(),
            0
        );
        let run = runs::get_run(&mut tx, id).await.unwrap().unwrap();
        assert_eq!(
            (run.state, run.finished_at),
            (RunState::Failed, Some(T0 + HOUR))
        );
        assert_eq!(run.errors.len(), 1);
        assert!(run.errors[0].contains("interrupted"), "{:?}", run.errors);
        assert!(
            runs::start_run(&mut tx, &RunSpec::default(), &anonymous(), T0 + HOUR)
                .await
                .unwrap()
                .is_ok()
        );
        commit(tx).await;
    })
    .await;
}

/// A run held by a node stays running while the node renews it; once its lease has run out,
/// any other node fails it (its node died), but the node itself never takes its own live run
/// for dead; a node starting again fails what it left behind, lease or not.
#[tokio::test]
async fn a_run_is_failed_by_another_node_only_once_its_lease_ran_out() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let id = runs::start_run(&mut tx, &RunSpec::default(), &anonymous(), T0)
            .await
            .unwrap()
            .unwrap();
        assert!(
            runs::hold(&mut tx, id, "node-a", T0 + MINUTE)
                .await
                .unwrap()
        );
        commit(tx).await;

        let mut tx = begin(cat).await;
        // Within the lease: no other node takes it.
        let failed = runs::fail_interrupted_runs(&mut tx, T0 + SECOND, "node-b", false).await;
        assert_eq!(failed.unwrap(), 0);
        // Past it: its own node still does not (it renews what it runs)…
        let failed = runs::fail_interrupted_runs(&mut tx, T0 + HOUR, "node-a", false).await;
        assert_eq!(failed.unwrap(), 0);
        // …and a renewal keeps it from the others.
        assert!(
            runs::hold(&mut tx, id, "node-a", T0 + 2 * HOUR)
                .await
                .unwrap()
        );
        let failed = runs::fail_interrupted_runs(&mut tx, T0 + HOUR, "node-b", false).await;
        assert_eq!(failed.unwrap(), 0);
        // Another node starting does not fail a run held by a live node.
        let failed = runs::fail_interrupted_runs(&mut tx, T0 + HOUR, "node-b", true).await;
        assert_eq!(failed.unwrap(), 0);
        // Renewals stop: once the lease has run out, another node fails it, once.
        let failed = runs::fail_interrupted_runs(&mut tx, T0 + 3 * HOUR, "node-b", false).await;
        assert_eq!(failed.unwrap(), 1);
        let run = runs::get_run(&mut tx, id).await.unwrap().unwrap();
        assert_eq!(run.state, RunState::Failed);
        assert!(
            !runs::hold(&mut tx, id, "node-a", T0 + 4 * HOUR)
                .await
                .unwrap()
        );
        // The node restarting fails what it left behind at once.
        let id = runs::start_run(&mut tx, &RunSpec::default(), &anonymous(), T0 + 3 * HOUR)
            .await
            .unwrap()
            .unwrap();
        assert!(
            runs::hold(&mut tx, id, "node-a", T0 + 4 * HOUR)
                .await
                .unwrap()
        );
        let failed = runs::fail_interrupted_runs(&mut tx, T0 + 3 * HOUR, "node-a", true).await;
        assert_eq!(failed.unwrap(), 1);

        // Policy runs follow the same rule.
        let run = policies::start_run(
            &mut tx,
            &policies::NewRun {
                policy: "p",
                document: "{}",
                trigger: policies::Trigger::Manual,
                started_by: &anonymous(),
            },
            T0,
        )
        .await
        .unwrap()
        .unwrap();
        assert!(
            policies::hold(&mut tx, run, "node-a", T0 + MINUTE)
                .await
                .unwrap()
        );
        let failed = policies::fail_interrupted_runs(&mut tx, T0 + SECOND, "node-b", false).await;
        assert_eq!(failed.unwrap(), 0);
        let failed = policies::fail_interrupted_runs(&mut tx, T0 + HOUR, "node-b", false).await;
        assert_eq!(failed.unwrap(), 1);
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn run_items_come_back_in_the_order_written() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let id = runs::start_run(&mut tx, &RunSpec::default(), &anonymous(), T0)
            .await
            .unwrap()
            .unwrap();
        // More than one statement's worth, in an order no column sorts them by.
        let kinds = [
            ItemKind::Orphan,
            ItemKind::Manifest,
            ItemKind::Link,
            ItemKind::Blob,
            ItemKind::Upload,
        ];
        let items: Vec<RunItem> = (0..1_203u64)
            .map(|i| RunItem {
                kind: kinds[i as usize % kinds.len()],
                repository: (i % 3 != 0).then(|| format!("team/r{}", i % 7)),
                target: format!("target-{}", (i * 7_919) % 1_203),
                size: i * 10,
            })
            .collect();
        runs::add_run_items(&mut tx, id, &items[..3]).await.unwrap();
        runs::add_run_items(&mut tx, id, &items[3..]).await.unwrap();
        runs::add_run_items(&mut tx, id, &[]).await.unwrap();
        commit(tx).await;

        assert_eq!(
            runs::run_items(&mut reader(cat).await, id).await.unwrap(),
            items
        );
        for kind in kinds {
            assert_eq!(kind.to_string().parse::<ItemKind>().unwrap(), kind);
        }
        for state in [
            RunState::Running,
            RunState::Succeeded,
            RunState::Cancelled,
            RunState::Failed,
        ] {
            assert_eq!(state.to_string().parse::<RunState>().unwrap(), state);
        }
        assert!("paused".parse::<RunState>().is_err());
    })
    .await;
}

#[tokio::test]
async fn policies_are_stored_scheduled_and_versioned() {
    each_backend(async |cat| {
        let by = anonymous();
        let row = |name, document, next_run_at| PolicyRow {
            name,
            document,
            schedule: Some("daily"),
            next_run_at,
            by: &by,
        };
        let mut tx = begin(cat).await;
        assert_eq!(policies::version(&mut tx).await.unwrap(), 0);
        assert!(
            policies::put(&mut tx, &row("keep-ten", "{\"v\":1}", Some(T0 + HOUR)), T0)
                .await
                .unwrap()
        );
        assert_eq!(policies::version(&mut tx).await.unwrap(), 1);
        assert!(
            !policies::put(
                &mut tx,
                &row("keep-ten", "{\"v\":2}", Some(T0 + HOUR)),
                T0 + 1
            )
            .await
            .unwrap()
        );
        assert_eq!(policies::version(&mut tx).await.unwrap(), 2);
        assert!(
            policies::put(&mut tx, &row("drop-old", "{}", None), T0 + 2)
                .await
                .unwrap()
        );
        assert_eq!(policies::version(&mut tx).await.unwrap(), 3);

        let stored = policies::get(&mut tx, "keep-ten").await.unwrap().unwrap();
        assert_eq!(
            (
                stored.document.as_str(),
                stored.created_at,
                stored.updated_at
            ),
            ("{\"v\":2}", T0, T0 + 1)
        );
        assert_eq!(
            (stored.schedule.as_deref(), stored.updated_by.as_str()),
            (Some("daily"), "anonymous")
        );
        let names: Vec<String> = policies::list(&mut tx)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, vec!["drop-old", "keep-ten"]);

        // Due at its instant; moved on once, by whichever scheduler gets there first.
        assert!(
            policies::due(&mut tx, T0 + HOUR - 1)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            policies::due(&mut tx, T0 + HOUR).await.unwrap(),
            vec![("keep-ten".to_string(), T0 + HOUR)]
        );
        assert!(
            policies::advance_schedule(&mut tx, "keep-ten", T0 + HOUR, T0 + DAY)
                .await
                .unwrap()
        );
        assert!(
            !policies::advance_schedule(&mut tx, "keep-ten", T0 + HOUR, T0 + DAY)
                .await
                .unwrap()
        );
        assert!(
            !policies::advance_schedule(&mut tx, "drop-old", T0 + HOUR, T0 + DAY)
                .await
                .unwrap()
        );
        assert!(
            policies::due(&mut tx, T0 + 2 * HOUR)
                .await
                .unwrap()
                .is_empty()
        );

        assert!(policies::remove(&mut tx, "drop-old").await.unwrap());
        assert_eq!(policies::version(&mut tx).await.unwrap(), 4);
        assert!(!policies::remove(&mut tx, "drop-old").await.unwrap());
        assert_eq!(
            policies::version(&mut tx).await.unwrap(),
            4,
            "removing nothing changes nothing"
        );
        assert!(policies::get(&mut tx, "drop-old").await.unwrap().is_none());
        commit(tx).await;
        assert_eq!(policies::version(&mut reader(cat).await).await.unwrap(), 4);
    })
    .await;
}

#[tokio::test]
async fn one_run_per_policy_is_active_at_a_time() {
    each_backend(async |cat| {
        let by = anonymous();
        let run = |policy| NewRun {
            policy,
            document: "{}",
            trigger: Trigger::Manual,
            started_by: &by,
        };
        let mut tx = begin(cat).await;
        let a = policies::start_run(&mut tx, &run("a"), T0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            policies::start_run(&mut tx, &run("a"), T0 + 1)
                .await
                .unwrap(),
            Err(a)
        );
        // Another policy runs beside it.
        let b = policies::start_run(&mut tx, &run("b"), T0 + 2)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(a, b);

        let got = policies::get_run(&mut tx, a).await.unwrap().unwrap();
        assert_eq!(
            (got.policy.as_str(), got.trigger, got.state),
            ("a", Trigger::Manual, RunState::Running)
        );
        assert_eq!(
            (
                got.started_by.as_str(),
                got.started_at,
                got.evaluated_at,
                got.finished_at
            ),
            ("anonymous", T0, T0, None)
        );

        let figures = RunFigures {
            repositories: 2,
            repositories_affected: 1,
            tags_evaluated: 9,
            tags_deleted: 3,
            manifests_deleted: 1,
            bytes_held: 100,
            bytes_freed: 0,
        };
        assert!(
            !policies::record_progress(&mut tx, a, &figures)
                .await
                .unwrap()
        );
        assert!(
            policies::request_cancel(&mut tx, a)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            policies::record_progress(&mut tx, a, &figures)
                .await
                .unwrap(),
            "the cancel is read back"
        );
        assert!(
            !policies::record_progress(&mut tx, b, &figures)
                .await
                .unwrap(),
            "only the run asked"
        );
        policies::finish_run(&mut tx, a, RunState::Cancelled, &figures, &[], T0 + HOUR)
            .await
            .unwrap();
        let done = policies::get_run(&mut tx, a).await.unwrap().unwrap();
        assert_eq!(
            (done.state, done.figures, done.finished_at),
            (RunState::Cancelled, figures, Some(T0 + HOUR))
        );
        assert_eq!(figures.deleted(), 4);
        let again = policies::start_run(&mut tx, &run("a"), T0 + 2 * HOUR)
            .await
            .unwrap()
            .unwrap();

        let of_a: Vec<i64> = policies::list_runs(&mut tx, Some("a"), None, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(of_a, vec![again, a]);
        let all: Vec<i64> = policies::list_runs(&mut tx, None, Some(again), 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(all, vec![b, a]);

        // At start-up, runs left running fail: `b` and the second run of `a`.
        assert_eq!(
            policies::fail_interrupted_runs(&mut tx, T0 + DAY, "node-a", true)
                .await
                .unwrap(),
            2
        );
        let failed = policies::get_run(&mut tx, b).await.unwrap().unwrap();
        assert_eq!(
            (failed.state, failed.finished_at),
            (RunState::Failed, Some(T0 + DAY))
        );
        assert!(failed.errors[0].contains("interrupted"));
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn policy_run_items_come_back_in_the_order_written() {
    each_backend(async |cat| {
        let by = anonymous();
        let mut tx = begin(cat).await;
        let run = NewRun {
            policy: "p",
            document: "{}",
            trigger: Trigger::Schedule,
            started_by: &by,
        };
        let id = policies::start_run(&mut tx, &run, T0)
            .await
            .unwrap()
            .unwrap();
        let items: Vec<policies::RunItem> = [
            ("v9", policies::ItemKind::Tag),
            ("sha256:ab", policies::ItemKind::Manifest),
            ("v1", policies::ItemKind::Tag),
        ]
        .into_iter()
        .map(|(target, kind)| policies::RunItem {
            repository: "team/app".into(),
            kind,
            target: target.into(),
            digest: digest(target).to_string(),
            rule: "keep_last".into(),
            reason: format!("{target} is old"),
        })
        .collect();
        for item in &items {
            policies::add_run_item(&mut tx, id, item).await.unwrap();
        }
        commit(tx).await;
        let mut rd = reader(cat).await;
        assert_eq!(policies::run_items(&mut rd, id).await.unwrap(), items);
        assert_eq!(
            policies::get_run(&mut rd, id)
                .await
                .unwrap()
                .unwrap()
                .trigger,
            Trigger::Schedule
        );
        for t in [Trigger::Schedule, Trigger::Manual] {
            assert_eq!(t.to_string().parse::<Trigger>().unwrap(), t);
        }
    })
    .await;
}

/// Items of GC and policy runs that finished before the cutoff are forgotten in batches; the
/// runs themselves, a run still going and later runs keep theirs.
#[tokio::test]
async fn the_items_of_runs_finished_before_the_cutoff_are_pruned() {
    each_backend(async |cat| {
        let by = anonymous();
        let gc_item = |i: u64| RunItem {
            kind: ItemKind::Blob,
            repository: None,
            target: format!("blob-{i}"),
            size: i,
        };
        let policy_item = |i: u64| policies::RunItem {
            repository: "team/app".into(),
            kind: policies::ItemKind::Tag,
            target: format!("v{i}"),
            digest: "sha256:00".into(),
            rule: "keep 1".into(),
            reason: "older".into(),
        };
        let mut tx = begin(cat).await;
        let mut gc = Vec::new();
        for (n, finished) in [(5, Some(T0 + HOUR)), (3, Some(T0 + 3 * HOUR)), (2, None)] {
            let id = runs::start_run(&mut tx, &RunSpec::default(), &by, T0)
                .await
                .unwrap()
                .unwrap();
            let items: Vec<RunItem> = (0..n).map(gc_item).collect();
            runs::add_run_items(&mut tx, id, &items).await.unwrap();
            if let Some(at) = finished {
                runs::finish_run(
                    &mut tx,
                    id,
                    RunState::Succeeded,
                    &Figures::default(),
                    &[],
                    at,
                )
                .await
                .unwrap();
            }
            gc.push(id);
        }
        let mut kept = Vec::new();
        for (policy, finished) in [("old", T0 + HOUR), ("new", T0 + 3 * HOUR)] {
            let run = NewRun {
                policy,
                document: "{}",
                trigger: Trigger::Manual,
                started_by: &by,
            };
            let id = policies::start_run(&mut tx, &run, T0)
                .await
                .unwrap()
                .unwrap();
            for i in 0..4 {
                policies::add_run_item(&mut tx, id, &policy_item(i))
                    .await
                    .unwrap();
            }
            policies::finish_run(
                &mut tx,
                id,
                RunState::Succeeded,
                &Default::default(),
                &[],
                finished,
            )
            .await
            .unwrap();
            kept.push(id);
        }
        commit(tx).await;

        let cutoff = T0 + 2 * HOUR;
        let mut tx = begin(cat).await;
        assert_eq!(runs::prune_items(&mut tx, cutoff, 3).await.unwrap(), 3);
        assert_eq!(runs::prune_items(&mut tx, cutoff, 3).await.unwrap(), 2);
        assert_eq!(runs::prune_items(&mut tx, cutoff, 3).await.unwrap(), 0);
        assert_eq!(
            policies::prune_run_items(&mut tx, cutoff, 10)
                .await
                .unwrap(),
            4
        );
        assert_eq!(
            policies::prune_run_items(&mut tx, cutoff, 10)
                .await
                .unwrap(),
            0
        );
        commit(tx).await;

        let mut rd = reader(cat).await;
        let left: Vec<usize> = {
            let mut v = Vec::new();
            for id in &gc {
                v.push(runs::run_items(&mut rd, *id).await.unwrap().len());
            }
            v
        };
        assert_eq!(left, [0, 3, 2]);
        assert!(
            runs::get_run(&mut rd, gc[0]).await.unwrap().is_some(),
            "the run stays"
        );
        assert_eq!(
            policies::run_items(&mut rd, kept[0]).await.unwrap().len(),
            0
        );
        assert_eq!(
            policies::run_items(&mut rd, kept[1]).await.unwrap().len(),
            4
        );
    })
    .await;
}
