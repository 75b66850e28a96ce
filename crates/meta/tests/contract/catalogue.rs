//! The catalogue as a whole: what a transaction's commit, rollback and drop leave for readers,
//! and the queries of `shipshape check` (`consistency`).

use shipshape_meta::tags::{self, By};
use shipshape_meta::{blobs, changes, consistency, manifests, queue, repos, rollback, uploads};
use shipshape_oci::{Algorithm, UploadId};

use super::support::*;

#[tokio::test]
async fn readers_see_committed_writes_only() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        repo(&mut tx, "kept", T0).await;
        // A transaction sees its own writes before it commits; a reader does not.
        assert!(
            repos::find(&mut tx, &repo_name("kept"))
                .await
                .unwrap()
                .is_some()
        );
        let mut r = reader(cat).await;
        assert!(
            repos::find(&mut r, &repo_name("kept"))
                .await
                .unwrap()
                .is_none()
        );
        drop(r);
        commit(tx).await;

        let mut tx = begin(cat).await;
        repo(&mut tx, "rolled-back", T0).await;
        rollback(tx).await.unwrap();
        let mut tx = begin(cat).await;
        repo(&mut tx, "dropped", T0).await;
        drop(tx);

        let mut r = reader(cat).await;
        assert!(
            repos::find(&mut r, &repo_name("kept"))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            repos::find(&mut r, &repo_name("rolled-back"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            repos::find(&mut r, &repo_name("dropped"))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(rows(cat, "repositories").await, 1);
    })
    .await;
}

#[tokio::test]
async fn the_check_pages_through_blobs_and_finds_what_is_broken() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let mut digests = [
            blob(&mut tx, r, "a", 1, T0).await,
            blob(&mut tx, r, "b", 2, T0).await,
            blob(&mut tx, r, "c", 3, T0).await,
        ];
        digests.sort();
        blobs::mark_missing(&mut tx, &digests[1]).await.unwrap();

        // A page at a time, in digest order, each blob saying whether its bytes are present.
        let first = consistency::blobs_page(&mut tx, None, 2).await.unwrap();
        let page: Vec<_> = first.iter().map(|(b, p)| (b.digest.clone(), *p)).collect();
        assert_eq!(
            page,
            vec![(digests[0].clone(), true), (digests[1].clone(), false)]
        );
        let after = first[1].0.digest.to_string();
        let second = consistency::blobs_page(&mut tx, Some(&after), 2)
            .await
            .unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].0.digest, digests[2]);

        // A tagged image whose layer is no longer linked, and a tag on a deleted manifest.
        let layer = digest("a");
        let image = manifest(&mut tx, r, "image", std::slice::from_ref(&layer), &[], T0).await;
        let by = anonymous();
        tags::set(&mut tx, r, &tag("v1"), &image, &By::new(&by, T0))
            .await
            .unwrap();
        assert_eq!(
            consistency::users_of_blob(&mut tx, &layer).await.unwrap(),
            vec![(
                "team/app".to_string(),
                image.digest.to_string(),
                Some("v1".to_string())
            )]
        );
        assert!(
            consistency::unlinked_references(&mut tx)
                .await
                .unwrap()
                .is_empty()
        );
        blobs::unlink(&mut tx, r, &layer, T0).await.unwrap();
        assert_eq!(
            consistency::unlinked_references(&mut tx).await.unwrap(),
            vec![(
                r.0,
                "team/app".to_string(),
                image.digest.to_string(),
                layer.to_string()
            )]
        );
        assert!(
            consistency::tags_on_deleted(&mut tx)
                .await
                .unwrap()
                .is_empty()
        );
        manifests::soft_delete(&mut tx, image.id, T0).await.unwrap();
        assert_eq!(
            consistency::tags_on_deleted(&mut tx).await.unwrap(),
            vec![(
                "team/app".to_string(),
                "v1".to_string(),
                image.digest.to_string()
            )]
        );
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn known_keys_are_those_of_blobs_uploads_and_pending_deletions() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        blob(&mut tx, r, "stored", 1, T0).await;
        let id = UploadId::new_random();
        uploads::create(&mut tx, &id, r, "uploads/u1", None, Algorithm::Sha256, T0)
            .await
            .unwrap();
        queue::queue_storage_deletion(&mut tx, "blobs/forgotten", T0)
            .await
            .unwrap();
        commit(tx).await;

        let asked: Vec<String> = [
            "blobs/stored",
            "uploads/u1",
            "blobs/forgotten",
            "blobs/orphan",
        ]
        .map(String::from)
        .to_vec();
        let known = consistency::known_keys(&mut reader(cat).await, &asked)
            .await
            .unwrap();
        let mut known: Vec<_> = known.into_iter().collect();
        known.sort();
        assert_eq!(known, vec!["blobs/forgotten", "blobs/stored", "uploads/u1"]);
    })
    .await;
}

/// What a cache in front of the catalogue is told (`changes.rs`): on SQLite, never to keep
/// anything; on PostgreSQL, once this handle listens, that a stamp is out of date as soon as a
/// commit of its own returns (no notice needed: the empty transaction below sends none), but not
/// after a commit that says it leaves the figures. Notices from other nodes:
/// `multi_node::a_tag_moved_on_one_node_is_seen_moved_on_every_other`.
#[tokio::test]
async fn a_commit_of_its_own_outdates_every_stamp_before_it_returns() {
    each_backend(async |cat| {
        cat.watch_changes();
        let mut r = reader(cat).await;
        if cat.backend_name() == "sqlite" {
            assert_eq!(cat.changes().stamp(), None, "SQLite: nothing may be cached");
            assert_eq!(changes::listeners(&mut r).await.unwrap(), Vec::<i32>::new());
            assert!(!changes::end_listener(&mut r, 1).await.unwrap());
            return;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let stamp = loop {
            if let Some(s) = cat.changes().stamp() {
                break s;
            }
            assert!(std::time::Instant::now() < deadline, "never listening");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        assert!(cat.changes().listening());
        let listening = changes::listeners(&mut r).await.unwrap();
        assert_eq!(listening.len(), 1, "this handle's one listening connection");
        drop(r);

        let mut tx = begin(cat).await;
        tx.leaves_figures();
        commit(tx).await;
        assert!(
            cat.changes().current(stamp),
            "a pull count's commit keeps the cache"
        );

        commit(begin(cat).await).await;
        assert!(
            !cat.changes().current(stamp),
            "any other commit empties it at once"
        );
        assert!(cat.changes().stamp().is_some());
    })
    .await;
}
