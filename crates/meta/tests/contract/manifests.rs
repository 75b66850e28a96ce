//! `manifests`: recorded once per repository and digest, checked for what they reference (and
//! the links they rely on renewed), soft-deleted and revived with what they need, and found by
//! their parents, referrers and digest prefixes.

use shipshape_meta::manifests::{self, ManifestHead, NewManifest};
use shipshape_meta::repos::RepoId;
use shipshape_meta::tags::{self, By};
use shipshape_meta::{Conn, Millis, blobs, reviews};
use shipshape_oci::{Algorithm, Digest};

use super::support::*;

/// A manifest with a subject (a signature or an SBOM), as the referrers API lists it.
async fn referrer(
    conn: &mut dyn Conn,
    repo: RepoId,
    seed: &str,
    subject: &Digest,
    now: Millis,
) -> ManifestHead {
    let bytes = payload(seed);
    let d = Digest::of_bytes(Algorithm::Sha256, &bytes);
    let m = NewManifest {
        digest: &d,
        media_type: IMAGE,
        artifact_type: Some("application/vnd.example.signature"),
        payload: &bytes,
        subject: Some(subject),
        annotations: Some(r#"{"signed":"yes"}"#.into()),
        blobs: &[],
        children: &[],
    };
    manifests::insert(conn, repo, &m, now).await.unwrap();
    manifests::find_any(conn, repo, &d).await.unwrap().unwrap()
}

/// When the manifest was last pushed and deleted, as the collector reads them.
async fn pushed_and_deleted(conn: &mut dyn Conn, m: &ManifestHead) -> (Millis, Option<Millis>) {
    let facts = reviews::manifest_facts(conn, &[m.id]).await.unwrap();
    let state = facts[0].state.as_ref().expect("the manifest is recorded");
    (state.pushed_at, state.deleted_at)
}

#[tokio::test]
async fn a_manifest_pushed_again_keeps_its_row_and_comes_back_if_deleted() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let layer = blob(&mut tx, r, "layer", 10, T0).await;
        let bytes = payload("image");
        let d = Digest::of_bytes(Algorithm::Sha256, &bytes);
        let layers = [layer.clone()];
        let m = NewManifest {
            digest: &d,
            media_type: IMAGE,
            artifact_type: None,
            payload: &bytes,
            subject: None,
            annotations: None,
            blobs: &layers,
            children: &[],
        };
        let (id, new) = manifests::insert(&mut tx, r, &m, T0).await.unwrap();
        assert!(new);
        let head = manifests::find(&mut tx, r, &d).await.unwrap().unwrap();
        assert_eq!((head.id, head.size), (id, bytes.len() as u64));
        assert_eq!(
            (head.digest.clone(), head.media_type.as_str()),
            (d.clone(), IMAGE)
        );

        assert_eq!(
            manifests::insert(&mut tx, r, &m, T0 + 1).await.unwrap(),
            (id, false)
        );
        assert_eq!(pushed_and_deleted(&mut tx, &head).await, (T0 + 1, None));

        manifests::soft_delete(&mut tx, id, T0 + 2).await.unwrap();
        assert!(manifests::find(&mut tx, r, &d).await.unwrap().is_none());
        assert_eq!(
            manifests::find_any(&mut tx, r, &d)
                .await
                .unwrap()
                .unwrap()
                .id,
            id
        );
        assert!(
            manifests::find_in_named(&mut tx, &repo_name("team/app"), &d, true)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            pushed_and_deleted(&mut tx, &head).await,
            (T0 + 1, Some(T0 + 2))
        );

        // Pushed again while deleted: the same row, live, leased anew.
        assert_eq!(
            manifests::insert(&mut tx, r, &m, T0 + 3).await.unwrap(),
            (id, false)
        );
        assert_eq!(pushed_and_deleted(&mut tx, &head).await, (T0 + 3, None));
        let (read, body) = manifests::find_in_named(&mut tx, &repo_name("team/app"), &d, true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((read.id, body), (id, Some(bytes.clone())));
        let (_, none) = manifests::find_in_named(&mut tx, &repo_name("team/app"), &d, false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(none, None);
        commit(tx).await;
        assert_eq!(rows(cat, "manifests").await, 1);
        assert_eq!(rows(cat, "manifest_blob_references").await, 1);
    })
    .await;
}

