//! Namespace usage and quota gauges (`serve --namespace-usage-metrics`), set from the inventory
//! and the configuration in force each time `/metrics` is read.
//!
//! Label cardinality is bounded by the namespaces the inventory has read: at most four
//! `registry_gateway_namespace_usage` series (one per kind) for each namespace read that holds
//! at least one repository, and one `registry_gateway_namespace_quota` series for each bounded
//! kind of the quota that applies to it. The inventory reads a namespace only when a push needs
//! its counts (a namespace quota or an `image_count_limit` applies) or the admin listener's
//! `/v1/inventory/<namespace>` asks; a name the registry does not hold adds no series.

use std::sync::{Arc, Mutex, PoisonError};

use limits_core::{NamespaceUsage, Policy, QuotaKind};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use upstream_client::Inventory as Catalog;

use super::scope::lone_repository;
use super::{Entry, Inventory};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    namespace: String,
    kind: &'static str,
}

/// `registry_gateway_namespace_usage{namespace,kind}` and
/// `registry_gateway_namespace_quota{namespace,kind}`.
#[derive(Debug)]
pub struct NamespaceMetrics {
    registry: Registry,
    usage: Family<Labels, Gauge>,
    quota: Family<Labels, Gauge>,
    /// Held from setting the gauges to encoding them: concurrent scrapes each see whole sets.
    scrape: Mutex<()>,
}

impl Default for NamespaceMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NamespaceMetrics {
    /// Creates and registers the gauges under `registry_gateway_namespace`.
    pub fn new() -> Self {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("registry_gateway_namespace");
        let usage = Family::<Labels, Gauge>::default();
        let quota = Family::<Labels, Gauge>::default();
        registry.register(
            "usage",
            "What a namespace the inventory has read holds, by kind (repositories, images, tags, storage in bytes)",
            usage.clone(),
        );
        registry.register(
            "quota",
            "The namespace quota that applies to a namespace the inventory has read, by bounded kind (storage in bytes)",
            quota.clone(),
        );
        NamespaceMetrics {
            registry: root,
            usage,
            quota,
            scrape: Mutex::new(()),
        }
    }

    /// Sets the gauges to `usages` and the quotas `policy` gives them (series of namespaces no
    /// longer listed, or of kinds no longer bounded, are dropped), then appends them (without
    /// the closing `# EOF`) to `out`.
    pub fn encode_into(
        &self,
        usages: &[(String, NamespaceUsage)],
        policy: &Policy,
        out: &mut String,
    ) {
        let _scrape = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        self.usage.clear();
        self.quota.clear();
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        for (namespace, usage) in usages {
            let hard = policy.quota_for_namespace(namespace).map(|q| q.hard);
            for kind in QuotaKind::ALL {
                let labels = Labels {
                    namespace: namespace.clone(),
                    kind: kind.as_str(),
                };
                self.usage
                    .get_or_create(&labels)
                    .set(gauge(usage.held(kind)));
                if let Some(max) = hard.and_then(|hard| hard.limit(kind).max()) {
                    self.quota.get_or_create(&labels).set(gauge(max));
                }
            }
        }
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
    }
}

