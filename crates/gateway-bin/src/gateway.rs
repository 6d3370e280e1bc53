//! The proxy: reads every request once into a typed [`ApiRequest`], forwards it, and checks
//! manifest pushes and blob uploads against the limits, and manifest deletes against the
//! immutable tags.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use limits_core::{Decision, Policy, RepositoryName};
use registry_api::{ApiRequest, Route};
use tokio::sync::{Semaphore, watch};
use upstream_client::{Auth, Fault, Upstream, UpstreamError};

use crate::blob_sizes::BlobSizes;
use crate::body::drain;
use crate::body::{BoxError, ProxyBody};
use crate::coordination::Coordination;
use crate::forward::{Target, UPSTREAM_VERSION};
use crate::metrics::Metrics;
use crate::refusal::{self, Refusal, Seen};
use crate::upload_sessions::UploadSessions;

/// The pooled client that carries proxied requests to the upstream.
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, ProxyBody>;

/// How the gateway behaves where the configuration leaves a choice.
#[derive(Debug, Clone)]
pub struct Options {
    /// Allow pushes whose tag count or layer sizes cannot be read from the upstream.
    pub fail_open: bool,
    /// Longest wait for the upstream's answer to a request without a streamed body.
    pub upstream_timeout: Duration,
    /// Layer size checks run at once for one manifest.
    pub head_concurrency: usize,
    /// How long tags created through this process count even when the upstream's listing
    /// does not show them yet.
    pub recent_tag_window: Duration,
    /// Longest time a manifest body may take to arrive.
    pub body_read_timeout: Duration,
}

impl Options {
    /// Whether a check whose fact the upstream could not tell lets the request through: only
    /// with `--fail-open`, and never when the failure is the client's (`Fault::Client`: the
    /// registry or its token service refused the client's own credentials), which goes back to
    /// the client instead. The one place that decides it.
    pub fn fails_open(&self, err: &UpstreamError) -> bool {
        self.fail_open && err.fault() != Fault::Client
    }
}

/// Where tag counts are read.
#[derive(Debug)]
pub enum TagSource<U> {
    /// The upstream itself, with the pushing client's own `Authorization`.
    Upstream,
    /// Another address of the same registry (Harbor's public URL) with the gateway's own
    /// credentials.
    External(U),
}

/// The proxy and everything it keeps between requests.
#[derive(Debug)]
pub struct Gateway<U> {
    /// Carries proxied requests.
    pub client: HttpClient,
    /// Where proxied requests go.
    pub target: Target,
    /// Asks the upstream about blobs (and tags, unless `tag_source` says otherwise).
    pub registry: U,
    /// Where tag counts are read.
    pub tag_source: TagSource<U>,
    /// The limits in force.
    pub policy: watch::Receiver<Arc<Policy>>,
    /// Per-repository leases and recently created tags, in process or shared.
    pub coordination: Coordination,
    /// Real blob sizes by digest.
    pub blob_sizes: BlobSizes,
    /// What the digests signature tags name hold, by repository.
    pub subjects: crate::subjects::Subjects,
    /// Bytes held by upload sessions, from the upstream's answers.
    pub uploads: UploadSessions,
    /// Bytes of manifest bodies that may be buffered at once, as permits.
    pub manifest_buffers: Arc<Semaphore>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Behaviour options.
    pub options: Options,
    /// Where decisions are notified, if anywhere.
    pub webhook: Option<crate::webhook::Webhook>,
}

/// The pushing client's credentials for the checks the gateway makes on its behalf.
pub(crate) fn client_auth(header: Option<&HeaderValue>) -> Auth<'_> {
    header.map_or(Auth::Anonymous, Auth::Forward)
}

/// The end-to-end header a write's `Connection` header names, among those the checks read. A
/// proxy removes the headers `Connection` names, so the registry would not see what was
/// checked.
fn connection_names_checked_header(headers: &http::HeaderMap) -> Option<String> {
    const CHECKED: [&str; 5] = [
        "authorization",
        "content-length",
        "content-range",
        "content-type",
        "host",
    ];
    crate::forward::connection_tokens(headers)
        .map(str::to_ascii_lowercase)
        .find(|name| CHECKED.contains(&name.as_str()))
}

