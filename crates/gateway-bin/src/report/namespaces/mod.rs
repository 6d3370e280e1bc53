//! `registry-gateway report --namespaces`: what every namespace of the registry holds,
//! counted by the gateway's own inventory ([`crate::inventory::Inventory::snapshot`]), against
//! its namespace quota and its repositories' `image_count_limit`.
//!
//! The catalog gives the namespaces (the first component of each repository name; names without
//! a `/` have none and are left out); each namespace is then read as the gateway reads it before
//! a push decision, at most `--concurrency` requests at once. The standing of each namespace is
//! decided by `limits_core::QuotaUsage` and `limits_core::Standing::of`; [`render`] prints the
//! rows.

pub mod render;

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::StreamExt as _;
use limits_core::{
    AppliedQuota, Limit, NamespaceUsage, Policy, QuotaKind, QuotaUsage, RepositoryName, Standing,
    WarnAt, namespace_of,
};
use upstream_client::Inventory as Catalog;

use super::Status;
use super::progress::Progress;
use crate::inventory::{Inventory, InventoryMetrics, RepositoryCounts};

/// The threshold of `near` when neither `--near` nor a `warn_at` sets one: at 90% of a quota a
/// namespace is a few pushes from being refused.
pub const DEFAULT_NEAR: u8 = 90;

/// One namespace's line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceRow {
    /// The namespace.
    pub namespace: String,
    /// What it holds; `None` when it could not be read.
    pub usage: Option<NamespaceUsage>,
    /// The namespace quota that applies, if any.
    pub quota: Option<AppliedQuota>,
    /// The standing, or why the namespace could not be read.
    pub status: Status,
    /// Which quotas and repositories the standing is about, or the error message.
    pub note: String,
    /// How close the namespace is to its nearest limit (1.0 = at the limit), for sorting.
    pub fraction: f64,
}

/// The threshold of `near` for a quota or a repository whose `warn_at` is `warn_at`: `--near`
/// when given, else `warn_at`, else [`DEFAULT_NEAR`].
fn threshold(near: Option<u8>, warn_at: WarnAt) -> u8 {
    near.unwrap_or(match warn_at {
        WarnAt::Percent(percent) => percent,
        WarnAt::Off => DEFAULT_NEAR,
    })
}

/// `value` in whole percent of `limit`, rounded down; 0 without a bound.
fn percent(value: u64, limit: Limit<u64>) -> u128 {
    match limit {
        Limit::Max(max) if max > 0 => u128::from(value) * 100 / u128::from(max),
        _ => 0,
    }
}

impl NamespaceRow {
    /// A namespace read completely: `usage` and each repository's counts, measured against
    /// `policy`.
    pub fn measured(
        namespace: String,
        usage: NamespaceUsage,
        repositories: &[(String, RepositoryCounts)],
        policy: &Policy,
        near: Option<u8>,
    ) -> NamespaceRow {
        let quota = policy.quota_for_namespace(&namespace);
        let mut standing = Standing::Ok;
        let mut fraction: f64 = 0.0;
        let mut parts = Vec::new();
        if let Some(quota) = &quota {
            let near = threshold(near, quota.warn_at);
            let measured = QuotaUsage::new(quota.hard, usage);
            standing = measured.standing(near);
            fraction = measured.fraction();
            for kind in QuotaKind::ALL {
                match measured.standing_of(kind, near) {
                    Standing::Over => parts.push(format!("{kind} over the quota")),
                    Standing::Near => {
                        let p = percent(usage.held(kind), quota.hard.limit(kind));
                        parts.push(format!("{kind} at {p}% of the quota"));
                    }
                    Standing::Ok => {}
                }
            }
        }
        let mut repositories: Vec<&(String, RepositoryCounts)> = repositories.iter().collect();
        repositories.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, counts) in repositories {
            let Ok(repository) = name.parse::<RepositoryName>() else {
                continue;
            };
            let applied = policy.limits_for(&repository);
            let limit = applied.limits.image_count_limit;
            let near = threshold(near, applied.protections.warn_at.value);
            let images = counts.images;
            let repository_standing = Standing::of(images, limit, near);
            match repository_standing {
                Standing::Over => parts.push(format!(
                    "{name}: {images} images over its image_count_limit of {limit} ({})",
                    applied.source
                )),
                Standing::Near => parts.push(format!(
                    "{name}: {images} images, {}% of its image_count_limit of {limit} ({})",
                    percent(images, limit),
                    applied.source
                )),
                Standing::Ok => continue,
            }
            standing = standing.min(repository_standing);
            fraction = fraction.max(limit.fraction(images).unwrap_or(0.0));
        }
        NamespaceRow {
            namespace,
            usage: Some(usage),
            quota,
            status: Status::Standing(standing),
            note: parts.join("; "),
            fraction,
        }
    }

    /// A namespace that could not be read.
    fn error(namespace: String, policy: &Policy, message: String) -> NamespaceRow {
        NamespaceRow {
            quota: policy.quota_for_namespace(&namespace),
            namespace,
            usage: None,
            status: Status::Error,
            note: message,
            fraction: 0.0,
        }
    }
}

