//! Export: the `LimitRange` and `ResourceQuota` each namespace gets, and the comments on what
//! they cannot express.

use std::fmt::Write as _;

use super::quantity::quantity;
use super::{
    IMAGE_STREAM_TYPE, IMAGE_STREAMS, IMAGE_TAGS, IMAGE_TYPE, IMAGES, LIMIT_RANGE_NAME,
    RESOURCE_QUOTA_NAME, escaped,
};
use crate::matcher::required_prefix;
use crate::{Enforcement, Limit, LimitSource, Limits, Policy};

/// How much of a namespace a rule's pattern covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coverage {
    /// Every repository of the namespace.
    All,
    /// No repository of the namespace.
    None,
    /// Some, or it cannot be told.
    Part,
}

/// Patterns that match every repository name.
const MATCH_ALL: [&str; 6] = ["", "^", ".*", "^.*", ".+", "^.+"];

fn coverage(pattern: &str, namespace: &str) -> Coverage {
    if MATCH_ALL.contains(&pattern) {
        return Coverage::All;
    }
    let whole = [namespace.to_owned(), escaped(namespace)].iter().any(|ns| {
        ["", ".*", ".+", ".*$", ".+$"]
            .iter()
            .any(|rest| pattern == format!("^{ns}/{rest}"))
    });
    if whole {
        return Coverage::All;
    }
    let literal = format!("{namespace}/");
    match required_prefix(pattern) {
        Some(required) if !required.starts_with(&literal) && !literal.starts_with(&required) => {
            Coverage::None
        }
        _ => Coverage::Part,
    }
}

/// The limits one namespace gets, and what a `LimitRange` cannot say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceLimits {
    /// The namespace: the first component of its repositories' names.
    pub namespace: String,
    /// The limits for all its repositories.
    pub limits: Limits,
    /// The rule that covers the whole namespace, or the global limits.
    pub source: LimitSource,
    /// Rules that apply to part of the namespace only: the `LimitRange` cannot express them.
    pub inexact: Vec<String>,
}

