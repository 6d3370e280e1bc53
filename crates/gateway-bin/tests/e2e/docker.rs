//! The Docker CLI, the client most people push with: `docker push` and `docker pull` through
//! the gateway, with a Docker engine of the test's own (`testkit::DockerDaemon`) in front of a
//! real registry. Images are made from tarballs of pseudo-random bytes (`docker import`, and a
//! second layer added with `docker cp` + `docker commit`), since nothing can be pulled here.
//! Docker gzips each layer as it pushes it; pseudo-random bytes do not compress, so a layer of
//! N bytes is pushed as about N + 0.03 % + 2 KiB, far enough from the limits below.
//! Namespace quotas are refused with the gateway's message too (`QUOTAS`).

use testkit::{DockerDaemon, Registry};

use crate::support::{Gateway, upstream_tags};

/// 1 MiB and two tags per repository.
const CONFIG: &str = r#"
max_image_size: "1MB"
tag_count_limit: "2"
"#;

const SPLICED: &str = r#"registry_gateway_read_relay_body_bytes_total{how="splice"}"#;
const COPIED: &str = r#"registry_gateway_read_relay_body_bytes_total{how="copy"}"#;

fn start() -> (Registry, Gateway, DockerDaemon) {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url()).config(CONFIG).start();
    (registry, gateway, DockerDaemon::start())
}

/// A layer holding one file, named after `seed`, of `size` pseudo-random bytes.
fn layer(size: usize, seed: u64) -> Vec<u8> {
    testkit::tar_file(
        &format!("data-{seed}.bin"),
        &testkit::pseudo_random_bytes(size, seed),
    )
}

/// What docker printed, both streams.
fn printed(output: &testkit::CommandOutput) -> String {
    format!("{}{}", output.stdout, output.stderr)
}

#[tokio::test]
async fn docker_push_within_the_limits_succeeds_and_pulls_back_the_same_image() {
    let (registry, gateway, docker) = start();
    let reference = format!("{}/docker/app:v1", gateway.host());
    let id = docker.import(&reference, &layer(600_000, 1)).await;

    let push = docker.run(&["push", &reference]).await;
    push.assert_success();
    assert!(
        push.stdout.contains("v1: digest: sha256:"),
        "{}",
        printed(&push)
    );
    assert_eq!(upstream_tags(&registry, "docker/app").await, vec!["v1"]);

    // Gone from the engine, then pulled back through the gateway's read relay.
    docker.run(&["rmi", &reference]).await.assert_success();
    assert!(
        !docker
            .run(&["image", "inspect", &reference])
            .await
            .success()
    );
    let relayed_before = gateway.metric(SPLICED) + gateway.metric(COPIED);
    let pull = docker.run(&["pull", &reference]).await;
    pull.assert_success();
    assert!(
        pull.stdout.contains("Downloaded newer image"),
        "{}",
        printed(&pull)
    );
    assert_eq!(docker.image_id(&reference).await, id);
    let relayed = gateway.metric(SPLICED) + gateway.metric(COPIED) - relayed_before;
    assert!(
        relayed >= 600_000.0,
        "the layer did not come through the read relay: {relayed} bytes relayed"
    );
}

