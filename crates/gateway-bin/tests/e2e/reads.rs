//! The read relay: plain `GET`/`HEAD` requests relayed outside hyper, bodies spliced socket to
//! socket. Every answer is compared with the registry's own answer to the same request, and
//! every connection that turns from reads to a write must still be checked.

use std::time::Duration;

use testkit::{
    Blob, ManifestFormat, OCI_MANIFEST, RawPusher, Registry, TestImage, pseudo_random_bytes,
    sha256_digest,
};

use crate::rawhttp::{self, RawAnswer, RawConn};
use crate::support::Gateway;

const CONFIG: &str = r#"
max_image_size: "100MB"
tag_count_limit: "1000"
rules: |
  - path: ^project-1/.*
    limit:
      max_image_size: "1MB"
      tag_count_limit: "2"
"#;

const SPLICED: &str = r#"registry_gateway_read_relay_body_bytes_total{how="splice"}"#;
const COPIED: &str = r#"registry_gateway_read_relay_body_bytes_total{how="copy"}"#;
const LIMIT: Duration = Duration::from_secs(30);

fn start() -> (Registry, Gateway) {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url()).config(CONFIG).start();
    (registry, gateway)
}

/// A blob of `len` pseudo-random bytes stored directly in the registry under `repository`.
async fn stored_blob(registry: &Registry, repository: &str, len: usize, seed: u64) -> Blob {
    let blob = Blob::new(pseudo_random_bytes(len, seed));
    let pusher = RawPusher::for_registry(registry, repository);
    let answer = pusher.upload_blob(repository, &blob).await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
    blob
}

async fn get(port: u16, target: &str, headers: &[(&str, &str)]) -> RawAnswer {
    rawhttp::send(port, "GET", target, headers, b"").await
}

/// What the client sees of an answer, without the headers that differ between two answers
/// of the same content (`Date`, and `Connection` which belongs to each hop).
fn visible(answer: &RawAnswer) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut headers: Vec<(String, String)> = answer
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .filter(|(n, _)| !matches!(n.as_str(), "date" | "connection" | "keep-alive"))
        .collect();
    headers.sort();
    (answer.status, headers, answer.body.clone())
}

#[tokio::test]
async fn blob_downloads_are_spliced_and_byte_identical() {
    let (registry, gateway) = start();
    let blob = stored_blob(&registry, "pull/app", 3 * 1024 * 1024 + 17, 1).await;
    let target = format!("/v2/pull/app/blobs/{}", blob.digest);
    let pipes_before = open_pipes(gateway.pid());

    let through = get(gateway.port, &target, &[]).await;
    let direct = get(registry.port(), &target, &[]).await;
    assert_eq!(through.status, 200, "{}", through.describe());
    assert_eq!(sha256_digest(&through.body), blob.digest);
    assert_eq!(visible(&through), visible(&direct));
    // The client asked to close (rawhttp::send does): the answer says it will.
    assert_eq!(through.header("connection"), Some("close"));
    // All of it relayed, and all but what came with the answer's head spliced.
    let (spliced, copied) = (gateway.metric(SPLICED), gateway.metric(COPIED));
    assert_eq!(
        spliced + copied,
        blob.size() as f64,
        "{}",
        gateway.metrics()
    );
    assert!(
        spliced >= (3 * 1024 * 1024 - 64 * 1024) as f64,
        "{}",
        gateway.metrics()
    );

    // A range, as resumed pulls ask for it.
    let range = [("Range", "bytes=1000-2000999")];
    let through = get(gateway.port, &target, &range).await;
    let direct = get(registry.port(), &target, &range).await;
    assert_eq!(through.status, 206, "{}", through.describe());
    assert_eq!(through.body, blob.data[1000..2_001_000]);
    assert_eq!(visible(&through), visible(&direct));

    // HEAD: the length announced, no body, and the connection still usable.
    let mut conn = RawConn::connect(gateway.port).await;
    for _ in 0..2 {
        conn.write_head("HEAD", &target, &[("Host", "x")])
            .await
            .expect("write");
        let head = conn.read_answer(true, LIMIT).await.expect("HEAD answer");
        assert_eq!(head.status, 200);
        assert_eq!(
            head.header("content-length"),
            Some(blob.size().to_string().as_str())
        );
        assert!(head.body.is_empty());
    }
    conn.write_head("GET", &target, &[("Host", "x")])
        .await
        .expect("write");
    let after = conn
        .read_answer(false, LIMIT)
        .await
        .expect("GET after HEAD");
    assert_eq!(sha256_digest(&after.body), blob.digest);
    // The connection stays open, idle: the pipe of its spliced body is closed already.
    assert_eq!(open_pipes(gateway.pid()), pipes_before);
}

