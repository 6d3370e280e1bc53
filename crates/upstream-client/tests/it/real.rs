//! Against Debian's `docker-registry` (distribution 2.8) in its three auth set-ups.

use std::time::{Duration, Instant};

use http::HeaderValue;
use testkit::{ManifestFormat, RawPusher, Registry, RegistryAuth, TestImage};
use upstream_client::{Auth, AuthKind, Fault, Inventory, Upstream, UpstreamError};

use crate::{client, digest, repo, sorted};

const REPO: &str = "project-1/app";
const TAGS: [&str; 3] = ["v1", "v2", "v3"];
const MISSING: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Pushes three tags of small images with skopeo; returns the first image.
async fn populate(registry: &Registry) -> TestImage {
    let first = TestImage::new(&[1024, 70_000], 1);
    registry.push(&first, REPO, TAGS[0]).await;
    for (seed, tag) in TAGS.iter().enumerate().skip(1) {
        registry
            .push(
                &TestImage::new(&[512 + seed as u64], seed as u64 + 1),
                REPO,
                tag,
            )
            .await;
    }
    first
}

fn expected_tags() -> Vec<String> {
    TAGS.iter().map(|t| (*t).to_owned()).collect()
}

/// Tags, a blob's size, a tag's digest, a missing blob and tag, an unknown repository, all
/// with `auth`.
async fn check_reads(upstream: &impl Upstream, image: &TestImage, auth: Auth<'_>) {
    let tags = upstream.tags(&repo(REPO), auth).await.expect("tags");
    assert_eq!(sorted(tags), expected_tags());
    for layer in image.layers() {
        let size = upstream
            .blob_size(&repo(REPO), &digest(&layer.digest), auth)
            .await
            .expect("size");
        assert_eq!(size, Some(layer.size()), "layer {}", layer.digest);
    }
    let current = upstream
        .manifest_digest(&repo(REPO), TAGS[0], auth)
        .await
        .expect("manifest digest");
    assert_eq!(current, Some(digest(&image.manifest().digest)));
    let absent = upstream
        .manifest_digest(&repo(REPO), "never-pushed", auth)
        .await
        .expect("absent tag");
    assert_eq!(absent, None);
    let missing = upstream
        .blob_size(&repo(REPO), &digest(MISSING), auth)
        .await
        .expect("missing");
    assert_eq!(missing, None);
    let unknown = upstream
        .tags(&repo("project-1/never-pushed"), auth)
        .await
        .expect("unknown");
    assert!(unknown.is_empty(), "{unknown:?}");
}

