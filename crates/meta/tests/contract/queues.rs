//! `queue` and `reviews`: what the changes queue for the collector, claims that hand out due
//! entries only, and the collector's writes, each re-checking in its own statement what a push
//! may have changed since the facts were read (ARCHITECTURE.md, "The catalogue's concurrency
//! model").

use shipshape_meta::queue::{self, Due};
use shipshape_meta::tags::{self, By};
use shipshape_meta::{blobs, manifests, reviews};

use super::support::*;

/// Entries queued by `queued_by` whose claim or deferral ended by `now`; claimed for an hour.
fn due(now: i64, queued_by: i64) -> Due {
    Due {
        now,
        queued_by,
        claim_until: now + HOUR,
    }
}

#[tokio::test]
async fn a_blob_linked_then_unlinked_is_queued_and_claimed_once_due() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let d = blob(&mut tx, r, "layer", 10, T0).await;
        blobs::unlink(&mut tx, r, &d, T0 + HOUR).await.unwrap();
        // The latest event counts: the entry was queued by the unlink.
        assert_eq!(
            queue::blob_entries_after(&mut tx, None, 10).await.unwrap(),
            vec![(T0 + HOUR, d.clone())]
        );
        assert!(
            queue::claim_blobs(&mut tx, due(T0 + 2 * HOUR, T0 + HOUR - 1), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            queue::claim_blobs(&mut tx, due(T0 + HOUR, T0 + HOUR), 10)
                .await
                .unwrap(),
            vec![d.clone()]
        );
        // Claimed: not handed out again until the claim ends.
        assert!(
            queue::claim_blobs(&mut tx, due(T0 + HOUR, T0 + HOUR), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            queue::claim_blobs(&mut tx, due(T0 + 2 * HOUR - 1, T0 + HOUR), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            queue::claim_blobs(&mut tx, due(T0 + 2 * HOUR, T0 + HOUR), 10)
                .await
                .unwrap(),
            vec![d.clone()]
        );

        // A new event drops the claim: the entry is looked at again.
        queue::queue_blob(&mut tx, &d, T0 + 2 * HOUR, "contract")
            .await
            .unwrap();
        assert_eq!(
            queue::claim_blobs(&mut tx, due(T0 + 2 * HOUR, T0 + 2 * HOUR), 10)
                .await
                .unwrap(),
            vec![d.clone()]
        );

        // Deferred to its time, then finished.
        reviews::settle_blobs(&mut tx, &[], &[(d.clone(), T0 + DAY)])
            .await
            .unwrap();
        assert!(
            queue::claim_blobs(&mut tx, due(T0 + DAY - 1, T0 + DAY), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            queue::claim_blobs(&mut tx, due(T0 + DAY, T0 + DAY), 10)
                .await
                .unwrap(),
            vec![d.clone()]
        );
        assert_eq!(queue::queue_depths(&mut tx).await.unwrap().blobs, 1);
        reviews::settle_blobs(&mut tx, std::slice::from_ref(&d), &[])
            .await
            .unwrap();
        assert_eq!(queue::queue_depths(&mut tx).await.unwrap().blobs, 0);
        assert!(
            queue::claim_blobs(&mut tx, due(T0 + 3 * DAY, T0 + 3 * DAY), 10)
                .await
                .unwrap()
                .is_empty()
        );
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn claims_hand_out_due_entries_only_up_to_the_limit() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let early = blob(&mut tx, r, "early", 1, T0).await;
        let middle = blob(&mut tx, r, "middle", 1, T0 + MINUTE).await;
        blob(&mut tx, r, "late", 1, T0 + DAY).await;
        let first = queue::claim_blobs(&mut tx, due(T0 + DAY, T0 + HOUR), 1)
            .await
            .unwrap();
        assert_eq!(first, vec![early]);
        let second = queue::claim_blobs(&mut tx, due(T0 + DAY, T0 + HOUR), 10)
            .await
            .unwrap();
        assert_eq!(second, vec![middle]);
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn manifests_are_queued_when_pushed_deleted_or_left_by_a_tag() {
    each_backend(async |cat| {
        let by = anonymous();
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let m1 = manifest(&mut tx, r, "one", &[], &[], T0).await;
        let m2 = manifest(&mut tx, r, "two", &[], &[], T0 + 1).await;
        let entries = queue::manifest_entries_after(&mut tx, None, 10)
            .await
            .unwrap();
        assert_eq!(entries, vec![(T0, m1.id), (T0 + 1, m2.id)]);
        assert_eq!(
            queue::manifest_entries_after(&mut tx, Some(entries[0]), 10)
                .await
                .unwrap(),
            vec![(T0 + 1, m2.id)]
        );
        let mut claimed = queue::claim_manifests(&mut tx, due(T0 + 1, T0 + 1), 10)
            .await
            .unwrap();
        claimed.sort_by_key(|id| id.0);
        assert_eq!(claimed, vec![m1.id, m2.id]);
        reviews::settle_manifests(&mut tx, &[m1.id, m2.id], &[])
            .await
            .unwrap();
        assert_eq!(queue::queue_depths(&mut tx).await.unwrap().manifests, 0);

        // A tag leaving m1 queues m1, not the manifest it moved to.
        tags::set(&mut tx, r, &tag("v1"), &m1, &By::new(&by, T0 + HOUR))
            .await
            .unwrap();
        assert_eq!(queue::queue_depths(&mut tx).await.unwrap().manifests, 0);
        tags::set(&mut tx, r, &tag("v1"), &m2, &By::new(&by, T0 + 2 * HOUR))
            .await
            .unwrap();
        let claimed = queue::claim_manifests(&mut tx, due(T0 + 2 * HOUR, T0 + 2 * HOUR), 10)
            .await
            .unwrap();
        assert_eq!(claimed, vec![m1.id]);
        reviews::settle_manifests(&mut tx, &[m1.id], &[])
            .await
            .unwrap();

        manifests::soft_delete(&mut tx, m2.id, T0 + 3 * HOUR)
            .await
            .unwrap();
        assert!(
            queue::claim_manifests(&mut tx, due(T0 + 3 * HOUR, T0 + 3 * HOUR - 1), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let claimed = queue::claim_manifests(&mut tx, due(T0 + 3 * HOUR, T0 + 3 * HOUR), 10)
            .await
            .unwrap();
        assert_eq!(claimed, vec![m2.id]);
        assert!(
            queue::claim_manifests(&mut tx, due(T0 + 3 * HOUR, T0 + 3 * HOUR), 10)
                .await
                .unwrap()
                .is_empty()
        );
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn unlink_removes_only_links_renewed_at_or_before_the_instant() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let a = repo(&mut tx, "team/a", T0).await;
        let b = repo(&mut tx, "team/b", T0).await;
        let c = repo(&mut tx, "team/c", T0).await;
        let d = blob(&mut tx, a, "layer", 10, T0 + 100).await;
        blobs::link(&mut tx, b, &d, T0 + 300).await.unwrap();
        blobs::link(&mut tx, c, &d, T0 + 200).await.unwrap();
        let mut removed = reviews::unlink(
            &mut tx,
            &[(a, d.clone()), (b, d.clone()), (c, d.clone())],
            T0 + 200,
        )
        .await
        .unwrap();
        removed.sort_by_key(|(r, _)| r.0);
        assert_eq!(removed, vec![(a, d.clone()), (c, d.clone())]);
        assert_eq!(blobs::lease(&mut tx, a, &d).await.unwrap(), None);
        assert_eq!(blobs::lease(&mut tx, b, &d).await.unwrap(), Some(T0 + 300));
        assert_eq!(blobs::lease(&mut tx, c, &d).await.unwrap(), None);
        assert!(
            reviews::unlink(&mut tx, &[], T0 + 200)
                .await
                .unwrap()
                .is_empty()
        );
        commit(tx).await;
    })
    .await;
}

/// The concurrency rule: the collector reads a link's facts, a push renews the link and
/// commits, and the collector's unlink (whose facts said the lease had run out) keeps the link.
#[tokio::test]
async fn a_link_a_push_renewed_after_the_facts_were_read_is_kept() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let d = blob(&mut tx, r, "layer", 10, T0).await;
        commit(tx).await;

        // The collector's facts, a day later: the lease (an hour) has run out.
        let facts = reviews::links_of(&mut reader(cat).await, &d).await.unwrap();
        assert_eq!(facts.len(), 1);
        assert_eq!(
            (facts[0].repo, facts[0].renewed_at, facts[0].referenced),
            (r, T0, false)
        );
        let renewed_by = T0 + DAY - HOUR;

        // A push that relies on the blob.
        let mut push = begin(cat).await;
        let missing =
            manifests::missing_references(&mut push, r, std::slice::from_ref(&d), &[], T0 + DAY)
                .await
                .unwrap();
        assert!(missing.is_empty());
        let image = manifest(
            &mut push,
            r,
            "image",
            std::slice::from_ref(&d),
            &[],
            T0 + DAY,
        )
        .await;
        commit(push).await;

        let mut collect = begin(cat).await;
        let removed = reviews::unlink(&mut collect, &[(r, d.clone())], renewed_by)
            .await
            .unwrap();
        assert!(removed.is_empty());
        assert!(
            reviews::forget_blobs(&mut collect, std::slice::from_ref(&d), T0 + DAY)
                .await
                .unwrap()
                .is_empty()
        );
        commit(collect).await;
        let mut rd = reader(cat).await;
        assert!(blobs::find_in_repo(&mut rd, r, &d).await.unwrap().is_some());
        assert_eq!(
            blobs::referenced_in_repo(&mut rd, r, &d).await.unwrap(),
            Some(image.digest)
        );
    })
    .await;
}

/// The same with no lease to go by: the push renews the link to its own clock, no later than
/// the collector's cutoff (a lease of 0, or the pushing node's clock behind the collector's),
/// and the collector unlinks while the push holds the link. The unlink sees the push's
/// reference and keeps the link, whether it ran after the push committed or waited for it (a
/// statement that waited re-checks the row, not its subqueries: the link is locked first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_a_push_relies_on_is_kept_whatever_its_lease_says() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let d = blob(&mut tx, r, "layer", 10, T0).await;
        commit(tx).await;

        let mut push = begin(cat).await;
        let missing =
            manifests::missing_references(&mut push, r, std::slice::from_ref(&d), &[], T0 + HOUR)
                .await
                .unwrap();
        assert!(missing.is_empty());
        let image = manifest(
            &mut push,
            r,
            "image",
            std::slice::from_ref(&d),
            &[],
            T0 + HOUR,
        )
        .await;
        // Started while the push holds the link (SQLite's one writer waits at `begin`).
        let collector = tokio::spawn({
            let (cat, d) = (cat.clone(), d.clone());
            async move {
                let mut collect = begin(&cat).await;
                let removed = reviews::unlink(&mut collect, &[(r, d)], T0 + DAY)
                    .await
                    .unwrap();
                commit(collect).await;
                removed
            }
        });
        commit(push).await;
        assert_eq!(collector.await.unwrap(), vec![]);
        let mut rd = reader(cat).await;
        assert!(blobs::find_in_repo(&mut rd, r, &d).await.unwrap().is_some());
        assert_eq!(
            blobs::referenced_in_repo(&mut rd, r, &d).await.unwrap(),
            Some(image.digest)
        );
    })
    .await;
}

