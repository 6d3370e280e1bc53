//! Protections beside the limits, against Debian's `docker-registry` with `skopeo`: read-only
//! repositories answered as distribution's own `maintenance.readonly` mode answers, switched by
//! a live reload.

use std::path::Path;

use http::{Method, StatusCode};
use testkit::{OciLayout, RawPusher, Registry, RegistryAuth, SkopeoCopy, TestImage};

use crate::support::{Gateway, eventually, upstream_tags};

const KB: u64 = 1024;
const RELOADS: &str = "registry_gateway_config_reloads_total{result=\"success\"}";

fn frozen_config(read_only: bool) -> String {
    format!(
        "max_image_size: 100MB\ntag_count_limit: \"100\"\nrules:\n  - path: ^frozen/\n    read_only: {read_only}\n    limit: {{max_image_size: 100MB, tag_count_limit: \"100\"}}\n"
    )
}

/// Pulls `<repository>:<tag>` through `host` into a fresh OCI layout.
async fn pull(host: &str, repository: &str, tag: &str) -> testkit::CommandOutput {
    let layout = OciLayout::new();
    SkopeoCopy::new(
        format!("docker://{host}/{repository}:{tag}"),
        layout.reference(tag),
    )
    .run()
    .await
}

async fn write_config(path: &Path, text: &str) {
    tokio::fs::write(path, text).await.expect("write config");
}

/// An answer as a client sees it, field by field: status, headers (names in lower case, in
/// name order, without `Date`) and body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: String,
}

/// A write sent straight to the registry or through the gateway.
async fn write_answer(base: url::Url, method: Method, path: &str) -> Answer {
    let url = base.join(path).expect("url");
    let (content_type, body) = if path.contains("/manifests/") && method == Method::PUT {
        (Some(testkit::OCI_MANIFEST), b"{}".to_vec())
    } else {
        (None, Vec::new())
    };
    let answer = RawPusher::new(base)
        .send(method, url, content_type, body)
        .await;
    let mut headers: Vec<(String, String)> = answer
        .headers
        .iter()
        .filter(|(name, _)| *name != "date")
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    headers.sort();
    Answer {
        status: answer.status,
        headers,
        body: answer.text(),
    }
}

