//! The listeners against clients that hold connections: request heads bounded on both
//! listeners (the read relay and hyper alike), and connection slots that silent sockets cannot
//! keep from honest clients.
//!
//! Memory is read from `/proc/<pid>/status` of the gateway (`VmRSS`, `VmHWM`).

use std::time::{Duration, Instant};

use testkit::{
    Blob, RawPusher, Registry, SkopeoCopy, TestImage, pseudo_random_bytes, sha256_digest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::rawhttp::{self, RawConn};
use crate::support::Gateway;

pub const KIB: usize = 1024;
pub const MIB: u64 = 1024 * 1024;
/// The default `--max-header-bytes`.
pub const BOUND: usize = 64 * KIB;
/// What one connection holding a head may cost besides the head's bytes (task, socket,
/// table entry, allocator slack): the figure docs/security.md states.
pub const PER_CONNECTION: u64 = 16 * KIB as u64;
/// Room for the gateway's own growth while a test runs (allocator arenas, runtime, metrics):
/// part of the figure docs/security.md states.
const SLACK: u64 = 16 * MIB;

fn start(args: &[&str]) -> (Registry, Gateway) {
    let registry = Registry::anonymous();
    let mut builder = Gateway::builder(registry.base_url()).config("");
    for arg in args {
        builder = builder.arg(*arg);
    }
    (registry, builder.start())
}

/// `VmRSS` and `VmHWM` of a process, in bytes.
pub fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The memory a gateway may use while `connections` connections each hold a head, as
/// docs/security.md states it: its resting size, [`SLACK`], and the head bound plus
/// `per_connection` ([`PER_CONNECTION`] over plain TCP) per connection.
pub fn allowed(resting: u64, connections: usize, per_connection: u64) -> u64 {
    resting + SLACK + connections as u64 * (BOUND as u64 + per_connection)
}

/// Waits until the gateway's resident memory stops growing (it has read what was sent).
pub async fn settled(pid: u32) -> u64 {
    let mut last = memory(pid).0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = memory(pid).0;
        if now.abs_diff(last) < MIB {
            return now;
        }
        last = now;
    }
    last
}

/// The first `len` bytes of a request head that never ends: one long header.
pub fn unfinished_head(path: &str, len: usize) -> Vec<u8> {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ").into_bytes();
    head.resize(len, b'a');
    head
}

/// Opens `count` connections to `port`, each having sent `bytes`.
async fn hold(port: u16, count: usize, bytes: &[u8]) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        if !bytes.is_empty() {
            stream.write_all(bytes).await.expect("write");
        }
        held.push(stream);
    }
    held
}

/// Sends `more` on `stream` and reads until the server closes: the status it answered.
async fn status_after(mut stream: TcpStream, more: Vec<u8>) -> Option<u16> {
    // The server may stop reading, and close, before all of it is written.
    let _ = stream.write_all(&more).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    let _ = read.await;
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test]
async fn request_heads_over_the_bound_are_answered_431_on_both_listeners() {
    let (_registry, gateway) = start(&[]);
    for (listener, port, path) in [
        ("proxy", gateway.port, "/v2/"),
        ("admin", gateway.admin_port, "/healthz"),
    ] {
        // A whole head just within the bound is served.
        let mut head = unfinished_head(path, BOUND - 4);
        head.extend_from_slice(b"\r\n\r\n");
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        assert_eq!(
            status_after(stream, head).await,
            Some(200),
            "{listener}: a head of exactly {BOUND} bytes\n{}",
            gateway.logs()
        );
        // Four times the bound, never ended: 431 once the bound is read, then closed.
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let started = Instant::now();
        let status = status_after(stream, unfinished_head(path, 4 * BOUND)).await;
        assert_eq!(
            status,
            Some(431),
            "{listener}: an unfinished head of {} bytes got {status:?} after {:?}",
            4 * BOUND,
            started.elapsed()
        );
    }
    // HTTP/2: the header list is bounded by the same flag (the stream gets 431).
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let answer = client
        .get(gateway.base_url().join("v2/").expect("url"))
        .header("x-pad", "a".repeat(2 * BOUND))
        .send()
        .await;
    match answer {
        Ok(answer) => {
            assert_eq!(answer.version(), http::Version::HTTP_2);
            assert_eq!(
                answer.status(),
                431,
                "HTTP/2 header list of {} bytes",
                2 * BOUND
            );
        }
        Err(err) => panic!("HTTP/2 request with a large header list: {err:?}"),
    }
}

