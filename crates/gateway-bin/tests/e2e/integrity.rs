//! Integrity of the limits against requests built to slip past them: percent-encoded and
//! non-canonical paths, upload ids the registry decodes, blobs the gateway did not count,
//! manifests the registry reads differently, cross-repository mounts, clients that hang up,
//! slow or greedy connections, and missing credentials.
//!
//! Every attack goes through the gateway with [`rawhttp`](crate::rawhttp), which sends the
//! request line exactly as written; blobs are set up directly on the registry; and each test
//! checks what the registry stores afterwards as well as what the gateway answered.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{
    Blob, DOCKER_CONFIG, DOCKER_MANIFEST, ManifestFormat, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST,
    RawPusher, Registry, TestImage, pseudo_random_bytes, sha256_digest,
};

use crate::rawhttp::{self, RawAnswer, RawConn, path_of};
use crate::support::{DelayingProxy, Gateway, upstream_tags};

/// Limits of these tests: 1 MiB and 2 tags under `project-1/`, one tag under `race/`.
const CONFIG: &str = r#"
max_image_size: "100MB"
tag_count_limit: "100"
rules: |
  - path: ^project-1/.*
    limit:
      max_image_size: "1MB"
      tag_count_limit: "2"
  - path: ^race/.*
    limit:
      max_image_size: "1MB"
      tag_count_limit: "1"
"#;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// The image size limit under `project-1/`, in bytes.
const LIMIT: u64 = 1 << 20;

/// Every manifest type, for reading manifests back from the registry.
const ACCEPT_ALL: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

fn start() -> (Registry, Gateway) {
    start_with(&[])
}

/// A registry and a gateway in front of it with [`CONFIG`] and extra `serve` arguments.
fn start_with(args: &[&str]) -> (Registry, Gateway) {
    let registry = Registry::anonymous();
    let mut builder = Gateway::builder(registry.base_url()).config(CONFIG);
    for arg in args {
        builder = builder.arg(*arg);
    }
    let gateway = builder.start();
    (registry, gateway)
}

/// The end of the gateway's log, for assertion messages.
fn log_tail(gateway: &Gateway) -> String {
    let logs = gateway.logs();
    let start = logs.len().saturating_sub(6000);
    let start = (start..logs.len())
        .find(|i| logs.is_char_boundary(*i))
        .unwrap_or(logs.len());
    format!("--- gateway log (end) ---\n{}", &logs[start..])
}

/// An assertion message: what was sent, what came back, and the gateway's log.
fn explain(gateway: &Gateway, what: &str, answer: &RawAnswer) -> String {
    format!(
        "{what}\n--- gateway answer ---\n{}\n{}",
        answer.describe(),
        log_tail(gateway)
    )
}

/// Asserts the gateway answered `status` with the distribution error `code`.
fn assert_refused(gateway: &Gateway, what: &str, answer: &RawAnswer, status: u16, code: &str) {
    assert!(
        answer.status == status && answer.error_code().as_deref() == Some(code),
        "{}",
        explain(
            gateway,
            &format!("{what}: expected {status} {code}, got {}", answer.status),
            answer
        )
    );
}

/// Uploads a blob directly to the registry (not through the gateway).
async fn upload_direct(registry: &Registry, repository: &str, blob: &Blob) {
    let answer = RawPusher::for_registry(registry, repository)
        .upload_blob(repository, blob)
        .await;
    assert_eq!(
        answer.status,
        http::StatusCode::CREATED,
        "setting up: uploading {} to {repository} directly: {}",
        blob.digest,
        answer.text()
    );
}

/// Uploads an image's config and layers directly to the registry.
async fn upload_image_direct(registry: &Registry, repository: &str, image: &TestImage) {
    for blob in image.layers().iter().chain([image.config()]) {
        upload_direct(registry, repository, blob).await;
    }
}

/// A blob of `len` pseudo-random bytes.
fn random_blob(len: usize, seed: u64) -> Blob {
    Blob::new(pseudo_random_bytes(len, seed))
}

fn descriptor(media_type: &str, blob: &Blob) -> Value {
    json!({"mediaType": media_type, "digest": blob.digest, "size": blob.size()})
}

/// A manifest of `media_type` with this config descriptor and these layer descriptors.
fn manifest(media_type: &str, config: Value, layers: Vec<Value>) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config,
        "layers": layers,
    })
    .to_string()
    .into_bytes()
}

/// An OCI image manifest with true sizes and the usual media types.
fn oci_manifest(config: &Blob, layers: &[&Blob]) -> Vec<u8> {
    manifest(
        OCI_MANIFEST,
        descriptor(OCI_CONFIG, config),
        layers
            .iter()
            .map(|l| descriptor(OCI_LAYER_GZIP, l))
            .collect(),
    )
}

