//! The registry inventory against Debian's `docker-registry` (distribution 2.8): kept true by
//! the registry's notifications (configured with the user guide's own snippet, and with the
//! Harbor snippet `docs/examples/harbor-registry-notifications.yml`) and, without them, by
//! `--inventory-refresh`. Observed through `GET /v1/inventory/<namespace>` and the metrics of
//! the admin listener.

use http::StatusCode;
use serde_json::Value;
use testkit::{Registry, TestImage};

use crate::support::{Gateway, eventually, get};

const KB: u64 = 1024;
pub const TOKEN: &str = "e2e-notification-token";

/// The user guide's `notifications` snippet, pointed at `admin_port` and carrying `TOKEN`.
pub fn guide_snippet(admin_port: u16) -> String {
    let guide = include_str!("../../../../docs/user-guide.md");
    let marker = "<!-- registry-notifications snippet: run by tests/e2e/inventory.rs -->";
    let after = &guide[guide.find(marker).expect("the snippet's marker") + marker.len()..];
    let start = after.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let snippet = &after[start..start + after[start..].find("```").expect("its end")];
    let replaced = snippet
        .replace(
            "http://registry-gateway:9090",
            &format!("http://127.0.0.1:{admin_port}"),
        )
        .replace("<the token file's content>", TOKEN);
    assert_ne!(
        replaced, snippet,
        "the snippet names the gateway and the token"
    );
    replaced
}

/// The Harbor snippet, with the gateway's admin listener at `admin_port`, `TOKEN`, and Harbor
/// core's endpoint at `core_port`.
fn harbor_snippet(admin_port: u16, core_port: u16) -> String {
    let snippet = include_str!("../../../../docs/examples/harbor-registry-notifications.yml");
    let guide = include_str!("../../../../docs/user-guide.md");
    let section = &snippet[snippet.find("notifications:").expect("the section")..];
    assert!(
        guide.contains(section),
        "the user guide shows the Harbor snippet as it is run"
    );
    let mut filled = snippet.to_owned();
    for (placeholder, value) in [
        (
            "http://registry-gateway:9090",
            format!("http://127.0.0.1:{admin_port}"),
        ),
        ("<the token file's content>", TOKEN.to_owned()),
        ("http://core:8080", format!("http://127.0.0.1:{core_port}")),
    ] {
        assert!(
            filled.contains(placeholder),
            "the snippet names {placeholder}"
        );
        filled = filled.replace(placeholder, &value);
    }
    filled
}

/// The inventory view of `namespace`.
fn view(gateway: &Gateway, namespace: &str) -> Value {
    let (status, body) =
        get(gateway.admin_port, &format!("/v1/inventory/{namespace}")).expect("admin answers");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// The inventory's usage of `namespace`: (repositories, images, tags, storage bytes).
pub fn usage(gateway: &Gateway, namespace: &str) -> (u64, u64, u64, u64) {
    let usage = &view(gateway, namespace)["usage"];
    let n = |key: &str| usage[key].as_u64().expect("a count");
    (
        n("repositories"),
        n("images"),
        n("tags"),
        n("storage_bytes"),
    )
}

/// Config and layers of `image`, in bytes.
pub fn stored(image: &TestImage) -> u64 {
    image.config().data.len() as u64
        + image
            .layers()
            .iter()
            .map(|l| l.data.len() as u64)
            .sum::<u64>()
}

/// Deletes the manifest `digest` of `repository` directly at the registry.
pub async fn delete_at_registry(registry: &Registry, repository: &str, digest: &str) {
    let url = registry
        .base_url()
        .join(&format!("v2/{repository}/manifests/{digest}"))
        .expect("url");
    let answer = reqwest::Client::new()
        .delete(url)
        .send()
        .await
        .expect("registry answers");
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
}

/// A refused notification: authorization, content type, body, status, part of the message.
type Refused<'a> = (Option<&'a str>, &'a str, Vec<u8>, StatusCode, &'a str);

