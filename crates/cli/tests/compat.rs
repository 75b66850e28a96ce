//! One test per compatibility trap that real clients hit (shared/reference §11): header forms,
//! exact status codes, byte-exact manifests, query parsing, and the push orders clients use.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

const REPO: &str = "compat/app";

/// containers/image sends each accepted type as its own `Accept` line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_accept_headers() {
    let s = TestServer::start().await;
    let c = client();
    let digest = push_image(&c, &s.base, REPO, "v1", 1).await;
    let mut req = c.get(s.url(&format!("/v2/{REPO}/manifests/v1")));
    for t in [
        OCI_MANIFEST,
        DOCKER_MANIFEST,
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
        DOCKER_LIST,
        OCI_INDEX,
    ] {
        req = req.header("accept", t);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), Some(digest.as_str()));
    // containerd's single comma-joined list, and curl with no Accept at all.
    for accept in [
        Some(
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*",
        ),
        None,
    ] {
        let mut req = c.get(s.url(&format!("/v2/{REPO}/manifests/v1")));
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        assert_eq!(req.send().await.unwrap().status(), StatusCode::OK);
    }
}

/// `Range` is `0-<last>` with no `bytes=`, `0-0` when empty, on 202, 204 and 416 alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_range_header_form() {
    let s = TestServer::start().await;
    let c = client();
    let r = c
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED, "POST is exactly 202");
    assert_eq!(header(&r, "range"), Some("0-0"));
    assert_eq!(header(&r, "content-length"), Some("0"));
    let uuid = header(&r, "docker-upload-uuid").unwrap().to_string();
    let loc = header(&r, "location").unwrap().to_string();
    assert!(loc.ends_with(&uuid));
    let r = c.get(s.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), Some("0-0"));
    assert_eq!(header(&r, "docker-upload-uuid"), Some(uuid.as_str()));
    let r = c
        .patch(s.url(&loc))
        .body(vec![7u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "range"), Some("0-9"));
    let r = c
        .patch(s.url(&loc))
        .header("content-range", "50-59")
        .body(vec![7u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "range"), Some("0-9"));
    assert_eq!(header(&r, "docker-upload-uuid"), Some(uuid.as_str()));
    // The first Location of a live session stays valid after every PATCH.
    let r = c
        .put(s.url(&format!("{loc}?digest={}", sha256(&[7u8; 10]))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "final PUT is exactly 201");
}

