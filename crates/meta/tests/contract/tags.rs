//! `tags` and `batches`: every change of a tag writes its history, what a tag carried when it
//! left a manifest is kept for a restore, and the restore bin lists what can go back.

use shipshape_meta::batches::{self, Operation};
use shipshape_meta::repos;
use shipshape_meta::tags::{self, By, TagState};

use super::support::*;

#[tokio::test]
async fn set_records_a_push_and_a_move_but_not_the_same_manifest_again() {
    each_backend(async |cat| {
        let by = anonymous();
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let m1 = manifest(&mut tx, r, "one", &[], &[], T0).await;
        let m2 = manifest(&mut tx, r, "two", &[], &[], T0).await;
        let v1 = tag("v1");

        assert_eq!(
            tags::set(&mut tx, r, &v1, &m1, &By::new(&by, T0))
                .await
                .unwrap(),
            None
        );
        let history = tags::history_of(&mut tx, r, Some(&v1), 10).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].action, "pushed");
        assert_eq!(
            (history[0].from_digest.clone(), history[0].to_digest.clone()),
            (None, Some(m1.digest.clone()))
        );
        assert_eq!(
            (history[0].actor.as_str(), history[0].at),
            ("anonymous", T0)
        );

        // The same manifest again: a new push time, pulls kept, no history.
        tags::record_pulls(&mut tx, r, "v1", 2, T0 + 1)
            .await
            .unwrap();
        let again = tags::set(&mut tx, r, &v1, &m1, &By::new(&by, T0 + 2))
            .await
            .unwrap();
        assert_eq!(again, Some(m1.digest.clone()));
        assert_eq!(
            tags::history_of(&mut tx, r, Some(&v1), 10)
                .await
                .unwrap()
                .len(),
            1
        );
        let now = tags::current(&mut tx, r, "v1").await.unwrap().unwrap();
        assert_eq!(
            now.state,
            TagState {
                pushed_at: T0 + 2,
                last_pulled_at: Some(T0 + 1),
                pull_count: 2
            }
        );
        tags::record_pulls(&mut tx, r, "v1", 1, T0 + 3)
            .await
            .unwrap();

        // Moved: the history names the image the tag left; the tag starts unpulled there.
        let moved = tags::set(&mut tx, r, &v1, &m2, &By::new(&by, T0 + 4))
            .await
            .unwrap();
        assert_eq!(moved, Some(m1.digest.clone()));
        let history = tags::history_of(&mut tx, r, Some(&v1), 10).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].action, "moved");
        assert_eq!(history[0].from_digest, Some(m1.digest.clone()));
        assert_eq!(history[0].to_digest, Some(m2.digest.clone()));
        assert_eq!(history[0].at, T0 + 4);
        let now = tags::current(&mut tx, r, "v1").await.unwrap().unwrap();
        assert_eq!(now.manifest.id, m2.id);
        assert_eq!(
            now.state,
            TagState {
                pushed_at: T0 + 4,
                last_pulled_at: None,
                pull_count: 0
            }
        );
        assert_eq!(
            tags::resolve(&mut tx, r, &v1).await.unwrap().unwrap().id,
            m2.id
        );

        // What the tag carried on the image it left, for a restore.
        assert_eq!(
            tags::state_when_left(&mut tx, r, &v1, &m1.digest)
                .await
                .unwrap(),
            Some(TagState {
                pushed_at: T0 + 2,
                last_pulled_at: Some(T0 + 3),
                pull_count: 3
            })
        );
        assert_eq!(
            tags::last_left_digest(&mut tx, r, &v1).await.unwrap(),
            Some(m1.digest.clone())
        );
        assert!(
            tags::ever_pointed_at(&mut tx, r, &v1, &m1.digest)
                .await
                .unwrap()
        );
        assert!(
            tags::ever_pointed_at(&mut tx, r, &v1, &m2.digest)
                .await
                .unwrap()
        );
        assert!(
            !tags::ever_pointed_at(&mut tx, r, &tag("v2"), &m1.digest)
                .await
                .unwrap()
        );
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn delete_records_the_departure_and_the_restore_bin_lists_it() {
    each_backend(async |cat| {
        let by = anonymous();
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let m1 = manifest(&mut tx, r, "one", &[], &[], T0).await;
        let m2 = manifest(&mut tx, r, "two", &[], &[], T0).await;
        let (v1, latest) = (tag("v1"), tag("latest"));
        tags::set(&mut tx, r, &v1, &m1, &By::new(&by, T0))
            .await
            .unwrap();
        tags::record_pulls(&mut tx, r, "v1", 5, T0 + 5)
            .await
            .unwrap();
        tags::set(&mut tx, r, &latest, &m1, &By::new(&by, T0 + 1))
            .await
            .unwrap();
        tags::set(&mut tx, r, &tag("v2"), &m2, &By::new(&by, T0 + 2))
            .await
            .unwrap();

        let deleted = tags::delete(&mut tx, r, &v1, &By::new(&by, T0 + 10))
            .await
            .unwrap();
        assert_eq!(deleted, Some(m1.digest.clone()));
        assert_eq!(
            tags::delete(&mut tx, r, &v1, &By::new(&by, T0 + 10))
                .await
                .unwrap(),
            None
        );
        assert!(tags::resolve(&mut tx, r, &v1).await.unwrap().is_none());
        let history = tags::history_of(&mut tx, r, Some(&v1), 10).await.unwrap();
        assert_eq!(
            history.len(),
            2,
            "a second delete of a missing tag writes nothing"
        );
        assert_eq!(history[0].action, "deleted");
        assert_eq!(
            (history[0].from_digest.clone(), history[0].to_digest.clone()),
            (Some(m1.digest.clone()), None)
        );
        tags::set(&mut tx, r, &latest, &m2, &By::new(&by, T0 + 11))
            .await
            .unwrap();
        commit(tx).await;

        // Newest first; a moved tag shows what it points at now.
        let mut rd = reader(cat).await;
        let bin = tags::restorable(&mut rd, Some(r), T0, None, 10, None)
            .await
            .unwrap();
        let seen: Vec<_> = bin
            .iter()
            .map(|e| {
                (
                    e.tag.as_str(),
                    e.how.as_str(),
                    e.digest.clone(),
                    e.current.clone(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    "latest",
                    "moved",
                    m1.digest.clone(),
                    Some(m2.digest.clone())
                ),
                ("v1", "deleted", m1.digest.clone(), None),
            ]
        );
        assert_eq!(bin[1].left_at, T0 + 10);
        assert_eq!(
            (bin[1].repository.as_str(), bin[1].repository_deleted),
            ("team/app", false)
        );
        assert_eq!(bin[1].batch, None);
        // Only departures after the cutoff; pages by the id of the last entry.
        let recent = tags::restorable(&mut rd, Some(r), T0 + 10, None, 10, None)
            .await
            .unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].tag, "latest");
        let page = tags::restorable(&mut rd, None, T0, Some(bin[0].id), 10, None)
            .await
            .unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].tag, "v1");
        // A caller's visibility keeps only the repositories it names.
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let visible = names(&["team/app"]);
        let shown = tags::restorable(&mut rd, None, T0, None, 10, Some(&visible))
            .await
            .unwrap();
        assert_eq!(shown.len(), 2);
        let other = names(&["team/other"]);
        let hidden = tags::restorable(&mut rd, None, T0, None, 10, Some(&other))
            .await
            .unwrap();
        assert!(hidden.is_empty(), "{hidden:?}");
        assert_eq!(
            repos::all_names(&mut rd).await.unwrap(),
            ["team/app"],
            "every repository, by name"
        );
        drop(rd);

        // Restored with what it carried: it leaves the bin.
        let mut tx = begin(cat).await;
        let state = tags::state_when_left(&mut tx, r, &v1, &m1.digest)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            state,
            TagState {
                pushed_at: T0,
                last_pulled_at: Some(T0 + 5),
                pull_count: 5
            }
        );
        let before = tags::restore(&mut tx, r, &v1, &m1, state, &By::new(&by, T0 + 20))
            .await
            .unwrap();
        assert_eq!(before, None);
        let info = tags::detailed(&mut tx, r, &v1).await.unwrap().unwrap();
        assert_eq!(
            (
                info.manifest_id,
                info.pushed_at,
                info.last_pulled_at,
                info.pull_count
            ),
            (m1.id, T0, Some(T0 + 5), 5)
        );
        let history = tags::history_of(&mut tx, r, Some(&v1), 1).await.unwrap();
        assert_eq!(history[0].action, "restored");
        assert_eq!(
            (history[0].from_digest.clone(), history[0].to_digest.clone()),
            (None, Some(m1.digest.clone()))
        );
        let bin = tags::restorable(&mut tx, Some(r), T0, None, 10, None)
            .await
            .unwrap();
        assert_eq!(
            bin.iter().map(|e| e.tag.as_str()).collect::<Vec<_>>(),
            vec!["latest"]
        );

        // A forced restore over a reused name leaves that image restorable in turn.
        let over = tags::restore(
            &mut tx,
            r,
            &latest,
            &m1,
            TagState {
                pushed_at: T0 + 1,
                ..TagState::default()
            },
            &By::new(&by, T0 + 21),
        )
        .await
        .unwrap();
        assert_eq!(over, Some(m2.digest.clone()));
        let bin = tags::restorable(&mut tx, Some(r), T0, None, 10, None)
            .await
            .unwrap();
        let seen: Vec<_> = bin
            .iter()
            .map(|e| (e.tag.as_str(), e.how.as_str(), e.digest.clone()))
            .collect();
        assert_eq!(seen, vec![("latest", "restored", m2.digest.clone())]);
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn a_batch_names_the_tags_one_operation_removed() {
    each_backend(async |cat| {
        let by = collector();
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let other = repo(&mut tx, "team/other", T0).await;
        let m1 = manifest(&mut tx, r, "one", &[], &[], T0).await;
        let m2 = manifest(&mut tx, r, "two", &[], &[], T0).await;
        for (name, m) in [("b", &m1), ("a", &m2), ("c", &m1)] {
            tags::set(&mut tx, r, &tag(name), m, &By::new(&by, T0))
                .await
                .unwrap();
        }
        assert_eq!(
            batches::latest(&mut tx, r, Operation::TagBulkDelete)
                .await
                .unwrap(),
            None
        );
        let batch = batches::create(&mut tx, Operation::TagBulkDelete, r, &by, T0 + HOUR)
            .await
            .unwrap();
        let removed = tags::delete_all(&mut tx, r, &By::new(&by, T0 + HOUR).in_batch(batch))
            .await
            .unwrap();
        assert_eq!(
            removed,
            vec![
                ("a".to_string(), m2.digest.clone()),
                ("b".to_string(), m1.digest.clone()),
                ("c".to_string(), m1.digest.clone())
            ]
        );
        assert!(tags::list_detailed(&mut tx, r).await.unwrap().is_empty());
        assert_eq!(
            tags::removed_in_batch(&mut tx, batch).await.unwrap(),
            removed
        );

        let recorded = batches::get(&mut tx, batch).await.unwrap().unwrap();
        assert_eq!(
            recorded,
            batches::Batch {
                id: batch,
                action: "tag.bulk_delete".into(),
                repository: "team/app".into(),
                actor: "collector".into(),
                at: T0 + HOUR
            }
        );
        assert_eq!(
            batches::latest(&mut tx, r, Operation::TagBulkDelete)
                .await
                .unwrap(),
            Some(batch)
        );
        assert_eq!(
            batches::latest(&mut tx, r, Operation::RepositoryDelete)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            batches::latest(&mut tx, other, Operation::TagBulkDelete)
                .await
                .unwrap(),
            None
        );
        let bin = tags::restorable(&mut tx, Some(r), T0, None, 10, None)
            .await
            .unwrap();
        assert_eq!(bin.len(), 3);
        assert!(
            bin.iter()
                .all(|e| e.batch == Some(batch) && e.actor == "collector")
        );
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn delete_for_manifest_removes_every_tag_on_it() {
    each_backend(async |cat| {
        let by = anonymous();
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let m1 = manifest(&mut tx, r, "one", &[], &[], T0).await;
        let m2 = manifest(&mut tx, r, "two", &[], &[], T0).await;
        for (name, m) in [("x", &m1), ("y", &m1), ("z", &m2)] {
            tags::set(&mut tx, r, &tag(name), m, &By::new(&by, T0))
                .await
                .unwrap();
        }
        let gone = tags::delete_for_manifest(&mut tx, r, &m1, &By::new(&by, T0 + 1))
            .await
            .unwrap();
        assert_eq!(gone, vec!["x", "y"]);
        let left: Vec<String> = tags::list_detailed(&mut tx, r)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(left, vec!["z"]);
        for name in ["x", "y"] {
            let h = tags::history_of(&mut tx, r, Some(&tag(name)), 1)
                .await
                .unwrap();
            assert_eq!(
                (h[0].action.as_str(), h[0].from_digest.clone()),
                ("deleted", Some(m1.digest.clone()))
            );
        }
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn tag_listings_page_in_byte_order() {
    each_backend(async |cat| {
        let by = anonymous();
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        repo(&mut tx, "team/empty", T0).await;
        let m = manifest(&mut tx, r, "one", &[], &[], T0).await;
        for name in ["v2", "V1", "latest", "v10"] {
            tags::set(&mut tx, r, &tag(name), &m, &By::new(&by, T0))
                .await
                .unwrap();
        }
        commit(tx).await;

        let mut rd = reader(cat).await;
        let app = repo_name("team/app");
        let all = tags::list_in_named(&mut rd, &app, None, -1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(all, vec!["V1", "latest", "v10", "v2"]);
        let page = tags::list_in_named(&mut rd, &app, Some("latest"), 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page, vec!["v10", "v2"]);
        let empty = tags::list_in_named(&mut rd, &repo_name("team/empty"), None, -1)
            .await
            .unwrap();
        assert_eq!(empty, Some(Vec::new()));
        assert_eq!(
            tags::list_in_named(&mut rd, &repo_name("team/none"), None, -1)
                .await
                .unwrap(),
            None
        );
        let (head, body) = tags::resolve_in_named(&mut rd, &app, &tag("v2"), true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((head.id, body), (m.id, Some(payload("one"))));
    })
    .await;
}

/// Two pushes of one tag, each reading its clock before it waits for the writer (as
/// `Registry::put_manifest` does: `now`, then `Catalogue::begin`): the one that read the clock
/// first can get the tag second. Its move follows the other's (it left the other's image, and
/// `tags::set` says so), but the history is ordered by the instants the callers passed, so it
/// is listed before the move it followed, and `last_left_digest` (what a restore without a
/// digest brings back) answers from the wrong entry. With several nodes, clock skew does the
/// same without any waiting. `restorable` orders by id and agrees with the true order.
#[tokio::test]
async fn history_follows_the_order_of_the_changes_not_the_callers_instants() {
    each_backend(async |cat| {
        let by = anonymous();
        let latest = tag("latest");
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let m1 = manifest(&mut tx, r, "one", &[], &[], T0).await;
        let m2 = manifest(&mut tx, r, "two", &[], &[], T0).await;
        let m3 = manifest(&mut tx, r, "three", &[], &[], T0).await;
        tags::set(&mut tx, r, &latest, &m1, &By::new(&by, T0))
            .await
            .unwrap();
        commit(tx).await;

        // Read its clock second, got the writer first.
        let mut first = begin(cat).await;
        tags::set(&mut first, r, &latest, &m2, &By::new(&by, T0 + 2 * SECOND))
            .await
            .unwrap();
        commit(first).await;
        // Read its clock first, got the writer second: it leaves m2.
        let mut second = begin(cat).await;
        let left = tags::set(&mut second, r, &latest, &m3, &By::new(&by, T0 + SECOND))
            .await
            .unwrap();
        assert_eq!(left, Some(m2.digest.clone()));
        commit(second).await;

        let mut rd = reader(cat).await;
        let bin = tags::restorable(&mut rd, Some(r), 0, None, 10, None)
            .await
            .unwrap();
        assert_eq!(
            bin[0].digest, m2.digest,
            "the restore bin has the true order"
        );
        let history = tags::history_of(&mut rd, r, Some(&latest), 10)
            .await
            .unwrap();
        let moves: Vec<_> = history
            .iter()
            .map(|h| (h.from_digest.clone(), h.to_digest.clone()))
            .collect();
        assert_eq!(
            moves,
            vec![
                (Some(m2.digest.clone()), Some(m3.digest.clone())),
                (Some(m1.digest.clone()), Some(m2.digest.clone())),
                (None, Some(m1.digest.clone())),
            ],
            "newest first, each move after the one it followed"
        );
        assert_eq!(
            tags::last_left_digest(&mut rd, r, &latest).await.unwrap(),
            Some(m2.digest.clone())
        );
    })
    .await;
}
