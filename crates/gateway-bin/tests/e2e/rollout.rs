//! Rolling limits out: `deny`, `warn` and `audit` enforcement, `warn_at` thresholds, the
//! `Warning` header, and decisions notified to a webhook that may be slow or gone.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::{ManifestFormat, RawPusher, Registry, TestImage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{Gateway, eventually, upstream_tags};

/// The same limits under three enforcement modes, and a warning threshold.
const CONFIG: &str = r#"
max_image_size: "100MB"
tag_count_limit: "100"
rules: |
  - path: ^deny/
    limit: {max_image_size: 1MB, tag_count_limit: 2}
  - path: ^warn/
    enforcement: warn
    limit: {max_image_size: 1MB, tag_count_limit: 2}
  - path: ^audit/
    enforcement: audit
    limit: {max_image_size: 1MB, tag_count_limit: 2}
  - path: ^near/
    warn_at: 50%
    limit: {max_image_size: 1MB, tag_count_limit: 10}
"#;

/// 1.2 MiB of layers: over the 1 MiB limit.
fn too_big() -> TestImage {
    TestImage::new(&[600 * 1024, 600 * 1024], 40)
}

fn start(args: &[&str]) -> (Registry, Gateway) {
    let registry = Registry::anonymous();
    let mut builder = Gateway::builder(registry.base_url()).config(CONFIG);
    for arg in args {
        builder = builder.arg(*arg);
    }
    (registry, builder.start())
}

