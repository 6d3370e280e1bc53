//! Sending a checked request to the upstream registry and its answer back, streamed both ways.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::request::Parts;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::body::{BoxError, ProxyBody};
use crate::metrics::Metrics;
use crate::refusal::Refusal;
use crate::upstream::target::{Target, UPSTREAM_VERSION};

/// The pooled client that carries proxied requests to the upstream.
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, ProxyBody>;

/// Carries requests to the upstream.
#[derive(Debug)]
pub struct Forwarder {
    client: HttpClient,
    target: Target,
    metrics: Arc<Metrics>,
}

impl Forwarder {
    /// Requests sent with `client` to `target`, timed in `metrics`.
    pub fn new(client: HttpClient, target: Target, metrics: Arc<Metrics>) -> Self {
        Self {
            client,
            target,
            metrics,
        }
    }

    /// Forwards a client's request with its body streamed; see [`forward`](Self::forward).
    pub async fn forward_request(
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
    pub async fn forward(
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

/// Where one request goes on: the forwarder, the request's canonical path (in place of the
/// client's) and the client's address. Owned, so that a forward that must finish once started
/// can run in a task of its own.
#[derive(Debug, Clone)]
pub struct Onward {
    forwarder: Arc<Forwarder>,
    path: Option<String>,
    remote: SocketAddr,
}

impl Onward {
    /// A request from `remote` sent on by `forwarder`, to `path` when it is given.
    pub fn new(forwarder: Arc<Forwarder>, path: Option<String>, remote: SocketAddr) -> Self {
        Self {
            forwarder,
            path,
            remote,
        }
    }

    /// Forwards the client's request with its body streamed.
    pub async fn request(
        &self,
        request: Request<Incoming>,
        timeout: Option<Duration>,
    ) -> Result<Response<ProxyBody>, Refusal> {
        self.forwarder
            .forward_request(request, self.path.as_deref(), self.remote, timeout)
            .await
    }

    /// Forwards a request whose body the gateway holds or wraps.
    pub async fn send(
        &self,
        parts: Parts,
        body: ProxyBody,
        timeout: Option<Duration>,
    ) -> Result<Response<ProxyBody>, Refusal> {
        self.forwarder
            .forward(parts, body, self.path.as_deref(), self.remote, timeout)
            .await
    }
}
