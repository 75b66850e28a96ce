//! HTTPS: a test CA made here (rcgen) issues the registry's certificate for 127.0.0.1 and
//! localhost, and clients that trust only that CA verify it: reqwest, skopeo and podman, with
//! verification on. The certificate is replaced while serving (`Server::reload_tls`, a change
//! of the files, SIGHUP to `shipshape serve`): new handshakes present the new one, connections
//! already open keep theirs, and a bad file keeps the old one. Bad files refuse the start with
//! the path named, and plain-HTTP or broken clients on the TLS port do not stop the server.
//! The external clients run as subprocesses; a missing one fails the test, it never skips it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::layout::{Image, Layer, OciLayout};
use common::{OCI_INDEX, OCI_MANIFEST, TestServer, client, require_tool, skopeo, wait_until};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use reqwest::StatusCode;
use shipshape_server::tls::TlsConfig;
use shipshape_server::{Server, ServerConfig};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_shipshape");

/// Generous: a client that hangs is a failure, not a stuck suite.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// A certificate authority made for one test.
struct Ca(CertifiedIssuer<'static, KeyPair>);

/// A server certificate a [`Ca`] issued, with its key.
#[derive(Clone)]
struct Issued {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    /// A server certificate for 127.0.0.1 and localhost.
    fn issue(&self) -> Issued {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "shipshape test registry");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client that trusts this CA and nothing else, on a connection pool of its own.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.0.pem().as_bytes()).unwrap())
            .tls_info(true)
            .build()
            .unwrap()
    }

    /// A directory holding this CA as `ca.crt`, as skopeo's and podman's `--cert-dir` take it.
    fn cert_dir(&self, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("ca.crt"), self.0.pem()).unwrap();
        dir.to_path_buf()
    }
}

/// The certificate and key files a server reads, in a directory of their own.
struct TlsFiles {
    dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl TlsFiles {
    fn with(issued: &Issued) -> TlsFiles {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            dir,
        };
        std::fs::write(&files.cert, &issued.cert_pem).unwrap();
        std::fs::write(&files.key, &issued.key_pem).unwrap();
        files
    }

    /// The server's TLS settings, with the watcher looking every `watch_interval`.
    fn config(&self, watch_interval: Duration) -> TlsConfig {
        TlsConfig {
            watch_interval,
            ..TlsConfig::new(self.cert.clone(), self.key.clone())
        }
    }

    /// Replaces both files, each in one rename, as an operator's tooling would.
    fn replace(&self, issued: &Issued) {
        self.replace_file(&self.key, &issued.key_pem, None);
        self.replace_file(&self.cert, &issued.cert_pem, None);
    }

    /// Replaces both files with ones carrying the old files' modification times, so that only
    /// a reload asked for (SIGHUP, `reload_tls`) can notice, never the watcher.
    fn replace_unnoticed(&self, issued: &Issued) {
        for (path, text) in [(&self.key, &issued.key_pem), (&self.cert, &issued.cert_pem)] {
            let modified = std::fs::metadata(path).unwrap().modified().unwrap();
            self.replace_file(path, text, Some(modified));
        }
    }

