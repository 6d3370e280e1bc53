//! Immutable tags against manifest deletes, with Debian's `docker-registry` (deletes enabled, as
//! the kit starts it): a delete by the digest an immutable tag points to, or by the tag, would
//! remove the tag, after which a push could create it again with other content.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::Value;
use testkit::{RawPusher, RawResponse, Registry, TestImage};

use crate::support::{DelayingProxy, Gateway, upstream_tags};

const KB: u64 = 1024;
const REFUSALS: &str = "registry_gateway_refusals_total{reason=\"immutable_tag_delete\"}";

/// Release tags are immutable everywhere but in `scratch/` (no immutable tags).
const CONFIG: &str = "immutable_tags: ['^v[0-9]+\\.']\nrules:\n  - path: ^scratch/\n    immutable_tags: []\n    limit: {max_image_size: 100MB, tag_count_limit: \"100\"}\n";
/// The same, and in `open/` immutable tags whose manifests may be deleted.
const OPT_OUT: &str = "immutable_tags: ['^v[0-9]+\\.']\nrules:\n  - path: ^open/\n    allow_deleting_immutable_tags: true\n    limit: {max_image_size: 100MB, tag_count_limit: \"100\"}\n  - path: ^scratch/\n    immutable_tags: []\n    limit: {max_image_size: 100MB, tag_count_limit: \"100\"}\n";

/// `DELETE /v2/<repository>/manifests/<reference>` at `base`, with `authorization` if any.
async fn delete(
    base: &url::Url,
    repository: &str,
    reference: &str,
    authorization: Option<String>,
) -> RawResponse {
    let url = base
        .join(&format!("v2/{repository}/manifests/{reference}"))
        .expect("url");
    let mut pusher = RawPusher::new(base.clone());
    if let Some(value) = authorization {
        pusher = pusher.authorization(value);
    }
    pusher.send(Method::DELETE, url, None, Vec::new()).await
}

/// The first error of a refusal: its message and detail.
fn error(answer: &RawResponse) -> (String, Value) {
    let body: Value = serde_json::from_slice(&answer.body).expect("error envelope");
    let error = &body["errors"][0];
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    (message, error["detail"].clone())
}

/// The digest `<repository>:<tag>` points to on the registry itself.
async fn upstream_digest(registry: &Registry, repository: &str, tag: &str) -> Option<String> {
    let url = registry
        .base_url()
        .join(&format!("v2/{repository}/manifests/{tag}"))
        .expect("url");
    let answer = reqwest::Client::new()
        .head(url)
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .expect("registry answers");
    answer
        .status()
        .is_success()
        .then(|| answer.headers().get("docker-content-digest"))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// How many requests in the registry's access log (`"METHOD /path HTTP/1.1" status ...`, one
/// line per request) hold `needle`.
fn requests(registry: &Registry, needle: &str) -> usize {
    registry
        .logs()
        .lines()
        .filter(|line| line.contains(" HTTP/1.1\" ") && line.contains(needle))
        .count()
}

#[tokio::test]
async fn the_manifest_of_an_immutable_tag_cannot_be_deleted_to_free_the_tag() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url()).config(CONFIG).start();
    let first = TestImage::new(&[8 * KB], 71);
    let second = TestImage::new(&[8 * KB], 72);
    let repository = "release/app";
    let digest = &first.manifest().digest;
    gateway
        .push(&first, repository, "v1.0", &[])
        .await
        .assert_success();

    let answer = delete(&gateway.base_url(), repository, digest, None).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert_eq!(answer.error_code().as_deref(), Some("DENIED"));
    let (message, detail) = error(&answer);
    assert_eq!(
        message,
        format!(
            "manifest {digest} of repository release/app cannot be deleted: immutable tag v1.0 points to it (pattern ^v[0-9]+\\. of global immutable_tags); set allow_deleting_immutable_tags: true to allow such deletes"
        )
    );
    assert_eq!(detail["check"], "immutable_tag_delete");
    assert_eq!(detail["tag"], "v1.0");
    assert_eq!(detail["digest"], digest.as_str());
    assert_eq!(detail["rule"], Value::Null);

    // The tag is still there, so it still cannot be moved.
    let refused = gateway.push(&second, repository, "v1.0", &[]).await;
    refused.assert_failure();
    assert!(
        refused
            .stderr
            .contains("denied: tag v1.0 of repository release/app is immutable"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        upstream_digest(&registry, repository, "v1.0")
            .await
            .as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(gateway.metric(REFUSALS), 1.0);
    assert!(
        gateway
            .logs()
            .lines()
            .any(|line| line.contains("check=\"immutable_tag_delete\"")
                && line.contains("verdict=\"denied\"")),
        "{}",
        gateway.logs()
    );
}

#[tokio::test]
async fn an_immutable_tag_cannot_be_deleted_by_name() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url()).config(CONFIG).start();
    let image = TestImage::new(&[8 * KB], 73);
    let repository = "release/app";
    for tag in ["v1.0", "latest"] {
        gateway
            .push(&image, repository, tag, &[])
            .await
            .assert_success();
    }
    let answer = delete(&gateway.base_url(), repository, "v1.0", None).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    let (message, detail) = error(&answer);
    assert_eq!(
        message,
        "tag v1.0 of repository release/app cannot be deleted: it is immutable (pattern ^v[0-9]+\\. of global immutable_tags); set allow_deleting_immutable_tags: true to allow such deletes"
    );
    assert_eq!(detail["digest"], Value::Null);
    // Another tag is the registry's business: distribution 2.8 deletes by digest only.
    let answer = delete(&gateway.base_url(), repository, "latest", None).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.error_code().as_deref(), Some("DIGEST_INVALID"));
    assert_eq!(
        upstream_tags(&registry, repository).await,
        ["latest", "v1.0"]
    );
}

