//! Which backends a test server runs on. The suite runs twice in `scripts/test`: on the
//! embedded default (SQLite, blobs on local disk) and with `SHIPSHAPE_TEST_BACKENDS=postgres+s3`
//! (a scratch PostgreSQL database on the server `SHIPSHAPE_TEST_POSTGRES` names, and an
//! S3-compatible bucket served in process by s3s-fs), so every test that goes through
//! [`super::TestServer`] proves the same behaviour on both.

use std::net::SocketAddr;
use std::path::Path;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use shipshape_meta::scratch::ScratchDatabase;
use shipshape_server::{BlobStoreConfig, CatalogueConfig, ServerConfig};
use shipshape_store::S3Config;

pub const S3_BUCKET: &str = "registry";
pub const S3_KEY_ID: &str = "shipshape-test";
pub const S3_SECRET: &str = "shipshape-test-secret";

/// The backends of this run: `sqlite+local` (the default) or `postgres+s3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backends {
    pub postgres: bool,
    pub s3: bool,
}

pub fn backends() -> Backends {
    match std::env::var("SHIPSHAPE_TEST_BACKENDS").as_deref() {
        Err(_) | Ok("") | Ok("sqlite+local") => Backends {
            postgres: false,
            s3: false,
        },
        Ok("postgres+s3") => Backends {
            postgres: true,
            s3: true,
        },
        Ok("postgres+local") => Backends {
            postgres: true,
            s3: false,
        },
        Ok(other) => panic!(
            "SHIPSHAPE_TEST_BACKENDS={other:?}: expected sqlite+local, postgres+local or postgres+s3"
        ),
    }
}

/// What a test server's backends need kept alive: the scratch database (dropped at the end).
pub struct Kept {
    database: Option<ScratchDatabase>,
}

impl Drop for Kept {
    fn drop(&mut self) {
        let Some(db) = self.database.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(db.drop_database())
        })
        .join();
    }
}

/// Points `config` at this run's backends, creating them under `dir`.
pub async fn configure(config: &mut ServerConfig, dir: &Path) -> Kept {
    configure_with(config, dir, backends()).await
}

/// Points `config` at the backends `b`, creating them under `dir`.
pub async fn configure_with(config: &mut ServerConfig, dir: &Path, b: Backends) -> Kept {
    let mut kept = Kept { database: None };
    if b.postgres {
        let admin = std::env::var("SHIPSHAPE_TEST_POSTGRES").expect(
            "SHIPSHAPE_TEST_BACKENDS=postgres… needs SHIPSHAPE_TEST_POSTGRES, a PostgreSQL \
             server's URL (scripts/postgres start prints one)",
        );
        let db = shipshape_meta::scratch::create(&admin)
            .await
            .expect("a scratch PostgreSQL database");
        let mut options = shipshape_meta::PostgresOptions::new(db.url.clone());
        options.max_connections = 8;
        config.catalogue = CatalogueConfig::Postgres {
            options,
            migrate: true,
        };
        kept.database = Some(db);
    }
    if b.s3 {
        let addr = s3_server(&dir.join("s3")).await;
        config.blob_store = BlobStoreConfig::S3(s3_config(addr));
    }
    kept
}

/// The store settings of the in-process S3 server at `addr`.
pub fn s3_config(addr: SocketAddr) -> S3Config {
    S3Config {
        endpoint: Some(format!("http://{addr}")),
        bucket: S3_BUCKET.into(),
        region: "us-east-1".into(),
        access_key_id: Some(S3_KEY_ID.into()),
        secret_access_key: Some(S3_SECRET.into()),
        allow_http: true,
        path_style: true,
        part_size: 5 * 1024 * 1024,
        redirect_downloads: None,
    }
}

/// An S3 server over `root` (the bucket is a directory in it) on a loopback port, for as long
/// as the test's runtime runs.
pub async fn s3_server(root: &Path) -> SocketAddr {
    std::fs::create_dir_all(root.join(S3_BUCKET)).unwrap();
    let mut builder =
        s3s::service::S3ServiceBuilder::new(s3s_fs::FileSystem::new(root).expect("s3s-fs"));
    builder.set_auth(s3s::auth::SimpleAuth::from_single(S3_KEY_ID, S3_SECRET));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let service = service.clone();
            tokio::spawn(async move {
                let _ = ConnBuilder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    addr
}
