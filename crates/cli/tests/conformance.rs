//! The checks of the OCI distribution-spec conformance suite's four workflows (pull, push,
//! content discovery, content management), reproduced against the real server, plus the cases
//! the suite's main branch adds (cancel, sha512, ranges, bad digests, byte-exact re-fetch).

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const NS: &str = "conformance/myorg/myrepo";
const CROSS: &str = "conformance/other/crossmount";
const HELLO_WORLD: &str = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

/// Setup of the Pull workflow: two configs, one layer, two manifests, one tag.
async fn pull_fixture(s: &TestServer) -> (String, Vec<(String, Vec<u8>)>) {
    let c = client();
    let layer = random_bytes(42, 1);
    let ld = push_blob(&c, &s.base, NS, &layer).await;
    let mut manifests = Vec::new();
    for i in 0..2u64 {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","n":{i}}}"#).into_bytes();
        let cd = push_blob(&c, &s.base, NS, &config).await;
        let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
        let r = put_manifest(&c, &s.base, NS, &sha256(&m), OCI_MANIFEST, &m).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        manifests.push((sha256(&m), m));
    }
    let r = put_manifest(&c, &s.base, NS, "tagtest0", OCI_MANIFEST, &manifests[1].1).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    (ld, manifests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_workflow() {
    let s = TestServer::start().await;
    let c = client();
    let (layer, manifests) = pull_fixture(&s).await;

    // Blobs: unknown 404, known 200 with a matching digest header.
    let r = c
        .head(s.url(&format!("/v2/{NS}/blobs/{HELLO_WORLD}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c
        .head(s.url(&format!("/v2/{NS}/blobs/{layer}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), Some(layer.as_str()));
    assert_eq!(header(&r, "content-length"), Some("42"));
    let r = c
        .get(s.url(&format!("/v2/{NS}/blobs/{HELLO_WORLD}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c
        .get(s.url(&format!("/v2/{NS}/blobs/{layer}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().to_vec(), random_bytes(42, 1));

    // Manifests: an invalid tag name is simply unknown (404), for HEAD and GET.
    for method in [reqwest::Method::HEAD, reqwest::Method::GET] {
        let r = c
            .request(
                method.clone(),
                s.url(&format!("/v2/{NS}/manifests/.INVALID_MANIFEST_NAME")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method}");
        let refs = [
            manifests[0].0.clone(),
            manifests[1].0.clone(),
            "tagtest0".to_string(),
        ];
        let expected = [&manifests[0], &manifests[1], &manifests[1]];
        for (reference, (digest, bytes)) in refs.iter().zip(expected) {
            let r = c
                .request(
                    method.clone(),
                    s.url(&format!("/v2/{NS}/manifests/{reference}")),
                )
                .header("accept", OCI_MANIFEST)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{method} {reference}");
            assert_eq!(header(&r, "docker-content-digest"), Some(digest.as_str()));
            assert_eq!(header(&r, "content-type"), Some(OCI_MANIFEST));
            assert_eq!(
                header(&r, "content-length"),
                Some(bytes.len().to_string().as_str())
            );
            if method == reqwest::Method::GET {
                assert_eq!(&r.bytes().await.unwrap()[..], &bytes[..], "byte-exact");
            }
        }
    }

    // A malformed digest: 400 with a valid OCI error body (404 would also do).
    let r = c
        .get(s.url(&format!("/v2/{NS}/manifests/sha256:totallywrong")))
        .body("junk")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_codes(r).await, ["DIGEST_INVALID"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_streamed_monolithic_and_chunked() {
    let s = TestServer::start().await;
    let c = client();

    // Streamed: POST, one PATCH without Content-Range, PUT with an empty body.
    let blob = random_bytes(4096, 2);
    let r = c
        .post(s.url(&format!("/v2/{NS}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = header(&r, "location").unwrap().to_string();
    let r = c
        .patch(s.url(&loc))
        .header("content-type", "application/octet-stream")
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), Some("0-4095"));
    let loc = header(&r, "location").unwrap().to_string();
    let r = c
        .put(s.url(&format!("{loc}?digest={}", sha256(&blob))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(&r, "location"),
        Some(format!("/v2/{NS}/blobs/{}", sha256(&blob)).as_str())
    );

    // Monolithic: POST with ?digest= and the body stores at once (201).
    let config = br#"{"mono":true}"#.to_vec();
    let d = sha256(&config);
    let r = c
        .get(s.url(&format!("/v2/{NS}/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c
        .post(s.url(&format!("/v2/{NS}/blobs/uploads/?digest={d}")))
        .header("content-type", "application/octet-stream")
        .body(config.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(header(&r, "location").is_some());
    let r = c
        .get(s.url(&format!("/v2/{NS}/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // POST then PUT with the body.
    let layer = random_bytes(777, 3);
    let ld = push_blob(&c, &s.base, NS, &layer).await;
    let r = c
        .get(s.url(&format!("/v2/{NS}/blobs/{ld}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), layer);

    // Chunked: 42 bytes in two chunks.
    let blob = random_bytes(42, 4);
    let (c1, c2) = blob.split_at(20);
    let r = c
        .post(s.url(&format!("/v2/{NS}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap().to_string();
    // The second chunk first: out of order.
    let r = c
        .patch(s.url(&loc))
        .header("content-type", "application/octet-stream")
        .header("content-range", "20-41")
        .body(c2.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "range"), Some("0-0"));
    assert!(header(&r, "location").is_some());
    let r = c
        .post(s.url(&format!("/v2/{NS}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    let first_loc = header(&r, "location").unwrap().to_string();
    let r = c
        .patch(s.url(&first_loc))
        .header("content-type", "application/octet-stream")
        .header("content-range", "0-19")
        .body(c1.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), Some("0-19"));
    let loc = header(&r, "location").unwrap().to_string();
    // Re-sending chunk 1 on the earlier Location is out of order.
    let r = c
        .patch(s.url(&first_loc))
        .header("content-type", "application/octet-stream")
        .header("content-range", "0-19")
        .body(c1.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "range"), Some("0-19"));
    let r = c.get(s.url(&first_loc)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), Some("0-19"));
    assert!(header(&r, "location").is_some());
    let r = c
        .patch(s.url(&loc))
        .header("content-type", "application/octet-stream")
        .header("content-range", "20-41")
        .body(c2.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), Some("0-41"));
    let loc = header(&r, "location").unwrap().to_string();
    let r = c
        .put(s.url(&format!("{loc}?digest={}", sha256(&blob))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .get(s.url(&format!("/v2/{NS}/blobs/{}", sha256(&blob))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), blob);

    // A last chunk may travel with the PUT.
    let blob = random_bytes(100, 5);
    let r = c
        .post(s.url(&format!("/v2/{NS}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap().to_string();
    let r = c
        .patch(s.url(&loc))
        .header("content-range", "0-59")
        .body(blob[..60].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = c
        .put(s.url(&format!("{loc}?digest={}", sha256(&blob))))
        .header("content-range", "60-99")
        .header("content-type", "application/octet-stream")
        .body(blob[60..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_cross_mount_and_manifests() {
    let s = TestServer::start().await;
    let c = client();
    let blob = random_bytes(300, 6);
    let d = push_blob(&c, &s.base, NS, &blob).await;

    // Mount of an unknown blob falls back to a session in the target repository.
    let random = sha256(b"never pushed");
    let r = c
        .post(s.url(&format!("/v2/{CROSS}/blobs/uploads/?mount={random}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(
        header(&r, "location")
            .unwrap()
            .starts_with(&format!("/v2/{CROSS}/blobs/uploads/"))
    );
    // Mount from the namespace: 201, Location of the blob in the target, readable there.
    let r = c
        .post(s.url(&format!("/v2/{CROSS}/blobs/uploads/?mount={d}&from={NS}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(&r, "location"),
        Some(format!("/v2/{CROSS}/blobs/{d}").as_str())
    );
    assert_eq!(header(&r, "docker-content-digest"), Some(d.as_str()));
    let r = c
        .get(s.url(&format!("/v2/{CROSS}/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Automatic mount: without `from`, a blob the registry holds is mounted too.
    let r = c
        .post(s.url(&format!("/v2/conformance/auto/blobs/uploads/?mount={d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Manifests: unknown 404; the same manifest under four tags; an empty-layers manifest
    // with a `data` field and an unknown field.
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let cd = push_blob(&c, &s.base, NS, config).await;
    let m = image_manifest((&cd, config.len()), &[(&d, blob.len())]);
    let r = c
        .get(s.url(&format!("/v2/{NS}/manifests/{}", sha256(&m))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for tag in ["test0", "test1", "test2", "test3"] {
        let r = put_manifest(&c, &s.base, NS, tag, OCI_MANIFEST, &m).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let loc = header(&r, "location").unwrap().to_string();
        assert_eq!(loc, format!("/v2/{NS}/manifests/{}", sha256(&m)));
        let again = c.get(s.url(&loc)).send().await.unwrap();
        assert_eq!(
            &again.bytes().await.unwrap()[..],
            &m[..],
            "Location re-fetch is byte-exact"
        );
    }
    let mut extra = serde_json::Map::new();
    extra.insert("newUnspecifiedField".into(), json!({"x": 1}));
    let mut no_layers: Value =
        serde_json::from_slice(&image_manifest((&cd, config.len()), &[])).unwrap();
    no_layers["config"]["data"] = json!("eyJhcmNoaXRlY3R1cmUiOiJhbWQ2NCIsIm9zIjoibGludXgifQ==");
    no_layers["newUnspecifiedField"] = json!("yes");
    let no_layers = serde_json::to_vec(&no_layers).unwrap();
    let r = put_manifest(&c, &s.base, NS, "nolayers", OCI_MANIFEST, &no_layers).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .get(s.url(&format!("/v2/{NS}/manifests/{}", sha256(&no_layers))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_discovery() {
    let s = TestServer::start().await;
    let c = client();
    let empty = push_blob(&c, &s.base, NS, b"{}").await;
    let layer = push_blob(&c, &s.base, NS, b"discovery layer").await;
    let subject = image_manifest((&empty, 2), &[(&layer, 15)]);
    let subject_digest = sha256(&subject);
    for tag in [
        "test0", "test1", "test2", "test3", "TEST0", "TEST1", "TEST2", "TEST3",
    ] {
        let r = put_manifest(&c, &s.base, NS, tag, OCI_MANIFEST, &subject).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }

    let a_type = "application/vnd.nhl.peanut.butter.bagel";
    let b_type = "application/vnd.nba.strawberry.jam.croissant";
    let referrer = |artifact: Option<&str>, config_type: &str, note: &str, subject: &str| {
        let mut m = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 15}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size(subject)},
            "annotations": {"org.opencontainers.conformance.test": note},
        });
        if let Some(a) = artifact {
            m["artifactType"] = json!(a);
        }
        serde_json::to_vec(&m).unwrap()
    };
    fn subject_size(_: &str) -> usize {
        1234
    }
    // Two referrers pushed before their subject, one typed by config, one by artifactType.
    let r1 = referrer(None, a_type, "ref1", &subject_digest);
    let r2 = referrer(Some(b_type), OCI_EMPTY, "ref2", &subject_digest);
    // An index referrer.
    let r3 = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": b_type, "manifests": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject.len()},
        "annotations": {"org.opencontainers.conformance.test": "ref3"},
    }))
    .unwrap();
    let r4 = referrer(Some(a_type), OCI_EMPTY, "ref4", &subject_digest);
    let r5 = referrer(Some(b_type), OCI_EMPTY, "ref5", &subject_digest);
    let missing_subject = sha256(b"no such subject");
    let r6 = referrer(Some(a_type), OCI_EMPTY, "ref6", &missing_subject);
    for (i, (body, media_type)) in [
        (&r1, OCI_MANIFEST),
        (&r2, OCI_MANIFEST),
        (&r3, OCI_INDEX),
        (&r4, OCI_MANIFEST),
        (&r5, OCI_MANIFEST),
        (&r6, OCI_MANIFEST),
    ]
    .into_iter()
    .enumerate()
    {
        let r = put_manifest(&c, &s.base, NS, &sha256(body), media_type, body).await;
        assert_eq!(r.status(), StatusCode::CREATED, "referrer {i}");
        let expected = if i == 5 {
            &missing_subject
        } else {
            &subject_digest
        };
        assert_eq!(
            header(&r, "oci-subject"),
            Some(expected.as_str()),
            "referrer {i}"
        );
    }

    // Tag listing: sorted in byte order, paginated.
    let all: Value = c
        .get(s.url(&format!("/v2/{NS}/tags/list")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        all["tags"],
        json!([
            "TEST0", "TEST1", "TEST2", "TEST3", "test0", "test1", "test2", "test3"
        ])
    );
    let r = c
        .get(s.url(&format!("/v2/{NS}/tags/list?n=4")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&r, "link"),
        Some(format!("</v2/{NS}/tags/list?n=4&last=TEST3>; rel=\"next\"").as_str())
    );
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], json!(["TEST0", "TEST1", "TEST2", "TEST3"]));
    let r = c
        .get(s.url(&format!("/v2/{NS}/tags/list?n=4&last=TEST3")))
        .send()
        .await
        .unwrap();
    assert!(header(&r, "link").is_none(), "nothing after the last page");
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], json!(["test0", "test1", "test2", "test3"]));
    let page: Value = c
        .get(s.url(&format!("/v2/{NS}/tags/list?n=0")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["tags"], json!([]));

    // Referrers of an unknown digest: 200 and an empty index.
    let r = c
        .get(s.url(&format!("/v2/{NS}/referrers/{}", sha256(b"unknown"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), Some(OCI_INDEX));
    let idx: Value = r.json().await.unwrap();
    assert_eq!(idx["manifests"], json!([]));

    // Referrers of the subject: five, distinct, each with its one annotation.
    let r = c
        .get(s.url(&format!("/v2/{NS}/referrers/{subject_digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), Some(OCI_INDEX));
    let idx: Value = r.json().await.unwrap();
    let list = idx["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    let mut digests: Vec<&str> = list.iter().map(|d| d["digest"].as_str().unwrap()).collect();
    digests.sort();
    digests.dedup();
    assert_eq!(digests.len(), 5);
    for d in list {
        assert_eq!(d["annotations"].as_object().unwrap().len(), 1);
        let body = [&r1, &r2, &r3, &r4, &r5]
            .into_iter()
            .find(|b| sha256(b) == d["digest"].as_str().unwrap())
            .expect("a pushed referrer");
        assert_eq!(d["size"], json!(body.len()));
    }
    let by_digest = |b: &[u8]| {
        list.iter()
            .find(|d| d["digest"] == json!(sha256(b)))
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_digest(&r1)["artifactType"],
        json!(a_type),
        "typed by config"
    );
    assert_eq!(by_digest(&r3)["mediaType"], json!(OCI_INDEX));

    // Filtered by artifact type.
    let r = c
        .get(s.url(&format!(
            "/v2/{NS}/referrers/{subject_digest}?artifactType={a_type}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "oci-filters-applied"), Some("artifactType"));
    let idx: Value = r.json().await.unwrap();
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 2);

    // A referrer of a subject that was never pushed is listed.
    let idx: Value = c
        .get(s.url(&format!("/v2/{NS}/referrers/{missing_subject}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_management() {
    let s = TestServer::start().await;
    let c = client();
    let config = br#"{"architecture":"amd64","os":"linux","mgmt":1}"#;
    let layer = random_bytes(64, 7);
    let cd = push_blob(&c, &s.base, NS, config).await;
    let ld = push_blob(&c, &s.base, NS, &layer).await;
    let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let md = sha256(&m);
    for tag in ["keep", "tagtest0"] {
        assert_eq!(
            put_manifest(&c, &s.base, NS, tag, OCI_MANIFEST, &m)
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let other = push_image(&c, &s.base, NS, "other", 8).await;
    let count = |v: Value| v["tags"].as_array().unwrap().len();
    let before = count(
        c.get(s.url(&format!("/v2/{NS}/tags/list")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(before, 3);

    // Delete by tag: only that tag goes.
    let r = c
        .delete(s.url(&format!("/v2/{NS}/manifests/tagtest0")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let after: Value = c
        .get(s.url(&format!("/v2/{NS}/tags/list")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["tags"], json!(["keep", "other"]));
    let r = c
        .get(s.url(&format!("/v2/{NS}/manifests/{md}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the manifest stays");

    // Delete by digest: the manifest and every tag on it.
    let r = c
        .delete(s.url(&format!("/v2/{NS}/manifests/{md}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = c
        .get(s.url(&format!("/v2/{NS}/manifests/{md}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c
        .get(s.url(&format!("/v2/{NS}/manifests/keep")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let after: Value = c
        .get(s.url(&format!("/v2/{NS}/tags/list")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["tags"], json!(["other"]));
    let r = c
        .get(s.url(&format!("/v2/{NS}/manifests/{other}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "other manifests are untouched");

    // Blobs, once no manifest references them.
    for d in [&cd, &ld] {
        let r = c
            .delete(s.url(&format!("/v2/{NS}/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let r = c
            .get(s.url(&format!("/v2/{NS}/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = c
            .delete(s.url(&format!("/v2/{NS}/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_branch_cases() {
    let s = TestServer::start().await;
    let c = client();

    // Cancel: 204, then the session is gone.
    let r = c
        .post(s.url(&format!("/v2/{NS}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap().to_string();
    let r = c.delete(s.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for r in [
        c.get(s.url(&loc)).send().await.unwrap(),
        c.patch(s.url(&loc)).body("x").send().await.unwrap(),
        c.put(s.url(&format!("{loc}?digest={}", sha256(b"x"))))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_codes(r).await, ["BLOB_UPLOAD_UNKNOWN"]);
    }

    // sha512: a session that hashes sha512, and a monolithic push by sha512 digest.
    let blob = random_bytes(5000, 9);
    let d512 = format!(
        "sha512:{}",
        hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&blob))
    );
    let r = c
        .post(s.url(&format!("/v2/{NS}/blobs/uploads/?digest-algorithm=sha512")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = header(&r, "location").unwrap().to_string();
    let r = c
        .patch(s.url(&loc))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = c
        .put(s.url(&format!("{loc}?digest={d512}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), Some(d512.as_str()));
    let r = c
        .get(s.url(&format!("/v2/{NS}/blobs/{d512}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), blob);
    // A sha512 manifest by digest.
    let cfg = push_blob(&c, &s.base, NS, b"{}").await;
    let m = image_manifest((&cfg, 2), &[(&d512, blob.len())]);
    let md512 = format!(
        "sha512:{}",
        hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&m))
    );
    let r = put_manifest(&c, &s.base, NS, &md512, OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .head(s.url(&format!("/v2/{NS}/manifests/{md512}")))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "docker-content-digest"), Some(md512.as_str()));

    // Range requests on a 4000-byte blob.
    let blob = random_bytes(4000, 10);
    let d = push_blob(&c, &s.base, NS, &blob).await;
    for (range, status, expect) in [
        ("bytes=500-1499", 206, Some((500usize, 1499usize))),
        ("bytes=500-", 206, Some((500, 3999))),
        ("bytes=-500", 206, Some((3500, 3999))),
        ("bytes=2000-5000", 206, Some((2000, 3999))),
        ("bytes=500-0", 416, None),
        ("bytes=5000-10000", 416, None),
    ] {
        let r = c
            .get(s.url(&format!("/v2/{NS}/blobs/{d}")))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{range}");
        match expect {
            Some((a, b)) => {
                assert_eq!(
                    header(&r, "content-range"),
                    Some(format!("bytes {a}-{b}/4000").as_str())
                );
                assert_eq!(
                    r.bytes().await.unwrap().to_vec(),
                    blob[a..=b].to_vec(),
                    "{range}"
                );
            }
            None => assert_eq!(header(&r, "content-range"), Some("bytes */4000")),
        }
    }

    // The zero-byte blob and the `{}` blob.
    for bytes in [&b""[..], &b"{}"[..]] {
        let d = push_blob(&c, &s.base, NS, bytes).await;
        let r = c
            .head(s.url(&format!("/v2/{NS}/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header(&r, "content-length"),
            Some(bytes.len().to_string().as_str())
        );
    }

    // A manifest of about 3.9 MB is accepted.
    let mut big: Value = serde_json::from_slice(&image_manifest((&cfg, 2), &[])).unwrap();
    big["annotations"] = json!({"filler": "x".repeat(3_900_000)});
    let big = serde_json::to_vec(&big).unwrap();
    let r = put_manifest(&c, &s.base, NS, "big", OCI_MANIFEST, &big).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .get(s.url(&format!("/v2/{NS}/manifests/big")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), big.len());

    // Manifest error cases.
    let r = c
        .get(s.url(&format!("/v2/{NS}/manifests/{}", sha256(b"missing"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c
        .get(s.url(&format!("/v2/{NS}/manifests/missingtag")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = put_manifest(
        &c,
        &s.base,
        NS,
        "sha256:baddigeststring",
        OCI_MANIFEST,
        &big,
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = c
        .get(s.url(&format!("/v2/{NS}/manifests/sha256:baddigeststring")))
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 400 | 404));
}
