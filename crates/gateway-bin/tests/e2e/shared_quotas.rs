//! Namespace quotas and image counts across replicas: three gateways in front of one Debian
//! `docker-registry`, coordinating through a real `redis-server`. 48 concurrent pushes spread
//! over the three end with exactly the quota, for repositories, tags and images; a replica
//! started later counts the manifests other replicas admitted by digest (which the registry
//! cannot list) from Redis.

use std::sync::Arc;

use http::StatusCode;
use testkit::{ManifestFormat, RawPusher, RedisServer, Registry, RegistryAuth, TestImage};

use crate::coordination::{prepare, put};
use crate::support::{Gateway, upstream_tags};

const CONFIG: &str = r#"max_image_size: 100MB
tag_count_limit: "100"
rules:
  - path: ^counted/
    limit: {max_image_size: 100MB, tag_count_limit: "100", image_count_limit: 5}
namespace_quotas: |
  - namespace: ^repos$
    hard: {repositories: "5"}
  - namespace: ^tags$
    hard: {tags: "5"}
  - namespace: ^imgs$
    hard: {images: "5"}
  - namespace: ^late$
    hard: {images: "2"}
  - namespace: ^flushed$
    hard: {repositories: "7"}
"#;

fn gateway(registry: &Registry, redis: &RedisServer) -> Gateway {
    Gateway::builder(registry.base_url())
        .config(CONFIG)
        .arg("--coordination")
        .arg(redis.url())
        .start()
}

