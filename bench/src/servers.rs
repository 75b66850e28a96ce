//! The two registries under test, each a child process on a loopback port with its own data
//! directory, and their memory as the kernel reports it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's package of CNCF Distribution.
pub const DISTRIBUTION_BIN: &str = "/usr/bin/docker-registry";

/// Which registry a server is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Shipshape,
    Distribution,
}

/// A running registry; killed when dropped.
pub struct Server {
    pub kind: Kind,
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The data directory (Shipshape) or filesystem root (Distribution).
    pub data: PathBuf,
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Server {
    /// Starts `shipshape serve` from `bin` on `data`, with `extra` flags after the defaults. Its
    /// log goes to stderr at `warn`, or at the filter in `SHIPSHAPE_BENCH_LOG` (for profiling:
    /// `shipshape_gc=debug` prints each run's phases).
    pub fn shipshape(bin: &Path, data: &Path, extra: &[&str]) -> std::io::Result<Server> {
        Self::shipshape_with_env(bin, data, extra, &[])
    }

    /// [`Server::shipshape`] with variables added to its environment (the first
    /// administrator's `SHIPSHAPE_ADMIN_PASSWORD`, say).
    pub fn shipshape_with_env(
        bin: &Path,
        data: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> std::io::Result<Server> {
        let port = free_port();
        let log = std::env::var("SHIPSHAPE_BENCH_LOG").unwrap_or_else(|_| "warn".into());
        let child = Command::new(bin)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .args(["--log", &log])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(if log == "warn" {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .spawn()?;
        Self::ready(Kind::Shipshape, child, port, data)
    }

    /// Starts Distribution with a filesystem root at `root` and deletes enabled.
    pub fn distribution(root: &Path) -> std::io::Result<Server> {
        Self::distribution_at(root, free_port())
    }

    /// Starts Distribution on a given port: a restart that clients keep talking to (the
    /// configuration is `root.yml`, beside the root, as `garbage-collect` is given it).
    pub fn distribution_at(root: &Path, port: u16) -> std::io::Result<Server> {
        Self::distribution_configured(root, port, &distribution_config(root, port))
    }

    /// Starts Distribution on `port` with the configuration `yaml` (written to `root.yml`);
    /// `root` is its data (created; an S3 configuration leaves it empty).
    pub fn distribution_configured(root: &Path, port: u16, yaml: &str) -> std::io::Result<Server> {
        if !Path::new(DISTRIBUTION_BIN).exists() {
            return Err(std::io::Error::other(format!(
                "{DISTRIBUTION_BIN} is missing: apt-get install docker-registry"
            )));
        }
        std::fs::create_dir_all(root)?;
        let config = root.with_extension("yml");
        std::fs::write(&config, yaml)?;
        // aws-sdk-go (its S3 driver) panics at start when AWS_CA_BUNDLE is set ("unable to load
        // custom CA bundle, HTTPClient's transport unsupported type"): its own transport cannot
        // take one. The bench talks plain HTTP on loopback, so the variable is left out.
        let child = Command::new(DISTRIBUTION_BIN)
            .env_remove("AWS_CA_BUNDLE")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Its storage driver's errors are only in its log: a 500 says no more than
            // `{"DriverName":"s3aws","Enclosed":{"RequestFailure":{}}}`.
            .stderr(std::fs::File::create(root.with_extension("log"))?)
            .spawn()?;
        Self::ready(Kind::Distribution, child, port, root)
    }

    /// Waits until `/v2/` answers: 200, or 401 once access control is on (it asks anonymous
    /// callers to log in). A server that exits or stays silent for 30 s is an error.
    fn ready(kind: Kind, mut child: Child, port: u16, data: &Path) -> std::io::Result<Server> {
        let base = format!("http://127.0.0.1:{port}");
        let url = format!("{base}/v2/");
        for _ in 0..600 {
            if let Some(status) = child.try_wait()? {
                return Err(std::io::Error::other(format!(
                    "{kind:?} exited at start: {status}"
                )));
            }
            if let Ok(r) = probe::status(&url)
                && (r == 200 || r == 401)
            {
                return Ok(Server {
                    kind,
                    child,
                    base,
                    data: data.to_path_buf(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        Err(std::io::Error::other(format!(
            "{kind:?} did not answer on {url}"
        )))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// `127.0.0.1:PORT`, as skopeo and wrk want it.
    pub fn host(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The process's threads now.
    pub fn threads(&self) -> u64 {
        proc_status_number(self.pid(), "Threads:")
    }

    /// Resident memory now, in MiB.
    pub fn rss_mib(&self) -> f64 {
        proc_status_number(self.pid(), "VmRSS:") as f64 / 1024.0
    }

    /// Peak resident memory since start or the last `reset_peak_rss`, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        proc_status_number(self.pid(), "VmHWM:") as f64 / 1024.0
    }

    /// Bytes the process has caused to be written to storage so far (`write_bytes` of
    /// `/proc/PID/io`: pages it dirtied, counted once until written back, so what the disk must
    /// take, not what the program asked for).
    pub fn storage_writes(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/io", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("write_bytes:"))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// CPU time (user and system) the process has used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid())
    }

    /// Starts a new peak-memory measurement (Linux: writing 5 to clear_refs resets VmHWM).
    pub fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }

    /// Stops the server (SIGKILL: both registries are crash-safe by design, and the bench
    /// never reuses a stopped server's data without a restart of its own).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Distribution's configuration: filesystem root, deletes enabled, in-memory blob descriptor
/// cache (its default for a single node), logs silenced so they cost nothing.
pub fn distribution_config(root: &Path, port: u16) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: error\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
         cache:\n    blobdescriptor: inmemory\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        root.display()
    )
}

/// CPU time (user and system) process `pid` has used so far, in seconds (0 when unreadable).
/// Clock ticks are 100 a second on Linux.
pub fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The command name in parentheses may hold spaces: fields count after it.
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
        })
        .map_or(0.0, |ticks| ticks / 100.0)
}

/// The machine's busy and total CPU time so far, in clock ticks (`/proc/stat`'s first line;
/// idle and I/O wait count as not busy).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Linux's automatic process groups off for a run, and back as they were when dropped.
///
/// With them on, CPU time is shared between sessions first: PostgreSQL, which `pg_ctl` starts
/// in a session of its own, is weighted on each core by the little load it has there, and
/// when the nodes (in the bench's session) keep both cores busy, a backend woken for a query
/// waited 0.5–2 s for a core (seen with strace: a Bind received, its answer sent 0.55 s later).
/// On a deployment PostgreSQL has a machine of its own; here every thread competes as one.
pub struct AutogroupOff {
    was: Option<String>,
    note: String,
}

const AUTOGROUP: &str = "/proc/sys/kernel/sched_autogroup_enabled";

impl AutogroupOff {
    pub fn for_the_run() -> Self {
        let was = std::fs::read_to_string(AUTOGROUP)
            .ok()
            .map(|s| s.trim().to_string());
        match was.as_deref() {
            None => AutogroupOff {
                was: None,
                note: "kernel.sched_autogroup_enabled: not on this kernel".into(),
            },
            Some("0") => AutogroupOff {
                was: None,
                note: "kernel.sched_autogroup_enabled: 0 (already off)".into(),
            },
            Some(v) => match std::fs::write(AUTOGROUP, "0") {
                Ok(()) => AutogroupOff {
                    was: Some(v.to_string()),
                    note: format!(
                        "kernel.sched_autogroup_enabled: {v}, set to 0 for the run and restored after it (with it on, PostgreSQL, in a session of its own, waited up to seconds for a core whenever the nodes kept both busy)"
                    ),
                },
                Err(e) => AutogroupOff {
                    was: None,
                    note: format!(
                        "kernel.sched_autogroup_enabled: {v}, left on ({e}: run as root): PostgreSQL may wait up to seconds for a core whenever the nodes keep both busy, which shows in the p99"
                    ),
                },
            },
        }
    }

    pub fn describe(&self) -> &str {
        &self.note
    }
}

impl Drop for AutogroupOff {
    fn drop(&mut self) {
        if let Some(v) = &self.was {
            let _ = std::fs::write(AUTOGROUP, v);
        }
    }
}

/// Waits until the whole machine has been quiet, under 10% busy over half a second, and returns
/// how long that took (at most `limit`): a measurement that starts while a store is still
/// writing back what the previous phase sent it would measure that write-back too.
pub fn wait_for_quiet_machine(limit: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        let Some((busy0, total0)) = machine_ticks() else {
            break;
        };
        std::thread::sleep(Duration::from_millis(500));
        let Some((busy1, total1)) = machine_ticks() else {
            break;
        };
        let (busy, total) = (busy1 - busy0, (total1 - total0).max(1));
        if (busy as f64) / (total as f64) < 0.10 {
            break;
        }
    }
    started.elapsed()
}

/// A number field of `/proc/PID/status` (in kB for the memory fields; 0 when unreadable).
fn proc_status_number(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

mod probe {
    //! A blocking status probe without pulling in reqwest's blocking client.
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub fn status(url: &str) -> std::io::Result<u16> {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut s = TcpStream::connect(host)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = [0u8; 16];
        s.read_exact(&mut buf[..12])?;
        let line = std::str::from_utf8(&buf[..12]).map_err(std::io::Error::other)?;
        line[9..12].parse().map_err(std::io::Error::other)
    }
}