#[tokio::test]
async fn forget_blobs_skips_a_blob_still_linked_or_referenced() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let linked = blob(&mut tx, r, "linked", 1, T0).await;
        let referenced = blob(&mut tx, r, "referenced", 2, T0).await;
        manifest(
            &mut tx,
            r,
            "image",
            std::slice::from_ref(&referenced),
            &[],
            T0,
        )
        .await;
        blobs::unlink(&mut tx, r, &referenced, T0).await.unwrap();
        let free = blob(&mut tx, r, "free", 3, T0).await;
        blobs::unlink(&mut tx, r, &free, T0).await.unwrap();
        assert!(
            reviews::blob_referenced(&mut tx, &referenced)
                .await
                .unwrap()
        );
        assert!(!reviews::blob_referenced(&mut tx, &free).await.unwrap());

        let asked = [
            linked.clone(),
            referenced.clone(),
            free.clone(),
            digest("unknown"),
        ];
        let forgotten = reviews::forget_blobs(&mut tx, &asked, T0 + DAY)
            .await
            .unwrap();
        assert_eq!(forgotten.len(), 1);
        assert_eq!(
            (forgotten[0].digest.clone(), forgotten[0].size),
            (free.clone(), 3)
        );
        assert_eq!(forgotten[0].storage_key, "blobs/free");
        assert!(
            blobs::find_recorded(&mut tx, &free)
                .await
                .unwrap()
                .is_none()
        );
        assert!(blobs::find(&mut tx, &linked).await.unwrap().is_some());
        assert!(blobs::find(&mut tx, &referenced).await.unwrap().is_some());
        // Forgotten first; its bytes wait for the drainer under the recorded key.
        let keys = queue::claim_storage_deletions(&mut tx, T0 + DAY, T0 + DAY + HOUR, 10)
            .await
            .unwrap();
        assert_eq!(keys, vec!["blobs/free".to_string()]);
        assert!(
            reviews::forget_blobs(&mut tx, &[], T0 + DAY)
                .await
                .unwrap()
                .is_empty()
        );
        commit(tx).await;
    })
    .await;
}

