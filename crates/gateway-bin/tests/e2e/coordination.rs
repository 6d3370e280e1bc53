//! Several gateways in front of one registry, coordinating through a real `redis-server`:
//! the tag limit stays exact across replicas, a replica that dies holding a lease blocks its
//! repository only until the lease expires, a Redis outage refuses only tag-creating pushes
//! and leaves every replica ready, and repositories never wait on each other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use testkit::{ManifestFormat, RawPusher, RedisServer, Registry, TestImage};

use crate::support::{DelayingProxy, Gateway, get, upstream_tags};

const CONFIG: &str = r#"
max_image_size: "100MB"
tag_count_limit: "100"
rules: |
  - path: ^race/.*
    limit:
      max_image_size: "1MB"
      tag_count_limit: "5"
  - path: ^one/.*
    limit:
      max_image_size: "1MB"
      tag_count_limit: "1"
"#;

/// A gateway in front of `upstream` coordinating through `redis`.
fn gateway(upstream: url::Url, redis: &RedisServer, extra: &[&str]) -> Gateway {
    let url = redis.url();
    let mut args = vec!["--coordination", url.as_str()];
    args.extend_from_slice(extra);
    gateway_with(upstream, &args)
}

/// A gateway in front of `upstream` with [`CONFIG`] and these `serve` arguments.
fn gateway_with(upstream: url::Url, args: &[&str]) -> Gateway {
    let mut builder = Gateway::builder(upstream).config(CONFIG);
    for arg in args {
        builder = builder.arg(*arg);
    }
    builder.start()
}

/// Uploads the image's blobs to `repository` directly on the registry; returns its manifest.
pub async fn prepare(registry: &Registry, repository: &str, image: &TestImage) -> Vec<u8> {
    let direct = RawPusher::for_registry(registry, repository);
    for blob in image.layers().iter().chain([image.config()]) {
        let answer = direct.upload_blob(repository, blob).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    }
    image.manifest_as(ManifestFormat::Oci, None)
}

/// Pushes `manifest` (OCI) as `repository:tag` through `gateway`.
pub async fn put(
    gateway: &Gateway,
    repository: &str,
    tag: &str,
    manifest: &[u8],
) -> testkit::RawResponse {
    RawPusher::new(gateway.base_url())
        .put_manifest(repository, tag, testkit::OCI_MANIFEST, manifest)
        .await
}