/// Every `Warning` header of an answer.
fn warnings(answer: &testkit::RawResponse) -> Vec<String> {
    answer
        .headers
        .get_all("warning")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

fn decisions(gateway: &Gateway, rule: u32, verdict: &str, enforcement: &str) -> f64 {
    gateway.metric(&format!(
        r#"registry_gateway_decisions_total{{check="image_size",verdict="{verdict}",rule="{rule}",enforcement="{enforcement}"}}"#
    ))
}

#[tokio::test]
async fn the_same_push_is_refused_warned_or_audited_by_mode() {
    let (registry, gateway) = start(&[]);
    let pusher = RawPusher::new(gateway.base_url());
    let image = too_big();

    let denied = pusher
        .push_image(&image, "deny/app", "v1", ManifestFormat::Oci, None)
        .await;
    assert_eq!(denied.status.as_u16(), 403, "{}", denied.text());
    assert_eq!(denied.error_code().as_deref(), Some("DENIED"));
    assert!(warnings(&denied).is_empty());

    let warned = pusher
        .push_image(&image, "warn/app", "v1", ManifestFormat::Oci, None)
        .await;
    assert_eq!(warned.status.as_u16(), 201, "{}", warned.text());
    assert_eq!(
        warnings(&warned),
        vec![format!(
            "299 - \"image size {} ({} bytes) exceeds the limit of 1 MiB for repository warn/app (rule 2: ^warn/); the push was accepted because the limit is enforced in warn mode\"",
            limits_core::ByteSize::new(image.layer_total() + image.config().size()),
            image.layer_total() + image.config().size()
        )]
    );

    let audited = pusher
        .push_image(&image, "audit/app", "v1", ManifestFormat::Oci, None)
        .await;
    assert_eq!(audited.status.as_u16(), 201, "{}", audited.text());
    assert!(warnings(&audited).is_empty(), "{:?}", warnings(&audited));

    // What the registry holds.
    assert!(upstream_tags(&registry, "deny/app").await.is_empty());
    assert_eq!(upstream_tags(&registry, "warn/app").await, vec!["v1"]);
    assert_eq!(upstream_tags(&registry, "audit/app").await, vec!["v1"]);

    // All three are decisions over the limit, told apart by their enforcement.
    assert_eq!(decisions(&gateway, 1, "denied", "deny"), 1.0);
    assert_eq!(decisions(&gateway, 2, "denied", "warn"), 1.0);
    assert_eq!(decisions(&gateway, 3, "denied", "audit"), 1.0);
    let logs = gateway.logs();
    for (repository, enforcement, action) in [
        ("deny/app", "deny", "refused"),
        ("warn/app", "warn", "accepted"),
        ("audit/app", "audit", "accepted"),
    ] {
        assert!(
            logs.lines().any(|line| line.contains("event=\"decision\"")
                && line.contains(&format!("repository={repository}"))
                && line.contains("verdict=\"denied\"")
                && line.contains(&format!("enforcement=\"{enforcement}\""))
                && line.contains(&format!("action=\"{action}\""))),
            "no decision line for {repository}:\n{logs}"
        );
    }

    // Tags: a third tag is over the limit of 2; in audit mode it goes through silently.
    for tag in ["v2", "v3"] {
        let answer = pusher
            .put_manifest(
                "audit/app",
                tag,
                testkit::OCI_MANIFEST,
                &image.manifest_as(ManifestFormat::Oci, None),
            )
            .await;
        assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
        assert!(warnings(&answer).is_empty());
    }
    assert_eq!(
        gateway.metric(r#"registry_gateway_decisions_total{check="tag_count",verdict="denied",rule="3",enforcement="audit"}"#),
        1.0
    );
}

#[tokio::test]
async fn pushes_past_warn_at_carry_a_warning_and_those_below_do_not() {
    let (_registry, gateway) = start(&[]);
    let pusher = RawPusher::new(gateway.base_url());
    // 600 KiB of a 1 MiB limit: 58 %, past the threshold of 50 %.
    let near = TestImage::new(&[600 * 1024], 41);
    let answer = pusher
        .push_image(&near, "near/app", "v1", ManifestFormat::Oci, None)
        .await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
    let size = near.layer_total() + near.config().size();
    assert_eq!(
        warnings(&answer),
        vec![format!(
            "299 - \"image size {} ({size} bytes) is {}% of the limit of 1 MiB for repository near/app (rule 4: ^near/); warnings start at 50%\"",
            limits_core::ByteSize::new(size),
            size * 100 / (1 << 20)
        )]
    );
    assert_eq!(decisions(&gateway, 4, "near_limit", "deny"), 1.0);

    // 100 KiB: below the threshold, no warning.
    let small = TestImage::new(&[100 * 1024], 42);
    let answer = pusher
        .push_image(&small, "near/app", "v2", ManifestFormat::Oci, None)
        .await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
    assert!(warnings(&answer).is_empty(), "{:?}", warnings(&answer));
    assert_eq!(decisions(&gateway, 4, "allowed", "deny"), 1.0);
}

/// A webhook receiver: answers every request `200` and keeps the bodies.
/// A webhook receiver that keeps every event and answers 200 after `delay`.
async fn receiver(delay: Duration) -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let events = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&events);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => data.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&data[..end]).into_owned();
                    // The value of a header, its name compared case-insensitively.
                    let header = |name: &str| {
                        head.lines().find_map(|line| {
                            let (n, v) = line.split_once(':')?;
                            n.trim()
                                .eq_ignore_ascii_case(name)
                                .then(|| v.trim().to_owned())
                        })
                    };
                    let length: usize = header("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while data.len() < end + 4 + length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => data.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = &data[end + 4..end + 4 + length];
                    if let Ok(mut event) = serde_json::from_slice::<serde_json::Value>(body) {
                        event["_content_type"] = header("content-type").into();
                        event["_authorization"] = header("authorization").into();
                        kept.lock().expect("events").push(event);
                    }
                    tokio::time::sleep(delay).await;
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    data.drain(..end + 4 + length);
                }
            });
        }
    });
    (port, events)
}