/// An upload of bytes the catalogue already has takes the blob's review entry before it looks
/// the blob up and links it (`commit_blob` in the server): a collector reviewing the blob
/// meanwhile waits for the upload (on PostgreSQL at the entry's lock, `reviews::blob_facts`;
/// SQLite's one writer at `begin`), then sees the link and keeps the blob, rather than leaving
/// the upload a link to a row that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_an_upload_links_is_not_forgotten_under_it() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let d = blob(&mut tx, r, "layer", 10, T0).await;
        blobs::unlink(&mut tx, r, &d, T0).await.unwrap();
        commit(tx).await;

        let mut upload = begin(cat).await;
        queue::queue_blob(&mut upload, &d, T0 + DAY, "blob uploaded")
            .await
            .unwrap();
        let recorded = blobs::find_recorded(&mut upload, &d).await.unwrap();
        assert_eq!(
            recorded.map(|(b, present)| (b.digest, present)),
            Some((d.clone(), true))
        );
        let collector = tokio::spawn({
            let (cat, d) = (cat.clone(), d.clone());
            async move {
                let mut collect = begin(&cat).await;
                let facts = reviews::blob_facts(&mut collect, std::slice::from_ref(&d))
                    .await
                    .unwrap();
                let unlinked = facts[0].links.is_empty();
                let forgotten = reviews::forget_blobs(&mut collect, &[d], T0 + DAY)
                    .await
                    .unwrap();
                commit(collect).await;
                (unlinked, forgotten)
            }
        });
        blobs::link(&mut upload, r, &d, T0 + DAY).await.unwrap();
        commit(upload).await;
        let (unlinked, forgotten) = collector.await.unwrap();
        assert!(!unlinked, "the collector's facts miss the upload's link");
        assert!(forgotten.is_empty());
        assert!(
            blobs::find_in_repo(&mut reader(cat).await, r, &d)
                .await
                .unwrap()
                .is_some()
        );
    })
    .await;
}