    fn replace_file(&self, path: &Path, text: &str, modified: Option<std::time::SystemTime>) {
        let staged = self.dir.path().join("staged");
        std::fs::write(&staged, text).unwrap();
        if let Some(t) = modified {
            std::fs::File::options()
                .write(true)
                .open(&staged)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        std::fs::rename(&staged, path).unwrap();
    }
}

/// A registry serving HTTPS with `files`.
async fn tls_server(files: &TlsFiles, watch_interval: Duration) -> TestServer {
    let tls = files.config(watch_interval);
    let s = TestServer::start_with(|c| c.tls = Some(tls)).await;
    assert!(s.base.starts_with("https://127.0.0.1:"), "{}", s.base);
    s
}

/// The certificate a fresh handshake of `client` is presented with at `url`, after a 200; or
/// the whole chain of the error.
async fn presented(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let resp = client.get(url).send().await.map_err(|e| error_chain(&e))?;
    assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
    let info = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS information (tls_info is on)");
    Ok(info.peer_certificate().expect("a certificate").to_vec())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

async fn exec(program: &Path, args: &[&str]) -> Output {
    common::exec_tool(program, args, None).await
}

fn describe(program: &Path, args: &[&str], out: &Output) -> String {
    common::describe_run(program, args, out)
}

async fn run_ok(program: &Path, args: &[&str]) -> Output {
    let out = exec(program, args).await;
    assert!(out.status.success(), "{}", describe(program, args, &out));
    out
}

/// Runs a program that must fail because it does not trust the registry's certificate.
async fn refused_as_untrusted(program: &Path, args: &[&str]) {
    let out = exec(program, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("certificate signed by unknown authority"),
        "expected a verification failure:\n{}",
        describe(program, args, &out)
    );
}

fn podman() -> PathBuf {
    require_tool("SHIPSHAPE_TEST_PODMAN", "podman")
}

/// A one-layer image in an OCI layout under `dir`, tagged `v1`.
fn layout_with_image(dir: &Path, seed: u64) -> Image {
    let image = Image::new("amd64", &[Layer::seeded("tls", seed)], &["/bin/true"]);
    OciLayout::create(dir).add_image("v1", &image);
    image
}

/// The digest `Docker-Content-Digest` gives for `repo:reference`, fetched by a client that
/// trusts `ca`.
async fn manifest_digest(s: &TestServer, ca: &Ca, repo: &str, reference: &str) -> String {
    let resp = ca
        .client()
        .get(s.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("accept", OCI_MANIFEST)
        .header("accept", OCI_INDEX)
        .header("accept", common::DOCKER_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "GET {repo}:{reference}");
    common::header(&resp, "docker-content-digest")
        .expect("Docker-Content-Digest")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_the_ca_verifies_the_registry_and_others_do_not() {
    let ca = Ca::new("shipshape test CA");
    let issued = ca.issue();
    let files = TlsFiles::with(&issued);
    let s = tls_server(&files, Duration::ZERO).await;
    let port = s.server().local_addr().port();

    // By address and by name, both in the certificate; HTTP/2, which ALPN offers first.
    for url in [s.url("/v2/"), format!("https://localhost:{port}/v2/")] {
        let resp = ca.client().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
        assert_eq!(resp.version(), reqwest::Version::HTTP_2, "GET {url}");
    }
    assert_eq!(
        presented(&ca.client(), &s.url("/v2/")).await,
        Ok(issued.der)
    );
    // HTTP/1.1 for a client that offers only that.
    let h1 = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.0.pem().as_bytes()).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let resp = h1.get(s.url("/v2/")).send().await.unwrap();
    assert_eq!(
        (resp.status(), resp.version()),
        (StatusCode::OK, reqwest::Version::HTTP_11)
    );

    // Verification is on: public roots do not vouch for it, nor does another CA.
    for (who, c) in [
        ("the public roots", reqwest::Client::new()),
        ("another CA", Ca::new("another CA").client()),
    ] {
        let e = presented(&c, &s.url("/v2/")).await.unwrap_err();
        assert!(e.contains("UnknownIssuer"), "{who}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_and_pulls_with_verification_on() {
    let ca = Ca::new("shipshape test CA");
    let files = TlsFiles::with(&ca.issue());
    let s = tls_server(&files, Duration::ZERO).await;
    let tmp = tempfile::tempdir().unwrap();
    let certs = ca.cert_dir(&tmp.path().join("certs"));
    let certs = certs.to_str().unwrap();
    let image = layout_with_image(&tmp.path().join("src"), 1);
    let src = format!("oci:{}:v1", tmp.path().join("src").display());
    let remote = format!("docker://{}/tls/app:v1", s.host());
    let skopeo = skopeo();

    // Verification is on by default for docker:// references; only --*-cert-dir is added.
    let push = [
        "--insecure-policy",
        "copy",
        "--preserve-digests",
        "--dest-cert-dir",
        certs,
        &src,
        &remote,
    ];
    run_ok(&skopeo, &push).await;
    assert_eq!(
        manifest_digest(&s, &ca, "tls/app", "v1").await,
        image.digest()
    );

    let out = tmp.path().join("out");
    let dest = format!("oci:{}:v1", out.display());
    let pull = [
        "--insecure-policy",
        "copy",
        "--preserve-digests",
        "--src-cert-dir",
        certs,
        &remote,
        &dest,
    ];
    run_ok(&skopeo, &pull).await;
    let pulled = OciLayout::open(&out);
    assert_eq!(pulled.tagged("v1"), image.descriptor());
    assert_eq!(pulled.content(), image.content());

    // Without the CA, skopeo refuses the registry's certificate.
    refused_as_untrusted(&skopeo, &["inspect", "--raw", &remote]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_pulls_and_pushes_with_verification_on() {
    let ca = Ca::new("shipshape test CA");
    let files = TlsFiles::with(&ca.issue());
    let s = tls_server(&files, Duration::ZERO).await;
    let tmp = tempfile::tempdir().unwrap();
    let certs = ca.cert_dir(&tmp.path().join("certs"));
    let certs = certs.to_str().unwrap();
    let image = layout_with_image(&tmp.path().join("src"), 2);
    let src = format!("oci:{}:v1", tmp.path().join("src").display());
    let pushed = format!("{}/tls/app:v1", s.host());
    run_ok(
        &skopeo(),
        &[
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--dest-cert-dir",
            certs,
            &src,
            &format!("docker://{pushed}"),
        ],
    )
    .await;

    // Rootful podman with its storage in the test's directory (clients.md, section 5).
    let root = tmp.path().join("podman-root");
    let runroot = tmp.path().join("podman-runroot");
    let podman_tmp = tmp.path().join("podman-tmp");
    let podman = podman();
    let with_storage = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = [
            "--root",
            root.to_str().unwrap(),
            "--runroot",
            runroot.to_str().unwrap(),
            "--tmpdir",
            podman_tmp.to_str().unwrap(),
            "--storage-driver",
            "vfs",
            "--events-backend",
            "none",
        ]
        .map(String::from)
        .to_vec();
        all.extend(args.iter().map(|a| a.to_string()));
        all
    };
    let args = with_storage(&["pull", "--cert-dir", certs, &pushed]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&podman, &args).await;
    let args = with_storage(&["image", "inspect", "--format", "{{.Digest}}", &pushed]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_ok(&podman, &args).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        image.digest(),
        "podman pulled the pushed manifest"
    );

    let copy = format!("docker://{}/tls/from-podman:v1", s.host());
    let args = with_storage(&["push", "--cert-dir", certs, &pushed, &copy]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&podman, &args).await;
    manifest_digest(&s, &ca, "tls/from-podman", "v1").await;

    // Without the CA, podman refuses the registry's certificate.
    let args = with_storage(&["pull", &pushed]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused_as_untrusted(&podman, &args).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_presents_the_new_certificate_to_new_connections_only() {
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let (old, new) = (old_ca.issue(), new_ca.issue());
    let files = TlsFiles::with(&old);
    // No watcher: only the reload asked for can change the certificate.
    let s = tls_server(&files, Duration::ZERO).await;
    let url = s.url("/v2/");
    let open = old_ca.client();
    assert_eq!(presented(&open, &url).await, Ok(old.der.clone()));

    files.replace(&new);
    s.server().reload_tls().await.expect("reloaded");
    assert_eq!(presented(&new_ca.client(), &url).await, Ok(new.der.clone()));
    let e = presented(&old_ca.client(), &url).await.unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // The connection opened before the reload keeps its certificate (a new one would fail:
    // this client trusts only the old CA).
    assert_eq!(presented(&open, &url).await, Ok(old.der.clone()));

    // A bad file is refused, named, and the certificate in use stays.
    std::fs::write(&files.cert, "not a certificate\n").unwrap();
    let e = s.server().reload_tls().await.unwrap_err().to_string();
    assert!(
        e.contains(files.cert.to_str().unwrap()) && e.contains("holds no certificate"),
        "{e}"
    );
    assert_eq!(presented(&new_ca.client(), &url).await, Ok(new.der.clone()));
    files.replace(&old_ca.issue());
    std::fs::write(&files.key, new.key_pem.as_bytes()).unwrap();
    let e = s.server().reload_tls().await.unwrap_err().to_string();
    assert!(
        e.contains(files.key.to_str().unwrap()) && e.contains("cannot be served together"),
        "{e}"
    );
    assert_eq!(presented(&new_ca.client(), &url).await, Ok(new.der));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_files_are_served_without_a_signal() {
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let (old, new) = (old_ca.issue(), new_ca.issue());
    let files = TlsFiles::with(&old);
    let s = tls_server(&files, Duration::from_millis(50)).await;
    let url = &s.url("/v2/");
    assert_eq!(presented(&old_ca.client(), url).await, Ok(old.der));

    // The key lands first: the watcher may see the new key with the old certificate, refuse
    // the pair, and take it once the certificate follows.
    files.replace(&new);
    let new_ca = &new_ca;
    let served = wait_until(
        "a new handshake to present the replaced certificate",
        || async move { presented(&new_ca.client(), url).await.ok() },
    )
    .await;
    assert_eq!(served, new.der);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_of_shipshape_serve() {
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let (old, new) = (old_ca.issue(), new_ca.issue());
    let files = TlsFiles::with(&old);
    let data = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .arg("--tls-cert")
        .arg(&files.cert)
        .arg("--tls-key")
        .arg(&files.key)
        .env("SHIPSHAPE_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("shipshape serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("the serving line");
    let base = line.rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("https://127.0.0.1:"), "{line}");
    let url = &format!("{base}/v2/");
    assert_eq!(presented(&old_ca.client(), url).await, Ok(old.der));

    // The watcher looks at modification times, which these files keep: only SIGHUP reloads.
    files.replace_unnoticed(&new);
    let pid = child.id().expect("running") as libc::pid_t;
    // SAFETY: kill(2) on the child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let new_ca = &new_ca;
    let served = wait_until(
        "shipshape serve to present the new certificate",
        || async move { presented(&new_ca.client(), url).await.ok() },
    )
    .await;
    assert_eq!(served, new.der);

    // SIGTERM still shuts it down cleanly.
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(CLIENT_TIMEOUT, child.wait())
        .await
        .expect("shipshape serve stops")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_certificate_or_key_refuses_the_start_naming_the_file() {
    let ca = Ca::new("shipshape test CA");
    let files = TlsFiles::with(&ca.issue());
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let missing = tmp.path().join("missing.pem");
    let cases = [
        (
            garbage.clone(),
            files.key.clone(),
            &garbage,
            "not valid PEM",
        ),
        (missing.clone(), files.key.clone(), &missing, "No such file"),
        (
            files.key.clone(),
            files.key.clone(),
            &files.key,
            "holds no certificate",
        ),
        (
            files.cert.clone(),
            files.cert.clone(),
            &files.cert,
            "holds no private key",
        ),
    ];
    for (cert, key, named, wanted) in cases {
        let data_dir = tmp.path().join("data");
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.clone(),
            tls: Some(TlsConfig::new(cert, key)),
            ..ServerConfig::default()
        };
        let e = Server::start(config).await.err().expect("refused");
        let text = e.to_string();
        assert!(
            text.contains(named.to_str().unwrap()) && text.contains(wanted),
            "{text}"
        );
        assert!(!data_dir.exists(), "refused before touching the data");
    }

    // The command: a certificate without its key, and a file named in the config file.
    let data = tmp.path().join("data").to_str().unwrap().to_string();
    let cert = files.cert.to_str().unwrap();
    let out = exec(
        Path::new(BIN),
        &["serve", "--data-dir", &data, "--tls-cert", cert],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(cert) && stderr.contains("--tls-key"),
        "{stderr}"
    );

    let config = tmp.path().join("shipshape.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {data:?}\n[tls]\ncert = {:?}\nkey = {:?}\n",
            missing.to_str().unwrap(),
            files.key.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = exec(
        Path::new(BIN),
        &["serve", "--config", config.to_str().unwrap()],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(missing.to_str().unwrap()) && stderr.contains("No such file"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_and_broken_handshakes_do_not_stop_the_server() {
    let ca = Ca::new("shipshape test CA");
    let files = TlsFiles::with(&ca.issue());
    let s = tls_server(&files, Duration::ZERO).await;
    let host = s.host();

    // A client that connects and says nothing holds up no one.
    let _silent = tokio::net::TcpStream::connect(&host).await.unwrap();

    // Plain HTTP is told to use HTTPS.
    let resp = client()
        .get(format!("http://{host}/v2/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = resp.text().await.unwrap();
    assert!(body.contains("https://"), "{body}");

    // A broken handshake record, and binary noise: each connection is closed.
    for noise in [
        &[0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00][..],
        &[0x00, 0xff, 0x10, 0x20][..],
    ] {
        let mut tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
        tcp.write_all(noise).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(CLIENT_TIMEOUT, tcp.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection");
        assert!(
            !answer.starts_with(b"HTTP"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
    }

    // A client that distrusts the certificate fails its handshake, and the next one succeeds.
    assert!(
        presented(&Ca::new("another CA").client(), &s.url("/v2/"))
            .await
            .is_err()
    );
    let resp = ca.client().get(s.url("/v2/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_does_not_lift_the_refusal_of_a_public_address_without_auth() {
    let ca = Ca::new("shipshape test CA");
    let files = TlsFiles::with(&ca.issue());
    let tmp = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        data_dir: tmp.path().join("data"),
        tls: Some(files.config(Duration::ZERO)),
        ..ServerConfig::default()
    };
    let e = Server::start(config).await.err().expect("refused");
    assert!(e.to_string().contains("--allow-public-without-auth"), "{e}");
}
