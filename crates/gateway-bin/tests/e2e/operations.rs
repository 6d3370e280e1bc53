//! Operating the gateway: live reload of a mounted ConfigMap, metrics, JSON logs, a graceful
//! stop during an upload, and Harbor mode against a token-auth registry.

use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use http::{Method, StatusCode};
use testkit::{
    ManifestFormat, OciLayout, RawPusher, Registry, RegistryAuth, SkopeoCopy, TestImage,
    pseudo_random_bytes, sha256_digest,
};

use crate::support::{Gateway, eventually, upstream_tags};

const KB: u64 = 1024;

/// Writes a ConfigMap mount the way kubelet does: files in a new timestamped directory, then
/// the `..data` symlink swapped atomically; the key files link through `..data`.
fn kubelet_update(dir: &Path, generation: u32, files: &[(&str, &str)]) {
    let stamp = format!("..2026_11_22_00_00_{generation:02}.000000001");
    std::fs::create_dir(dir.join(&stamp)).expect("timestamped dir");
    for (key, content) in files {
        std::fs::write(dir.join(&stamp).join(key), content).expect("key file");
        let link = dir.join(key);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(format!("..data/{key}"), &link).expect("key symlink");
        }
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(&stamp, &tmp).expect("..data_tmp");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
}

fn rules(tags: u32) -> String {
    format!(
        "- path: ^project-1/.*\n  limit:\n    max_image_size: \"1MB\"\n    tag_count_limit: \"{tags}\"\n"
    )
}

async fn wait_for_metric(gateway: &Gateway, sample: &str, at_least: f64) {
    eventually(&format!("{sample} reaching {at_least}"), || {
        gateway.metric(sample) >= at_least
    })
    .await;
}

async fn push(
    gateway: &Gateway,
    image: &TestImage,
    repository: &str,
    tag: &str,
) -> testkit::CommandOutput {
    gateway.push(image, repository, tag, &[]).await
}

#[tokio::test]
async fn mounted_configmap_reloads_and_refuses_bad_updates() {
    let registry = Registry::anonymous();
    let mount = tempfile::tempdir().expect("tempdir");
    kubelet_update(
        mount.path(),
        1,
        &[
            ("max_image_size", "100MB"),
            ("tag_count_limit", "100"),
            ("rules", &rules(1)),
        ],
    );
    let gateway = Gateway::builder(registry.base_url())
        .config_path(mount.path())
        .start();
    let image = TestImage::new(&[8 * KB], 1);
    let success = "registry_gateway_config_reloads_total{result=\"success\"}";
    let failure = "registry_gateway_config_reloads_total{result=\"failure\"}";
    assert_eq!(gateway.metric(success), 1.0);

    push(&gateway, &image, "project-1/app", "v1")
        .await
        .assert_success();
    let refused = push(&gateway, &image, "project-1/app", "v2").await;
    refused.assert_failure();
    assert!(
        refused
            .stderr
            .contains("exceed the limit of 1 for repository project-1/app"),
        "{}",
        refused.stderr
    );

    // The limit is raised: the next push uses it, no restart.
    kubelet_update(
        mount.path(),
        2,
        &[
            ("max_image_size", "100MB"),
            ("tag_count_limit", "100"),
            ("rules", &rules(2)),
        ],
    );
    wait_for_metric(&gateway, success, 2.0).await;
    push(&gateway, &image, "project-1/app", "v2")
        .await
        .assert_success();

    // A typo is refused: the last good limits stay, the failure is counted and logged.
    kubelet_update(
        mount.path(),
        3,
        &[
            ("max_image_size", "12XB"),
            ("tag_count_limit", "100"),
            ("rules", &rules(50)),
        ],
    );
    wait_for_metric(&gateway, failure, 1.0).await;
    assert_eq!(
        gateway.metric("registry_gateway_config_last_reload_success"),
        0.0
    );
    let still = push(&gateway, &image, "project-1/app", "v3").await;
    still.assert_failure();
    assert!(
        still.stderr.contains("exceed the limit of 2"),
        "{}",
        still.stderr
    );
    assert!(
        gateway
            .logs()
            .contains("invalid max_image_size \\\"12XB\\\"")
            || gateway.logs().contains("invalid max_image_size \"12XB\""),
        "{}",
        gateway.logs()
    );
    assert_eq!(
        upstream_tags(&registry, "project-1/app").await,
        ["v1", "v2"]
    );
}

