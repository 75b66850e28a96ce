//! Clients pushing the same content at the same moment, over HTTP: the same layer, the same
//! manifest, one tag moved by many pushes. Each push must succeed, the catalogue must hold one
//! copy of each thing, and a tag's history must chain every image it left, so each stays
//! restorable. Under SQLite's one writer the statements cannot interleave; the tests keep the
//! behaviour every backend must give (the catalogue's concurrency model in ARCHITECTURE.md).

mod common;

use std::collections::BTreeSet;

use common::{
    OCI_MANIFEST, TestServer, client, image_manifest, push_blob, put_manifest, random_bytes,
    sha256, wait_until,
};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;

const CLIENTS: usize = 8;

/// Eight clients upload one layer at once, each in its own session: every upload is
/// acknowledged, the catalogue records one blob, and the redundant copies are discarded.
#[tokio::test]
async fn one_layer_uploaded_by_many_clients_at_once_is_stored_once() {
    let s = TestServer::start().await;
    let layer = random_bytes(300_000, 7);
    let digests = join_all((0..CLIENTS).map(|i| {
        let (base, layer) = (s.base.clone(), layer.clone());
        async move {
            let repo = format!("same/layer{}", i % 2);
            push_blob(&client(), &base, &repo, &layer).await
        }
    }))
    .await;
    assert!(digests.iter().all(|d| *d == sha256(&layer)));
    assert_eq!(s.rows().await["blobs"], 1);
    // The copies that lost are deleted after their answer; the one recorded stays.
    let kept = s.object_of(&digests[0]).await;
    wait_until(
        "the redundant copies of the layer to be deleted",
        || async { (s.blob_objects().await.len() == 1).then_some(()) },
    )
    .await;
    assert_eq!(s.object_bytes(&kept).await, layer);
    for repo in ["same/layer0", "same/layer1"] {
        let resp = client()
            .get(s.url(&format!("/v2/{repo}/blobs/{}", digests[0])))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.bytes().await.unwrap(), layer);
    }
}

/// Eight clients put the same manifest under the same tag at once: all succeed, one manifest
/// is recorded, and the tag's history holds one push.
#[tokio::test]
async fn one_manifest_pushed_by_many_clients_at_once_is_recorded_once() {
    let s = TestServer::start().await;
    let c = client();
    let repo = "same/manifest";
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = random_bytes(5000, 11);
    let cd = push_blob(&c, &s.base, repo, &config).await;
    let ld = push_blob(&c, &s.base, repo, &layer).await;
    let manifest = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let statuses = join_all((0..CLIENTS).map(|_| {
        let (base, manifest) = (s.base.clone(), manifest.clone());
        async move {
            put_manifest(&client(), &base, repo, "latest", OCI_MANIFEST, &manifest)
                .await
                .status()
        }
    }))
    .await;
    assert!(
        statuses.iter().all(|st| *st == StatusCode::CREATED),
        "{statuses:?}"
    );
    assert_eq!(s.rows().await["manifests"], 1);
    let h = s
        .api_ok(&format!(
            "/api/v1/repositories/{repo}/-/tags/latest/history"
        ))
        .await;
    let actions: Vec<&str> = entries(&h)
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["pushed"], "{h}");
}

/// Eight clients push eight different images to one tag at once. Whichever order they land in,
/// the history chains them (each entry leaves the image the one before it brought), and every
/// image the tag left is restorable.
#[tokio::test]
async fn one_tag_moved_by_many_pushes_at_once_keeps_every_image_it_left() {
    let s = TestServer::start().await;
    let c = client();
    let repo = "same/tag";
    let layer = random_bytes(4000, 3);
    let ld = push_blob(&c, &s.base, repo, &layer).await;
    let mut manifests = Vec::new();
    for i in 0..CLIENTS {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","n":{i}}}"#).into_bytes();
        let cd = push_blob(&c, &s.base, repo, &config).await;
        manifests.push(image_manifest((&cd, config.len()), &[(&ld, layer.len())]));
    }
    let statuses = join_all(manifests.iter().map(|m| {
        let (base, m) = (s.base.clone(), m.clone());
        async move {
            put_manifest(&client(), &base, repo, "edge", OCI_MANIFEST, &m)
                .await
                .status()
        }
    }))
    .await;
    assert!(
        statuses.iter().all(|st| *st == StatusCode::CREATED),
        "{statuses:?}"
    );

    let h = s
        .api_ok(&format!("/api/v1/repositories/{repo}/-/tags/edge/history"))
        .await;
    // Newest first: walk from the oldest.
    let mut chain: Vec<&Value> = entries(&h).iter().collect();
    chain.reverse();
    assert_eq!(chain.len(), CLIENTS, "{h}");
    assert_eq!(chain[0]["action"], "pushed", "{h}");
    assert!(chain[0]["from_digest"].is_null(), "{h}");
    for pair in chain.windows(2) {
        assert_eq!(pair[1]["action"], "moved", "{h}");
        assert_eq!(pair[1]["from_digest"], pair[0]["to_digest"], "{h}");
    }
    let landed: BTreeSet<String> = chain
        .iter()
        .map(|e| e["to_digest"].as_str().unwrap().to_string())
        .collect();
    let pushed: BTreeSet<String> = manifests.iter().map(|m| sha256(m)).collect();
    assert_eq!(landed, pushed);

    let current = chain.last().unwrap()["to_digest"].as_str().unwrap();
    let bin = s
        .api_ok(&format!("/api/v1/repositories/{repo}/-/restorable"))
        .await;
    let restorable: BTreeSet<String> = bin["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["digest"].as_str().unwrap().to_string())
        .collect();
    let left: BTreeSet<String> = pushed.into_iter().filter(|d| d != current).collect();
    assert_eq!(restorable, left, "{bin}");
}

fn entries(h: &Value) -> &Vec<Value> {
    h["entries"].as_array().expect("history entries")
}
