//! What every contract test uses: the backends the suite runs against, and small fixtures
//! (instants, digests, names, blobs and manifests) built through the public API.

use shipshape_meta::manifests::{self, ManifestHead, NewManifest};
use shipshape_meta::principal::{Principal, System};
use shipshape_meta::repos::RepoId;
use shipshape_meta::{Catalogue, Conn, Millis, Reader, Tx, blobs, repos};
use shipshape_oci::{Algorithm, Digest, RepoName, Tag};

/// An instant to start from; every test counts from it.
pub const T0: Millis = 1_750_000_000_000;
pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = 24 * HOUR;

/// The media type of every manifest the fixtures push.
pub const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

/// One catalogue under test.
pub struct Backend {
    /// Printed before each run, so a failure names its backend.
    pub name: &'static str,
    pub catalogue: Catalogue,
    /// Whatever must outlive the catalogue: a temporary directory, or a guard that drops a
    /// database.
    _keep: Box<dyn std::any::Any + Send>,
}

/// A fresh, empty, migrated catalogue of every backend the suite runs against: SQLite, and
/// PostgreSQL on the server `SHIPSHAPE_TEST_POSTGRES` names (`scripts/test` starts one). The
/// variable must be set, or set to `none` to run on SQLite alone: a suite that quietly left a
/// backend out would pass without having tested it.
pub async fn backends() -> Vec<Backend> {
    let mut out = vec![sqlite().await];
    match std::env::var("SHIPSHAPE_TEST_POSTGRES") {
        Ok(v) if v == "none" => {}
        Ok(admin_url) => out.push(postgres(&admin_url).await),
        Err(_) => panic!(
            "SHIPSHAPE_TEST_POSTGRES is not set: give it a PostgreSQL server's URL (a role that \
             may create databases; scripts/test starts one), or `none` to test SQLite alone"
        ),
    }
    out
}

/// PostgreSQL: a fresh database on the test server, dropped when the test ends.
async fn postgres(admin_url: &str) -> Backend {
    let db = shipshape_meta::scratch::create(admin_url)
        .await
        .expect("create a scratch PostgreSQL database");
    let options = shipshape_meta::PostgresOptions::new(db.url.clone());
    let catalogue = Catalogue::open_postgres(&options, true)
        .await
        .expect("open a PostgreSQL catalogue");
    Backend {
        name: "postgres",
        catalogue,
        _keep: Box::new(DropOnExit(db)),
    }
}

/// Drops its scratch database when the test is done with it.
struct DropOnExit(shipshape_meta::scratch::ScratchDatabase);

impl Drop for DropOnExit {
    fn drop(&mut self) {
        let db = self.0.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its
        // own drives the statement to its end.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(db.drop_database())
        })
        .join()
        .expect("the dropping thread");
        if let Err(e) = dropped {
            eprintln!("could not drop the scratch database: {e}");
        }
    }
}

/// SQLite, the embedded default: a catalogue file in a temporary directory.
async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("temporary directory");
    let catalogue = Catalogue::open_sqlite(&dir.path().join("catalogue.db"))
        .await
        .expect("open a SQLite catalogue");
    Backend {
        name: "sqlite",
        catalogue,
        _keep: Box::new(dir),
    }
}

/// Runs `test` on a fresh catalogue of each backend in turn.
pub async fn each_backend(test: impl AsyncFn(&Catalogue)) {
    for backend in backends().await {
        eprintln!("contract test on the {} backend", backend.name);
        test(&backend.catalogue).await;
        backend.catalogue.close().await;
    }
}

/// A write transaction.
pub async fn begin(cat: &Catalogue) -> Tx {
    cat.begin().await.expect("begin a write transaction")
}

/// Commits a write transaction.
pub async fn commit(tx: Tx) {
    shipshape_meta::commit(tx).await.expect("commit");
}

/// A read connection.
pub async fn reader(cat: &Catalogue) -> Reader {
    cat.reader().await.expect("a read connection")
}

/// How many rows a table holds (`Catalogue::row_counts`).
pub async fn rows(cat: &Catalogue, table: &str) -> i64 {
    let counts = cat.row_counts().await.expect("row counts");
    counts
        .iter()
        .find(|(t, _)| *t == table)
        .unwrap_or_else(|| panic!("row_counts has no table {table}"))
        .1
}

/// The sha256 digest of `seed`: a distinct, valid digest per seed.
pub fn digest(seed: &str) -> Digest {
    Digest::of_bytes(Algorithm::Sha256, seed.as_bytes())
}

pub fn repo_name(name: &str) -> RepoName {
    name.parse().expect("a valid repository name")
}

pub fn tag(name: &str) -> Tag {
    name.parse().expect("a valid tag")
}

/// A client with no credentials, from a network address.
pub fn anonymous() -> Principal {
    Principal::anonymous(Some("192.0.2.7".into()))
}

/// The registry's own collector.
pub fn collector() -> Principal {
    Principal::system(System::Collector)
}

/// The repository of that name, created at `now` if needed.
pub async fn repo(conn: &mut dyn Conn, name: &str, now: Millis) -> RepoId {
    repos::get_or_create(conn, &repo_name(name), now)
        .await
        .expect("get_or_create")
}

/// A blob of `size` bytes recorded under a key of its own and linked into `repo` at `now`.
pub async fn blob(conn: &mut dyn Conn, repo: RepoId, seed: &str, size: u64, now: Millis) -> Digest {
    let d = digest(seed);
    let blob = blobs::Blob {
        digest: d.clone(),
        size,
        storage_key: format!("blobs/{seed}"),
    };
    blobs::insert(conn, &blob, now).await.expect("insert blob");
    blobs::link(conn, repo, &d, now).await.expect("link blob");
    d
}

/// The bytes of a manifest: `seed` names it, and the size is the payload's length.
pub fn payload(seed: &str) -> Vec<u8> {
    format!("{{\"schemaVersion\":2,\"contract\":\"{seed}\"}}").into_bytes()
}

/// A manifest of `repo` referencing `blobs` and `children`, pushed at `now`; its head.
pub async fn manifest(
    conn: &mut dyn Conn,
    repo: RepoId,
    seed: &str,
    blobs: &[Digest],
    children: &[Digest],
    now: Millis,
) -> ManifestHead {
    let payload = payload(seed);
    let d = Digest::of_bytes(Algorithm::Sha256, &payload);
    let m = NewManifest {
        digest: &d,
        media_type: IMAGE,
        artifact_type: None,
        payload: &payload,
        subject: None,
        annotations: None,
        blobs,
        children,
    };
    manifests::insert(conn, repo, &m, now)
        .await
        .expect("insert manifest");
    manifests::find_any(conn, repo, &d)
        .await
        .expect("find_any")
        .expect("the manifest just inserted")
}