#[tokio::test]
async fn read_only_answers_like_the_registry_and_reloads_off() {
    // The registry's own read-only mode, for the answer to match.
    let readonly = Registry::builder(RegistryAuth::Anonymous)
        .read_only()
        .start();
    let registry = Registry::anonymous();
    let image = TestImage::new(&[8 * KB], 31);
    registry.push(&image, "frozen/app", "v1").await;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("limits.yaml");
    write_config(&config, &frozen_config(true)).await;
    let gateway = Gateway::builder(registry.base_url())
        .config_path(&config)
        .start();

    // Every write gets the registry's own answer: status, every header but Date, body.
    let digest = format!("sha256:{}", "0".repeat(64));
    let writes = [
        (Method::POST, "v2/frozen/app/blobs/uploads/".to_owned()),
        (Method::PUT, "v2/frozen/app/manifests/v2".to_owned()),
        (Method::DELETE, format!("v2/frozen/app/manifests/{digest}")),
        (Method::DELETE, format!("v2/frozen/app/blobs/{digest}")),
    ];
    for (method, path) in &writes {
        let own = write_answer(readonly.base_url(), method.clone(), path).await;
        assert_eq!(
            own.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let through = write_answer(gateway.base_url(), method.clone(), path).await;
        assert_eq!(through.status, own.status, "{method} {path}");
        assert_eq!(through.headers, own.headers, "{method} {path}");
        assert_eq!(through.body, own.body, "{method} {path}");
    }
    // What distribution 2.8 answers, measured: Go's plain-text 405 of a route without the
    // write methods, not an error envelope.
    let own = write_answer(readonly.base_url(), Method::POST, &writes[0].1).await;
    assert_eq!(
        own,
        Answer {
            status: StatusCode::METHOD_NOT_ALLOWED,
            headers: [
                ("allow", "GET, HEAD"),
                ("content-length", "19"),
                ("content-type", "text/plain; charset=utf-8"),
                ("docker-distribution-api-version", "registry/2.0"),
                ("x-content-type-options", "nosniff"),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .to_vec(),
            body: "Method not allowed\n".to_owned(),
        }
    );
    // Which rule made the repository read-only is in the gateway's log.
    let logs = gateway.logs();
    assert!(
        logs.lines()
            .any(|line| line.contains("reason=\"read_only\"")
                && line.contains(
                    "repository frozen/app is read-only for maintenance (rule 1: ^frozen/)"
                )),
        "{logs}"
    );

    // skopeo is refused as by the registry in read-only mode, and prints the same; pulls work;
    // other repositories take pushes. A new image, so that both start with a blob upload.
    let next = TestImage::new(&[8 * KB], 32);
    let own = readonly.skopeo_push(&next, "frozen/app", "v2", &[]).await;
    let refused = gateway.push(&next, "frozen/app", "v2", &[]).await;
    for output in [&own, &refused] {
        output.assert_failure();
        assert!(
            output
                .stderr
                .contains("initiating layer upload to /v2/frozen/app/blobs/uploads/"),
            "{}",
            output.stderr
        );
        assert!(
            output
                .stderr
                .contains("StatusCode: 405, Method not allowed"),
            "{}",
            output.stderr
        );
    }
    // An image whose blobs the registry holds goes straight to the manifest: refused too.
    gateway
        .push(&image, "frozen/app", "v3", &[])
        .await
        .assert_failure();
    pull(&gateway.host(), "frozen/app", "v1")
        .await
        .assert_success();
    gateway
        .push(&image, "open/app", "v1", &[])
        .await
        .assert_success();
    assert_eq!(
        gateway.metric("registry_gateway_refusals_total{reason=\"read_only\"}"),
        6.0
    );

    // `kubectl edit` closes the window: the same push goes through, no restart.
    write_config(&config, &frozen_config(false)).await;
    eventually("the reload", || gateway.metric(RELOADS) >= 2.0).await;
    gateway
        .push(&next, "frozen/app", "v2", &[])
        .await
        .assert_success();
    assert_eq!(upstream_tags(&registry, "frozen/app").await, ["v1", "v2"]);

    // And opens it again.
    write_config(&config, "read_only: \"true\"\n").await;
    eventually("the reload", || gateway.metric(RELOADS) >= 3.0).await;
    gateway
        .push(&image, "open/app", "v2", &[])
        .await
        .assert_failure();
    pull(&gateway.host(), "open/app", "v1")
        .await
        .assert_success();
}

/// podman retries a push whose failure it may think passing: the gateway's former read-only
/// answer, `405 UNSUPPORTED` in an error envelope, cost three retries (3 to 6 s of warnings).
/// distribution's own plain-text 405 is not retried: through the gateway, a push to a read-only
/// repository fails at once, as against the registry's own read-only mode.
#[tokio::test]
async fn podman_pushes_to_a_read_only_repository_fail_at_once() {
    let readonly = Registry::builder(RegistryAuth::Anonymous)
        .read_only()
        .start();
    let registry = Registry::anonymous();
    let held = TestImage::new(&[8 * KB], 33);
    registry.push(&held, "frozen/app", "v1").await;
    let fresh = TestImage::new(&[8 * KB], 34);
    registry.push(&fresh, "source/fresh", "v1").await;
    let gateway = Gateway::builder(registry.base_url())
        .config(&frozen_config(true))
        .start();

    let fresh_source = format!("{}/source/fresh:v1", registry.host());
    let cases = [
        // The registry's own read-only mode, for reference: refused at the upload start.
        (
            "registry",
            fresh_source.clone(),
            format!("{}/frozen/app:v2", readonly.host()),
            "initiating layer upload",
        ),
        // Through the gateway. (podman compresses the layers again as it pushes them, so it
        // always starts with an upload; the manifest's answer is compared in the test above.)
        (
            "gateway",
            fresh_source,
            format!("{}/frozen/app:v2", gateway.host()),
            "initiating layer upload",
        ),
    ];
    for (to, source, destination, step) in cases {
        let push = testkit::pull_and_push(testkit::PODMAN, &source, &destination).await;
        push.assert_failure();
        let what = format!(
            "podman push to {destination} ({to}) took {:?}, exit {}:\n{}{}",
            push.elapsed, push.status, push.stdout, push.stderr
        );
        assert!(push.stderr.contains(step), "{what}");
        assert!(
            push.stderr.contains("StatusCode: 405, Method not allowed"),
            "{what}"
        );
        // podman prints a line per retry (each after a back-off: 3 s in all before the answer
        // was the registry's); their absence, not a wall-clock bound, shows it stopped at once.
        assert!(!push.stderr.contains("retrying"), "{what}");
    }
    assert_eq!(upstream_tags(&registry, "frozen/app").await, ["v1"]);
}

/// A cosign-style tag for the manifest `digest_hex`.
fn signature_tag(digest_hex: &str, suffix: &str) -> String {
    format!("sha256-{digest_hex}.{suffix}")
}

#[tokio::test]
async fn signature_tags_do_not_use_up_the_tag_limit() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url())
        .config(
            "max_image_size: 100MB\ntag_count_limit: \"2\"\nrules:\n  - path: ^counted/\n    exempt_signature_tags: false\n    limit: {max_image_size: 100MB, tag_count_limit: \"2\"}\n",
        )
        .start();
    let image = TestImage::new(&[8 * KB], 41);
    let hex = image.manifest().hex().to_owned();
    // What cosign attaches to the image: a signature, an attestation and an SBOM.
    let subject = image.manifest().digest.clone();
    let attached = |suffix: &str| {
        let layer_type = match suffix {
            "sig" => "application/vnd.dev.cosign.simplesigning.v1+json",
            "att" => "application/vnd.dsse.envelope.v1+json",
            _ => "text/spdx+json",
        };
        TestImage::attached(layer_type, &subject, 1, 42)
    };
    let push_attached = |repository: &'static str, suffix: &'static str| {
        let tag = signature_tag(&hex, suffix);
        let artifact = attached(suffix);
        let pusher = testkit::RawPusher::new(gateway.base_url());
        async move {
            pusher
                .push_image(
                    &artifact,
                    repository,
                    &tag,
                    testkit::ManifestFormat::Oci,
                    None,
                )
                .await
        }
    };
    for repository in ["signed/app", "counted/app"] {
        for tag in ["v1", "v2"] {
            gateway
                .push(&image, repository, tag, &[])
                .await
                .assert_success();
        }
        let refused = gateway.push(&image, repository, "v3", &[]).await;
        refused.assert_failure();
        assert!(
            refused.stderr.contains("would exceed the limit of 2"),
            "{}",
            refused.stderr
        );
    }
    // At its limit, the repository still takes a signature, an attestation and an SBOM, and
    // they do not count against the next ones.
    for suffix in ["sig", "att", "sbom"] {
        let answer = push_attached("signed/app", suffix).await;
        assert_eq!(
            answer.status,
            http::StatusCode::CREATED,
            "{}",
            answer.text()
        );
    }
    assert_eq!(upstream_tags(&registry, "signed/app").await.len(), 5);
    let refused = gateway.push(&image, "signed/app", "v3", &[]).await;
    refused.assert_failure();
    assert!(
        refused
            .stderr
            .contains("the repository holds 2 tags and this push adds 1"),
        "{}",
        refused.stderr
    );
    // `exempt_signature_tags: false`: a signature tag is a tag like any other.
    let refused = push_attached("counted/app", "sig").await;
    assert_eq!(
        refused.status,
        http::StatusCode::FORBIDDEN,
        "{}",
        refused.text()
    );
    assert!(
        refused.text().contains("would exceed the limit of 2"),
        "{}",
        refused.text()
    );
}

