//! The proxy listener over TLS, against clients that verify it: skopeo and podman push through
//! it trusting a test CA (and nothing else), curl speaks HTTP/2 or HTTP/1.1 as ALPN chose, the
//! certificate is rotated under a running gateway as Kubernetes and in-place writers rotate it,
//! and the listener keeps every bound of the plain one.
//!
//! Certificates are made by `openssl` ([`testkit::CertificateAuthority`]); which certificate a
//! new connection is given is read with a rustls client.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use testkit::{CertificateAuthority, KeyType, Registry, ServerCertificate, SkopeoCopy, TestImage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::listener::{BOUND, MIB, PER_CONNECTION, allowed, memory, settled, unfinished_head};
use crate::support::{BIN, Gateway, eventually, eventually_async, get, upstream_tags};

const KB: u64 = 1024;

const CONFIG: &str = r#"
max_image_size: "100MB"
tag_count_limit: "100"
rules: |
  - path: ^project-1/.*
    limit:
      max_image_size: "1MB"
      tag_count_limit: "3"
  - path: ^podman/.*
    limit:
      max_image_size: "100MB"
      tag_count_limit: "1"
"#;

const SUCCESSES: &str = r#"registry_gateway_tls_reloads_total{result="success"}"#;
const FAILURES: &str = r#"registry_gateway_tls_reloads_total{result="failure"}"#;
const LAST_OK: &str = "registry_gateway_tls_last_reload_success";

/// `tls.crt` and `tls.key` in a directory of their own, as plain files.
struct PlainFiles {
    dir: tempfile::TempDir,
}

impl PlainFiles {
    fn new(server: &ServerCertificate) -> Self {
        let files = Self {
            dir: tempfile::tempdir().expect("directory"),
        };
        server.write(&files.cert(), &files.key());
        files
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }
}

/// A directory laid out as the kubelet mounts a Secret: the files in a timestamped directory,
/// `..data` pointing at it, and `tls.crt`, `tls.key` pointing through `..data`. An update
/// writes a new timestamped directory and swaps `..data` with one `rename(2)`.
pub struct SecretMount {
    dir: tempfile::TempDir,
    generation: u32,
}

impl SecretMount {
    /// A mount holding `server` as `tls.crt` and `tls.key`, the keys of a `kubernetes.io/tls`
    /// Secret.
    pub fn new(server: &ServerCertificate) -> Self {
        let mut mount = Self {
            dir: tempfile::tempdir().expect("directory"),
            generation: 0,
        };
        mount.update(&server.chain_pem, &server.key_pem);
        for key in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{key}"), mount.dir.path().join(key))
                .expect("key symlink");
        }
        mount
    }

    /// Writes the keys into a new timestamped directory, points `..data` at it atomically and
    /// removes the old one, as the kubelet's atomic writer does.
    fn update(&mut self, cert: &str, key: &str) {
        let root = self.dir.path();
        let old = format!("..2026_12_06_00_00_00.{}", self.generation);
        self.generation += 1;
        let new = format!("..2026_12_06_00_00_00.{}", self.generation);
        std::fs::create_dir(root.join(&new)).expect("timestamped directory");
        std::fs::write(root.join(&new).join("tls.crt"), cert).expect("tls.crt");
        std::fs::write(root.join(&new).join("tls.key"), key).expect("tls.key");
        std::os::unix::fs::symlink(&new, root.join("..data_tmp")).expect("..data_tmp");
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap ..data");
        if self.generation > 1 {
            std::fs::remove_dir_all(root.join(old)).expect("old directory");
        }
    }

    /// The mount's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }
}

/// A gateway serving TLS with `cert` and `key` in front of `registry`.
fn start(registry: &Registry, cert: &Path, key: &Path, args: &[&str]) -> Gateway {
    let mut builder = Gateway::builder(registry.base_url())
        .config(CONFIG)
        .arg("--tls-cert")
        .arg(cert.display().to_string())
        .arg("--tls-key")
        .arg(key.display().to_string());
    for arg in args {
        builder = builder.arg(*arg);
    }
    builder.start()
}

fn https_url(gateway: &Gateway, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", gateway.port)
}

