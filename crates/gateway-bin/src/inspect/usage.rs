//! `check-config --upstream` and `explain --upstream`: what namespaces and a repository hold,
//! read from the registry by an inventory as the gateway's own (so counted exactly as pushes
//! are decided), against the limits that apply.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context;
use limits_core::{ByteSize, Limit, NamespaceUsage, Policy, QuotaHard, QuotaKind, RepositoryName};
use upstream_client::{Auth, Inventory as _, ReqwestUpstream};
use url::Url;

use crate::cli::RegistryAccount;
use crate::credentials;
use crate::inventory::{Inventory, InventoryMetrics, lone_repository, scope_of};

/// The registry to read, and the account to read it with.
#[derive(Debug, Clone, Copy)]
pub struct Upstream<'a> {
    /// Its URL.
    pub url: &'a Url,
    /// The account.
    pub account: &'a RegistryAccount,
}

/// Requests at once while a namespace is read.
const CONCURRENCY: usize = 4;

impl Upstream<'_> {
    /// The registry's client, and an inventory reading through it.
    fn inventory(&self) -> anyhow::Result<(Arc<ReqwestUpstream>, Inventory<ReqwestUpstream>)> {
        let reader = Arc::new(credentials::reader(self.url, self.account)?);
        let inventory = Inventory::new(
            Arc::clone(&reader),
            CONCURRENCY,
            Arc::new(InventoryMetrics::new()),
        );
        Ok((reader, inventory))
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// `count[ of limit]`.
fn against(count: u64, limit: Limit<u64>) -> String {
    match limit {
        Limit::Max(max) => format!("{count} of {max}"),
        Limit::Unlimited => count.to_string(),
    }
}

/// A namespace's usage against `hard`: `repositories 2 of 20, images 3, ...`.
fn usage_text(usage: &NamespaceUsage, hard: &QuotaHard) -> String {
    QuotaKind::ALL
        .iter()
        .map(|kind| {
            let value = usage.held(*kind);
            let text = match kind {
                QuotaKind::Storage => {
                    let size = format!("{} ({value} bytes)", ByteSize::new(value));
                    match hard.storage {
                        Limit::Max(_) => format!("{size} of {}", hard.storage),
                        Limit::Unlimited => size,
                    }
                }
                _ => against(value, hard.limit(*kind)),
            };
            format!("{} {text}", kind.as_str())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lines `explain --upstream` adds for `repository`.
pub fn explain(
    policy: &Policy,
    repository: &RepositoryName,
    upstream: Upstream<'_>,
) -> anyhow::Result<Vec<String>> {
    let (_, inventory) = upstream.inventory()?;
    let scope = scope_of(repository.as_str());
    let (usage, repositories) = runtime()?
        .block_on(inventory.snapshot(&scope))
        .with_context(|| format!("cannot read {repository} from {}", upstream.url))?;
    let counts = repositories
        .iter()
        .find(|(name, _)| name == repository.as_str())
        .map(|(_, counts)| *counts)
        .unwrap_or_default();
    let applied = policy.limits_for(repository);
    let mut lines = vec![format!(
        "repository usage: images {}, tags {} (read from {})",
        against(counts.images, applied.limits.image_count_limit),
        against(counts.tags, applied.limits.tag_count_limit),
        upstream.url
    )];
    if let Some(quota) = policy.quota_for(repository) {
        lines.push(format!(
            "namespace usage: {}",
            usage_text(&usage, &quota.hard)
        ));
    } else if lone_repository(&scope).is_none() {
        lines.push(format!(
            "namespace usage: {}",
            usage_text(&usage, &QuotaHard::UNLIMITED)
        ));
    }
    Ok(lines)
}

/// The lines `check-config --upstream` adds: each namespace of the registry a quota applies
/// to, with its usage.
pub fn check_config(policy: &Policy, upstream: Upstream<'_>) -> anyhow::Result<Vec<String>> {
    let (reader, inventory) = upstream.inventory()?;
    let runtime = runtime()?;
    let names = runtime
        .block_on(reader.catalog(Auth::Configured))
        .with_context(|| format!("cannot read the catalog of {}", upstream.url))?;
    let namespaces: BTreeSet<&str> = names
        .iter()
        .filter_map(|name| limits_core::namespace_of(name))
        .collect();
    let mut lines = vec![format!("namespace usage (read from {}):", upstream.url)];
    for namespace in namespaces {
        let Some(quota) = policy.quota_for_namespace(namespace) else {
            continue;
        };
        let line = match runtime.block_on(inventory.snapshot(namespace)) {
            Ok((usage, _)) => format!(
                "  {namespace}: {} ({})",
                usage_text(&usage, &quota.hard),
                quota.source
            ),
            Err(err) => format!("  {namespace}: cannot be read: {err}"),
        };
        lines.push(line);
    }
    if lines.len() == 1 {
        lines.push("  no namespace of the registry has a quota".to_owned());
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_reads_against_the_quota() {
        let usage = NamespaceUsage {
            repositories: 2,
            images: 3,
            tags: 4,
            storage_bytes: 75_410,
        };
        let hard = QuotaHard {
            repositories: Limit::Max(20),
            storage: Limit::Max(ByteSize::new(50 << 30)),
            ..QuotaHard::UNLIMITED
        };
        assert_eq!(
            usage_text(&usage, &hard),
            "repositories 2 of 20, images 3, tags 4, storage 73.6 KiB (75410 bytes) of 50 GiB"
        );
        assert_eq!(
            usage_text(&usage, &QuotaHard::UNLIMITED),
            "repositories 2, images 3, tags 4, storage 73.6 KiB (75410 bytes)"
        );
    }
}