impl<U: Upstream + 'static> Gateway<U> {
    /// Answers one request.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        remote: SocketAddr,
    ) -> Response<ProxyBody> {
        let _in_flight = self.metrics.in_flight();
        let method = request.method().clone();
        let uri = request.uri().clone();
        let response = match ApiRequest::parse(method.as_str(), uri.path(), uri.query()) {
            Err(err) => {
                let seen = Seen {
                    method: &method,
                    path: uri.path(),
                    repository: None,
                    reference: None,
                };
                let refusal = refused(request, Refusal::Request(err));
                refusal::answer(refusal, &seen, &self.metrics)
            }
            Ok(api) => {
                let repository = api.repository().cloned();
                let reference = match &api.route {
                    Route::ManifestPut { reference, .. }
                    | Route::ManifestDelete { reference, .. } => Some(reference.to_string()),
                    _ => None,
                };
                match self.dispatch(request, api, remote).await {
                    Ok(response) => response,
                    Err(refusal) => {
                        let seen = Seen {
                            method: &method,
                            path: uri.path(),
                            repository: repository.as_ref(),
                            reference: reference.as_deref(),
                        };
                        refusal::answer(refusal, &seen, &self.metrics)
                    }
                }
            }
        };
        self.metrics.request(&method, response.status());
        response
    }

    async fn dispatch(
        self: &Arc<Self>,
        request: Request<Incoming>,
        api: ApiRequest,
        remote: SocketAddr,
    ) -> Result<Response<ProxyBody>, Refusal> {
        if api.method.is_write() {
            if let Some(name) = connection_names_checked_header(request.headers()) {
                let refusal = Refusal::ConnectionNamesCheckedHeader { name };
                return Err(refused(request, refusal));
            }
        }
        if api.method.is_write() && api.route != Route::Outside {
            if let Some(read_only) = self.read_only(&api) {
                return Err(refused(request, Refusal::ReadOnly(read_only)));
            }
        }
        let forward_path = api.forward_path;
        match api.route {
            Route::Outside => {
                let path = request.uri().path().to_owned();
                Err(refused(request, Refusal::NotRegistryApi { path }))
            }
            Route::ManifestPut { name, reference } => {
                self.manifest_put(request, name, reference, forward_path, remote)
                    .await
            }
            Route::UploadStart { name, mount } => {
                self.upload_start(request, name, mount, forward_path, remote)
                    .await
            }
            Route::UploadChunk { name, id } => {
                self.upload_chunk(request, name, id, forward_path, remote)
                    .await
            }
            Route::ManifestDelete { name, reference } => {
                self.manifest_delete(request, name, reference, forward_path, remote)
                    .await
            }
            Route::Read | Route::OtherWrite => {
                let method = request.method();
                let timeout = (method == Method::GET
                    || method == Method::HEAD
                    || method == Method::OPTIONS
                    || method == Method::DELETE)
                    .then_some(self.options.upstream_timeout);
                self.forward_request(request, forward_path.as_deref(), remote, timeout)
                    .await
            }
        }
    }

    /// Why a write is refused while its repository is read-only; a write whose repository
    /// cannot be read is refused while any repository is.
    fn read_only(&self, api: &ApiRequest) -> Option<limits_core::ReadOnly> {
        let policy = self.policy.borrow();
        match api.write_repository() {
            Some(repository) => policy.limits_for(&repository).check_write().err(),
            None => policy.any_read_only(),
        }
    }

    /// Forwards a client's request with its body streamed; see [`forward`](Self::forward).
    pub(crate) async fn forward_request(
        &self,
        request: Request<Incoming>,
        path: Option<&str>,
        remote: SocketAddr,
        timeout: Option<Duration>,
    ) -> Result<Response<ProxyBody>, Refusal> {
        let (parts, body) = request.into_parts();
        let body = body.map_err(BoxError::from).boxed();
        self.forward(parts, body, path, remote, timeout).await
    }

    /// Sends a request to the upstream and its answer back, streamed both ways. `timeout`
    /// bounds the wait for the answer's head; requests that stream a body have none, as the
    /// upstream answers only once the body has arrived. `path` replaces the client's path
    /// with its canonical form.
    pub(crate) async fn forward(
        &self,
        mut parts: Parts,
        body: ProxyBody,
        path: Option<&str>,
        remote: SocketAddr,
        timeout: Option<Duration>,
    ) -> Result<Response<ProxyBody>, Refusal> {
        let uri = self
            .target
            .uri(&parts.uri, path)
            .map_err(|e| Refusal::TargetInvalid {
                cause: e.to_string(),
            })?;
        self.target
            .request_headers(&mut parts.headers, &parts.uri, remote);
        parts.uri = uri;
        parts.version = UPSTREAM_VERSION;
        let request = Request::from_parts(parts, body);
        let started = Instant::now();
        let pending = self.client.request(request);
        let result = match timeout {
            Some(after) => tokio::time::timeout(after, pending)
                .await
                .map_err(|_| Refusal::UpstreamTimeout { after })?,
            None => pending.await,
        };
        self.metrics.upstream("proxy", started.elapsed());
        let response = result.map_err(|e| {
            let cause = match std::error::Error::source(&e) {
                Some(source) => format!("{e}: {source}"),
                None => e.to_string(),
            };
            tracing::warn!(error = %format!("the upstream registry is unavailable: {cause}"), "proxy: upstream request failed");
            // A failed connection sent nothing; any other failure may have come after the
            // request reached the registry.
            if e.is_connect() {
                Refusal::UpstreamConnect { cause }
            } else {
                Refusal::UpstreamUnreachable { cause }
            }
        })?;
        let (mut parts, body) = response.into_parts();
        self.target.response_headers(&mut parts.headers);
        Ok(Response::from_parts(
            parts,
            body.map_err(BoxError::from).boxed(),
        ))
    }
}

