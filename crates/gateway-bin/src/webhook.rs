//! Notifications: one CloudEvents 1.0 event (structured JSON mode) per limit decision that
//! refused, warned about or audited a push, posted to a webhook in the background.
//!
//! A push never waits for the receiver: events go into a bounded queue (`try_send`; a full
//! queue drops the event and counts it), and one background task delivers them in order, each
//! with a timeout and retries with exponential backoff. A slow or dead receiver costs queue
//! memory up to the bound, never a push's time. At shutdown the queue is flushed: the events
//! still in it get one delivery attempt each, within `--webhook-timeout` in all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use limits_core::{Decision, Enforcement, QuotaDecision, Standing};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;

/// How to reach the receiver.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Where events are posted.
    pub url: url::Url,
    /// The `Authorization` header sent with each event, if any.
    pub authorization: Option<HeaderValue>,
    /// Events waiting at most; beyond, new events are dropped.
    pub queue: usize,
    /// Longest wait for one delivery attempt.
    pub timeout: Duration,
    /// Attempts after the first one failed.
    pub retries: u32,
}

/// The sending side: cheap to call from a request.
#[derive(Debug)]
pub struct Webhook {
    queue: mpsc::Sender<Value>,
    metrics: Arc<Metrics>,
    source: String,
    /// Random per process, so that ids are unique across replicas and restarts.
    id_prefix: String,
    sequence: AtomicU64,
    /// Set at shutdown: the delivery task takes no new events and stops retrying.
    closing: watch::Sender<bool>,
    /// The delivery task, until flushed.
    task: Mutex<Option<JoinHandle<()>>>,
    /// Longest wait for the flush at shutdown.
    flush_within: Duration,
}

/// The CloudEvents `type` of a decision's event: `...refused` (deny mode, over the limit),
/// `...warned` (the client was told: over the limit in warn mode, or near it), `...audited`
/// (audit mode, over or near the limit: recorded only). `None` for a decision within the limit
/// and below the warning threshold: nothing to notify.
pub fn event_type(decision: &Decision) -> Option<&'static str> {
    event_type_of(decision.standing(), decision.enforcement)
}

/// The event type of a decision that stands so under `enforcement`, limit or quota alike:
/// none when it is within bounds.
fn event_type_of(standing: Standing, enforcement: Enforcement) -> Option<&'static str> {
    match (standing, enforcement) {
        (Standing::Ok, _) => None,
        (_, Enforcement::Audit) => Some("io.registry-gateway.push.audited"),
        (Standing::Over, Enforcement::Deny) => Some("io.registry-gateway.push.refused"),
        _ => Some("io.registry-gateway.push.warned"),
    }
}

impl Webhook {
    /// Starts the delivery task.
    pub fn start(settings: WebhookSettings, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let (queue, events) = mpsc::channel(settings.queue.max(1));
        let (closing, closed) = watch::channel(false);
        let flush_within = settings.timeout;
        let task = tokio::spawn(deliver(
            client,
            settings,
            events,
            closed,
            Arc::clone(&metrics),
        ));
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "registry-gateway".to_owned());
        let random = ring::rand::generate::<[u8; 8]>(&ring::rand::SystemRandom::new())
            .map(|r| r.expose())
            .unwrap_or_default();
        Ok(Self {
            queue,
            metrics,
            source: format!("registry-gateway/{host}"),
            id_prefix: random.iter().map(|b| format!("{b:02x}")).collect(),
            sequence: AtomicU64::new(0),
            closing,
            task: Mutex::new(Some(task)),
            flush_within,
        })
    }

    /// At shutdown, after the last request: stops taking events and waits, at most
    /// `--webhook-timeout`, for the queued ones to be delivered (one attempt each, no
    /// retries). Events still queued after that are counted as dropped and logged.
    pub async fn flush(&self) {
        let _ = self.closing.send(true);
        let Some(mut task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let queued = self.queue.max_capacity() - self.queue.capacity();
        if tokio::time::timeout(self.flush_within, &mut task)
            .await
            .is_ok()
        {
            if queued > 0 {
                tracing::info!(events = queued, "webhook queue flushed at shutdown");
            }
            return;
        }
        task.abort();
        // What the task did not get to, and the event it was delivering.
        let lost = self.queue.max_capacity() - self.queue.capacity() + 1;
        for _ in 0..lost {
            self.metrics.webhook_event("dropped");
        }
        tracing::warn!(
            events = lost,
            within = %humantime::format_duration(self.flush_within),
            "webhook events not delivered before exit"
        );
    }

    /// Queues the event of `decision`, if it is one to notify; never waits.
    pub fn decision(&self, decision: &Decision, reference: &str) {
        let Some(kind) = event_type(decision) else {
            return;
        };
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let event = cloud_event(
            &format!("{}-{sequence}", self.id_prefix),
            &self.source,
            kind,
            decision,
            reference,
            SystemTime::now(),
        );
        self.queue(event, decision.repository.as_str());
    }

    /// Queues the event of a namespace quota `decision` on a push to `repository`, if it is one
    /// to notify ([`quota_event_type`]); never waits.
    pub fn quota_decision(&self, decision: &QuotaDecision, repository: &str, reference: &str) {
        let Some(kind) = quota_event_type(decision) else {
            return;
        };
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{sequence}", self.id_prefix);
        let event = quota_event(
            (&id, &self.source, kind),
            decision,
            (repository, reference),
            SystemTime::now(),
        );
        self.queue(event, repository);
    }

    fn queue(&self, event: Value, repository: &str) {
        if self.queue.try_send(event).is_err() {
            self.metrics.webhook_event("dropped");
            tracing::warn!(repository, "webhook queue full; event dropped");
        }
    }
}

