//! `uploads`: sessions that survive a restart, progress recorded only from the offset the
//! writer started at, and stale sessions found and expired with their bytes queued.

use shipshape_meta::{queue, uploads};
use shipshape_oci::{Algorithm, UploadId};

use super::support::*;

#[tokio::test]
async fn a_session_advances_only_from_the_offset_its_writer_read() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let other = repo(&mut tx, "team/other", T0).await;
        let id = UploadId::new_random();
        uploads::create(
            &mut tx,
            &id,
            r,
            "uploads/one",
            Some("{}"),
            Algorithm::Sha256,
            T0,
        )
        .await
        .unwrap();
        commit(tx).await;

        let mut rd = reader(cat).await;
        let u = uploads::find(&mut rd, r, &id).await.unwrap().unwrap();
        assert_eq!(
            (u.id.clone(), u.repository, u.storage_key.as_str()),
            (id.clone(), r, "uploads/one")
        );
        assert_eq!(
            (u.received, u.store_state.as_deref(), u.hash_alg),
            (0, Some("{}"), Algorithm::Sha256)
        );
        assert_eq!(u.hash_state, None);
        // A session belongs to its repository.
        assert!(uploads::find(&mut rd, other, &id).await.unwrap().is_none());
        drop(rd);

        let mut tx = begin(cat).await;
        assert!(
            uploads::advance(
                &mut tx,
                &id,
                "node-a",
                0,
                100,
                Some("part-1"),
                b"state-100",
                T0 + 1
            )
            .await
            .unwrap()
        );
        // A second writer that also read offset 0 finds the session moved on.
        assert!(
            !uploads::advance(&mut tx, &id, "node-a", 0, 50, None, b"state-50", T0 + 2)
                .await
                .unwrap()
        );
        assert!(
            uploads::advance(&mut tx, &id, "node-a", 100, 250, None, b"state-250", T0 + 3)
                .await
                .unwrap()
        );
        commit(tx).await;

        let mut rd = reader(cat).await;
        let u = uploads::find(&mut rd, r, &id).await.unwrap().unwrap();
        assert_eq!(u.received, 250);
        assert_eq!(u.store_state, None);
        assert_eq!(u.hash_state.as_deref(), Some(&b"state-250"[..]));
        drop(rd);

        let mut tx = begin(cat).await;
        assert!(uploads::delete(&mut tx, &id).await.unwrap());
        assert!(!uploads::delete(&mut tx, &id).await.unwrap());
        assert!(uploads::find(&mut tx, r, &id).await.unwrap().is_none());
        assert!(
            !uploads::advance(&mut tx, &id, "node-a", 250, 300, None, b"", T0 + 4)
                .await
                .unwrap()
        );
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn stale_sessions_are_listed_oldest_first_and_expired_with_their_bytes_queued() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let (old, older, fresh, touched) = (
            UploadId::new_random(),
            UploadId::new_random(),
            UploadId::new_random(),
            UploadId::new_random(),
        );
        for (id, key, at) in [
            (&old, "uploads/old", T0 + 2 * HOUR),
            (&older, "uploads/older", T0 + HOUR),
            (&fresh, "uploads/fresh", T0 + 5 * DAY),
            (&touched, "uploads/touched", T0),
        ] {
            uploads::create(&mut tx, id, r, key, None, Algorithm::Sha256, at)
                .await
                .unwrap();
        }
        // Progress keeps a session fresh.
        uploads::advance(&mut tx, &touched, "node-a", 0, 10, None, b"", T0 + 5 * DAY)
            .await
            .unwrap();
        commit(tx).await;

        let cutoff = T0 + DAY;
        let stale = uploads::stale_uploads(&mut reader(cat).await, cutoff, 10)
            .await
            .unwrap();
        let seen: Vec<_> = stale
            .iter()
            .map(|s| (s.id.as_str(), s.repository.as_str(), s.storage_key.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (older.as_str(), "team/app", "uploads/older"),
                (old.as_str(), "team/app", "uploads/old")
            ]
        );
        assert_eq!(
            uploads::stale_uploads(&mut reader(cat).await, cutoff, 1)
                .await
                .unwrap()
                .len(),
            1
        );

        let mut tx = begin(cat).await;
        assert!(
            uploads::expire_upload(&mut tx, older.as_str(), cutoff, T0 + 6 * DAY)
                .await
                .unwrap()
        );
        // Not stale by this cutoff: left alone.
        assert!(
            !uploads::expire_upload(&mut tx, fresh.as_str(), cutoff, T0 + 6 * DAY)
                .await
                .unwrap()
        );
        assert!(
            !uploads::expire_upload(&mut tx, older.as_str(), cutoff, T0 + 6 * DAY)
                .await
                .unwrap()
        );
        assert!(uploads::find(&mut tx, r, &older).await.unwrap().is_none());
        assert!(uploads::find(&mut tx, r, &fresh).await.unwrap().is_some());
        let keys = queue::claim_storage_deletions(&mut tx, T0 + 6 * DAY, T0 + 7 * DAY, 10)
            .await
            .unwrap();
        assert_eq!(keys, vec!["uploads/older".to_string()]);
        commit(tx).await;
    })
    .await;
}

