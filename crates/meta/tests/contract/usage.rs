//! `usage`: the figures of a tiny registry (one image tagged, one untagged) at a few instants,
//! each byte counted once and classified as the collector would decide it then.

use shipshape_meta::manifests::ManifestHead;
use shipshape_meta::runs::ItemKind;
use shipshape_meta::tags::{self, By};
use shipshape_meta::usage::{self, Rules, Usage};
use shipshape_meta::{Catalogue, Millis};

use super::support::*;

/// The collector's settings at `now`: a day's restore window, an hour of grace, an hour's
/// lease, untagged manifests collected.
fn rules(now: Millis) -> Rules {
    Rules {
        now,
        restore_cutoff: now - DAY,
        grace: HOUR,
        link_hold: HOUR,
        manifest_lease: HOUR,
        untagged_manifests: true,
        orphan_referrers: true,
    }
}

async fn total(cat: &Catalogue, rules: &Rules) -> Usage {
    usage::total(&mut reader(cat).await, rules).await.unwrap()
}

#[tokio::test]
async fn a_tagged_image_is_in_use_and_an_untagged_one_reclaimable_after_its_grace() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let cfg1 = blob(&mut tx, r, "config 1", 10, T0).await;
        let layer1 = blob(&mut tx, r, "layer 1", 100, T0).await;
        let cfg2 = blob(&mut tx, r, "config 2", 20, T0).await;
        let layer2 = blob(&mut tx, r, "layer 2", 200, T0).await;
        let tagged = manifest(&mut tx, r, "tagged", &[cfg1, layer1], &[], T0).await;
        let untagged = manifest(
            &mut tx,
            r,
            "untagged",
            &[cfg2.clone(), layer2.clone()],
            &[],
            T0,
        )
        .await;
        let by = anonymous();
        tags::set(&mut tx, r, &tag("v1"), &tagged, &By::new(&by, T0))
            .await
            .unwrap();
        commit(tx).await;
        let image = |m: &ManifestHead, blobs: u64| blobs + m.size;
        let (one, two) = (image(&tagged, 110), image(&untagged, 220));

        // Within the grace period: the untagged image waits.
        let soon = total(cat, &rules(T0 + HOUR / 2)).await;
        let expected = Usage {
            stored: one + two,
            unique: one + two,
            in_use: one,
            held_for_restore: 0,
            in_grace: two,
            reclaimable: 0,
            blobs: 4,
            manifests: 2,
        };
        assert_eq!(soon, expected);

        // After it, the untagged image is what a collection frees.
        let later = rules(T0 + 2 * HOUR);
        assert_eq!(
            total(cat, &later).await,
            Usage {
                in_grace: 0,
                reclaimable: two,
                ..expected.clone()
            }
        );
        let per_repo = usage::per_repository(&mut reader(cat).await, &later, None)
            .await
            .unwrap();
        assert_eq!(
            per_repo,
            vec![("team/app".to_string(), total(cat, &later).await)]
        );
        // Unless untagged manifests are kept.
        let keep = Rules {
            untagged_manifests: false,
            ..later
        };
        assert_eq!(
            total(cat, &keep).await,
            Usage {
                in_use: one + two,
                in_grace: 0,
                ..expected.clone()
            }
        );

        let mut found: Vec<(ItemKind, String)> = usage::collectable(&mut reader(cat).await, &later)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.kind, c.target))
            .collect();
        found.sort();
        let mut wanted = vec![
            (ItemKind::Manifest, untagged.digest.to_string()),
            (ItemKind::Blob, cfg2.to_string()),
            (ItemKind::Blob, layer2.to_string()),
            (ItemKind::Link, cfg2.to_string()),
            (ItemKind::Link, layer2.to_string()),
        ];
        wanted.sort();
        assert_eq!(found, wanted);

        // The tag deleted: the image is held for the restore window, then reclaimable.
        let mut tx = begin(cat).await;
        assert_eq!(
            usage::bytes_only_for(&mut tx, &[tagged.id], &later)
                .await
                .unwrap(),
            0
        );
        tags::delete(&mut tx, r, &tag("v1"), &By::new(&by, T0 + HOUR))
            .await
            .unwrap();
        assert_eq!(
            usage::bytes_only_for(&mut tx, &[tagged.id], &later)
                .await
                .unwrap(),
            one
        );
        commit(tx).await;
        assert_eq!(
            total(cat, &later).await,
            Usage {
                in_use: 0,
                held_for_restore: one,
                in_grace: 0,
                reclaimable: two,
                ..expected.clone()
            }
        );
        assert_eq!(
            total(cat, &rules(T0 + 2 * DAY)).await,
            Usage {
                in_use: 0,
                in_grace: 0,
                reclaimable: one + two,
                ..expected
            }
        );
    })
    .await;
}

