//! TLS on the proxy listener: the certificate chain and key read from PEM files, served to every
//! new connection, and replaced without a restart when the files change.
//!
//! The files are read again every `--reload-interval` and on `SIGHUP`, the way the
//! configuration is ([`crate::config_source`]): a Kubernetes Secret mount (which cert-manager
//! renews) changes by swapping its `..data` symlink, so both files change at once; other tools
//! rewrite the two files one after the other. A changed pair that loads is served to the
//! connections that start from then on; connections already open keep the certificate they
//! were given. A changed pair that does not load (a half-written pair, a key of another
//! certificate) is checked once more at the next poll, and refused only when it still does not
//! load then: the last good pair stays in use, the refusal is logged once and counted.
//!
//! Protocol versions and cipher suites are rustls's defaults with the `ring` provider: TLS 1.3
//! and 1.2, forward-secret AEAD suites only. ALPN offers `h2` and `http/1.1`.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

use crate::hangup::Hangups;
use crate::metrics::Metrics;

/// ALPN protocols offered, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why the certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Only one of the two files was given.
    #[error(
        "{given} needs {missing}: give the certificate and its key both (--tls-cert and --tls-key, or REGISTRY_GATEWAY_TLS_CERT and REGISTRY_GATEWAY_TLS_KEY), or neither for plain HTTP"
    )]
    Incomplete {
        /// The flag that was given.
        given: &'static str,
        /// The flag that is missing.
        missing: &'static str,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file is not valid PEM.
    #[error("invalid PEM in {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{path} holds no certificate (no PEM block \"BEGIN CERTIFICATE\")")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error(
        "{path} holds no private key (no PEM block \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\")"
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The private key is not one rustls can sign with.
    #[error("unusable private key in {path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The server's certificate (the first of the chain) cannot be parsed.
    #[error("invalid certificate in {path}: {source}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The private key is not the key of the server's certificate.
    #[error("the private key in {key} does not belong to the certificate in {cert}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// The certificate chain and key files of the proxy listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificates: the server's first, then its intermediates.
    pub cert: PathBuf,
    /// The PEM private key of the first certificate.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files from `--tls-cert` and `--tls-key`: both or neither.
    pub fn from_flags(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<Self>, TlsError> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(Self {
                cert: cert.to_owned(),
                key: key.to_owned(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(TlsError::Incomplete {
                given: "--tls-cert",
                missing: "--tls-key",
            }),
            (None, Some(_)) => Err(TlsError::Incomplete {
                given: "--tls-key",
                missing: "--tls-cert",
            }),
        }
    }

    /// What the two files hold now.
    fn read(&self) -> Result<Pair, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Ok(Pair {
            cert: read(&self.cert)?,
            key: read(&self.key)?,
        })
    }
}

/// The bytes of the two files, read together.
struct Pair {
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// SHA-256 of both files: whether they changed, without keeping a copy of the key.
type Fingerprint = [u8; 32];

impl Pair {
    fn fingerprint(&self) -> Fingerprint {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(&(self.cert.len() as u64).to_be_bytes());
        context.update(&self.cert);
        context.update(&self.key);
        let mut out = [0; 32];
        out.copy_from_slice(context.finish().as_ref());
        out
    }

    /// The chain and signing key, checked to belong together.
    fn load(&self, files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
        let chain = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Pem {
                path: files.cert.clone(),
                source,
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: files.cert.clone(),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|source| match source {
            pem::Error::NoItemsFound => TlsError::NoKey {
                path: files.key.clone(),
            },
            source => TlsError::Pem {
                path: files.key.clone(),
                source,
            },
        })?;
        let signing_key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|source| TlsError::Key {
                path: files.key.clone(),
                source,
            })?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            // A key whose public half rustls cannot tell is used as it is.
            Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {
                Ok(certified)
            }
            Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Mismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            }),
            Err(source) => Err(TlsError::Certificate {
                path: files.cert.clone(),
                source,
            }),
        }
    }
}