#[tokio::test]
async fn release_tag_cannot_be_moved_but_can_be_re_pushed() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url())
        .config(
            "immutable_tags: ['^v[0-9]+\\.']\nrules:\n  - path: ^scratch/\n    immutable_tags: []\n    limit: {max_image_size: 100MB, tag_count_limit: \"100\"}\n",
        )
        .start();
    let first = TestImage::new(&[8 * KB], 51);
    let second = TestImage::new(&[8 * KB], 52);
    let repository = "release/app";

    gateway
        .push(&first, repository, "v1.0", &[])
        .await
        .assert_success();
    // The same bytes again: allowed, as often as wanted.
    gateway
        .push(&first, repository, "v1.0", &[])
        .await
        .assert_success();
    // Other bytes under the release tag: refused, naming tag, current digest and rule.
    let refused = gateway.push(&second, repository, "v1.0", &[]).await;
    refused.assert_failure();
    // (skopeo's log quotes the message, doubling the pattern's backslash.)
    let expected = [
        "denied: tag v1.0 of repository release/app is immutable (pattern ^v[0-9]+".to_owned(),
        format!(
            ". of global immutable_tags): it points to {} and cannot be moved to {}; push a new tag instead",
            first.manifest().digest,
            second.manifest().digest
        ),
    ];
    for part in expected {
        assert!(refused.stderr.contains(&part), "{}", refused.stderr);
    }
    // A tag no pattern matches moves freely, and so does a release tag where the rule has none.
    for (repo, tag) in [(repository, "latest"), ("scratch/app", "v1.0")] {
        for image in [&first, &second] {
            gateway.push(image, repo, tag, &[]).await.assert_success();
        }
    }
    // `?tag=` on a push by digest is checked too.
    let pusher = RawPusher::new(gateway.base_url());
    let by_digest = format!("{}?tag=v1.0", second.manifest().digest);
    let answer = pusher
        .put_manifest(
            repository,
            &by_digest,
            "application/vnd.oci.image.manifest.v1+json",
            &second.manifest().data,
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert_eq!(answer.error_code().as_deref(), Some("DENIED"));
    assert!(
        answer.text().contains("\"check\":\"immutable_tag\""),
        "{}",
        answer.text()
    );
    // Docker schema 2: the digest is read with the manifest types accepted, so a re-push of
    // the same bytes is recognised.
    for _ in 0..2 {
        gateway
            .push(&first, repository, "v2.0", &["--format", "v2s2"])
            .await
            .assert_success();
    }
    gateway
        .push(&second, repository, "v2.0", &["--format", "v2s2"])
        .await
        .assert_failure();
    assert_eq!(
        gateway.metric("registry_gateway_refusals_total{reason=\"immutable_tag\"}"),
        3.0
    );
    let mut tags = upstream_tags(&registry, repository).await;
    tags.sort();
    assert_eq!(tags, ["latest", "v1.0", "v2.0"]);
}