#[tokio::test]
async fn missing_references_names_what_the_repository_cannot_serve() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let other = repo(&mut tx, "team/other", T0).await;
        let linked = blob(&mut tx, r, "linked", 1, T0).await;
        // Recorded and served by another repository only.
        let elsewhere = blob(&mut tx, other, "elsewhere", 1, T0).await;
        // Linked here, but its bytes were found lost.
        let lost = blob(&mut tx, r, "lost", 1, T0).await;
        blobs::mark_missing(&mut tx, &lost).await.unwrap();
        let unknown = digest("never uploaded");
        let child = manifest(&mut tx, r, "child", &[], &[], T0).await;
        let deleted_child = manifest(&mut tx, r, "deleted child", &[], &[], T0).await;
        manifests::soft_delete(&mut tx, deleted_child.id, T0)
            .await
            .unwrap();
        let absent_child = digest("absent child");

        let missing = manifests::missing_references(
            &mut tx,
            r,
            &[
                elsewhere.clone(),
                linked.clone(),
                unknown.clone(),
                lost.clone(),
            ],
            &[
                child.digest.clone(),
                deleted_child.digest.clone(),
                absent_child.clone(),
            ],
            T0 + HOUR,
        )
        .await
        .unwrap();
        assert_eq!(
            missing,
            vec![
                elsewhere.clone(),
                unknown,
                lost,
                deleted_child.digest,
                absent_child
            ]
        );
        let nothing = manifests::missing_references(
            &mut tx,
            r,
            std::slice::from_ref(&linked),
            std::slice::from_ref(&child.digest),
            T0 + HOUR,
        )
        .await
        .unwrap();
        assert!(nothing.is_empty());
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn missing_references_renews_the_links_it_relies_on() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let other = repo(&mut tx, "team/other", T0).await;
        let a = blob(&mut tx, r, "a", 1, T0).await;
        let b = blob(&mut tx, r, "b", 1, T0 + 2 * HOUR).await;
        blobs::link(&mut tx, other, &a, T0).await.unwrap();
        commit(tx).await;

        let mut tx = begin(cat).await;
        let missing =
            manifests::missing_references(&mut tx, r, &[b.clone(), a.clone()], &[], T0 + HOUR)
                .await
                .unwrap();
        assert!(missing.is_empty());
        commit(tx).await;
        let mut rd = reader(cat).await;
        // Renewed to the push's instant, and never moved back.
        assert_eq!(blobs::lease(&mut rd, r, &a).await.unwrap(), Some(T0 + HOUR));
        assert_eq!(
            blobs::lease(&mut rd, r, &b).await.unwrap(),
            Some(T0 + 2 * HOUR)
        );
        // Another repository's link is none of this push's business.
        assert_eq!(blobs::lease(&mut rd, other, &a).await.unwrap(), Some(T0));
    })
    .await;
}

#[tokio::test]
async fn referencing_parent_names_a_live_index_listing_the_manifest() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let amd64 = manifest(&mut tx, r, "amd64", &[], &[], T0).await;
        let arm64 = manifest(&mut tx, r, "arm64", &[], &[], T0).await;
        assert_eq!(
            manifests::referencing_parent(&mut tx, amd64.id)
                .await
                .unwrap(),
            None
        );
        let index = manifest(
            &mut tx,
            r,
            "index",
            &[],
            std::slice::from_ref(&amd64.digest),
            T0,
        )
        .await;
        assert_eq!(
            manifests::referencing_parent(&mut tx, amd64.id)
                .await
                .unwrap(),
            Some(index.digest.clone())
        );
        assert_eq!(
            manifests::referencing_parent(&mut tx, arm64.id)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            manifests::referencing_parent(&mut tx, index.id)
                .await
                .unwrap(),
            None
        );
        // A deleted index no longer holds its children.
        manifests::soft_delete(&mut tx, index.id, T0 + 1)
            .await
            .unwrap();
        assert_eq!(
            manifests::referencing_parent(&mut tx, amd64.id)
                .await
                .unwrap(),
            None
        );
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn revive_tree_brings_back_children_referrers_and_their_links() {
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
        let signature = referrer(&mut tx, r, "signature", &index.digest, T0).await;
        let unrelated = manifest(&mut tx, r, "unrelated", &[], &[], T0).await;

        assert_eq!(
            manifests::soft_delete_all(&mut tx, r, T0 + HOUR)
                .await
                .unwrap(),
            4
        );
        assert_eq!(
            manifests::count_deleted_at(&mut tx, r, T0 + HOUR)
                .await
                .unwrap(),
            4
        );
        blobs::unlink_all(&mut tx, r, T0 + HOUR).await.unwrap();
        for m in [&child, &index, &signature, &unrelated] {
            assert!(
                manifests::find(&mut tx, r, &m.digest)
                    .await
                    .unwrap()
                    .is_none()
            );
        }

        manifests::revive_tree(&mut tx, r, index.id, T0 + 2 * HOUR)
            .await
            .unwrap();
        for m in [&child, &index, &signature] {
            assert!(
                manifests::find(&mut tx, r, &m.digest)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        assert!(
            manifests::find(&mut tx, r, &unrelated.digest)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            blobs::lease(&mut tx, r, &layer).await.unwrap(),
            Some(T0 + 2 * HOUR)
        );
        let listed = manifests::referrers(&mut tx, r, &index.digest, None)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].digest, signature.digest);
        assert_eq!(
            listed[0].artifact_type.as_deref(),
            Some("application/vnd.example.signature")
        );
        assert_eq!(
            listed[0].annotations.as_deref(),
            Some(r#"{"signed":"yes"}"#)
        );
        let other_type = manifests::referrers(&mut tx, r, &index.digest, Some("text/plain"))
            .await
            .unwrap();
        assert!(other_type.is_empty());

        // The rest of what the repository deletion took comes back by its instant.
        assert_eq!(
            manifests::revive_deleted_at(&mut tx, r, T0 + HOUR, T0 + 3 * HOUR)
                .await
                .unwrap(),
            1
        );
        assert!(
            manifests::find(&mut tx, r, &unrelated.digest)
                .await
                .unwrap()
                .is_some()
        );
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn untagged_lists_what_nothing_holds_by_name() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let tagged = manifest(&mut tx, r, "tagged", &[], &[], T0).await;
        let loose = manifest(&mut tx, r, "loose", &[], &[], T0 + 1).await;
        let child = manifest(&mut tx, r, "child", &[], &[], T0).await;
        let index = manifest(
            &mut tx,
            r,
            "index",
            &[],
            std::slice::from_ref(&child.digest),
            T0,
        )
        .await;
        referrer(&mut tx, r, "signature", &tagged.digest, T0).await;
        let by = anonymous();
        tags::set(&mut tx, r, &tag("v1"), &tagged, &By::new(&by, T0))
            .await
            .unwrap();
        tags::set(&mut tx, r, &tag("multi"), &index, &By::new(&by, T0))
            .await
            .unwrap();

        let untagged = manifests::untagged(&mut tx, r).await.unwrap();
        assert_eq!(untagged.len(), 1);
        assert_eq!(untagged[0].head.id, loose.id);
        assert_eq!(untagged[0].created_at, T0 + 1);
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn a_digest_prefix_finds_the_manifests_it_starts() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let live = manifest(&mut tx, r, "live", &[], &[], T0).await;
        let gone = manifest(&mut tx, r, "gone", &[], &[], T0).await;
        manifests::soft_delete(&mut tx, gone.id, T0).await.unwrap();

        let hex = live.digest.hex();
        for prefix in [
            live.digest.to_string(),
            format!("sha256:{}", &hex[..8]),
            hex[..8].to_string(),
        ] {
            let found = manifests::find_by_prefix(&mut tx, r, &prefix, false, 2)
                .await
                .unwrap();
            assert_eq!(found.len(), 1, "prefix {prefix}");
            assert_eq!(found[0].id, live.id, "prefix {prefix}");
        }
        // Not hex, or upper case: nothing, and no pattern matching either.
        for prefix in ["", "sha256:", "%", &hex[..8].to_uppercase()] {
            assert!(
                manifests::find_by_prefix(&mut tx, r, prefix, true, 2)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        let gone_hex = &gone.digest.hex()[..8];
        assert!(
            manifests::find_by_prefix(&mut tx, r, gone_hex, false, 2)
                .await
                .unwrap()
                .is_empty()
        );
        let found = manifests::find_by_prefix(&mut tx, r, gone_hex, true, 2)
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, gone.id);
        commit(tx).await;
    })
    .await;
}

