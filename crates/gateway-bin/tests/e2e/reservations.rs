//! Tags are reserved before a manifest is forwarded: a push whose outcome the gateway never
//! learns (an upstream timeout, a process killed while forwarding) still counts its tags until
//! the registry's listing shows them or the reservation's window ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use testkit::{ManifestFormat, RawPusher, RedisServer, Registry, TestImage};

use crate::coordination::{prepare, put};
use crate::support::{DelayingProxy, Gateway, eventually_async, upstream_tags};

const CONFIG: &str = r#"
rules: |
  - path: ^one/.*
    limit:
      max_image_size: "1MB"
      tag_count_limit: "1"
"#;

/// The registry stores a tag whose push timed out at the gateway: the tag was reserved before
/// the forward, so the next push counts it although the listing does not show it yet.
#[tokio::test]
async fn a_push_that_timed_out_keeps_its_tag_counted() {
    let registry = Registry::anonymous();
    // Only `t1` is slow: it reaches the registry 2 s after the gateway gave up at 300 ms.
    let slow =
        DelayingProxy::start_for(registry.port(), Duration::from_secs(2), "/manifests/t1").await;
    let gateway = Gateway::builder(slow.url())
        .config(CONFIG)
        .arg("--upstream-timeout")
        .arg("300ms")
        .start();
    let image = TestImage::new(&[2048], 31);
    let manifest = prepare(&registry, "one/timeout", &image).await;
    let first = put(&gateway, "one/timeout", "t1", &manifest).await;
    assert_eq!(
        first.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        first.text()
    );
    assert!(
        upstream_tags(&registry, "one/timeout").await.is_empty(),
        "t1 is still on its way"
    );
    let second = put(&gateway, "one/timeout", "t2", &manifest).await;
    assert_eq!(
        second.status,
        StatusCode::FORBIDDEN,
        "{}\n{}",
        second.text(),
        gateway.logs()
    );
    assert!(
        second
            .text()
            .contains("the repository holds 1 tag and this push adds 1"),
        "{}",
        second.text()
    );
    // Retrying the tag whose outcome was unknown adds nothing, so it is allowed.
    let retry = put(&gateway, "one/timeout", "t1", &manifest).await;
    assert_ne!(retry.status, StatusCode::FORBIDDEN, "{}", retry.text());
    eventually_async("the registry stores t1", || async {
        upstream_tags(&registry, "one/timeout").await == ["t1"]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(upstream_tags(&registry, "one/timeout").await, ["t1"]);
}

/// A push refused by the registry itself created nothing: its reservation is dropped at once.
#[tokio::test]
async fn a_push_the_registry_refuses_frees_its_reservation() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url()).config(CONFIG).start();
    let image = TestImage::new(&[2048], 32);
    // The blobs are not uploaded: the registry answers 400 MANIFEST_BLOB_UNKNOWN... after the
    // gateway, which leaves unknown blobs to it, admitted the push.
    let missing = image.manifest_as(ManifestFormat::Oci, None);
    let refused = put(&gateway, "one/refused", "t1", &missing).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    let manifest = prepare(&registry, "one/refused", &image).await;
    let allowed = put(&gateway, "one/refused", "t2", &manifest).await;
    assert_eq!(allowed.status, StatusCode::CREATED, "{}", allowed.text());
}

/// With Redis, a gateway killed (SIGKILL) while its push is on its way to a slow registry never
/// records anything; the tag it reserved before forwarding is what the next holder counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_while_forwarding_leaves_its_tag_reserved() {
    let registry = Registry::anonymous();
    let redis = RedisServer::start();
    let slow = DelayingProxy::start(registry.port(), Duration::from_secs(3)).await;
    let coordination = redis.url();
    let args = ["--coordination", coordination.as_str(), "--lease-ttl", "1s"];
    let start = |upstream: url::Url| {
        let mut builder = Gateway::builder(upstream).config(CONFIG);
        for arg in args {
            builder = builder.arg(arg);
        }
        builder.start()
    };
    let a = start(slow.url());
    let b = Arc::new(start(registry.base_url()));
    let image = TestImage::new(&[2048], 33);
    let manifest = Arc::new(prepare(&registry, "one/killed", &image).await);
    let held = {
        let url = a.base_url();
        let manifest = Arc::clone(&manifest);
        tokio::spawn(async move {
            RawPusher::new(url)
                .put_manifest("one/killed", "t1", testkit::OCI_MANIFEST, &manifest)
                .await
        })
    };
    let key = "registry-gateway:lease:one/killed";
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis.command(&["EXISTS", key]).contains(":1") {
        assert!(Instant::now() < deadline, "no lease\n{}", a.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // B asks while A holds the lease: it waits.
    let waiting = {
        let b = Arc::clone(&b);
        let manifest = Arc::clone(&manifest);
        tokio::spawn(async move { put(&b, "one/killed", "t2", &manifest).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.abort();
    drop(a);
    let answer = waiting.await.expect("B's push");
    assert_eq!(
        answer.status,
        StatusCode::FORBIDDEN,
        "{}\n{}",
        answer.text(),
        b.logs()
    );
    // A's push reaches the registry after all; the registry ends with one tag.
    eventually_async("A's delayed push lands", || async {
        upstream_tags(&registry, "one/killed").await == ["t1"]
    })
    .await;
}