/// `PUT <target>` through the gateway with these bytes and, when given, this content type.
async fn put_manifest(
    gateway: &Gateway,
    target: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> RawAnswer {
    let headers: Vec<(&str, &str)> = content_type
        .map(|ct| vec![("Content-Type", ct)])
        .unwrap_or_default();
    rawhttp::send(gateway.port, "PUT", target, &headers, body).await
}

/// The status of `HEAD /v2/<repository>/manifests/<reference>` asked directly of the registry.
async fn registry_manifest_status(
    registry: &Registry,
    repository: &str,
    reference: &str,
    authorization: Option<&str>,
) -> u16 {
    let mut headers = vec![("Accept", ACCEPT_ALL)];
    if let Some(value) = authorization {
        headers.push(("Authorization", value));
    }
    rawhttp::send(
        registry.port(),
        "HEAD",
        &format!("/v2/{repository}/manifests/{reference}"),
        &headers,
        b"",
    )
    .await
    .status
}

/// Asserts the registry holds no manifest tagged `tag` in `repository`: neither its tag list
/// nor a `HEAD` on the tag shows one.
async fn assert_not_stored(registry: &Registry, gateway: &Gateway, repository: &str, tag: &str) {
    let tags = upstream_tags(registry, repository).await;
    let head = registry_manifest_status(registry, repository, tag, None).await;
    assert!(
        !tags.iter().any(|t| t == tag) && head == 404,
        "the registry stored {repository}:{tag} (tags {tags:?}, HEAD {head})\n{}",
        log_tail(gateway)
    );
}

/// The status of `HEAD /v2/<repository>/blobs/<digest>` asked directly of the registry.
async fn registry_blob_status(registry: &Registry, repository: &str, digest: &str) -> u16 {
    rawhttp::send(
        registry.port(),
        "HEAD",
        &format!("/v2/{repository}/blobs/{digest}"),
        &[],
        b"",
    )
    .await
    .status
}

/// `POST /v2/<repository>/blobs/uploads/` through the gateway: the path and query of the
/// session's `Location`.
async fn start_upload(gateway: &Gateway, repository: &str) -> String {
    let answer = rawhttp::send(
        gateway.port,
        "POST",
        &format!("/v2/{repository}/blobs/uploads/"),
        &[],
        b"",
    )
    .await;
    assert_eq!(
        answer.status,
        202,
        "{}",
        explain(gateway, "starting an upload through the gateway", &answer)
    );
    let location = answer.header("location").unwrap_or_else(|| {
        panic!(
            "{}",
            explain(gateway, "upload start without Location", &answer)
        )
    });
    let target = path_of(location);
    assert!(
        target.contains("_state="),
        "distribution 2.8 Locations carry _state: {location}"
    );
    target
}

/// `PATCH <target>` on `port` with these bytes as `application/octet-stream`.
async fn patch(port: u16, target: &str, bytes: &[u8]) -> RawAnswer {
    rawhttp::send(
        port,
        "PATCH",
        target,
        &[("Content-Type", "application/octet-stream")],
        bytes,
    )
    .await
}

/// `target` with the first character of the upload id written as `%XX`: the same upload to
/// the registry, which decodes the path.
fn encode_first_id_char(target: &str) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let at = path.rfind('/').expect("upload path") + 1;
    let first = path.as_bytes()[at];
    let encoded = format!("{}%{first:02X}{}", &path[..at], &path[at + 1..]);
    if query.is_empty() {
        encoded
    } else {
        format!("{encoded}?{query}")
    }
}

/// How many bytes the upload session at `target` (path and query of its last good Location)
/// holds on the registry: from `GET` on the registry (`Range: 0-N`), or, when the registry
/// no longer answers with that `_state` (its offset no longer matches), from the session's
/// data file. With how it was found.
async fn upload_bytes_held(registry: &Registry, repository: &str, target: &str) -> (u64, String) {
    let answer = rawhttp::send(registry.port(), "GET", target, &[], b"").await;
    if answer.status == 204 {
        if let Some(end) = answer
            .header("range")
            .and_then(|r| r.trim_start_matches("bytes=").split_once('-'))
            .and_then(|(_, end)| end.trim().parse::<u64>().ok())
        {
            return (
                end + 1,
                format!(
                    "registry GET: Range {:?}",
                    answer.header("range").unwrap_or("")
                ),
            );
        }
    }
    let path = target.split('?').next().unwrap_or(target);
    let id = path.rsplit('/').next().unwrap_or("");
    let data = registry
        .dir()
        .join("storage/docker/registry/v2/repositories")
        .join(repository)
        .join("_uploads")
        .join(id)
        .join("data");
    let size = std::fs::metadata(&data).map_or(0, |m| m.len());
    (
        size,
        format!(
            "registry GET answered {} {} (the _state offset no longer matches); {} holds {size} bytes",
            answer.status,
            answer.text().trim(),
            data.display()
        ),
    )
}

