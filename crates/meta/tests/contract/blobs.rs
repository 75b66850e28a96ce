//! `blobs`: one recorded copy per digest, repository links and their leases, bytes marked
//! missing and present again, and a copy replaced only from the key the caller saw.

use shipshape_meta::blobs::{self, Blob};
use shipshape_meta::queue::{self, Due};

use super::support::*;

fn copy(seed: &str, key: &str, size: u64) -> Blob {
    Blob {
        digest: digest(seed),
        size,
        storage_key: key.into(),
    }
}

#[tokio::test]
async fn the_first_copy_of_a_digest_is_recorded_and_a_second_is_not() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        assert!(
            blobs::insert(&mut tx, &copy("layer", "blobs/k1", 10), T0)
                .await
                .unwrap()
        );
        // Same digest, another upload's key: not recorded, the first key stays.
        assert!(
            !blobs::insert(&mut tx, &copy("layer", "blobs/k2", 10), T0 + 1)
                .await
                .unwrap()
        );
        commit(tx).await;

        let mut r = reader(cat).await;
        let found = blobs::find(&mut r, &digest("layer")).await.unwrap();
        assert_eq!(found, Some(copy("layer", "blobs/k1", 10)));
        assert_eq!(blobs::find(&mut r, &digest("other")).await.unwrap(), None);
        assert_eq!(rows(cat, "blobs").await, 1);
    })
    .await;
}

#[tokio::test]
async fn a_link_lets_a_repository_serve_a_blob_and_carries_a_lease() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let a = repo(&mut tx, "team/a", T0).await;
        let b = repo(&mut tx, "team/b", T0).await;
        let d = digest("layer");
        blobs::insert(&mut tx, &copy("layer", "blobs/k1", 10), T0)
            .await
            .unwrap();
        // Recorded but not linked: no repository serves it.
        assert_eq!(blobs::find_in_repo(&mut tx, a, &d).await.unwrap(), None);
        assert_eq!(blobs::lease(&mut tx, a, &d).await.unwrap(), None);

        blobs::link(&mut tx, a, &d, T0 + 100).await.unwrap();
        assert_eq!(
            blobs::find_in_repo(&mut tx, a, &d).await.unwrap(),
            Some(copy("layer", "blobs/k1", 10))
        );
        assert_eq!(blobs::find_in_repo(&mut tx, b, &d).await.unwrap(), None);
        assert_eq!(blobs::lease(&mut tx, a, &d).await.unwrap(), Some(T0 + 100));

        // Linking again renews the lease, never moves it back.
        blobs::link(&mut tx, a, &d, T0 + 200).await.unwrap();
        assert_eq!(blobs::lease(&mut tx, a, &d).await.unwrap(), Some(T0 + 200));
        blobs::link(&mut tx, a, &d, T0 + 150).await.unwrap();
        assert_eq!(blobs::lease(&mut tx, a, &d).await.unwrap(), Some(T0 + 200));

        // renew_lease writes only when the lease is older than `stale_before`, and says
        // whether the link exists either way.
        assert!(
            blobs::renew_lease(&mut tx, a, &d, T0 + 300, T0 + 200)
                .await
                .unwrap()
        );
        assert_eq!(blobs::lease(&mut tx, a, &d).await.unwrap(), Some(T0 + 200));
        assert!(
            blobs::renew_lease(&mut tx, a, &d, T0 + 400, T0 + 201)
                .await
                .unwrap()
        );
        assert_eq!(blobs::lease(&mut tx, a, &d).await.unwrap(), Some(T0 + 400));
        assert!(
            !blobs::renew_lease(&mut tx, b, &d, T0 + 400, T0 + 500)
                .await
                .unwrap()
        );
        assert_eq!(blobs::lease(&mut tx, b, &d).await.unwrap(), None);

        assert!(blobs::unlink(&mut tx, a, &d, T0 + 500).await.unwrap());
        assert!(!blobs::unlink(&mut tx, a, &d, T0 + 500).await.unwrap());
        assert_eq!(blobs::find_in_repo(&mut tx, a, &d).await.unwrap(), None);
        assert_eq!(blobs::lease(&mut tx, a, &d).await.unwrap(), None);
        // Unlinking forgets only the link: the blob stays recorded for the collector.
        assert!(blobs::find(&mut tx, &d).await.unwrap().is_some());
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn unlink_all_removes_every_link_of_a_repository_and_queues_the_blobs() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let a = repo(&mut tx, "team/a", T0).await;
        let b = repo(&mut tx, "team/b", T0).await;
        let x = blob(&mut tx, a, "x", 1, T0).await;
        let y = blob(&mut tx, a, "y", 1, T0).await;
        blobs::link(&mut tx, b, &x, T0).await.unwrap();
        queue::clear_reviews(&mut tx).await.unwrap();

        assert_eq!(blobs::unlink_all(&mut tx, a, T0 + HOUR).await.unwrap(), 2);
        assert_eq!(blobs::lease(&mut tx, a, &x).await.unwrap(), None);
        assert_eq!(blobs::lease(&mut tx, a, &y).await.unwrap(), None);
        assert_eq!(blobs::lease(&mut tx, b, &x).await.unwrap(), Some(T0));
        let due = Due {
            now: T0 + HOUR,
            queued_by: T0 + HOUR,
            claim_until: T0 + 2 * HOUR,
        };
        let mut claimed = queue::claim_blobs(&mut tx, due, 10).await.unwrap();
        claimed.sort();
        let mut expected = vec![x, y];
        expected.sort();
        assert_eq!(claimed, expected);
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn a_blob_marked_missing_is_recorded_but_not_served() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let d = blob(&mut tx, r, "layer", 10, T0).await;
        assert!(blobs::mark_missing(&mut tx, &d).await.unwrap());
        assert!(
            !blobs::mark_missing(&mut tx, &digest("unknown"))
                .await
                .unwrap()
        );
        commit(tx).await;

        let mut rd = reader(cat).await;
        assert_eq!(blobs::find(&mut rd, &d).await.unwrap(), None);
        assert_eq!(blobs::find_in_repo(&mut rd, r, &d).await.unwrap(), None);
        let (recorded, present) = blobs::find_recorded(&mut rd, &d).await.unwrap().unwrap();
        assert_eq!(recorded.storage_key, "blobs/layer");
        assert!(!present);
        assert_eq!(
            blobs::find_recorded(&mut rd, &digest("unknown"))
                .await
                .unwrap(),
            None
        );
        drop(rd);

        let mut tx = begin(cat).await;
        assert!(blobs::mark_present(&mut tx, &d).await.unwrap());
        assert!(
            !blobs::mark_present(&mut tx, &digest("unknown"))
                .await
                .unwrap()
        );
        commit(tx).await;
        let mut rd = reader(cat).await;
        assert!(blobs::find(&mut rd, &d).await.unwrap().is_some());
        assert!(blobs::find_in_repo(&mut rd, r, &d).await.unwrap().is_some());
        assert_eq!(
            blobs::find_recorded(&mut rd, &d)
                .await
                .unwrap()
                .map(|(_, p)| p),
            Some(true)
        );
    })
    .await;
}