/// The hex SHA-256 of the server's certificate, as `openssl x509 -fingerprint -sha256` shows
/// it (without the colons): which certificate is served, in the log.
fn certificate_sha256(key: &CertifiedKey) -> String {
    key.cert.first().map_or_else(String::new, |cert| {
        ring::digest::digest(&ring::digest::SHA256, cert.as_ref())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// The certificate and key served to new connections.
#[derive(Debug)]
pub struct ServedCertificate {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServedCertificate {
    fn get(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn replace(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
    }
}

impl ResolvesServerCert for ServedCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The live certificate: loaded at start, replaced when its files change.
#[derive(Debug)]
pub struct TlsSource {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    served: Arc<ServedCertificate>,
    /// The files the served certificate was loaded from.
    loaded: Fingerprint,
    /// Files that did not load once: refused if they have not changed at the next check.
    pending: Option<Fingerprint>,
    /// Files refused already (logged and counted once).
    refused: Option<Fingerprint>,
    /// Whether the last read failed (logged once until a read succeeds).
    unreadable: bool,
    metrics: Arc<Metrics>,
}

impl TlsSource {
    /// Loads the certificate and key once; fails when they cannot be served.
    pub fn open(files: TlsFiles, metrics: Arc<Metrics>) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pair = files.read()?;
        let key = pair.load(&files, &provider)?;
        tracing::info!(cert = %files.cert.display(), key = %files.key.display(), sha256 = %certificate_sha256(&key), "TLS certificate loaded");
        metrics.tls_reload(true);
        Ok(Self {
            loaded: pair.fingerprint(),
            files,
            provider,
            served: Arc::new(ServedCertificate {
                current: RwLock::new(Arc::new(key)),
            }),
            pending: None,
            refused: None,
            unreadable: false,
            metrics,
        })
    }

    /// The TLS set-up of the proxy listener, serving the live certificate.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, rustls::Error> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&self.served) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// Reads the files again and serves them when they changed and load. `at_once` (`SIGHUP`)
    /// refuses a pair that does not load without waiting for the next check.
    pub fn reload(&mut self, at_once: bool) {
        let pair = match self.files.read() {
            Ok(pair) => {
                self.unreadable = false;
                pair
            }
            Err(err) => {
                // A mount in the middle of a swap can miss a file for an instant.
                if !self.unreadable {
                    tracing::warn!(error = %err, "TLS reload: cannot read the certificate or key; the current one stays in use");
                }
                self.unreadable = true;
                return;
            }
        };
        let fingerprint = pair.fingerprint();
        if fingerprint == self.loaded {
            self.pending = None;
            if self.refused.take().is_some() {
                // Put back after a refused change: what is served matches the files again.
                tracing::info!(cert = %self.files.cert.display(), "TLS files hold the certificate in use again");
                self.metrics.tls_reload(true);
            }
            return;
        }
        if self.refused == Some(fingerprint) {
            return;
        }
        match pair.load(&self.files, &self.provider) {
            Ok(key) => {
                tracing::info!(cert = %self.files.cert.display(), sha256 = %certificate_sha256(&key), "TLS certificate reloaded");
                self.served.replace(key);
                self.loaded = fingerprint;
                self.pending = None;
                self.refused = None;
                self.metrics.tls_reload(true);
            }
            Err(err) if !at_once && self.pending != Some(fingerprint) => {
                tracing::debug!(error = %err, "TLS reload: the changed files do not load yet; checked again at the next poll");
                self.pending = Some(fingerprint);
            }
            Err(err) => {
                tracing::error!(error = %err, "TLS reload refused; the last good certificate stays in use");
                self.pending = None;
                self.refused = Some(fingerprint);
                self.metrics.tls_reload(false);
            }
        }
    }

    /// Checks the files every `interval`, and at once on `SIGHUP`, until the process ends.
    pub async fn watch(mut self, interval: Duration) {
        let mut hangups = Hangups::new();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once; the files were just loaded.
        ticker.tick().await;
        loop {
            let at_once = tokio::select! {
                _ = ticker.tick() => false,
                () = hangups.recv() => true,
            };
            self.reload(at_once);
        }
    }
}

/// The TLS handshake of each new connection of the proxy listener.
#[derive(Debug, Clone)]
pub struct Handshake {
    config: Arc<ServerConfig>,
    metrics: Arc<Metrics>,
}

impl Handshake {
    /// Handshakes as `config` says, counting failures in `metrics`.
    pub fn new(config: Arc<ServerConfig>, metrics: Arc<Metrics>) -> Self {
        Self { config, metrics }
    }

    /// The connection once its handshake is done, or `None` when the client did not complete
    /// one within `limit` or it failed (logged at debug level and counted).
    pub async fn accept<IO>(
        &self,
        io: IO,
        remote: SocketAddr,
        limit: Duration,
    ) -> Option<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&self.config));
        let failure = match tokio::time::timeout(limit, acceptor.accept(io)).await {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(err)) => {
                let reason = failure_reason(&err);
                tracing::debug!(%remote, error = %err, reason, "TLS handshake failed");
                reason
            }
            Err(_) => {
                tracing::debug!(%remote, limit = %humantime::format_duration(limit), "TLS handshake not completed in time; connection closed");
                "timeout"
            }
        };
        self.metrics.tls_handshake_failed(failure);
        None
    }
}

