//! garage, a distributed S3-compatible store, run as its own process for `bench-nodes --garage`:
//! one node (`server --single-node`), its metadata and blocks under a scratch directory, one
//! access key allowed on every bucket the bench asks for. Installed from crates.io by
//! `scripts/bench --garage` (a 20-minute build, cached; never part of CI).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::Result;
use crate::servers::free_port;

/// The key every bucket allows: garage wants `GK` and 24 hex digits, and a 64-digit secret.
pub const KEY_ID: &str = "GK00000000000000000000beec";
pub const SECRET: &str = "0000000000000000000000000000000000000000000000000000000000000bee";
/// garage refuses requests signed for any other region than its `s3_region`.
pub const REGION: &str = "us-east-1";

/// A running garage node, stopped when dropped.
pub struct Garage {
    bin: PathBuf,
    config: PathBuf,
    child: Child,
    pub s3: SocketAddr,
    pub log: PathBuf,
}

impl Garage {
    /// Starts garage under `dir` with `buckets`, each writable with [`KEY_ID`].
    pub fn start(bin: &Path, dir: &Path, buckets: &[&str]) -> Result<Garage> {
        std::fs::create_dir_all(dir)?;
        let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
            .collect();
        let config = dir.join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = {meta:?}\ndata_dir = {data:?}\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc_port}\"\nrpc_secret = \"{secret}\"\n\n\
                 [s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"127.0.0.1:{s3_port}\"\n\
                 root_domain = \".s3.garage.localhost\"\n\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin_port}\"\n",
                meta = dir.join("meta"),
                data = dir.join("data"),
            ),
        )?;
        let log = dir.join("garage.log");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", KEY_ID)
            .env("GARAGE_DEFAULT_SECRET_KEY", SECRET)
            .env(
                "GARAGE_DEFAULT_BUCKET",
                buckets.first().copied().unwrap_or("default"),
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(dir.join("garage.stderr"))?)
            .spawn()?;
        let mut garage = Garage {
            bin: bin.to_path_buf(),
            config,
            child,
            s3: SocketAddr::from(([127, 0, 0, 1], s3_port)),
            log,
        };
        garage.wait_listening()?;
        for b in buckets.iter().skip(1) {
            garage.cli(&["bucket", "create", b])?;
            garage.cli(&[
                "bucket", "allow", "--read", "--write", "--owner", b, "--key", KEY_ID,
            ])?;
        }
        Ok(garage)
    }

    /// The process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The version the binary reports (for the report's conditions).
    pub fn version(bin: &Path) -> String {
        Command::new(bin)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    fn wait_listening(&mut self) -> Result<()> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "garage exited at start ({status}); its log is {}",
                    self.log.display()
                )
                .into());
            }
            // The S3 port opens before the default key exists: wait for both.
            if TcpStream::connect_timeout(&self.s3, Duration::from_millis(200)).is_ok()
                && self.cli(&["key", "info", KEY_ID]).is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "garage did not answer within 30 s; its log is {}",
            self.log.display()
        )
        .into())
    }

    fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "garage {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