impl<U: Upstream> Gateway<U> {
    /// One structured log line and one metric per decision.
    pub(crate) fn log_decision(&self, decision: &Decision, reference: &str) {
        self.metrics.decision(decision);
        if let Some(webhook) = &self.webhook {
            webhook.decision(decision, reference);
        }
        let detail = decision.detail();
        // A number of bytes or tags; absent when unlimited.
        let limit = detail.limit;
        let enforcement = decision.enforcement.as_str();
        let action = if decision.refuses() {
            "refused"
        } else {
            "accepted"
        };
        let message = decision.warning().unwrap_or_else(|| decision.to_string());
        if decision.verdict() == "allowed" {
            tracing::info!(
                event = "decision", repository = %decision.repository, reference, check = detail.check,
                measured = detail.measured, limit, rule = %decision.source,
                verdict = decision.verdict(), enforcement, action, "{message}"
            );
        } else {
            tracing::warn!(
                event = "decision", repository = %decision.repository, reference, check = detail.check,
                measured = detail.measured, limit, rule = %decision.source,
                verdict = decision.verdict(), enforcement, action, "{message}"
            );
        }
    }

    /// Logs and counts a limit's decision; `Err` when it refuses.
    pub(crate) fn decide(&self, decision: &Decision, reference: &str) -> Result<(), Refusal> {
        self.log_decision(decision, reference);
        if decision.refuses() {
            return Err(Refusal::denied(decision));
        }
        Ok(())
    }

    /// Real sizes of blobs, from the cache or the upstream.
    pub(crate) async fn blob_size(
        &self,
        repository: &RepositoryName,
        digest: &oci_manifest::Digest,
        auth: Option<&HeaderValue>,
    ) -> Result<Option<u64>, UpstreamError> {
        if let Some(size) = self.blob_sizes.get(digest) {
            self.metrics.blob_cache(true);
            return Ok(Some(size));
        }
        self.metrics.blob_cache(false);
        let started = Instant::now();
        let result = self
            .registry
            .blob_size(repository, digest, client_auth(auth))
            .await;
        self.metrics.upstream("blob_head", started.elapsed());
        if let Ok(Some(size)) = result {
            self.blob_sizes.insert(digest.clone(), size);
        }
        result
    }

