//! Three `shipshape` nodes over one PostgreSQL catalogue and one S3 bucket, each with a data
//! directory of its own: every request of a push goes to a different node, and what one node
//! stored every other serves. Runs whatever `SHIPSHAPE_TEST_BACKENDS` says (it needs the
//! PostgreSQL server of `SHIPSHAPE_TEST_POSTGRES`, which `scripts/test` starts).

mod common;

use common::backends::{Backends, Kept, configure_with};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shipshape_server::{Server, ServerConfig};
use std::time::Duration;

/// Three nodes sharing one catalogue and one bucket.
struct Cluster {
    nodes: Vec<Server>,
    shared: ServerConfig,
    _kept: Kept,
    _dir: tempfile::TempDir,
}

/// The settings every node shares: one scratch PostgreSQL catalogue, and with `s3` one bucket
/// (else each node's own disk).
async fn shared_config(dir: &std::path::Path, s3: bool) -> (ServerConfig, Kept) {
    let mut shared = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let backends = Backends { postgres: true, s3 };
    let kept = configure_with(&mut shared, dir, backends).await;
    (shared, kept)
}

impl Cluster {
    async fn start() -> Cluster {
        Cluster::start_with(|_| {}).await
    }

    /// Three nodes with `settings` applied to the configuration they share.
    async fn start_with(settings: impl FnOnce(&mut ServerConfig)) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let (mut shared, kept) = shared_config(dir.path(), true).await;
        settings(&mut shared);
        let mut nodes = Vec::new();
        for n in 0..3 {
            let config = ServerConfig {
                data_dir: dir.path().join(format!("node-{n}")),
                ..shared.clone()
            };
            // Each node migrates if it must; they start one after another here, and at once
            // in production, where the migrator's advisory lock orders them.
            nodes.push(Server::start(config).await.expect("a node starts"));
        }
        Cluster {
            nodes,
            shared,
            _kept: kept,
            _dir: dir,
        }
    }

    fn base(&self, n: usize) -> String {
        self.nodes[n].base_url()
    }

    /// A handle of the test's own on the shared catalogue.
    async fn catalogue(&self) -> shipshape_meta::Catalogue {
        let shipshape_server::CatalogueConfig::Postgres { options, .. } = &self.shared.catalogue
        else {
            unreachable!("the cluster is on PostgreSQL")
        };
        shipshape_meta::Catalogue::open_postgres(options, false)
            .await
            .expect("a handle on the shared catalogue")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_spread_over_three_nodes_is_served_by_each() {
    let cluster = Cluster::start().await;
    let c = client();
    let repo = "spread/app";

    // A layer in three requests to three nodes: POST on the first, a PATCH on the second, the
    // closing PUT on the third. The chunks straddle the bucket's 5 MiB part: the second
    // node finds the first's leftover, and the third the second's.
    let layer = random_bytes(7 * 1024 * 1024 + 13, 42);
    let digest = sha256(&layer);
    let (a, b) = layer.split_at(3 * 1024 * 1024);
    let (b, rest) = b.split_at(3 * 1024 * 1024);
    let resp = c
        .post(format!("{}/v2/{repo}/blobs/uploads/", cluster.base(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        header(&resp, "oci-chunk-min-length"),
        Some("5242880"),
        "the bucket's part size is advertised"
    );
    let mut location = header(&resp, "location").unwrap().to_string();
    let mut offset = 0;
    for (node, chunk) in [(0, a), (1, b)] {
        let resp = c
            .patch(format!("{}{location}", cluster.base(node)))
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{offset}-{}", offset + chunk.len() - 1),
            )
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "PATCH on node {node}");
        offset += chunk.len();
        assert_eq!(
            header(&resp, "range"),
            Some(format!("0-{}", offset - 1).as_str()),
            "node {node} knows the whole session so far"
        );
        location = header(&resp, "location").unwrap().to_string();
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    let resp = c
        .put(format!("{}{location}{sep}digest={digest}", cluster.base(2)))
        .header("content-type", "application/octet-stream")
        .body(rest.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "the closing PUT on node 2"
    );

    // The config on the second node, the manifest on the third.
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = push_blob(&c, &cluster.base(1), repo, config).await;
    let manifest = image_manifest((&config_digest, config.len()), &[(&digest, layer.len())]);
    let resp = put_manifest(&c, &cluster.base(2), repo, "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    // Every node serves the whole image, byte for byte.
    for n in 0..3 {
        assert_eq!(
            pull_verified(&cluster.base(n), repo, "v1").await,
            sha256(&manifest),
            "node {n}"
        );
    }

    // Each node's storage figures count the image as in use (and keep them, shared between
    // requests, until something changes them).
    for n in 0..3 {
        let u = usage(&cluster.base(n)).await;
        assert_eq!(u["total"]["held_for_restore_bytes"], 0, "node {n}: {u}");
        assert!(
            u["total"]["in_use_bytes"].as_u64().unwrap() > layer.len() as u64,
            "node {n}: {u}"
        );
    }

    // A tag deleted on one node is gone there at once, on the others as soon as the
    // catalogue's change notice reaches them (they may hold it in their manifest cache), and
    // restorable from any.
    let resp = c
        .delete(format!("{}/v2/{repo}/manifests/v1", cluster.base(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        manifest_status(&cluster.base(0), repo, "v1").await,
        StatusCode::NOT_FOUND
    );
    for n in 1..3 {
        let base = cluster.base(n);
        wait_until(&format!("v1 gone on node {n}"), || async {
            (manifest_status(&base, repo, "v1").await == StatusCode::NOT_FOUND).then_some(())
        })
        .await;
    }
    let restorable: Value = c
        .get(format!("{}/api/v1/restorable", cluster.base(1)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(restorable.to_string().contains("\"v1\""), "{restorable}");

    // The other nodes' figures moved with the deletion at once: they took them again because
    // the activity log moved, not because they aged out.
    for n in 1..3 {
        let u = usage(&cluster.base(n)).await;
        assert_eq!(u["total"]["in_use_bytes"], 0, "node {n}: {u}");
        assert!(
            u["total"]["held_for_restore_bytes"].as_u64().unwrap() > layer.len() as u64,
            "node {n}: {u}"
        );
    }
}

async fn usage(base: &str) -> Value {
    client()
        .get(format!("{base}/api/v1/usage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Two nodes given the same chunk of one upload session at once (a client retrying on another
/// node while its first PATCH is still in flight, with other bytes): whichever order they land
/// in, exactly one is taken and the other is told to re-sync (416 with the session's range);
/// the session goes on from the winner's bytes, and the blob finished on a third node is the
/// winner's, byte for byte. The chunk is larger than the bucket's part, so both write a part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_on_one_upload_session_keep_one_chunk() {
    let cluster = Cluster::start().await;
    let c = client();
    let repo = "race/app";
    let resp = c
        .post(format!("{}/v2/{repo}/blobs/uploads/", cluster.base(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = header(&resp, "location").unwrap().to_string();

    let len = 6 * 1024 * 1024 + 7;
    let chunks = [random_bytes(len, 1), random_bytes(len, 2)];
    let patch = |node: usize, chunk: Vec<u8>| {
        c.patch(format!("{}{location}", cluster.base(node)))
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("0-{}", len - 1))
            .body(chunk)
            .send()
    };
    let (one, two) = tokio::join!(patch(1, chunks[0].clone()), patch(2, chunks[1].clone()));
    let (one, two) = (one.unwrap(), two.unwrap());
    let statuses = [one.status(), two.status()];
    let winner = match statuses {
        [StatusCode::ACCEPTED, StatusCode::RANGE_NOT_SATISFIABLE] => 0,
        [StatusCode::RANGE_NOT_SATISFIABLE, StatusCode::ACCEPTED] => 1,
        other => panic!("one chunk taken and one refused, not {other:?}"),
    };
    let (taken, refused) = if winner == 0 { (one, two) } else { (two, one) };
    assert_eq!(
        header(&taken, "range"),
        Some(format!("0-{}", len - 1).as_str())
    );
    let said = refused.text().await.unwrap();
    assert!(said.contains("BLOB_UPLOAD_INVALID"), "{said}");

    let status = c
        .get(format!("{}{location}", cluster.base(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&status, "range"),
        Some(format!("0-{}", len - 1).as_str())
    );

    let rest = random_bytes(1000, 3);
    let mut whole = chunks[winner].clone();
    whole.extend_from_slice(&rest);
    let digest = sha256(&whole);
    let sep = if location.contains('?') { '&' } else { '?' };
    let resp = c
        .put(format!("{}{location}{sep}digest={digest}", cluster.base(0)))
        .header("content-type", "application/octet-stream")
        .header("content-range", format!("{len}-{}", len + rest.len() - 1))
        .body(rest)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{:?}",
        resp.text().await
    );
    for n in 0..3 {
        let got = c
            .get(format!("{}/v2/{repo}/blobs/{digest}", cluster.base(n)))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), StatusCode::OK, "node {n}");
        assert!(
            got.bytes().await.unwrap() == whole,
            "node {n} serves the winner's bytes"
        );
    }
}

/// One GC run in the cluster: a run held in the catalogue (as another node holds the run it
/// executes) is the run every node reports and refuses a second one for; once it has ended,
/// any node may start the next, and every node follows that one to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gc_run_in_the_whole_cluster() {
    let cluster = Cluster::start().await;
    let c = client();
    push_image(&c, &cluster.base(0), "gc/app", "v1", 1).await;
    let catalogue = cluster.catalogue().await;
    let mut tx = catalogue.begin().await.unwrap();
    let other = shipshape_meta::Principal::anonymous(Some("10.0.0.9".into()));
    let spec = shipshape_meta::runs::RunSpec::default();
    let now = shipshape_meta::Clock::now(&shipshape_meta::SystemClock);
    let held = shipshape_meta::runs::start_run(&mut tx, &spec, &other, now)
        .await
        .unwrap()
        .unwrap();
    shipshape_meta::runs::hold(&mut tx, held, "a-fourth-node", now + 3_600_000)
        .await
        .unwrap();
    shipshape_meta::commit(tx).await.unwrap();

    for n in 0..3 {
        let resp = c
            .post(format!("{}/api/v1/gc/runs", cluster.base(n)))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CONFLICT, "node {n}");
        let v: Value = resp.json().await.unwrap();
        assert!(v.to_string().contains(&held.to_string()), "node {n}: {v}");
        let active: Value = c
            .get(format!("{}/api/v1/gc/runs/active", cluster.base(n)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(active["id"], held, "node {n}");
    }

    let mut tx = catalogue.begin().await.unwrap();
    shipshape_meta::runs::finish_run(
        &mut tx,
        held,
        shipshape_meta::runs::RunState::Succeeded,
        &Default::default(),
        &[],
        now,
    )
    .await
    .unwrap();
    shipshape_meta::commit(tx).await.unwrap();
    catalogue.close().await;

    let resp = c
        .post(format!("{}/api/v1/gc/runs", cluster.base(1)))
        .json(&json!({"dry_run": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let id = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    for n in [2, 0] {
        let done = wait_gc_run(&cluster.base(n), id).await;
        assert_eq!(done["state"], "succeeded", "node {n}: {done}");
    }
}

/// With the blobs on a node's own disk, the catalogue is that node's: a second node on the
/// same catalogue (which would answer 404 for every blob the first stored) is refused at start,
/// naming both, and the first node starts again as before.
#[tokio::test]
async fn a_second_node_is_refused_when_the_blobs_are_on_the_first_nodes_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (shared, _kept) = shared_config(dir.path(), false).await;
    let first = ServerConfig {
        data_dir: dir.path().join("first"),
        ..shared.clone()
    };
    let server = Server::start(first.clone())
        .await
        .expect("the first node starts");
    server.shutdown().await.unwrap();

    let second = ServerConfig {
        data_dir: dir.path().join("second"),
        ..shared.clone()
    };
    let refused = Server::start(second)
        .await
        .err()
        .expect("the second node is refused");
    let said = refused.to_string();
    let owner = std::fs::read_to_string(dir.path().join("first/node-id")).unwrap();
    assert!(
        said.contains(owner.trim()) && said.contains("[storage] s3"),
        "{said}"
    );

    let again = Server::start(first)
        .await
        .expect("the first node starts again");
    again.shutdown().await.unwrap();
}

/// The web UI session of a `Set-Cookie` answer.
fn session_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("shipshape_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string()
}

/// The CSRF token of the first form of a page.
fn csrf_of(page: &str) -> String {
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with its token")
        + 19;
    page[at..at + 64].to_string()
}

/// A web UI login on one node is a session on every node (a browser's requests may reach any
/// node behind a load balancer), and a logout on another node ends it on all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_ui_login_holds_on_every_node_until_a_logout_on_any() {
    let cluster = Cluster::start_with(|c| {
        c.first_admin = Some(("admin".into(), "admin-password-1".into()));
    })
    .await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = c
        .get(format!("{}/ui/login", cluster.base(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let visitor = session_cookie(&form);
    let csrf = csrf_of(&form.text().await.unwrap());
    let login = c
        .post(format!("{}/ui/login", cluster.base(0)))
        .header("cookie", format!("shipshape_session={visitor}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("next", "/ui"),
            ("username", "admin"),
            ("password", "admin-password-1"),
        ])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_redirection(), "{}", login.status());
    let session = session_cookie(&login);
    assert_ne!(session, visitor, "a login starts a session under a new id");
    let cookie = format!("shipshape_session={session}");
    let mut page = String::new();
    for node in 0..3 {
        let resp = c
            .get(format!("{}/ui", cluster.base(node)))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "the overview on node {node}");
        page = resp.text().await.unwrap();
        assert!(
            page.contains("btn-logout"),
            "node {node} does not know the login made on node 0"
        );
    }
    let logout = c
        .post(format!("{}/ui/logout", cluster.base(1)))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_redirection(), "{}", logout.status());
    for node in 0..3 {
        let resp = c
            .get(format!("{}/ui", cluster.base(node)))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_redirection()
                && header(&resp, "location").is_some_and(|l| l.starts_with("/ui/login")),
            "node {node} still honours the session logged out on node 1: {}",
            resp.status()
        );
    }
}

/// A manifest GET of `reference` on node `base`.
async fn get_manifest(base: &str, repo: &str, reference: &str) -> reqwest::Response {
    client()
        .get(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap()
}

/// The digest a manifest GET of `reference` answers with; `None` for a 404.
async fn served(base: &str, repo: &str, reference: &str) -> Option<String> {
    let resp = get_manifest(base, repo, reference).await;
    match resp.status() {
        StatusCode::OK => Some(header(&resp, "docker-content-digest").unwrap().to_string()),
        StatusCode::NOT_FOUND => None,
        other => panic!("GET {reference} on {base}: {other}"),
    }
}

/// One unlabelled sample of `/metrics`.
async fn metric(base: &str, name: &str) -> u64 {
    let text = get_text(&format!("{base}/metrics")).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} in /metrics"))
        .parse()
        .unwrap()
}

/// Waits until node `base` answers a GET of `reference` with `digest` (`None`: a 404).
async fn until_served(base: &str, repo: &str, reference: &str, digest: Option<&str>) {
    let what = format!("{base} to answer {reference} with {digest:?}");
    wait_until(&what, || async {
        (served(base, repo, reference).await.as_deref() == digest).then_some(())
    })
    .await;
}

/// Waits until node `base` answers a GET of `reference` from its cache, with `digest`.
async fn answered_from_cache(base: &str, repo: &str, reference: &str, digest: &str) {
    // A commit of the node's own (a collector's worker, a pull count) may empty the cache
    // between two GETs, so this asks until one is a hit.
    wait_until(
        &format!("a GET of {reference} answered from {base}'s cache"),
        || async {
            let hits = metric(base, "shipshape_manifest_cache_hits_total").await;
            assert_eq!(served(base, repo, reference).await.as_deref(), Some(digest));
            (metric(base, "shipshape_manifest_cache_hits_total").await > hits).then_some(())
        },
    )
    .await;
}

/// Manifest reads are answered from each node's cache only while the catalogue vouches for
/// them: the node that made a change never answers from before it, a change made on one node
/// reaches the others through PostgreSQL's change notices (the cache's time limit is set past
/// the test's length here, so nothing else could bring it), and a node whose listening
/// connection was cut listens again and is told of changes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_moved_on_one_node_is_seen_moved_on_every_other() {
    let cluster = Cluster::start_with(|shared| {
        let shipshape_server::CatalogueConfig::Postgres { options, .. } = &mut shared.catalogue
        else {
            unreachable!("the cluster is on PostgreSQL")
        };
        options.manifest_cache_ttl = Duration::from_secs(24 * 3600);
        // Nor may a node's own background work, whose commits empty its cache too.
        shared.gc.poll_interval = Duration::from_secs(24 * 3600);
        shared.policy_poll_interval = Duration::from_secs(24 * 3600);
    })
    .await;
    let c = client();
    let repo = "cached/app";
    for n in 0..3 {
        let base = cluster.base(n);
        wait_until(&format!("node {n} listening"), || async {
            (metric(&base, "shipshape_catalogue_listening").await == 1).then_some(())
        })
        .await;
    }
    let first = push_image(&c, &cluster.base(0), repo, "v1", 1).await;
    for n in 0..3 {
        answered_from_cache(&cluster.base(n), repo, "v1", &first).await;
    }

    // Moved on node 0: node 0 answers the new manifest at once, the others once told.
    let second = push_image(&c, &cluster.base(0), repo, "v1", 2).await;
    assert_ne!(first, second);
    assert_eq!(
        served(&cluster.base(0), repo, "v1").await,
        Some(second.clone())
    );
    for n in 1..3 {
        let base = cluster.base(n);
        until_served(&base, repo, "v1", Some(&second)).await;
        answered_from_cache(&base, repo, "v1", &second).await;
    }

    // Deleted on node 1, with its manifest: gone there at once, on the others once told; by
    // digest too.
    let resp = c
        .delete(format!("{}/v2/{repo}/manifests/{second}", cluster.base(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(served(&cluster.base(1), repo, "v1").await, None);
    assert_eq!(served(&cluster.base(1), repo, &second).await, None);
    for n in [0, 2] {
        until_served(&cluster.base(n), repo, "v1", None).await;
        until_served(&cluster.base(n), repo, &second, None).await;
    }

    // Every node's listening connection cut, as a PostgreSQL restart or a network fault
    // would: each listens again, and is told of changes again.
    let catalogue = cluster.catalogue().await;
    let listeners = || async {
        let mut conn = catalogue.reader().await.unwrap();
        shipshape_meta::changes::listeners(&mut conn).await.unwrap()
    };
    let old = listeners().await;
    assert_eq!(old.len(), 3, "one listening connection per node");
    for pid in &old {
        let mut conn = catalogue.reader().await.unwrap();
        let cut = shipshape_meta::changes::end_listener(&mut conn, *pid).await;
        assert!(cut.unwrap(), "listener {pid} cut");
    }
    wait_until("every node listening again", || async {
        let now = listeners().await;
        let mut all = now.len() == 3 && now.iter().all(|p| !old.contains(p));
        for n in 0..3 {
            all &= metric(&cluster.base(n), "shipshape_catalogue_listening").await == 1;
        }
        all.then_some(())
    })
    .await;
    let third = push_image(&c, &cluster.base(2), repo, "v1", 3).await;
    for n in 0..3 {
        let base = cluster.base(n);
        until_served(&base, repo, "v1", Some(&third)).await;
        answered_from_cache(&base, repo, "v1", &third).await;
    }
    let fourth = push_image(&c, &cluster.base(0), repo, "v1", 4).await;
    for n in 0..3 {
        until_served(&cluster.base(n), repo, "v1", Some(&fourth)).await;
    }
    catalogue.close().await;
}

/// A TCP proxy to `target` that can be cut: while cut, every connection through it is closed
/// and new ones are closed as soon as accepted, as when the database's host goes away.
struct Cuttable {
    addr: std::net::SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Cuttable {
    async fn to(target: std::net::SocketAddr) -> Cuttable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Cuttable {
            addr: listener.local_addr().unwrap(),
            open: Default::default(),
            links: Default::default(),
        };
        proxy.restore();
        let (open, links) = (proxy.open.clone(), proxy.links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !open.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links.lock().unwrap().push(link.abort_handle());
            }
        });
        proxy
    }

    fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// While the catalogue cannot be reached, `/healthz` still says the process lives (a liveness
/// probe that failed would have every node restarted for PostgreSQL's outage), `/readyz`
/// says the catalogue is unavailable and a registry request gets 503 `UNAVAILABLE` with
/// `Retry-After`; once it is back, the node is ready and listens for change notices again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_requests_answer_while_the_catalogue_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, _kept) = shared_config(dir.path(), false).await;
    let shipshape_server::CatalogueConfig::Postgres { options, .. } = &mut config.catalogue else {
        unreachable!("on PostgreSQL")
    };
    // postgres://user@host:port/database: the host and port go through the proxy.
    let (head, rest) = options.url.split_once('@').unwrap();
    let (host_port, tail) = rest.split_once('/').unwrap();
    let target: std::net::SocketAddr = host_port.parse().unwrap();
    let proxy = Cuttable::to(target).await;
    options.url = format!("{head}@{}/{tail}", proxy.addr);
    config.data_dir = dir.path().join("node");
    let clock = ShiftedClock::default();
    let node = Server::start_with_clock(config, std::sync::Arc::new(clock.clone()))
        .await
        .expect("a node starts");
    let base = node.base_url();
    let digest = push_image(&client(), &base, "probes/app", "v1", 7).await;
    wait_until("the node listening", || async {
        (metric(&base, "shipshape_catalogue_listening").await == 1).then_some(())
    })
    .await;

    proxy.cut();
    // Past the second for which the node answers who a caller is without asking the
    // catalogue (`Auth::view`): a request that needs a caller would now ask it.
    clock.advance(60_000);
    let r = client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "ok\n");
    let r = client().get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"ready": false, "catalogue": "unavailable", "store": "ok"})
    );

    // A request that needs the catalogue is told to come back, not that the registry broke.
    let r = get_manifest(&base, "probes/app", "v1").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&r, "retry-after"), Some("5"));
    assert_eq!(error_codes(r).await, ["UNAVAILABLE"]);

    proxy.restore();
    wait_until("the node ready again", || async {
        let r = client().get(format!("{base}/readyz")).send().await.unwrap();
        (r.status() == StatusCode::OK).then_some(())
    })
    .await;
    wait_until("the node listening again", || async {
        (metric(&base, "shipshape_catalogue_listening").await == 1).then_some(())
    })
    .await;
    until_served(&base, "probes/app", "v1", Some(&digest)).await;
}
