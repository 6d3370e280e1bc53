//! Certificates for TLS tests, made by `openssl` as an operator would make them: a certificate
//! authority, intermediates under it, and server certificates for `127.0.0.1` and `localhost`
//! with keys of every PEM form servers read.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::tools::OPENSSL;

/// Serial numbers, unique within a test process.
static SERIAL: AtomicU64 = AtomicU64::new(1000);

/// A private key's algorithm and PEM form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA P-256, PKCS#8 (`BEGIN PRIVATE KEY`), as cert-manager writes by default.
    EcdsaP256,
    /// ECDSA P-256, SEC1 (`BEGIN EC PRIVATE KEY`).
    EcdsaP256Sec1,
    /// RSA 2048, PKCS#8 (`BEGIN PRIVATE KEY`).
    Rsa2048,
    /// RSA 2048, PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    Rsa2048Pkcs1,
    /// Ed25519, PKCS#8.
    Ed25519,
}

impl KeyType {
    /// `openssl genpkey` options, and whether the key is then converted to its traditional
    /// form (PKCS#1, SEC1).
    fn genpkey(self) -> (&'static [&'static str], bool) {
        const EC: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
        const RSA: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
        match self {
            KeyType::EcdsaP256 => (EC, false),
            KeyType::EcdsaP256Sec1 => (EC, true),
            KeyType::Rsa2048 => (RSA, false),
            KeyType::Rsa2048Pkcs1 => (RSA, true),
            KeyType::Ed25519 => (&["-algorithm", "ED25519"], false),
        }
    }
}

/// A certificate authority in a temporary directory, removed on drop.
#[derive(Debug)]
pub struct CertificateAuthority {
    _dir: tempfile::TempDir,
    name: String,
    key: PathBuf,
    cert: PathBuf,
    /// PEM of this authority's certificate and of the intermediates above it, for a chain file;
    /// empty for a root, which clients hold themselves.
    chain: String,
}

/// A server certificate and its key, as PEM.
#[derive(Debug, Clone)]
pub struct ServerCertificate {
    /// The server's certificate, then the intermediates up to (not including) the root.
    pub chain_pem: String,
    /// The private key.
    pub key_pem: String,
}

impl ServerCertificate {
    /// The DER of the server's certificate (the first of the chain), as a TLS client receives
    /// it.
    pub fn der(&self) -> Vec<u8> {
        pem_blocks(&self.chain_pem)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("testkit: a certificate chain without a certificate"))
    }

    /// Writes the chain and key to `cert` and `key`.
    pub fn write(&self, cert: &Path, key: &Path) {
        write(cert, &self.chain_pem);
        write(key, &self.key_pem);
    }
}

impl CertificateAuthority {
    /// A root authority called `name`, with an ECDSA P-256 key, valid for two days.
    ///
    /// # Panics
    /// When `openssl` is missing or fails.
    pub fn new(name: &str) -> Self {
        let (dir, key, cert) = layout(name);
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-noenc",
            "-keyout",
            path(&key),
            "-out",
            path(&cert),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        Self {
            _dir: dir,
            name: name.to_owned(),
            key,
            cert,
            chain: String::new(),
        }
    }

    /// An intermediate authority called `name`, signed by this one. The certificates it issues
    /// carry it (and the intermediates above it) in their chain.
    pub fn intermediate(&self, name: &str) -> Self {
        let (dir, key, cert) = layout(name);
        self.sign(
            dir.path(),
            KeyType::EcdsaP256,
            name,
            "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
            &key,
            &cert,
        );
        let chain = format!("{}{}", read(&cert), self.chain);
        Self {
            _dir: dir,
            name: name.to_owned(),
            key,
            cert,
            chain,
        }
    }

    /// A server certificate for `127.0.0.1` and `localhost` (IP and DNS subject alternative
    /// names), valid for two days, with a new key of `key_type`.
    pub fn issue(&self, key_type: KeyType) -> ServerCertificate {
        self.issue_for(key_type, &[])
    }

