//! Real registry clients against a real server: skopeo (copy in and out of OCI layouts, multi-arch,
//! inspect, list-tags, delete, layer dedup) and oras-py (artifacts, chunked upload, referrers).
//! The clients run as subprocesses; a missing client fails the test, it never skips it.

mod common;

use std::path::Path;
use std::process::Output;

use common::layout::{Image, Layer, MultiArch, OciLayout};
use common::{
    OCI_INDEX, OCI_MANIFEST, TestServer, client, header, oras_python, pull_layout, push_layout,
    random_bytes, sha256, skopeo, wait_gc_run, wait_policy_run,
};
use reqwest::StatusCode;
use serde_json::Value;

async fn exec(program: &Path, args: &[&str], cwd: Option<&Path>) -> Output {
    common::exec_tool(program, args, cwd).await
}

fn describe(program: &Path, args: &[&str], out: &Output) -> String {
    common::describe_run(program, args, out)
}

async fn run_ok(program: &Path, args: &[&str], cwd: Option<&Path>) -> Output {
    common::run_tool(program, args, cwd).await
}

/// GET a manifest the way a client would; returns status, content type, digest header, body.
async fn get_manifest(
    s: &TestServer,
    repo: &str,
    reference: &str,
) -> (StatusCode, Option<String>, Option<String>, Vec<u8>) {
    let resp = client()
        .get(s.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("accept", OCI_MANIFEST)
        .header("accept", OCI_INDEX)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let ct = header(&resp, "content-type").map(str::to_string);
    let digest = header(&resp, "docker-content-digest").map(str::to_string);
    (status, ct, digest, resp.bytes().await.unwrap().to_vec())
}

async fn get_blob(s: &TestServer, repo: &str, digest: &str) -> (StatusCode, Vec<u8>) {
    let resp = client()
        .get(s.url(&format!("/v2/{repo}/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.bytes().await.unwrap().to_vec())
}

/// The registry serves `image` in `repo` under `reference`, byte for byte.
async fn assert_serves_image(s: &TestServer, repo: &str, reference: &str, image: &Image) {
    let (status, ct, digest, body) = get_manifest(s, repo, reference).await;
    assert_eq!(status, StatusCode::OK, "GET {repo}:{reference}");
    assert_eq!(ct.as_deref(), Some(OCI_MANIFEST), "{repo}:{reference} type");
    assert_eq!(digest, Some(image.digest()), "{repo}:{reference} digest");
    assert!(body == image.manifest, "{repo}:{reference} bytes differ");
    for (d, bytes) in image.blobs() {
        let (status, got) = get_blob(s, repo, &d).await;
        assert_eq!(status, StatusCode::OK, "GET blob {d} in {repo}");
        assert!(got == bytes, "blob {d} in {repo} differs");
    }
}

/// How many objects of the blob store hold exactly `bytes`.
async fn stored_copies(s: &TestServer, bytes: &[u8]) -> usize {
    let mut copies = 0;
    for o in s.blob_objects().await {
        if s.object_bytes(&o.key).await == bytes {
            copies += 1;
        }
    }
    copies
}

fn two_layer_image(arch: &str, label: &str, seed: u64) -> Image {
    Image::new(
        arch,
        &[
            Layer::seeded(&format!("{label}-base"), seed),
            Layer::seeded(&format!("{label}-app"), seed + 1),
        ],
        &["/bin/sh"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layouts_hold_real_images() {
    // The builder itself: real tar+gzip layers, diff_ids over the uncompressed tar, and a
    // layout skopeo would read. Guards the other tests against a vacuous source.
    let layer = Layer::seeded("probe", 3);
    assert_eq!(
        layer.entries(),
        [
            "etc/",
            "opt/",
            "opt/probe/",
            "etc/probe.txt",
            "opt/probe/data.bin"
        ]
    );
    assert_eq!(&layer.gz[..2], &[0x1f, 0x8b], "gzip magic");
    assert_ne!(layer.digest, layer.diff_id);
    assert_eq!(
        Layer::seeded("probe", 3).digest,
        layer.digest,
        "deterministic"
    );
    let image = Image::new("arm64", std::slice::from_ref(&layer), &["/bin/true"]);
    let config: Value = serde_json::from_slice(&image.config).unwrap();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(config["rootfs"]["diff_ids"][0], sha256(&layer.tar));
    assert_eq!(config["config"]["Cmd"][0], "/bin/true");

    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path());
    layout.add_image("one", &image);
    let multi = MultiArch::amd64_arm64(1);
    layout.add_multi_arch("multi", &multi);
    let layout = OciLayout::open(dir.path());
    assert_eq!(layout.tagged("one"), image.descriptor());
    assert_eq!(layout.tagged("multi"), multi.descriptor());
    let mut expected = image.content();
    expected.extend(multi.content());
    assert_eq!(layout.content(), expected);
    let index: Value = serde_json::from_slice(&multi.index).unwrap();
    let arches: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_round_trips_single_arch_image() {
    let s = TestServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let image = two_layer_image("amd64", "single", 10);
    OciLayout::create(&tmp.path().join("src")).add_image("v1", &image);

    let dest = format!("docker://{}/roundtrip/single:v1", s.host());
    push_layout(&tmp.path().join("src"), "v1", &dest, false).await;
    assert_serves_image(&s, "roundtrip/single", "v1", &image).await;
    assert_serves_image(&s, "roundtrip/single", &image.digest(), &image).await;

    let pulled = pull_layout(&dest, &tmp.path().join("dst"), "v1", false).await;
    assert_eq!(pulled.tagged("v1"), image.descriptor(), "pulled manifest");
    let got = pulled.content();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        image.content().keys().collect::<Vec<_>>(),
        "pulled blob digests"
    );
    assert!(got == image.content(), "pulled blob bytes differ");
    // Nothing left half-uploaded.
    assert!(
        s.upload_objects().await.is_empty(),
        "{:?}",
        s.upload_objects().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_inspect_raw_and_list_tags() {
    let s = TestServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let v1 = two_layer_image("amd64", "inspect-one", 20);
    let v2 = two_layer_image("amd64", "inspect-two", 30);
    let layout = OciLayout::create(tmp.path());
    layout.add_image("v1", &v1);
    layout.add_image("v2", &v2);
    let repo = format!("{}/inspect/app", s.host());
    push_layout(tmp.path(), "v1", &format!("docker://{repo}:v1"), false).await;
    push_layout(tmp.path(), "v2", &format!("docker://{repo}:v2"), false).await;

    for (tag, image) in [("v1", &v1), ("v2", &v2)] {
        let target = format!("docker://{repo}:{tag}");
        let out = run_ok(
            &skopeo(),
            &["inspect", "--tls-verify=false", "--raw", &target],
            None,
        )
        .await;
        assert!(
            out.stdout == image.manifest,
            "inspect --raw {tag}: got {:?}, pushed {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&image.manifest)
        );
        let out = run_ok(&skopeo(), &["inspect", "--tls-verify=false", &target], None).await;
        let info: Value = serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
        assert_eq!(info["Digest"], image.digest(), "inspect {tag} digest");
        assert_eq!(info["Architecture"], "amd64");
        assert_eq!(info["Layers"].as_array().map(Vec::len), Some(2));
    }

    let out = run_ok(
        &skopeo(),
        &[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{repo}"),
        ],
        None,
    )
    .await;
    let tags: Value = serde_json::from_slice(&out.stdout).expect("list-tags prints JSON");
    let mut listed: Vec<&str> = tags["Tags"]
        .as_array()
        .expect("Tags array")
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed, ["v1", "v2"], "{tags}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_round_trips_multi_arch_index() {
    let s = TestServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let multi = MultiArch::amd64_arm64(4);
    OciLayout::create(&tmp.path().join("src")).add_multi_arch("multi", &multi);

    let dest = format!("docker://{}/roundtrip/multi:latest", s.host());
    push_layout(&tmp.path().join("src"), "multi", &dest, true).await;

    let (status, ct, digest, body) = get_manifest(&s, "roundtrip/multi", "latest").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some(OCI_INDEX));
    assert_eq!(digest, Some(multi.digest()));
    assert!(body == multi.index, "index bytes differ");
    for image in &multi.images {
        assert_serves_image(&s, "roundtrip/multi", &image.digest(), image).await;
    }

    let out = run_ok(
        &skopeo(),
        &["inspect", "--tls-verify=false", "--raw", &dest],
        None,
    )
    .await;
    assert!(out.stdout == multi.index, "inspect --raw of the index");
    let out = run_ok(
        &skopeo(),
        &[
            "inspect",
            "--tls-verify=false",
            "--override-arch",
            "arm64",
            "--override-variant",
            "v8",
            &dest,
        ],
        None,
    )
    .await;
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    // skopeo reports the digest of what the reference names (the index) and the chosen child's
    // architecture and layers.
    assert_eq!(info["Digest"], multi.digest(), "{info}");
    assert_eq!(info["Architecture"], "arm64", "{info}");
    let arm64_layers: Vec<String> = multi.images[1]
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .collect();
    assert_eq!(info["Layers"], serde_json::json!(arm64_layers), "{info}");

    let pulled = pull_layout(&dest, &tmp.path().join("dst"), "latest", true).await;
    assert_eq!(pulled.tagged("latest"), multi.descriptor(), "pulled index");
    let got = pulled.content();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        multi.content().keys().collect::<Vec<_>>(),
        "pulled blob digests"
    );
    assert!(got == multi.content(), "pulled blob bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_push_stores_a_shared_layer_once() {
    let s = TestServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let shared = Layer::seeded("shared", 40);
    let one = Image::new(
        "amd64",
        &[shared.clone(), Layer::seeded("only-one", 41)],
        &["/bin/one"],
    );
    let two = Image::new(
        "amd64",
        &[shared.clone(), Layer::seeded("only-two", 42)],
        &["/bin/two"],
    );
    let layout = OciLayout::create(tmp.path());
    layout.add_image("one", &one);
    layout.add_image("two", &two);

    push_layout(
        tmp.path(),
        "one",
        &format!("docker://{}/dedup/one:latest", s.host()),
        false,
    )
    .await;
    push_layout(
        tmp.path(),
        "two",
        &format!("docker://{}/dedup/two:latest", s.host()),
        false,
    )
    .await;
    assert_serves_image(&s, "dedup/one", "latest", &one).await;
    assert_serves_image(&s, "dedup/two", "latest", &two).await;

    // Manifests live in the catalogue; the blob store holds configs and layers, one file each.
    let mut distinct = one.blobs();
    distinct.extend(two.blobs());
    assert_eq!(distinct.len(), 5, "2 configs + shared + 2 own layers");
    assert_eq!(
        s.blob_objects().await.len(),
        distinct.len(),
        "blob objects: {:?}",
        s.blob_objects().await
    );
    assert_eq!(
        stored_copies(&s, &shared.gz).await,
        1,
        "shared layer stored once"
    );

    // The same bytes uploaded again (not mounted) into a third repository: still one copy.
    let digest = common::push_blob(&client(), &s.base, "dedup/three", &shared.gz).await;
    assert_eq!(digest, shared.digest);
    assert_eq!(s.blob_objects().await.len(), distinct.len());
    assert_eq!(
        stored_copies(&s, &shared.gz).await,
        1,
        "re-upload stored once"
    );
    // The redundant copy was queued for deletion with the commit and forgotten once deleted.
    let queued = s.server().collector().queue_depths().await.unwrap();
    assert_eq!(queued.storage, 0, "{queued:?}");
    for repo in ["dedup/one", "dedup/two", "dedup/three"] {
        let (status, got) = get_blob(&s, repo, &shared.digest).await;
        assert_eq!(status, StatusCode::OK, "{repo}");
        assert!(got == shared.gz, "shared layer served from {repo}");
    }
    assert!(
        s.upload_objects().await.is_empty(),
        "{:?}",
        s.upload_objects().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_delete_removes_the_manifest_and_all_its_tags() {
    let s = TestServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let doomed = two_layer_image("amd64", "doomed", 50);
    let kept = two_layer_image("amd64", "kept", 60);
    let layout = OciLayout::create(tmp.path());
    layout.add_image("doomed", &doomed);
    layout.add_image("kept", &kept);
    let repo = format!("{}/del/app", s.host());
    push_layout(tmp.path(), "doomed", &format!("docker://{repo}:v1"), false).await;
    push_layout(tmp.path(), "doomed", &format!("docker://{repo}:v2"), false).await;
    push_layout(tmp.path(), "kept", &format!("docker://{repo}:keep"), false).await;
    for tag in ["v1", "v2"] {
        assert_serves_image(&s, "del/app", tag, &doomed).await;
    }

    run_ok(
        &skopeo(),
        &[
            "delete",
            "--tls-verify=false",
            &format!("docker://{repo}:v2"),
        ],
        None,
    )
    .await;

    // skopeo resolves the tag and deletes by digest: the manifest and both its tags are gone.
    let doomed_digest = doomed.digest();
    for reference in ["v2", "v1", doomed_digest.as_str()] {
        let resp = client()
            .get(s.url(&format!("/v2/del/app/manifests/{reference}")))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::NOT_FOUND,
            "{reference} after delete"
        );
        assert_eq!(common::error_codes(resp).await, ["MANIFEST_UNKNOWN"]);
    }
    assert_serves_image(&s, "del/app", "keep", &kept).await;
    let tags: Value = client()
        .get(s.url("/v2/del/app/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["keep"]), "{tags}");

    // And the client sees it too.
    let args = [
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{repo}:v1"),
    ];
    let out = exec(&skopeo(), &args, None).await;
    assert!(
        !out.status.success(),
        "inspect of a deleted tag must fail:\n{}",
        describe(&skopeo(), &args, &out)
    );
}

/// Pushes with oras-py 0.2.43 (Python API only) and prints what it saw as one JSON line.
const ORAS_SCRIPT: &str = r#"
import json
import os
import sys

import oras.client
import oras.oci

reg, repo = sys.argv[1], sys.argv[2]
target = f"{reg}/{repo}"
c = oras.client.OrasClient(hostname=reg, insecure=True)
out = {}

r = c.push(
    target=f"{target}:v1",
    files=["a.txt:text/plain", "big.bin:application/vnd.example.bin"],
    manifest_annotations={"org.opencontainers.image.description": "shipshape oras-py test"},
)
out["v1_status"] = r.status_code
out["v1_digest"] = r.headers.get("Docker-Content-Digest")

r = c.push(target=f"{target}:chunked", files=["big2.bin"], do_chunked=True, chunk_size=65536)
out["chunked_status"] = r.status_code
out["chunked_digest"] = r.headers.get("Docker-Content-Digest")

h = c.do_request(
    f"http://{reg}/v2/{repo}/manifests/v1",
    "HEAD",
    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
)
out["head_status"] = h.status_code
out["head_length"] = int(h.headers["Content-Length"])
subject = oras.oci.Subject(
    mediaType="application/vnd.oci.image.manifest.v1+json",
    digest=out["v1_digest"],
    size=out["head_length"],
)
r = c.push(target=f"{target}:sig", files=["a.txt"], subject=subject)
out["referrer_status"] = r.status_code
out["referrer_digest"] = r.headers.get("Docker-Content-Digest")
out["oci_subject"] = r.headers.get("OCI-Subject")

out["pulled"] = sorted(os.path.relpath(p) for p in c.pull(target=f"{target}:v1", outdir="out"))
print("RESULT " + json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oras_py_pushes_artifacts_chunked_blobs_and_referrers() {
    let python = oras_python();
    let s = TestServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let small = b"artifact payload one\n".to_vec();
    let big = random_bytes(300_000, 70);
    let big2 = random_bytes(150_001, 71); // three PATCHes of 64 KiB, the last one short
    std::fs::write(tmp.path().join("a.txt"), &small).unwrap();
    std::fs::write(tmp.path().join("big.bin"), &big).unwrap();
    std::fs::write(tmp.path().join("big2.bin"), &big2).unwrap();
    let script = tmp.path().join("oras_push.py");
    std::fs::write(&script, ORAS_SCRIPT).unwrap();

    let repo = "artifacts/demo";
    let host = s.host();
    let args = [script.to_str().unwrap(), host.as_str(), repo];
    let out = run_ok(&python, &args, Some(tmp.path())).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line:\n{}", describe(&python, &args, &out)));
    let r: Value = serde_json::from_str(line).expect("RESULT is JSON");
    let ctx = describe(&python, &args, &out);

    // The plain artifact: two layers, the manifest digest the client was told.
    assert_eq!(r["v1_status"], 201, "{ctx}");
    let v1 = r["v1_digest"].as_str().expect("v1 digest").to_string();
    let (status, ct, digest, body) = get_manifest(&s, repo, "v1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some(OCI_MANIFEST));
    assert_eq!(digest.as_deref(), Some(v1.as_str()));
    assert_eq!(sha256(&body), v1, "digest over the bytes oras sent");
    assert_eq!(r["head_status"], 200);
    assert_eq!(r["head_length"], body.len());
    let m: Value = serde_json::from_slice(&body).unwrap();
    let layers: Vec<(&str, &str)> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap(),
                l["annotations"]["org.opencontainers.image.title"]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    let (ds, db) = (sha256(&small), sha256(&big));
    assert_eq!(layers, [(ds.as_str(), "a.txt"), (db.as_str(), "big.bin")]);
    for (d, bytes) in [(&ds, &small), (&db, &big)] {
        let (status, got) = get_blob(&s, repo, d).await;
        assert_eq!(status, StatusCode::OK);
        assert!(got == *bytes, "blob {d}");
    }

    // The chunked upload: PATCH with Content-Range per chunk, then an empty PUT ?digest=.
    assert_eq!(r["chunked_status"], 201, "{ctx}");
    let d2 = sha256(&big2);
    let (status, got) = get_blob(&s, repo, &d2).await;
    assert_eq!(status, StatusCode::OK);
    assert!(got == big2, "chunked blob bytes");
    let (status, _, digest, body) = get_manifest(&s, repo, "chunked").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(digest.as_deref(), r["chunked_digest"].as_str());
    let m: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(m["layers"][0]["digest"], d2.as_str());
    assert_eq!(m["layers"][0]["size"], big2.len());

    // The referrer: PUT answered with OCI-Subject; the referrers API lists it, and only it.
    assert_eq!(r["referrer_status"], 201, "{ctx}");
    let referrer = r["referrer_digest"]
        .as_str()
        .expect("referrer digest")
        .to_string();
    assert_eq!(
        r["oci_subject"],
        v1.as_str(),
        "OCI-Subject on the referrer PUT"
    );
    let (status, _, _, referrer_body) = get_manifest(&s, repo, &referrer).await;
    assert_eq!(status, StatusCode::OK);
    let rm: Value = serde_json::from_slice(&referrer_body).unwrap();
    assert_eq!(rm["subject"]["digest"], v1.as_str());

    let resp = client()
        .get(s.url(&format!("/v2/{repo}/referrers/{v1}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), Some(OCI_INDEX));
    let index: Value = resp.json().await.unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let listed = index["manifests"].as_array().expect("manifests");
    assert_eq!(listed.len(), 1, "{index}");
    assert_eq!(listed[0]["digest"], referrer.as_str());
    assert_eq!(listed[0]["mediaType"], OCI_MANIFEST);
    assert_eq!(listed[0]["size"], referrer_body.len());
    // No artifactType in the manifest: the config's media type stands in.
    assert_eq!(
        listed[0]["artifactType"],
        "application/vnd.unknown.config.v1+json"
    );

    // The referrer itself has no referrers: an empty index, still 200.
    let resp = client()
        .get(s.url(&format!("/v2/{repo}/referrers/{referrer}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let index: Value = resp.json().await.unwrap();
    assert_eq!(index["manifests"], serde_json::json!([]), "{index}");

    // oras pull of the first artifact gives back the files, byte for byte.
    assert_eq!(
        r["pulled"],
        serde_json::json!(["out/a.txt", "out/big.bin"]),
        "{ctx}"
    );
    assert!(std::fs::read(tmp.path().join("out/a.txt")).unwrap() == small);
    assert!(std::fs::read(tmp.path().join("out/big.bin")).unwrap() == big);
    assert!(
        s.upload_objects().await.is_empty(),
        "{:?}",
        s.upload_objects().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_delete_then_gc_frees_exactly_the_unshared_bytes() {
    let clock = shipshape_meta::clock::ManualClock::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    let s = TestServer::start_with_clock(&clock, |c| {
        c.gc.workers = 0;
        c.restore_window = std::time::Duration::ZERO;
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let shared = Layer::seeded("gc-shared", 70);
    let one = Image::new(
        "amd64",
        &[shared.clone(), Layer::seeded("gc-one", 71)],
        &["/bin/one"],
    );
    let two = Image::new(
        "amd64",
        &[shared.clone(), Layer::seeded("gc-two", 72)],
        &["/bin/two"],
    );
    let layout = OciLayout::create(&tmp.path().join("src"));
    layout.add_image("one", &one);
    layout.add_image("two", &two);
    for tag in ["one", "two"] {
        let dest = format!("docker://{}/gc/app:{tag}", s.host());
        push_layout(&tmp.path().join("src"), tag, &dest, false).await;
    }
    let before = s.stored_blob_bytes().await;
    let unshared: u64 = one
        .blobs()
        .iter()
        .filter(|(d, _)| !two.blobs().contains_key(*d))
        .map(|(_, b)| b.len() as u64)
        .sum();
    assert!(unshared > 0 && unshared < before);

    let target = format!("docker://{}/gc/app:one", s.host());
    run_ok(
        &skopeo(),
        &["delete", "--tls-verify=false", target.as_str()],
        None,
    )
    .await;
    // Past the leases of the push: a run with no grace still keeps what a client was just told
    // exists (`gc.lease`), whose own test is in gc.rs.
    clock.advance(2 * 3_600_000);
    let (status, run) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/gc/runs",
            Some(serde_json::json!({"grace": "0s", "include_untagged_manifests": true})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run = wait_gc_run(&s.base, run["id"].as_i64().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    // The blobs only `one` used, and its manifest.
    assert_eq!(
        run["figures"]["bytes_deleted"],
        unshared + one.descriptor().size as u64,
        "{run}"
    );
    assert_eq!(
        s.stored_blob_bytes().await,
        before - unshared,
        "freed on disk"
    );

    let src = format!("docker://{}/gc/app:two", s.host());
    let pulled = pull_layout(&src, &tmp.path().join("dst"), "two", false).await;
    assert_eq!(pulled.tagged("two"), two.descriptor(), "pulled manifest");
    assert!(pulled.content() == two.content(), "pulled bytes identical");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_keeps_exactly_the_newest_skopeo_pushes_and_they_copy_out_identically() {
    let clock = shipshape_meta::clock::ManualClock::new(1_700_000_000_000);
    let s = TestServer::start_with_clock(&clock, |c| c.gc.workers = 0).await;
    let tmp = tempfile::tempdir().unwrap();
    let base = Layer::seeded("policy-base", 80);
    let layout = OciLayout::create(&tmp.path().join("src"));
    let images: Vec<Image> = (1..=4)
        .map(|i| {
            Image::new(
                "amd64",
                &[base.clone(), Layer::seeded(&format!("policy-{i}"), 80 + i)],
                &["/bin/app"],
            )
        })
        .collect();
    for (i, image) in images.iter().enumerate() {
        let tag = format!("r{}", i + 1);
        layout.add_image(&tag, image);
        let dest = format!("docker://{}/pol/app:{tag}", s.host());
        push_layout(&tmp.path().join("src"), &tag, &dest, false).await;
        clock.advance(3_600_000);
    }
    let policy = r#"{"name": "newest", "repositories": ["pol/*"],
                     "keep": {"latest_pushed": 2}, "delete": {"older_than": "0s"}}"#;
    let resp = client()
        .put(format!("{}/api/v1/policies/newest", s.base))
        .body(policy)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = client()
        .post(format!("{}/api/v1/policies/newest/runs", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let id = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let run = wait_policy_run(&s.base, id).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let mut left = common::oci_tags(&s.base, "pol/app").await.unwrap();
    left.sort();
    assert_eq!(left, ["r3", "r4"]);

    let src = format!("docker://{}/pol/app:r4", s.host());
    let pulled = pull_layout(&src, &tmp.path().join("dst"), "r4", false).await;
    assert_eq!(
        pulled.tagged("r4"),
        images[3].descriptor(),
        "pulled manifest"
    );
    assert!(
        pulled.content() == images[3].content(),
        "pulled bytes identical"
    );
    let gone = format!("docker://{}/pol/app:r1", s.host());
    let out = exec(
        &skopeo(),
        &["inspect", "--tls-verify=false", "--raw", &gone],
        None,
    )
    .await;
    assert!(!out.status.success(), "r1 was deleted by the policy");
}

/// `shipshape check` over the server's data directory, with `-o json`.
async fn check(s: &TestServer, extra: &[&str]) -> (bool, Value) {
    let dir = s.data_dir().to_str().unwrap().to_string();
    let mut args = vec!["check", "--data-dir", dir.as_str(), "-o", "json"];
    args.extend_from_slice(extra);
    let out = exec(Path::new(env!("CARGO_BIN_EXE_shipshape")), &args, None).await;
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: {e}", describe(Path::new("check"), &args, &out)));
    (out.status.success(), report)
}

/// Bytes lost from under the registry (an object deleted, or its file truncated by hand) are found by
/// `check` with the images they break, `check --repair` makes the blob answer as unknown, and
/// pushing the image again with skopeo repairs it; an upload of the right bytes replaces a
/// damaged copy even before any repair. Nothing is ever served short or as a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_bytes_are_found_and_a_push_brings_them_back() {
    let s = TestServer::start_with(|c| c.gc.workers = 0).await;
    let tmp = tempfile::tempdir().unwrap();
    let image = two_layer_image("amd64", "lost", 90);
    OciLayout::create(&tmp.path().join("src")).add_image("v1", &image);
    let dest = format!("docker://{}/lost/app:v1", s.host());
    push_layout(&tmp.path().join("src"), "v1", &dest, false).await;
    let layer = image.layers[1].digest.clone();
    let config = image.config_digest();

    // The layer's object deleted from under the registry: found by the check before anyone
    // reads it.
    let lost = s.object_of(&layer).await;
    s.store().delete(&lost).await.unwrap();
    let (clean, report) = check(&s, &[]).await;
    assert!(!clean, "{report}");
    let finding = &report["findings"][0];
    assert_eq!(finding["kind"], "blob_missing", "{report}");
    assert_eq!(finding["digest"], layer.as_str(), "{report}");
    assert_eq!(finding["affects"][0]["repository"], "lost/app", "{report}");
    assert_eq!(finding["affects"][0]["tag"], "v1", "{report}");
    assert!(
        finding["remedy"].as_str().unwrap().contains("lost/app:v1"),
        "{report}"
    );

    // The repair marks it missing: HEAD says unknown, so clients upload it again.
    let (clean, report) = check(&s, &["--repair"]).await;
    assert!(!clean, "the image still needs pushing: {report}");
    assert!(
        report["findings"][0]["repaired"]
            .as_str()
            .unwrap()
            .starts_with("marked missing"),
        "{report}"
    );
    let head = client()
        .head(s.url(&format!("/v2/lost/app/blobs/{layer}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    let (_, report) = check(&s, &[]).await;
    assert_eq!(
        report["findings"][0]["kind"], "blob_marked_missing",
        "{report}"
    );

    // skopeo pushes the same image again: it uploads the blob, which replaces the lost copy.
    push_layout(&tmp.path().join("src"), "v1", &dest, false).await;
    assert_serves_image(&s, "lost/app", "v1", &image).await;
    let (clean, report) = check(&s, &[]).await;
    assert!(clean, "{report}");

    // The config's object truncated in place; a monolithic upload of the right bytes replaces
    // it without any repair.
    let damaged = s.object_of(&config).await;
    s.truncate_object(&damaged, 3);
    let (_, report) = check(&s, &[]).await;
    assert_eq!(
        report["findings"][0]["kind"], "blob_size_mismatch",
        "{report}"
    );
    // A read finds it damaged: never served short, and marked missing at once, so HEAD tells
    // clients to upload it again.
    let (status, _) = get_blob(&s, "lost/app", &config).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "never served short");
    let head = client()
        .head(s.url(&format!("/v2/lost/app/blobs/{config}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    let (_, report) = check(&s, &[]).await;
    assert_eq!(
        report["findings"][0]["kind"], "blob_marked_missing",
        "{report}"
    );
    let resp = client()
        .post(s.url(&format!("/v2/lost/app/blobs/uploads/?digest={config}")))
        .header("content-type", "application/octet-stream")
        .body(image.config.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_serves_image(&s, "lost/app", "v1", &image).await;
    s.server().settle().await;
    assert!(
        !s.has_object(&damaged).await,
        "the damaged copy is deleted once replaced"
    );
    let (clean, report) = check(&s, &["--orphan-min-age", "0s"]).await;
    assert!(clean, "{report}");
}