/// The pipes a process holds open.
fn open_pipes(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd directory")
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("pipe:"))
        .count()
}

#[tokio::test]
async fn chunked_answers_are_relayed_and_the_connection_reused() {
    let (registry, gateway) = start();
    // Enough tags for the registry to answer the listing in chunks.
    let image = TestImage::new(&[100], 2);
    let pusher = RawPusher::for_registry(&registry, "many/tags");
    let manifest = image.manifest_as(ManifestFormat::Oci, None);
    for blob in image.layers().iter().chain([image.config()]) {
        pusher.upload_blob("many/tags", blob).await;
    }
    for i in 0..300 {
        let answer = pusher
            .put_manifest(
                "many/tags",
                &format!("release-{i:04}"),
                OCI_MANIFEST,
                &manifest,
            )
            .await;
        assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
    }
    let direct = get(registry.port(), "/v2/many/tags/tags/list", &[]).await;
    assert_eq!(
        direct.header("transfer-encoding"),
        Some("chunked"),
        "the registry no longer answers this listing in chunks: {}",
        direct.describe()
    );

    let copied_before = gateway.metric(COPIED);
    let mut conn = RawConn::connect(gateway.port).await;
    for _ in 0..3 {
        conn.write_head("GET", "/v2/many/tags/tags/list", &[("Host", "x")])
            .await
            .expect("write");
        let through = conn.read_answer(false, LIMIT).await.expect("listing");
        assert_eq!(through.header("transfer-encoding"), Some("chunked"));
        assert_eq!(visible(&through), visible(&direct));
    }
    assert!(gateway.metric(COPIED) > copied_before + direct.body.len() as f64);
    // An HTTP/1.0 client cannot read chunks: it gets the listing decoded, and the connection
    // closes after it.
    let mut conn = RawConn::connect(gateway.port).await;
    conn.write(b"GET /v2/many/tags/tags/list HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .expect("write");
    let old_client = conn
        .read_answer(false, LIMIT)
        .await
        .expect("HTTP/1.0 listing");
    assert_eq!(old_client.status, 200);
    assert_eq!(old_client.header("transfer-encoding"), None);
    assert_eq!(old_client.body, direct.body);
    assert!(conn.closed_within(Duration::from_secs(5)).await.is_ok());
}

#[tokio::test]
async fn http10_clients_keep_alive_only_when_they_ask() {
    let (registry, gateway) = start();
    let blob = stored_blob(&registry, "pull/old", 300 * 1024, 6).await;
    let target = format!("/v2/pull/old/blobs/{}", blob.digest);
    // Keep-alive asked (as ApacheBench does): said in the answer, and the connection serves a
    // second request.
    let mut conn = RawConn::connect(gateway.port).await;
    for method in ["HEAD", "GET"] {
        let head = format!("{method} {target} HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        conn.write(head.as_bytes()).await.expect("write");
        let answer = conn
            .read_answer(method == "HEAD", LIMIT)
            .await
            .expect("answer");
        assert_eq!(answer.status, 200, "{method}");
        assert_eq!(answer.header("connection"), Some("keep-alive"), "{method}");
        if method == "GET" {
            assert_eq!(sha256_digest(&answer.body), blob.digest);
        }
    }
    // Not asked: the answer, then the end of the connection.
    let mut conn = RawConn::connect(gateway.port).await;
    conn.write(format!("GET {target} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let answer = conn.read_answer(false, LIMIT).await.expect("HTTP/1.0");
    assert_eq!(sha256_digest(&answer.body), blob.digest);
    assert!(conn.closed_within(Duration::from_secs(5)).await.is_ok());
    assert!(gateway.metric(SPLICED) > 0.0);
}

#[tokio::test]
async fn a_connection_that_turns_to_writes_is_checked_like_any_other() {
    let (registry, gateway) = start();
    let too_big = TestImage::new(&[600 * 1024, 600 * 1024], 3);
    let mut conn = RawConn::connect(gateway.port).await;
    // Reads first, pipelined in one write: both relayed, in order.
    conn.write(
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/project-1/app/tags/list HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .expect("write");
    let first = conn.read_answer(false, LIMIT).await.expect("/v2/");
    assert_eq!(first.status, 200);
    let second = conn.read_answer(false, LIMIT).await.expect("tags/list");
    assert_eq!(second.status, 404, "{}", second.describe());
    assert_eq!(second.error_code().as_deref(), Some("NAME_UNKNOWN"));

    // Then the blobs of an image over the limit go up the same connection's neighbours, and
    // its manifest is refused on this connection.
    let pusher = RawPusher::new(gateway.base_url());
    for blob in too_big.layers().iter().chain([too_big.config()]) {
        let answer = pusher.upload_blob("project-1/app", blob).await;
        assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
    }
    let manifest = too_big.manifest_as(ManifestFormat::Oci, None);
    let length = manifest.len().to_string();
    conn.write_head(
        "PUT",
        "/v2/project-1/app/manifests/v1",
        &[
            ("Host", "x"),
            ("Content-Type", OCI_MANIFEST),
            ("Content-Length", &length),
        ],
    )
    .await
    .expect("write");
    conn.write(&manifest).await.expect("write");
    let refused = conn.read_answer(false, LIMIT).await.expect("PUT answer");
    assert_eq!(refused.status, 403, "{}", refused.describe());
    assert_eq!(refused.error_code().as_deref(), Some("DENIED"));
    let listing = get(registry.port(), "/v2/project-1/app/tags/list", &[]).await;
    assert!(!listing.text().contains("v1"), "{}", listing.describe());

    // And reads still work on it, now served by hyper.
    conn.write_head("GET", "/v2/", &[("Host", "x")])
        .await
        .expect("write");
    assert_eq!(
        conn.read_answer(false, LIMIT).await.expect("/v2/").status,
        200
    );
}

#[tokio::test]
async fn reads_the_relay_leaves_to_hyper_are_answered_as_before() {
    let (registry, gateway) = start();
    let blob = stored_blob(&registry, "pull/odd", 200 * 1024, 4).await;
    let target = format!("/v2/pull/odd/blobs/{}", blob.digest);
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, Vec<u8>);
    let cases: Vec<Case<'_>> = vec![
        // A body on a GET: hyper reads it and the registry ignores it.
        (
            "body on GET",
            target.clone(),
            vec![("Content-Length", "5")],
            b"hello".to_vec(),
        ),
        (
            "absolute-form target",
            format!("http://elsewhere.example{target}"),
            vec![],
            vec![],
        ),
        (
            "Expect header",
            target.clone(),
            vec![("Expect", "100-continue")],
            vec![],
        ),
        (
            "encoded path",
            target.replace("pull/odd", "pull%2Fodd"),
            vec![],
            vec![],
        ),
    ];
    for (what, request_target, headers, body) in cases {
        let answer = rawhttp::send(gateway.port, "GET", &request_target, &headers, &body).await;
        assert_eq!(answer.status, 200, "{what}: {}", answer.describe());
        assert_eq!(sha256_digest(&answer.body), blob.digest, "{what}");
    }

    // A path outside the API and a method the API lacks get the gateway's own refusals.
    let outside = get(gateway.port, "/debug/vars", &[]).await;
    assert_eq!(outside.status, 404);
    assert_eq!(outside.error_code().as_deref(), Some("NOT_FOUND"));
}

#[tokio::test]
async fn reads_survive_a_registry_restart_and_a_client_hanging_up() {
    let (mut registry, gateway) = start();
    let blob = stored_blob(&registry, "pull/restart", 2 * 1024 * 1024, 5).await;
    let target = format!("/v2/pull/restart/blobs/{}", blob.digest);
    assert_eq!(get(gateway.port, &target, &[]).await.status, 200);

    // The pooled upstream connection dies with the registry; the next read opens a new one.
    registry.stop();
    let down = get(gateway.port, &target, &[]).await;
    assert_eq!(down.status, 502, "{}", down.describe());
    assert_eq!(down.error_code().as_deref(), Some("UNAVAILABLE"));
    registry.start();
    let again = get(gateway.port, &target, &[]).await;
    assert_eq!(again.status, 200, "{}", again.describe());
    assert_eq!(sha256_digest(&again.body), blob.digest);

    // A client that hangs up mid-download costs nothing lasting.
    for _ in 0..3 {
        let mut conn = RawConn::connect(gateway.port).await;
        conn.write_head("GET", &target, &[("Host", "x")])
            .await
            .expect("write");
        assert!(conn.anything_within(LIMIT).await);
        drop(conn);
    }
    let after = get(gateway.port, &target, &[]).await;
    assert_eq!(sha256_digest(&after.body), blob.digest);
    crate::support::eventually("no request left in flight", || {
        gateway.metric("registry_gateway_requests_in_flight") == 0.0
    })
    .await;
}