/// The CloudEvents `type` of a namespace quota decision's event, as [`event_type`] says of a
/// limit's.
pub fn quota_event_type(decision: &QuotaDecision) -> Option<&'static str> {
    event_type_of(decision.standing(), decision.enforcement)
}

/// The event of a namespace quota `decision` on a push of `reference` to `repository`, in
/// CloudEvents 1.0 structured JSON: `(id, source, type)`.
fn quota_event(
    (id, source, kind): (&str, &str, &str),
    decision: &QuotaDecision,
    (repository, reference): (&str, &str),
    time: SystemTime,
) -> Value {
    let detail = decision.detail();
    json!({
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": kind,
        "time": humantime::format_rfc3339_millis(time).to_string(),
        "subject": format!("{repository}:{reference}"),
        "datacontenttype": "application/json",
        "data": {
            "repository": repository,
            "reference": reference,
            "namespace": detail.namespace,
            "check": detail.check,
            "measured": detail.measured,
            "limit": detail.limit,
            "quota": detail.quota,
            "quota_namespace": detail.quota_namespace,
            "enforcement": decision.enforcement.as_str(),
            "verdict": decision.verdict(),
            "action": if decision.refuses() { "refused" } else { "accepted" },
            "message": decision.warning().unwrap_or_else(|| decision.to_string()),
        },
    })
}

/// The event of `decision` in CloudEvents 1.0 structured JSON.
fn cloud_event(
    id: &str,
    source: &str,
    kind: &str,
    decision: &Decision,
    reference: &str,
    time: SystemTime,
) -> Value {
    let detail = decision.detail();
    let refused = decision.refuses();
    json!({
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": kind,
        "time": humantime::format_rfc3339_millis(time).to_string(),
        "subject": format!("{}:{reference}", decision.repository),
        "datacontenttype": "application/json",
        "data": {
            "repository": detail.repository,
            "reference": reference,
            "check": detail.check,
            "measured": detail.measured,
            "limit": detail.limit,
            "rule": detail.rule,
            "rule_path": detail.rule_path,
            "enforcement": decision.enforcement.as_str(),
            "verdict": decision.verdict(),
            "action": if refused { "refused" } else { "accepted" },
            "message": decision.warning().unwrap_or_else(|| decision.to_string()),
        },
    })
}

