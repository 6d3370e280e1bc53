//! The admin listener: `/metrics`, `/healthz`, `/readyz` and `/readyz/coordination`.
//!
//! Readiness means "can serve": the configuration is loaded (always true once this listener is
//! up) and the upstream answers. The coordination store is not part of it: with Redis down,
//! pulls, blob uploads and re-pushes keep working and only tag-creating pushes are refused (or
//! let through by `--fail-open`), so taking every replica out of its Service would turn a
//! partial outage into a total one. The store has an endpoint of its own, its metrics and its
//! log lines.

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

/// How long one probe of the upstream or of the coordination store is reused.
const PROBE_TTL: Duration = Duration::from_secs(1);

/// State the admin endpoints read.
#[derive(Debug)]
pub struct Admin {
    /// The gateway's metrics.
    pub metrics: Arc<Metrics>,
    /// The upstream, asked by `/readyz`.
    pub upstream: Arc<ReqwestUpstream>,
    /// The coordination store, asked by `/readyz/coordination` in Redis mode.
    pub coordination: Option<RedisCoordination>,
    upstream_probe: Probe,
    coordination_probe: Probe,
}

/// The last result of one probe, reused for [`PROBE_TTL`] so that frequent probes do not
/// turn into a load on what they probe.
#[derive(Debug, Default)]
struct Probe {
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Probe {
    async fn check(&self, probe: impl Future<Output = Result<(), String>>) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, result)) = last.as_ref() {
            if at.elapsed() < PROBE_TTL {
                return result.clone();
            }
        }
        let result = probe.await;
        *last = Some((Instant::now(), result.clone()));
        result
    }
}

impl Admin {
    /// Admin state over the gateway's metrics, upstream and coordination store.
    pub fn new(
        metrics: Arc<Metrics>,
        upstream: Arc<ReqwestUpstream>,
        coordination: Option<RedisCoordination>,
    ) -> Self {
        Self {
            metrics,
            upstream,
            coordination,
            upstream_probe: Probe::default(),
            coordination_probe: Probe::default(),
        }
    }

    /// `/readyz`: the upstream answers `GET /v2/`.
    async fn ready(&self) -> (StatusCode, String) {
        let probe = async {
            self.upstream
                .ping()
                .await
                .map_err(|e| format!("upstream not ready: {e}"))
        };
        match self.upstream_probe.check(probe).await {
            Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
            Err(err) => (StatusCode::SERVICE_UNAVAILABLE, format!("{err}\n")),
        }
    }

    /// `/readyz/coordination`: whether tag-creating pushes can be coordinated now. In process
    /// they always can.
    async fn coordination_ready(&self) -> (StatusCode, String) {
        let Some(redis) = &self.coordination else {
            return (
                StatusCode::OK,
                "coordination in process (no coordination store)\n".to_owned(),
            );
        };
        let probe = async {
            redis
                .ping()
                .await
                .map_err(|e| format!("coordination store not ready: {e}"))
        };
        match self.coordination_probe.check(probe).await {
            Ok(()) => (StatusCode::OK, "coordination store ready\n".to_owned()),
            Err(err) => (StatusCode::SERVICE_UNAVAILABLE, format!("{err}\n")),
        }
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
            // The configuration was loaded before this listener started, and a failed reload
            // keeps the last good one: only the upstream decides readiness.
            "/readyz" => {
                let (status, body) = self.ready().await;
                (status, "text/plain", body)
            }
            "/readyz/coordination" => {
                let (status, body) = self.coordination_ready().await;
                (status, "text/plain", body)
            }
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