#[tokio::test]
async fn metrics_and_json_logs_show_every_decision() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url())
        .config("rules:\n- path: ^project-1/\n  limit: {max_image_size: 1MB, tag_count_limit: 5}\n")
        .arg("--log-format")
        .arg("json")
        .start();
    push(
        &gateway,
        &TestImage::new(&[8 * KB], 2),
        "project-1/app",
        "ok",
    )
    .await
    .assert_success();
    let big = TestImage::new(&[600 * KB, 600 * KB], 3);
    push(&gateway, &big, "project-1/app", "big")
        .await
        .assert_failure();
    // The config blob counts with the layers.
    let measured = big.layer_total() + big.config().size();

    let text = gateway.metrics();
    // Every sample line is `name{labels} value` with a numeric value.
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (_, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
    }
    let samples = [
        "registry_gateway_decisions_total{check=\"image_size\",verdict=\"allowed\",rule=\"1\",enforcement=\"deny\"}",
        "registry_gateway_decisions_total{check=\"image_size\",verdict=\"denied\",rule=\"1\",enforcement=\"deny\"}",
        "registry_gateway_decisions_total{check=\"tag_count\",verdict=\"allowed\",rule=\"1\",enforcement=\"deny\"}",
        "registry_gateway_requests_total{method=\"PUT\",status=\"4xx\"}",
        "registry_gateway_blob_size_cache_lookups_total{result=\"miss\"}",
        "registry_gateway_config_loaded",
        "registry_gateway_upstream_request_duration_seconds_count{operation=\"tags\"}",
    ];
    for sample in samples {
        assert!(
            crate::support::parse_metric(&text, sample) >= 1.0,
            "{sample} missing:\n{text}"
        );
    }
    let logs = gateway.logs();
    let denied: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "decision" && v["verdict"] == "denied")
        .collect();
    assert_eq!(denied.len(), 1, "{logs}");
    let line = &denied[0];
    assert_eq!(line["repository"], "project-1/app");
    assert_eq!(line["reference"], "big");
    assert_eq!(line["check"], "image_size");
    assert_eq!(line["measured"], measured);
    assert_eq!(line["limit"], 1_048_576);
    assert_eq!(line["rule"], "rule 1: ^project-1/");
    assert_eq!(
        line["message"],
        format!(
            "image size 1.2 MiB ({measured} bytes) exceeds the limit of 1 MiB for repository project-1/app (rule 1: ^project-1/)"
        )
    );
}

#[tokio::test]
async fn sigterm_lets_an_upload_in_flight_finish() {
    let registry = Registry::anonymous();
    let mut gateway = Gateway::builder(registry.base_url())
        .config("")
        .arg("--shutdown-timeout")
        .arg("20s")
        .start();
    let data = pseudo_random_bytes(8 << 20, 42);
    let digest = sha256_digest(&data);
    let pusher = RawPusher::new(gateway.base_url());
    let location = gateway.start_upload(&pusher, "slow/app").await;
    let target = format!(
        "{}?{}&digest={digest}",
        location.path(),
        location.query().unwrap_or("")
    );

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", gateway.port)).expect("connect");
    write!(stream, "PUT {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", gateway.host(), data.len()).expect("head");
    let (first, rest) = data.split_at(data.len() / 2);
    stream.write_all(first).expect("first half");

    gateway.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // No new connections once stopping...
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", gateway.port)).is_err(),
        "still accepting after SIGTERM"
    );
    // ...but the upload in flight completes.
    for chunk in rest.chunks(1 << 20) {
        stream.write_all(chunk).expect("rest");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let status = gateway
        .wait_exit(Duration::from_secs(20))
        .expect("gateway exits");
    assert!(status.success(), "exit status {status}\n{}", gateway.logs());
    let direct = RawPusher::new(registry.base_url());
    let blob = direct
        .send(
            Method::GET,
            registry
                .base_url()
                .join(&format!("v2/slow/app/blobs/{digest}"))
                .expect("url"),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(blob.body, data);
}

#[tokio::test]
async fn harbor_mode_counts_tags_with_the_robot_account() {
    const ROBOT_PASSWORD: &str = "robot-Secret-7f3a91";
    let registry = Registry::builder(RegistryAuth::Token)
        .user("testuser", "testpassword")
        .user("robot$gateway", ROBOT_PASSWORD)
        .start();
    let secret = tempfile::tempdir().expect("tempdir");
    std::fs::write(secret.path().join("username"), "robot$gateway").expect("username");
    std::fs::write(secret.path().join("password"), ROBOT_PASSWORD).expect("password");
    std::fs::write(secret.path().join("insecure"), "true").expect("insecure");
    let gateway = Gateway::builder(registry.base_url())
        .config("rules:\n- path: ^project-1/\n  limit: {max_image_size: 1MB, tag_count_limit: 2}\n")
        .arg("--external-url")
        .arg(registry.base_url().as_str())
        .arg("--external-credentials-dir")
        .arg(secret.path().to_str().expect("utf-8 path"))
        .env("RUST_LOG", "debug")
        .start();
    let image = TestImage::new(&[8 * KB], 4);
    let push = |tag: &'static str| {
        let layout = OciLayout::with_image(&image, tag);
        let host = gateway.host();
        async move {
            SkopeoCopy::to_registry(&layout, &host, "project-1/app", tag)
                .dest_creds("testuser", "testpassword")
                .run()
                .await
        }
    };
    let before = registry.token_requests();
    push("v1").await.assert_success();
    push("v2").await.assert_success();
    let refused = push("v3").await;
    refused.assert_failure();
    assert!(
        refused
            .stderr
            .contains("denied: tag count 3 would exceed the limit of 2"),
        "{}",
        refused.stderr
    );
    assert!(registry.token_requests() > before);
    let logs = gateway.logs();
    assert!(logs.contains("Harbor mode"), "{logs}");
    assert!(
        !logs.contains(ROBOT_PASSWORD),
        "the robot password appears in the logs"
    );
    assert!(!gateway.metrics().contains(ROBOT_PASSWORD));
    let mut tags = Vec::new();
    let auth = registry.authorization("project-1/app").expect("token");
    let answer = RawPusher::new(registry.base_url())
        .authorization(auth)
        .send(
            Method::GET,
            registry
                .base_url()
                .join("v2/project-1/app/tags/list")
                .expect("url"),
            None,
            Vec::new(),
        )
        .await;
    let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    for tag in json["tags"].as_array().expect("tags") {
        tags.push(tag.as_str().expect("tag").to_owned());
    }
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);
}