#[tokio::test]
async fn storage_deletions_are_claimed_deleted_and_put_off_on_failure() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        queue::queue_storage_deletion(&mut tx, "blobs/one", T0)
            .await
            .unwrap();
        queue::queue_storage_deletion(&mut tx, "blobs/two", T0 + 1)
            .await
            .unwrap();
        // Queued twice: one entry.
        queue::queue_storage_deletion(&mut tx, "blobs/one", T0 + 2)
            .await
            .unwrap();
        assert_eq!(queue::queue_depths(&mut tx).await.unwrap().storage, 2);

        let mut claimed = queue::claim_storage_deletions(&mut tx, T0 + 10, T0 + MINUTE, 10)
            .await
            .unwrap();
        claimed.sort();
        assert_eq!(
            claimed,
            vec!["blobs/one".to_string(), "blobs/two".to_string()]
        );
        assert!(
            queue::claim_storage_deletions(&mut tx, T0 + 10, T0 + MINUTE, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // A GC run takes what another drain claimed (which may have died with its process).
        let mut taken = queue::claim_storage_deletions_for_run(&mut tx, T0 + 20, T0 + MINUTE, 10)
            .await
            .unwrap();
        taken.sort();
        assert_eq!(taken, claimed);

        queue::storage_deleted(&mut tx, &["blobs/one"])
            .await
            .unwrap();
        queue::storage_deleted(&mut tx, &[]).await.unwrap();
        assert_eq!(queue::queue_depths(&mut tx).await.unwrap().storage, 1);
        // A failure puts the key off (a second on the first failure, longer after each).
        queue::storage_deletion_failed(&mut tx, "blobs/two", T0 + MINUTE)
            .await
            .unwrap();
        let at = T0 + MINUTE + SECOND;
        assert!(
            queue::claim_storage_deletions(&mut tx, at - 1, at + MINUTE, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // A failed deletion keeps its back-off, for a run too.
        assert!(
            queue::claim_storage_deletions_for_run(&mut tx, at - 1, at + MINUTE, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            queue::claim_storage_deletions(&mut tx, at, at + MINUTE, 10)
                .await
                .unwrap(),
            vec!["blobs/two".to_string()]
        );
        queue::storage_deletion_failed(&mut tx, "blobs/two", at)
            .await
            .unwrap();
        assert!(
            queue::claim_storage_deletions(&mut tx, at + SECOND, at + MINUTE, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            queue::claim_storage_deletions(&mut tx, at + 2 * SECOND, at + MINUTE, 10)
                .await
                .unwrap(),
            vec!["blobs/two".to_string()]
        );
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn purging_an_index_queues_its_children_and_purging_those_queues_their_blobs() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let layer = blob(&mut tx, r, "layer", 10, T0).await;
        let child = manifest(&mut tx, r, "child", std::slice::from_ref(&layer), &[], T0).await;
        let index = manifest(
            &mut tx,
            r,
            "index",
            &[],
            std::slice::from_ref(&child.digest),
            T0,
        )
        .await;
        queue::clear_reviews(&mut tx).await.unwrap();
        let facts = reviews::manifest_facts(&mut tx, &[child.id]).await.unwrap();
        let state = facts[0].state.as_ref().unwrap();
        assert!(state.listed && !state.tagged);
        assert_eq!(facts[0].queued_at, None);

        reviews::purge_manifests(&mut tx, &[index.id], T0 + DAY)
            .await
            .unwrap();
        assert!(
            manifests::find_any(&mut tx, r, &index.digest)
                .await
                .unwrap()
                .is_none()
        );
        let facts = reviews::manifest_facts(&mut tx, &[index.id, child.id])
            .await
            .unwrap();
        let of = |id| {
            facts
                .iter()
                .find(|f| f.id == id)
                .expect("facts of each manifest asked")
        };
        assert!(of(index.id).state.is_none());
        assert!(!of(child.id).state.as_ref().unwrap().listed);
        assert_eq!(of(child.id).queued_at, Some(T0 + DAY));
        assert!(
            queue::claim_blobs(&mut tx, due(T0 + DAY, T0 + DAY), 10)
                .await
                .unwrap()
                .is_empty()
        );

        reviews::purge_manifests(&mut tx, &[child.id], T0 + 2 * DAY)
            .await
            .unwrap();
        assert!(!reviews::blob_referenced(&mut tx, &layer).await.unwrap());
        let facts = reviews::blob_facts(&mut tx, std::slice::from_ref(&layer))
            .await
            .unwrap();
        assert_eq!(
            (facts[0].queued, facts[0].size, facts[0].referenced),
            (true, Some(10), false)
        );
        assert_eq!(facts[0].links.len(), 1);
        assert_eq!(
            (facts[0].links[0].repo, facts[0].links[0].referenced),
            (r, false)
        );
        assert_eq!(
            queue::claim_blobs(&mut tx, due(T0 + 2 * DAY, T0 + 2 * DAY), 10)
                .await
                .unwrap(),
            vec![layer.clone()]
        );
        commit(tx).await;
    })
    .await;
}
