//! The proxy against the real registry: allowed pushes arrive unchanged; oversized images,
//! extra tags, schema 1, lying manifests and oversized layers are refused with the SPEC
//! messages; the tag limit is exact under concurrency; upstream outages give UNAVAILABLE.

use std::sync::Arc;

use http::{Method, StatusCode};
use testkit::{ManifestFormat, RawPusher, Registry, SkopeoCopy, TestImage, sha256_digest};

use crate::support::{Gateway, eventually, upstream_tags};

const CONFIG: &str = r#"
max_image_size: "100MB"
tag_count_limit: "100"
rules: |
  - path: ^project-1/.*
    limit:
      max_image_size: "1MB"
      tag_count_limit: "3"
  - path: ^race/.*
    limit:
      max_image_size: "1MB"
      tag_count_limit: "5"
"#;

const KB: u64 = 1024;

fn start() -> (Registry, Gateway) {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url()).config(CONFIG).start();
    (registry, gateway)
}

async fn skopeo_push(
    gateway: &Gateway,
    image: &TestImage,
    repository: &str,
    tag: &str,
    args: &[&str],
) -> testkit::CommandOutput {
    gateway.push(image, repository, tag, args).await
}

#[tokio::test]
async fn allowed_pushes_arrive_byte_identical() {
    let (registry, gateway) = start();
    let image = TestImage::new(&[200 * KB, 300 * KB], 1);

    // Raw HTTP through the gateway: what the registry stores is exactly what was sent.
    let through = RawPusher::new(gateway.base_url());
    let answer = through
        .push_image(&image, "project-1/raw", "v1", ManifestFormat::Oci, None)
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let direct = RawPusher::new(registry.base_url());
    let url = registry
        .base_url()
        .join("v2/project-1/raw/manifests/v1")
        .expect("url");
    let stored = reqwest::Client::new()
        .get(url)
        .header("accept", ManifestFormat::Oci.media_type())
        .send()
        .await
        .expect("manifest answer")
        .bytes()
        .await
        .expect("manifest body");
    assert_eq!(
        stored.as_ref(),
        image.manifest_as(ManifestFormat::Oci, None).as_slice()
    );
    for layer in image.layers() {
        let url = registry
            .base_url()
            .join(&format!("v2/project-1/raw/blobs/{}", layer.digest))
            .expect("url");
        let blob = direct.send(Method::GET, url, None, Vec::new()).await;
        assert_eq!(sha256_digest(&blob.body), layer.digest);
        assert_eq!(blob.body, layer.data);
    }

    // skopeo through the gateway, then pulled back through it: same digests, same bytes.
    skopeo_push(&gateway, &image, "project-1/app", "v1", &[])
        .await
        .assert_success();
    let out = tempfile::tempdir().expect("tempdir");
    SkopeoCopy::new(
        format!("docker://{}/project-1/app:v1", gateway.host()),
        format!("dir:{}", out.path().display()),
    )
    .run()
    .await
    .assert_success();
    for layer in image.layers() {
        let pulled = std::fs::read(out.path().join(layer.hex())).expect("pulled layer");
        assert_eq!(pulled, layer.data);
    }
    assert_eq!(upstream_tags(&registry, "project-1/app").await, ["v1"]);
}

#[tokio::test]
async fn too_large_image_is_refused_with_the_spec_message() {
    let (registry, gateway) = start();
    // Each layer is under the 1 MiB limit; together they are over it.
    let image = TestImage::new(&[600 * KB, 600 * KB], 2);
    let out = skopeo_push(&gateway, &image, "project-1/app", "big", &[]).await;
    out.assert_failure();
    // The config blob counts with the layers.
    let measured = image.layer_total() + image.config().size();
    assert!(
        out.stderr.contains(&format!(
            "denied: image size 1.2 MiB ({measured} bytes) exceeds the limit of 1 MiB for repository project-1/app (rule 1: ^project-1/.*)"
        )),
        "{}",
        out.stderr
    );
    assert!(upstream_tags(&registry, "project-1/app").await.is_empty());
    // The same image is fine where the global 100 MiB applies.
    skopeo_push(&gateway, &image, "other/app", "big", &[])
        .await
        .assert_success();
    assert!(gateway.logs().contains("verdict=\"denied\""));
}

