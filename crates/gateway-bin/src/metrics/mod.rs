//! Prometheus metrics of the gateway.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use limits_core::{Decision, LimitSource, Policy};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod labels;

use labels::{
    ConnectionLabels, DecisionLabels, OperationLabels, ReasonLabels, RelayLabels, RequestLabels,
    ResultLabels,
};

type HistogramFamily = Family<OperationLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// A request in flight: counted while alive.
#[derive(Debug)]
pub struct InFlight(Gauge<i64, std::sync::atomic::AtomicI64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Every metric the gateway exports, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    refusals: Family<ReasonLabels, Counter>,
    upstream_latency: HistogramFamily,
    blob_cache: Family<ResultLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    config_loaded: Gauge,
    config_rules: Gauge,
    config_last_reload_ok: Gauge,
    in_flight: Gauge<i64, std::sync::atomic::AtomicI64>,
    refused_bytes: Counter<u64, AtomicU64>,
    relayed_bytes: Family<RelayLabels, Counter>,
    webhook_events: Family<ResultLabels, Counter>,
    connections_shed: Family<ConnectionLabels, Counter>,
    connections_refused: Family<ConnectionLabels, Counter>,
    tls: TlsMetrics,
    coordination: CoordinationMetrics,
}

/// The metrics of the proxy listener's TLS.
#[derive(Debug, Default)]
struct TlsMetrics {
    reloads: Family<ResultLabels, Counter>,
    last_reload_ok: Gauge,
    handshake_failures: Family<ReasonLabels, Counter>,
}