/// Holds `count` heads just under the bound on `port`, checks memory, then takes each over
/// the bound and checks that every one is answered 431 within the same memory.
async fn heads_stay_within_memory(
    gateway: &Gateway,
    listener: &str,
    port: u16,
    path: &str,
    count: usize,
) {
    let pid = gateway.pid();
    let resting = settled(pid).await;
    let started = Instant::now();
    let held = hold(port, count, &unfinished_head(path, BOUND - 1)).await;
    let under = settled(pid).await;
    eprintln!(
        "{listener}: {count} heads of {} bytes held: VmRSS {} MiB (resting {} MiB, allowed {} MiB), opened in {:?}",
        BOUND - 1,
        under / MIB,
        resting / MIB,
        allowed(resting, count, PER_CONNECTION) / MIB,
        started.elapsed()
    );
    assert!(
        under <= allowed(resting, count, PER_CONNECTION),
        "{listener}: {count} heads just under the bound took the gateway from {resting} to {under} bytes"
    );
    let more = vec![b'a'; 3 * BOUND + 1];
    let answers = futures_join(held.into_iter().map(|s| status_after(s, more.clone()))).await;
    let refused = answers.iter().filter(|s| **s == Some(431)).count();
    let (rss, peak) = memory(pid);
    eprintln!(
        "{listener}: the same {count} heads taken over the bound: {refused} answered 431; VmRSS {} MiB, VmHWM {} MiB",
        rss / MIB,
        peak / MIB
    );
    assert!(
        peak <= allowed(resting, count, PER_CONNECTION),
        "{listener}: {count} heads over the bound took the gateway to a peak of {peak} bytes (resting {resting})"
    );
    assert_eq!(
        refused,
        count,
        "{listener}: answers {:?}",
        &answers[..answers.len().min(20)]
    );
}

/// Runs the futures at once and collects their outputs in order.
async fn futures_join<F: std::future::Future<Output = T> + Send + 'static, T: Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<T> {
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn held_heads_stay_within_the_memory_bound_on_both_listeners() {
    // One gateway per listener, so that each peak is its own.
    let (_registry, gateway) = start(&[]);
    heads_stay_within_memory(&gateway, "proxy", gateway.port, "/v2/", 1000).await;
    let (_registry, gateway) = start(&[]);
    // The admin listener holds at most its 64 connections.
    heads_stay_within_memory(&gateway, "admin", gateway.admin_port, "/metrics", 64).await;
}