/// Posts a notification to the gateway's admin listener; its status and body.
pub async fn post(
    gateway: &Gateway,
    authorization: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let url = format!(
        "http://127.0.0.1:{}/v1/registry-notifications",
        gateway.admin_port
    );
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let answer = request.send().await.expect("admin answers");
    let status = StatusCode::from_u16(answer.status().as_u16()).expect("status");
    (status, answer.text().await.unwrap_or_default())
}

/// A registry whose configuration adds `notifications` (a snippet naming `admin_port`), and a
/// gateway in front of it whose admin listener is there, with the token, and a refresh too
/// slow to count anything in a test: only notifications change its inventory.
fn notified(notifications: &str, admin_port: u16) -> (Registry, Gateway, tempfile::TempDir) {
    let registry = Registry::builder(testkit::RegistryAuth::Anonymous)
        .extra_config(notifications)
        .start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    let gateway = Gateway::builder(registry.base_url())
        .admin_port(admin_port)
        .arg("--notifications-token-file")
        .arg(token_file.display().to_string())
        .arg("--inventory-refresh")
        .arg("1h")
        .start();
    (registry, gateway, dir)
}

#[tokio::test]
async fn a_tag_deleted_at_the_registry_leaves_the_inventory_with_its_notification() {
    let admin_port = testkit::free_port();
    let (registry, gateway, _dir) = notified(&guide_snippet(admin_port), admin_port);
    let first = TestImage::new(&[8 * KB, 16 * KB], 241);
    let second = TestImage::new(&[8 * KB, 32 * KB], 242);
    gateway
        .push(&first, "team-n/app", "v1", &[])
        .await
        .assert_success();
    gateway
        .push(&second, "team-n/app", "v2", &[])
        .await
        .assert_success();
    gateway
        .push(&first, "team-n/tools/app", "v1", &[])
        .await
        .assert_success();
    // Layer sizes are distinct per seed; the first image is stored once for both repositories.
    let both = stored(&first) + stored(&second);
    assert_eq!(usage(&gateway, "team-n"), (2, 3, 3, both));

    // Notified tags of a namespace the inventory knows are applied.
    let third = TestImage::new(&[4 * KB], 243);
    gateway
        .push(&third, "team-n/app", "v3", &[])
        .await
        .assert_success();
    eventually("the notified push", || {
        usage(&gateway, "team-n") == (2, 4, 4, both + stored(&third))
    })
    .await;

    // With `--inventory-refresh 1h`, only the notification can count the delete in time.
    delete_at_registry(&registry, "team-n/app", &second.manifest().digest).await;
    eventually("the notified delete", || usage(&gateway, "team-n").2 == 3).await;
    assert_eq!(
        usage(&gateway, "team-n"),
        (2, 3, 3, both - stored(&second) + stored(&third))
    );
    let repositories = &view(&gateway, "team-n")["repositories"];
    assert_eq!(repositories["team-n/app"]["tags"], 2);
    assert_eq!(repositories["team-n/tools/app"]["images"], 1);
    assert!(
        gateway.metric("registry_gateway_inventory_notifications_total{result=\"accepted\"}")
            >= 2.0
    );
    assert!(gateway.metric("registry_gateway_inventory_notification_changes_total") >= 2.0);
    assert_eq!(gateway.metric("registry_gateway_inventory_tags"), 3.0);
    assert_eq!(
        gateway.metric("registry_gateway_inventory_repositories"),
        2.0
    );
    assert_eq!(
        gateway.metric("registry_gateway_inventory_corrections_total{kind=\"tag_removed\"}"),
        0.0
    );

    // Refused bodies change nothing.
    let digest = first.manifest().digest.clone();
    let forged = format!(
        r#"{{"events":[{{"action":"delete","target":{{"repository":"team-n/app","digest":"{digest}"}}}}]}}"#
    );
    let json = "application/vnd.docker.distribution.events.v1+json";
    #[rustfmt::skip]
    let refused: &[Refused] = &[
        (None, json, forged.clone().into_bytes(), StatusCode::UNAUTHORIZED, "bearer token"),
        (Some("Bearer wrong"), json, forged.clone().into_bytes(), StatusCode::UNAUTHORIZED, "bearer token"),
        (Some(&format!("Basic {TOKEN}")), json, forged.clone().into_bytes(), StatusCode::UNAUTHORIZED, "bearer token"),
        (Some(&format!("Bearer {TOKEN}")), "text/plain", forged.clone().into_bytes(), StatusCode::BAD_REQUEST, "invalid Content-Type \"text/plain\""),
        (Some(&format!("Bearer {TOKEN}")), json, br#"{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"team-n/app","tag":"x"}}]}"#.to_vec(), StatusCode::BAD_REQUEST, "invalid event 1 of the notification: a push event without target.digest"),
        (Some(&format!("Bearer {TOKEN}")), json, b"not json".to_vec(), StatusCode::BAD_REQUEST, "invalid notification body"),
        (Some(&format!("Bearer {TOKEN}")), json, vec![b' '; 2 << 20], StatusCode::PAYLOAD_TOO_LARGE, "notification body over 1048576 bytes"),
    ];
    for (authorization, content_type, body, status, message) in refused {
        let (got, text) = post(&gateway, *authorization, content_type, body.clone()).await;
        assert_eq!(got, *status, "{authorization:?} {content_type}: {text}");
        assert!(text.contains(message), "{text}");
    }
    assert_eq!(
        usage(&gateway, "team-n"),
        (2, 3, 3, both - stored(&second) + stored(&third))
    );
    assert_eq!(
        gateway.metric("registry_gateway_inventory_notifications_total{result=\"unauthorized\"}"),
        3.0
    );
    assert_eq!(
        gateway.metric("registry_gateway_inventory_notifications_total{result=\"invalid\"}"),
        3.0
    );
    assert_eq!(
        gateway.metric("registry_gateway_inventory_notifications_total{result=\"too_large\"}"),
        1.0
    );

    // With the token, the same body is applied: a forged one could remove what it names.
    let (status, text) = post(
        &gateway,
        Some(&format!("Bearer {TOKEN}")),
        json,
        forged.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(usage(&gateway, "team-n").2, 2);
}

#[tokio::test]
async fn without_notifications_the_refresh_corrects_the_inventory() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url())
        .arg("--inventory-refresh")
        .arg("2s")
        .start();
    let first = TestImage::new(&[8 * KB], 251);
    let second = TestImage::new(&[12 * KB], 252);
    gateway
        .push(&first, "team-r/app", "v1", &[])
        .await
        .assert_success();
    gateway
        .push(&second, "team-r/app", "v2", &[])
        .await
        .assert_success();
    gateway
        .push(&second, "team-r/app", "latest", &[])
        .await
        .assert_success();
    // Neighbours in both orders distribution may list the catalog in are left out.
    for other in [
        "team-r-x/app",
        "team-r.x/app",
        "team/app",
        "alpha/app",
        "zeta/app",
    ] {
        gateway
            .push(&first, other, "v1", &[])
            .await
            .assert_success();
    }
    assert_eq!(
        usage(&gateway, "team-r"),
        (1, 2, 3, stored(&first) + stored(&second))
    );

    let logs = registry.logs();
    assert!(
        logs.contains("/v2/_catalog?n=") && logs.contains("&last=team-r "),
        "the catalog is read from the namespace's prefix:\n{logs}"
    );
    delete_at_registry(&registry, "team-r/app", &second.manifest().digest).await;
    // Nothing tells the gateway until the reconciliation reads the namespace again.
    assert_eq!(usage(&gateway, "team-r").2, 3);
    eventually("the reconciliation", || {
        usage(&gateway, "team-r") == (1, 1, 1, stored(&first))
    })
    .await;
    assert_eq!(
        gateway.metric("registry_gateway_inventory_corrections_total{kind=\"tag_removed\"}"),
        2.0
    );
    assert!(gateway.metric("registry_gateway_inventory_refreshes_total{result=\"ok\"}") >= 1.0);
    let logs = gateway.logs();
    assert!(
        logs.contains("inventory corrected by reconciliation with the registry"),
        "{logs}"
    );
    assert!(logs.contains("tag_removed"), "{logs}");
}

