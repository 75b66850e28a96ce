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