#[tokio::test]
async fn sizes_and_summaries_count_each_blob_once_per_tree() {
    each_backend(async |cat| {
        let by = anonymous();
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let shared = blob(&mut tx, r, "shared", 1_000, T0).await;
        let own1 = blob(&mut tx, r, "own 1", 10, T0).await;
        let own2 = blob(&mut tx, r, "own 2", 20, T0).await;
        let c1 = manifest(&mut tx, r, "c1", &[shared.clone(), own1], &[], T0).await;
        let c2 = manifest(&mut tx, r, "c2", &[shared, own2], &[], T0).await;
        let index = manifest(
            &mut tx,
            r,
            "index",
            &[],
            &[c1.digest.clone(), c2.digest.clone()],
            T0,
        )
        .await;
        referrer(&mut tx, r, "signature", &index.digest, T0).await;
        tags::set(&mut tx, r, &tag("v1"), &index, &By::new(&by, T0))
            .await
            .unwrap();
        tags::set(&mut tx, r, &tag("stable"), &index, &By::new(&by, T0))
            .await
            .unwrap();
        manifests::record_pulls(&mut tx, r, &index.digest, 3, T0 + 5)
            .await
            .unwrap();
        manifests::record_pulls(&mut tx, r, &index.digest, 2, T0 + 4)
            .await
            .unwrap();
        commit(tx).await;

        let mut rd = reader(cat).await;
        let whole = index.size + c1.size + c2.size + 1_000 + 10 + 20;
        assert_eq!(
            manifests::tree_size(&mut rd, index.id).await.unwrap(),
            whole
        );
        assert_eq!(
            manifests::tree_size(&mut rd, c1.id).await.unwrap(),
            c1.size + 1_010
        );
        let tagged = manifests::tagged_tree_sizes(&mut rd, r).await.unwrap();
        assert_eq!(tagged, [(index.id, whole)].into_iter().collect());

        let summaries = manifests::summaries(&mut rd, r).await.unwrap();
        let of = |id| summaries.iter().find(|s| s.head.id == id).unwrap();
        assert_eq!(summaries.len(), 4);
        let top = of(index.id);
        assert_eq!(top.tags, vec!["stable", "v1"]);
        assert_eq!((top.parents, top.referrers), (0, 1));
        assert_eq!((top.pull_count, top.last_pulled_at), (5, Some(T0 + 5)));
        assert_eq!((of(c1.id).parents, of(c1.id).tags.len()), (1, 0));
    })
    .await;
}