#[tokio::test]
async fn a_registry_sending_the_wrong_token_changes_nothing() {
    let admin_port = testkit::free_port();
    let registry = Registry::builder(testkit::RegistryAuth::Anonymous)
        .notifications_endpoint(
            "registry-gateway",
            &format!("http://127.0.0.1:{admin_port}/v1/registry-notifications"),
            &[("Authorization", "Bearer not-the-token")],
        )
        .start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("token file");
    let gateway = Gateway::builder(registry.base_url())
        .admin_port(admin_port)
        .arg("--notifications-token-file")
        .arg(token_file.display().to_string())
        .start();
    let image = TestImage::new(&[8 * KB], 261);
    gateway
        .push(&image, "team-w/app", "v1", &[])
        .await
        .assert_success();
    assert_eq!(usage(&gateway, "team-w"), (1, 1, 1, stored(&image)));
    delete_at_registry(&registry, "team-w/app", &image.manifest().digest).await;
    eventually("a refused notification", || {
        gateway.metric("registry_gateway_inventory_notifications_total{result=\"unauthorized\"}")
            >= 1.0
    })
    .await;
    // Until the reconciliation (default 10m), the inventory keeps what it was told last.
    assert_eq!(usage(&gateway, "team-w"), (1, 1, 1, stored(&image)));
    assert_eq!(
        gateway.metric("registry_gateway_inventory_notifications_total{result=\"accepted\"}"),
        0.0
    );
}