/// The figure docs/security.md states, with every connection slot of the proxy taken:
/// `cargo test -p gateway-bin --test e2e listener::every_slot -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement: 4096 connections and 1.3 GB over loopback"]
async fn every_slot_holding_a_head_stays_within_the_memory_bound() {
    for args in [&[][..], &["--no-read-relay"][..]] {
        eprintln!("serve {args:?}");
        let (_registry, gateway) = start(args);
        heads_stay_within_memory(&gateway, "proxy", gateway.port, "/v2/", 4096).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Connection slots.
// ---------------------------------------------------------------------------------------------

/// Opens `count` connections that never send a request: most send nothing, every fourth the
/// start of a head.
async fn flood(port: u16, count: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(count);
    for index in 0..count {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        if index % 4 == 3 {
            stream
                .write_all(b"GET /v2/ HTTP/1.1\r\n")
                .await
                .expect("write");
        }
        open.push(stream);
    }
    open
}

/// How long a silent connection keeps its slot in the flood tests (`--header-read-timeout`):
/// a gateway that did not shed would answer an honest client only after this.
const SILENT_HOLD: Duration = Duration::from_secs(120);

/// How long an honest client may wait in the flood tests: far below [`SILENT_HOLD`], far
/// above what accepting, shedding and answering take on a loaded machine (a shared CI runner
/// took 1 s, a laptop 10 ms). The bound tells shedding from waiting for a slot to free.
const HONEST_WAIT: Duration = Duration::from_secs(20);

/// The gateway for the flood tests: silent connections hold their slots for [`SILENT_HOLD`].
fn start_for_flood(args: &[&str]) -> (Registry, Gateway) {
    let hold = format!("{}s", SILENT_HOLD.as_secs());
    let mut all = vec!["--header-read-timeout", hold.as_str()];
    all.extend_from_slice(args);
    start(&all)
}

/// An honest `GET path` on a new connection: its status (`None` without an answer within
/// [`HONEST_WAIT`]) and how long it took.
async fn honest_get(port: u16, path: &str) -> (Option<u16>, Duration) {
    let started = Instant::now();
    let answer =
        tokio::time::timeout(HONEST_WAIT, rawhttp::send(port, "GET", path, &[], b"")).await;
    (answer.ok().map(|a| a.status), started.elapsed())
}

/// A download in flight: the answer's first bytes read, the rest left waiting. The client's
/// receive buffer is small, so the gateway is still sending when the flood comes.
async fn start_download(port: u16, target: &str) -> (TcpStream, Vec<u8>) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(64 * KIB as u32)
        .expect("SO_RCVBUF");
    let mut stream = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("connect");
    let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut first = vec![0u8; 64 * KIB];
    let n = stream.read(&mut first).await.expect("read");
    first.truncate(n);
    (stream, first)
}

#[tokio::test]
async fn silent_connections_do_not_keep_honest_clients_waiting() {
    let (registry, gateway) = start_for_flood(&[]);
    let blob = Blob::new(pseudo_random_bytes(16 << 20, 7));
    let stored = RawPusher::for_registry(&registry, "flood/pull")
        .upload_blob("flood/pull", &blob)
        .await;
    assert_eq!(stored.status, 201);
    let pulled = TestImage::new(&[1 << 20, 2 << 20], 8);
    registry.push(&pulled, "flood/image", "v1").await;

    // Requests in flight when the flood comes: a download read slowly, an upload half sent.
    let target = format!("/v2/flood/pull/blobs/{}", blob.digest);
    let (mut download, mut downloaded) = start_download(gateway.port, &target).await;
    let session = gateway
        .start_upload(&RawPusher::new(gateway.base_url()), "flood/push")
        .await;
    let data = pseudo_random_bytes(4 << 20, 9);
    let digest = sha256_digest(&data);
    let mut upload = RawConn::connect(gateway.port).await;
    let length = data.len().to_string();
    upload
        .write_head(
            "PUT",
            &format!(
                "{}?{}&digest={digest}",
                session.path(),
                session.query().unwrap_or("")
            ),
            &[
                ("Host", "127.0.0.1"),
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", &length),
            ],
        )
        .await
        .expect("upload head");
    let (first, rest) = data.split_at(data.len() / 2);
    upload.write(first).await.expect("first half");
    // And a push and a pull by skopeo while the flood comes.
    let host = gateway.host();
    let pushed = TestImage::new(&[4 << 20, 4 << 20, 4 << 20], 10);
    let push = tokio::spawn(async move {
        testkit::skopeo_push(&host, &pushed, "flood/pushed", "v1", &[], None).await
    });
    let layout = tempfile::tempdir().expect("directory");
    let pull = tokio::spawn(
        SkopeoCopy::new(
            format!("docker://{}/flood/image:v1", gateway.host()),
            format!("oci:{}:v1", layout.path().display()),
        )
        .run(),
    );

    let count = 4200;
    let started = Instant::now();
    let silent = flood(gateway.port, count).await;
    let opened = started.elapsed();
    let (status, took) = honest_get(gateway.port, "/v2/").await;
    eprintln!(
        "GET /v2/ with {count} silent connections opened (in {opened:?}) against --max-connections 4096: {status:?} in {took:?}"
    );
    assert_eq!(
        status,
        Some(200),
        "GET /v2/ got no answer within {HONEST_WAIT:?} with {count} silent connections open"
    );

    // Nothing in flight was shed.
    upload.write(rest).await.expect("second half");
    let answer = upload
        .read_answer(false, Duration::from_secs(30))
        .await
        .expect("upload answer");
    assert_eq!(answer.status, 201, "{}", answer.describe());
    download
        .read_to_end(&mut downloaded)
        .await
        .expect("rest of the download");
    let body_at = downloaded
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("answer head")
        + 4;
    assert_eq!(sha256_digest(&downloaded[body_at..]), blob.digest);
    push.await.expect("push task").assert_success();
    pull.await.expect("pull task").assert_success();
    let shed = gateway
        .metric(r#"registry_gateway_connections_shed_total{listener="proxy",reason="capacity"}"#);
    assert!(shed >= (count + 1 - 4096) as f64, "{}", gateway.metrics());
    drop(silent);
}

#[tokio::test]
async fn the_admin_listener_sheds_silent_connections_too() {
    let (_registry, gateway) = start_for_flood(&[]);
    let silent = flood(gateway.admin_port, 100).await;
    let (status, took) = honest_get(gateway.admin_port, "/healthz").await;
    eprintln!(
        "GET /healthz with 100 silent connections open (admin cap 64): {status:?} in {took:?}"
    );
    assert_eq!(
        status,
        Some(200),
        "GET /healthz got no answer within {HONEST_WAIT:?} (took {took:?})"
    );
    let shed = gateway
        .metric(r#"registry_gateway_connections_shed_total{listener="admin",reason="capacity"}"#);
    assert!(shed >= 37.0, "{}", gateway.metrics());
    drop(silent);
}

/// A manifest push whose body stalls after a few bytes: a request in flight.
async fn stalled_manifest_push(port: u16, index: usize) -> RawConn {
    let mut conn = RawConn::connect(port).await;
    conn.write_head(
        "PUT",
        &format!("/v2/cap/app/manifests/v{index}"),
        &[
            ("Host", "127.0.0.1"),
            ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
            ("Content-Length", "1000"),
        ],
    )
    .await
    .expect("head");
    conn.write(b"{\"schemaVersion\"")
        .await
        .expect("a few bytes");
    conn
}

#[tokio::test]
async fn a_source_at_its_cap_sheds_its_own_idle_connections_or_is_refused() {
    let (_registry, gateway) = start_for_flood(&["--max-connections-per-source", "8"]);
    let silent = flood(gateway.port, 8).await;
    let (status, took) = honest_get(gateway.port, "/v2/").await;
    assert_eq!(
        status,
        Some(200),
        "GET /v2/ after 8 silent connections: no answer within {HONEST_WAIT:?} (took {took:?})"
    );
    assert!(
        gateway.metric(
            r#"registry_gateway_connections_shed_total{listener="proxy",reason="per_source"}"#
        ) >= 1.0,
        "{}",
        gateway.metrics()
    );
    // Eight requests in flight take every connection the source may open: a ninth
    // connection is closed at once, and the requests are left alone.
    let mut busy = Vec::new();
    for index in 0..8 {
        busy.push(stalled_manifest_push(gateway.port, index).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ninth = RawConn::connect(gateway.port).await;
    let _ = ninth.write(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let closed = ninth.closed_within(Duration::from_secs(2)).await;
    assert_eq!(closed, Ok(Vec::new()), "a ninth connection was served");
    assert_eq!(
        gateway.metric(
            r#"registry_gateway_connections_refused_total{listener="proxy",reason="per_source"}"#
        ),
        1.0
    );
    for conn in &mut busy {
        assert!(
            conn.closed_within(Duration::from_millis(10)).await.is_err(),
            "a request in flight was answered or closed"
        );
    }
    drop((silent, busy));
}

#[test]
fn a_head_bound_under_8_kib_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("directory");
    let config = dir.path().join("limits.yaml");
    std::fs::write(&config, "").expect("config");
    let config = config.to_string_lossy().into_owned();
    let (ok, _, err) = crate::support::run(&[
        "serve",
        "--config",
        &config,
        "--upstream",
        "http://127.0.0.1:9",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--max-header-bytes",
        "4KiB",
    ]);
    assert!(!ok, "started with a head bound of 4 KiB");
    assert!(
        err.contains("--max-header-bytes (4.0 KiB, 4096 bytes) must be at least 8192 bytes"),
        "{err}"
    );
}
