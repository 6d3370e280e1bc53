//! The admin listener: `/metrics`, `/healthz`, `/readyz` and `/readyz/coordination`; the
//! registry's notifications (`POST /v1/registry-notifications`) and the inventory's view
//! (`GET /v1/inventory/<namespace>`), both in the `inventory` module.
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
use limits_core::Policy;
use tokio::sync::{Mutex, watch};
use upstream_client::ReqwestUpstream;

use crate::coordination::RedisCoordination;
use crate::inventory::{Inventory, NamespaceMetrics, namespace_usages, notifications};
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
    /// The registry inventory, fed by `POST /v1/registry-notifications`.
    pub inventory: Arc<Inventory>,
    /// How notifications are authenticated and bounded.
    pub notifications: notifications::Settings,
    /// With `--namespace-usage-metrics`: the namespace gauges, and the configuration in force
    /// that gives their quotas.
    namespace_usage: Option<(NamespaceMetrics, watch::Receiver<Arc<Policy>>)>,
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
        inventory: Arc<Inventory>,
        notifications: notifications::Settings,
    ) -> Self {
        Self {
            metrics,
            upstream,
            coordination,
            inventory,
            notifications,
            namespace_usage: None,
            upstream_probe: Probe::default(),
            coordination_probe: Probe::default(),
        }
    }

    /// Adds each namespace's usage and quota to `/metrics`, the quotas read from `policy` (the
    /// configuration in force, reloads included).
    pub fn with_namespace_usage(mut self, policy: watch::Receiver<Arc<Policy>>) -> Self {
        self.namespace_usage = Some((NamespaceMetrics::new(), policy));
        self
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

    /// The gateway's metrics followed by the inventory's (and the namespaces' when asked for),
    /// with one closing `# EOF`.
    fn encode_metrics(&self) -> String {
        self.inventory.update_gauges();
        self.inventory.tag_sets().update_gauges();
        let mut text = self.metrics.encode();
        if let Some(stripped) = text.strip_suffix("# EOF\n") {
            text.truncate(stripped.len());
        }
        self.inventory.metrics().encode_into(&mut text);
        if let Some((metrics, policy)) = &self.namespace_usage {
            let policy = Arc::clone(&policy.borrow());
            metrics.encode_into(&namespace_usages(&self.inventory), &policy, &mut text);
        }
        text.push_str("# EOF\n");
        text
    }

    /// Answers one admin request.
    pub async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        let (status, content_type, body) = match path.as_str() {
            "/metrics" => (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.encode_metrics(),
            ),
            notifications::PATH => {
                let (status, body) =
                    notifications::receive(&self.inventory, &self.notifications, request).await;
                (status, "text/plain", body)
            }
            view if view.starts_with(crate::inventory::view::PREFIX) => {
                let (status, body) = crate::inventory::view::answer(&self.inventory, view).await;
                let content_type = if status == StatusCode::OK {
                    "application/json"
                } else {
                    "text/plain"
                };
                (status, content_type, body)
            }
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
