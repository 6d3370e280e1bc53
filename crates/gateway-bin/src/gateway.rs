//! The proxy: forwards every registry request, and checks manifest pushes and blob uploads
//! against the limits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use limits_core::{Decision, Policy, RepositoryName};
use tokio::sync::watch;
use upstream_client::{Auth, Upstream, UpstreamError};

use crate::answer::{Code, Refusal};
use crate::blob_sizes::BlobSizes;
use crate::body::{BoxError, ProxyBody};
use crate::forward::{Target, UPSTREAM_VERSION};
use crate::metrics::Metrics;
use crate::route::{Route, route};
use crate::tags::TagLedger;
use crate::upload::{GuardedBody, Trip, UploadProgress, content_range, upstream_range_end};

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
    /// Per-repository locks and recently created tags.
    pub ledger: TagLedger,
    /// Real layer sizes by digest.
    pub blob_sizes: BlobSizes,
    /// Bytes held by upload sessions.
    pub uploads: UploadProgress,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Behaviour options.
    pub options: Options,
}

/// The pushing client's credentials for the checks the gateway makes on its behalf.
fn client_auth(header: Option<&HeaderValue>) -> Auth<'_> {
    header.map_or(Auth::Anonymous, Auth::Forward)
}

/// A refusal for a denied decision: 403 `DENIED` with the decision's message and numbers.
pub(crate) fn denied_refusal(decision: &Decision) -> Refusal {
    let detail = serde_json::to_value(decision.detail()).unwrap_or_default();
    Refusal::new(StatusCode::FORBIDDEN, Code::Denied, decision.to_string()).with_detail(detail)
}

/// The answer when the upstream could not be asked: 504 on a timeout, 502 when unreachable,
/// `otherwise` for anything else.
pub(crate) fn upstream_failure(err: &UpstreamError, what: &str, otherwise: StatusCode) -> Refusal {
    let status = if err.is_timeout() {
        StatusCode::GATEWAY_TIMEOUT
    } else if err.is_unreachable() {
        StatusCode::BAD_GATEWAY
    } else {
        otherwise
    };
    Refusal::new(status, Code::Unavailable, format!("{what}: {err}"))
}