#[tokio::test]
async fn each_decision_reaches_the_webhook_as_a_cloudevent() {
    let (port, events) = receiver(Duration::ZERO).await;
    let url = format!("http://127.0.0.1:{port}/events");
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url())
        .config(CONFIG)
        .arg("--webhook-url")
        .arg(url)
        .env(
            "REGISTRY_GATEWAY_WEBHOOK_AUTHORIZATION",
            "Bearer hook-secret",
        )
        .start();
    let pusher = RawPusher::new(gateway.base_url());
    for repository in ["deny/app", "warn/app", "audit/app", "near/app"] {
        let image = if repository == "near/app" {
            TestImage::new(&[600 * 1024], 43)
        } else {
            too_big()
        };
        pusher
            .push_image(&image, repository, "v1", ManifestFormat::Oci, None)
            .await;
    }
    eventually("four webhook events", || {
        events.lock().expect("events").len() >= 4
    })
    .await;
    let events = events.lock().expect("events").clone();
    let kinds: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e["data"]["repository"].as_str().unwrap_or("").to_owned(),
                e["type"].as_str().unwrap_or("").to_owned(),
                e["data"]["action"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("deny/app", "io.registry-gateway.push.refused", "refused"),
        ("warn/app", "io.registry-gateway.push.warned", "accepted"),
        ("audit/app", "io.registry-gateway.push.audited", "accepted"),
        ("near/app", "io.registry-gateway.push.warned", "accepted"),
    ];
    for (repository, kind, action) in expected {
        assert!(
            kinds
                .iter()
                .any(|(r, k, a)| r == repository && k == kind && a == action),
            "no {kind} event for {repository}: {kinds:?}"
        );
    }
    assert_eq!(events.len(), 4, "{events:#?}");
    for event in &events {
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["_content_type"], "application/cloudevents+json");
        assert_eq!(event["_authorization"], "Bearer hook-secret");
        assert_eq!(event["datacontenttype"], "application/json");
        assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(
            event["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("registry-gateway/"))
        );
        assert!(event["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(event["data"]["check"], "image_size");
    }
    eventually("delivered count", || {
        gateway.metric(r#"registry_gateway_webhook_events_total{result="delivered"}"#) == 4.0
    })
    .await;
}

/// The port of a webhook receiver that accepts connections, keeps them open and never answers.
async fn hanging_receiver() -> u16 {
    let hanging = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = hanging.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = hanging.accept().await {
            held.push(stream);
        }
    });
    port
}