/// Harbor's registry configured with the Harbor snippet: Harbor core's endpoint (here a port
/// where nothing listens) fails every delivery and is retried, while the gateway's endpoint gets
/// each manifest push and delete of a writer that bypasses the gateway, and nothing else (blob
/// pushes and pulls are left out by the snippet's `ignore`).
#[tokio::test]
async fn harbor_registry_notifications_reach_the_gateway_past_a_dead_endpoint() {
    let admin_port = testkit::free_port();
    let core_port = testkit::free_port();
    let (registry, gateway, _dir) = notified(&harbor_snippet(admin_port, core_port), admin_port);
    let first = TestImage::new(&[8 * KB, 16 * KB], 281);
    let second = TestImage::new(&[8 * KB, 32 * KB], 282);
    let third = TestImage::new(&[4 * KB, 12 * KB], 283);
    gateway
        .push(&first, "team-h/app", "v1", &[])
        .await
        .assert_success();
    gateway
        .push(&second, "team-h/app", "v2", &[])
        .await
        .assert_success();
    let both = stored(&first) + stored(&second);
    assert_eq!(usage(&gateway, "team-h"), (1, 2, 2, both));

    // Another writer, straight to the registry: only the notification tells the gateway.
    registry.push(&third, "team-h/tools", "v1").await;
    eventually("the notified push", || {
        usage(&gateway, "team-h") == (2, 3, 3, both + stored(&third))
    })
    .await;
    delete_at_registry(&registry, "team-h/app", &second.manifest().digest).await;
    eventually("the notified delete", || {
        usage(&gateway, "team-h") == (2, 2, 2, stored(&first) + stored(&third))
    })
    .await;

    // One notification per manifest push (3) and two for the delete (the manifest's and its
    // tag's); the registry delivers each endpoint's events in order, so none of the nine blob
    // pushes is still on its way.
    let accepted = "registry_gateway_inventory_notifications_total{result=\"accepted\"}";
    eventually("the last notification counted", || {
        gateway.metric(accepted) >= 5.0
    })
    .await;
    assert_eq!(gateway.metric(accepted), 5.0);
    assert_eq!(
        gateway.metric("registry_gateway_inventory_notifications_total{result=\"unauthorized\"}"),
        0.0
    );
    // Harbor core's endpoint failed all along.
    let logs = registry.logs();
    assert!(
        logs.contains(&format!("127.0.0.1:{core_port}")) && logs.contains("connection refused"),
        "{logs}"
    );
}