    /// Like [`issue`](Self::issue), for the IP addresses `ips` too.
    pub fn issue_for(&self, key_type: KeyType, ips: &[&str]) -> ServerCertificate {
        let work = scratch("server");
        let key = work.path().join("server.key");
        let cert = work.path().join("server.crt");
        let extra: String = ips.iter().map(|ip| format!(",IP:{ip}")).collect();
        self.sign(
            work.path(),
            key_type,
            "127.0.0.1",
            &format!(
                "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost{extra}\n"
            ),
            &key,
            &cert,
        );
        ServerCertificate {
            chain_pem: format!("{}{}", read(&cert), self.chain),
            key_pem: read(&key),
        }
    }

    /// This authority's certificate (PEM), which clients trust (`--cacert`).
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// A directory holding only this authority's certificate as `ca.crt`, laid out as
    /// skopeo's `--dest-cert-dir`, podman's `--cert-dir` and Docker's
    /// `/etc/docker/certs.d/<host:port>/` expect.
    pub fn cert_dir(&self) -> &Path {
        self.cert
            .parent()
            .unwrap_or_else(|| panic!("testkit: {} has no directory", self.name))
    }

    /// Makes a key of `key_type` and a certificate for it signed by this authority, with the
    /// extensions `extensions` (an `openssl x509 -extfile`) and a serial number of its own.
    fn sign(
        &self,
        work: &Path,
        key_type: KeyType,
        subject: &str,
        extensions: &str,
        key: &Path,
        cert: &Path,
    ) {
        let (options, traditional) = key_type.genpkey();
        let mut genpkey = vec!["genpkey"];
        genpkey.extend_from_slice(options);
        genpkey.extend_from_slice(&["-out", path(key)]);
        openssl(&genpkey);
        if traditional {
            let pkcs8 = work.join("pkcs8.key");
            std::fs::rename(key, &pkcs8)
                .unwrap_or_else(|e| panic!("testkit: cannot rename {}: {e}", key.display()));
            openssl(&[
                "pkey",
                "-in",
                path(&pkcs8),
                "-traditional",
                "-out",
                path(key),
            ]);
        }
        let csr = work.join("request.csr");
        let ext = work.join("extensions.cnf");
        let extensions =
            format!("{extensions}subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n");
        write(&ext, &extensions);
        openssl(&[
            "req",
            "-new",
            "-key",
            path(key),
            "-subj",
            &format!("/CN={subject}"),
            "-out",
            path(&csr),
        ]);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        openssl(&[
            "x509",
            "-req",
            "-in",
            path(&csr),
            "-CA",
            path(&self.cert),
            "-CAkey",
            path(&self.key),
            "-set_serial",
            &serial.to_string(),
            "-days",
            "2",
            "-extfile",
            path(&ext),
            "-out",
            path(cert),
        ]);
    }
}

/// The DER of each PEM block in `pem`, in order.
pub fn pem_blocks(pem: &str) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines() {
        if line.starts_with("-----BEGIN ") {
            body = Some(String::new());
        } else if line.starts_with("-----END ") {
            if let Some(text) = body.take() {
                blocks.push(
                    STANDARD
                        .decode(text)
                        .unwrap_or_else(|e| panic!("testkit: invalid PEM base64: {e}")),
                );
            }
        } else if let Some(text) = &mut body {
            text.push_str(line.trim());
        }
    }
    blocks
}

/// A directory for an authority: `private/ca.key`, and `trust/ca.crt` alone in its directory.
fn layout(name: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = scratch(name);
    for sub in ["private", "trust"] {
        std::fs::create_dir(dir.path().join(sub))
            .unwrap_or_else(|e| panic!("testkit: cannot create {sub}: {e}"));
    }
    let key = dir.path().join("private").join("ca.key");
    let cert = dir.path().join("trust").join("ca.crt");
    (dir, key, cert)
}

fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("testkit-tls-{name}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("testkit: cannot create a temporary directory: {e}"))
}

fn path(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("testkit: {} is not UTF-8", path.display()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("testkit: cannot read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text)
        .unwrap_or_else(|e| panic!("testkit: cannot write {}: {e}", path.display()));
}

/// Runs `openssl args`, panicking with its output when it fails.
fn openssl(args: &[&str]) {
    let output = Command::new(OPENSSL.require())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("testkit: cannot run openssl: {e}"));
    assert!(
        output.status.success(),
        "testkit: openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}