/// containerd aborts a push whose final PUT lacks `Docker-Content-Digest`; every 201 and every
/// GET/HEAD carries it, with the true `Content-Length` on HEAD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_content_digest_everywhere() {
    let s = TestServer::start().await;
    let c = client();
    let blob = random_bytes(1234, 2);
    let d = sha256(&blob);
    // Monolithic POST.
    let r = c
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads/?digest={d}")))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), Some(d.as_str()));
    // POST + single PUT with the whole body (containerd).
    let blob2 = random_bytes(99, 3);
    let r = c
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap().to_string();
    let r = c
        .put(s.url(&format!("{loc}?digest={}", sha256(&blob2))))
        .body(blob2.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&r, "docker-content-digest"),
        Some(sha256(&blob2).as_str())
    );
    // Mount.
    let r = c
        .post(s.url(&format!(
            "/v2/compat/other/blobs/uploads/?mount={d}&from={REPO}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), Some(d.as_str()));
    // HEAD and GET of the blob.
    for r in [
        c.head(s.url(&format!("/v2/{REPO}/blobs/{d}")))
            .send()
            .await
            .unwrap(),
        c.get(s.url(&format!("/v2/{REPO}/blobs/{d}")))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(header(&r, "docker-content-digest"), Some(d.as_str()));
        assert_eq!(header(&r, "content-length"), Some("1234"));
    }
    // Manifest PUT, HEAD, GET.
    let cd = push_blob(&c, &s.base, REPO, b"{}").await;
    let m = image_manifest((&cd, 2), &[(&d, 1234)]);
    let r = put_manifest(&c, &s.base, REPO, "v1", OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(&r, "docker-content-digest"),
        Some(sha256(&m).as_str())
    );
    for r in [
        c.head(s.url(&format!("/v2/{REPO}/manifests/v1")))
            .send()
            .await
            .unwrap(),
        c.get(s.url(&format!("/v2/{REPO}/manifests/v1")))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(
            header(&r, "docker-content-digest"),
            Some(sha256(&m).as_str())
        );
        assert_eq!(
            header(&r, "content-length"),
            Some(m.len().to_string().as_str())
        );
    }
}

/// `…/blobs/uploads` without the trailing slash is served directly, not redirected (a client
/// following a 301 on POST would turn it into a GET).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_path_without_trailing_slash() {
    let s = TestServer::start().await;
    let r = client()
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = client().get(s.url("/v2")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Manifests are stored byte-exact: umoci's OCI manifest without `mediaType` (the type comes
/// from `Content-Type`), and oras-py's Python-style spacing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_byte_exact() {
    let s = TestServer::start().await;
    let c = client();
    let cd = push_blob(&c, &s.base, REPO, b"{}").await;
    let ld = push_blob(&c, &s.base, REPO, b"layer").await;
    let umoci = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":5}}]}}"#
    );
    let python = format!(
        r#"{{"schemaVersion": 2, "mediaType": "{OCI_MANIFEST}", "config": {{"mediaType": "application/vnd.unknown.config.v1+json", "digest": "{cd}", "size": 2}}, "layers": [{{"mediaType": "text/plain", "digest": "{ld}", "size": 5, "annotations": {{"org.opencontainers.image.title": "a.txt"}}}}], "annotations": {{}}}}"#
    );
    for (tag, body) in [("umoci", umoci), ("python", python)] {
        let r = put_manifest(&c, &s.base, REPO, tag, OCI_MANIFEST, body.as_bytes()).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{tag}");
        let r = c
            .get(s.url(&format!("/v2/{REPO}/manifests/{tag}")))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "content-type"), Some(OCI_MANIFEST));
        assert_eq!(
            header(&r, "docker-content-digest"),
            Some(sha256(body.as_bytes()).as_str())
        );
        assert_eq!(r.text().await.unwrap(), body, "{tag}");
    }
}