impl<U: Upstream> Gateway<U> {
    /// Answers one request.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        remote: SocketAddr,
    ) -> Response<ProxyBody> {
        self.metrics.in_flight(1);
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let response = match route(&method, &path) {
            Route::Outside => {
                self.metrics.refusal("not_registry_api");
                Refusal::new(
                    StatusCode::NOT_FOUND,
                    Code::NotFound,
                    format!("{path} is not part of the registry API (/v2/)"),
                )
                .into_response()
            }
            Route::ManifestPut { name, reference } => {
                self.manifest_put(request, name, reference, remote).await
            }
            Route::BlobUpload { name, session } => {
                self.blob_upload(request, name, session, remote).await
            }
            Route::Other => {
                let timeout =
                    (method == Method::GET || method == Method::HEAD || method == Method::DELETE)
                        .then_some(self.options.upstream_timeout);
                let (parts, body) = request.into_parts();
                self.forward(parts, body.map_err(BoxError::from).boxed(), remote, timeout)
                    .await
            }
        };
        self.metrics.request(&method, response.status());
        self.metrics.in_flight(-1);
        response
    }

    /// Sends a request to the upstream and its answer back, streamed both ways. `timeout`
    /// bounds the wait for the answer's head; requests that stream a body have none, as the
    /// upstream answers only once the body has arrived.
    async fn forward(
        &self,
        parts: Parts,
        body: ProxyBody,
        remote: SocketAddr,
        timeout: Option<Duration>,
    ) -> Response<ProxyBody> {
        match self.send(parts, body, remote, timeout).await {
            Ok(response) => response,
            Err(refusal) => {
                self.metrics.refusal("upstream_unavailable");
                refusal.into_response()
            }
        }
    }

    async fn send(
        &self,
        mut parts: Parts,
        body: ProxyBody,
        remote: SocketAddr,
        timeout: Option<Duration>,
    ) -> Result<Response<ProxyBody>, Refusal> {
        let uri = self.target.uri(&parts.uri).map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                Code::NotFound,
                format!("invalid request target: {e}"),
            )
        })?;
        self.target
            .request_headers(&mut parts.headers, &parts.uri, remote);
        parts.uri = uri;
        parts.version = UPSTREAM_VERSION;
        let request = Request::from_parts(parts, body);
        let started = Instant::now();
        let pending = self.client.request(request);
        let result = match timeout {
            Some(limit) => tokio::time::timeout(limit, pending).await.map_err(|_| {
                Refusal::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    Code::Unavailable,
                    format!(
                        "the upstream registry did not answer within {}",
                        humantime::format_duration(limit)
                    ),
                )
            })?,
            None => pending.await,
        };
        self.metrics.upstream("proxy", started.elapsed());
        let response = result.map_err(|e| {
            let message = match std::error::Error::source(&e) {
                Some(source) => format!("the upstream registry is unavailable: {e}: {source}"),
                None => format!("the upstream registry is unavailable: {e}"),
            };
            tracing::warn!(error = %message, "proxy: upstream request failed");
            Refusal::new(StatusCode::BAD_GATEWAY, Code::Unavailable, message)
        })?;
        let (mut parts, body) = response.into_parts();
        self.target.response_headers(&mut parts.headers);
        Ok(Response::from_parts(
            parts,
            body.map_err(BoxError::from).boxed(),
        ))
    }

    /// `PUT /v2/<name>/manifests/<reference>`: size, schema and tag checks, then forwarded with
    /// the very bytes the client sent.
    async fn manifest_put(
        &self,
        request: Request<Incoming>,
        name: &str,
        reference: &str,
        remote: SocketAddr,
    ) -> Response<ProxyBody> {
        let Ok(repository) = name.parse::<RepositoryName>() else {
            // Not a name the registry accepts either: it answers NAME_INVALID itself.
            let (parts, body) = request.into_parts();
            return self
                .forward(parts, body.map_err(BoxError::from).boxed(), remote, None)
                .await;
        };
        let (parts, body) = request.into_parts();
        let bytes = match crate::manifest::read_body(&parts.headers, body).await {
            Ok(bytes) => bytes,
            Err(refusal) => {
                self.metrics.refusal("manifest_too_large");
                tracing::warn!(repository = %repository, reference, event = "decision", verdict = "denied", "{}", refusal.message);
                return refusal.into_response();
            }
        };
        match self
            .check_manifest(&parts, &repository, reference, &bytes)
            .await
        {
            Ok(Some(mut tags)) => {
                let response = self
                    .forward(
                        parts,
                        full(bytes),
                        remote,
                        Some(self.options.upstream_timeout),
                    )
                    .await;
                if response.status().is_success() {
                    tags.record();
                }
                response
            }
            Ok(None) => {
                self.forward(
                    parts,
                    full(bytes),
                    remote,
                    Some(self.options.upstream_timeout),
                )
                .await
            }
            Err(refusal) => refusal.into_response(),
        }
    }

    /// `POST`/`PATCH`/`PUT` of a blob upload: refused as soon as its known size exceeds the
    /// repository's image size limit; otherwise streamed through.
    async fn blob_upload(
        &self,
        request: Request<Incoming>,
        name: &str,
        session: &str,
        remote: SocketAddr,
    ) -> Response<ProxyBody> {
        let limit = name
            .parse::<RepositoryName>()
            .ok()
            .map(|repository| self.policy.borrow().limits_for(&repository))
            .and_then(|applied| {
                applied
                    .limits
                    .max_image_size
                    .max()
                    .map(|max| (applied, max.bytes()))
            });
        let session = session.to_owned();
        let (parts, body) = request.into_parts();
        let Some((applied, limit)) = limit else {
            let response = self
                .forward(parts, body.map_err(BoxError::from).boxed(), remote, None)
                .await;
            self.track_upload(&session, &response);
            return response;
        };
        let range = content_range(&parts.headers);
        let offset = match range {
            Some((start, _)) => start,
            None if session.is_empty() => 0,
            None => self.uploads.get(&session),
        };
        let announced = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(|len| offset.saturating_add(len));
        let known = announced.max(range.map(|(_, end)| end.saturating_add(1)));
        if let Some(known) = known.filter(|known| *known > limit) {
            let decision = applied.check_blob(limits_core::ByteSize::new(known));
            self.log_decision(&decision, &session);
            crate::upload::drain(body);
            return denied_refusal(&decision).into_response();
        }
        let trip = Arc::new(Trip::default());
        let guarded = GuardedBody::new(body, applied, limit, offset, Arc::clone(&trip));
        let response = self.forward(parts, guarded.boxed(), remote, None).await;
        if let Some(decision) = trip.decision() {
            self.log_decision(decision, &session);
            self.uploads.remove(&session);
            trip.drain_rest();
            return denied_refusal(decision).into_response();
        }
        self.track_upload(&session, &response);
        response
    }

    /// Remembers how many bytes an upload session holds, from the upstream's `Range` answer.
    fn track_upload(&self, session: &str, response: &Response<ProxyBody>) {
        if response.status() == StatusCode::CREATED {
            self.uploads.remove(session);
            return;
        }
        let Some(end) = upstream_range_end(response.headers()) else {
            return;
        };
        let key = if session.is_empty() {
            match response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            {
                Some(location) => location.split('?').next().unwrap_or(location).to_owned(),
                None => return,
            }
        } else {
            session.to_owned()
        };
        self.uploads.set(&key, end);
    }

    /// One structured log line and one metric per decision.
    pub(crate) fn log_decision(&self, decision: &Decision, reference: &str) {
        self.metrics.decision(decision);
        let detail = decision.detail();
        // A number of bytes or tags; absent when unlimited.
        let limit = detail.limit;
        if decision.is_allowed() {
            tracing::info!(
                event = "decision", repository = %decision.repository, reference, check = detail.check,
                measured = detail.measured, limit, rule = %decision.source,
                verdict = decision.verdict(), "{decision}"
            );
        } else {
            tracing::warn!(
                event = "decision", repository = %decision.repository, reference, check = detail.check,
                measured = detail.measured, limit, rule = %decision.source,
                verdict = decision.verdict(), "{decision}"
            );
        }
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

fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}
