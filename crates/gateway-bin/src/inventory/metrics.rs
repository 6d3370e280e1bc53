//! The inventory's metrics, in a registry of their own that the admin listener appends to the
//! gateway's.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Inventory size, reconciliations, corrections and notifications.
#[derive(Debug)]
pub struct InventoryMetrics {
    registry: Registry,
    repositories: Gauge,
    tags: Gauge,
    digests: Gauge,
    refreshes: Family<ResultLabels, Counter>,
    corrections: Family<KindLabels, Counter>,
    notifications: Family<ResultLabels, Counter>,
    events: Counter,
    /// `registry_gateway_inventory_tag_set_repositories`
    tag_repositories: Gauge,
    /// `registry_gateway_inventory_tag_set_tags`
    tag_tags: Gauge,
    /// `registry_gateway_inventory_tag_set_listings_total`
    tag_listings: Family<ReasonLabels, Counter>,
    /// `registry_gateway_inventory_tag_set_evictions_total`
    tag_evictions: Counter,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

impl Default for InventoryMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl InventoryMetrics {
    /// Creates and registers the metrics under `registry_gateway_inventory`.
    pub fn new() -> Self {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("registry_gateway_inventory");
        let metrics = InventoryMetrics {
            registry: Registry::default(),
            repositories: Gauge::default(),
            tags: Gauge::default(),
            digests: Gauge::default(),
            refreshes: Family::default(),
            corrections: Family::default(),
            notifications: Family::default(),
            events: Counter::default(),
            tag_repositories: Gauge::default(),
            tag_tags: Gauge::default(),
            tag_listings: Family::default(),
            tag_evictions: Counter::default(),
        };
        registry.register(
            "repositories",
            "Repositories the inventory holds, over every namespace read",
            metrics.repositories.clone(),
        );
        registry.register("tags", "Tags the inventory holds", metrics.tags.clone());
        registry.register(
            "digests",
            "Distinct manifests the repositories hold (tagged or pushed by digest)",
            metrics.digests.clone(),
        );
        registry.register(
            "refreshes",
            "Reconciliations of a namespace with the registry, by result (ok, failure)",
            metrics.refreshes.clone(),
        );
        registry.register(
            "corrections",
            "Differences a reconciliation corrected, by kind (tag_added, tag_removed, tag_moved, untagged_removed)",
            metrics.corrections.clone(),
        );
        registry.register(
            "notifications",
            "Registry notifications received, by result (accepted, unauthorized, invalid, too_large)",
            metrics.notifications.clone(),
        );
        registry.register(
            "notification_changes",
            "Tags and untagged digests changed by registry notifications",
            metrics.events.clone(),
        );
        registry.register(
            "tag_set_repositories",
            "Repositories whose tags are kept for the tag count",
            metrics.tag_repositories.clone(),
        );
        registry.register(
            "tag_set_tags",
            "Tags kept for the tag count, over every kept repository",
            metrics.tag_tags.clone(),
        );
        registry.register(
            "tag_set_listings",
            "Tag listings read for the tag count, by reason (load, stale, confirm, refresh)",
            metrics.tag_listings.clone(),
        );
        registry.register(
            "tag_set_evictions",
            "Repositories whose kept tags were dropped, least recently used first, past --tag-inventory-repositories",
            metrics.tag_evictions.clone(),
        );
        InventoryMetrics {
            registry: root,
            ..metrics
        }
    }

    /// Sets the size gauges.
    pub fn set_size(&self, repositories: u64, tags: u64, digests: u64) {
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.repositories.set(gauge(repositories));
        self.tags.set(gauge(tags));
        self.digests.set(gauge(digests));
    }

    /// Counts a reconciliation of one namespace.
    pub fn refreshed(&self, ok: bool) {
        let result = if ok { "ok" } else { "failure" };
        self.refreshes.get_or_create(&ResultLabels { result }).inc();
    }

    /// Counts one correction.
    pub fn corrected(&self, kind: &'static str) {
        self.corrections.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts a notification by result.
    pub fn notification(&self, result: &'static str) {
        self.notifications
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Counts the changes a notification made.
    pub fn notification_changes(&self, changes: usize) {
        self.events.inc_by(changes as u64);
    }

    /// Sets the gauges of the kept tag sets.
    pub fn set_tag_sets(&self, repositories: u64, tags: u64) {
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.tag_repositories.set(gauge(repositories));
        self.tag_tags.set(gauge(tags));
    }

    /// Counts a tag listing read for the tag count.
    pub fn tag_listing(&self, reason: &'static str) {
        self.tag_listings
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Counts tag sets dropped past the capacity.
    pub fn tag_sets_evicted(&self, count: u64) {
        self.tag_evictions.inc_by(count);
    }

    /// Appends the metrics (without the closing `# EOF`) to `out`.
    pub fn encode_into(&self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
    }
}
