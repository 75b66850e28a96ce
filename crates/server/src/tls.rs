//! HTTPS: the certificate and key files (PEM), the resolver that hands each new handshake the
//! certificate loaded last, its reload (`Server::reload_tls`, which `shipshape serve` calls on
//! SIGHUP, and a watcher that notices when either file's modification time changes), and the
//! handshake of each accepted connection, after which `serve` serves the decrypted stream as it
//! serves a plain one (HTTP/1.1, and HTTP/2 where ALPN chose it).
//!
//! Why not `axum-server` or `tls-listener`: the server's own accept loop (`serve.rs`) already
//! runs each connection in a task of its own with the limits and the graceful shutdown the
//! server relies on; all TLS needs is a handshake at the start of that task, which
//! `tokio-rustls` makes a few lines. `axum-server` would bring a second serving loop with its
//! own shutdown handle, and `tls-listener` logs every failed handshake (port scanners,
//! plain-HTTP clients) as an error and runs handshakes on the accepting task.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How often the watcher looks at the files' modification times unless told otherwise.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// A client that has not finished its handshake after this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of a TLS handshake record; anything else is not a TLS client.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a plain-HTTP request to the HTTPS port is told before the connection closes.
const PLAIN_HTTP_ANSWER: &str = "This port serves HTTPS: use https:// to reach the registry\n";

/// Where the certificate and key come from, and how often to look for new ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM: the server's certificate first, then the intermediates, if any.
    pub cert: PathBuf,
    /// PEM: the certificate's private key (PKCS#8, RSA or SEC1).
    pub key: PathBuf,
    /// How often the files' modification times are compared with the last load's; zero never.
    pub watch_interval: Duration,
}

impl TlsConfig {
    /// A certificate and key, watched every [`DEFAULT_WATCH_INTERVAL`].
    pub fn new(cert: PathBuf, key: PathBuf) -> TlsConfig {
        TlsConfig {
            cert,
            key,
            watch_interval: DEFAULT_WATCH_INTERVAL,
        }
    }
}

/// A certificate or key that cannot be served. Each names the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {kind} file {path}: {source}")]
    Read {
        kind: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("the TLS {kind} file {path} is not valid PEM: {detail}")]
    Pem {
        kind: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error(
        "the TLS certificate file {0} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)"
    )]
    NoCertificate(PathBuf),
    #[error("the TLS key file {0} holds no private key (expected a PEM PKCS#8, RSA or SEC1 key)")]
    NoKey(PathBuf),
    #[error("the TLS certificate {cert} and key {key} cannot be served together: {detail}")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
    #[error("the server was started without a TLS certificate: there is nothing to reload")]
    NotConfigured,
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// The serving side of TLS: the acceptor new connections go through and the certificate it
/// presents, replaced whole by each successful reload. Clones share both.
#[derive(Clone)]
pub(crate) struct Tls {
    config: TlsConfig,
    provider: Arc<CryptoProvider>,
    current: Arc<CurrentCert>,
    acceptor: TlsAcceptor,
    /// The files' modification times when they were last read; held through a reload, so
    /// reloads (a signal's and the watcher's) take turns.
    seen: Arc<tokio::sync::Mutex<Stamps>>,
}

impl Tls {
    /// Reads the certificate and key, or says which file is wrong and how.
    pub(crate) async fn load(config: &TlsConfig) -> Result<Tls, TlsError> {
        // The provider reqwest already links: one crypto stack in the binary.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamps = Stamps::read(config).await;
        let key = read_certified_key(config, &provider).await?;
        let current = Arc::new(CurrentCert(RwLock::new(Arc::new(key))));
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            config: config.clone(),
            provider,
            current,
            acceptor: TlsAcceptor::from(Arc::new(server)),
            seen: Arc::new(tokio::sync::Mutex::new(stamps)),
        })
    }

    /// Reads both files again; new handshakes present what they hold, connections already open
    /// keep the certificate they were opened with. A failure keeps the previous certificate and
    /// is logged, naming the file.
    pub(crate) async fn reload(&self) -> Result<(), TlsError> {
        let mut seen = self.seen.lock().await;
        // Read before the contents: a change made while they are read is seen again next time.
        *seen = Stamps::read(&self.config).await;
        match read_certified_key(&self.config, &self.provider).await {
            Ok(key) => {
                self.current.replace(key);
                tracing::info!(cert = %self.config.cert.display(), "reloaded the TLS certificate");
                Ok(())
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "the TLS certificate was not reloaded; new connections still get the previous one"
                );
                Err(e)
            }
        }
    }

    /// Reloads whenever either file's modification time differs from the last load's, every
    /// `watch_interval`, until `stop` turns true. `None` when the interval is zero.
    pub(crate) fn spawn_watcher(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Option<JoinHandle<()>> {
        let every = self.config.watch_interval;
        if every.is_zero() {
            return None;
        }
        let tls = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    changed = stop.changed() => if changed.is_err() { return },
                }
                if *stop.borrow() {
                    return;
                }
                let now = Stamps::read(&tls.config).await;
                if now != *tls.seen.lock().await {
                    tracing::info!(
                        cert = %tls.config.cert.display(),
                        key = %tls.config.key.display(),
                        "the TLS certificate or key file changed"
                    );
                    // A failure is logged by `reload`; the next change is tried again.
                    let _ = tls.reload().await;
                }
            }
        }))
    }

    /// Completes the handshake of an accepted connection: `None` (logged at debug) when it
    /// fails or times out (a plain-HTTP client, which is told to use HTTPS, a client that does
    /// not trust the certificate, a port scanner). Each connection's runs in its own task
    /// (`serve::run`), so a slow or silent client holds up no other.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Option<TlsStream<TcpStream>> {
        handshake(self.acceptor.clone(), tcp, peer).await
    }
}