/// The metric label of a failed handshake.
fn failure_reason(err: &io::Error) -> &'static str {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        // The client refused the certificate: it does not trust its issuer, most often.
        Some(rustls::Error::AlertReceived(_)) => "alert",
        // Not TLS, or nothing in common (versions, suites, ALPN).
        Some(_) => "protocol",
        // Closed or reset halfway.
        None => "io",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use testkit::{CertificateAuthority, KeyType, ServerCertificate};

    use super::*;

    fn files(dir: &Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        }
    }

    fn load(dir: &Path, cert: &str, key: &str) -> Result<CertifiedKey, TlsError> {
        let files = files(dir);
        std::fs::write(&files.cert, cert).expect("write cert");
        std::fs::write(&files.key, key).expect("write key");
        files
            .read()?
            .load(&files, &rustls::crypto::ring::default_provider())
    }

    #[test]
    fn both_files_or_neither() {
        let (cert, key) = (Some(Path::new("c.pem")), Some(Path::new("k.pem")));
        assert!(matches!(TlsFiles::from_flags(None, None), Ok(None)));
        assert!(matches!(TlsFiles::from_flags(cert, key), Ok(Some(_))));
        for (cert, key, text) in [
            (cert, None, "--tls-cert needs --tls-key"),
            (None, key, "--tls-key needs --tls-cert"),
        ] {
            let err = TlsFiles::from_flags(cert, key).expect_err("one alone");
            assert!(err.to_string().starts_with(text), "{err}");
        }
    }

    #[test]
    fn keys_of_every_pem_form_load_with_their_chain() {
        let root = CertificateAuthority::new("unit-root");
        let intermediate = root.intermediate("unit-intermediate");
        let dir = tempfile::tempdir().expect("dir");
        for (ca, key_type, chain_length) in [
            (&root, KeyType::EcdsaP256, 1),
            (&root, KeyType::EcdsaP256Sec1, 1),
            (&root, KeyType::Rsa2048, 1),
            (&root, KeyType::Rsa2048Pkcs1, 1),
            (&root, KeyType::Ed25519, 1),
            (&intermediate, KeyType::EcdsaP256, 2),
        ] {
            let server = ca.issue(key_type);
            let key = load(dir.path(), &server.chain_pem, &server.key_pem)
                .unwrap_or_else(|e| panic!("{key_type:?}: {e}"));
            assert_eq!(key.cert.len(), chain_length, "{key_type:?}");
            assert_eq!(key.cert[0].as_ref(), server.der(), "{key_type:?}");
        }
    }

    #[test]
    fn pairs_that_cannot_be_served_are_refused_with_the_file_named() {
        let ca = CertificateAuthority::new("unit-refusals");
        let server = ca.issue(KeyType::EcdsaP256);
        let other = ca.issue(KeyType::EcdsaP256);
        let rsa = ca.issue(KeyType::Rsa2048);
        let dir = tempfile::tempdir().expect("dir");
        let cert = dir.path().join("tls.crt").display().to_string();
        let key = dir.path().join("tls.key").display().to_string();
        let garbage_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let unended = "-----BEGIN CERTIFICATE-----\nAAAA\n";
        for (chain, private, expected) in [
            (
                &server.chain_pem,
                &other.key_pem,
                format!("the private key in {key} does not belong to the certificate in {cert}"),
            ),
            (
                &server.chain_pem,
                &rsa.key_pem,
                format!("the private key in {key} does not belong to the certificate in {cert}"),
            ),
            (
                &String::new(),
                &server.key_pem,
                format!("{cert} holds no certificate"),
            ),
            (
                &server.key_pem,
                &server.key_pem,
                format!("{cert} holds no certificate"),
            ),
            (
                &server.chain_pem,
                &server.chain_pem,
                format!("{key} holds no private key"),
            ),
            (
                &server.chain_pem,
                &garbage_key.to_owned(),
                format!("unusable private key in {key}"),
            ),
            (
                &unended.to_owned(),
                &server.key_pem,
                format!("invalid PEM in {cert}"),
            ),
        ] {
            let err = load(dir.path(), chain, private).expect_err(&expected);
            assert!(
                err.to_string().starts_with(&expected),
                "{err}\nexpected: {expected}"
            );
        }
        let missing = files(&dir.path().join("nowhere"));
        let err = missing.read().err().expect("missing files");
        assert!(err.to_string().starts_with("cannot read "), "{err}");
    }

    /// A source over `dir/tls.crt` and `dir/tls.key` holding `server`.
    fn source(dir: &Path, server: &ServerCertificate) -> (TlsSource, Arc<Metrics>) {
        let files = files(dir);
        server.write(&files.cert, &files.key);
        let metrics = Arc::new(Metrics::new());
        let source = TlsSource::open(files, Arc::clone(&metrics)).expect("valid pair");
        (source, metrics)
    }

    fn served(source: &TlsSource) -> Vec<u8> {
        source.served.get().cert[0].as_ref().to_vec()
    }

    fn sample(metrics: &Metrics, sample: &str) -> String {
        let text = metrics.encode();
        text.lines()
            .find_map(|line| {
                line.strip_prefix(sample)?
                    .strip_prefix(' ')
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "absent".to_owned())
    }

    const FAILURES: &str = r#"registry_gateway_tls_reloads_total{result="failure"}"#;
    const SUCCESSES: &str = r#"registry_gateway_tls_reloads_total{result="success"}"#;
    const LAST_OK: &str = "registry_gateway_tls_last_reload_success";

    #[test]
    fn a_changed_pair_is_served_once_it_loads_and_a_bad_one_only_after_a_second_look() {
        let ca = CertificateAuthority::new("unit-reload");
        let (first, second) = (ca.issue(KeyType::EcdsaP256), ca.issue(KeyType::Rsa2048));
        let dir = tempfile::tempdir().expect("dir");
        let (mut source, metrics) = source(dir.path(), &first);
        let files = files(dir.path());
        assert_eq!(served(&source), first.der());
        assert_eq!(sample(&metrics, SUCCESSES), "1");

        // Unchanged files: nothing happens.
        source.reload(false);
        assert_eq!(sample(&metrics, SUCCESSES), "1");

        // The certificate is rewritten before the key: the first look sees a pair that does
        // not match and waits; the second sees the whole new pair.
        std::fs::write(&files.cert, &second.chain_pem).expect("cert");
        source.reload(false);
        assert_eq!(served(&source), first.der());
        assert_eq!(sample(&metrics, FAILURES), "absent");
        std::fs::write(&files.key, &second.key_pem).expect("key");
        source.reload(false);
        assert_eq!(served(&source), second.der());
        assert_eq!(sample(&metrics, SUCCESSES), "2");
        assert_eq!(sample(&metrics, FAILURES), "absent");

        // A pair that still does not load at the second look is refused, once.
        std::fs::write(&files.key, &first.key_pem).expect("key");
        source.reload(false);
        assert_eq!(sample(&metrics, FAILURES), "absent");
        source.reload(false);
        assert_eq!(sample(&metrics, FAILURES), "1");
        assert_eq!(sample(&metrics, LAST_OK), "0");
        source.reload(false);
        source.reload(true);
        assert_eq!(sample(&metrics, FAILURES), "1");
        assert_eq!(served(&source), second.der());

        // Put back as they were: the refusal is over.
        second.write(&files.cert, &files.key);
        source.reload(false);
        assert_eq!(sample(&metrics, LAST_OK), "1");
        assert_eq!(sample(&metrics, SUCCESSES), "3");

        // Files that vanish leave the served pair alone.
        std::fs::remove_file(&files.key).expect("remove");
        source.reload(false);
        assert_eq!(served(&source), second.der());

        // A valid pair again.
        first.write(&files.cert, &files.key);
        source.reload(false);
        assert_eq!(served(&source), first.der());
        assert_eq!(sample(&metrics, LAST_OK), "1");
        assert_eq!(sample(&metrics, SUCCESSES), "4");
    }

    #[test]
    fn sighup_refuses_a_bad_pair_at_once() {
        let ca = CertificateAuthority::new("unit-hangup");
        let (first, second) = (ca.issue(KeyType::EcdsaP256), ca.issue(KeyType::EcdsaP256));
        let dir = tempfile::tempdir().expect("dir");
        let (mut source, metrics) = source(dir.path(), &first);
        std::fs::write(files(dir.path()).cert, &second.chain_pem).expect("cert");
        source.reload(true);
        assert_eq!(sample(&metrics, FAILURES), "1");
        assert_eq!(served(&source), first.der());
    }
}
