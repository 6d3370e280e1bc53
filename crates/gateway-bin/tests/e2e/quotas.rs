//! `image_count_limit` and `namespace_quotas` enforced by one gateway in front of Debian's
//! `docker-registry` (distribution 2.8), pushed to with `skopeo` and raw HTTP: each kind refused
//! exactly at its limit with its message, storage counting a shared blob once, 16 concurrent
//! pushes against a repository quota, a tag deleted at the registry freeing its place, and a
//! multi-platform image whose platform manifests arrive before their index, a forged delete
//! notification bounded by the confirmation near a limit; podman prints a quota refusal as users
//! see it (the Docker CLI: `docker.rs`).

use http::StatusCode;
use limits_core::ByteSize;
use testkit::{ManifestFormat, RawPusher, Registry, RegistryAuth, TestImage};

use crate::inventory::{stored, usage};
use crate::support::{Gateway, eventually, upstream_tags};

const KB: u64 = 1024;

const CONFIG: &str = r#"max_image_size: 100MB
tag_count_limit: "100"
rules:
  - path: ^counted/
    limit: {max_image_size: 100MB, tag_count_limit: "100", image_count_limit: 2}
  - path: ^lone$
    limit: {max_image_size: 100MB, tag_count_limit: "100", image_count_limit: 2}
namespace_quotas: |
  - namespace: ^repos$
    hard: {repositories: "2"}
  - namespace: ^imgs$
    hard: {images: "2"}
  - namespace: ^tags$
    hard: {tags: "2"}
  - namespace: ^store$
    hard: {storage: 100KB}
  - namespace: ^race$
    hard: {repositories: "5"}
  - namespace: ^multi$
    hard: {images: "1"}
  - namespace: ^pod$
    hard: {repositories: "1"}
  - namespace: ^forged$
    hard: {tags: "4"}
"#;

fn start() -> (Registry, Gateway) {
    let registry = Registry::builder(RegistryAuth::Anonymous).start();
    let gateway = Gateway::builder(registry.base_url()).config(CONFIG).start();
    (registry, gateway)
}

async fn refused(gateway: &Gateway, image: &TestImage, repository: &str, tag: &str, message: &str) {
    let out = gateway.push(image, repository, tag, &[]).await;
    out.assert_failure();
    assert!(
        out.stderr.contains(&format!("denied: {message}")),
        "expected {message:?} in:\n{}",
        out.stderr
    );
}

#[tokio::test]
async fn each_quota_kind_and_the_image_count_are_refused_exactly_at_their_limit() {
    let (registry, gateway) = start();
    let images: Vec<TestImage> = (0..4).map(|i| TestImage::new(&[4 * KB], 700 + i)).collect();

    // repositories: 2
    gateway
        .push(&images[0], "repos/a", "v1", &[])
        .await
        .assert_success();
    gateway
        .push(&images[0], "repos/b", "v1", &[])
        .await
        .assert_success();
    refused(&gateway, &images[0], "repos/c", "v1",
        "namespace repos would hold 3 repositories, over its quota of 2 (namespace quota 1: ^repos$): it holds 2 and this push adds 1").await;
    assert!(upstream_tags(&registry, "repos/c").await.is_empty());
    // A new tag in a repository that holds one adds no repository.
    gateway
        .push(&images[1], "repos/a", "v2", &[])
        .await
        .assert_success();

    // images: 2 (a new tag on a digest the repository holds adds none)
    gateway
        .push(&images[0], "imgs/a", "v1", &[])
        .await
        .assert_success();
    gateway
        .push(&images[1], "imgs/b", "v1", &[])
        .await
        .assert_success();
    refused(&gateway, &images[2], "imgs/a", "v2",
        "namespace imgs would hold 3 images, over its quota of 2 (namespace quota 2: ^imgs$): it holds 2 and this push adds 1").await;
    gateway
        .push(&images[0], "imgs/a", "v3", &[])
        .await
        .assert_success();
    assert_eq!(upstream_tags(&registry, "imgs/a").await, ["v1", "v3"]);

    // tags: 2
    gateway
        .push(&images[0], "tags/a", "v1", &[])
        .await
        .assert_success();
    gateway
        .push(&images[0], "tags/a", "v2", &[])
        .await
        .assert_success();
    refused(&gateway, &images[0], "tags/b", "v1",
        "namespace tags would hold 3 tags, over its quota of 2 (namespace quota 3: ^tags$): it holds 2 and this push adds 1").await;
    // Re-pushing a tag adds none.
    gateway
        .push(&images[0], "tags/a", "v2", &[])
        .await
        .assert_success();

    // image_count_limit: 2 in counted/app
    gateway
        .push(&images[0], "counted/app", "v1", &[])
        .await
        .assert_success();
    gateway
        .push(&images[1], "counted/app", "v2", &[])
        .await
        .assert_success();
    refused(&gateway, &images[2], "counted/app", "v3",
        "image count 3 would exceed the limit of 2 for repository counted/app (rule 1: ^counted/): the repository holds 2 images and this push adds a new one").await;
    gateway
        .push(&images[0], "counted/app", "v4", &[])
        .await
        .assert_success();
    assert_eq!(
        upstream_tags(&registry, "counted/app").await,
        ["v1", "v2", "v4"]
    );
    assert!(
        gateway.metric("registry_gateway_decisions_total{check=\"namespace_images\",verdict=\"denied\",rule=\"namespace_quota_2\",enforcement=\"deny\"}") >= 1.0
    );
}

