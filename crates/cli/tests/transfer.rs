//! `shipshape export` and `shipshape import`: a registry moves to other backends whole (its
//! images, deleted tags still restorable, pull counts, accounts and roles, policies and
//! activity log) and the new one serves what the old one did. The real binary runs both
//! commands, as an operator would, on a stopped registry.
//!
//! Each run of the suite moves the registry across: on the default run from SQLite + disk to
//! PostgreSQL + S3 (the way to several nodes), on the PostgreSQL + S3 run back again.

mod common;

use std::path::PathBuf;

use common::accounts::{ADMIN, PASSWORD, admin_post};
use common::backends::{self, Backends};
use common::process::{config_file, shipshape};
use common::*;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use shipshape_server::{CatalogueConfig, ServerConfig};

/// The backends a registry on this run's backends moves to.
fn the_other_backends() -> Backends {
    if backends::backends().postgres {
        Backends {
            postgres: false,
            s3: false,
        }
    } else {
        Backends {
            postgres: true,
            s3: true,
        }
    }
}

fn said(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn client_as(user: &str, password: &str) -> Client {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
    );
    Client::builder().default_headers(headers).build().unwrap()
}

async fn get_json(c: &Client, url: String) -> Value {
    let resp = c.get(&url).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "GET {url}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// What a registry shows of itself, through its API, in a form two registries can be compared
/// by: the figures without their times of computation, the log without its ids' order.
async fn what_it_serves(s: &TestServer, admin: &Client, subject: &str) -> Value {
    let tags = get_json(
        admin,
        s.url("/api/v1/repositories/team/app/-/tags?limit=100"),
    )
    .await;
    let restorable = get_json(admin, s.url("/api/v1/restorable")).await;
    let referrers = get_json(
        &client(),
        s.url(&format!("/v2/team/app/referrers/{subject}")),
    )
    .await;
    let policies = get_json(admin, s.url("/api/v1/policies")).await;
    let mut users = get_json(admin, s.url("/api/v1/users")).await;
    // The administrator asking is logged in by this very request: that time is the request's.
    for u in users["users"].as_array_mut().expect("users") {
        if u["name"] == ADMIN.0 {
            u["last_login_at"] = Value::Null;
        }
    }
    let roles = get_json(admin, s.url("/api/v1/roles")).await;
    let events = get_json(admin, s.url("/api/v1/events?limit=1000")).await;
    let usage = get_json(admin, s.url("/api/v1/usage")).await;
    json!({
        "catalog": catalog_repos(&s.base).await,
        "tags": tags,
        "restorable": restorable,
        "referrers": referrers,
        "policies": policies,
        "users": users,
        "roles": roles,
        "events": events,
        "usage": usage,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_moves_to_other_backends_with_everything_it_knows() {
    let mut source = TestServer::start_with(|c| {
        c.first_admin = Some((ADMIN.0.into(), ADMIN.1.into()));
        c.pull_flush_interval = std::time::Duration::ZERO;
    })
    .await;
    let admin = client_as(ADMIN.0, ADMIN.1);
    let dev = client_as("dev", PASSWORD);
    admin_post(
        &source,
        "/api/v1/users",
        json!({"name": "dev", "password": PASSWORD}),
    )
    .await;
    admin_post(
        &source,
        "/api/v1/roles",
        json!({"subject": "user:dev", "pattern": "team/**", "role": "write"}),
    )
    .await;
    // Anonymous pulls come from a role binding, which has to travel for them to keep working.
    admin_post(
        &source,
        "/api/v1/roles",
        json!({"subject": "anonymous", "pattern": "team/**", "role": "read"}),
    )
    .await;
    let robot = admin_post(
        &source,
        "/api/v1/robots",
        json!({"name": "ci", "roles": [{"pattern": "team/app", "role": "read"}]}),
    )
    .await;
    let robot_secret = robot["secret"]
        .as_str()
        .expect("the robot's secret")
        .to_string();

    let base = source.base.clone();
    let v1 = push_image(&dev, &base, "team/app", "v1", 1).await;
    push_image(&dev, &base, "team/app", "v2", 2).await;
    push_image(&dev, &base, "team/app", "v3", 3).await;
    // An index over two images, and a signature-like referrer of v1 (untagged).
    let a = push_image(&dev, &base, "team/app", "arm", 4).await;
    let b = push_image(&dev, &base, "team/app", "amd", 5).await;
    let size_of = |d: &str| {
        let url = format!("{base}/v2/team/app/manifests/{d}");
        async move {
            client()
                .get(url)
                .header("accept", OCI_MANIFEST)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .len()
        }
    };
    let index = index_manifest(&[(&a, size_of(&a).await), (&b, size_of(&b).await)]);
    let base = source.base.clone();
    let resp = put_manifest(&dev, &base, "team/app", "multi", OCI_INDEX, &index).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let empty = push_blob(&dev, &base, "team/app", b"{}").await;
    let sig = image_manifest_with(
        (&empty, 2),
        &[],
        serde_json::from_value(json!({
            "artifactType": "application/vnd.example.signature",
            "subject": {"mediaType": OCI_MANIFEST, "digest": v1, "size": size_of(&v1).await},
        }))
        .unwrap(),
    );
    let resp = put_manifest(&dev, &base, "team/app", &sha256(&sig), OCI_MANIFEST, &sig).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // A layer larger than two S3 parts (5 MiB): a multipart upload on the way into a bucket.
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let big = random_bytes(2 * 5 * 1024 * 1024 + 7, 9);
    let cd = push_blob(&dev, &base, "team/app", config).await;
    let ld = push_blob(&dev, &base, "team/app", &big).await;
    let m = image_manifest((&cd, config.len()), &[(&ld, big.len())]);
    let resp = put_manifest(&dev, &base, "team/app", "big", OCI_MANIFEST, &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // Pulls, counted; a deleted tag, restorable; a policy.
    for _ in 0..3 {
        pull_verified(&base, "team/app", "v1").await;
    }
    let (status, v) = source
        .api(
            Method::DELETE,
            "/api/v1/repositories/team/app/-/tags/v2",
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "anonymous may not delete: {v}"
    );
    let resp = admin
        .delete(source.url("/api/v1/repositories/team/app/-/tags/v2"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    let resp = admin
        .put(source.url("/api/v1/policies/tidy"))
        .body("name = \"tidy\"\nrepositories = [\"team/**\"]\n[keep]\nlatest_pushed = 2\n[delete]\nolder_than = \"30d\"\n")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);

    let before = what_it_serves(&source, &admin, &v1).await;
    assert_eq!(
        before["tags"]["tags"].as_array().map(Vec::len),
        Some(6),
        "{before}"
    );
    source.stop().await;

    let tmp = tempfile::tempdir().unwrap();
    let source_config = config_file(source.config(), &tmp.path().join("old.toml"));
    let archive = tmp.path().join("export");
    let out = shipshape(&[
        "export",
        "--config",
        source_config.to_str().unwrap(),
        "--to",
        archive.to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", said(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("exported 1 repository, 6 tags, 8 manifests"),
        "{}",
        said(&out)
    );
    assert!(archive.join("shipshape-export.json").is_file());

    // The new registry's backends, empty: the operator's new configuration.
    let mut target_config = ServerConfig {
        data_dir: tmp.path().join("new-data"),
        ..ServerConfig::default()
    };
    let _kept = backends::configure_with(
        &mut target_config,
        &tmp.path().join("new"),
        the_other_backends(),
    )
    .await;
    let new_config = config_file(&target_config, &tmp.path().join("new.toml"));
    let import = |from: PathBuf| {
        let new_config = new_config.clone();
        async move {
            shipshape(&[
                "import",
                "--config",
                new_config.to_str().unwrap(),
                "--from",
                from.to_str().unwrap(),
            ])
            .await
        }
    };
    let out = import(archive.clone()).await;
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("imported 1 repository, 6 tags, 8 manifests"),
        "{}",
        said(&out)
    );
    // A second import into the same, now full, catalogue is refused and changes nothing.
    let again = import(archive.clone()).await;
    assert_eq!(again.status.code(), Some(1), "{}", said(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is not empty"),
        "{}",
        said(&again)
    );

    let check = shipshape(&["check", "--config", new_config.to_str().unwrap()]).await;
    assert!(check.status.success(), "{}", said(&check));
    assert!(
        String::from_utf8_lossy(&check.stdout).contains(", 0 problems"),
        "{}",
        said(&check)
    );

    let target = TestServer::start_with(|c| {
        c.catalogue = target_config.catalogue.clone();
        c.blob_store = target_config.blob_store.clone();
        c.data_dir = target_config.data_dir.clone();
        c.pull_flush_interval = std::time::Duration::ZERO;
    })
    .await;
    let after = what_it_serves(&target, &admin, &v1).await;
    // Everything the old registry said, the new one says (the activity log, pull counts, the
    // restore bin's deadlines and the storage figures included).
    assert_eq!(after, before);

    // And it does what the old one would: every tag pulls completely (anonymously: the role
    // binding travelled), the robot's secret and dev's password work, the deleted tag comes
    // back, and new pushes get ids past the imported ones.
    let (_, pulled) = pull_every_tag(&target.base).await;
    assert_eq!(pulled, 6);
    let robot_client = client_as("robot$ci", &robot_secret);
    let resp = robot_client
        .get(target.url("/api/v1/repositories"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the robot's secret travelled"
    );
    let resp = admin
        .post(target.url("/api/v1/repositories/team/app/-/tags/v2/restore"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    pull_verified(&target.base, "team/app", "v2").await;
    push_image(&dev, &target.base, "team/app", "v4", 6).await;
    pull_verified(&target.base, "team/app", "v4").await;
    let events = get_json(&admin, target.url("/api/v1/events?limit=3")).await;
    let actions: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"tag.restore"), "{events}");
}

#[tokio::test]
async fn an_unfinished_or_damaged_export_imports_nothing() {
    let mut source = TestServer::start().await;
    let c = client();
    push_image(&c, &source.base, "lib/one", "v1", 11).await;
    push_image(&c, &source.base, "lib/one", "v2", 12).await;
    source.stop().await;
    let tmp = tempfile::tempdir().unwrap();
    let source_config = config_file(source.config(), &tmp.path().join("old.toml"));
    let archive = tmp.path().join("export");

    // An export goes into a new or empty directory only.
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::write(archive.join("keep-me"), b"an operator's file").unwrap();
    let export = || async {
        shipshape(&[
            "export",
            "--config",
            source_config.to_str().unwrap(),
            "--to",
            archive.to_str().unwrap(),
        ])
        .await
    };
    let out = export().await;
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not empty"),
        "{}",
        said(&out)
    );
    assert_eq!(
        std::fs::read(archive.join("keep-me")).unwrap(),
        b"an operator's file"
    );
    std::fs::remove_file(archive.join("keep-me")).unwrap();
    let out = export().await;
    assert!(out.status.success(), "{}", said(&out));

    let mut target_config = ServerConfig {
        data_dir: tmp.path().join("new-data"),
        ..ServerConfig::default()
    };
    let _kept = backends::configure_with(
        &mut target_config,
        &tmp.path().join("new"),
        the_other_backends(),
    )
    .await;
    let new_config = config_file(&target_config, &tmp.path().join("new.toml"));
    let import = || async {
        shipshape(&[
            "import",
            "--config",
            new_config.to_str().unwrap(),
            "--from",
            archive.to_str().unwrap(),
        ])
        .await
    };
    let empty_catalogue = || async {
        let catalogue = match &target_config.catalogue {
            CatalogueConfig::Sqlite => {
                shipshape_meta::Catalogue::open_sqlite(&target_config.data_dir.join("catalogue.db"))
                    .await
            }
            CatalogueConfig::Postgres { options, .. } => {
                shipshape_meta::Catalogue::open_postgres(options, true).await
            }
        }
        .unwrap();
        let mut conn = catalogue.reader().await.unwrap();
        let occupied = shipshape_meta::transfer::occupied_tables(&mut conn)
            .await
            .unwrap();
        drop(conn);
        catalogue.close().await;
        occupied.is_empty()
    };

    // Without its manifest file (an export that stopped half-way), nothing is read.
    let manifest = archive.join("shipshape-export.json");
    let kept = std::fs::read(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    let out = import().await;
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a finished export"),
        "{}",
        said(&out)
    );
    std::fs::write(&manifest, kept).unwrap();

    // A blob whose bytes changed is refused by its digest, and the catalogue stays empty.
    let layer = random_bytes(1000 + 11, 11);
    let damaged = archive
        .join("blobs/sha256")
        .join(sha256(&layer).trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&damaged, &bytes).unwrap();
    let out = import().await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the export is damaged"), "{}", said(&out));
    assert!(
        stderr.contains("nothing was written to the catalogue"),
        "{}",
        said(&out)
    );
    assert!(empty_catalogue().await);

    // A table file cut short is found by its row count, and nothing is written either.
    bytes[0] ^= 1;
    std::fs::write(&damaged, &bytes).unwrap();
    let tags = archive.join("catalogue/tags.jsonl");
    let text = std::fs::read_to_string(&tags).unwrap();
    std::fs::write(&tags, text.lines().next().unwrap().to_string() + "\n").unwrap();
    let out = import().await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has 1 row where"),
        "{}",
        said(&out)
    );
    assert!(empty_catalogue().await);

    // Mended, it imports.
    std::fs::write(&tags, text).unwrap();
    let out = import().await;
    assert!(out.status.success(), "{}", said(&out));
    assert!(!empty_catalogue().await);
}