/// A referrer of `subject` (a signature, say) holding `blobs`, untagged.
async fn referrer(
    tx: &mut shipshape_meta::Tx,
    r: shipshape_meta::repos::RepoId,
    seed: &str,
    blobs: &[shipshape_oci::Digest],
    subject: &shipshape_oci::Digest,
) -> ManifestHead {
    let body = payload(seed);
    let d = shipshape_oci::Digest::of_bytes(shipshape_oci::Algorithm::Sha256, &body);
    let m = shipshape_meta::manifests::NewManifest {
        digest: &d,
        media_type: IMAGE,
        artifact_type: Some("application/vnd.example.signature"),
        payload: &body,
        subject: Some(subject),
        annotations: None,
        blobs,
        children: &[],
    };
    shipshape_meta::manifests::insert(tx, r, &m, T0)
        .await
        .unwrap();
    shipshape_meta::manifests::find_any(tx, r, &d)
        .await
        .unwrap()
        .unwrap()
}

/// What a deletion moves out of use is decided around the deleted manifests, and agrees with
/// the registry's whole live set: a layer a tagged image shares stays in use; a manifest a
/// tagged index lists stays in use with its referrers until the index's tag goes too; a layer
/// held only by an untagged image that a tagged index lists stays in use; the settings that
/// keep untagged manifests or orphan referrers keep what those hold.
#[tokio::test]
async fn bytes_only_for_follows_indexes_referrers_and_shared_layers() {
    each_backend(async |cat| {
        let by = anonymous();
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/multi", T0).await;
        let shared = blob(&mut tx, r, "shared base", 1000, T0).await;
        let la = blob(&mut tx, r, "layer a", 100, T0).await;
        let lb = blob(&mut tx, r, "layer b", 200, T0).await;
        let lc = blob(&mut tx, r, "layer c", 400, T0).await;
        let sig = blob(&mut tx, r, "signature", 7, T0).await;
        let a = manifest(&mut tx, r, "image a", &[shared.clone(), la], &[], T0).await;
        let b = manifest(&mut tx, r, "image b", &[shared, lb], &[], T0).await;
        let c = manifest(&mut tx, r, "image c", std::slice::from_ref(&lc), &[], T0).await;
        let d = manifest(&mut tx, r, "image d", &[lc], &[], T0).await;
        let i = manifest(
            &mut tx,
            r,
            "index i",
            &[],
            std::slice::from_ref(&a.digest),
            T0,
        )
        .await;
        let j = manifest(
            &mut tx,
            r,
            "index j",
            &[],
            std::slice::from_ref(&c.digest),
            T0,
        )
        .await;
        let s = referrer(&mut tx, r, "signature of a", &[sig], &a.digest).await;
        for (name, m) in [("a", &a), ("b", &b), ("d", &d), ("multi", &i), ("j", &j)] {
            tags::set(&mut tx, r, &tag(name), m, &By::new(&by, T0))
                .await
                .unwrap();
        }
        commit(tx).await;
        let collect_all = rules(T0 + 2 * HOUR);
        let keep_untagged = Rules {
            untagged_manifests: false,
            ..collect_all
        };
        let keep_orphans = Rules {
            orphan_referrers: false,
            ..collect_all
        };
        let at = By::new(&by, T0 + HOUR);

        let mut tx = begin(cat).await;
        // a untagged: the tagged index still lists it, and its signature's subject is live.
        tags::delete(&mut tx, r, &tag("a"), &at).await.unwrap();
        assert_eq!(
            usage::bytes_only_for(&mut tx, &[a.id], &collect_all)
                .await
                .unwrap(),
            0
        );
        // d untagged: its layer is c's too, and c is live through the tagged index j (found
        // by walking up from c, as no tag points at c).
        tags::delete(&mut tx, r, &tag("d"), &at).await.unwrap();
        assert_eq!(
            usage::bytes_only_for(&mut tx, &[d.id], &collect_all)
                .await
                .unwrap(),
            d.size
        );
        assert_eq!(
            usage::bytes_only_for(&mut tx, &[d.id], &keep_untagged)
                .await
                .unwrap(),
            0
        );
        // The index's tag gone: the index, a, a's signature and what only they hold; the
        // shared base stays with b.
        tags::delete(&mut tx, r, &tag("multi"), &at).await.unwrap();
        assert_eq!(
            usage::bytes_only_for(&mut tx, &[i.id], &collect_all)
                .await
                .unwrap(),
            i.size + a.size + s.size + 100 + 7
        );
        assert_eq!(
            usage::bytes_only_for(&mut tx, &[i.id], &keep_orphans)
                .await
                .unwrap(),
            i.size + a.size + 100
        );
        // b's tag gone as well: the shared base goes with it.
        tags::delete(&mut tx, r, &tag("b"), &at).await.unwrap();
        assert_eq!(
            usage::bytes_only_for(&mut tx, &[b.id], &collect_all)
                .await
                .unwrap(),
            b.size + 200 + 1000
        );
        commit(tx).await;
        // What is left in use is what the figures over the whole registry say.
        assert_eq!(total(cat, &collect_all).await.in_use, j.size + c.size + 400);
    })
    .await;
}