/// A repository without a namespace (no `/` in its name) has its images counted all the same:
/// the inventory keeps it alone.
#[tokio::test]
async fn the_image_count_holds_for_a_repository_without_a_namespace() {
    let (registry, gateway) = start();
    let images: Vec<TestImage> = (0..3).map(|i| TestImage::new(&[4 * KB], 780 + i)).collect();
    for (image, tag) in images.iter().zip(["v1", "v2"]) {
        gateway.push(image, "lone", tag, &[]).await.assert_success();
    }
    refused(&gateway, &images[2], "lone", "v3",
        "image count 3 would exceed the limit of 2 for repository lone (rule 2: ^lone$): the repository holds 2 images and this push adds a new one").await;
    gateway
        .push(&images[0], "lone", "v4", &[])
        .await
        .assert_success();
    assert_eq!(upstream_tags(&registry, "lone").await, ["v1", "v2", "v4"]);
    // Another repository without a namespace is counted apart.
    gateway
        .push(&images[2], "lonely", "v1", &[])
        .await
        .assert_success();
}

#[tokio::test]
async fn storage_counts_a_blob_shared_by_two_repositories_once() {
    let (registry, gateway) = start();
    let shared = TestImage::new(&[40 * KB], 720);
    let second = TestImage::new(&[40 * KB], 721);
    let third = TestImage::new(&[40 * KB], 722);
    gateway
        .push(&shared, "store/a", "v1", &[])
        .await
        .assert_success();
    gateway
        .push(&shared, "store/b", "v1", &[])
        .await
        .assert_success();
    assert_eq!(usage(&gateway, "store").3, stored(&shared));
    gateway
        .push(&second, "store/a", "v2", &[])
        .await
        .assert_success();
    let held = stored(&shared) + stored(&second);
    assert_eq!(usage(&gateway, "store").3, held);
    let added = stored(&third);
    let total = held + added;
    let message = format!(
        "namespace store would store {} ({total} bytes), over its storage quota of 100 KiB (102400 bytes) (namespace quota 4: ^store$): it stores {} ({held} bytes) and this push adds {} ({added} bytes) of new blobs",
        ByteSize::new(total),
        ByteSize::new(held),
        ByteSize::new(added)
    );
    refused(&gateway, &third, "store/c", "v1", &message).await;
    assert!(upstream_tags(&registry, "store/c").await.is_empty());
    // Blobs the namespace holds add nothing.
    gateway
        .push(&second, "store/c", "v1", &[])
        .await
        .assert_success();
}

