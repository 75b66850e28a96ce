//! The real `shipshape` binary as an operator runs it: a configuration file for this run's
//! backends, `serve` as a child process that can be killed, and the operator commands.

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use reqwest::StatusCode;
use shipshape_server::{BlobStoreConfig, CatalogueConfig, ServerConfig};
use shipshape_store::BlobStore;

use super::backends::{S3_KEY_ID, S3_SECRET};
use super::{client, wait_until};

pub const BIN: &str = env!("CARGO_BIN_EXE_shipshape");

/// The configuration file an operator would write for these backends.
pub fn config_file(config: &ServerConfig, path: &Path) -> PathBuf {
    let mut toml = format!("data_dir = {:?}\n", config.data_dir.display().to_string());
    if let CatalogueConfig::Postgres { options, .. } = &config.catalogue {
        toml += &format!("\n[catalogue]\nurl = {:?}\n", options.url);
    }
    if let BlobStoreConfig::S3(s3) = &config.blob_store {
        toml += &format!(
            "\n[storage]\ns3 = {{ endpoint = {:?}, bucket = {:?}, region = {:?}, allow_http = {}, \
             path_style = {}, part_size = {} }}\n",
            s3.endpoint.as_deref().unwrap_or_default(),
            s3.bucket,
            s3.region,
            s3.allow_http,
            s3.path_style,
            s3.part_size
        );
    }
    std::fs::write(path, toml).unwrap();
    path.to_path_buf()
}

/// The binary with the S3 keys in its environment, as an operator gives them, and none of
/// the test runner's own settings.
fn command() -> Command {
    let mut c = Command::new(BIN);
    c.env("SHIPSHAPE_S3_ACCESS_KEY_ID", S3_KEY_ID)
        .env("SHIPSHAPE_S3_SECRET_ACCESS_KEY", S3_SECRET)
        .env_remove("SHIPSHAPE_DATA_DIR")
        .env_remove("SHIPSHAPE_CONFIG")
        .env_remove("SHIPSHAPE_CATALOGUE_URL")
        .env_remove("SHIPSHAPE_FAULT_POINT");
    c
}

/// Runs an operator command of the binary to its end.
pub async fn shipshape(args: &[&str]) -> std::process::Output {
    tokio::process::Command::from(command())
        .args(args)
        .output()
        .await
        .expect("the shipshape binary runs")
}

/// The blob store a configuration names, opened by the test itself.
pub async fn open_configured_store(config: &ServerConfig) -> Arc<dyn BlobStore> {
    match &config.blob_store {
        BlobStoreConfig::Local => super::open_store(&config.data_dir).await,
        BlobStoreConfig::S3(s3) => Arc::new(
            shipshape_store::S3Store::open(s3)
                .await
                .expect("open the bucket"),
        ),
    }
}

/// `shipshape serve` as a child process.
pub struct Serve {
    child: Child,
    pub base: String,
}

impl Serve {
    /// Starts the binary on a free port with `--config config` and `args`, and waits until
    /// `/healthz` answers.
    pub async fn start(config: &Path, args: &[&str]) -> Serve {
        let mut s = Serve::spawn(config, args, None, None);
        s.ready().await;
        s
    }

    /// [`Serve::start`] on the address `listen` (`127.0.0.1:PORT`): a node started again
    /// where its cluster knows it.
    pub async fn start_at(config: &Path, listen: &str, args: &[&str]) -> Serve {
        let mut s = Serve::spawn(config, args, None, Some(listen));
        s.ready().await;
        s
    }

    /// Starts the binary with the fault point `point` armed (`shipshape_fault`); does not wait
    /// for it to be ready, since the point may come before.
    pub fn armed(config: &Path, args: &[&str], point: &str) -> Serve {
        Serve::spawn(config, args, Some(point), None)
    }

    fn spawn(config: &Path, args: &[&str], point: Option<&str>, listen: Option<&str>) -> Serve {
        let listen = listen.map_or_else(free_address, str::to_string);
        let mut c = command();
        c.args(["serve", "--listen", &listen, "--config"])
            .arg(config)
            .args(["--log", "warn"])
            .args(args)
            .stdout(Stdio::null());
        if let Some(point) = point {
            c.env("SHIPSHAPE_FAULT_POINT", point);
        }
        let child = c.spawn().expect("shipshape serve starts");
        Serve {
            child,
            base: format!("http://{listen}"),
        }
    }

    /// Waits until `/healthz` answers.
    pub async fn ready(&mut self) {
        let health = &format!("{}/healthz", self.base);
        let child = &mut self.child;
        wait_until(&format!("shipshape serve to answer {health}"), || {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("shipshape serve exited before it was ready: {status}");
            }
            async move {
                let resp = client().get(health).send().await;
                resp.is_ok_and(|r| r.status() == StatusCode::OK)
                    .then_some(())
            }
        })
        .await;
    }

    /// Waits for the process to end and asserts that a fault point killed it (`SIGKILL`; the
    /// test sends none itself).
    pub fn killed_at(mut self, point: &str) {
        let status = self.child.wait().expect("reaped");
        assert_eq!(
            status.signal(),
            Some(SIGKILL),
            "shipshape serve was to be killed at the fault point {point}, and ended {status}: \
             the scenario never reached it"
        );
    }

    /// SIGKILL, and reap the process.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

/// A loopback address nothing listens on now.
pub fn free_address() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// SIGKILL's number on every Unix the registry runs on.
const SIGKILL: i32 = 9;

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