/// 48 concurrent pushes, `(repository, tag, manifest)`, spread over `gateways` in turn; the
/// number the registry accepted. Every other answer must be the quota's refusal.
async fn race(gateways: &[Arc<Gateway>], pushes: Vec<(String, String, Arc<Vec<u8>>)>) -> usize {
    let tasks: Vec<_> = pushes
        .into_iter()
        .enumerate()
        .map(|(i, (repository, tag, manifest))| {
            let gateway = Arc::clone(&gateways[i % gateways.len()]);
            tokio::spawn(async move {
                let answer = put(&gateway, &repository, &tag, &manifest).await;
                (answer.status, answer.error_code(), answer.text())
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.expect("push task") {
            (StatusCode::CREATED, _, _) => created += 1,
            (StatusCode::FORBIDDEN, Some(code), text)
                if code == "DENIED" && text.contains("over its quota of 5") => {}
            other => panic!("unexpected answer {other:?}\n{}", gateways[0].logs()),
        }
    }
    created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_gateways_keep_each_namespace_quota_exact() {
    let registry = Registry::builder(RegistryAuth::Anonymous).start();
    let redis = RedisServer::start();
    let gateways: Vec<Arc<Gateway>> = (0..3)
        .map(|_| Arc::new(gateway(&registry, &redis)))
        .collect();

    // repositories: 5 — 48 new repositories.
    let image = TestImage::new(&[2048], 900);
    let mut pushes = Vec::new();
    for i in 0..48 {
        let repository = format!("repos/r{i}");
        let manifest = Arc::new(prepare(&registry, &repository, &image).await);
        pushes.push((repository, "v1".to_owned(), manifest));
    }
    assert_eq!(race(&gateways, pushes).await, 5);
    let mut held = 0;
    for i in 0..48 {
        if !upstream_tags(&registry, &format!("repos/r{i}"))
            .await
            .is_empty()
        {
            held += 1;
        }
    }
    assert_eq!(held, 5, "repositories the registry holds");

    // tags: 5 — 48 new tags on one image (no new image, no new repository after the first).
    let manifest = Arc::new(prepare(&registry, "tags/app", &image).await);
    let pushes = (0..48)
        .map(|i| {
            (
                "tags/app".to_owned(),
                format!("t{i}"),
                Arc::clone(&manifest),
            )
        })
        .collect();
    assert_eq!(race(&gateways, pushes).await, 5);
    assert_eq!(upstream_tags(&registry, "tags/app").await.len(), 5);

    // images: 5 — 48 distinct images.
    let mut pushes = Vec::new();
    let mut digests = Vec::new();
    for i in 0..48 {
        let image = TestImage::new(&[2048], 1000 + i);
        let manifest = prepare(&registry, "imgs/app", &image).await;
        digests.push(testkit::sha256_digest(&manifest));
        pushes.push(("imgs/app".to_owned(), format!("t{i}"), Arc::new(manifest)));
    }
    assert_eq!(race(&gateways, pushes).await, 5);
    let tags = upstream_tags(&registry, "imgs/app").await;
    assert_eq!(tags.len(), 5, "{tags:?}");
    let held = digests
        .iter()
        .enumerate()
        .filter(|(i, _)| tags.contains(&format!("t{i}")))
        .count();
    assert_eq!(held, 5, "distinct images the registry holds");

    // image_count_limit: 5 in one repository, the same race.
    let mut pushes = Vec::new();
    for i in 0..48 {
        let image = TestImage::new(&[2048], 2000 + i);
        let manifest = prepare(&registry, "counted/app", &image).await;
        pushes.push((
            "counted/app".to_owned(),
            format!("t{i}"),
            Arc::new(manifest),
        ));
    }
    let tasks: Vec<_> = pushes
        .into_iter()
        .enumerate()
        .map(|(i, (repository, tag, manifest))| {
            let gateway = Arc::clone(&gateways[i % 3]);
            tokio::spawn(async move { put(&gateway, &repository, &tag, &manifest).await.status })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.expect("push task") {
            StatusCode::CREATED => created += 1,
            StatusCode::FORBIDDEN => {}
            other => panic!("unexpected {other}\n{}", gateways[0].logs()),
        }
    }
    assert_eq!(created, 5);
    assert_eq!(upstream_tags(&registry, "counted/app").await.len(), 5);
}

/// Manifests pushed by digest without a tag are in no listing of the registry: a replica
/// started after they were pushed through another one counts them from Redis, where a gateway
/// without Redis cannot.
#[tokio::test]
async fn a_replica_started_later_counts_manifests_pushed_by_digest_through_another() {
    let registry = Registry::builder(RegistryAuth::Anonymous).start();
    let redis = RedisServer::start();
    let first = gateway(&registry, &redis);
    let pusher = RawPusher::new(first.base_url());
    for seed in [950, 951] {
        let image = TestImage::new(&[2048], seed);
        let digest = image.manifest().digest.clone();
        let answer = pusher
            .push_image(&image, "late/app", &digest, ManifestFormat::Oci, None)
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    }
    assert!(upstream_tags(&registry, "late/app").await.is_empty());
    let tagged = TestImage::new(&[2048], 952);
    let manifest = prepare(&registry, "late/app", &tagged).await;

    // Without Redis, a gateway reads the registry alone: it sees no image, and allows it.
    let alone = Gateway::builder(registry.base_url()).config(CONFIG).start();
    let pushed = put(
        &alone,
        "late/other",
        "v1",
        &prepare(&registry, "late/other", &tagged).await,
    )
    .await;
    assert_eq!(pushed.status, StatusCode::CREATED, "{}", pushed.text());

    // A replica started now counts the two by digest and this one: 3 images over 2.
    let later = gateway(&registry, &redis);
    let answer = put(&later, "late/app", "v1", &manifest).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert_eq!(
        answer.error_message().as_deref(),
        Some(
            "namespace late would hold 4 images, over its quota of 2 (namespace quota 4: ^late$): it holds 3 and this push adds 1"
        ),
        "{}",
        later.logs()
    );
    assert_eq!(
        upstream_tags(&registry, "late/app").await,
        Vec::<String>::new()
    );
}

/// Redis loses its data (a restart of an in-memory Redis): the namespace's sequence starts
/// again from the server's clock, never through numbers a replica has applied, so a replica
/// that applied pushes before the loss finds itself behind and reads the registry, rather than
/// taking the new pushes for ones it has seen and counting too few.
#[tokio::test]
async fn a_replica_is_not_fooled_by_a_namespace_log_lost_with_redis_data() {
    let registry = Registry::builder(RegistryAuth::Anonymous).start();
    let redis = RedisServer::start();
    let a = gateway(&registry, &redis);
    let b = gateway(&registry, &redis);
    let image = TestImage::new(&[2048], 970);
    let push = async |through: &Gateway, i: usize| {
        let repository = format!("flushed/r{i}");
        let manifest = prepare(&registry, &repository, &image).await;
        put(through, &repository, "v1", &manifest).await
    };
    for i in 1..=3 {
        let answer = push(&a, i).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    }
    assert!(redis.command(&["FLUSHALL"]).contains("OK"));
    for i in 4..=6 {
        let answer = push(&b, i).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    }
    // A knows 3 repositories by itself; the registry holds 6, the quota is 7.
    let answer = push(&a, 7).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let answer = push(&a, 8).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert_eq!(
        answer.error_message().as_deref(),
        Some(
            "namespace flushed would hold 8 repositories, over its quota of 7 (namespace quota 5: ^flushed$): it holds 7 and this push adds 1"
        )
    );
    let mut held = 0;
    for i in 1..=8 {
        if !upstream_tags(&registry, &format!("flushed/r{i}"))
            .await
            .is_empty()
        {
            held += 1;
        }
    }
    assert_eq!(held, 7);
}

/// Redis down: the pushes a namespace quota or an image count applies to are refused with
/// `503 UNAVAILABLE` naming the namespace (the namespace's lease cannot be had), or let through
/// unchecked with `--fail-open`; a re-push elsewhere is unaffected.
#[tokio::test]
async fn a_redis_outage_refuses_quota_pushes_or_lets_them_through_with_fail_open() {
    let registry = Registry::builder(RegistryAuth::Anonymous).start();
    let mut redis = RedisServer::start();
    let start = |extra: &[&str]| {
        let mut builder = Gateway::builder(registry.base_url())
            .config(CONFIG)
            .arg("--coordination")
            .arg(redis.url())
            .arg("--coordination-timeout")
            .arg("300ms");
        for arg in extra {
            builder = builder.arg(*arg);
        }
        builder.start()
    };
    let strict = start(&[]);
    let open = start(&["--fail-open"]);
    let image = TestImage::new(&[2048], 960);
    let manifest = prepare(&registry, "repos/outage", &image).await;
    let plain = prepare(&registry, "plain/app", &image).await;
    let first = put(&strict, "plain/app", "v1", &plain).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());

    redis.stop();
    let refused = put(&strict, "repos/outage", "v1", &manifest).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.text()
    );
    assert_eq!(refused.error_code().as_deref(), Some("UNAVAILABLE"));
    assert!(
        refused.text().contains(
            "image counts and the quota of namespace repos cannot be enforced: coordination store unreachable"
        ),
        "{}",
        refused.text()
    );
    assert!(upstream_tags(&registry, "repos/outage").await.is_empty());
    // A re-push outside any quota needs no lease.
    let again = put(&strict, "plain/app", "v1", &plain).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    // --fail-open: through, unchecked, and logged.
    let through = put(&open, "repos/outage", "v1", &manifest).await;
    assert_eq!(through.status, StatusCode::CREATED, "{}", through.text());
    assert!(
        open.logs()
            .contains("image and namespace counts not coordinated; allowed by --fail-open"),
        "{}",
        open.logs()
    );
}