/// Polls `check` every 50 ms for at most `limit`; whether it came true.
async fn within(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Class 1: the path as the registry reads it.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn encoded_repository_names_get_the_limits_of_the_decoded_name() {
    let (registry, gateway) = start();
    // 2 MiB: over the 1 MiB of project-1/.
    let image = TestImage::new(&[2 * MIB as u64], 101);
    upload_image_direct(&registry, "project-1/enc", &image).await;
    let body = image.manifest_as(ManifestFormat::Oci, None);

    // Control: the plain name is refused.
    let plain = put_manifest(
        &gateway,
        "/v2/project-1/enc/manifests/v1",
        Some(OCI_MANIFEST),
        &body,
    )
    .await;
    assert_refused(&gateway, "plain name", &plain, 403, "DENIED");

    for target in [
        "/v2/project-1%2Fenc/manifests/v1",
        "/v2/%70roject-1/enc/manifests/v1",
    ] {
        let answer = put_manifest(&gateway, target, Some(OCI_MANIFEST), &body).await;
        assert_refused(
            &gateway,
            &format!("PUT {target} (2 MiB image into project-1/enc)"),
            &answer,
            403,
            "DENIED",
        );
    }
    assert_not_stored(&registry, &gateway, "project-1/enc", "v1").await;
}

/// Differential test of path decoding against the registry itself: manifest `PUT`s whose name
/// and tag are percent-encoded at random, sent straight to the registry, land where
/// `registry_api` reads them; unclean paths, which the registry redirects, are refused.
#[tokio::test]
async fn path_decoding_agrees_with_the_registry() {
    use registry_api::{ApiRequest, Reference, Route};
    let registry = Registry::anonymous();
    let image = TestImage::new(&[1024], 601);
    upload_image_direct(&registry, "project-1/enc", &image).await;
    let body = image.manifest_as(ManifestFormat::Oci, None);
    // A small deterministic generator, so that a failure can be replayed.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut expected_tags = Vec::new();
    for i in 0..24 {
        let tag = format!("v{i}.x-y_Z");
        let encode = |text: &str, bits: u64| -> String {
            text.chars()
                .enumerate()
                .map(|(j, c)| {
                    if bits >> (j % 64) & 1 == 1 {
                        format!("%{:02X}", c as u32)
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        };
        let target = format!(
            "/v2/{}/manifests/{}",
            encode("project-1/enc", next()),
            encode(&tag, next())
        );
        let read = ApiRequest::parse("PUT", &target, None).expect("the gateway reads it");
        assert_eq!(
            read.route,
            Route::ManifestPut {
                name: "project-1/enc".parse().expect("name"),
                reference: Reference::Tag(tag.clone()),
            },
            "{target}"
        );
        let answer = rawhttp::send(
            registry.port(),
            "PUT",
            &target,
            &[("Content-Type", OCI_MANIFEST)],
            &body,
        )
        .await;
        assert_eq!(answer.status, 201, "{target}: {}", answer.describe());
        expected_tags.push(tag);
    }
    let mut stored = upstream_tags(&registry, "project-1/enc").await;
    stored.sort();
    expected_tags.sort();
    assert_eq!(stored, expected_tags);
    for target in [
        "/v2/project-1/./enc/manifests/w",
        "/v2/project-1//enc/manifests/w",
        "/v2/project-1/x/../enc/manifests/w",
        "/v2/project-1%2F.%2Fenc/manifests/w",
    ] {
        let answer = rawhttp::send(
            registry.port(),
            "PUT",
            target,
            &[("Content-Type", OCI_MANIFEST)],
            &body,
        )
        .await;
        assert_eq!(answer.status, 301, "{target}: the registry stored it");
        assert!(
            ApiRequest::parse("PUT", target, None).is_err(),
            "{target} is read as a push"
        );
    }
}

#[tokio::test]
async fn encoded_repository_names_cannot_pass_the_tag_limit() {
    let (registry, gateway) = start();
    let image = TestImage::new(&[4 * KIB as u64], 102);
    let through = RawPusher::new(gateway.base_url());
    for tag in ["a", "b"] {
        let answer = through
            .push_image(&image, "project-1/enc", tag, ManifestFormat::Oci, None)
            .await;
        assert_eq!(
            answer.status,
            http::StatusCode::CREATED,
            "pushing {tag}: {}\n{}",
            answer.text(),
            log_tail(&gateway)
        );
    }
    let answer = put_manifest(
        &gateway,
        "/v2/project-1%2Fenc/manifests/c",
        Some(OCI_MANIFEST),
        &image.manifest_as(ManifestFormat::Oci, None),
    )
    .await;
    let tags = upstream_tags(&registry, "project-1/enc").await;
    assert_refused(
        &gateway,
        &format!("third tag through /v2/project-1%2Fenc/ (limit 2); registry tags now {tags:?}"),
        &answer,
        403,
        "DENIED",
    );
    assert_eq!(tags, ["a", "b"], "{}", log_tail(&gateway));
}

#[tokio::test]
async fn names_outside_the_oci_grammar_are_refused_on_writes() {
    let (registry, gateway) = start();
    // Distribution 2.8 reads `Project-1` as a registry host name and takes it; the OCI name
    // grammar (and the gateway's rules) know only lower case.
    let image = TestImage::new(&[2 * MIB as u64], 103);
    upload_image_direct(&registry, "Project-1/enc", &image).await;
    let answer = put_manifest(
        &gateway,
        "/v2/Project-1/enc/manifests/v1",
        Some(OCI_MANIFEST),
        &image.manifest_as(ManifestFormat::Oci, None),
    )
    .await;
    assert_refused(
        &gateway,
        "PUT /v2/Project-1/enc/manifests/v1",
        &answer,
        400,
        "NAME_INVALID",
    );
    assert_not_stored(&registry, &gateway, "Project-1/enc", "v1").await;
}

#[tokio::test]
async fn non_canonical_write_paths_are_refused() {
    let (registry, gateway) = start();
    let image = TestImage::new(&[4 * KIB as u64], 104);
    upload_image_direct(&registry, "project-1/enc", &image).await;
    let body = image.manifest_as(ManifestFormat::Oci, None);
    let mut failures = Vec::new();
    for target in [
        "/v2/project-1/./enc/manifests/v1",
        "/v2/project-1//enc/manifests/v1",
        "/v2/project-1/x/../enc/manifests/v1",
    ] {
        let answer = put_manifest(&gateway, target, Some(OCI_MANIFEST), &body).await;
        if answer.status != 400 || answer.error_code().as_deref() != Some("NAME_INVALID") {
            failures.push(format!(
                "PUT {target}: expected 400 NAME_INVALID, got:\n{}",
                answer.describe()
            ));
        }
    }
    // An invalid escape: refused by the gateway itself, with an error envelope.
    let target = "/v2/project-1/en%zzc/manifests/v1";
    let answer = put_manifest(&gateway, target, Some(OCI_MANIFEST), &body).await;
    if answer.status != 400 || answer.error_code().is_none() {
        failures.push(format!(
            "PUT {target}: expected 400 with a distribution error envelope, got:\n{}",
            answer.describe()
        ));
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n\n"),
        log_tail(&gateway)
    );
    assert_not_stored(&registry, &gateway, "project-1/enc", "v1").await;
}

/// The refusal of a second 700 KiB chunk to an upload holding the first.
const ANNOUNCED_1_4_MIB: &str = "layer upload announced at 1.4 MiB (1433600 bytes) exceeds the image size limit of 1 MiB for repository project-1/up (rule 1: ^project-1/.*)";

#[tokio::test]
async fn upload_progress_follows_the_decoded_upload_id() {
    let (registry, gateway) = start();
    let chunk = pseudo_random_bytes(700 * KIB, 105);
    let first = start_upload(&gateway, "project-1/up").await;
    let answer = patch(gateway.port, &first, &chunk).await;
    assert_eq!(
        answer.status,
        202,
        "{}",
        explain(&gateway, "first 700 KiB chunk", &answer)
    );
    let good = path_of(answer.header("location").expect("Location after PATCH"));

    // The same session to the registry, another string to a gateway that keys raw paths.
    let attack = encode_first_id_char(&good);
    let answer = patch(gateway.port, &attack, &chunk).await;
    let (held, how) = upload_bytes_held(&registry, "project-1/up", &good).await;
    assert_refused(
        &gateway,
        &format!(
            "second 700 KiB chunk to {attack} (1.4 MiB in all, limit 1 MiB); the upload now holds {held} bytes ({how})"
        ),
        &answer,
        403,
        "DENIED",
    );
    // Counted from what the session holds plus the chunk's Content-Length.
    assert_eq!(
        answer.error_message().as_deref(),
        Some(ANNOUNCED_1_4_MIB),
        "{}",
        answer.describe()
    );
    assert!(
        held <= LIMIT,
        "the registry's upload holds {held} bytes, over the 1 MiB limit ({how})\n{}",
        log_tail(&gateway)
    );
}

#[tokio::test]
async fn upload_progress_survives_a_gateway_restart() {
    let registry = Registry::anonymous();
    let first = Gateway::builder(registry.base_url()).config(CONFIG).start();
    let chunk = pseudo_random_bytes(700 * KIB, 106);
    let location = start_upload(&first, "project-1/up").await;
    let answer = patch(first.port, &location, &chunk).await;
    assert_eq!(
        answer.status,
        202,
        "{}",
        explain(&first, "first 700 KiB chunk", &answer)
    );
    let good = path_of(answer.header("location").expect("Location after PATCH"));
    drop(first);

    let second = Gateway::builder(registry.base_url()).config(CONFIG).start();
    let answer = patch(second.port, &good, &chunk).await;
    let (held, how) = upload_bytes_held(&registry, "project-1/up", &good).await;
    assert_refused(
        &second,
        &format!(
            "700 KiB more through a restarted gateway (1.4 MiB in all); the upload now holds {held} bytes ({how})"
        ),
        &answer,
        403,
        "DENIED",
    );
    assert_eq!(
        answer.error_message().as_deref(),
        Some(ANNOUNCED_1_4_MIB),
        "{}",
        answer.describe()
    );
    assert!(
        held <= LIMIT,
        "the registry's upload holds {held} bytes ({how})\n{}",
        log_tail(&second)
    );
}

// ---------------------------------------------------------------------------------------------
// Class 2: which blobs count.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_config_blob_counts_towards_the_image_size() {
    let (registry, gateway) = start();
    // Distribution does not read the config: any bytes do.
    let config = random_blob(600 * KIB, 201);
    let layer = random_blob(600 * KIB, 202);
    upload_direct(&registry, "project-1/cfg", &config).await;
    upload_direct(&registry, "project-1/cfg", &layer).await;
    let answer = put_manifest(
        &gateway,
        "/v2/project-1/cfg/manifests/v1",
        Some(OCI_MANIFEST),
        &oci_manifest(&config, &[&layer]),
    )
    .await;
    assert_refused(
        &gateway,
        "600 KiB config + 600 KiB layer (1.2 MiB, limit 1 MiB)",
        &answer,
        403,
        "DENIED",
    );
    assert_not_stored(&registry, &gateway, "project-1/cfg", "v1").await;
}

#[tokio::test]
async fn a_config_that_lies_about_its_size_is_refused() {
    let (registry, gateway) = start();
    let config = random_blob(600 * KIB, 203);
    let layer = random_blob(10 * KIB, 204);
    upload_direct(&registry, "project-1/cfg", &config).await;
    upload_direct(&registry, "project-1/cfg", &layer).await;
    let body = manifest(
        OCI_MANIFEST,
        json!({"mediaType": OCI_CONFIG, "digest": config.digest, "size": 2}),
        vec![descriptor(OCI_LAYER_GZIP, &layer)],
    );
    let answer = put_manifest(
        &gateway,
        "/v2/project-1/cfg/manifests/v1",
        Some(OCI_MANIFEST),
        &body,
    )
    .await;
    assert_refused(
        &gateway,
        "config declared as 2 bytes, 600 KiB in the registry",
        &answer,
        400,
        "MANIFEST_INVALID",
    );
    assert_not_stored(&registry, &gateway, "project-1/cfg", "v1").await;
}

#[tokio::test]
async fn layers_the_registry_stores_count_whatever_their_foreign_looking_type() {
    let (registry, gateway) = start();
    // 2 MiB, present in the registry, no `urls`: distribution 2.8 checks and keeps it. One
    // repository per case, so that the tag limit of 2 plays no part.
    let layer = random_blob(2 * MIB, 205);
    let config = random_blob(100, 206);
    let cases: &[(&str, &str, &str)] = &[
        (
            OCI_MANIFEST,
            OCI_CONFIG,
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        ),
        (
            OCI_MANIFEST,
            OCI_CONFIG,
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        ),
        (
            OCI_MANIFEST,
            OCI_CONFIG,
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        ),
        (
            OCI_MANIFEST,
            OCI_CONFIG,
            "application/vnd.oci.image.layer.NONDISTRIBUTABLE.v1.tar+gzip",
        ),
        (
            DOCKER_MANIFEST,
            DOCKER_CONFIG,
            "application/vnd.docker.image.rootfs.FOREIGN.diff.tar.gzip",
        ),
        (
            DOCKER_MANIFEST,
            DOCKER_CONFIG,
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        ),
    ];
    let mut failures = Vec::new();
    for (index, (manifest_type, config_type, layer_type)) in cases.iter().enumerate() {
        let repository = format!("project-1/foreign-{index}");
        upload_direct(&registry, &repository, &layer).await;
        upload_direct(&registry, &repository, &config).await;
        let tag = "v1";
        let body = manifest(
            manifest_type,
            descriptor(config_type, &config),
            vec![descriptor(layer_type, &layer)],
        );
        let answer = put_manifest(
            &gateway,
            &format!("/v2/{repository}/manifests/{tag}"),
            Some(manifest_type),
            &body,
        )
        .await;
        if answer.status != 403 || answer.error_code().as_deref() != Some("DENIED") {
            failures.push(format!(
                "{repository}: {layer_type} in {manifest_type}: expected 403 DENIED, got {} {}",
                answer.status,
                answer.text()
            ));
        }
        let tags = upstream_tags(&registry, &repository).await;
        if !tags.is_empty() {
            failures.push(format!("{repository}: the registry stored tags {tags:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "2 MiB layers the registry stores were not counted:\n{}\n{}",
        failures.join("\n"),
        log_tail(&gateway)
    );
}

#[tokio::test]
async fn a_counted_layer_the_registry_lacks_is_refused_even_with_urls() {
    let (registry, gateway) = start();
    let repository = "project-1/urls";
    let config = random_blob(100, 207);
    upload_direct(&registry, repository, &config).await;
    let missing = sha256_digest(b"bytes never uploaded anywhere");
    // Distribution checks a Docker manifest's layer only when it has no urls: an OCI layer
    // type with urls goes unchecked, and the registry would store the manifest.
    let body = manifest(
        DOCKER_MANIFEST,
        descriptor(DOCKER_CONFIG, &config),
        vec![json!({
            "mediaType": OCI_LAYER_GZIP,
            "digest": missing,
            "size": 10,
            "urls": ["https://example.com/layer"],
        })],
    );
    let answer = put_manifest(
        &gateway,
        &format!("/v2/{repository}/manifests/v1"),
        Some(DOCKER_MANIFEST),
        &body,
    )
    .await;
    assert_refused(
        &gateway,
        "Docker manifest with an OCI layer of an unknown blob, with urls",
        &answer,
        400,
        "MANIFEST_BLOB_UNKNOWN",
    );
    assert_not_stored(&registry, &gateway, repository, "v1").await;
}

// ---------------------------------------------------------------------------------------------
// Class 3: the manifest format as the registry reads it.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn manifests_need_their_own_content_type() {
    let (registry, gateway) = start();
    let repository = "project-1/ct";
    let image = TestImage::new(&[4 * KIB as u64], 301);
    upload_image_direct(&registry, repository, &image).await;
    let body = image.manifest_as(ManifestFormat::Oci, None);

    // Distribution lowercases the content type: upper case stays accepted.
    let upper = put_manifest(
        &gateway,
        &format!("/v2/{repository}/manifests/upper"),
        Some("APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON"),
        &body,
    )
    .await;
    assert_eq!(
        upper.status,
        201,
        "{}",
        explain(&gateway, "upper-case OCI content type", &upper)
    );

    let mut failures = Vec::new();
    for (tag, content_type) in [
        ("none", None),
        ("json", Some("application/json")),
        ("octets", Some("application/octet-stream")),
    ] {
        let answer = put_manifest(
            &gateway,
            &format!("/v2/{repository}/manifests/{tag}"),
            content_type,
            &body,
        )
        .await;
        let message = answer.error_message().unwrap_or_default().to_lowercase();
        if answer.status != 400
            || answer.error_code().as_deref() != Some("MANIFEST_INVALID")
            || !(message.contains("content type") || message.contains("content-type"))
        {
            failures.push(format!(
                "Content-Type {content_type:?}: expected the gateway's 400 MANIFEST_INVALID naming the content type, got {} {}",
                answer.status,
                answer.text()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        log_tail(&gateway)
    );
    for tag in ["none", "json", "octets"] {
        assert_not_stored(&registry, &gateway, repository, tag).await;
    }
}

#[tokio::test]
async fn signatures_make_a_schema1_manifest_whatever_the_content_type() {
    let (registry, gateway) = start();
    let repository = "project-1/sig";
    let image = TestImage::new(&[4 * KIB as u64], 302);
    upload_image_direct(&registry, repository, &image).await;
    let mut body: Value =
        serde_json::from_slice(&image.manifest_as(ManifestFormat::Oci, None)).expect("manifest");
    body["signatures"] = json!([]);
    let answer = put_manifest(
        &gateway,
        &format!("/v2/{repository}/manifests/v1"),
        Some(OCI_MANIFEST),
        body.to_string().as_bytes(),
    )
    .await;
    let message = answer.error_message().unwrap_or_default();
    assert!(
        answer.status == 400
            && answer.error_code().as_deref() == Some("MANIFEST_INVALID")
            && message.contains("schema 1"),
        "{}",
        explain(
            &gateway,
            "OCI manifest with top-level signatures: expected 400 MANIFEST_INVALID naming schema 1",
            &answer
        )
    );
    assert_not_stored(&registry, &gateway, repository, "v1").await;
}

// ---------------------------------------------------------------------------------------------
// Class 4: uploads.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cross_repository_mounts_into_limited_repositories_are_refused() {
    let (registry, gateway) = start();
    let blob = random_blob(2 * MIB, 401);
    upload_direct(&registry, "big/src", &blob).await;
    let target = format!(
        "/v2/project-1/app/blobs/uploads/?mount={}&from=big/src",
        blob.digest
    );
    let answer = rawhttp::send(gateway.port, "POST", &target, &[], b"").await;
    let mounted = registry_blob_status(&registry, "project-1/app", &blob.digest).await;
    assert_refused(
        &gateway,
        &format!("POST {target} (2 MiB blob); HEAD in project-1/app on the registry: {mounted}"),
        &answer,
        403,
        "DENIED",
    );
    assert_eq!(mounted, 404, "the blob was mounted\n{}", log_tail(&gateway));
    // The registry's blob has a whole size: it is the layer's.
    assert_eq!(
        answer.error_message().as_deref(),
        Some(
            "layer size 2.0 MiB (2097152 bytes) exceeds the image size limit of 1 MiB for repository project-1/app (rule 1: ^project-1/.*)"
        ),
        "{}",
        answer.describe()
    );
}

#[tokio::test]
async fn mounts_in_a_form_body_are_refused() {
    let (registry, gateway) = start();
    let blob = random_blob(2 * MIB, 402);
    upload_direct(&registry, "big/src", &blob).await;
    let form = format!("mount={}&from=big%2Fsrc", blob.digest);
    let answer = rawhttp::send(
        gateway.port,
        "POST",
        "/v2/project-1/app/blobs/uploads/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .await;
    let mounted = registry_blob_status(&registry, "project-1/app", &blob.digest).await;
    assert_refused(
        &gateway,
        &format!(
            "POST an upload with the form body {form:?}; HEAD in project-1/app on the registry: {mounted}"
        ),
        &answer,
        400,
        "UNSUPPORTED",
    );
    assert_eq!(mounted, 404, "the blob was mounted\n{}", log_tail(&gateway));
}

/// A `Connection` header that names `Content-Type` would make a proxy remove the very header
/// the manifest was checked under; the registry would then decode it as schema 1.
#[tokio::test]
async fn connection_cannot_strip_a_checked_header() {
    let (registry, gateway) = start();
    let config = random_blob(300, 403);
    let layer = random_blob(10 * KIB, 404);
    upload_direct(&registry, "project-1/conn", &config).await;
    upload_direct(&registry, "project-1/conn", &layer).await;
    let body = oci_manifest(&config, &[&layer]);
    let answer = rawhttp::send(
        gateway.port,
        "PUT",
        "/v2/project-1/conn/manifests/v1",
        &[
            ("Content-Type", OCI_MANIFEST),
            ("Connection", "keep-alive, Content-Type"),
        ],
        &body,
    )
    .await;
    assert_refused(
        &gateway,
        "PUT a manifest whose Connection header names Content-Type",
        &answer,
        400,
        "UNSUPPORTED",
    );
    assert_not_stored(&registry, &gateway, "project-1/conn", "v1").await;
}

/// Registries that take a monolithic upload in the `POST` store its body: it is counted.
#[tokio::test]
async fn an_upload_start_body_is_counted() {
    let (_registry, gateway) = start();
    let body = pseudo_random_bytes(2 * MIB, 405);
    let answer = rawhttp::send(
        gateway.port,
        "POST",
        "/v2/project-1/mono/blobs/uploads/",
        &[("Content-Type", "application/octet-stream")],
        &body,
    )
    .await;
    assert_refused(
        &gateway,
        "POST an upload start with a 2 MiB body",
        &answer,
        403,
        "DENIED",
    );
    assert_eq!(
        answer.error_message().as_deref(),
        Some(
            "layer upload announced at 2.0 MiB (2097152 bytes) exceeds the image size limit of 1 MiB for repository project-1/mono (rule 1: ^project-1/.*)"
        ),
        "{}",
        answer.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// Class 5: clients that hang up.
// ---------------------------------------------------------------------------------------------

const IN_FLIGHT: &str = "registry_gateway_requests_in_flight";

/// Sends a manifest `PUT` head with `Content-Length: <length>` and `sent` of the body, waits
/// until the gateway counts it in flight, hangs up, and waits for the gauge to fall to 0.
async fn hang_up_and_watch_in_flight(gateway: &Gateway, what: &str, length: usize, sent: &[u8]) {
    let mut conn = RawConn::connect(gateway.port).await;
    let length = length.to_string();
    conn.write_head(
        "PUT",
        "/v2/project-1/app/manifests/v1",
        &[
            ("Host", "127.0.0.1"),
            ("Content-Type", OCI_MANIFEST),
            ("Content-Length", &length),
        ],
    )
    .await
    .expect("write head");
    conn.write(sent).await.expect("write body bytes");
    let seen = within(Duration::from_secs(5), || gateway.metric(IN_FLIGHT) == 1.0).await;
    assert!(
        seen,
        "{what}: the manifest PUT never showed as in flight ({IN_FLIGHT} = {})\n{}",
        gateway.metric(IN_FLIGHT),
        log_tail(gateway)
    );
    drop(conn);
    let settled = within(Duration::from_secs(5), || gateway.metric(IN_FLIGHT) == 0.0).await;
    assert!(
        settled,
        "{what}: {IN_FLIGHT} is still {} 5 s after the client hung up\n{}",
        gateway.metric(IN_FLIGHT),
        log_tail(gateway)
    );
}

#[tokio::test]
async fn a_client_hanging_up_mid_manifest_leaves_nothing_in_flight() {
    let registry = Registry::anonymous();
    // The registry answers manifest PUTs only after 1.5 s.
    let proxy = DelayingProxy::start(registry.port(), Duration::from_millis(1500)).await;
    let gateway = Gateway::builder(proxy.url()).config(CONFIG).start();

    // Hung up while the gateway reads the body: 10 of 1000 bytes sent.
    hang_up_and_watch_in_flight(&gateway, "10 of 1000 body bytes", 1000, b"{\"schemaVe").await;

    // Hung up while the gateway waits for the registry's answer to a whole manifest.
    let image = TestImage::new(&[4 * KIB as u64], 502);
    upload_image_direct(&registry, "project-1/app", &image).await;
    let body = image.manifest_as(ManifestFormat::Oci, None);
    hang_up_and_watch_in_flight(
        &gateway,
        "whole manifest, registry answering late",
        body.len(),
        &body,
    )
    .await;
}

#[tokio::test]
async fn a_client_hanging_up_keeps_its_tag_reservation() {
    let registry = Registry::anonymous();
    let proxy = DelayingProxy::start(registry.port(), Duration::from_millis(1500)).await;
    let gateway = Gateway::builder(proxy.url()).config(CONFIG).start();
    let image = TestImage::new(&[4 * KIB as u64], 501);
    upload_image_direct(&registry, "race/app", &image).await;
    let body = image.manifest_as(ManifestFormat::Oci, None);

    // Client A pushes t1 and hangs up while the registry has not answered yet.
    let started = Instant::now();
    let mut a = RawConn::connect(gateway.port).await;
    let length = body.len().to_string();
    a.write_head(
        "PUT",
        "/v2/race/app/manifests/t1",
        &[
            ("Host", "127.0.0.1"),
            ("Content-Type", OCI_MANIFEST),
            ("Content-Length", &length),
        ],
    )
    .await
    .expect("A: head");
    a.write(&body).await.expect("A: body");
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(a);

    // Client B pushes t2 while A's push is still on its way to the registry.
    tokio::time::sleep(Duration::from_millis(500).saturating_sub(started.elapsed())).await;
    let b = put_manifest(
        &gateway,
        "/v2/race/app/manifests/t2",
        Some(OCI_MANIFEST),
        &body,
    )
    .await;

    // A's push lands (the proxy forwards it whatever the gateway did).
    let mut tags = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        tags = upstream_tags(&registry, "race/app").await;
        if tags.iter().any(|t| t == "t1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tags_now = upstream_tags(&registry, "race/app").await;
    if tags_now.len() > tags.len() {
        tags = tags_now;
    }
    assert_refused(
        &gateway,
        &format!(
            "B's t2 while A's t1 (client gone) was still on its way (limit 1); registry tags {tags:?}"
        ),
        &b,
        403,
        "DENIED",
    );
    assert_eq!(tags, ["t1"], "{}", log_tail(&gateway));
}

// ---------------------------------------------------------------------------------------------
// Class 6: resource limits.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn half_sent_request_heads_are_closed_on_both_listeners() {
    let (_registry, gateway) = start_with(&["--header-read-timeout", "1s"]);
    for (listener, port) in [("proxy", gateway.port), ("admin", gateway.admin_port)] {
        let mut conn = RawConn::connect(port).await;
        conn.write(b"PUT /v2/x/manifests/v1 HTTP/1.1\r\nHost: a\r\n")
            .await
            .expect("write half a head");
        let started = Instant::now();
        let closed = conn.closed_within(Duration::from_secs(3)).await;
        assert!(
            closed.is_ok(),
            "{listener} listener: a half-sent head was still open {:?} later (read {:?})\n{}",
            started.elapsed(),
            closed.map_or_else(
                |b| String::from_utf8_lossy(&b).into_owned(),
                |b| String::from_utf8_lossy(&b).into_owned()
            ),
            log_tail(&gateway)
        );
    }
}

#[tokio::test]
async fn stalled_manifest_bodies_get_408() {
    let (_registry, gateway) = start_with(&["--body-read-timeout", "1s"]);
    let mut conn = RawConn::connect(gateway.port).await;
    conn.write_head(
        "PUT",
        "/v2/project-1/app/manifests/v1",
        &[
            ("Host", "127.0.0.1"),
            ("Content-Type", OCI_MANIFEST),
            ("Content-Length", "1000"),
        ],
    )
    .await
    .expect("write head");
    conn.write(b"{\"schemaVe").await.expect("write 10 bytes");
    let answer = conn.read_answer(false, Duration::from_secs(3)).await;
    match answer {
        Ok(answer) => assert_eq!(
            answer.status,
            408,
            "{}",
            explain(&gateway, "stalled manifest body", &answer)
        ),
        Err(err) => panic!(
            "no answer to a stalled manifest body within 3 s: {err}\n{}",
            log_tail(&gateway)
        ),
    }
}

#[tokio::test]
async fn manifest_buffers_share_a_budget() {
    let (_registry, gateway) = start_with(&["--manifest-buffer-budget", "6MiB"]);
    let mut stalled = Vec::new();
    let mut third = None;
    for index in 0..3 {
        let mut conn = RawConn::connect(gateway.port).await;
        conn.write_head(
            "PUT",
            &format!("/v2/project-1/app/manifests/v{index}"),
            &[
                ("Host", "127.0.0.1"),
                ("Content-Type", OCI_MANIFEST),
                ("Content-Length", "4000000"),
            ],
        )
        .await
        .expect("write head");
        conn.write(b"{\"schemaVersion\"")
            .await
            .expect("write a few bytes");
        if index < 2 {
            stalled.push(conn);
            // Let the gateway take the request in before the next one comes.
            tokio::time::sleep(Duration::from_millis(300)).await;
        } else {
            third = Some(conn);
        }
    }
    let mut third = third.expect("third connection");
    let started = Instant::now();
    match third.read_answer(false, Duration::from_secs(2)).await {
        Ok(answer) => assert_refused(
            &gateway,
            &format!(
                "third 4 MiB manifest with two stalled ones holding the 6 MiB budget, answered after {:?}",
                started.elapsed()
            ),
            &answer,
            503,
            "UNAVAILABLE",
        ),
        Err(err) => panic!(
            "the third 4 MiB manifest got no answer within 2 s: {err}\n{}",
            log_tail(&gateway)
        ),
    }
    drop(stalled);
}

#[tokio::test]
async fn connections_beyond_the_maximum_wait_for_a_free_slot() {
    let (_registry, gateway) = start_with(&["--max-connections", "2"]);
    // Two connections with a request in flight each (a manifest body that stalls): idle ones
    // would be shed to make room.
    let mut open = Vec::new();
    for index in 0..2 {
        let mut conn = RawConn::connect(gateway.port).await;
        conn.write_head(
            "PUT",
            &format!("/v2/project-1/app/manifests/v{index}"),
            &[
                ("Host", "127.0.0.1"),
                ("Content-Type", OCI_MANIFEST),
                ("Content-Length", "1000"),
            ],
        )
        .await
        .expect("write head");
        conn.write(b"{\"schemaVe").await.expect("write 10 bytes");
        open.push(conn);
    }
    let (first, second) = (open.remove(0), open.remove(0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = RawConn::connect(gateway.port).await;
    third
        .write(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write request");
    let early = third.anything_within(Duration::from_secs(1)).await;
    assert!(
        !early,
        "a third connection was served while two were open (limit 2): {:?}\n{}",
        third.read_answer(false, Duration::from_secs(1)).await,
        log_tail(&gateway)
    );
    drop(first);
    match third.read_answer(false, Duration::from_secs(5)).await {
        Ok(answer) => assert_eq!(
            answer.status,
            200,
            "{}",
            explain(&gateway, "GET /v2/ once a slot was free", &answer)
        ),
        Err(err) => panic!(
            "the waiting connection was not served once a slot was free: {err}\n{}",
            log_tail(&gateway)
        ),
    }
    drop(second);
}

// ---------------------------------------------------------------------------------------------
// Class 7: credentials.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn missing_or_wrong_credentials_get_the_registry_challenge() {
    let registry = Registry::basic();
    let gateway = Gateway::builder(registry.base_url()).config(CONFIG).start();
    let repository = "project-1/auth";
    let image = TestImage::new(&[4 * KIB as u64], 701);
    upload_image_direct(&registry, repository, &image).await;
    let body = image.manifest_as(ManifestFormat::Oci, None);
    let wrong = testkit::basic_authorization(Registry::DEFAULT_USER, "wrong-password");
    for (what, authorization) in [
        ("without Authorization", None),
        ("with a wrong password", Some(wrong.as_str())),
    ] {
        let mut headers = vec![("Content-Type", OCI_MANIFEST)];
        if let Some(value) = authorization {
            headers.push(("Authorization", value));
        }
        let answer = rawhttp::send(
            gateway.port,
            "PUT",
            &format!("/v2/{repository}/manifests/v1"),
            &headers,
            &body,
        )
        .await;
        let challenge = answer.header("www-authenticate").unwrap_or("");
        assert!(
            answer.status == 401 && challenge.starts_with("Basic"),
            "{}",
            explain(
                &gateway,
                &format!("manifest PUT {what}: expected 401 with a Basic challenge"),
                &answer
            )
        );
    }
    let authorization = registry
        .authorization(repository)
        .expect("basic credentials");
    let status =
        registry_manifest_status(&registry, repository, "v1", Some(authorization.as_str())).await;
    assert_eq!(status, 404, "the registry stored the manifest");
}