/// A rustls client trusting only the certificates in the PEM file `ca`, offering `alpn`.
fn client_config(ca: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read_to_string(ca).expect("CA certificate");
    for der in testkit::pem_blocks(&pem) {
        roots
            .add(CertificateDer::from(der))
            .expect("CA certificate");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to `port` for `127.0.0.1`, verified against `ca`, speaking HTTP/1.1.
async fn connect(port: u16, ca: &Path) -> Result<TlsStream<TcpStream>, String> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    tokio_rustls::TlsConnector::from(client_config(ca, &[b"http/1.1"]))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))
}

/// The certificate (DER) a new connection to `port` is given, verified against `ca`.
pub async fn presented(port: u16, ca: &Path) -> Result<Vec<u8>, String> {
    let stream = connect(port, ca).await?;
    let (_, connection) = stream.get_ref();
    connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.as_ref().to_vec())
        .ok_or_else(|| "no certificate".to_owned())
}

/// Waits until new connections are given `expected`, verified against `ca`.
async fn served(gateway: &Gateway, ca: &Path, expected: &ServerCertificate, what: &str) {
    let der = expected.der();
    eventually_async(what, || {
        let der = der.clone();
        async move { presented(gateway.port, ca).await.ok() == Some(der) }
    })
    .await;
}

/// Sends `bytes` on `stream` and reads until the server closes: the status it answered.
async fn status_after(mut stream: TlsStream<TcpStream>, bytes: &[u8]) -> Option<u16> {
    // The server may stop reading, and close, before all of it is written.
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// A reqwest client trusting only `ca`: HTTP/2 or HTTP/1.1 by ALPN, connections kept.
fn https_client(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).expect("CA certificate");
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA certificate"))
        .build()
        .expect("client")
}