fn assert_refused(result: Result<Vec<String>, UpstreamError>, credentials: AuthKind, fault: Fault) {
    let error = result.expect_err("wrong credentials must fail");
    let message = error.to_string();
    assert_eq!(error.fault(), fault, "{message}");
    assert!(!error.is_retryable(), "{message}");
    match &error {
        UpstreamError::Unauthorized {
            credentials: kind,
            status,
            ..
        }
        | UpstreamError::TokenRefused {
            credentials: kind,
            status,
            ..
        } => {
            assert_eq!(*kind, credentials, "{message}");
            assert_eq!(status.as_u16(), 401, "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(message.contains("refused"), "{message}");
    assert!(
        !message.contains("testpassword") && !message.contains("wrong-password"),
        "{message}"
    );
}

/// On a registry that needs credentials: the `wrong` header forwarded and anonymous access are
/// refused as the client's fault, the configured account with a wrong password as the
/// gateway's own.
async fn check_refusals(registry: &Registry, upstream: &impl Upstream, wrong: &HeaderValue) {
    assert_refused(
        upstream.tags(&repo(REPO), Auth::Forward(wrong)).await,
        AuthKind::Forwarded,
        Fault::Client,
    );
    assert_refused(
        upstream.tags(&repo(REPO), Auth::Anonymous).await,
        AuthKind::Anonymous,
        Fault::Client,
    );

    let misconfigured = client(registry.base_url(), Some(("testuser", "wrong-password")));
    assert_refused(
        misconfigured.tags(&repo(REPO), Auth::Configured).await,
        AuthKind::Configured,
        Fault::Internal,
    );
}

#[tokio::test]
async fn anonymous_registry() {
    let registry = Registry::anonymous();
    let image = populate(&registry).await;
    let upstream = client(registry.base_url(), None);
    upstream.ping().await.expect("ping");
    check_reads(&upstream, &image, Auth::Anonymous).await;
    // Configured without credentials is anonymous.
    check_reads(&upstream, &image, Auth::Configured).await;
    registry
        .push(&TestImage::new(&[64], 9), "team-b/tool", "v1")
        .await;
    let catalog = upstream.catalog(Auth::Anonymous).await.expect("catalog");
    assert_eq!(sorted(catalog), [REPO, "team-b/tool"]);
}

#[tokio::test]
async fn basic_registry() {
    let registry = Registry::basic();
    let image = populate(&registry).await;
    let user = registry.user().unwrap();
    let upstream = client(registry.base_url(), Some((&user.username, &user.password)));
    upstream
        .ping()
        .await
        .expect("ping answers 401, which means up");

    let header = HeaderValue::from_str(&user.basic_authorization()).unwrap();
    check_reads(&upstream, &image, Auth::Forward(&header)).await;
    check_reads(&upstream, &image, Auth::Configured).await;

    let wrong =
        HeaderValue::from_str(&testkit::basic_authorization("testuser", "wrong-password")).unwrap();
    check_refusals(&registry, &upstream, &wrong).await;
}

#[tokio::test]
async fn token_registry() {
    let registry = Registry::token();
    let image = populate(&registry).await;
    let user = registry.user().unwrap();
    let upstream = client(registry.base_url(), Some((&user.username, &user.password)));
    upstream.ping().await.expect("ping");

    check_reads(&upstream, &image, Auth::Configured).await;
    // The token for repository:project-1/app:pull is cached: asking again fetches none.
    let before = registry.token_requests();
    upstream
        .tags(&repo(REPO), Auth::Configured)
        .await
        .expect("tags");
    let layer = &image.layers()[0];
    upstream
        .blob_size(&repo(REPO), &digest(&layer.digest), Auth::Configured)
        .await
        .expect("size");
    assert_eq!(registry.token_requests(), before, "cached token reused");

    // A client's own Bearer token is forwarded as it is, with no token flow.
    let scopes = [
        "repository:project-1/app:pull,push",
        "repository:project-1/never-pushed:pull",
    ];
    let token = registry.issuer().unwrap().issue(&user.username, &scopes);
    let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let before = registry.token_requests();
    check_reads(&upstream, &image, Auth::Forward(&header)).await;
    assert_eq!(
        registry.token_requests(),
        before,
        "forwarding fetches no token"
    );

    let forged = HeaderValue::from_static("Bearer not-a-token");
    // Refused too: a forged Bearer token, and anonymous access (an anonymous token grants
    // nothing on this registry).
    check_refusals(&registry, &upstream, &forged).await;
}

#[tokio::test]
async fn token_is_fetched_again_after_it_expires() {
    let registry = Registry::builder(RegistryAuth::Token)
        .token_lifetime(Duration::from_secs(1))
        .start();
    let user = registry.user().unwrap();
    let upstream = client(registry.base_url(), Some((&user.username, &user.password)));
    assert!(
        upstream
            .tags(&repo(REPO), Auth::Configured)
            .await
            .expect("tags")
            .is_empty()
    );
    let first = registry.token_requests();
    assert_eq!(first, 1, "one token for the first call");
    upstream
        .tags(&repo(REPO), Auth::Configured)
        .await
        .expect("tags");
    assert_eq!(registry.token_requests(), first, "still cached");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    upstream
        .tags(&repo(REPO), Auth::Configured)
        .await
        .expect("tags");
    assert_eq!(
        registry.token_requests(),
        first + 1,
        "expired token replaced"
    );
}

#[tokio::test]
async fn lying_manifest_is_stored_but_blob_size_is_the_truth() {
    let registry = Registry::basic();
    let image = TestImage::new(&[50_000], 42);
    let pusher = RawPusher::for_registry(&registry, REPO);
    let answer = pusher
        .push_image(&image, REPO, "lie", ManifestFormat::DockerV2S2, Some(&[10]))
        .await;
    assert_eq!(
        answer.status.as_u16(),
        201,
        "distribution stores it: {}",
        answer.text()
    );

    let user = registry.user().unwrap();
    let upstream = client(registry.base_url(), Some((&user.username, &user.password)));
    let layer = &image.layers()[0];
    let size = upstream
        .blob_size(&repo(REPO), &digest(&layer.digest), Auth::Configured)
        .await;
    assert_eq!(size.expect("size"), Some(50_000));
    assert_eq!(
        upstream
            .tags(&repo(REPO), Auth::Configured)
            .await
            .expect("tags"),
        vec!["lie".to_owned()]
    );
}

#[tokio::test]
async fn upstream_down_then_back() {
    let mut registry = Registry::anonymous();
    registry.push(&TestImage::new(&[100], 1), REPO, "v1").await;
    let upstream = client(registry.base_url(), None);
    registry.stop();
    let started = Instant::now();
    let error = upstream
        .tags(&repo(REPO), Auth::Anonymous)
        .await
        .expect_err("down");
    assert!(error.is_unreachable(), "{error:?}");
    assert!(
        error.is_retryable() && error.fault() == Fault::Upstream,
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once"
    );
    assert!(upstream.ping().await.expect_err("down").is_unreachable());

    registry.start();
    upstream.ping().await.expect("back");
    assert_eq!(
        upstream
            .tags(&repo(REPO), Auth::Anonymous)
            .await
            .expect("tags"),
        vec!["v1".to_owned()]
    );
}

#[tokio::test]
async fn skopeo_format_arguments_pass_through() {
    let registry = Registry::anonymous();
    let image = TestImage::new(&[2000], 5);
    let out = registry
        .skopeo_push(&image, REPO, "docker", &["--format", "v2s2"])
        .await;
    out.assert_success();
    let upstream = client(registry.base_url(), None);
    let size = upstream
        .blob_size(
            &repo(REPO),
            &digest(&image.layers()[0].digest),
            Auth::Anonymous,
        )
        .await
        .expect("size");
    assert_eq!(size, Some(2000));
    // Distribution 2.8 refuses schema 1 manifests unless enabled; skopeo reports it.
    let out = registry
        .skopeo_push(&image, REPO, "schema1", &["--format", "v2s1"])
        .await;
    out.assert_failure();
    assert!(!out.stderr.is_empty());
}