/// Delivers events in order until the process ends, or until `closing` is set and the events
/// queued by then have had their attempt.
async fn deliver(
    client: reqwest::Client,
    settings: WebhookSettings,
    mut events: mpsc::Receiver<Value>,
    mut closing: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    let mut closed = false;
    loop {
        let event = tokio::select! {
            biased;
            _ = closing.wait_for(|c| *c), if !closed => {
                // Takes no new events; the queued ones are still received, then `None`.
                events.close();
                closed = true;
                continue;
            }
            event = events.recv() => match event {
                Some(event) => event,
                None => return,
            },
        };
        let body = event.to_string();
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            let mut request = client
                .post(settings.url.clone())
                .header(http::header::CONTENT_TYPE, "application/cloudevents+json")
                .body(body.clone());
            if let Some(value) = &settings.authorization {
                request = request.header(http::header::AUTHORIZATION, value.clone());
            }
            let outcome = match request.send().await {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err((
                    format!("the receiver answered {}", response.status()),
                    // A refusal of the event itself will not change on retry.
                    response.status().is_client_error()
                        && !matches!(response.status().as_u16(), 408 | 429),
                )),
                Err(err) => Err((format!("cannot deliver: {err}"), false)),
            };
            match outcome {
                Ok(()) => {
                    metrics.webhook_event("delivered");
                    break;
                }
                Err((why, final_answer))
                    if final_answer || attempt >= settings.retries || *closing.borrow() =>
                {
                    metrics.webhook_event("failed");
                    tracing::warn!(url = %settings.url, error = %why, attempts = attempt + 1, "webhook event not delivered");
                    break;
                }
                Err((why, _)) => {
                    tracing::debug!(url = %settings.url, error = %why, "webhook delivery failed; retrying");
                    // A retry waiting at shutdown is made at once, as the last attempt.
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = closing.wait_for(|c| *c) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    attempt += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use limits_core::{ByteSize, NamespaceUsage, Policy, PushDelta, QuotaKind};

    #[test]
    fn quota_events_follow_the_cloudevents_format() {
        let policy =
            Policy::from_yaml("namespace_quotas:\n- namespace: ^team$\n  hard: {tags: \"2\"}\n")
                .expect("valid");
        let quota = policy
            .quota_for(&"team/app".parse().expect("name"))
            .expect("a quota");
        let usage = NamespaceUsage {
            tags: 2,
            ..NamespaceUsage::default()
        };
        let push = PushDelta {
            new_tags: 1,
            ..PushDelta::default()
        };
        let decision = quota.check_kind(QuotaKind::Tags, &usage, &push);
        let kind = quota_event_type(&decision);
        assert_eq!(kind, Some("io.registry-gateway.push.refused"));
        let event = quota_event(
            (
                "ab-2",
                "registry-gateway/pod-1",
                "io.registry-gateway.push.refused",
            ),
            &decision,
            ("team/app", "v3"),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        );
        assert_eq!(event["subject"], "team/app:v3");
        assert_eq!(event["time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(
            event["data"],
            json!({
                "repository": "team/app",
                "reference": "v3",
                "namespace": "team",
                "check": "namespace_tags",
                "measured": 3,
                "limit": 2,
                "quota": 1,
                "quota_namespace": "^team$",
                "enforcement": "deny",
                "verdict": "denied",
                "action": "refused",
                "message": "namespace team would hold 3 tags, over its quota of 2 (namespace quota 1: ^team$): it holds 2 and this push adds 1",
            })
        );
        let within = quota.check_kind(QuotaKind::Tags, &NamespaceUsage::default(), &push);
        assert_eq!(quota_event_type(&within), None);
    }

    #[test]
    fn events_follow_the_cloudevents_format() {
        let policy = Policy::from_yaml(
            "rules:\n- path: ^p/\n  enforcement: audit\n  limit: {max_image_size: 1MB, tag_count_limit: 2}\n",
        )
        .expect("valid");
        let decision = policy
            .limits_for(&"p/app".parse().expect("name"))
            .check_image_size(ByteSize::new(2 << 20));
        assert_eq!(
            event_type(&decision),
            Some("io.registry-gateway.push.audited")
        );
        let event = cloud_event(
            "ab-1",
            "registry-gateway/pod-1",
            "io.registry-gateway.push.audited",
            &decision,
            "v1",
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        );
        assert_eq!(
            event,
            json!({
                "specversion": "1.0",
                "id": "ab-1",
                "source": "registry-gateway/pod-1",
                "type": "io.registry-gateway.push.audited",
                "time": "2023-11-14T22:13:20.123Z",
                "subject": "p/app:v1",
                "datacontenttype": "application/json",
                "data": {
                    "repository": "p/app",
                    "reference": "v1",
                    "check": "image_size",
                    "measured": 2_097_152,
                    "limit": 1_048_576,
                    "rule": 1,
                    "rule_path": "^p/",
                    "enforcement": "audit",
                    "verdict": "denied",
                    "action": "accepted",
                    "message": "image size 2.0 MiB (2097152 bytes) exceeds the limit of 1 MiB for repository p/app (rule 1: ^p/)",
                },
            })
        );
        let within = policy
            .limits_for(&"p/app".parse().expect("name"))
            .check_image_size(ByteSize::new(1));
        assert_eq!(event_type(&within), None);
    }
}