#[tokio::test]
async fn schema1_is_refused_with_how_to_convert() {
    let (registry, gateway) = start();
    let image = TestImage::new(&[10 * KB], 3);
    let out = skopeo_push(
        &gateway,
        &image,
        "other/legacy",
        "v1",
        &["--format", "v2s1"],
    )
    .await;
    out.assert_failure();
    assert!(
        out.stderr
            .contains("manifest invalid: docker schema 1 manifests are not supported"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("skopeo copy --format v2s2"),
        "{}",
        out.stderr
    );
    assert!(upstream_tags(&registry, "other/legacy").await.is_empty());
}

#[tokio::test]
async fn tag_limit_counts_new_tags_and_allows_repushes() {
    let (registry, gateway) = start();
    let image = TestImage::new(&[10 * KB], 4);
    for tag in ["v1", "v2", "v3"] {
        skopeo_push(&gateway, &image, "project-1/app", tag, &[])
            .await
            .assert_success();
    }
    let out = skopeo_push(&gateway, &image, "project-1/app", "v4", &[]).await;
    out.assert_failure();
    assert!(
        out.stderr.contains(
            "denied: tag count 4 would exceed the limit of 3 for repository project-1/app (rule 1: ^project-1/.*): the repository holds 3 tags and this push adds 1"
        ),
        "{}",
        out.stderr
    );
    // Re-pushing an existing tag, even with another image, is allowed.
    let other = TestImage::new(&[12 * KB], 5);
    skopeo_push(&gateway, &other, "project-1/app", "v2", &[])
        .await
        .assert_success();
    assert_eq!(
        upstream_tags(&registry, "project-1/app").await,
        ["v1", "v2", "v3"]
    );
}

#[tokio::test]
async fn tag_query_parameters_are_counted() {
    let (_registry, gateway) = start();
    let image = TestImage::new(&[10 * KB], 6);
    let pusher = RawPusher::new(gateway.base_url());
    let digest = image.manifest().digest.clone();
    // By digest alone: no tag, always allowed.
    let answer = pusher
        .push_image(&image, "project-1/q", &digest, ManifestFormat::Oci, None)
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let manifest = image.manifest_as(ManifestFormat::Oci, None);
    let put = |query: &'static str| {
        let url = gateway
            .base_url()
            .join(&format!("v2/project-1/q/manifests/{digest}?{query}"))
            .expect("url");
        let pusher = &pusher;
        let manifest = manifest.clone();
        async move {
            pusher
                .send(
                    Method::PUT,
                    url,
                    Some(ManifestFormat::Oci.media_type()),
                    manifest,
                )
                .await
        }
    };
    // Four new tags in one push exceed the limit of 3.
    let answer = put("tag=a&tag=b&tag=c&tag=d").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert_eq!(answer.error_code().as_deref(), Some("DENIED"));
    assert!(
        answer.text().contains("this push adds 4"),
        "{}",
        answer.text()
    );
    let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(json["errors"][0]["detail"]["new_tags"], 4);
    assert_eq!(json["errors"][0]["detail"]["limit"], 3);
}

