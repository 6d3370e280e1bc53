//! One log line, one metric and one webhook event per limit decision.

use std::sync::Arc;

use limits_core::{Decision, QuotaDecision};

use crate::metrics::Metrics;
use crate::refusal::Refusal;
use crate::webhook::Webhook;

/// Where limit decisions go: the log, the metrics and the webhook, if any.
#[derive(Debug)]
pub struct DecisionLog {
    metrics: Arc<Metrics>,
    webhook: Option<Webhook>,
}

impl DecisionLog {
    /// Decisions counted in `metrics` and notified to `webhook`.
    pub fn new(metrics: Arc<Metrics>, webhook: Option<Webhook>) -> Self {
        Self { metrics, webhook }
    }

    /// The webhook decisions are notified to, if any.
    pub fn webhook(&self) -> Option<&Webhook> {
        self.webhook.as_ref()
    }

    /// One structured log line and one metric per decision.
    pub fn log(&self, decision: &Decision, reference: &str) {
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

    /// One structured log line, one metric and the webhook for a namespace quota decision on
    /// a push to `repository`.
    pub fn log_quota(&self, decision: &QuotaDecision, repository: &str, reference: &str) {
        let rule = format!("namespace_quota_{}", decision.source.position);
        let (check, verdict) = (decision.check_name(), decision.verdict());
        let enforcement = decision.enforcement.as_str();
        self.metrics
            .count_decision(check, verdict, rule, enforcement);
        if let Some(webhook) = &self.webhook {
            webhook.quota_decision(decision, repository, reference);
        }
        let limit = decision.limit.max();
        let action = if decision.refuses() {
            "refused"
        } else {
            "accepted"
        };
        let message = decision.warning().unwrap_or_else(|| decision.to_string());
        let (namespace, quota, measured) =
            (&decision.namespace, &decision.source, decision.total());
        if verdict == "allowed" {
            tracing::info!(event = "decision", repository, reference, namespace, check, measured,
                limit, rule = %quota, verdict, enforcement, action, "{message}");
        } else {
            tracing::warn!(event = "decision", repository, reference, namespace, check, measured,
                limit, rule = %quota, verdict, enforcement, action, "{message}");
        }
    }

    /// Logs and counts a limit's decision; `Err` when it refuses.
    pub fn decide(&self, decision: &Decision, reference: &str) -> Result<(), Refusal> {
        self.log(decision, reference);
        if decision.refuses() {
            return Err(Refusal::denied(decision));
        }
        Ok(())
    }
}