/// Waits until some gateway holds `repository`'s lease in Redis.
async fn wait_for_lease(redis: &RedisServer, repository: &str, gateway: &Gateway) {
    let key = format!("registry-gateway:lease:{repository}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis.command(&["EXISTS", &key]).contains(":1") {
        assert!(
            Instant::now() < deadline,
            "no lease on {repository}\n{}",
            gateway.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_gateways_keep_the_tag_limit_exact() {
    let registry = Registry::anonymous();
    let redis = RedisServer::start();
    let gateways: Vec<Arc<Gateway>> = (0..3)
        .map(|_| Arc::new(gateway(registry.base_url(), &redis, &[])))
        .collect();
    let image = TestImage::new(&[2048], 1);
    for round in 1..=3 {
        let repository = format!("race/round-{round}");
        let manifest = Arc::new(prepare(&registry, &repository, &image).await);
        let pushes: Vec<_> = (0..48)
            .map(|i| {
                let gateway = Arc::clone(&gateways[i % 3]);
                let manifest = Arc::clone(&manifest);
                let repository = repository.clone();
                tokio::spawn(async move {
                    let answer = put(&gateway, &repository, &format!("t{i}"), &manifest).await;
                    (answer.status, answer.error_code())
                })
            })
            .collect();
        let mut created = 0;
        for push in pushes {
            match push.await.expect("push task") {
                (StatusCode::CREATED, _) => created += 1,
                (StatusCode::FORBIDDEN, Some(code)) if code == "DENIED" => {}
                other => panic!(
                    "round {round}: unexpected answer {other:?}\n{}",
                    gateways[0].logs()
                ),
            }
        }
        let tags = upstream_tags(&registry, &repository).await;
        assert_eq!(tags.len(), 5, "round {round}: the registry holds {tags:?}");
        assert_eq!(created, 5, "round {round}: {created} pushes were accepted");
    }
    for gateway in &gateways {
        assert!(
            gateway.metric("registry_gateway_coordination_up") == 1.0,
            "{}",
            gateway.metrics()
        );
    }
}

#[tokio::test]
async fn a_tag_pushed_through_one_gateway_counts_at_once_on_another() {
    // Gateway B's registry is another one, which never holds A's tag: B can only know of it
    // from Redis.
    let registry_a = Registry::anonymous();
    let registry_b = Registry::anonymous();
    let redis = RedisServer::start();
    let a = gateway(registry_a.base_url(), &redis, &[]);
    let b = gateway(registry_b.base_url(), &redis, &[]);
    let image = TestImage::new(&[2048], 2);
    let manifest = prepare(&registry_a, "one/app", &image).await;
    prepare(&registry_b, "one/app", &image).await;
    let first = put(&a, "one/app", "v1", &manifest).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert!(upstream_tags(&registry_b, "one/app").await.is_empty());
    let second = put(&b, "one/app", "v2", &manifest).await;
    assert_eq!(second.status, StatusCode::FORBIDDEN, "{}", second.text());
    assert!(
        second
            .text()
            .contains("the repository holds 1 tag and this push adds 1"),
        "{}",
        second.text()
    );
    // Without Redis, B would have allowed it: its registry lists no tag.
    let alone = Gateway::builder(registry_b.base_url())
        .config(CONFIG)
        .start();
    let third = put(&alone, "one/app", "v2", &manifest).await;
    assert_eq!(third.status, StatusCode::CREATED, "{}", third.text());
}

#[tokio::test]
async fn a_gateway_killed_holding_a_lease_blocks_only_until_it_expires() {
    let registry = Registry::anonymous();
    let redis = RedisServer::start();
    // A's pushes take 30 s to reach the registry: A holds the lease all that time.
    let slow = DelayingProxy::start(registry.port(), Duration::from_secs(30)).await;
    let a = gateway(slow.url(), &redis, &["--lease-ttl", "2s"]);
    let b = gateway(registry.base_url(), &redis, &["--lease-ttl", "2s"]);
    let image = TestImage::new(&[2048], 3);
    let manifest = prepare(&registry, "race/killed", &image).await;
    let held = {
        let url = a.base_url();
        let manifest = manifest.clone();
        tokio::spawn(async move {
            RawPusher::new(url)
                .put_manifest("race/killed", "held", testkit::OCI_MANIFEST, &manifest)
                .await
        })
    };
    // Wait until A holds the lease, then kill it with SIGKILL.
    wait_for_lease(&redis, "race/killed", &a).await;
    drop(a);
    let killed = Instant::now();
    held.abort();
    let answer = put(&b, "race/killed", "after", &manifest).await;
    let waited = killed.elapsed();
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{}\n{}",
        answer.text(),
        b.logs()
    );
    assert!(
        waited <= Duration::from_secs(3),
        "B waited {waited:?} for a lease of 2 s"
    );
}

#[tokio::test]
async fn a_redis_outage_refuses_only_tag_creating_pushes() {
    let registry = Registry::anonymous();
    let mut redis = RedisServer::start();
    let g = gateway(
        registry.base_url(),
        &redis,
        &["--coordination-timeout", "300ms"],
    );
    let image = TestImage::new(&[2048], 4);
    let manifest = prepare(&registry, "race/outage", &image).await;
    let first = put(&g, "race/outage", "v1", &manifest).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());

    redis.stop();
    let refused = put(&g, "race/outage", "v2", &manifest).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.text()
    );
    assert_eq!(refused.error_code().as_deref(), Some("UNAVAILABLE"));
    assert!(
        refused
            .text()
            .contains("tag limit cannot be enforced: coordination store unreachable"),
        "{}",
        refused.text()
    );
    // A re-push of an existing tag and a pull still work.
    let again = put(&g, "race/outage", "v1", &manifest).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    let pull = reqwest::Client::new()
        .get(
            g.base_url()
                .join("v2/race/outage/manifests/v1")
                .expect("url"),
        )
        .header("Accept", testkit::OCI_MANIFEST)
        .send()
        .await
        .expect("pull answered");
    assert_eq!(pull.status(), StatusCode::OK);
    assert_eq!(
        pull.bytes().await.expect("manifest").as_ref(),
        manifest.as_slice()
    );
    assert_eq!(g.metric("registry_gateway_coordination_up"), 0.0);
    // The replica can still serve, so it stays ready; the store's state has its own endpoint.
    let (status, body) = crate::support::get(g.admin_port, "/readyz").expect("readyz");
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        crate::support::get(g.admin_port, "/readyz/coordination").expect("readyz/coordination");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("coordination store not ready"), "{body}");

    // Redis comes back (empty, as after losing its data): pushes go through, no restart.
    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = put(&g, "race/outage", "v3", &manifest).await;
        if answer.status == StatusCode::CREATED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pushes still refused after Redis came back: {}",
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(g.metric("registry_gateway_coordination_reconnects_total") >= 1.0);
    // Probes are reused for a second.
    crate::support::eventually("/readyz/coordination answers 200 again", || {
        crate::support::get(g.admin_port, "/readyz/coordination").map(|(s, _)| s) == Some(200)
    })
    .await;
}