#[tokio::test]
async fn a_copy_is_replaced_only_from_the_key_the_caller_saw() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let d = blob(&mut tx, r, "layer", 10, T0).await;
        blobs::mark_missing(&mut tx, &d).await.unwrap();

        // Another upload replaced it first: nothing changes, nothing is queued.
        let stale = blobs::replace_copy(&mut tx, &d, "blobs/not-this-one", "blobs/new", T0 + 1)
            .await
            .unwrap();
        assert_eq!(stale, None);
        let (b, present) = blobs::find_recorded(&mut tx, &d).await.unwrap().unwrap();
        assert_eq!((b.storage_key.as_str(), present), ("blobs/layer", false));
        assert_eq!(queue::queue_depths(&mut tx).await.unwrap().storage, 0);

        // From the recorded key: the new copy serves, the old key waits for the drainer.
        let old = blobs::replace_copy(&mut tx, &d, "blobs/layer", "blobs/new", T0 + 2)
            .await
            .unwrap();
        assert_eq!(old.as_deref(), Some("blobs/layer"));
        let (b, present) = blobs::find_recorded(&mut tx, &d).await.unwrap().unwrap();
        assert_eq!((b.storage_key.as_str(), present), ("blobs/new", true));
        let keys = queue::claim_storage_deletions(&mut tx, T0 + 2, T0 + HOUR, 10)
            .await
            .unwrap();
        assert_eq!(keys, vec!["blobs/layer".to_string()]);
        // The blob the collector forgot cannot be replaced either.
        let gone = blobs::replace_copy(&mut tx, &digest("unknown"), "blobs/x", "blobs/y", T0 + 3)
            .await
            .unwrap();
        assert_eq!(gone, None);
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn referenced_in_repo_names_a_live_manifest_of_that_repository() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let a = repo(&mut tx, "team/a", T0).await;
        let b = repo(&mut tx, "team/b", T0).await;
        let d = blob(&mut tx, a, "layer", 10, T0).await;
        blobs::link(&mut tx, b, &d, T0).await.unwrap();
        let m = manifest(&mut tx, a, "image", std::slice::from_ref(&d), &[], T0).await;
        assert_eq!(
            blobs::referenced_in_repo(&mut tx, a, &d).await.unwrap(),
            Some(m.digest.clone())
        );
        assert_eq!(
            blobs::referenced_in_repo(&mut tx, b, &d).await.unwrap(),
            None
        );
        shipshape_meta::manifests::soft_delete(&mut tx, m.id, T0 + 1)
            .await
            .unwrap();
        assert_eq!(
            blobs::referenced_in_repo(&mut tx, a, &d).await.unwrap(),
            None
        );
        commit(tx).await;
    })
    .await;
}