#[tokio::test]
async fn sixteen_concurrent_pushes_of_new_repositories_end_with_exactly_five() {
    let (registry, gateway) = start();
    let image = TestImage::new(&[4 * KB], 730);
    let host = gateway.host();
    let pushes: Vec<_> = (0..16)
        .map(|i| {
            let (host, image) = (host.clone(), image.clone());
            tokio::spawn(async move {
                testkit::skopeo_push(&host, &image, &format!("race/r{i}"), "v1", &[], None).await
            })
        })
        .collect();
    let mut admitted = 0;
    for push in pushes {
        let out = push.await.expect("push task");
        if out.success() {
            admitted += 1;
        } else {
            assert!(
                out.stderr
                    .contains("over its quota of 5 (namespace quota 5: ^race$)"),
                "{}",
                out.stderr
            );
        }
    }
    assert_eq!(admitted, 5);
    let mut held = 0;
    for i in 0..16 {
        if !upstream_tags(&registry, &format!("race/r{i}"))
            .await
            .is_empty()
        {
            held += 1;
        }
    }
    assert_eq!(held, 5);
    assert_eq!(usage(&gateway, "race").0, 5);
}

#[tokio::test]
async fn a_tag_deleted_at_the_registry_frees_its_place_after_the_notification() {
    let admin_port = testkit::free_port();
    let registry = Registry::builder(RegistryAuth::Anonymous)
        .extra_config(&crate::inventory::guide_snippet(admin_port))
        .start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{}\n", crate::inventory::TOKEN)).expect("token file");
    let gateway = Gateway::builder(registry.base_url())
        .config(CONFIG)
        .admin_port(admin_port)
        .arg("--notifications-token-file")
        .arg(token_file.display().to_string())
        .arg("--inventory-refresh")
        .arg("1h")
        .start();
    let first = TestImage::new(&[4 * KB], 740);
    let second = TestImage::new(&[4 * KB], 741);
    let third = TestImage::new(&[4 * KB], 742);
    gateway
        .push(&first, "tags/app", "v1", &[])
        .await
        .assert_success();
    gateway
        .push(&second, "tags/app", "v2", &[])
        .await
        .assert_success();
    refused(&gateway, &third, "tags/app", "v3",
        "namespace tags would hold 3 tags, over its quota of 2 (namespace quota 3: ^tags$): it holds 2 and this push adds 1").await;
    crate::inventory::delete_at_registry(&registry, "tags/app", &second.manifest().digest).await;
    eventually("the notified delete", || usage(&gateway, "tags").2 == 1).await;
    gateway
        .push(&third, "tags/app", "v3", &[])
        .await
        .assert_success();
    assert_eq!(upstream_tags(&registry, "tags/app").await, ["v1", "v3"]);
}