/// The handshake of one connection; `None` (logged at debug) when it does not complete. A
/// plain-HTTP request is answered with a 400 that says to use HTTPS.
async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let attempt = async {
        let mut first = [0u8; 1];
        if tcp.peek(&mut first).await? == 1 && first[0] != TLS_HANDSHAKE_RECORD {
            if first[0].is_ascii_uppercase() {
                answer_plain_http(tcp).await?;
                return Err(io::Error::other("a plain-HTTP request on the HTTPS port"));
            }
            return Err(io::Error::other("not a TLS client"));
        }
        acceptor.accept(tcp).await
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed; connection dropped");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out; connection dropped");
            None
        }
    }
}

/// Tells a plain-HTTP client to use HTTPS, then reads what it sent until it closes: closing
/// with its request unread would reset the connection before the client reads the answer.
async fn answer_plain_http(mut tcp: TcpStream) -> io::Result<()> {
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{PLAIN_HTTP_ANSWER}",
        PLAIN_HTTP_ANSWER.len()
    );
    tcp.write_all(answer.as_bytes()).await?;
    tcp.shutdown().await?;
    let mut sink = [0u8; 4096];
    while tcp.read(&mut sink).await? > 0 {}
    Ok(())
}

/// The certificate new handshakes present.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl CurrentCert {
    fn replace(&self, key: CertifiedKey) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The modification times of the certificate and key files (`None`: unreadable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamps {
    cert: Option<SystemTime>,
    key: Option<SystemTime>,
}

impl Stamps {
    async fn read(config: &TlsConfig) -> Stamps {
        async fn modified(path: &Path) -> Option<SystemTime> {
            tokio::fs::metadata(path).await.ok()?.modified().ok()
        }
        Stamps {
            cert: modified(&config.cert).await,
            key: modified(&config.key).await,
        }
    }
}

/// The chain and key of `config`'s files, checked to belong together.
async fn read_certified_key(
    config: &TlsConfig,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let read = |kind: &'static str, path: &Path| {
        let path = path.to_path_buf();
        async move {
            tokio::fs::read(&path)
                .await
                .map_err(|source| TlsError::Read { kind, path, source })
        }
    };
    let cert_pem = read("certificate", &config.cert).await?;
    let key_pem = read("key", &config.key).await?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            kind: "certificate",
            path: config.cert.clone(),
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(config.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey(config.key.clone()),
        e => TlsError::Pem {
            kind: "key",
            path: config.key.clone(),
            detail: e.to_string(),
        },
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Unusable {
        cert: config.cert.clone(),
        key: config.key.clone(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;

    /// A self-signed certificate for 127.0.0.1 in `dir`, and the client config that trusts it.
    fn certificate(dir: &Path) -> (TlsConfig, Arc<rustls::ClientConfig>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let config = TlsConfig::new(dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&config.cert, cert.pem()).unwrap();
        std::fs::write(&config.key, key.serialize_pem()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        (config, Arc::new(client))
    }

    #[tokio::test]
    async fn an_accepted_connection_completes_its_handshake_with_nagle_off() {
        let dir = tempfile::tempdir().unwrap();
        let (config, client) = certificate(dir.path());
        let tls = Tls::load(&config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connector = tokio_rustls::TlsConnector::from(client);
        let connecting = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("127.0.0.1").unwrap();
            connector.connect(name, tcp).await.unwrap()
        });
        let (tcp, peer) = crate::serve::accept(&listener).await.unwrap();
        let accepted = tls
            .handshake(tcp, peer)
            .await
            .expect("the handshake completes");
        let _client = connecting.await.unwrap();
        assert!(accepted.get_ref().0.nodelay().unwrap());
    }

    #[tokio::test]
    async fn a_bad_file_is_named_with_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (config, _) = certificate(dir.path());
        let other = dir.path().join("other.pem");
        let cases: Vec<(TlsConfig, &str)> = vec![
            (
                TlsConfig::new(dir.path().join("missing.pem"), config.key.clone()),
                "cannot read the TLS certificate file",
            ),
            (
                TlsConfig::new(config.key.clone(), config.key.clone()),
                "holds no certificate",
            ),
            (
                TlsConfig::new(config.cert.clone(), config.cert.clone()),
                "holds no private key",
            ),
            (
                TlsConfig::new(other.clone(), config.key.clone()),
                "cannot be served together",
            ),
        ];
        // A certificate whose key is another one.
        let stranger = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .self_signed(&stranger)
            .unwrap();
        std::fs::write(&other, cert.pem()).unwrap();
        for (config, wanted) in cases {
            let e = Tls::load(&config).await.err().expect("refused").to_string();
            assert!(e.contains(wanted), "{e}");
            let named = if wanted.contains("no private key") {
                &config.key
            } else {
                &config.cert
            };
            assert!(e.contains(named.to_str().unwrap()), "{e}");
        }
    }
}