/// `curl -sS --cacert ca` with `args`: (exit code, stdout, stderr).
fn curl(ca: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(testkit::CURL.require());
    command.args(["-sS", "--max-time", "20"]);
    if let Some(ca) = ca {
        command.arg("--cacert").arg(ca);
    }
    let output = command.args(args).output().expect("run curl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn skopeo_pushes_and_pulls_over_tls_and_the_limits_hold() {
    // The server's certificate comes from an intermediate the gateway sends along; skopeo
    // trusts only the root.
    let root = CertificateAuthority::new("e2e-root");
    let intermediate = root.intermediate("e2e-intermediate");
    let files = PlainFiles::new(&intermediate.issue(KeyType::EcdsaP256));
    let registry = Registry::anonymous();
    let gateway = start(&registry, &files.cert(), &files.key(), &[]);

    let image = TestImage::new(&[200 * KB, 300 * KB], 1);
    let layout = testkit::OciLayout::with_image(&image, "v1");
    SkopeoCopy::to_registry(&layout, &gateway.host(), "project-1/app", "v1")
        .cert_dir(root.cert_dir())
        .run()
        .await
        .assert_success();
    assert_eq!(upstream_tags(&registry, "project-1/app").await, ["v1"]);

    // Over the image size limit: refused with the gateway's message, over TLS as over plain.
    let big = TestImage::new(&[600 * KB, 600 * KB], 2);
    let layout = testkit::OciLayout::with_image(&big, "big");
    let refused = SkopeoCopy::to_registry(&layout, &gateway.host(), "project-1/app", "big")
        .cert_dir(root.cert_dir())
        .run()
        .await;
    refused.assert_failure();
    let measured = big.layer_total() + big.config().size();
    assert!(
        refused.stderr.contains(&format!(
            "denied: image size 1.2 MiB ({measured} bytes) exceeds the limit of 1 MiB for repository project-1/app (rule 1: ^project-1/.*)"
        )),
        "{}",
        refused.stderr
    );
    assert_eq!(upstream_tags(&registry, "project-1/app").await, ["v1"]);

    // Pulled back through the gateway: the same bytes, served by hyper (no read relay on TLS).
    let out = tempfile::tempdir().expect("directory");
    SkopeoCopy::new(
        format!("docker://{}/project-1/app:v1", gateway.host()),
        format!("dir:{}", out.path().display()),
    )
    .cert_dir(root.cert_dir())
    .run()
    .await
    .assert_success();
    for layer in image.layers() {
        let pulled = std::fs::read(out.path().join(layer.hex())).expect("pulled layer");
        assert_eq!(pulled, layer.data);
    }
    let metrics = gateway.metrics();
    assert!(
        !metrics.contains("registry_gateway_read_relay_body_bytes_total{"),
        "{metrics}"
    );
    assert!(
        gateway.logs().contains("tls=true read_relay=false"),
        "{}",
        gateway.logs()
    );
}

#[tokio::test]
async fn podman_pushes_over_tls_and_the_tag_limit_holds() {
    let ca = CertificateAuthority::new("e2e-podman");
    let files = PlainFiles::new(&ca.issue(KeyType::Rsa2048Pkcs1));
    let registry = Registry::anonymous();
    let gateway = start(&registry, &files.cert(), &files.key(), &[]);
    let source = format!("{}/source/app:v1", registry.host());
    registry
        .push(&TestImage::new(&[100 * KB], 3), "source/app", "v1")
        .await;

    testkit::pull_and_push_verified(
        testkit::PODMAN,
        &source,
        &format!("{}/podman/app:v1", gateway.host()),
        ca.cert_dir(),
    )
    .await
    .assert_success();
    assert_eq!(upstream_tags(&registry, "podman/app").await, ["v1"]);

    let second = testkit::pull_and_push_verified(
        testkit::PODMAN,
        &source,
        &format!("{}/podman/app:v2", gateway.host()),
        ca.cert_dir(),
    )
    .await;
    second.assert_failure();
    assert!(
        second.stderr.contains(
            "tag count 2 would exceed the limit of 1 for repository podman/app (rule 2: ^podman/.*)"
        ),
        "{}",
        second.stderr
    );
    assert_eq!(upstream_tags(&registry, "podman/app").await, ["v1"]);
}

#[tokio::test]
async fn curl_speaks_http2_or_http1_as_alpn_chose() {
    let ca = CertificateAuthority::new("e2e-curl");
    let files = PlainFiles::new(&ca.issue(KeyType::EcdsaP256Sec1));
    let registry = Registry::anonymous();
    let gateway = start(&registry, &files.cert(), &files.key(), &[]);
    let ca = ca.cert_path();
    let write_out = ["-o", "/dev/null", "-w", "%{http_version} %{response_code}"];
    for (flag, url, expected) in [
        ("--http2", https_url(&gateway, "/v2/"), "2 200"),
        ("--http1.1", https_url(&gateway, "/v2/"), "1.1 200"),
        // The certificate names localhost too.
        (
            "--http2",
            format!("https://localhost:{}/v2/", gateway.port),
            "2 200",
        ),
    ] {
        let (code, out, err) = curl(Some(ca), &[&[flag, &url][..], &write_out].concat());
        assert_eq!(
            (code, out.as_str()),
            (0, expected),
            "curl {flag} {url}: {err}"
        );
    }
}

#[tokio::test]
async fn a_secret_mount_swap_rotates_the_certificate_for_new_connections() {
    let (first_ca, second_ca) = (
        CertificateAuthority::new("e2e-rotation-1"),
        CertificateAuthority::new("e2e-rotation-2"),
    );
    let first = first_ca.issue(KeyType::EcdsaP256);
    let mut mount = SecretMount::new(&first);
    let registry = Registry::anonymous();
    let mut gateway = start(&registry, &mount.cert(), &mount.key(), &[]);
    assert_eq!(
        presented(gateway.port, first_ca.cert_path()).await,
        Ok(first.der())
    );

    // An HTTP/2 connection opened before the rotation, by a client that trusts only the first
    // authority.
    let old_client = https_client(first_ca.cert_path());
    let answer = old_client
        .get(https_url(&gateway, "/v2/"))
        .send()
        .await
        .expect("GET /v2/");
    assert_eq!(
        (answer.status().as_u16(), answer.version()),
        (200, http::Version::HTTP_2)
    );

    // cert-manager renews: the Secret now holds a certificate of another authority.
    let second = second_ca.issue(KeyType::Rsa2048Pkcs1);
    mount.update(&second.chain_pem, &second.key_pem);
    served(
        &gateway,
        second_ca.cert_path(),
        &second,
        "the rotated certificate served",
    )
    .await;
    assert!(presented(gateway.port, first_ca.cert_path()).await.is_err());
    assert_eq!(gateway.metric(SUCCESSES), 2.0);
    assert_eq!(gateway.metric(FAILURES), 0.0);
    // The process went on, and so did the connection opened before.
    assert!(gateway.wait_exit(Duration::from_millis(10)).is_none());
    let answer = old_client
        .get(https_url(&gateway, "/v2/"))
        .send()
        .await
        .expect("GET /v2/ on the connection opened before the rotation");
    assert_eq!(answer.status(), 200);

    // A Secret whose key is not the certificate's: refused, the last good pair stays.
    let stray = second_ca.issue(KeyType::Rsa2048Pkcs1);
    mount.update(&second.chain_pem, &stray.key_pem);
    eventually("the mismatched pair refused", || {
        gateway.metric(FAILURES) == 1.0
    })
    .await;
    assert_eq!(gateway.metric(LAST_OK), 0.0);
    assert_eq!(
        presented(gateway.port, second_ca.cert_path()).await,
        Ok(second.der())
    );
    let logs = gateway.logs();
    assert!(
        logs.contains("TLS reload refused; the last good certificate stays in use")
            && logs.contains("does not belong to the certificate in"),
        "{logs}"
    );

    // A good pair again.
    let third = first_ca.issue(KeyType::Ed25519);
    mount.update(&third.chain_pem, &third.key_pem);
    served(
        &gateway,
        first_ca.cert_path(),
        &third,
        "the third certificate served",
    )
    .await;
    assert_eq!(gateway.metric(LAST_OK), 1.0);
    assert_eq!(gateway.metric(SUCCESSES), 3.0);
}

#[tokio::test]
async fn a_certificate_rewritten_in_place_is_served_after_the_next_poll() {
    let ca = CertificateAuthority::new("e2e-in-place");
    let first = ca.issue(KeyType::Rsa2048);
    let files = PlainFiles::new(&first);
    let registry = Registry::anonymous();
    let gateway = start(&registry, &files.cert(), &files.key(), &[]);
    assert_eq!(
        presented(gateway.port, ca.cert_path()).await,
        Ok(first.der())
    );

    // Rewritten one file after the other: a poll between the two writes sees a pair that does
    // not match, and waits for the next one rather than refusing it.
    let second = ca.issue(KeyType::EcdsaP256);
    std::fs::write(files.cert(), &second.chain_pem).expect("rewrite tls.crt");
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::fs::write(files.key(), &second.key_pem).expect("rewrite tls.key");
    served(
        &gateway,
        ca.cert_path(),
        &second,
        "the rewritten certificate served",
    )
    .await;
    assert_eq!(gateway.metric(FAILURES), 0.0);
    assert_eq!(gateway.metric(LAST_OK), 1.0);
}

#[tokio::test]
async fn sighup_reloads_the_certificate_at_once() {
    let ca = CertificateAuthority::new("e2e-sighup");
    let first = ca.issue(KeyType::EcdsaP256);
    let files = PlainFiles::new(&first);
    let registry = Registry::anonymous();
    let gateway = start(
        &registry,
        &files.cert(),
        &files.key(),
        &["--reload-interval", "1h"],
    );
    let second = ca.issue(KeyType::EcdsaP256);
    second.write(&files.cert(), &files.key());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        presented(gateway.port, ca.cert_path()).await,
        Ok(first.der()),
        "reloaded before SIGHUP with an interval of 1h"
    );
    gateway.signal("HUP");
    served(
        &gateway,
        ca.cert_path(),
        &second,
        "the certificate reloaded on SIGHUP",
    )
    .await;
}