#[tokio::test]
async fn lying_manifest_is_refused() {
    let (registry, gateway) = start();
    let image = TestImage::new(&[400 * KB, 20 * KB], 7);
    let pusher = RawPusher::new(gateway.base_url());
    let answer = pusher
        .push_image(
            &image,
            "project-1/liar",
            "v1",
            ManifestFormat::DockerV2S2,
            Some(&[10, 20 * KB]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.error_code().as_deref(), Some("MANIFEST_INVALID"));
    let expected = format!(
        "layers[0] {} declares 10 bytes but the registry holds 409600 bytes; the manifest's sizes must be true (400.0 KiB)",
        image.layers()[0].digest
    );
    assert!(answer.text().contains(&expected), "{}", answer.text());
    assert!(upstream_tags(&registry, "project-1/liar").await.is_empty());
}

#[tokio::test]
async fn index_is_accepted_when_each_child_is_within_the_limit() {
    let (registry, gateway) = start();
    let pusher = RawPusher::new(gateway.base_url());
    let mut children = Vec::new();
    for (seed, arch) in [(8u64, "amd64"), (9, "arm64")] {
        let image = TestImage::new(&[300 * KB], seed);
        let digest = image.manifest().digest.clone();
        let answer = pusher
            .push_image(
                &image,
                "project-1/multi",
                &digest,
                ManifestFormat::Oci,
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        children.push(serde_json::json!({
            "mediaType": ManifestFormat::Oci.media_type(),
            "digest": digest,
            "size": image.manifest_as(ManifestFormat::Oci, None).len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": children,
    })
    .to_string();
    // The children add up to 600 KiB, but an index is not measured: each child was checked.
    let answer = pusher
        .put_manifest(
            "project-1/multi",
            "latest",
            "application/vnd.oci.image.index.v1+json",
            index.as_bytes(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(
        upstream_tags(&registry, "project-1/multi").await,
        ["latest"]
    );
}

#[tokio::test]
async fn oversized_layer_is_refused_while_it_uploads() {
    let (registry, gateway) = start();
    let image = TestImage::new(&[3 * 1024 * KB], 10);
    let out = skopeo_push(&gateway, &image, "project-1/huge", "v1", &[]).await;
    out.assert_failure();
    // skopeo knows the layer's size from the source and announces it.
    assert!(
        out.stderr.contains(
            "denied: layer upload announced at 3.0 MiB (3145728 bytes) exceeds the image size limit of 1 MiB for repository project-1/huge (rule 1: ^project-1/.*)"
        ),
        "{}",
        out.stderr
    );
    // The registry never completed the blob.
    let direct = RawPusher::new(registry.base_url());
    let url = registry
        .base_url()
        .join(&format!(
            "v2/project-1/huge/blobs/{}",
            image.layers()[0].digest
        ))
        .expect("url");
    assert_eq!(
        direct
            .send(Method::HEAD, url, None, Vec::new())
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // A monolithic upload whose Content-Length is over the limit is refused before any byte
    // is forwarded.
    let pusher = RawPusher::new(gateway.base_url());
    let answer = pusher
        .upload_blob("project-1/huge", &image.layers()[0])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert_eq!(
        answer.error_message().as_deref(),
        Some(
            "layer upload announced at 3.0 MiB (3145728 bytes) exceeds the image size limit of 1 MiB for repository project-1/huge (rule 1: ^project-1/.*)"
        ),
        "{}",
        answer.text()
    );
}

/// The message of an upload stopped at `stopped` bytes in `repository` (rule 1, 1 MiB).
fn stopped_message(stopped: u64, repository: &str) -> String {
    format!(
        "layer upload stopped at {stopped} bytes, where it passed the image size limit of 1 MiB (1048576 bytes) for repository {repository} (rule 1: ^project-1/.*); the client did not announce the layer's size"
    )
}

/// A chunked PATCH announces no size: the upload is stopped as soon as the bytes streamed pass
/// the limit, and the message gives where it was stopped, not a layer size.
#[tokio::test]
async fn a_streamed_upload_is_stopped_where_it_passes_the_limit() {
    const CHUNK: usize = 64 * 1024;
    let (_registry, gateway) = start();
    let pusher = RawPusher::new(gateway.base_url());
    let location = gateway.start_upload(&pusher, "project-1/streamed").await;
    let target = match location.query() {
        Some(query) => format!("{}?{query}", location.path()),
        None => location.path().to_owned(),
    };
    let data = testkit::pseudo_random_bytes(2 << 20, 14);
    let mut body = Vec::new();
    for chunk in data.chunks(CHUNK) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let answer = crate::rawhttp::send(
        gateway.port,
        "PATCH",
        &target,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Transfer-Encoding", "chunked"),
        ],
        &body,
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.describe());
    let envelope: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    let detail = &envelope["errors"][0]["detail"];
    assert_eq!(detail["size_known"], "streamed", "{}", answer.describe());
    let stopped = detail["measured"].as_u64().expect("measured");
    assert!(
        stopped > 1 << 20 && stopped <= (1 << 20) + CHUNK as u64,
        "stopped at {stopped} bytes"
    );
    assert_eq!(
        answer.error_message(),
        Some(stopped_message(stopped, "project-1/streamed"))
    );
}

/// podman and buildah compress a layer as they send it, so they announce no size: the push of
/// an oversized layer is stopped while it uploads, and they print where it was stopped.
#[tokio::test]
async fn podman_and_buildah_pushes_of_an_oversized_layer_are_stopped() {
    let (registry, gateway) = start();
    let image = TestImage::new(&[3 * 1024 * KB], 15);
    let source = format!("{}/source/huge:v1", registry.host());
    testkit::skopeo_push(&registry.host(), &image, "source/huge", "v1", &[], None)
        .await
        .assert_success();
    for (tool, name) in [(testkit::PODMAN, "podman"), (testkit::BUILDAH, "buildah")] {
        let repository = format!("project-1/{name}");
        let out = testkit::pull_and_push(
            tool,
            &source,
            &format!("{}/{repository}:v1", gateway.host()),
        )
        .await;
        out.assert_failure();
        let printed = format!("{}{}", out.stdout, out.stderr);
        let stopped = printed
            .split("denied: layer upload stopped at ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} does not print the stopped upload:\n{printed}"));
        assert!(
            printed.contains(&stopped_message(stopped, &repository)),
            "{name}:\n{printed}"
        );
        assert!(stopped > 1 << 20, "{name} stopped at {stopped} bytes");
        assert!(upstream_tags(&registry, &repository).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_never_exceed_the_tag_limit() {
    let (registry, gateway) = start();
    let image = TestImage::new(&[4 * KB], 11);
    // The blobs go in once, directly; then 32 manifest pushes race for 5 tags.
    let direct = RawPusher::new(registry.base_url());
    for blob in image.layers().iter().chain([image.config()]) {
        assert_eq!(
            direct.upload_blob("race/app", blob).await.status,
            StatusCode::CREATED
        );
    }
    let manifest = Arc::new(image.manifest_as(ManifestFormat::Oci, None));
    let pusher = Arc::new(RawPusher::new(gateway.base_url()));
    let pushes: Vec<_> = (0..32)
        .map(|i| {
            let (pusher, manifest) = (Arc::clone(&pusher), Arc::clone(&manifest));
            tokio::spawn(async move {
                pusher
                    .put_manifest(
                        "race/app",
                        &format!("t{i}"),
                        ManifestFormat::Oci.media_type(),
                        &manifest,
                    )
                    .await
            })
        })
        .collect();
    let (mut created, mut denied) = (0, 0);
    for push in pushes {
        let answer = push.await.expect("push task");
        match answer.status {
            StatusCode::CREATED => created += 1,
            StatusCode::FORBIDDEN => {
                assert_eq!(
                    answer.error_code().as_deref(),
                    Some("DENIED"),
                    "{}",
                    answer.text()
                );
                denied += 1;
            }
            other => panic!("unexpected {other}: {}", answer.text()),
        }
    }
    assert_eq!((created, denied), (5, 27));
    assert_eq!(upstream_tags(&registry, "race/app").await.len(), 5);
}

#[tokio::test]
async fn upstream_outage_gives_unavailable_then_recovers() {
    let (mut registry, gateway) = start();
    let pusher = RawPusher::new(gateway.base_url());
    let ping = gateway.base_url().join("v2/").expect("url");
    assert_eq!(
        pusher
            .send(Method::GET, ping.clone(), None, Vec::new())
            .await
            .status,
        StatusCode::OK
    );

    registry.stop();
    let answer = pusher
        .send(Method::GET, ping.clone(), None, Vec::new())
        .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.text());
    assert_eq!(answer.error_code().as_deref(), Some("UNAVAILABLE"));
    let image = TestImage::new(&[4 * KB], 12);
    let manifest = image.manifest_as(ManifestFormat::Oci, None);
    let answer = pusher
        .put_manifest(
            "project-1/down",
            "v1",
            ManifestFormat::Oci.media_type(),
            &manifest,
        )
        .await;
    assert!(
        matches!(answer.status.as_u16(), 502..=504),
        "{}: {}",
        answer.status,
        answer.text()
    );
    assert_eq!(answer.error_code().as_deref(), Some("UNAVAILABLE"));
    wait_ready(&gateway, 503).await;
    // Readiness is about the upstream; in process, coordination never fails.
    let (status, body) =
        crate::support::get(gateway.admin_port, "/readyz/coordination").expect("answer");
    assert_eq!(
        (status, body.as_str()),
        (200, "coordination in process (no coordination store)\n")
    );

    registry.start();
    assert_eq!(
        pusher
            .send(Method::GET, ping, None, Vec::new())
            .await
            .status,
        StatusCode::OK
    );
    skopeo_push(&gateway, &image, "project-1/down", "v1", &[])
        .await
        .assert_success();
    wait_ready(&gateway, 200).await;
}

/// Waits until `/readyz` answers `status` (probes are reused for a second).
async fn wait_ready(gateway: &Gateway, status: u16) {
    eventually(&format!("/readyz answering {status}"), || {
        crate::support::get(gateway.admin_port, "/readyz").map(|r| r.0) == Some(status)
    })
    .await;
}

#[tokio::test]
async fn only_the_registry_api_is_proxied() {
    let (_registry, gateway) = start();
    for path in ["/", "/metrics", "/v1/_ping", "/v2x"] {
        let (status, body) = crate::support::get(gateway.port, path).expect("answer");
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("NOT_FOUND"), "{body}");
    }
    // An absolute-form target naming another host still goes to the configured upstream.
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", gateway.port)).expect("connect");
    write!(stream, "GET http://198.51.100.1:9/v2/ HTTP/1.1\r\nHost: 198.51.100.1:9\r\nConnection: close\r\n\r\n").expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn chunked_patches_are_counted_across_requests() {
    let (_registry, gateway) = start();
    let pusher = RawPusher::new(gateway.base_url());
    let mut location = gateway
        .start_upload(&pusher, "project-1/chunks")
        .await
        .to_string();
    // Two PATCHes without Content-Range: the second one takes the upload past 1 MiB.
    let chunk = testkit::pseudo_random_bytes(600 * KB as usize, 13);
    let first = pusher
        .send(
            Method::PATCH,
            gateway.base_url().join(&location).expect("url"),
            Some("application/octet-stream"),
            chunk.clone(),
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    location = first.header("location").expect("location").to_owned();
    let second = pusher
        .send(
            Method::PATCH,
            gateway.base_url().join(&location).expect("url"),
            Some("application/octet-stream"),
            chunk,
        )
        .await;
    assert_eq!(second.status, StatusCode::FORBIDDEN, "{}", second.text());
    // The registry holds 600 KiB and the chunk's Content-Length announces 600 KiB more.
    assert!(
        second.text().contains(
            "layer upload announced at 1.2 MiB (1228800 bytes) exceeds the image size limit of 1 MiB"
        ),
        "{}",
        second.text()
    );
}

#[tokio::test]
async fn h2c_clients_are_served() {
    let (_registry, gateway) = start();
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let answer = client
        .get(gateway.base_url().join("v2/").expect("url"))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.version(), http::Version::HTTP_2);
    assert_eq!(answer.status(), StatusCode::OK);
}