/// Over first, then near, errors, ok; within a group the highest fraction first, then by name.
pub fn sort(rows: &mut [NamespaceRow]) {
    rows.sort_by(|a, b| {
        a.status
            .rank()
            .cmp(&b.status.rank())
            .then_with(|| b.fraction.total_cmp(&a.fraction))
            .then_with(|| a.namespace.cmp(&b.namespace))
    });
}

/// The namespaces of the repositories `names`, each once, in name order.
pub fn namespaces(names: &[String]) -> Vec<String> {
    let set: BTreeSet<&str> = names.iter().filter_map(|n| namespace_of(n)).collect();
    set.into_iter().map(str::to_owned).collect()
}

/// One row per namespace of `names` (the catalog), in no particular order: each namespace read
/// by an inventory of `reader`, at most `concurrency` requests at once.
pub async fn rows<U: Catalog>(
    reader: U,
    policy: &Policy,
    names: &[String],
    concurrency: usize,
    near: Option<u8>,
    progress: &Progress,
) -> Vec<NamespaceRow> {
    let concurrency = concurrency.max(1);
    let inventory = Inventory::new(
        Arc::new(reader),
        concurrency,
        Arc::new(InventoryMetrics::new()),
    );
    let namespaces = namespaces(names);
    progress.start(namespaces.len());
    let inventory = &inventory;
    let rows = futures_util::stream::iter(namespaces)
        .map(|namespace| async move {
            let row = match inventory.snapshot(&namespace).await {
                Ok((usage, repositories)) => {
                    NamespaceRow::measured(namespace, usage, &repositories, policy, near)
                }
                Err(err) => NamespaceRow::error(namespace, policy, err.to_string()),
            };
            progress.step();
            row
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    progress.finish();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
rules:
  - path: ^team-c/
    limit: {max_image_size: 1GB, tag_count_limit: "100", image_count_limit: "2"}
  - path: ^team-d/
    warn_at: 50%
    limit: {max_image_size: 1GB, tag_count_limit: "100", image_count_limit: "10"}
namespace_quotas:
  - namespace: ^team-a$
    hard: {repositories: "2", images: "10", tags: "20", storage: 1000B}
  - namespace: ^team-b$
    hard: {tags: "10"}
    warn_at: 50%
"#;

    fn usage(repositories: u64, images: u64, tags: u64, storage_bytes: u64) -> NamespaceUsage {
        NamespaceUsage {
            repositories,
            images,
            tags,
            storage_bytes,
        }
    }

    fn row(
        namespace: &str,
        usage: NamespaceUsage,
        images: &[u64],
        near: Option<u8>,
    ) -> NamespaceRow {
        let policy = Policy::from_yaml(POLICY).expect("valid policy");
        let repositories: Vec<(String, RepositoryCounts)> = images
            .iter()
            .enumerate()
            .map(|(i, images)| {
                let counts = RepositoryCounts {
                    images: *images,
                    tags: 1,
                };
                (format!("{namespace}/app{i}"), counts)
            })
            .collect();
        NamespaceRow::measured(namespace.to_owned(), usage, &repositories, &policy, near)
    }

    /// Namespace, usage, each repository's images, --near; status, note, fraction.
    type Case<'a> = (
        &'a str,
        NamespaceUsage,
        &'a [u64],
        Option<u8>,
        &'a str,
        &'a str,
        f64,
    );

    #[test]
    fn standings_notes_and_fractions() {
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("team-a", usage(3, 1, 3, 100), &[1], None, "over", "repositories over the quota", 1.5),
            ("team-a", usage(2, 1, 18, 950), &[1], None, "near",
             "repositories at 100% of the quota; tags at 90% of the quota; storage at 95% of the quota", 1.0),
            ("team-a", usage(2, 1, 18, 950), &[1], Some(100), "near", "repositories at 100% of the quota", 1.0),
            ("team-a", usage(1, 1, 17, 899), &[1], None, "ok", "", 0.899),
            ("team-a", usage(1, 1, 21, 1001), &[1], None, "over", "tags over the quota; storage over the quota", 1.05),
            // Its own warn_at: 50%.
            ("team-b", usage(9, 9, 5, 1 << 40), &[9], None, "near", "tags at 50% of the quota", 0.5),
            ("team-b", usage(9, 9, 4, 1 << 40), &[9], None, "ok", "", 0.4),
            // image_count_limit of each repository, by its rule.
            ("team-c", usage(2, 4, 2, 10), &[3, 1], None, "over",
             "team-c/app0: 3 images over its image_count_limit of 2 (rule 1: ^team-c/)", 1.5),
            ("team-c", usage(2, 3, 2, 10), &[1, 2], None, "near",
             "team-c/app1: 2 images, 100% of its image_count_limit of 2 (rule 1: ^team-c/)", 1.0),
            ("team-d", usage(1, 5, 5, 10), &[5], None, "near",
             "team-d/app0: 5 images, 50% of its image_count_limit of 10 (rule 2: ^team-d/)", 0.5),
            ("team-d", usage(1, 5, 5, 10), &[5], Some(60), "ok", "", 0.0),
            ("other", usage(100, 100, 100, 1 << 40), &[100], None, "ok", "", 0.0),
        ];
        for (namespace, usage, images, near, status, note, fraction) in cases {
            let row = row(namespace, *usage, images, *near);
            assert_eq!(
                (row.status.as_str(), row.note.as_str(), row.fraction),
                (*status, *note, *fraction),
                "{namespace} {usage:?} {images:?} {near:?}"
            );
        }
        assert!(row("other", usage(1, 1, 1, 1), &[1], None).quota.is_none());
    }

    #[test]
    fn sorted_over_near_error_ok_then_by_fraction_then_name() {
        let policy = Policy::from_yaml(POLICY).expect("valid policy");
        let mut rows = vec![
            row("other", usage(1, 1, 1, 1), &[1], None),
            row("team-a", usage(2, 1, 18, 950), &[1], None),
            NamespaceRow::error("broken".to_owned(), &policy, "boom".to_owned()),
            row("team-b", usage(1, 1, 11, 1), &[1], None),
            row("team-a", usage(3, 1, 3, 100), &[1], None),
            row("team-d", usage(1, 5, 5, 10), &[5], None),
            row("team-a", usage(1, 1, 17, 899), &[1], None),
            row("team-b", usage(1, 1, 1, 1), &[1], None),
        ];
        sort(&mut rows);
        let got: Vec<(&str, &str, f64)> = rows
            .iter()
            .map(|r| (r.status.as_str(), r.namespace.as_str(), r.fraction))
            .collect();
        assert_eq!(
            got,
            [
                ("over", "team-a", 1.5),
                ("over", "team-b", 1.1),
                ("near", "team-a", 1.0),
                ("near", "team-d", 0.5),
                ("error", "broken", 0.0),
                ("ok", "team-a", 0.899),
                ("ok", "team-b", 0.1),
                ("ok", "other", 0.0),
            ]
        );
    }

    #[test]
    fn namespaces_of_the_catalog() {
        let names = ["team-a/app", "ubuntu", "team-a/tools/app", "b/x", "/odd"].map(str::to_owned);
        assert_eq!(namespaces(&names), ["b", "team-a"]);
    }
}