#[tokio::test]
async fn docker_push_over_the_size_limit_is_denied_with_the_gateway_message() {
    let (registry, gateway, docker) = start();

    // Two layers of 600 kB: each passes the upload check, the manifest (1.2 MB) does not.
    let base = format!("{}/docker/too-big:base", gateway.host());
    let image = format!("{}/docker/too-big:v1", gateway.host());
    docker.import(&base, &layer(600_000, 2)).await;
    docker.add_layer(&base, &image, &layer(600_000, 3)).await;
    let push = docker.run(&["push", &image]).await;
    push.assert_failure();
    let text = printed(&push);
    assert!(
        text.contains("denied: image size ")
            && text.contains(" exceeds the limit of 1")
            && text.contains("for repository docker/too-big (global limit)"),
        "{text}"
    );
    assert!(upstream_tags(&registry, "docker/too-big").await.is_empty());

    // One layer of 1.5 MB is refused while it is uploaded: it can be part of no allowed image.
    // docker compresses the layer as it sends it and announces no size: the upload is stopped
    // where it passes the limit, and docker prints where that was.
    let huge = format!("{}/docker/huge-layer:v1", gateway.host());
    docker.import(&huge, &layer(1_500_000, 4)).await;
    let push = docker.run(&["push", &huge]).await;
    push.assert_failure();
    let text = printed(&push);
    assert!(
        text.contains("denied: layer upload stopped at ")
            && text.contains(
                " bytes, where it passed the image size limit of 1 MiB (1048576 bytes) for repository docker/huge-layer (global limit); the client did not announce the layer's size"
            ),
        "{text}"
    );
    assert!(
        upstream_tags(&registry, "docker/huge-layer")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn docker_push_over_the_tag_limit_is_denied_with_the_gateway_message() {
    let (registry, gateway, docker) = start();
    let repository = format!("{}/docker/tags", gateway.host());
    let v1 = format!("{repository}:v1");
    docker.import(&v1, &layer(100_000, 5)).await;
    for tag in ["v2", "v3"] {
        docker
            .run(&["tag", &v1, &format!("{repository}:{tag}")])
            .await
            .assert_success();
    }

    docker.run(&["push", &v1]).await.assert_success();
    docker
        .run(&["push", &format!("{repository}:v2")])
        .await
        .assert_success();
    let third = docker.run(&["push", &format!("{repository}:v3")]).await;
    third.assert_failure();
    let text = printed(&third);
    assert!(
        text.contains(
            "denied: tag count 3 would exceed the limit of 2 for repository docker/tags \
             (global limit): the repository holds 2 tags and this push adds 1"
        ),
        "{text}"
    );
    assert_eq!(
        upstream_tags(&registry, "docker/tags").await,
        vec!["v1", "v2"]
    );

    // Pushing a tag the repository holds creates none: allowed at the limit.
    docker.run(&["push", &v1]).await.assert_success();
}

/// Namespace quotas: two tags in `dtags`, one image in `dimgs`.
const QUOTAS: &str = r#"
max_image_size: "1MB"
tag_count_limit: "100"
namespace_quotas: |
  - namespace: ^dtags$
    hard: {tags: "2"}
  - namespace: ^dimgs$
    hard: {images: "1"}
"#;

/// A namespace quota's refusal as docker users see it: the third tag of a namespace is refused
/// in a repository of its own, a second image is refused while a second tag of the image the
/// namespace holds passes, and the registry holds exactly what was allowed.
#[tokio::test]
async fn docker_push_over_a_namespace_quota_is_denied_with_the_gateway_message() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url()).config(QUOTAS).start();
    let docker = DockerDaemon::start();
    let host = gateway.host();

    // tags: 2, counted across the namespace's repositories.
    let first = format!("{host}/dtags/a:v1");
    docker.import(&first, &layer(100_000, 6)).await;
    for other in ["dtags/a:v2", "dtags/b:v1"] {
        docker
            .run(&["tag", &first, &format!("{host}/{other}")])
            .await
            .assert_success();
    }
    docker.run(&["push", &first]).await.assert_success();
    docker
        .run(&["push", &format!("{host}/dtags/a:v2")])
        .await
        .assert_success();
    let third = docker.run(&["push", &format!("{host}/dtags/b:v1")]).await;
    third.assert_failure();
    let text = printed(&third);
    assert!(
        text.contains(
            "denied: namespace dtags would hold 3 tags, over its quota of 2 \
             (namespace quota 1: ^dtags$): it holds 2 and this push adds 1"
        ),
        "{text}"
    );
    assert_eq!(upstream_tags(&registry, "dtags/a").await, ["v1", "v2"]);
    assert!(upstream_tags(&registry, "dtags/b").await.is_empty());

    // images: 1. A new tag on the image the repository holds adds none; a new image is refused.
    let image = format!("{host}/dimgs/app:v1");
    let retagged = format!("{host}/dimgs/app:v2");
    let other = format!("{host}/dimgs/app:v3");
    docker.import(&image, &layer(100_000, 7)).await;
    docker.import(&other, &layer(100_000, 8)).await;
    docker
        .run(&["tag", &image, &retagged])
        .await
        .assert_success();
    docker.run(&["push", &image]).await.assert_success();
    docker.run(&["push", &retagged]).await.assert_success();
    let refused = docker.run(&["push", &other]).await;
    refused.assert_failure();
    let text = printed(&refused);
    assert!(
        text.contains(
            "denied: namespace dimgs would hold 2 images, over its quota of 1 \
             (namespace quota 2: ^dimgs$): it holds 1 and this push adds 1"
        ),
        "{text}"
    );
    assert_eq!(upstream_tags(&registry, "dimgs/app").await, ["v1", "v2"]);
}
