//! The admin listener: `/metrics`, `/healthz` and `/readyz`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::sync::Mutex;
use upstream_client::ReqwestUpstream;

use crate::coordination::RedisCoordination;
use crate::metrics::Metrics;

/// How long one readiness probe of the upstream is reused.
const PROBE_TTL: Duration = Duration::from_secs(1);

/// State the admin endpoints read.
#[derive(Debug)]
pub struct Admin {
    /// The gateway's metrics.
    pub metrics: Arc<Metrics>,
    /// The upstream, asked by `/readyz`.
    pub upstream: Arc<ReqwestUpstream>,
    /// The coordination store, asked by `/readyz` in Redis mode.
    pub coordination: Option<RedisCoordination>,
    last_probe: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Admin {
    /// Admin state over the gateway's metrics and upstream.
    pub fn new(
        metrics: Arc<Metrics>,
        upstream: Arc<ReqwestUpstream>,
        coordination: Option<RedisCoordination>,
    ) -> Self {
        Self {
            metrics,
            upstream,
            coordination,
            last_probe: Mutex::new(None),
        }
    }

    async fn upstream_ready(&self) -> Result<(), String> {
        let mut last = self.last_probe.lock().await;
        if let Some((at, result)) = last.as_ref() {
            if at.elapsed() < PROBE_TTL {
                return result.clone();
            }
        }
        let mut result = self
            .upstream
            .ping()
            .await
            .map_err(|e| format!("upstream not ready: {e}"));
        if let (Ok(()), Some(coordination)) = (&result, &self.coordination) {
            result = coordination
                .ping()
                .await
                .map_err(|e| format!("coordination store not ready: {e}"));
        }
        *last = Some((Instant::now(), result.clone()));
        result
    }

    /// Answers one admin request.
    pub async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (status, content_type, body) = match request.uri().path() {
            "/metrics" => (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.metrics.encode(),
            ),
            "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
            // The configuration was loaded before this listener started; a failed reload keeps
            // the last good one, so only the upstream (and Redis, when coordinating through
            // it) decides readiness.
            "/readyz" => match self.upstream_ready().await {
                Ok(()) => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
                Err(err) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    format!("{err}\n"),
                ),
            },
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found\n".to_owned(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    }
}