/// Pushes each of `children` by digest, then an index of them as `tag`; the index's answer.
async fn push_multi_platform(
    pusher: &RawPusher,
    repository: &str,
    children: &[TestImage],
    tag: &str,
) -> testkit::RawResponse {
    let mut manifests = Vec::new();
    for (child, arch) in children.iter().zip(["amd64", "arm64", "s390x"]) {
        let digest = child.manifest().digest.clone();
        let answer = pusher
            .push_image(child, repository, &digest, ManifestFormat::Oci, None)
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        manifests.push(serde_json::json!({
            "mediaType": ManifestFormat::Oci.media_type(),
            "digest": digest,
            "size": child.manifest_as(ManifestFormat::Oci, None).len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    })
    .to_string();
    pusher
        .put_manifest(
            repository,
            tag,
            "application/vnd.oci.image.index.v1+json",
            index.as_bytes(),
        )
        .await
}

/// The rule for platform manifests pushed by digest (user guide): counted from their push,
/// refused only past the limit plus the platform grace; the index that names them is one new
/// image in their place, so a multi-platform push is refused at its index, never midway.
#[tokio::test]
async fn platform_manifests_before_their_index_do_not_make_images_refuse_midway() {
    let (registry, gateway) = start();
    let pusher = RawPusher::new(gateway.base_url());
    let first: Vec<TestImage> = (0..3).map(|i| TestImage::new(&[2 * KB], 750 + i)).collect();
    let answer = push_multi_platform(&pusher, "multi/app", &first, "v1").await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(usage(&gateway, "multi").1, 1);
    // A second multi-platform image: its platform manifests pass, its index is refused.
    let second: Vec<TestImage> = (0..2).map(|i| TestImage::new(&[2 * KB], 760 + i)).collect();
    let answer = push_multi_platform(&pusher, "multi/app", &second, "v2").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert_eq!(
        answer.error_message().as_deref(),
        Some(
            "namespace multi would hold 2 images, over its quota of 1 (namespace quota 6: ^multi$): it holds 1 and this push adds 1"
        )
    );
    assert_eq!(upstream_tags(&registry, "multi/app").await, ["v1"]);
    // Pushed by digest only, they count: the namespace is over its quota until they go.
    assert_eq!(usage(&gateway, "multi").1, 3);
}

/// podman, as users push: a namespace quota's refusal reaches it and is printed with the
/// gateway's message, and nothing of the refused repository reaches the registry.
#[tokio::test]
async fn podman_prints_a_namespace_quota_refusal() {
    let (registry, gateway) = start();
    let image = TestImage::new(&[8 * KB], 760);
    testkit::skopeo_push(&registry.host(), &image, "source/pod", "v1", &[], None)
        .await
        .assert_success();
    let source = format!("{}/source/pod:v1", registry.host());
    testkit::pull_and_push(
        testkit::PODMAN,
        &source,
        &format!("{}/pod/a:v1", gateway.host()),
    )
    .await
    .assert_success();
    let out = testkit::pull_and_push(
        testkit::PODMAN,
        &source,
        &format!("{}/pod/b:v1", gateway.host()),
    )
    .await;
    out.assert_failure();
    let printed = format!("{}{}", out.stdout, out.stderr);
    assert!(
        printed.contains(
            "denied: namespace pod would hold 2 repositories, over its quota of 1 (namespace quota 7: ^pod$): it holds 1 and this push adds 1"
        ),
        "{printed}"
    );
    assert!(upstream_tags(&registry, "pod/b").await.is_empty());
    assert_eq!(upstream_tags(&registry, "pod/a").await, ["v1"]);
}

/// A forged delete notification (no token file: anyone who reaches the admin listener may post)
/// takes 4 tags off the count a quota of 4 is decided on: pushes pass unconfirmed until one lands
/// within one of the limit, whose confirmation reads the registry, refuses, and corrects the
/// inventory. The forged 4 let 2 tags past the quota (security class 11).
#[tokio::test]
async fn a_forged_delete_notification_lets_pushes_past_a_quota_until_a_confirmation() {
    let registry = Registry::builder(RegistryAuth::Anonymous).start();
    let gateway = Gateway::builder(registry.base_url())
        .config(CONFIG)
        .arg("--inventory-refresh")
        .arg("1h")
        .start();
    let images: Vec<TestImage> = (0..7).map(|i| TestImage::new(&[2 * KB], 780 + i)).collect();
    for (i, image) in images.iter().take(4).enumerate() {
        gateway
            .push(image, "forged/app", &format!("v{i}"), &[])
            .await
            .assert_success();
    }
    assert_eq!(usage(&gateway, "forged").2, 4);

    let events: Vec<String> = images[..4]
        .iter()
        .map(|image| {
            format!(
                r#"{{"action":"delete","target":{{"repository":"forged/app","digest":"{}"}}}}"#,
                image.manifest().digest
            )
        })
        .collect();
    let forged = format!(r#"{{"events":[{}]}}"#, events.join(","));
    let (status, text) = crate::inventory::post(
        &gateway,
        None,
        "application/vnd.docker.distribution.events.v1+json",
        forged.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(usage(&gateway, "forged").2, 0);

    // Counted 0 and 1 of 4: far from the limit, admitted on the inventory alone.
    for (i, image) in images.iter().enumerate().skip(4).take(2) {
        gateway
            .push(image, "forged/app", &format!("v{i}"), &[])
            .await
            .assert_success();
    }
    // Counted 2 of 4, the push would take it within one of the limit: the registry is read.
    refused(&gateway, &images[6], "forged/app", "v6",
        "namespace forged would hold 7 tags, over its quota of 4 (namespace quota 8: ^forged$): it holds 6 and this push adds 1").await;
    assert_eq!(upstream_tags(&registry, "forged/app").await.len(), 6);
    assert_eq!(usage(&gateway, "forged").2, 6);
    assert_eq!(
        gateway.metric("registry_gateway_inventory_corrections_total{kind=\"tag_added\"}"),
        4.0
    );
}
