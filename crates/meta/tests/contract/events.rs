//! `events`: the activity log, recorded with who acted and from where, listed newest first
//! through filters that combine, and pruned oldest first.

use shipshape_meta::events::{self, Action, Event, EventFilter, NewEvent, Visible};
use shipshape_meta::{Catalogue, Millis};

use super::support::*;

/// Records the log the listing tests read: five entries, one a minute.
async fn record_log(cat: &Catalogue) {
    let (anon, coll) = (anonymous(), collector());
    let entries = [
        (&anon, Action::TagPush, Some("team/app"), "v1"),
        (&anon, Action::TagDelete, Some("team/app"), "v1"),
        (
            &anon,
            Action::ManifestDelete,
            Some("team/other"),
            "sha256:x",
        ),
        (&coll, Action::GcRun, None, "run 1"),
        (&anon, Action::TagRestore, Some("team/other"), "v2"),
    ];
    let mut tx = begin(cat).await;
    for (i, (by, action, repository, target)) in entries.into_iter().enumerate() {
        let mut e = NewEvent::new(by, action);
        e.repository = repository;
        e.target = Some(target);
        e.digest = Some(digest(target).to_string());
        e.reason = Some("contract");
        events::record(&mut tx, &e, T0 + i as Millis * MINUTE)
            .await
            .unwrap();
    }
    commit(tx).await;
}

async fn listed(cat: &Catalogue, filter: EventFilter, limit: i64) -> Vec<Event> {
    events::list(&mut reader(cat).await, &filter, None, limit)
        .await
        .unwrap()
}

fn actions(events: &[Event]) -> Vec<Action> {
    events.iter().map(|e| e.action).collect()
}

#[tokio::test]
async fn an_event_keeps_who_acted_from_where_and_on_what() {
    each_backend(async |cat| {
        record_log(cat).await;
        let all = listed(cat, EventFilter::default(), 10).await;
        assert_eq!(all.len(), 5);
        let push = &all[4];
        assert_eq!((push.action, push.at), (Action::TagPush, T0));
        assert_eq!(
            (push.actor.as_str(), push.source.as_deref()),
            ("anonymous", Some("192.0.2.7"))
        );
        assert_eq!(
            (push.repository.as_deref(), push.target.as_deref()),
            (Some("team/app"), Some("v1"))
        );
        assert_eq!(push.digest, Some(digest("v1").to_string()));
        assert_eq!(push.reason.as_deref(), Some("contract"));
        let run = &all[1];
        assert_eq!(
            (run.action, run.actor.as_str(), run.source.as_deref()),
            (Action::GcRun, "collector", None)
        );
        assert_eq!(run.repository, None);
    })
    .await;
}

#[tokio::test]
async fn filters_combine_and_pages_follow_the_id_cursor() {
    each_backend(async |cat| {
        record_log(cat).await;
        let all = listed(cat, EventFilter::default(), 10).await;
        // Newest first.
        assert_eq!(
            actions(&all),
            vec![
                Action::TagRestore,
                Action::GcRun,
                Action::ManifestDelete,
                Action::TagDelete,
                Action::TagPush
            ]
        );
        assert!(all.windows(2).all(|w| w[0].id > w[1].id));

        let in_repo = |name: &str| EventFilter {
            repository: Some(name.into()),
            ..EventFilter::default()
        };
        assert_eq!(
            actions(&listed(cat, in_repo("team/app"), 10).await),
            vec![Action::TagDelete, Action::TagPush]
        );
        let action = |a: &str| EventFilter {
            action: Some(a.into()),
            ..EventFilter::default()
        };
        // A family matches each of its actions; an exact action only itself.
        assert_eq!(
            actions(&listed(cat, action("tag"), 10).await),
            vec![Action::TagRestore, Action::TagDelete, Action::TagPush]
        );
        assert_eq!(
            actions(&listed(cat, action("tag.delete"), 10).await),
            vec![Action::TagDelete]
        );
        assert!(listed(cat, action("ta"), 10).await.is_empty());
        // `since` is inclusive, `until` exclusive.
        let window = EventFilter {
            since: Some(T0 + MINUTE),
            until: Some(T0 + 3 * MINUTE),
            ..EventFilter::default()
        };
        assert_eq!(
            actions(&listed(cat, window, 10).await),
            vec![Action::ManifestDelete, Action::TagDelete]
        );
        let combined = EventFilter {
            repository: Some("team/other".into()),
            action: Some("tag".into()),
            ..EventFilter::default()
        };
        assert_eq!(
            actions(&listed(cat, combined, 10).await),
            vec![Action::TagRestore]
        );

        let first = listed(cat, EventFilter::default(), 2).await;
        assert_eq!(actions(&first), vec![Action::TagRestore, Action::GcRun]);
        let next = EventFilter {
            before: Some(first[1].id),
            ..EventFilter::default()
        };
        assert_eq!(
            actions(&listed(cat, next, 2).await),
            vec![Action::ManifestDelete, Action::TagDelete]
        );
    })
    .await;
}