/// One writer at a time across nodes: a claim is taken only at the offset the writer read and
/// only when no other node's claim holds; it is renewed by its holder alone, and ends with the
/// progress it made, with a release, or when it runs out. A node whose claim another took over
/// cannot record progress.
#[tokio::test]
async fn one_node_at_a_time_writes_an_upload_session() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let id = UploadId::new_random();
        uploads::create(
            &mut tx,
            &id,
            r,
            "uploads/claimed",
            None,
            Algorithm::Sha256,
            T0,
        )
        .await
        .unwrap();
        commit(tx).await;
        let until = T0 + MINUTE;

        let mut tx = begin(cat).await;
        assert!(
            uploads::claim(&mut tx, &id, 0, "node-a", T0, until)
                .await
                .unwrap()
        );
        // The other node, given the same chunk, is refused while a's claim holds.
        assert!(
            !uploads::claim(&mut tx, &id, 0, "node-b", T0 + 1, until)
                .await
                .unwrap()
        );
        assert!(
            !uploads::renew_claim(&mut tx, &id, "node-b", T0 + 1, until)
                .await
                .unwrap()
        );
        assert!(
            uploads::renew_claim(&mut tx, &id, "node-a", T0 + 2, until + 2)
                .await
                .unwrap()
        );
        // Progress ends the claim; a claim at the old offset is then refused as moved.
        assert!(
            uploads::advance(&mut tx, &id, "node-a", 0, 10, None, b"", T0 + 3)
                .await
                .unwrap()
        );
        assert!(
            !uploads::claim(&mut tx, &id, 0, "node-b", T0 + 4, until)
                .await
                .unwrap()
        );
        assert!(
            uploads::claim(&mut tx, &id, 10, "node-b", T0 + 4, until)
                .await
                .unwrap()
        );
        // A release lets the next writer in at once.
        uploads::release_claim(&mut tx, &id, "node-b")
            .await
            .unwrap();
        assert!(
            uploads::claim(&mut tx, &id, 10, "node-a", T0 + 5, until)
                .await
                .unwrap()
        );
        // A claim that ran out (its node died) is taken over, and the old holder's progress
        // is then refused.
        assert!(
            uploads::claim(&mut tx, &id, 10, "node-b", until, until + MINUTE)
                .await
                .unwrap()
        );
        assert!(
            !uploads::advance(&mut tx, &id, "node-a", 10, 20, None, b"", until + 1)
                .await
                .unwrap()
        );
        assert!(
            uploads::advance(&mut tx, &id, "node-b", 10, 30, None, b"", until + 2)
                .await
                .unwrap()
        );
        commit(tx).await;
        let u = uploads::find(&mut reader(cat).await, r, &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u.received, 30);
    })
    .await;
}