#[tokio::test]
async fn clients_that_do_not_trust_the_certificate_are_refused() {
    let (ca, other) = (
        CertificateAuthority::new("e2e-trusted"),
        CertificateAuthority::new("e2e-other"),
    );
    let files = PlainFiles::new(&ca.issue(KeyType::EcdsaP256));
    let registry = Registry::anonymous();
    let gateway = start(&registry, &files.cert(), &files.key(), &[]);
    let url = https_url(&gateway, "/v2/");

    // curl with the system's roots only, then with another authority.
    let (code, _, err) = curl(None, &[&url]);
    assert_eq!(code, 60, "curl without the CA: {err}");
    let (code, _, err) = curl(Some(other.cert_path()), &[&url]);
    assert_eq!(code, 60, "curl trusting another CA: {err}");
    // skopeo trusting another authority.
    let layout = testkit::OciLayout::with_image(&TestImage::new(&[KB], 4), "v1");
    let refused = SkopeoCopy::to_registry(&layout, &gateway.host(), "project-1/app", "v1")
        .cert_dir(other.cert_dir())
        .run()
        .await;
    refused.assert_failure();
    assert!(
        refused
            .stderr
            .contains("certificate signed by unknown authority"),
        "{}",
        refused.stderr
    );
    // A rustls client trusting another authority.
    let err = presented(gateway.port, other.cert_path())
        .await
        .expect_err("verified against another CA");
    assert!(err.contains("UnknownIssuer"), "{err}");
    // Plain HTTP gets no HTTP answer.
    assert_ne!(
        get(gateway.port, "/v2/").map(|(status, _)| status),
        Some(200)
    );

    assert!(upstream_tags(&registry, "project-1/app").await.is_empty());
    eventually("refused handshakes counted", || {
        gateway.metric(r#"registry_gateway_tls_handshake_failures_total{reason="alert"}"#) >= 3.0
            && gateway.metric(r#"registry_gateway_tls_handshake_failures_total{reason="protocol"}"#)
                >= 1.0
    })
    .await;
    // The trusted client is served.
    assert_eq!(curl(Some(ca.cert_path()), &["-o", "/dev/null", &url]).0, 0);
}

#[tokio::test]
async fn tls_connections_keep_the_bounds_of_the_plain_listener() {
    let ca = CertificateAuthority::new("e2e-bounds");
    let files = PlainFiles::new(&ca.issue(KeyType::EcdsaP256));
    let registry = Registry::anonymous();
    let gateway = start(
        &registry,
        &files.cert(),
        &files.key(),
        &["--header-read-timeout", "8s", "--max-connections", "8"],
    );
    let ca = ca.cert_path();

    // Request heads: one of exactly the bound is served, an unfinished one past it gets 431.
    let mut head = unfinished_head("/v2/", BOUND - 4);
    head.extend_from_slice(b"\r\n\r\n");
    let stream = connect(gateway.port, ca).await.expect("TLS");
    assert_eq!(
        status_after(stream, &head).await,
        Some(200),
        "a head of {BOUND} bytes"
    );
    let unfinished = unfinished_head("/v2/", 4 * BOUND);
    let stream = connect(gateway.port, ca).await.expect("TLS");
    assert_eq!(
        status_after(stream, &unfinished).await,
        Some(431),
        "an unfinished head"
    );
    // HTTP/2, by ALPN: the header list is bounded by the same flag.
    let answer = https_client(ca)
        .get(https_url(&gateway, "/v2/"))
        .header("x-pad", "a".repeat(2 * BOUND))
        .send()
        .await
        .expect("HTTP/2 answer");
    assert_eq!(
        (answer.version(), answer.status().as_u16()),
        (http::Version::HTTP_2, 431)
    );

    // Silent connections (TCP only, or the start of a ClientHello) do not keep an honest
    // client waiting: with all 8 slots taken, the one idle longest is shed.
    let mut silent = Vec::new();
    for index in 0..8 {
        let mut stream = TcpStream::connect(("127.0.0.1", gateway.port))
            .await
            .expect("connect");
        if index % 2 == 1 {
            // A handshake record header announcing 512 bytes, and one of them.
            stream
                .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                .await
                .expect("write");
        }
        silent.push(stream);
    }
    let started = Instant::now();
    assert_eq!(presented(gateway.port, ca).await.map(|_| ()), Ok(()));
    // Without shedding, the handshake would wait for a silent connection's 8 s to pass.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a handshake with 8 silent connections open took {:?}",
        started.elapsed()
    );
    assert!(
        gateway.metric(
            r#"registry_gateway_connections_shed_total{listener="proxy",reason="capacity"}"#
        ) >= 1.0,
        "{}",
        gateway.metrics()
    );

    // A silent client is closed once --header-read-timeout (8 s) passes without a handshake.
    drop(silent);
    for bytes in [&[][..], &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01][..]] {
        let mut stream = TcpStream::connect(("127.0.0.1", gateway.port))
            .await
            .expect("connect");
        stream.write_all(bytes).await.expect("write");
        let started = Instant::now();
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(24), stream.read_to_end(&mut rest)).await;
        let took = started.elapsed();
        assert!(
            closed.is_ok(),
            "a silent client ({} bytes) still open after 24 s",
            bytes.len()
        );
        assert!(
            took >= Duration::from_secs(7),
            "a silent client ({} bytes) closed after {took:?}, before the timeout",
            bytes.len()
        );
    }
    assert!(
        gateway.metric(r#"registry_gateway_tls_handshake_failures_total{reason="timeout"}"#) >= 2.0,
        "{}",
        gateway.metrics()
    );
}

