//! The tag sets the inventory keeps for the tag count, with the real registry: far from the
//! limit a push counts from the set without listing the registry, near it the count is
//! confirmed by a listing, and with Redis a replica lists again when another replica created
//! tags in the repository since its set was read (and a re-push of such a tag needs no Redis).

use http::StatusCode;
use testkit::{RedisServer, Registry, TestImage};

use crate::coordination::{prepare, put};
use crate::support::{Gateway, upstream_tags};

const CONFIG: &str = r#"
max_image_size: "100MB"
tag_count_limit: "100"
rules: |
  - path: ^four/.*
    limit:
      max_image_size: "1MB"
      tag_count_limit: "4"
  - path: ^six/.*
    limit:
      max_image_size: "1MB"
      tag_count_limit: "6"
"#;

fn listings(gateway: &Gateway, reason: &str) -> f64 {
    gateway.metric(&format!(
        "registry_gateway_inventory_tag_set_listings_total{{reason=\"{reason}\"}}"
    ))
}

fn gateway(registry: &Registry, extra: &[&str]) -> Gateway {
    let mut builder = Gateway::builder(registry.base_url()).config(CONFIG);
    for arg in extra {
        builder = builder.arg(*arg);
    }
    builder.start()
}

#[tokio::test]
async fn the_set_counts_far_from_the_limit_and_a_listing_confirms_near_it() {
    let registry = Registry::anonymous();
    let gateway = gateway(&registry, &[]);
    let manifest = prepare(&registry, "four/app", &TestImage::new(&[2048], 1)).await;
    // t1 loads the set (1 listing); t2 lands at 2 of 4, counted from the set; t3 and t4 land
    // within one of the limit and t5 would pass it: each is confirmed by a listing.
    for (tag, want) in [
        ("t1", StatusCode::CREATED),
        ("t2", StatusCode::CREATED),
        ("t3", StatusCode::CREATED),
        ("t4", StatusCode::CREATED),
        ("t5", StatusCode::FORBIDDEN),
    ] {
        let answer = put(&gateway, "four/app", tag, &manifest).await;
        assert_eq!(answer.status, want, "{tag}: {}", answer.text());
    }
    assert_eq!(upstream_tags(&registry, "four/app").await.len(), 4);
    assert_eq!(listings(&gateway, "load"), 1.0, "{}", gateway.metrics());
    assert_eq!(listings(&gateway, "confirm"), 3.0, "{}", gateway.metrics());
}

#[tokio::test]
async fn a_replica_lists_again_when_another_one_created_tags() {
    let registry = Registry::anonymous();
    let redis = RedisServer::start();
    let url = redis.url();
    let a = gateway(&registry, &["--coordination", url.as_str()]);
    let b = gateway(&registry, &["--coordination", url.as_str()]);
    let manifest = prepare(&registry, "six/app", &TestImage::new(&[2048], 3)).await;
    let push = |gateway, tag| put(gateway, "six/app", tag, &manifest);
    // A reads its set at t1; B creates t2 and t3; A's set misses them and must not be
    // counted as it is.
    for (gateway, tag) in [(&a, "t1"), (&b, "t2"), (&b, "t3"), (&a, "t4")] {
        let answer = push(gateway, tag).await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{tag}: {}",
            answer.text()
        );
    }
    assert_eq!(listings(&a, "stale"), 1.0, "{}", a.metrics());
    assert_eq!(listings(&b, "stale"), 0.0, "{}", b.metrics());
    // B's own set moved with its own reservations only: t3 counted from it.
    assert_eq!(listings(&b, "load"), 1.0, "{}", b.metrics());
    for (gateway, tag, want) in [
        (&b, "t5", StatusCode::CREATED),
        (&a, "t6", StatusCode::CREATED),
        (&b, "t7", StatusCode::FORBIDDEN),
        (&a, "t8", StatusCode::FORBIDDEN),
    ] {
        let answer = push(gateway, tag).await;
        assert_eq!(answer.status, want, "{tag}: {}", answer.text());
    }
    assert_eq!(upstream_tags(&registry, "six/app").await.len(), 6);
}

#[tokio::test]
async fn a_re_push_of_a_tag_another_replica_created_needs_no_redis() {
    let registry = Registry::anonymous();
    let mut redis = RedisServer::start();
    let url = redis.url();
    let args = [
        "--coordination",
        url.as_str(),
        "--coordination-timeout",
        "300ms",
    ];
    let a = gateway(&registry, &args);
    let b = gateway(&registry, &args);
    let manifest = prepare(&registry, "six/outage", &TestImage::new(&[2048], 5)).await;
    // B's set is read before A creates v2: it does not hold v2.
    for (gateway, tag) in [(&b, "v1"), (&a, "v2")] {
        let answer = put(gateway, "six/outage", tag, &manifest).await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{tag}: {}",
            answer.text()
        );
    }
    redis.stop();
    let again = put(&b, "six/outage", "v2", &manifest).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    let new = put(&b, "six/outage", "v3", &manifest).await;
    assert_eq!(
        new.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        new.text()
    );
}