#[tokio::test]
async fn manifest_body_over_4_mib_is_refused_before_the_upstream() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url()).config("").start();
    let body = vec![b' '; (4 << 20) + 1];
    let answer = RawPusher::new(gateway.base_url())
        .put_manifest(
            "big/manifest",
            "v1",
            ManifestFormat::Oci.media_type(),
            &body,
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.text()
    );
    assert_eq!(answer.error_code().as_deref(), Some("SIZE_INVALID"));
    assert!(upstream_tags(&registry, "big/manifest").await.is_empty());
}

/// The robot account is refused, so the tag count cannot be read: the push is refused with
/// 503 (fail closed), or allowed with `--fail-open`.
#[tokio::test]
async fn unreadable_tag_count_fails_closed_unless_fail_open() {
    let registry = Registry::builder(RegistryAuth::Token)
        .user("testuser", "testpassword")
        .start();
    let image = TestImage::new(&[8 * KB], 5);
    let auth = registry.authorization("project-1/app").expect("token");
    let direct = RawPusher::new(registry.base_url()).authorization(auth.clone());
    for blob in image.layers().iter().chain([image.config()]) {
        assert_eq!(
            direct.upload_blob("project-1/app", blob).await.status,
            StatusCode::CREATED
        );
    }
    let manifest = image.manifest_as(ManifestFormat::Oci, None);
    for (fail_open, tag, expected) in [
        (false, "closed", StatusCode::SERVICE_UNAVAILABLE),
        (true, "open", StatusCode::CREATED),
    ] {
        let mut builder = Gateway::builder(registry.base_url())
            .config("")
            .arg("--external-url")
            .arg(registry.base_url().as_str())
            .env("REGISTRY_GATEWAY_EXTERNAL_USERNAME", "testuser")
            .env("REGISTRY_GATEWAY_EXTERNAL_PASSWORD", "wrong-password")
            .arg("--external-insecure");
        if fail_open {
            builder = builder.arg("--fail-open");
        }
        let gateway = builder.start();
        let answer = RawPusher::new(gateway.base_url())
            .authorization(auth.clone())
            .put_manifest(
                "project-1/app",
                tag,
                ManifestFormat::Oci.media_type(),
                &manifest,
            )
            .await;
        assert_eq!(
            answer.status,
            expected,
            "fail_open={fail_open}: {}",
            answer.text()
        );
        if !fail_open {
            assert_eq!(answer.error_code().as_deref(), Some("UNAVAILABLE"));
            assert!(
                answer
                    .text()
                    .contains("the tag count could not be read from the upstream registry"),
                "{}",
                answer.text()
            );
        }
        assert!(!gateway.logs().contains("wrong-password"));
    }
}

#[tokio::test]
async fn sighup_reloads_at_once() {
    let registry = Registry::anonymous();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("limits.yaml");
    std::fs::write(&path, "tag_count_limit: \"1\"\n").expect("config");
    let gateway = Gateway::builder(registry.base_url())
        .config_path(&path)
        .arg("--reload-interval")
        .arg("1h")
        .start();
    let success = "registry_gateway_config_reloads_total{result=\"success\"}";
    std::fs::write(&path, "tag_count_limit: \"2\"\n").expect("config");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gateway.metric(success), 1.0, "reloaded without a signal");
    gateway.signal("HUP");
    wait_for_metric(&gateway, success, 2.0).await;
    assert!(gateway.logs().contains("SIGHUP"), "{}", gateway.logs());
}
