//! `shipshape serve` with its blobs in an S3-compatible bucket: an S3 server (s3s-fs) runs in
//! the test process, the real binary is configured with `[storage] s3 = {…}` and keys from the
//! environment, skopeo pushes an image (one layer large enough for a multipart upload) and
//! pulls it back byte for byte, and once the image is deleted and a GC run has finished, the
//! bucket's listing shows none of its blobs and no upload leftovers. An expired session's
//! multipart upload is aborted, and settings S3 would refuse are refused at start.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::layout::{Image, Layer, OciLayout};
use common::{pull_layout, push_layout, random_bytes, run_tool, skopeo};
use futures::TryStreamExt;
use shipshape_store::{BLOBS_PREFIX, BlobStore, S3Config, S3Store, UPLOADS_PREFIX};
use tokio::io::{AsyncBufReadExt, BufReader};

use common::backends::{S3_BUCKET as BUCKET, S3_KEY_ID as KEY_ID, S3_SECRET as SECRET, s3_server};

const PART: u64 = 5 * 1024 * 1024;

/// Keys of the objects under `prefix`, as the bucket lists them.
async fn listed(s3: &S3Store, prefix: &str) -> Vec<String> {
    s3.list(prefix)
        .map_ok(|o| o.key.as_str().to_string())
        .try_collect()
        .await
        .unwrap()
}

/// Starts the binary with `config`, the S3 keys in its environment; returns it and its URL.
async fn serve(data_dir: &Path, config: &Path) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipshape"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .env("SHIPSHAPE_LOG", "warn")
        .env("SHIPSHAPE_S3_ACCESS_KEY_ID", KEY_ID)
        .env("SHIPSHAPE_S3_SECRET_ACCESS_KEY", SECRET)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("shipshape binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(common::PATIENCE, lines.next_line())
        .await
        .expect("the server starts")
        .unwrap()
        .expect("the serving line");
    let base = line.rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    (child, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_round_trips_through_an_s3_bucket_and_gc_empties_it() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = s3_server(&tmp.path().join("s3")).await;
    let config = tmp.path().join("shipshape.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[storage]
s3 = {{ endpoint = "http://{addr}", bucket = "{BUCKET}", region = "us-east-1", allow_http = true, path_style = true, part_size = {PART} }}

[gc]
workers = 0
review_delay = "0s"
lease = "0s"
sweep_min_age = "0s"

[deletion]
restore_window = "0s"
"#
        ),
    )
    .unwrap();
    let (_child, base) = serve(&tmp.path().join("data"), &config).await;
    let host = base.trim_start_matches("http://").to_string();
    let s3 = S3Store::open(&S3Config {
        endpoint: Some(format!("http://{addr}")),
        bucket: BUCKET.into(),
        region: "us-east-1".into(),
        access_key_id: Some(KEY_ID.into()),
        secret_access_key: Some(SECRET.into()),
        allow_http: true,
        path_style: true,
        part_size: PART,
        redirect_downloads: None,
    })
    .await
    .unwrap();

    // Random bytes do not compress: this layer is a multipart upload of three parts.
    let big = Layer::from_files(&[("data/big.bin", random_bytes(2 * PART as usize + 4321, 7))]);
    assert!(big.gz.len() as u64 > 2 * PART);
    let image = Image::new("amd64", &[big, Layer::seeded("small", 3)], &["/bin/true"]);
    OciLayout::create(&tmp.path().join("src")).add_image("v1", &image);
    let dest = format!("docker://{host}/s3/app:v1");
    push_layout(&tmp.path().join("src"), "v1", &dest, false).await;
    let blobs = listed(&s3, BLOBS_PREFIX).await;
    assert_eq!(blobs.len(), image.blobs().len(), "{blobs:?}");
    assert_eq!(listed(&s3, UPLOADS_PREFIX).await, Vec::<String>::new());

    let pulled = pull_layout(&dest, &tmp.path().join("dst"), "v1", false).await;
    assert_eq!(pulled.tagged("v1"), image.descriptor());
    assert!(pulled.content() == image.content(), "pulled bytes differ");

    // An upload in progress holds a tail object; so does one nobody recorded (a crash's
    // leftover). The sweep must tell them apart.
    let c = common::client();
    let started = c
        .post(format!("{base}/v2/s3/other/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), reqwest::StatusCode::ACCEPTED);
    let location = common::header(&started, "location").unwrap().to_string();
    let location = if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        location
    };
    let patched = c
        .patch(&location)
        .header("content-type", "application/octet-stream")
        .body(&b"the first bytes"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), reqwest::StatusCode::ACCEPTED);
    let live = listed(&s3, UPLOADS_PREFIX).await;
    assert_eq!(live.len(), 1, "{live:?}");
    let leave_tail = |state: shipshape_store::UploadState| {
        let s3 = s3.clone();
        async move {
            let mut h = shipshape_oci::Digester::new(shipshape_oci::Algorithm::Sha256);
            let body = futures::stream::iter([Ok(bytes::Bytes::from_static(b"left behind"))]);
            s3.append(&state, Box::pin(body), None, &mut h)
                .await
                .unwrap();
        }
    };
    leave_tail(s3.begin_upload().await.unwrap()).await;
    // And a tail left beside a session that became a blob (its commit failed to delete it,
    // or a racing append wrote it late): the catalogue knows its owner, a blob.
    let record = shipshape_store::UploadRecord {
        storage_key: blobs[0].clone(),
        received: 0,
        store_state: None,
    };
    leave_tail(shipshape_store::UploadState::resume(&record).unwrap()).await;
    assert_eq!(listed(&s3, UPLOADS_PREFIX).await.len(), 3);
    let cli = env!("CARGO_BIN_EXE_shipshape");
    let sweep = [
        "gc",
        "start",
        "--sweep",
        "--wait",
        "--registry",
        base.as_str(),
    ];
    run_tool(Path::new(cli), &sweep, None).await;
    assert_eq!(
        listed(&s3, UPLOADS_PREFIX).await,
        live,
        "the sweep took the leftover tails and left the live upload's"
    );
    assert_eq!(listed(&s3, BLOBS_PREFIX).await.len(), blobs.len());

    let delete = ["delete", "--tls-verify=false", dest.as_str()];
    run_tool(&skopeo(), &delete, None).await;
    let gc = [
        "gc",
        "start",
        "--grace",
        "0s",
        "--include-untagged-manifests",
        "--sweep",
        "--wait",
        "--registry",
        base.as_str(),
    ];
    run_tool(Path::new(cli), &gc, None).await;
    assert_eq!(
        listed(&s3, BLOBS_PREFIX).await,
        Vec::<String>::new(),
        "the deleted image's blobs are gone from the bucket"
    );
    assert_eq!(
        listed(&s3, UPLOADS_PREFIX).await,
        live,
        "the live upload's tail is still there"
    );
    let cancelled = c.delete(&location).send().await.unwrap();
    assert_eq!(cancelled.status(), reqwest::StatusCode::NO_CONTENT);
    assert_eq!(listed(&s3, UPLOADS_PREFIX).await, Vec::<String>::new());

    // `shipshape check` finds the bucket through the configuration file, and refuses
    // without it rather than take every blob for lost in a local store that is not there.
    let data = tmp.path().join("data");
    let check = |with_config: bool| {
        let mut command = tokio::process::Command::new(cli);
        command
            .args(["check", "--repair", "--orphan-min-age", "0s", "--data-dir"])
            .arg(&data)
            .env("SHIPSHAPE_S3_ACCESS_KEY_ID", KEY_ID)
            .env("SHIPSHAPE_S3_SECRET_ACCESS_KEY", SECRET);
        if with_config {
            command.arg("--config").arg(&config);
        }
        command.output()
    };
    let refused = check(false).await.unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("--config"), "{said}");
    // One blob of another image, and an orphan the check's repair deletes.
    let other = format!("docker://{host}/s3/other:v1");
    push_layout(&tmp.path().join("src"), "v1", &other, false).await;
    let stored = listed(&s3, BLOBS_PREFIX).await;
    leave_tail(s3.begin_upload().await.unwrap()).await;
    let checked = check(true).await.unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(said.contains("1 repaired"), "the orphan tail: {said}");
    assert_eq!(listed(&s3, UPLOADS_PREFIX).await, Vec::<String>::new());
    assert_eq!(listed(&s3, BLOBS_PREFIX).await, stored);
    let checked = check(true).await.unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(said.contains("0 problems"), "{said}");
}