#[tokio::test]
async fn a_hanging_or_missing_receiver_never_delays_a_push() {
    // A receiver that accepts connections and never answers, and a port nothing listens on.
    let hanging_port = hanging_receiver().await;
    let gone_port = testkit::free_port();
    for port in [hanging_port, gone_port] {
        let registry = Registry::anonymous();
        let gateway = Gateway::builder(registry.base_url())
            .config(CONFIG)
            .arg("--webhook-url")
            .arg(format!("http://127.0.0.1:{port}/"))
            .arg("--webhook-timeout")
            .arg("60s")
            .arg("--webhook-queue")
            .arg("2")
            .start();
        let pusher = RawPusher::new(gateway.base_url());
        let image = too_big();
        for blob in image.layers().iter().chain([image.config()]) {
            pusher.upload_blob("warn/app", blob).await;
        }
        let manifest = image.manifest_as(ManifestFormat::Oci, None);
        // Five warned pushes: the first event is in delivery (hanging for a minute or
        // retrying), two wait in the queue, the others are dropped. None waits for it.
        for i in 0..5 {
            let started = Instant::now();
            let answer = pusher
                .put_manifest(
                    "warn/app",
                    &format!("t{i}"),
                    testkit::OCI_MANIFEST,
                    &manifest,
                )
                .await;
            let took = started.elapsed();
            assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
            assert!(
                took < Duration::from_secs(5),
                "push {i} took {took:?} with the receiver on port {port}"
            );
        }
        assert!(
            gateway.metric(r#"registry_gateway_webhook_events_total{result="dropped"}"#) >= 2.0,
            "{}",
            gateway.metrics()
        );
        drop(registry);
    }
}

/// Pushes warned with `CONFIG`'s `warn/` rule, as fast as the gateway takes them.
async fn warned_pushes(gateway: &Gateway, tags: &[&str]) {
    let pusher = RawPusher::new(gateway.base_url());
    let image = too_big();
    for blob in image.layers().iter().chain([image.config()]) {
        pusher.upload_blob("warn/app", blob).await;
    }
    let manifest = image.manifest_as(ManifestFormat::Oci, None);
    for tag in tags {
        let answer = pusher
            .put_manifest("warn/app", tag, testkit::OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
    }
}

// Multi-threaded: the receiver keeps answering while the test blocks waiting for the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_queued_at_shutdown_are_delivered_before_exit() {
    // The receiver takes 700 ms per event: three pushes (four events) outrun it, and SIGTERM
    // comes while events still wait in the queue.
    let (port, events) = receiver(Duration::from_millis(700)).await;
    let (_registry, mut gateway) = start(&[
        "--webhook-url",
        &format!("http://127.0.0.1:{port}/events"),
        "--webhook-timeout",
        "10s",
    ]);
    warned_pushes(&gateway, &["t0", "t1", "t2"]).await;
    let received = events.lock().expect("events").len();
    assert!(received < 4, "the receiver already had {received} events");
    let stopped = Instant::now();
    gateway.signal("TERM");
    let status = gateway
        .wait_exit(Duration::from_secs(20))
        .expect("gateway exits");
    assert!(status.success(), "{status:?}\n{}", gateway.logs());
    let events = events.lock().expect("events").clone();
    let decisions: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|e| {
            Some((
                e["data"]["reference"].as_str()?,
                e["data"]["check"].as_str()?,
            ))
        })
        .collect();
    // Every push is over the size limit; the third tag is also over the tag count limit.
    assert_eq!(
        decisions,
        [
            ("t0", "image_size"),
            ("t1", "image_size"),
            ("t2", "image_size"),
            ("t2", "tag_count")
        ],
        "{}",
        gateway.logs()
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "exit took {:?}",
        stopped.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flush_at_shutdown_is_bounded_by_the_webhook_timeout() {
    // A receiver that accepts and never answers: the flush gives up after --webhook-timeout.
    let port = hanging_receiver().await;
    let (_registry, mut gateway) = start(&[
        "--webhook-url",
        &format!("http://127.0.0.1:{port}/"),
        "--webhook-timeout",
        "2s",
    ]);
    warned_pushes(&gateway, &["t0", "t1"]).await;
    let stopped = Instant::now();
    gateway.signal("TERM");
    let status = gateway
        .wait_exit(Duration::from_secs(20))
        .expect("gateway exits");
    let took = stopped.elapsed();
    assert!(status.success(), "{status:?}\n{}", gateway.logs());
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "exit took {took:?}"
    );
    let logs = gateway.logs();
    assert!(
        logs.contains("webhook events not delivered before exit"),
        "{logs}"
    );
}

/// What real clients make of a push accepted with a warning: each push succeeds, and none of
/// the Debian 12 clients (skopeo 1.9, podman 4.3, buildah 1.28, all on containers/image 5.23)
/// prints the `Warning` header. The user guide says so; if a client starts printing it, this
/// test fails and the guide must be updated.
#[tokio::test]
async fn real_clients_push_in_warn_mode_and_do_not_show_the_warning() {
    let (registry, gateway) = start(&[]);
    let image = too_big();
    let source = format!("{}/source/app:v1", registry.host());
    testkit::skopeo_push(&registry.host(), &image, "source/app", "v1", &[], None)
        .await
        .assert_success();

    let skopeo = gateway.push(&image, "warn/skopeo", "v1", &[]).await;
    let podman = testkit::pull_and_push(
        testkit::PODMAN,
        &source,
        &format!("{}/warn/podman:v1", gateway.host()),
    )
    .await;
    let buildah = testkit::pull_and_push(
        testkit::BUILDAH,
        &source,
        &format!("{}/warn/buildah:v1", gateway.host()),
    )
    .await;
    for (client, output) in [
        ("skopeo", &skopeo),
        ("podman", &podman),
        ("buildah", &buildah),
    ] {
        output.assert_success();
        let printed = format!("{}{}", output.stdout, output.stderr);
        assert!(
            !printed.contains("exceeds the limit"),
            "{client} now prints the registry's warning; update the user guide:\n{printed}"
        );
        assert_eq!(
            upstream_tags(&registry, &format!("warn/{client}")).await,
            vec!["v1"],
            "{client}"
        );
    }
    assert_eq!(decisions(&gateway, 2, "denied", "warn"), 3.0);
}