/// What each namespace the inventory has read holds, by name, leaving out those that hold no
/// repository (a name asked about that the registry does not hold) and the repositories without
/// a namespace it keeps alone (which no namespace quota applies to).
pub fn namespace_usages<U: Catalog>(inventory: &Inventory<U>) -> Vec<(String, NamespaceUsage)> {
    let entries: Vec<(String, Arc<Entry>)> = inventory
        .entries()
        .iter()
        .filter(|(scope, _)| lone_repository(scope).is_none())
        .map(|(name, entry)| (name.clone(), Arc::clone(entry)))
        .collect();
    let mut usages: Vec<(String, NamespaceUsage)> = entries
        .into_iter()
        .filter(|(_, entry)| entry.built.get().is_some())
        .filter_map(|(name, entry)| {
            let slot = entry.lock();
            (!slot.state.repositories().is_empty()).then(|| (name, slot.state.usage()))
        })
        .collect();
    usages.sort_by(|a, b| a.0.cmp(&b.0));
    usages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(repositories: u64, images: u64, tags: u64, storage_bytes: u64) -> NamespaceUsage {
        NamespaceUsage {
            repositories,
            images,
            tags,
            storage_bytes,
        }
    }

    fn encoded(
        metrics: &NamespaceMetrics,
        usages: &[(String, NamespaceUsage)],
        yaml: &str,
    ) -> String {
        let policy = Policy::from_yaml(yaml).expect("valid policy");
        let mut out = String::new();
        metrics.encode_into(usages, &policy, &mut out);
        out
    }

    #[test]
    fn one_series_per_namespace_and_kind_and_quotas_where_bounded() {
        let metrics = NamespaceMetrics::new();
        let usages = vec![
            ("team-a".to_owned(), usage(2, 3, 4, 5000)),
            ("other".to_owned(), usage(1, 1, 1, 10)),
        ];
        let quotas =
            "namespace_quotas:\n- namespace: ^team-a$\n  hard: {tags: \"20\", storage: 1MiB}\n";
        let text = encoded(&metrics, &usages, quotas);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let mut samples = samples;
        samples.sort_unstable();
        assert_eq!(
            samples,
            [
                r#"registry_gateway_namespace_quota{namespace="team-a",kind="storage"} 1048576"#,
                r#"registry_gateway_namespace_quota{namespace="team-a",kind="tags"} 20"#,
                r#"registry_gateway_namespace_usage{namespace="other",kind="images"} 1"#,
                r#"registry_gateway_namespace_usage{namespace="other",kind="repositories"} 1"#,
                r#"registry_gateway_namespace_usage{namespace="other",kind="storage"} 10"#,
                r#"registry_gateway_namespace_usage{namespace="other",kind="tags"} 1"#,
                r#"registry_gateway_namespace_usage{namespace="team-a",kind="images"} 3"#,
                r#"registry_gateway_namespace_usage{namespace="team-a",kind="repositories"} 2"#,
                r#"registry_gateway_namespace_usage{namespace="team-a",kind="storage"} 5000"#,
                r#"registry_gateway_namespace_usage{namespace="team-a",kind="tags"} 4"#,
            ],
            "{text}"
        );

        // A reload that drops the quota, and a namespace no longer listed, drop their series.
        let text = encoded(&metrics, &usages[1..], "tag_count_limit: 10\n");
        assert!(!text.contains("team-a"), "{text}");
        assert!(
            !text.contains("registry_gateway_namespace_quota{"),
            "{text}"
        );
        assert!(
            text.contains(r#"registry_gateway_namespace_usage{namespace="other",kind="tags"} 1"#),
            "{text}"
        );
    }

    /// A registry in memory holding one image tagged `v1` in `team/app` and in `team`.
    #[derive(Debug)]
    struct Fake {
        body: Vec<u8>,
    }

    const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

    impl upstream_client::Upstream for Fake {
        async fn tags(
            &self,
            repo: &limits_core::RepositoryName,
            _: upstream_client::Auth<'_>,
        ) -> Result<Vec<String>, upstream_client::UpstreamError> {
            Ok(if ["team/app", "team"].contains(&repo.as_str()) {
                vec!["v1".to_owned()]
            } else {
                Vec::new()
            })
        }
        async fn blob_size(
            &self,
            _: &limits_core::RepositoryName,
            _: &oci_manifest::Digest,
            _: upstream_client::Auth<'_>,
        ) -> Result<Option<u64>, upstream_client::UpstreamError> {
            Ok(None)
        }
        async fn manifest_digest(
            &self,
            _: &limits_core::RepositoryName,
            _: &str,
            _: upstream_client::Auth<'_>,
        ) -> Result<Option<oci_manifest::Digest>, upstream_client::UpstreamError> {
            Ok(Some(oci_manifest::Digest::sha256(&self.body)))
        }
        async fn manifest(
            &self,
            _: &limits_core::RepositoryName,
            _: &str,
            _: upstream_client::Auth<'_>,
        ) -> Result<Option<upstream_client::FetchedManifest>, upstream_client::UpstreamError>
        {
            Ok(Some(upstream_client::FetchedManifest {
                media_type: Some(IMAGE.to_owned()),
                body: self.body.clone(),
            }))
        }
    }

    impl Catalog for Fake {
        async fn catalog(
            &self,
            _: upstream_client::Auth<'_>,
        ) -> Result<Vec<String>, upstream_client::UpstreamError> {
            Ok(vec!["team/app".to_owned()])
        }
    }

    #[tokio::test]
    async fn only_namespaces_read_that_hold_a_repository() {
        let blob = |n: u8| format!("sha256:{}", format!("{n:02x}").repeat(32));
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{IMAGE}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":10}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":100}}]}}"#,
            blob(1),
            blob(2)
        );
        let inventory = Inventory::new(
            Arc::new(Fake {
                body: body.into_bytes(),
            }),
            2,
            Arc::new(super::super::InventoryMetrics::new()),
        );
        assert_eq!(namespace_usages(&inventory), []);
        assert!(inventory.snapshot("team").await.is_ok());
        // A name the registry does not hold, and a namespace known only by a push not read yet.
        assert!(inventory.snapshot("ghost").await.is_ok());
        let digest = oci_manifest::Digest::sha256(b"unread");
        inventory.record_push("unread/app", &digest, &["v1".to_owned()], Vec::new());
        // A repository without a namespace, kept alone by the inventory.
        let lone = inventory
            .snapshot("/team")
            .await
            .map(|(usage, _)| usage.tags);
        assert_eq!(lone.ok(), Some(1));
        assert_eq!(
            namespace_usages(&inventory),
            [("team".to_owned(), usage(1, 1, 1, 110))]
        );
    }
}
