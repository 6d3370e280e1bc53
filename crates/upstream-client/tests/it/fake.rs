//! Against fake servers, for what a real registry will not do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use testkit::{FakeServer, Reply, free_port};
use upstream_client::{Auth, Fault, ReqwestUpstream, TokenProblem, Upstream, UpstreamError};
use url::Url;

use crate::{client, digest, repo};

const LAYER: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn tags_page(tags: &[&str]) -> String {
    serde_json::json!({"name": "a/b", "tags": tags}).to_string()
}

/// Three pages of two tags, each page's `Link` written by `link(next_last)`.
fn paginated(link: fn(&Url, &str) -> String) -> FakeServer {
    FakeServer::start(move |request, base| {
        let pages: [(&str, &[&str]); 3] =
            [("", &["a", "b"]), ("b", &["c", "d"]), ("d", &["e", "f"])];
        let last = request.query("last").unwrap_or_default();
        let index = pages.iter().position(|(l, _)| *l == last).unwrap_or(2);
        let reply = Reply::json(200, &tags_page(pages[index].1));
        match pages.get(index + 1) {
            Some((next_last, _)) => reply.header("link", &link(base, next_last)),
            None => reply,
        }
    })
}

async fn all_tags(server: &FakeServer) -> Result<Vec<String>, UpstreamError> {
    client(server.url(), None)
        .tags(&repo("a/b"), Auth::Anonymous)
        .await
}