    /// The digest a tag points to on the upstream (`HEAD` on the manifest, with the client's
    /// own credentials); `None` when the tag does not exist.
    pub(crate) async fn manifest_digest(
        &self,
        repository: &RepositoryName,
        tag: &str,
        auth: Option<&HeaderValue>,
    ) -> Result<Option<oci_manifest::Digest>, UpstreamError> {
        let started = Instant::now();
        let result = self
            .registry
            .manifest_digest(repository, tag, client_auth(auth))
            .await;
        self.metrics.upstream("manifest_head", started.elapsed());
        result
    }

    /// Every tag the repository holds, from the upstream or the external address.
    pub(crate) async fn list_tags(
        &self,
        repository: &RepositoryName,
        auth: Option<&HeaderValue>,
    ) -> Result<Vec<String>, UpstreamError> {
        let started = Instant::now();
        let result = match &self.tag_source {
            TagSource::Upstream => self.registry.tags(repository, client_auth(auth)).await,
            TagSource::External(external) => external.tags(repository, Auth::Configured).await,
        };
        self.metrics.upstream("tags", started.elapsed());
        result
    }
}

/// `refusal`, with the request's unread body drained so that the client reads the answer
/// instead of a reset.
pub(crate) fn refused(request: Request<Incoming>, refusal: Refusal) -> Refusal {
    drain(request.into_body());
    refusal
}

/// A body of bytes already in memory.
pub(crate) fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn fail_open_never_covers_the_clients_own_credentials() {
        use upstream_client::AuthKind;
        let options = |fail_open| Options {
            fail_open,
            upstream_timeout: Duration::from_secs(1),
            head_concurrency: 1,
            recent_tag_window: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(1),
        };
        let refused = |credentials| UpstreamError::Unauthorized {
            status: StatusCode::UNAUTHORIZED,
            credentials,
            url: "http://u/v2/a/tags/list".into(),
            code: None,
            challenge: None,
        };
        let token_refused = |credentials| UpstreamError::TokenRefused {
            realm: "http://u/token".into(),
            status: StatusCode::UNAUTHORIZED,
            credentials,
        };
        let cases: Vec<(UpstreamError, bool)> = vec![
            (
                UpstreamError::Timeout {
                    url: "http://u/v2/".into(),
                    timeout: Duration::from_secs(1),
                },
                true,
            ),
            (
                UpstreamError::Status {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    url: "http://u/v2/".into(),
                    code: None,
                    message: None,
                },
                true,
            ),
            // Harbor mode's robot account refused: the gateway's configuration, not the client.
            (refused(AuthKind::Configured), true),
            (refused(AuthKind::Forwarded), false),
            (refused(AuthKind::Anonymous), false),
            (token_refused(AuthKind::Forwarded), false),
            (token_refused(AuthKind::Configured), true),
        ];
        for (err, fails_open) in &cases {
            assert_eq!(options(true).fails_open(err), *fails_open, "{err}");
            assert!(!options(false).fails_open(err), "{err}");
        }
    }

    #[test]
    fn connection_naming_checked_headers() {
        let cases: &[(&str, Option<&str>)] = &[
            ("keep-alive", None),
            ("close", None),
            ("keep-alive, Content-Type", Some("content-type")),
            ("AUTHORIZATION", Some("authorization")),
            ("x-private, content-range", Some("content-range")),
        ];
        for (value, want) in cases {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::CONNECTION,
                HeaderValue::from_str(value).expect("header"),
            );
            assert_eq!(
                connection_names_checked_header(&headers).as_deref(),
                *want,
                "{value}"
            );
        }
    }
}
