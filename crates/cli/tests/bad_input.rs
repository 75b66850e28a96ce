//! Bad input gets the spec's error code and a clear message, and leaves nothing behind: every
//! test compares the catalogue's rows and the stored files before and after the refusal.

mod common;

use common::*;
use reqwest::StatusCode;

const REPO: &str = "bad/input";

/// Asserts status and error code, and that the registry's footprint did not change.
async fn refused(
    s: &TestServer,
    before: &Footprint,
    resp: reqwest::Response,
    status: u16,
    code: &str,
) {
    assert_eq!(resp.status().as_u16(), status, "status for {code}");
    let body: serde_json::Value = resp.json().await.expect("an OCI error body");
    let first = &body["errors"][0];
    assert_eq!(first["code"], code, "{body}");
    assert!(
        first["message"].as_str().is_some_and(|m| m.len() > 10),
        "a message that explains: {body}"
    );
    assert_eq!(
        &s.footprint().await,
        before,
        "nothing left behind by a refused {code}"
    );
}

type Footprint = (std::collections::BTreeMap<&'static str, i64>, usize, usize);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_tags_and_digests() {
    let s = TestServer::start().await;
    let c = client();
    push_image(&c, &s.base, REPO, "v1", 1).await;
    let m = c
        .get(s.url(&format!("/v2/{REPO}/manifests/v1")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let before = s.footprint().await;

    for path in [
        "/v2/Bad/Upper/blobs/uploads/",
        "/v2/bad/../etc/blobs/uploads/",
        "/v2/bad/%2E%2E/etc/blobs/uploads/",
        "/v2/bad//double/blobs/uploads/",
        "/v2/-bad/blobs/uploads/",
    ] {
        let (status, body) = raw_request(&s.base, "POST", path).await;
        assert_eq!(status, 400, "{path}");
        assert!(body.contains("NAME_INVALID"), "{path}: {body}");
        assert_eq!(s.footprint().await, before, "{path}");
    }
    let long = format!("/v2/{}/tags/list", "a".repeat(256));
    refused(
        &s,
        &before,
        c.get(s.url(&long)).send().await.unwrap(),
        400,
        "NAME_INVALID",
    )
    .await;
    let r = put_manifest(&c, &s.base, "UPPER/case", "v1", OCI_MANIFEST, &m).await;
    refused(&s, &before, r, 400, "NAME_INVALID").await;

    for tag in [".hidden", "-dash", &"t".repeat(129)] {
        let r = put_manifest(&c, &s.base, REPO, tag, OCI_MANIFEST, &m).await;
        refused(&s, &before, r, 400, "TAG_INVALID").await;
    }

    for digest in [
        "sha256:short",
        "sha256:ZZZ",
        "nocolon",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
    ] {
        let r = c
            .get(s.url(&format!("/v2/{REPO}/blobs/{digest}")))
            .send()
            .await
            .unwrap();
        refused(&s, &before, r, 400, "DIGEST_INVALID").await;
        let r = c
            .post(s.url(&format!("/v2/{REPO}/blobs/uploads/?digest={digest}")))
            .body("x")
            .send()
            .await
            .unwrap();
        refused(&s, &before, r, 400, "DIGEST_INVALID").await;
    }
    let r = c
        .get(s.url(&format!("/v2/{REPO}/referrers/sha256:nope")))
        .send()
        .await
        .unwrap();
    refused(&s, &before, r, 400, "DIGEST_INVALID").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_digest_mismatch_keeps_nothing() {
    let s = TestServer::start().await;
    let c = client();
    let before = s.footprint().await;
    let wrong = sha256(b"something else");

    // Monolithic POST with a body that does not match.
    let r = c
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads/?digest={wrong}")))
        .body(random_bytes(5000, 1))
        .send()
        .await
        .unwrap();
    refused(&s, &before, r, 400, "DIGEST_INVALID").await;

    // PATCH then PUT with the wrong digest: the session and its bytes are discarded.
    let r = c
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap().to_string();
    c.patch(s.url(&loc))
        .body(random_bytes(5000, 2))
        .send()
        .await
        .unwrap();
    let r = c
        .put(s.url(&format!("{loc}?digest={wrong}")))
        .send()
        .await
        .unwrap();
    // The repository row created by the POST stays; nothing else does.
    let mut expected = before.clone();
    expected.0.insert("repositories", 1);
    refused(&s, &expected, r, 400, "DIGEST_INVALID").await;
    let r = c.get(s.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "the session is gone");

    // PUT without any digest.
    let r = c
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap().to_string();
    let r = c.put(s.url(&loc)).body("abc").send().await.unwrap();
    refused(&s, &expected, r, 400, "DIGEST_INVALID").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_chunks() {
    let s = TestServer::start().await;
    let c = client();
    let r = c
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap().to_string();
    c.patch(s.url(&loc))
        .header("content-range", "0-9")
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    let before = s.footprint().await;

    for range in ["5-14", "11-20", "10-5", "garbage", "0-9"] {
        let r = c
            .patch(s.url(&loc))
            .header("content-range", range)
            .body(vec![2u8; 10])
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "range"), Some("0-9"), "{range}");
        refused(&s, &before, r, 416, "BLOB_UPLOAD_INVALID").await;
    }
    // A range that announces more bytes than the body carries.
    let r = c
        .patch(s.url(&loc))
        .header("content-range", "10-29")
        .body(vec![2u8; 10])
        .send()
        .await
        .unwrap();
    refused(&s, &before, r, 400, "SIZE_INVALID").await;
    let r = c.get(s.url(&loc)).send().await.unwrap();
    assert_eq!(header(&r, "range"), Some("0-9"), "the session is as it was");
    // …and it still completes.
    let mut blob = vec![1u8; 10];
    blob.extend_from_slice(&[3u8; 10]);
    c.patch(s.url(&loc))
        .header("content-range", "10-19")
        .body(vec![3u8; 10])
        .send()
        .await
        .unwrap();
    let r = c
        .put(s.url(&format!("{loc}?digest={}", sha256(&blob))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_upload_ids() {
    let s = TestServer::start().await;
    let c = client();
    push_image(&c, &s.base, REPO, "v1", 2).await;
    let before = s.footprint().await;
    for id in [
        "0123456789abcdef0123456789abcdef",
        "not-a-uuid",
        "..%2F..%2Fcatalogue.db",
    ] {
        let loc = format!("/v2/{REPO}/blobs/uploads/{id}");
        let r = c.get(s.url(&loc)).send().await.unwrap();
        refused(&s, &before, r, 404, "BLOB_UPLOAD_UNKNOWN").await;
        let r = c.patch(s.url(&loc)).body("abc").send().await.unwrap();
        refused(&s, &before, r, 404, "BLOB_UPLOAD_UNKNOWN").await;
        let r = c
            .put(s.url(&format!("{loc}?digest={}", sha256(b"abc"))))
            .body("abc")
            .send()
            .await
            .unwrap();
        refused(&s, &before, r, 404, "BLOB_UPLOAD_UNKNOWN").await;
        let r = c.delete(s.url(&loc)).send().await.unwrap();
        refused(&s, &before, r, 404, "BLOB_UPLOAD_UNKNOWN").await;
    }
    // A session of another repository is unknown here.
    let r = c
        .post(s.url("/v2/bad/other/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap().replace("bad/other", REPO);
    let before = s.footprint().await;
    let r = c.get(s.url(&loc)).send().await.unwrap();
    refused(&s, &before, r, 404, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_manifests() {
    let s = TestServer::start().await;
    let c = client();
    let cd = push_blob(&c, &s.base, REPO, b"{}").await;
    let ld = push_blob(&c, &s.base, REPO, b"layer").await;
    let good = image_manifest((&cd, 2), &[(&ld, 5)]);
    let before = s.footprint().await;

    for (body, content_type) in [
        (b"not json".to_vec(), OCI_MANIFEST),
        (b"{}".to_vec(), OCI_MANIFEST),
        (good.clone(), "text/plain"),
        (good.clone(), OCI_INDEX),
        (
            br#"{"schemaVersion":1,"config":{"digest":"x","size":1},"layers":[]}"#.to_vec(),
            OCI_MANIFEST,
        ),
    ] {
        let r = put_manifest(&c, &s.base, REPO, "bad", content_type, &body).await;
        refused(&s, &before, r, 400, "MANIFEST_INVALID").await;
    }

    // References to content the repository does not have: one error per missing digest.
    let missing1 = sha256(b"missing one");
    let missing2 = sha256(b"missing two");
    let m = image_manifest((&missing1, 2), &[(&ld, 5), (&missing2, 3)]);
    let r = put_manifest(&c, &s.base, REPO, "missing", OCI_MANIFEST, &m).await;
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let codes: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["code"].clone(), e["detail"].clone()))
        .collect();
    assert_eq!(
        codes,
        [
            (
                serde_json::json!("MANIFEST_BLOB_UNKNOWN"),
                serde_json::json!(missing1)
            ),
            (
                serde_json::json!("MANIFEST_BLOB_UNKNOWN"),
                serde_json::json!(missing2)
            ),
        ]
    );
    assert_eq!(s.footprint().await, before);
    // A blob of another repository does not count.
    let foreign = push_blob(&c, &s.base, "bad/elsewhere", b"foreign layer").await;
    let before = s.footprint().await;
    let m = image_manifest((&cd, 2), &[(&foreign, 13)]);
    let r = put_manifest(&c, &s.base, REPO, "foreign", OCI_MANIFEST, &m).await;
    refused(&s, &before, r, 400, "MANIFEST_BLOB_UNKNOWN").await;

    // By digest, the body must match.
    let r = put_manifest(&c, &s.base, REPO, &sha256(b"other"), OCI_MANIFEST, &good).await;
    refused(&s, &before, r, 400, "DIGEST_INVALID").await;

    // Over 4 MiB.
    let mut huge: serde_json::Value = serde_json::from_slice(&good).unwrap();
    huge["annotations"] = serde_json::json!({"filler": "x".repeat(4 * 1024 * 1024)});
    let r = put_manifest(
        &c,
        &s.base,
        REPO,
        "huge",
        OCI_MANIFEST,
        &serde_json::to_vec(&huge).unwrap(),
    )
    .await;
    refused(&s, &before, r, 413, "SIZE_INVALID").await;

    // Pagination numbers.
    for n in ["-1", "abc", "1.5"] {
        let r = c
            .get(s.url(&format!("/v2/{REPO}/tags/list?n={n}")))
            .send()
            .await
            .unwrap();
        refused(&s, &before, r, 400, "PAGINATION_NUMBER_INVALID").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_disabled_answers_unsupported() {
    let s = TestServer::start_with(|c| c.deletion_enabled = false).await;
    let c = client();
    let d = push_image(&c, &s.base, REPO, "v1", 3).await;
    let before = s.footprint().await;
    for path in [
        format!("/v2/{REPO}/manifests/v1"),
        format!("/v2/{REPO}/manifests/{d}"),
        format!("/v2/{REPO}/blobs/{}", sha256(b"{}")),
    ] {
        let r = c.delete(s.url(&path)).send().await.unwrap();
        refused(&s, &before, r, 405, "UNSUPPORTED").await;
    }
    let r = c
        .get(s.url(&format!("/v2/{REPO}/manifests/v1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referenced_content_cannot_be_pulled_out() {
    let s = TestServer::start().await;
    let c = client();
    let cd = push_blob(&c, &s.base, REPO, b"{}").await;
    let ld = push_blob(&c, &s.base, REPO, b"child layer").await;
    let child = image_manifest((&cd, 2), &[(&ld, 11)]);
    put_manifest(&c, &s.base, REPO, &sha256(&child), OCI_MANIFEST, &child).await;
    let index = index_manifest(&[(&sha256(&child), child.len())]);
    put_manifest(&c, &s.base, REPO, "multi", OCI_INDEX, &index).await;
    let before = s.footprint().await;
    // A child of an index, and a blob of a manifest, stay while referenced. The refusal is
    // one of the statuses the spec defines for deletes (405 UNSUPPORTED, not 409), and names
    // what holds the target.
    let r = c
        .delete(s.url(&format!("/v2/{REPO}/manifests/{}", sha256(&child))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNSUPPORTED", "{body}");
    assert!(
        body.to_string().contains(&sha256(&index)),
        "the error names the index: {body}"
    );
    let r = c
        .delete(s.url(&format!("/v2/{REPO}/blobs/{ld}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNSUPPORTED", "{body}");
    assert!(
        body.to_string().contains(&sha256(&child)),
        "the error names the manifest: {body}"
    );
    assert_eq!(s.footprint().await, before);
}

/// What schemathesis (`api_schema.rs`) and a reading of the parsers found in the management
/// API: a path, query or JSON body that does not parse is answered with the JSON error body,
/// not axum's plain text; durations past what `i64` milliseconds hold are refused or taken as
/// "longer ago than anything" instead of overflowing (a panic, or a wrapped negative grace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_api_refusals_are_json_and_long_durations_never_overflow() {
    use reqwest::Method;
    use serde_json::json;
    let s = TestServer::start().await;
    push_image(&client(), &s.base, REPO, "v1", 1).await;
    let before = s.footprint().await;
    let too_long = "9223372036854776s";
    for (method, path, body, status) in [
        (
            Method::GET,
            "/api/v1/gc/runs/9223372036854775808".to_string(),
            None,
            400,
        ),
        (Method::GET, "/api/v1/policy-runs/x".to_string(), None, 400),
        (
            Method::GET,
            "/api/v1/repositories?n=many".to_string(),
            None,
            400,
        ),
        (
            Method::GET,
            "/api/v1/gc/runs?limit=9223372036854775808".to_string(),
            None,
            400,
        ),
        (
            Method::GET,
            "/api/v1/events?color=red".to_string(),
            None,
            400,
        ),
        (
            Method::POST,
            "/api/v1/gc/runs".to_string(),
            Some(json!({"dry_run": true, "grace": too_long})),
            400,
        ),
        (
            Method::POST,
            format!("/api/v1/repositories/{REPO}/-/bulk-delete"),
            Some(json!({"dry_run": true, "older_than": too_long})),
            400,
        ),
        // A NUL character: PostgreSQL cannot store one in text, and no pattern needs one.
        (
            Method::POST,
            "/api/v1/roles".to_string(),
            Some(json!({"subject": "anonymous", "pattern": "\u{0}", "role": "read"})),
            400,
        ),
    ] {
        let (got, v) = s.api(method.clone(), &path, body).await;
        assert_eq!(got.as_u16(), status, "{method} {path}: {v}");
        assert!(
            first_message(&v).len() > 10,
            "{method} {path}: a JSON error body that explains: {v}"
        );
    }
    for path in [
        format!("/api/v1/events?since={too_long}"),
        format!("/api/v1/events?until={too_long}"),
    ] {
        let (got, v) = s.api(Method::GET, &path, None).await;
        assert_eq!(got, StatusCode::OK, "{path}: {v}");
    }
    let (got, v) = s
        .api(
            Method::POST,
            &format!("/api/v1/repositories/{REPO}/-/bulk-delete"),
            Some(json!({"dry_run": true, "older_than": "1000000y"})),
        )
        .await;
    assert_eq!(got, StatusCode::OK, "{v}");
    assert_eq!(v["deleted"], json!([]), "nothing is that old: {v}");
    let resp = client()
        .post(s.url("/api/v1/users"))
        .body(r#"{"name": "someone", "password": "a-long-password"}"#)
        .send()
        .await
        .unwrap();
    refused(&s, &before, resp, 415, "INVALID_REQUEST").await;
    assert_eq!(s.footprint().await, before, "nothing changed");
}