/// A caller's visibility is part of the query: only the repositories it names, entries naming
/// no repository only when registry-wide, and a page is full with an exact cursor.
#[tokio::test]
async fn visibility_keeps_only_the_named_repositories_and_pages_exactly() {
    each_backend(async |cat| {
        record_log(cat).await;
        let mut rd = reader(cat).await;
        assert_eq!(
            events::repositories(&mut rd).await.unwrap(),
            ["team/app", "team/other"]
        );
        let seen = async |v: Visible, f: EventFilter, limit| {
            let mut rd = reader(cat).await;
            events::list(&mut rd, &f, Some(&v), limit).await.unwrap()
        };
        let app_only = Visible {
            repositories: vec!["team/app".into()],
            registry_wide: false,
        };
        assert_eq!(
            actions(&seen(app_only.clone(), EventFilter::default(), 10).await),
            vec![Action::TagDelete, Action::TagPush]
        );
        // The first page of one is the newest visible entry, and its cursor leads to the next.
        let first = seen(app_only.clone(), EventFilter::default(), 1).await;
        assert_eq!(actions(&first), vec![Action::TagDelete]);
        let next = EventFilter {
            before: Some(first[0].id),
            ..EventFilter::default()
        };
        assert_eq!(
            actions(&seen(app_only, next, 1).await),
            vec![Action::TagPush]
        );
        let wide = Visible {
            repositories: vec!["team/other".into()],
            registry_wide: true,
        };
        assert_eq!(
            actions(&seen(wide, EventFilter::default(), 10).await),
            vec![Action::TagRestore, Action::GcRun, Action::ManifestDelete]
        );
        assert!(
            seen(Visible::default(), EventFilter::default(), 10)
                .await
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn prune_forgets_the_oldest_entries_a_batch_at_a_time() {
    each_backend(async |cat| {
        record_log(cat).await;
        let mut tx = begin(cat).await;
        // Three entries are older than the fourth minute; a batch of two takes the oldest two.
        assert_eq!(events::prune(&mut tx, T0 + 3 * MINUTE, 2).await.unwrap(), 2);
        assert_eq!(events::prune(&mut tx, T0 + 3 * MINUTE, 2).await.unwrap(), 1);
        assert_eq!(events::prune(&mut tx, T0 + 3 * MINUTE, 2).await.unwrap(), 0);
        commit(tx).await;
        assert_eq!(
            actions(&listed(cat, EventFilter::default(), 10).await),
            vec![Action::TagRestore, Action::GcRun]
        );
    })
    .await;
}

#[test]
fn every_action_round_trips_and_filters_name_actions_or_families() {
    for a in Action::ALL {
        assert_eq!(a.to_string().parse::<Action>().unwrap(), a);
        assert!(events::is_known_action(a.as_str()));
        assert!(events::is_known_action(a.family()));
        assert!(a.as_str().starts_with(&format!("{}.", a.family())));
    }
    assert!("tag.nope".parse::<Action>().is_err());
    assert!(
        "tag".parse::<Action>().is_err(),
        "a family is not an action"
    );
    for unknown in ["", "ta", "tags", "push", "tag.", "tag.push.x", "TAG.PUSH"] {
        assert!(!events::is_known_action(unknown), "{unknown:?}");
    }
}

/// An action filter names an action or a family; nothing else matches. The family is matched
/// with `LIKE '<family>.%'`, so the filter's own `%` and `_` are wildcards, and SQLite's `LIKE`
/// ignores the case of ASCII letters (PostgreSQL's does not: the backends disagree). The
/// registry refuses such filters before it asks (`Registry::events` checks
/// `is_known_action`), so no client sees this today; a caller that skips the check does.
#[tokio::test]
async fn an_action_filter_matches_only_the_action_or_family_it_names() {
    each_backend(async |cat| {
        record_log(cat).await;
        let mut matched = Vec::new();
        for filter in ["TAG", "Tag", "%", "t_g", "tag.%"] {
            let filter = EventFilter {
                action: Some(filter.into()),
                ..EventFilter::default()
            };
            let found = listed(cat, filter.clone(), 10).await;
            if !found.is_empty() {
                matched.push((filter.action.unwrap(), actions(&found)));
            }
        }
        assert!(
            matched.is_empty(),
            "filters that name no action or family listed events: {matched:?}"
        );
    })
    .await;
}