#[tokio::test]
async fn follows_relative_links() {
    let server = paginated(|_, last| format!(r#"</v2/a/b/tags/list?last={last}&n=2>; rel="next""#));
    assert_eq!(
        all_tags(&server).await.expect("tags"),
        ["a", "b", "c", "d", "e", "f"]
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0].query("n").as_deref(),
        Some("1000"),
        "asks for large pages"
    );
}

#[tokio::test]
async fn follows_absolute_links() {
    let server =
        paginated(|base, last| format!(r#"<{base}v2/a/b/tags/list?n=2&last={last}>; rel="next""#));
    assert_eq!(
        all_tags(&server).await.expect("tags"),
        ["a", "b", "c", "d", "e", "f"]
    );
}

#[tokio::test]
async fn follows_query_only_links() {
    let server =
        paginated(|_, last| format!(r#"<?last={last}&n=2>; rel="next", </v2/>; rel="first""#));
    assert_eq!(
        all_tags(&server).await.expect("tags"),
        ["a", "b", "c", "d", "e", "f"]
    );
}

#[tokio::test]
async fn malformed_link_is_an_upstream_fault() {
    let server = FakeServer::start(|_, _| {
        Reply::json(200, &tags_page(&["a"])).header("link", "/v2/a/b/tags/list?last=a; rel=next")
    });
    let error = all_tags(&server).await.expect_err("malformed");
    assert!(
        matches!(error, UpstreamError::MalformedLink { .. }),
        "{error:?}"
    );
    assert_eq!(error.fault(), Fault::Upstream);
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("last=a; rel=next"), "{error}");
}

#[tokio::test]
async fn link_to_another_host_is_refused() {
    let server = FakeServer::start(|_, _| {
        Reply::json(200, &tags_page(&["a"])).header(
            "link",
            r#"<http://elsewhere.example/v2/a/b/tags/list?last=a>; rel="next""#,
        )
    });
    let error = all_tags(&server).await.expect_err("foreign link");
    assert!(
        matches!(error, UpstreamError::LinkOutsideUpstream { .. }),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 1, "nothing sent elsewhere");
}

#[tokio::test]
async fn endless_pagination_stops_after_max_pages() {
    let server = FakeServer::start(|request, _| {
        let n: u64 = request
            .query("last")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        Reply::json(200, &tags_page(&[&n.to_string()])).header(
            "link",
            &format!(r#"</v2/a/b/tags/list?last={}>; rel="next""#, n + 1),
        )
    });
    let upstream = ReqwestUpstream::builder(server.url())
        .max_pages(5)
        .build()
        .expect("builds");
    let error = upstream
        .tags(&repo("a/b"), Auth::Anonymous)
        .await
        .expect_err("endless");
    assert!(
        matches!(error, UpstreamError::TooManyPages { limit: 5, .. }),
        "{error:?}"
    );
    assert_eq!(error.fault(), Fault::Upstream);
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn server_error_is_an_upstream_fault() {
    let server = FakeServer::start(|_, _| Reply::error(500, "UNKNOWN", "storage backend down"));
    let upstream = client(server.url(), None);
    let error = upstream
        .tags(&repo("a/b"), Auth::Anonymous)
        .await
        .expect_err("500");
    assert_eq!(error.fault(), Fault::Upstream);
    assert!(error.is_retryable());
    assert_eq!(error.status().map(|s| s.as_u16()), Some(500));
    assert!(
        error.to_string().contains("500") && error.to_string().contains("UNKNOWN"),
        "{error}"
    );
    let error = upstream
        .blob_size(&repo("a/b"), &digest(LAYER), Auth::Anonymous)
        .await
        .expect_err("500");
    assert_eq!(error.fault(), Fault::Upstream);
}

#[tokio::test]
async fn not_found_without_name_unknown_is_not_zero_tags() {
    let server = FakeServer::start(|_, _| Reply::status(404).body("404 page not found"));
    let error = all_tags(&server).await.expect_err("not a registry");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(404));
    assert_eq!(error.fault(), Fault::Upstream);
}

#[tokio::test]
async fn hang_times_out_within_the_timeout() {
    let server = FakeServer::start(|_, _| Reply::hang());
    let timeout = Duration::from_millis(500);
    let upstream = ReqwestUpstream::builder(server.url())
        .request_timeout(timeout)
        .build()
        .expect("builds");
    for call in 0..2 {
        let started = Instant::now();
        let error = if call == 0 {
            upstream
                .tags(&repo("a/b"), Auth::Anonymous)
                .await
                .expect_err("hang")
        } else {
            upstream
                .blob_size(&repo("a/b"), &digest(LAYER), Auth::Anonymous)
                .await
                .expect_err("hang")
        };
        let elapsed = started.elapsed();
        assert!(error.is_timeout() && error.is_retryable(), "{error:?}");
        assert_eq!(error.fault(), Fault::Upstream);
        assert!(
            elapsed >= timeout && elapsed < timeout * 3,
            "took {elapsed:?}"
        );
        assert!(
            error.to_string().contains("did not answer within 500ms"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let base: Url = format!("http://127.0.0.1:{}/", free_port())
        .parse()
        .expect("url");
    let error = client(base, None)
        .tags(&repo("a/b"), Auth::Anonymous)
        .await
        .expect_err("closed");
    assert!(error.is_unreachable() && error.is_retryable(), "{error:?}");
}

/// A registry that wants a Bearer token from its own `/token`, which answers `token_body`.
fn token_registry(token_body: &'static str, fetches: Arc<AtomicUsize>) -> FakeServer {
    FakeServer::start(move |request, base| {
        if request.path() == "/token" {
            fetches.fetch_add(1, Ordering::SeqCst);
            return Reply::json(200, token_body);
        }
        if request.header("authorization") == Some("Bearer good") {
            return Reply::json(200, &tags_page(&["t"]));
        }
        let challenge = format!(
            r#"Bearer realm="{base}token",service="fake",scope="repository:a/b:pull",error="invalid_token""#
        );
        Reply::error(401, "UNAUTHORIZED", "authentication required")
            .header("www-authenticate", &challenge)
    })
}

#[tokio::test]
async fn token_endpoint_garbage_is_a_token_error() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let server = token_registry("<html>I am not JSON</html>", fetches.clone());
    let upstream = ReqwestUpstream::builder(server.url())
        .credentials(upstream_client::Credentials::new("robot", "secret"))
        .build()
        .expect("builds");
    let error = upstream
        .tags(&repo("a/b"), Auth::Configured)
        .await
        .expect_err("garbage");
    assert!(
        matches!(
            &error,
            UpstreamError::Token {
                problem: TokenProblem::NotJson { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.fault(), Fault::Upstream);
    let message = error.to_string();
    assert!(
        message.contains("/token") && message.contains("I am not JSON"),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn token_flow_sends_basic_to_the_realm_and_caches_access_token() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let server = token_registry(
        r#"{"access_token":"good","expires_in":300}"#,
        fetches.clone(),
    );
    let upstream = ReqwestUpstream::builder(server.url())
        .credentials(upstream_client::Credentials::new("robot", "secret"))
        .build()
        .expect("builds");
    for _ in 0..3 {
        assert_eq!(
            upstream
                .tags(&repo("a/b"), Auth::Configured)
                .await
                .expect("tags"),
            ["t"]
        );
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "one token for three calls"
    );
    let requests = server.requests();
    let token_request = requests
        .iter()
        .find(|r| r.path() == "/token")
        .expect("token fetched");
    assert_eq!(token_request.query("service").as_deref(), Some("fake"));
    assert_eq!(
        token_request.query("scope").as_deref(),
        Some("repository:a/b:pull")
    );
    assert_eq!(
        token_request.header("authorization"),
        Some("Basic cm9ib3Q6c2VjcmV0")
    );
    // 401, token, retry; then two calls sent with the cached token at once.
    assert_eq!(
        requests.len(),
        5,
        "{:?}",
        requests
            .iter()
            .map(|r| r.uri.to_string())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn forwarded_credentials_get_no_token_flow() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let server = token_registry(r#"{"token":"good"}"#, fetches.clone());
    let header = http::HeaderValue::from_static("Bearer expired");
    let error = client(server.url(), Some(("robot", "secret")))
        .tags(&repo("a/b"), Auth::Forward(&header))
        .await
        .expect_err("refused");
    assert_eq!(error.fault(), Fault::Client);
    assert_eq!(fetches.load(Ordering::SeqCst), 0);
}