#[tokio::test]
async fn deletes_that_remove_no_immutable_tag_pass_through() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url())
        .config(OPT_OUT)
        .start();
    let kept = TestImage::new(&[8 * KB], 74);
    let dropped = TestImage::new(&[8 * KB], 75);
    let base = gateway.base_url();

    // A digest only a mutable tag points to; only the immutable tag's digest is read.
    gateway
        .push(&kept, "release/app", "v1.0", &[])
        .await
        .assert_success();
    gateway
        .push(&dropped, "release/app", "latest", &[])
        .await
        .assert_success();
    let (heads_v1, heads_latest) = (
        requests(&registry, "HEAD /v2/release/app/manifests/v1.0 "),
        requests(&registry, "HEAD /v2/release/app/manifests/latest "),
    );
    let answer = delete(&base, "release/app", &dropped.manifest().digest, None).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    assert_eq!(upstream_tags(&registry, "release/app").await, ["v1.0"]);
    assert_eq!(
        requests(&registry, "HEAD /v2/release/app/manifests/v1.0 "),
        heads_v1 + 1
    );
    assert_eq!(
        requests(&registry, "HEAD /v2/release/app/manifests/latest "),
        heads_latest
    );

    // The opt-out: the immutable tag's manifest may go, and the tag with it.
    gateway
        .push(&kept, "open/app", "v1.0", &[])
        .await
        .assert_success();
    let answer = delete(&base, "open/app", &kept.manifest().digest, None).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    assert!(upstream_tags(&registry, "open/app").await.is_empty());

    // No immutable patterns: forwarded as it always was, without a single extra request.
    gateway
        .push(&kept, "scratch/app", "v1.0", &[])
        .await
        .assert_success();
    let before = requests(&registry, "/v2/scratch/app/");
    let answer = delete(&base, "scratch/app", &kept.manifest().digest, None).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    assert_eq!(requests(&registry, "/v2/scratch/app/"), before + 1);
    assert!(upstream_tags(&registry, "scratch/app").await.is_empty());
    assert_eq!(gateway.metric(REFUSALS), 0.0);
}

#[tokio::test]
async fn the_check_uses_the_clients_credentials_and_fails_closed() {
    let mut registry = Registry::token();
    let gateway = Gateway::builder(registry.base_url()).config(CONFIG).start();
    let image = TestImage::new(&[8 * KB], 76);
    let repository = "release/app";
    registry.push(&image, repository, "v1.0").await;
    let digest = image.manifest().digest.clone();
    let base = gateway.base_url();

    // Without credentials the registry's own 401 and challenge come back.
    let answer = delete(&base, repository, &digest, None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text());
    assert!(
        answer
            .header("www-authenticate")
            .is_some_and(|challenge| challenge.starts_with("Bearer realm=")),
        "{:?}",
        answer.headers
    );
    // With them, the tags are read and the delete refused.
    let answer = delete(
        &base,
        repository,
        &digest,
        registry.authorization(repository),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());

    // The registry gone: refused without forwarding (fail closed), naming what could not be read.
    registry.stop();
    let answer = delete(
        &base,
        repository,
        &digest,
        registry.authorization(repository),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.text());
    let (message, _) = error(&answer);
    assert!(
        message.starts_with("the tags of repository release/app could not be read from the upstream registry to check the delete against its immutable tags"),
        "{message}"
    );
}

/// A delete by digest holds the repository's lease until the registry answered: a push that
/// would create an immutable tag on the manifest meanwhile waits, and lands after the delete
/// instead of being wiped out by it.
#[tokio::test]
async fn a_push_naming_an_immutable_tag_waits_for_a_delete_in_flight() {
    let registry = Registry::anonymous();
    let slow =
        DelayingProxy::start_for_deletes(registry.port(), Duration::from_secs(2), "race/app").await;
    let gateway = Gateway::builder(slow.url()).config(CONFIG).start();
    let image = TestImage::new(&[8 * KB], 77);
    let digest = image.manifest().digest.clone();
    registry.push(&image, "race/app", "latest").await;

    let base = gateway.base_url();
    let target = digest.clone();
    let deleting = tokio::spawn(async move { delete(&base, "race/app", &target, None).await });
    // The delete was checked (no immutable tag points to the manifest) and is on its way.
    tokio::time::sleep(Duration::from_millis(700)).await;
    gateway
        .push(&image, "race/app", "v1.0", &[])
        .await
        .assert_success();
    let deleted = deleting.await.expect("the delete completes");
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.text());
    assert_eq!(
        upstream_digest(&registry, "race/app", "v1.0").await,
        Some(digest)
    );
}
