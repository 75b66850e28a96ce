//! Concurrent writes of the same content: several tasks, each in a transaction of its own,
//! create the same repository, record the same blob, push the same manifest, or point the same
//! tag at different manifests, all at once. Every one of them commits, one row results, and the
//! tag's history chains every move. SQLite runs the transactions one after another; a backend
//! with concurrent writers runs them at once, and this is where its statements' conflict
//! handling (`ON CONFLICT … DO NOTHING`, the row locks of `tags::set`) is tested.

use std::sync::Arc;

use shipshape_meta::blobs::{self, Blob};
use shipshape_meta::manifests::{self, NewManifest};
use shipshape_meta::tags::{self, By};
use shipshape_meta::{Catalogue, Tx};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::support::*;

/// How many writers race.
const WRITERS: usize = 8;

/// Runs `write` in `WRITERS` tasks at once, each given a transaction of its own that it hands
/// back to be committed; returns what each wrote, by writer. The tasks wait for each other
/// before they begin, so that a backend with concurrent writers has them all in flight together.
async fn race<T, F, Fut>(cat: &Catalogue, write: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, Tx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Tx, T)> + Send + 'static,
{
    let write = Arc::new(write);
    let start = Arc::new(Barrier::new(WRITERS));
    let mut tasks = JoinSet::new();
    for i in 0..WRITERS {
        let (cat, write, start) = (cat.clone(), write.clone(), start.clone());
        tasks.spawn(async move {
            start.wait().await;
            let tx = cat.begin().await.expect("begin");
            let (tx, out) = write(i, tx).await;
            shipshape_meta::commit(tx)
                .await
                .expect("every writer commits");
            (i, out)
        });
    }
    let mut out: Vec<(usize, T)> = tasks.join_all().await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_of_one_repository_make_one() {
    each_backend(async |cat| {
        let ids = race(cat, |_, mut tx| async move {
            let id = repo(&mut tx, "team/app", T0).await;
            (tx, id)
        })
        .await;
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        assert_eq!(rows(cat, "repositories").await, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_of_one_blob_record_one_copy() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        repo(&mut tx, "team/app", T0).await;
        commit(tx).await;
        let recorded = race(cat, |i, mut tx| async move {
            let r = repo(&mut tx, "team/app", T0).await;
            let copy = Blob {
                digest: digest("layer"),
                size: 10,
                storage_key: format!("blobs/copy-{i}"),
            };
            let mine = blobs::insert(&mut tx, &copy, T0 + i as i64).await.unwrap();
            blobs::link(&mut tx, r, &copy.digest, T0 + i as i64)
                .await
                .unwrap();
            (tx, mine)
        })
        .await;
        let winners: Vec<usize> = (0..WRITERS).filter(|i| recorded[*i]).collect();
        assert_eq!(
            winners.len(),
            1,
            "exactly one copy is recorded: {recorded:?}"
        );
        let mut rd = reader(cat).await;
        let kept = blobs::find(&mut rd, &digest("layer"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.storage_key, format!("blobs/copy-{}", winners[0]));
        assert_eq!(rows(cat, "blobs").await, 1);
        assert_eq!(rows(cat, "repository_blobs").await, 1);
        // The link carries the latest lease any writer gave it.
        let r = shipshape_meta::repos::find(&mut rd, &repo_name("team/app"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            blobs::lease(&mut rd, r, &digest("layer")).await.unwrap(),
            Some(T0 + WRITERS as i64 - 1)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_of_one_manifest_record_one() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let layers = [
            blob(&mut tx, r, "a", 1, T0).await,
            blob(&mut tx, r, "b", 2, T0).await,
        ];
        commit(tx).await;
        let bytes = payload("image");
        let d = shipshape_oci::Digest::of_bytes(shipshape_oci::Algorithm::Sha256, &bytes);
        let shared = Arc::new((layers, bytes, d));
        let pushed = race(cat, move |i, mut tx| {
            let shared = shared.clone();
            async move {
                let (layers, bytes, d) = &*shared;
                let now = T0 + HOUR + i as i64;
                let missing = manifests::missing_references(&mut tx, r, layers, &[], now)
                    .await
                    .unwrap();
                assert!(missing.is_empty(), "{missing:?}");
                let m = NewManifest {
                    digest: d,
                    media_type: IMAGE,
                    artifact_type: None,
                    payload: bytes,
                    subject: None,
                    annotations: None,
                    blobs: layers,
                    children: &[],
                };
                let out = manifests::insert(&mut tx, r, &m, now).await.unwrap();
                (tx, out)
            }
        })
        .await;
        let new: Vec<_> = pushed.iter().filter(|(_, new)| *new).collect();
        assert_eq!(
            new.len(),
            1,
            "exactly one push creates the manifest: {pushed:?}"
        );
        assert!(
            pushed.iter().all(|(id, _)| *id == pushed[0].0),
            "{pushed:?}"
        );
        assert_eq!(rows(cat, "manifests").await, 1);
        assert_eq!(rows(cat, "manifest_blob_references").await, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_of_one_tag_chain_its_history() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        let mut images = Vec::new();
        for i in 0..WRITERS {
            images.push(manifest(&mut tx, r, &format!("image {i}"), &[], &[], T0).await);
        }
        commit(tx).await;
        let heads = Arc::new(images.clone());
        // All at the same instant: the history's order is the order the writers got the tag.
        let previous = race(cat, move |i, mut tx| {
            let heads = heads.clone();
            async move {
                let by = anonymous();
                let by = By::new(&by, T0 + HOUR);
                let left = tags::set(&mut tx, r, &tag("latest"), &heads[i], &by)
                    .await
                    .unwrap();
                (tx, left)
            }
        })
        .await;

        let mut rd = reader(cat).await;
        let mut history = tags::history_of(&mut rd, r, Some(&tag("latest")), 100)
            .await
            .unwrap();
        history.reverse();
        assert_eq!(history.len(), WRITERS, "one entry per move: {history:?}");
        assert_eq!(
            (history[0].action.as_str(), history[0].from_digest.clone()),
            ("pushed", None)
        );
        for pair in history.windows(2) {
            assert_eq!(pair[1].action, "moved");
            assert_eq!(
                pair[1].from_digest, pair[0].to_digest,
                "each move names the image the last one left: {history:?}"
            );
        }
        let mut reached: Vec<_> = history
            .iter()
            .map(|h| h.to_digest.clone().unwrap())
            .collect();
        reached.sort();
        let mut all: Vec<_> = images.iter().map(|m| m.digest.clone()).collect();
        all.sort();
        assert_eq!(reached, all, "every writer's image was pointed at once");
        // Each writer was told the image its own move left, and the tag ends on the last one.
        for (i, left) in previous.iter().enumerate() {
            let entry = history
                .iter()
                .find(|h| h.to_digest.as_ref() == Some(&images[i].digest))
                .unwrap();
            assert_eq!(left, &entry.from_digest, "writer {i}");
        }
        let now = tags::resolve(&mut rd, r, &tag("latest"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Some(now.digest), history.last().unwrap().to_digest.clone());
        assert_eq!(rows(cat, "tags").await, 1);
    })
    .await;
}