/// The metrics of the coordination store (Redis mode).
#[derive(Debug)]
struct CoordinationMetrics {
    lease_wait: Histogram,
    lease_held: Histogram,
    lease_timeouts: Counter,
    leases_lost: Counter,
    calls: Family<ResultLabels, Counter>,
    reconnects: Counter,
    up: Gauge,
    down: std::sync::atomic::AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under the `registry_gateway` prefix.
    pub fn new() -> Self {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("registry_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by method and status class",
            requests.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Limit decisions, by check, verdict and rule (position or global)",
            decisions.clone(),
        );
        let refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "refusals",
            "Requests the gateway answered itself, by reason",
            refusals.clone(),
        );
        let upstream_latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "upstream_request_duration_seconds",
            "Time until the upstream answered, by operation (proxy, tags, blob_head)",
            upstream_latency.clone(),
        );
        let relayed_bytes = Family::<RelayLabels, Counter>::default();
        registry.register(
            "read_relay_body_bytes",
            "Response body bytes of plain reads relayed outside hyper, by how (splice: socket to socket; copy: through a buffer)",
            relayed_bytes.clone(),
        );
        let webhook_events = Family::<ResultLabels, Counter>::default();
        registry.register(
            "webhook_events",
            "Webhook events, by result (delivered, failed after retries, dropped when the queue was full)",
            webhook_events.clone(),
        );
        let connections_shed = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            "connections_shed",
            "Idle connections closed to make room for a new one, by listener and reason (capacity: the listener was full; per_source: the source was at its cap)",
            connections_shed.clone(),
        );
        let connections_refused = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "New connections closed at once, by listener and reason (per_source: every connection of the source carried a request)",
            connections_refused.clone(),
        );
        let blob_cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "blob_size_cache_lookups",
            "Blob size cache lookups, by result (hit, miss)",
            blob_cache.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration loads, by result (success, failure)",
            reloads.clone(),
        );
        let config_loaded = Gauge::default();
        registry.register(
            "config_loaded",
            "1 when a valid configuration is in force",
            config_loaded.clone(),
        );
        let config_rules = Gauge::default();
        registry.register(
            "config_rules",
            "Rules in the configuration in force",
            config_rules.clone(),
        );
        let config_last_reload_ok = Gauge::default();
        registry.register(
            "config_last_reload_success",
            "1 when the last configuration change loaded, 0 when it was refused",
            config_last_reload_ok.clone(),
        );
        let in_flight = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "requests_in_flight",
            "Requests being served",
            in_flight.clone(),
        );
        let tls = TlsMetrics::default();
        registry.register(
            "tls_reloads",
            "Loads of the proxy listener's TLS certificate and key, by result (success, failure); the first one included",
            tls.reloads.clone(),
        );
        registry.register(
            "tls_last_reload_success",
            "1 when the last change of the TLS certificate or key loaded (or none was made), 0 when it was refused",
            tls.last_reload_ok.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes of the proxy listener that did not complete, by reason (timeout: not within --header-read-timeout; alert: the client refused, as when it does not trust the certificate; protocol: not TLS or nothing in common; io: closed halfway)",
            tls.handshake_failures.clone(),
        );
        let refused_bytes = Counter::<u64, AtomicU64>::default();
        registry.register(
            "refused_image_bytes",
            "Bytes of images and layers refused for size",
            refused_bytes.clone(),
        );
        let coordination = CoordinationMetrics {
            lease_wait: latency_histogram(),
            lease_held: latency_histogram(),
            lease_timeouts: Counter::default(),
            leases_lost: Counter::default(),
            calls: Family::default(),
            reconnects: Counter::default(),
            up: Gauge::default(),
            down: std::sync::atomic::AtomicBool::new(false),
        };
        registry.register(
            "coordination_lease_wait_seconds",
            "Time waited for a repository's lease in the coordination store",
            coordination.lease_wait.clone(),
        );
        registry.register(
            "coordination_lease_held_seconds",
            "Time a repository's lease was held, from the tag count to the registry's answer",
            coordination.lease_held.clone(),
        );
        registry.register(
            "coordination_lease_timeouts",
            "Pushes refused because another push held the repository's lease too long",
            coordination.lease_timeouts.clone(),
        );
        registry.register(
            "coordination_leases_lost",
            "Leases that expired or could not be renewed while held",
            coordination.leases_lost.clone(),
        );
        registry.register(
            "coordination_calls",
            "Calls to the coordination store, by result (success, failure)",
            coordination.calls.clone(),
        );
        registry.register(
            "coordination_reconnects",
            "Times the coordination store answered again after failing",
            coordination.reconnects.clone(),
        );
        registry.register(
            "coordination_up",
            "1 when the last call to the coordination store succeeded (Redis mode)",
            coordination.up.clone(),
        );
        Self {
            registry: root,
            requests,
            decisions,
            refusals,
            upstream_latency,
            blob_cache,
            reloads,
            config_loaded,
            config_rules,
            config_last_reload_ok,
            in_flight,
            refused_bytes,
            relayed_bytes,
            webhook_events,
            connections_shed,
            connections_refused,
            tls,
            coordination,
        }
    }

    /// A lease was acquired after waiting `waited`.
    pub fn lease_acquired(&self, waited: Duration) {
        self.coordination.lease_wait.observe(waited.as_secs_f64());
    }

    /// A lease was held for `held`.
    pub fn lease_held(&self, held: Duration) {
        self.coordination.lease_held.observe(held.as_secs_f64());
    }

    /// A push gave up waiting for a lease.
    pub fn lease_timed_out(&self) {
        self.coordination.lease_timeouts.inc();
    }

    /// A lease could not be renewed while held.
    pub fn lease_lost(&self) {
        self.coordination.leases_lost.inc();
    }

    /// One call to the coordination store, and whether it succeeded.
    pub fn coordination_call(&self, ok: bool) {
        use std::sync::atomic::Ordering;
        let result = if ok { "success" } else { "failure" };
        self.coordination
            .calls
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
        self.coordination.up.set(i64::from(ok));
        let was_down = self.coordination.down.swap(!ok, Ordering::Relaxed);
        if ok && was_down {
            self.coordination.reconnects.inc();
        }
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts an answered request.
    pub fn request(&self, method: &http::Method, status: http::StatusCode) {
        let method = match *method {
            http::Method::GET => "GET",
            http::Method::HEAD => "HEAD",
            http::Method::PUT => "PUT",
            http::Method::POST => "POST",
            http::Method::PATCH => "PATCH",
            http::Method::DELETE => "DELETE",
            http::Method::OPTIONS => "OPTIONS",
            _ => "other",
        };
        let status = match status.as_u16() / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        };
        self.requests
            .get_or_create(&RequestLabels { method, status })
            .inc();
    }

    /// Counts a webhook event: `delivered`, `failed` or `dropped`.
    pub fn webhook_event(&self, result: &str) {
        self.webhook_events
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Counts a connection of `listener` shed for `reason`.
    pub fn connection_shed(&self, listener: &'static str, reason: &'static str) {
        self.connections_shed
            .get_or_create(&ConnectionLabels { listener, reason })
            .inc();
    }

    /// Counts a new connection of `listener` refused for `reason`.
    pub fn connection_refused(&self, listener: &'static str, reason: &'static str) {
        self.connections_refused
            .get_or_create(&ConnectionLabels { listener, reason })
            .inc();
    }

    /// Counts body bytes relayed by the read relay; `how` is `splice` or `copy`.
    pub fn relayed(&self, how: &'static str, bytes: u64) {
        if bytes > 0 {
            self.relayed_bytes
                .get_or_create(&RelayLabels { how })
                .inc_by(bytes);
        }
    }

    /// Counts a request in flight until the guard is dropped, however the request ends (a
    /// client that hangs up drops the request's future at any await).
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Counts a limit decision.
    pub fn decision(&self, decision: &Decision) {
        let rule = match &decision.source {
            LimitSource::Global => "global".to_owned(),
            LimitSource::Rule { position, .. } => position.to_string(),
        };
        let (check, verdict) = (decision.check.name(), decision.verdict());
        self.count_decision(check, verdict, rule, decision.enforcement.as_str());
        if decision.refuses() {
            if let limits_core::Check::ImageSize { size, .. }
            | limits_core::Check::BlobSize { size, .. } = decision.check
            {
                self.refused_bytes.inc_by(size.bytes());
            }
        }
    }

    /// Counts a decision by its labels (a limit's, or a namespace quota's).
    pub fn count_decision(
        &self,
        check: &str,
        verdict: &str,
        rule: String,
        enforcement: &'static str,
    ) {
        let (check, verdict) = (check.to_owned(), verdict.to_owned());
        let labels = DecisionLabels {
            check,
            verdict,
            rule,
            enforcement,
        };
        self.decisions.get_or_create(&labels).inc();
    }

    /// Counts a request the gateway answered itself for another reason than a limit.
    pub fn refusal(&self, reason: &str) {
        self.refusals
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Records how long the upstream took.
    pub fn upstream(&self, operation: &'static str, elapsed: Duration) {
        self.upstream_latency
            .get_or_create(&OperationLabels { operation })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a blob size cache lookup.
    pub fn blob_cache(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.blob_cache
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Records a configuration that loaded.
    pub fn config_loaded(&self, policy: &Policy, _initial: bool) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: "success".to_owned(),
            })
            .inc();
        self.config_loaded.set(1);
        self.config_rules
            .set(i64::try_from(policy.rules().len()).unwrap_or(i64::MAX));
        self.config_last_reload_ok.set(1);
    }

    /// Records a configuration change that was refused.
    pub fn config_reload_failed(&self) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: "failure".to_owned(),
            })
            .inc();
        self.config_last_reload_ok.set(0);
    }

    /// Records a load of the TLS certificate and key (at start or on a change) and its result.
    pub fn tls_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.tls
            .reloads
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
        self.tls.last_reload_ok.set(i64::from(ok));
    }

    /// Counts a TLS handshake that did not complete, for `reason`.
    pub fn tls_handshake_failed(&self, reason: &'static str) {
        self.tls
            .handshake_failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }
}