/// What Kubernetes sees of a Redis outage: every replica stays ready (in the Service), with or
/// without `--fail-open`, while `/readyz/coordination`, `registry_gateway_coordination_up` and
/// the log report the store, without waiting for a push to notice. Pulls and re-pushes go on;
/// a new tag is refused, or let through by `--fail-open`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_keeps_every_replica_ready() {
    let registry = Registry::anonymous();
    let mut redis = RedisServer::start();
    let closed = gateway(
        registry.base_url(),
        &redis,
        &["--coordination-timeout", "300ms"],
    );
    let open = gateway(
        registry.base_url(),
        &redis,
        &["--coordination-timeout", "300ms", "--fail-open"],
    );
    let replicas = [&closed, &open];
    let image = TestImage::new(&[2048], 6);
    let manifest = prepare(&registry, "race/ready", &image).await;
    let first = put(&closed, "race/ready", "v1", &manifest).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    for g in replicas {
        let (status, body) = get(g.admin_port, "/readyz/coordination").expect("answer");
        assert_eq!((status, body.as_str()), (200, "coordination store ready\n"));
    }

    redis.stop();
    // No push needed: the store is pinged in the background.
    for g in replicas {
        crate::support::eventually("registry_gateway_coordination_up == 0", || {
            g.metric("registry_gateway_coordination_up") == 0.0
        })
        .await;
        assert!(
            g.logs().contains("coordination store unreachable"),
            "{}",
            g.logs()
        );
    }
    // Twice, more than a probe's reuse apart: a fresh probe gives the same answers.
    for _ in 0..2 {
        for g in replicas {
            let (status, body) = get(g.admin_port, "/readyz").expect("readyz");
            assert_eq!((status, body.as_str()), (200, "ready\n"));
            let (status, body) = get(g.admin_port, "/readyz/coordination").expect("answer");
            assert_eq!(status, 503, "{body}");
            assert!(body.starts_with("coordination store not ready: "), "{body}");
        }
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    let client = reqwest::Client::new();
    for g in replicas {
        // Pulls: the manifest and a layer.
        let pull = client
            .get(
                g.base_url()
                    .join("v2/race/ready/manifests/v1")
                    .expect("url"),
            )
            .header("Accept", testkit::OCI_MANIFEST)
            .send()
            .await
            .expect("pull answered");
        assert_eq!(pull.status(), StatusCode::OK);
        assert_eq!(
            pull.bytes().await.expect("manifest").as_ref(),
            &manifest[..]
        );
        let layer = &image.layers()[0];
        let blob = client
            .get(
                g.base_url()
                    .join(&format!("v2/race/ready/blobs/{}", layer.digest))
                    .expect("url"),
            )
            .send()
            .await
            .expect("blob answered");
        assert_eq!(blob.status(), StatusCode::OK);
        assert_eq!(blob.bytes().await.expect("blob").as_ref(), &layer.data[..]);
        // A re-push of an existing tag needs no lease.
        let again = put(g, "race/ready", "v1", &manifest).await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    }
    // A new tag: refused by the replica that fails closed, let through by the other.
    let refused = put(&closed, "race/ready", "v2", &manifest).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.text()
    );
    let allowed = put(&open, "race/ready", "v3", &manifest).await;
    assert_eq!(allowed.status, StatusCode::CREATED, "{}", allowed.text());

    redis.resume();
    for g in replicas {
        crate::support::eventually("registry_gateway_coordination_up == 1", || {
            g.metric("registry_gateway_coordination_up") == 1.0
        })
        .await;
        crate::support::eventually("/readyz/coordination answers 200 again", || {
            get(g.admin_port, "/readyz/coordination").map(|(s, _)| s) == Some(200)
        })
        .await;
        assert!(
            g.logs().contains("coordination store answers again"),
            "{}",
            g.logs()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repositories_never_wait_on_each_other() {
    let registry = Registry::anonymous();
    let redis = RedisServer::start();
    // Pushes to race/slow take 3 s to reach the registry; others pass at once.
    let proxy =
        DelayingProxy::start_for(registry.port(), Duration::from_secs(3), "race/slow").await;
    let g = Arc::new(gateway(proxy.url(), &redis, &[]));
    let image = TestImage::new(&[2048], 5);
    let manifest = Arc::new(prepare(&registry, "race/slow", &image).await);
    prepare(&registry, "race/fast", &image).await;
    let slow = {
        let g = Arc::clone(&g);
        let manifest = Arc::clone(&manifest);
        tokio::spawn(async move { put(&g, "race/slow", "v1", &manifest).await })
    };
    wait_for_lease(&redis, "race/slow", &g).await;
    let started = Instant::now();
    let fast = put(&g, "race/fast", "v1", &manifest).await;
    let took = started.elapsed();
    assert_eq!(fast.status, StatusCode::CREATED, "{}", fast.text());
    // Waiting for race/slow's lease would take its 3 s delay.
    assert!(took < Duration::from_secs(3), "race/fast waited {took:?}");
    assert!(!slow.is_finished(), "race/slow should still be on its way");
    let slow = slow.await.expect("slow push");
    assert_eq!(slow.status, StatusCode::CREATED, "{}", slow.text());
}

#[tokio::test]
async fn the_redis_password_comes_from_a_file_and_never_reaches_the_logs() {
    let registry = Registry::anonymous();
    let redis = RedisServer::with_password("s3cret-redis-pw");
    let dir = tempfile::tempdir().expect("tempdir");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "s3cret-redis-pw\n").expect("write password");
    let url_without = format!("redis://127.0.0.1:{}/0", redis.port());
    let password_file_arg = password_file.to_string_lossy().into_owned();
    let with_password_file = || {
        gateway_with(
            registry.base_url(),
            &[
                "--coordination",
                &url_without,
                "--coordination-password-file",
                &password_file_arg,
            ],
        )
    };
    let from_file = with_password_file();
    // The whole URL in the environment, password included.
    let from_env = Gateway::builder(registry.base_url())
        .config(CONFIG)
        .env("REGISTRY_GATEWAY_COORDINATION", &redis.url())
        .start();
    let image = TestImage::new(&[2048], 6);
    let manifest = prepare(&registry, "race/secret", &image).await;
    for (gateway, tag) in [(&from_file, "a"), (&from_env, "b")] {
        let answer = put(gateway, "race/secret", tag, &manifest).await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{}\n{}",
            answer.text(),
            gateway.logs()
        );
        // Recorded together with the lease's release, just after the answer.
        let recorded = format!("{tag}\r\n");
        crate::support::eventually("the tag is recorded in Redis", || {
            redis
                .command(&["ZRANGE", "registry-gateway:tags:race/secret", "0", "-1"])
                .contains(&recorded)
        })
        .await;
        let logs = gateway.logs();
        assert!(
            logs.contains("tag counts coordinated through Redis"),
            "{logs}"
        );
        assert!(
            !logs.contains("s3cret-redis-pw"),
            "the password is in the log:\n{logs}"
        );
    }
    // A wrong password: tag-creating pushes are refused, not waved through.
    std::fs::write(&password_file, "wrong").expect("write password");
    let wrong = with_password_file();
    let refused = put(&wrong, "race/secret", "c", &manifest).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_slower_than_the_lease_never_makes_two_holders() {
    let registry = Registry::anonymous();
    let redis = RedisServer::start();
    // A's push takes 3 s to reach the registry, three times the lease's ttl: A keeps renewing.
    let slow = DelayingProxy::start(registry.port(), Duration::from_secs(3)).await;
    let lease = ["--lease-ttl", "1s", "--lease-wait", "20s"];
    let a = Arc::new(gateway(slow.url(), &redis, &lease));
    let b = gateway(registry.base_url(), &redis, &lease);
    let image = TestImage::new(&[2048], 7);
    let manifest = Arc::new(prepare(&registry, "one/slow", &image).await);
    let first = {
        let a = Arc::clone(&a);
        let manifest = Arc::clone(&manifest);
        tokio::spawn(async move { put(&a, "one/slow", "t1", &manifest).await })
    };
    wait_for_lease(&redis, "one/slow", &a).await;
    // B asks while A's push is on its way: it waits for the lease, then counts A's tag.
    let second = put(&b, "one/slow", "t2", &manifest).await;
    let first = first.await.expect("A's push");
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_eq!(
        second.status,
        StatusCode::FORBIDDEN,
        "{}\n{}",
        second.text(),
        b.logs()
    );
    assert_eq!(upstream_tags(&registry, "one/slow").await, ["t1"]);
    assert_eq!(
        a.metric("registry_gateway_coordination_leases_lost_total"),
        0.0
    );
}