impl Policy {
    /// The limits a `LimitRange` in `namespace` gives: those of the first rule that covers the
    /// whole namespace, else the global ones, with every earlier rule that covers part of it
    /// listed in [`NamespaceLimits::inexact`].
    ///
    /// ```
    /// use limits_core::Policy;
    ///
    /// let policy = Policy::from_yaml(r#"
    /// rules:
    ///   - path: ^project-2/big-image/.*
    ///     limit: {max_image_size: 5GB, tag_count_limit: 200}
    ///   - path: ^project-2/.*
    ///     limit: {max_image_size: 50MB, tag_count_limit: 10}
    /// "#)?;
    /// let limits = policy.namespace_limits("project-2");
    /// assert_eq!(limits.source.to_string(), "rule 2: ^project-2/.*");
    /// assert_eq!(limits.inexact.len(), 1);
    /// assert!(policy.namespace_limits("other").inexact.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn namespace_limits(&self, namespace: &str) -> NamespaceLimits {
        let mut inexact = Vec::new();
        for (index, rule) in self.rules().iter().enumerate() {
            match coverage(&rule.path, namespace) {
                Coverage::None => {}
                Coverage::Part => inexact.push(format!(
                    "rule {} ({}) gives some repositories of namespace {namespace} {}; a LimitRange applies to the whole namespace and cannot express it",
                    index + 1,
                    rule.path,
                    rule.limits
                )),
                Coverage::All => {
                    return NamespaceLimits {
                        namespace: namespace.to_owned(),
                        limits: rule.limits,
                        source: LimitSource::Rule {
                            position: index + 1,
                            path: rule.path.as_str().into(),
                        },
                        inexact,
                    };
                }
            }
        }
        NamespaceLimits {
            namespace: namespace.to_owned(),
            limits: *self.global(),
            source: LimitSource::Global,
            inexact,
        }
    }

    /// The namespaces the rules and namespace quotas name: the first path component of each
    /// rule pattern anchored with a literal `^<namespace>/`, and each quota pattern that is a
    /// whole literal name (`^team-a$`), sorted, without duplicates.
    pub fn rule_namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> = self
            .rules()
            .iter()
            .filter_map(|rule| required_prefix(&rule.path))
            .filter_map(|prefix| prefix.split_once('/').map(|(ns, _)| ns.to_owned()))
            .filter(|ns| !ns.is_empty())
            .chain(
                self.namespace_quotas()
                    .iter()
                    .filter_map(|quota| literal_namespace(&quota.namespace)),
            )
            .collect();
        namespaces.sort();
        namespaces.dedup();
        namespaces
    }

    /// The Registry v2 objects for `namespaces`: a YAML stream with one `LimitRange` per
    /// namespace (none for a namespace without any limit), commented with where the limits
    /// came from and what they cannot express.
    pub fn export_registry_v2(&self, namespaces: &[String]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Registry v2 limits (LimitRange and ResourceQuota per namespace) for the registry-gateway configuration."
        );
        let _ = writeln!(
            out,
            "# Legacy global limits: {}. Registry v2 has no global limits: a namespace without a",
            self.global()
        );
        let _ = writeln!(out, "# LimitRange has none.");
        let mut notes = Vec::new();
        let protections = &self.config().protections;
        if !protections.is_empty() {
            notes.push(format!("global {protections}"));
        }
        for (index, rule) in self.rules().iter().enumerate() {
            if !rule.protections.is_empty() {
                notes.push(format!(
                    "rule {} ({}): {}",
                    index + 1,
                    rule.path,
                    rule.protections
                ));
            }
        }
        for note in notes {
            let _ = writeln!(out, "# Not exported, Registry v2 has no equivalent: {note}");
        }
        for namespace in namespaces {
            self.write_limit_range(&mut out, namespace);
            self.write_resource_quota(&mut out, namespace);
        }
        out
    }

    /// The `LimitRange` of one namespace, with its comments.
    fn write_limit_range(&self, out: &mut String, namespace: &str) {
        let limits = self.namespace_limits(namespace);
        out.push_str("---\n");
        let _ = writeln!(out, "# namespace {namespace}: {}", limits.source);
        for note in &limits.inexact {
            let _ = writeln!(out, "# INEXACT: {note}");
        }
        let rule_enforcement = match &limits.source {
            LimitSource::Rule { position, .. } => self
                .rules()
                .get(position - 1)
                .and_then(|rule| rule.protections.enforcement),
            LimitSource::Global => None,
        };
        let enforcement = rule_enforcement
            .or(self.config().protections.enforcement)
            .unwrap_or_default();
        if enforcement != Enforcement::Deny {
            let _ = writeln!(
                out,
                "# INEXACT: the gateway enforces these limits in {enforcement} mode (pushes over them go through); a LimitRange always refuses them"
            );
        }
        if !is_namespace_name(namespace) {
            let _ = writeln!(
                out,
                "# INEXACT: {namespace} is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63): no LimitRange"
            );
            return;
        }
        let size = limits.limits.max_image_size.max();
        let tags = limits.limits.tag_count_limit.max();
        let images = limits.limits.image_count_limit.max();
        if size.is_none() && tags.is_none() && images.is_none() {
            let _ = writeln!(
                out,
                "# every limit is unlimited: no LimitRange for namespace {namespace}"
            );
            return;
        }
        let _ = write!(
            out,
            "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: {LIMIT_RANGE_NAME}\n  namespace: {}\nspec:\n  limits:\n",
            quote(namespace)
        );
        match size {
            Some(size) => {
                let _ = write!(
                    out,
                    "    - type: {IMAGE_TYPE}\n      max:\n        storage: {}\n",
                    quantity(size)
                );
            }
            None => out.push_str("    # max_image_size unlimited: no alauda.io/Image limit\n"),
        }
        if tags.is_none() && images.is_none() {
            out.push_str("    # tag_count_limit unlimited: no alauda.io/ImageStream limit\n");
            return;
        }
        let _ = write!(out, "    - type: {IMAGE_STREAM_TYPE}\n      max:\n");
        if let Some(images) = images {
            let _ = writeln!(out, "        {IMAGES}: \"{images}\"");
        }
        if let Some(tags) = tags {
            let _ = writeln!(out, "        {IMAGE_TAGS}: \"{tags}\"");
        }
    }

    /// The `ResourceQuota` of one namespace from the first namespace quota that matches it,
    /// with its comments; nothing when none matches.
    fn write_resource_quota(&self, out: &mut String, namespace: &str) {
        let Some(quota) = self.quota_for_namespace(namespace) else {
            return;
        };
        out.push_str("---\n");
        let _ = writeln!(
            out,
            "# namespace {namespace}: {} ({})",
            quota.source, quota.hard
        );
        if quota.enforcement != Enforcement::Deny {
            let _ = writeln!(
                out,
                "# INEXACT: the gateway enforces this quota in {} mode (pushes over it go through); a ResourceQuota always refuses them",
                quota.enforcement
            );
        }
        if let Limit::Max(storage) = quota.hard.storage {
            let _ = writeln!(
                out,
                "# Not exported, Registry v2 has no equivalent: storage {storage:#} ({} bytes) of {}; no ResourceQuota resource counts the storage of a namespace's images",
                storage.bytes(),
                quota.source
            );
        }
        if !is_namespace_name(namespace) {
            let _ = writeln!(
                out,
                "# INEXACT: {namespace} is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63): no ResourceQuota"
            );
            return;
        }
        let hard = [
            (IMAGE_STREAMS, quota.hard.repositories),
            (IMAGES, quota.hard.images),
            (IMAGE_TAGS, quota.hard.tags),
        ];
        if hard.iter().all(|(_, limit)| limit.max().is_none()) {
            let _ = writeln!(
                out,
                "# repositories, images and tags are unlimited: no ResourceQuota for namespace {namespace}"
            );
            return;
        }
        let _ = write!(
            out,
            "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: {RESOURCE_QUOTA_NAME}\n  namespace: {}\nspec:\n  hard:\n",
            quote(namespace)
        );
        for (key, limit) in hard {
            if let Limit::Max(count) = limit {
                let _ = writeln!(out, "    {key}: \"{count}\"");
            }
        }
    }
}