/// skopeo and oras delete by digest, removing every tag of the manifest; only the raw API's
/// tag delete removes a single tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_delete_versus_digest_delete() {
    let s = TestServer::start().await;
    let c = client();
    let d = push_image(&c, &s.base, REPO, "a", 4).await;
    let m = c
        .get(s.url(&format!("/v2/{REPO}/manifests/a")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    for t in ["b", "c"] {
        put_manifest(&c, &s.base, REPO, t, OCI_MANIFEST, &m).await;
    }
    let r = c
        .delete(s.url(&format!("/v2/{REPO}/manifests/a")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let tags: serde_json::Value = c
        .get(s.url(&format!("/v2/{REPO}/tags/list")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!(["b", "c"]));
    let r = c
        .delete(s.url(&format!("/v2/{REPO}/manifests/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let tags: serde_json::Value = c
        .get(s.url(&format!("/v2/{REPO}/tags/list")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!([]), "an empty list, never null");
}

/// skopeo pushes index children by digest, then the index by tag; an index whose children are
/// missing is refused. A Docker manifest list may hold OCI children (podman).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_children_first() {
    let s = TestServer::start().await;
    let c = client();
    let cd = push_blob(&c, &s.base, REPO, b"{}").await;
    let ld = push_blob(&c, &s.base, REPO, b"arch layer").await;
    let child = image_manifest((&cd, 2), &[(&ld, 10)]);
    let index = index_manifest(&[(&sha256(&child), child.len())]);
    let r = put_manifest(&c, &s.base, REPO, "multi", OCI_INDEX, &index).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let errors: serde_json::Value = r.json().await.unwrap();
    assert_eq!(errors["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(errors["errors"][0]["detail"], json!(sha256(&child)));
    let r = put_manifest(&c, &s.base, REPO, &sha256(&child), OCI_MANIFEST, &child).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = put_manifest(&c, &s.base, REPO, "multi", OCI_INDEX, &index).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut docker_list: serde_json::Value = serde_json::from_slice(&index).unwrap();
    docker_list["mediaType"] = json!(DOCKER_LIST);
    let docker_list = serde_json::to_vec(&docker_list).unwrap();
    let r = put_manifest(&c, &s.base, REPO, "dockerlist", DOCKER_LIST, &docker_list).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .head(s.url(&format!("/v2/{REPO}/manifests/dockerlist")))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-type"), Some(DOCKER_LIST));
    // Docker schema2 image manifests too.
    let mut docker: serde_json::Value = serde_json::from_slice(&child).unwrap();
    docker["mediaType"] = json!(DOCKER_MANIFEST);
    docker["config"]["mediaType"] = json!("application/vnd.docker.container.image.v1+json");
    docker["layers"][0]["mediaType"] = json!("application/vnd.docker.image.rootfs.diff.tar.gzip");
    let docker = serde_json::to_vec(&docker).unwrap();
    let r = put_manifest(&c, &s.base, REPO, "docker", DOCKER_MANIFEST, &docker).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .head(s.url(&format!("/v2/{REPO}/manifests/docker")))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-type"), Some(DOCKER_MANIFEST));
}

/// Mount parameters arrive percent-encoded (skopeo) or raw (containerd).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_query_encodings() {
    let s = TestServer::start().await;
    let c = client();
    let d = push_blob(&c, &s.base, "compat/src/img", b"mount me").await;
    let encoded = format!(
        "/v2/compat/dst1/blobs/uploads/?from=compat%2Fsrc%2Fimg&mount={}",
        d.replace(':', "%3A")
    );
    let raw = format!("/v2/compat/dst2/blobs/uploads/?mount={d}&from=compat/src/img");
    for (path, dst) in [(encoded, "compat/dst1"), (raw, "compat/dst2")] {
        let r = c.post(s.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{path}");
        assert_eq!(
            header(&r, "location"),
            Some(format!("/v2/{dst}/blobs/{d}").as_str())
        );
    }
    // A digest with an escaped colon in the path works too.
    let r = c
        .head(s.url(&format!("/v2/compat/dst1/blobs/{}", d.replace(':', "%3A"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// containers/image retries in another format on MANIFEST_INVALID, so an unsupported type
/// (schema 1) must answer exactly that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_format_is_manifest_invalid() {
    let s = TestServer::start().await;
    let r = put_manifest(
        &client(),
        &s.base,
        REPO,
        "old",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        br#"{"schemaVersion":1,"name":"compat/app","tag":"old","fsLayers":[]}"#,
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_codes(r).await, ["MANIFEST_INVALID"]);
}

/// Docker detects a v2 registry by this header on `/v2/`, and on errors too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_version_header_everywhere() {
    let s = TestServer::start().await;
    let c = client();
    for path in [
        "/v2/",
        "/v2/compat/none/manifests/x",
        "/v2/NOPE/tags/list",
        "/v2/x/unknown",
    ] {
        let r = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(
            header(&r, "docker-distribution-api-version"),
            Some("registry/2.0"),
            "{path}"
        );
    }
    let r = c
        .get(s.url("/v2/compat/none/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_codes(r).await, ["NAME_UNKNOWN"]);
}

/// `digest` is read from the URL only, even when curl labels the body as a form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_encoded_body_is_still_a_blob() {
    let s = TestServer::start().await;
    let c = client();
    let body = b"digest=sha256%3Aabc&mount=x".to_vec();
    let r = c
        .post(s.url(&format!("/v2/{REPO}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").unwrap().to_string();
    let r = c
        .put(s.url(&format!("{loc}?digest={}", sha256(&body))))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = c
        .get(s.url(&format!("/v2/{REPO}/blobs/{}", sha256(&body))))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().to_vec(), body);
}

/// oras-py follows `Link` relative to the registry root; `_catalog` paginates the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_pagination_links() {
    let s = TestServer::start().await;
    let c = client();
    for (i, repo) in ["compat/a", "compat/b", "compat/c"].iter().enumerate() {
        push_image(&c, &s.base, repo, "v1", i as u64 + 10).await;
    }
    let mut seen = Vec::new();
    let mut next = Some("/v2/_catalog?n=2".to_string());
    while let Some(path) = next {
        let r = c.get(s.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        next = header(&r, "link").map(|l| {
            l.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_string()
        });
        let page: serde_json::Value = r.json().await.unwrap();
        seen.extend(
            page["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
        assert!(seen.len() <= 3, "the Link header never ends: {seen:?}");
    }
    assert_eq!(seen, ["compat/a", "compat/b", "compat/c"]);
}
