//! `check-config` and `explain`: a configuration's effective limits, and the rule that applies
//! to a repository.

mod usage;

use std::path::Path;

use limits_core::{ByteSize, Limit, Limits, RepositoryName};

use crate::{config_source, reference};

pub use usage::Upstream;

fn size_text(limit: Limit<ByteSize>) -> String {
    match limit {
        Limit::Max(size) => format!("{limit} ({} bytes)", size.bytes()),
        Limit::Unlimited => "unlimited".to_owned(),
    }
}

fn limits_text(limits: &Limits) -> String {
    let mut text = format!(
        "max_image_size {}, tag_count_limit {}",
        size_text(limits.max_image_size),
        limits.tag_count_limit
    );
    if let Limit::Max(images) = limits.image_count_limit {
        text.push_str(&format!(", image_count_limit {images}"));
    }
    text
}

/// `check-config PATH`: validates the configuration and prints its limits and rules; with
/// `upstream`, the usage of each namespace of the registry a quota applies to.
pub fn check_config(path: &Path, upstream: Option<Upstream<'_>>) -> anyhow::Result<()> {
    let policy = config_source::load(path)?;
    println!("configuration {}: valid", path.display());
    println!("global limits: {}", limits_text(policy.global()));
    let protections = &policy.config().protections;
    if !protections.is_empty() {
        println!("global protections: {protections}");
    }
    if policy.rules().is_empty() {
        println!("rules: none (the global limits apply to every repository)");
    } else {
        println!("rules (first match wins):");
        for (index, rule) in policy.rules().iter().enumerate() {
            println!(
                "  {}. {}  {}",
                index + 1,
                rule.path,
                limits_text(&rule.limits)
            );
            if !rule.protections.is_empty() {
                println!("     {}", rule.protections);
            }
        }
    }
    if !policy.namespace_quotas().is_empty() {
        println!(
            "namespace quotas (first match wins; the namespace is a repository's first component):"
        );
        for (index, quota) in policy.namespace_quotas().iter().enumerate() {
            println!("  {}. {}  {}", index + 1, quota.namespace, quota.hard);
        }
    }
    if let Some(upstream) = upstream {
        for line in usage::check_config(&policy, upstream)? {
            println!("{line}");
        }
    }
    Ok(())
}

/// `explain --config PATH REFERENCE`: the rule that applies to a repository (a full image
/// reference reads as its repository), and what follows; with `upstream`, what the repository
/// and its namespace hold.
pub fn explain(
    config: &Path,
    reference: &str,
    upstream: Option<Upstream<'_>>,
) -> anyhow::Result<()> {
    let policy = config_source::load(config)?;
    // An image reference as clients take it reads as its repository.
    let reading = reference::Reading::of(reference);
    let repository: RepositoryName = reading.repository.parse().map_err(|err| {
        let err = anyhow::Error::new(err);
        if reading.left_out_anything() {
            err.context(format!(
                "{reference} read as repository {} ({reading})",
                reading.repository
            ))
        } else {
            err
        }
    })?;
    let applied = policy.limits_for(&repository);
    if reading.left_out_anything() {
        println!("repository: {repository} (read from {reference}: {reading})");
    } else {
        println!("repository: {repository}");
    }
    match &applied.source {
        limits_core::LimitSource::Global => {
            println!("matched by: no rule; the global limits apply")
        }
        limits_core::LimitSource::Rule { .. } => {
            println!("matched by: {} (first match)", applied.source)
        }
    }
    println!(
        "max_image_size: {}",
        size_text(applied.limits.max_image_size)
    );
    println!("tag_count_limit: {}", applied.limits.tag_count_limit);
    let namespace = limits_core::namespace_of(repository.as_str());
    println!("image_count_limit: {}", applied.limits.image_count_limit);
    match (namespace, policy.quota_for(&repository)) {
        (None, _) => {
            println!("namespace quota: none ({repository} has no namespace: no `/` in its name)")
        }
        (Some(namespace), None) => {
            println!("namespace quota: none (no entry of namespace_quotas matches {namespace})")
        }
        (Some(_), Some(quota)) => println!(
            "namespace quota: {} for namespace {} ({}; enforcement {})",
            quota.hard, quota.namespace, quota.source, quota.enforcement
        ),
    }
    let protections = &applied.protections;
    let from = |source: &limits_core::LimitSource| match source {
        limits_core::LimitSource::Global => "global".to_owned(),
        rule => rule.to_string(),
    };
    println!(
        "read_only: {} ({})",
        protections.read_only.value,
        from(&protections.read_only.source)
    );
    let patterns = protections
        .immutable_tags
        .value
        .as_ref()
        .map_or_else(|| "none".to_owned(), |p| p.patterns().join(", "));
    println!(
        "immutable_tags: {patterns} ({})",
        from(&protections.immutable_tags.source)
    );
    println!(
        "allow_deleting_immutable_tags: {} ({})",
        protections.allow_deleting_immutable_tags.value,
        from(&protections.allow_deleting_immutable_tags.source)
    );
    println!(
        "exempt_signature_tags: {} ({})",
        protections.exempt_signature_tags.value,
        from(&protections.exempt_signature_tags.source)
    );
    println!(
        "enforcement: {} ({})",
        protections.enforcement.value,
        from(&protections.enforcement.source)
    );
    println!(
        "warn_at: {} ({})",
        protections.warn_at.value,
        from(&protections.warn_at.source)
    );
    if let Some(upstream) = upstream {
        for line in usage::explain(&policy, &repository, upstream)? {
            println!("{line}");
        }
    }
    Ok(())
}