/// The namespace a quota pattern names whole (`^team-a$`, `^a\\.b$`), if it does.
fn literal_namespace(pattern: &str) -> Option<String> {
    let inner = pattern.strip_prefix('^')?.strip_suffix('$')?;
    let literal = !inner.is_empty()
        && inner
            .replace("\\.", "")
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    literal.then(|| inner.replace("\\.", "."))
}

/// Whether `name` is a Kubernetes namespace name (an RFC 1123 label).
fn is_namespace_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A YAML double-quoted scalar.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_namespaces() {
        let cases: &[(&str, Option<&str>)] = &[
            ("^team-a$", Some("team-a")),
            ("^a\\.b$", Some("a.b")),
            ("^a.b$", None),
            ("^team-", None),
            ("team-a$", None),
            ("^(a|b)$", None),
            ("^$", None),
        ];
        for (pattern, namespace) in cases {
            assert_eq!(
                literal_namespace(pattern).as_deref(),
                *namespace,
                "{pattern}"
            );
        }
    }

    #[test]
    fn coverages() {
        let cases: &[(&str, &str, Coverage)] = &[
            ("^project-1/.*", "project-1", Coverage::All),
            ("^project-1/", "project-1", Coverage::All),
            ("^project-1/.+$", "project-1", Coverage::All),
            (".*", "any", Coverage::All),
            ("^project-1/.*", "project-2", Coverage::None),
            ("^project-1/.*", "project-10", Coverage::None),
            ("^project-2/big-image/.*", "project-2", Coverage::Part),
            ("^project-2/big-image/.*", "project-3", Coverage::None),
            ("^project", "project-1", Coverage::Part),
            ("-cache$", "team", Coverage::Part),
            ("^a.b/", "a.b", Coverage::All),
            ("^a.b/", "axb", Coverage::Part),
            ("^a\\.b/", "a.b", Coverage::All),
        ];
        for (pattern, namespace, expected) in cases {
            assert_eq!(
                coverage(pattern, namespace),
                *expected,
                "{pattern} {namespace}"
            );
        }
    }
}