#[test]
fn a_certificate_without_its_key_or_a_bad_pair_is_refused_at_start() {
    let ca = CertificateAuthority::new("e2e-start");
    let (server, other) = (ca.issue(KeyType::EcdsaP256), ca.issue(KeyType::EcdsaP256));
    let files = PlainFiles::new(&server);
    let stray = tempfile::tempdir().expect("directory");
    let stray_key = stray.path().join("stray.key");
    std::fs::write(&stray_key, &other.key_pem).expect("stray key");
    let config = files.dir.path().join("limits.yaml");
    std::fs::write(&config, "").expect("config");
    let (cert, key) = (files.cert(), files.key());
    let serve = |args: &[&str], key_variable: Option<&Path>| {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--config"])
            .arg(&config)
            .args([
                "--upstream",
                "http://127.0.0.1:9",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--admin-listen", "127.0.0.1:0"])
            .args(args);
        if let Some(key) = key_variable {
            command.env("REGISTRY_GATEWAY_TLS_KEY", key);
        }
        let output = command.output().expect("run registry-gateway");
        assert!(
            !output.status.success(),
            "started with {args:?} {key_variable:?}"
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let cert = cert.display().to_string();
    let stray = stray_key.display().to_string();
    let missing = Path::new("/nonexistent/tls.key");
    for (args, key_variable, expected) in [
        (
            vec!["--tls-cert", &cert],
            None,
            "error: --tls-cert needs --tls-key: give the certificate and its key both".to_owned(),
        ),
        (
            vec![],
            Some(key.as_path()),
            "error: --tls-key needs --tls-cert".to_owned(),
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &stray],
            None,
            format!(
                "error: the private key in {stray} does not belong to the certificate in {cert}"
            ),
        ),
        (
            vec!["--tls-cert", &cert],
            Some(missing),
            "error: cannot read /nonexistent/tls.key".to_owned(),
        ),
    ] {
        let err = serve(&args, key_variable);
        assert!(
            err.contains(&expected),
            "{args:?} {key_variable:?}:\n{err}\nexpected: {expected}"
        );
    }
}

/// What one TLS connection holding a head may cost besides the head's bytes: the plain
/// connection's [`PER_CONNECTION`] and 16 KiB of TLS state (rustls's record buffers), the
/// figure docs/security.md states.
const TLS_PER_CONNECTION: u64 = PER_CONNECTION + 16 * KB;

#[tokio::test]
async fn tls_connections_holding_heads_stay_within_the_memory_bound() {
    let count = 1000;
    let ca = CertificateAuthority::new("e2e-memory");
    let files = PlainFiles::new(&ca.issue(KeyType::EcdsaP256));
    let registry = Registry::anonymous();
    let gateway = start(&registry, &files.cert(), &files.key(), &[]);
    let pid = gateway.pid();
    let resting = settled(pid).await;
    let limit = allowed(resting, count, TLS_PER_CONNECTION);
    let head = unfinished_head("/v2/", BOUND - 1);
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = connect(gateway.port, ca.cert_path()).await.expect("TLS");
        stream.write_all(&head).await.expect("write");
        stream.flush().await.expect("flush");
        held.push(stream);
    }
    let under = settled(pid).await;
    eprintln!(
        "{count} TLS connections holding {} bytes of a head: VmRSS {} MiB (resting {} MiB, allowed {} MiB), {} KiB per connection",
        BOUND - 1,
        under / MIB,
        resting / MIB,
        limit / MIB,
        (under - resting) / count as u64 / KB
    );
    assert!(
        under <= limit,
        "{count} TLS heads took the gateway from {resting} to {under} bytes"
    );
    let more = vec![b'a'; 3 * BOUND + 1];
    let tasks: Vec<_> = held
        .into_iter()
        .map(|stream| {
            let more = more.clone();
            tokio::spawn(async move { status_after(stream, &more).await })
        })
        .collect();
    let mut refused = 0;
    for task in tasks {
        refused += usize::from(task.await.expect("task") == Some(431));
    }
    let (_, peak) = memory(pid);
    assert_eq!(refused, count, "heads past the bound answered 431");
    assert!(
        peak <= limit,
        "{count} TLS heads past the bound: a peak of {peak} bytes (resting {resting})"
    );
}

/// An address of this host outside 127.0.0.0/8, added to the loopback interface for one test
/// and removed after it: Docker treats every 127.0.0.0/8 registry as insecure (it skips
/// certificate checks there), so only another address shows that it verifies the CA.
struct HostAddress(&'static str);

impl HostAddress {
    fn add(address: &'static str) -> Self {
        let _ = std::process::Command::new("ip")
            .args(["addr", "del", &format!("{address}/32"), "dev", "lo"])
            .output();
        let added = std::process::Command::new("ip")
            .args(["addr", "add", &format!("{address}/32"), "dev", "lo"])
            .output()
            .expect("ip (iproute2) adds an address; the test runs as root");
        assert!(
            added.status.success(),
            "ip addr add {address}/32 dev lo: {}",
            String::from_utf8_lossy(&added.stderr)
        );
        Self(address)
    }
}

impl Drop for HostAddress {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["addr", "del", &format!("{}/32", self.0), "dev", "lo"])
            .output();
    }
}

/// `/etc/docker/certs.d/<host:port>/ca.crt`, where the Docker engine finds the authorities it
/// trusts for one registry; removed with the guard.
struct DockerTrust(PathBuf);

impl DockerTrust {
    fn new(host: &str) -> Self {
        let dir = Path::new("/etc/docker/certs.d").join(host);
        std::fs::create_dir_all(&dir).expect("/etc/docker/certs.d/<host:port>");
        Self(dir)
    }

    fn trust(&self, ca: &CertificateAuthority) {
        std::fs::copy(ca.cert_path(), self.0.join("ca.crt")).expect("ca.crt");
    }
}

impl Drop for DockerTrust {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Docker CLI pushes through the TLS listener trusting a test CA (its engine's
/// `certs.d`), sees the gateway's refusals, and meets a rotated certificate: refused while it
/// trusts only the old authority, accepted once it trusts the new one.
#[tokio::test]
async fn docker_pushes_over_tls_trusting_the_test_ca_across_a_rotation() {
    const ADDRESS: &str = "192.0.2.77";
    let _address = HostAddress::add(ADDRESS);
    let (first_ca, second_ca) = (
        CertificateAuthority::new("e2e-docker-1"),
        CertificateAuthority::new("e2e-docker-2"),
    );
    let mut mount = SecretMount::new(&first_ca.issue_for(KeyType::EcdsaP256, &[ADDRESS]));
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url())
        .config(CONFIG)
        .listen_ip("0.0.0.0")
        .arg("--tls-cert")
        .arg(mount.cert().display().to_string())
        .arg("--tls-key")
        .arg(mount.key().display().to_string())
        .start();
    let host = format!("{ADDRESS}:{}", gateway.port);
    let trust = DockerTrust::new(&host);
    trust.trust(&first_ca);
    let docker = testkit::DockerDaemon::start();
    let layer = |size: usize, seed: u64| {
        testkit::tar_file(
            &format!("data-{seed}.bin"),
            &testkit::pseudo_random_bytes(size, seed),
        )
    };

    let allowed = format!("{host}/project-1/docker:v1");
    docker.import(&allowed, &layer(300_000, 1)).await;
    docker.run(&["push", &allowed]).await.assert_success();
    assert_eq!(upstream_tags(&registry, "project-1/docker").await, ["v1"]);

    let too_big = format!("{host}/project-1/docker:big");
    docker.import(&too_big, &layer(1_500_000, 2)).await;
    let refused = docker.run(&["push", &too_big]).await;
    refused.assert_failure();
    let printed = format!("{}{}", refused.stdout, refused.stderr);
    assert!(
        printed.contains("denied: layer upload") && printed.contains("1 MiB"),
        "{printed}"
    );

    // cert-manager renews with another authority: the engine, trusting only the first, refuses
    // the gateway's new certificate; trusting the second, it pushes again.
    let second = second_ca.issue_for(KeyType::Rsa2048, &[ADDRESS]);
    mount.update(&second.chain_pem, &second.key_pem);
    served(
        &gateway,
        second_ca.cert_path(),
        &second,
        "the rotated certificate",
    )
    .await;
    let next = format!("{host}/project-1/docker:v2");
    docker.import(&next, &layer(300_000, 3)).await;
    let untrusted = docker.run(&["push", &next]).await;
    untrusted.assert_failure();
    let printed = format!("{}{}", untrusted.stdout, untrusted.stderr);
    assert!(printed.contains("certificate"), "{printed}");
    trust.trust(&second_ca);
    docker.run(&["push", &next]).await.assert_success();
    assert_eq!(
        upstream_tags(&registry, "project-1/docker").await,
        ["v1", "v2"]
    );
}