/// Parts of multipart uploads the S3 server holds (s3s-fs keeps them beside the bucket).
fn parts_held(root: &Path) -> usize {
    std::fs::read_dir(root)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".upload_id-")
        })
        .count()
}

/// A session abandoned with a part sent expires after the upload TTL: the collector forgets
/// it, then aborts its multipart upload by the id its row recorded (no listing would ever
/// show it) and deletes its tail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_upload_has_its_multipart_upload_aborted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("s3");
    let addr = s3_server(&root).await;
    let config = S3Config {
        endpoint: Some(format!("http://{addr}")),
        bucket: BUCKET.into(),
        region: "us-east-1".into(),
        access_key_id: Some(KEY_ID.into()),
        secret_access_key: Some(SECRET.into()),
        allow_http: true,
        path_style: true,
        part_size: PART,
        redirect_downloads: None,
    };
    let clock = common::ShiftedClock::default();
    let s = common::TestServer::start_with_shifted_clock(&clock, |c| {
        c.blob_store = shipshape_server::BlobStoreConfig::S3(config.clone());
        c.gc.workers = 0;
        c.gc.upload_ttl = std::time::Duration::from_secs(3600);
    })
    .await;
    let c = common::client();
    let started = c
        .post(s.url("/v2/s3/abandoned/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = common::header(&started, "location").unwrap().to_string();
    let location = if location.starts_with('/') {
        s.url(&location)
    } else {
        location
    };
    let patched = c
        .patch(&location)
        .header("content-type", "application/octet-stream")
        .body(random_bytes(PART as usize + 10, 5))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), reqwest::StatusCode::ACCEPTED);
    assert_eq!(parts_held(&root), 1, "one part sent");
    let s3 = S3Store::open(&config).await.unwrap();
    assert_eq!(listed(&s3, UPLOADS_PREFIX).await.len(), 1, "and a tail");

    clock.advance(2 * 3600 * 1000);
    let (status, run) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/gc/runs",
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{run}");
    let run = common::wait_gc_run(&s.base, run["id"].as_i64().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(parts_held(&root), 0, "the multipart upload is aborted");
    assert_eq!(listed(&s3, UPLOADS_PREFIX).await, Vec::<String>::new());
    assert_eq!(listed(&s3, BLOBS_PREFIX).await, Vec::<String>::new());
}

/// What `shipshape serve` says about a configuration it refuses, with the S3 keys set.
async fn refused(config: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("shipshape.toml");
    std::fs::write(&file, config).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipshape"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .arg("--config")
        .arg(&file)
        .env("SHIPSHAPE_S3_ACCESS_KEY_ID", KEY_ID)
        .env("SHIPSHAPE_S3_SECRET_ACCESS_KEY", SECRET)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "started with {config}");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// A secret in the file is refused (keys come from the environment only), and so is a part
/// size S3 would refuse, before anything is sent.
#[tokio::test]
async fn the_s3_settings_refuse_a_secret_in_the_file_and_a_bad_part_size() {
    let e = refused("[storage]\ns3 = { bucket = \"b\", secret_access_key = \"oops\" }\n").await;
    assert!(e.contains("secret_access_key"), "{e}");
    let e = refused("[storage]\ns3 = { bucket = \"b\", part_size = 1024 }\n").await;
    assert!(e.contains("part_size 1024"), "{e}");
}

/// With `redirect_downloads`, a blob GET is answered 307 with a URL the bucket signed (HEAD
/// still answers itself): skopeo follows it and pulls the image byte for byte, the URL serves
/// the blob to anyone holding it, and a Range sent there gets its part. A validity longer
/// than SigV4 allows is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_downloads_can_be_redirected_to_the_bucket() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = s3_server(&tmp.path().join("s3")).await;
    let write_config = |redirect: &str| {
        let config = tmp.path().join(format!("shipshape-{redirect}.toml"));
        std::fs::write(
            &config,
            format!(
                "[storage]\ns3 = {{ endpoint = \"http://{addr}\", bucket = \"{BUCKET}\", \
                 allow_http = true, path_style = true, redirect_downloads = \"{redirect}\" }}\n"
            ),
        )
        .unwrap();
        config
    };
    let (_child, base) = serve(&tmp.path().join("data"), &write_config("5m")).await;
    let host = base.trim_start_matches("http://").to_string();

    let image = Image::new("amd64", &[Layer::seeded("one", 11)], &["/bin/true"]);
    OciLayout::create(&tmp.path().join("src")).add_image("v1", &image);
    let dest = format!("docker://{host}/s3/redirected:v1");
    push_layout(&tmp.path().join("src"), "v1", &dest, false).await;
    let pulled = pull_layout(&dest, &tmp.path().join("dst"), "v1", false).await;
    assert_eq!(pulled.tagged("v1"), image.descriptor());
    assert!(pulled.content() == image.content(), "pulled bytes differ");

    let manifest: serde_json::Value = common::client()
        .get(format!("{base}/v2/s3/redirected/manifests/v1"))
        .header("accept", common::OCI_MANIFEST)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob_url = format!("{base}/v2/s3/redirected/blobs/{digest}");
    let direct = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = direct.get(&blob_url).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        common::header(&resp, "docker-content-digest"),
        Some(digest.as_str())
    );
    assert_eq!(common::header(&resp, "cache-control"), Some("no-store"));
    let location = common::header(&resp, "location").unwrap().to_string();
    assert!(
        location.starts_with(&format!("http://{addr}/{BUCKET}/blobs/"))
            && location.contains("X-Amz-Signature="),
        "{location}"
    );
    let whole = direct.get(&location).send().await.unwrap();
    assert_eq!(whole.status(), reqwest::StatusCode::OK);
    let bytes = whole.bytes().await.unwrap();
    assert_eq!(common::sha256(&bytes), digest, "the bucket's bytes");
    let part = direct
        .get(&location)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), reqwest::StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap(), bytes.slice(0..10));
    // A HEAD is the registry's own answer (it renews the blob's lease).
    let head = direct.head(&blob_url).send().await.unwrap();
    assert_eq!(head.status(), reqwest::StatusCode::OK);
    assert_eq!(
        common::header(&head, "content-length"),
        Some(bytes.len().to_string().as_str())
    );

    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipshape"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data-2"))
        .arg("--config")
        .arg(write_config("8d"))
        .env("SHIPSHAPE_S3_ACCESS_KEY_ID", KEY_ID)
        .env("SHIPSHAPE_S3_SECRET_ACCESS_KEY", SECRET)
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("redirect_downloads"),
        "{said}"
    );
}
