//! Migration to Registry v2 limits: the Kubernetes `LimitRange` objects that give each namespace
//! the limits the legacy configuration gives its repositories, and back.
//!
//! Registry v2 limits an image (`alauda.io/Image` `max.storage`) and an image stream, that is a
//! repository (`alauda.io/ImageStream` `max["alauda.io/image-tags"]`), per Kubernetes namespace:
//! the first component of the repository path. It has no global defaults and no regular
//! expressions, so a rule that covers part of a namespace cannot be expressed; each such case is
//! written as a comment next to the limits, never approximated silently.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use crate::error::YamlError;
use crate::matcher::required_prefix;
use crate::{ByteSize, Config, Limit, LimitSource, Limits, Policy, Protections, Rule};

/// The `metadata.name` of exported `LimitRange` objects.
pub const LIMIT_RANGE_NAME: &str = "image-registry-limits";
/// The `LimitRange` type of an image.
const IMAGE_TYPE: &str = "alauda.io/Image";
/// The `LimitRange` type of an image stream.
const IMAGE_STREAM_TYPE: &str = "alauda.io/ImageStream";
/// The image stream resource that counts tags.
const IMAGE_TAGS: &str = "alauda.io/image-tags";

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

/// A namespace as a regular expression: the characters of repository names are literal but
/// `.`.
fn escaped(namespace: &str) -> String {
    namespace.replace('.', "\\.")
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

    /// The namespaces the rules name: the first path component of each pattern anchored with a
    /// literal `^<namespace>/`, sorted, without duplicates.
    pub fn rule_namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> = self
            .rules()
            .iter()
            .filter_map(|rule| required_prefix(&rule.path))
            .filter_map(|prefix| prefix.split_once('/').map(|(ns, _)| ns.to_owned()))
            .filter(|ns| !ns.is_empty())
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
            "# Registry v2 limits (LimitRange per namespace) for the registry-gateway configuration."
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
            if enforcement != crate::Enforcement::Deny {
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
                continue;
            }
            let size = limits.limits.max_image_size.max();
            let tags = limits.limits.tag_count_limit.max();
            if size.is_none() && tags.is_none() {
                let _ = writeln!(
                    out,
                    "# both limits are unlimited: no LimitRange for namespace {namespace}"
                );
                continue;
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
            match tags {
                Some(tags) => {
                    let _ = write!(
                        out,
                        "    - type: {IMAGE_STREAM_TYPE}\n      max:\n        {IMAGE_TAGS}: \"{tags}\"\n"
                    );
                }
                None => out
                    .push_str("    # tag_count_limit unlimited: no alauda.io/ImageStream limit\n"),
            }
        }
        out
    }
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

/// A byte count as a Kubernetes quantity: the largest binary suffix that divides it exactly.
///
/// ```
/// use limits_core::{ByteSize, quantity};
///
/// assert_eq!(quantity(ByteSize::new(1 << 30)), "1Gi");
/// assert_eq!(quantity(ByteSize::new(20 << 20)), "20Mi");
/// assert_eq!(quantity(ByteSize::new(1_395_864_371)), "1395864371");
/// ```
pub fn quantity(size: ByteSize) -> String {
    let bytes = size.bytes();
    for (shift, suffix) in [
        (60, "Ei"),
        (50, "Pi"),
        (40, "Ti"),
        (30, "Gi"),
        (20, "Mi"),
        (10, "Ki"),
    ] {
        let unit = 1u64 << shift;
        if bytes != 0 && bytes % unit == 0 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// Why a Registry v2 document could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The text is not YAML.
    #[error("invalid YAML in document {document}: {source}")]
    Yaml {
        /// 1-based position of the document in the stream.
        document: usize,
        /// The parser's error.
        #[source]
        source: YamlError,
    },
    /// A `LimitRange` without `metadata.namespace`.
    #[error("LimitRange {name} in document {document} has no metadata.namespace")]
    NoNamespace {
        /// Its name.
        name: String,
        /// 1-based position of the document.
        document: usize,
    },
    /// A value that is not what the key takes.
    #[error("invalid {key} {value:?} in the LimitRange of namespace {namespace}: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The namespace.
        namespace: String,
        /// Why it was refused.
        reason: &'static str,
    },
}

/// A Kubernetes quantity as bytes: a whole number with an optional binary (`Ki` to `Ei`) or
/// decimal (`k`, `M`, `G`, `T`, `P`, `E`) suffix.
pub fn parse_quantity(text: &str) -> Result<u64, &'static str> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() {
        return Err("not a whole number of bytes");
    }
    let multiplier: u64 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        _ => {
            return Err(
                "expected a whole number with a suffix Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P or E",
            );
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or("does not fit in 64 bits")
}

/// What an import read: the configuration, and what it left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// One rule `^<namespace>/` per namespace with a `LimitRange`; global limits `unlimited`, as
    /// Registry v2 has none.
    pub config: Config,
    /// Objects and limits with no legacy equivalent, which were not imported.
    pub skipped: Vec<String>,
}

/// Reads Registry v2 `LimitRange` objects (YAML streams, `kind: List` too) back into a legacy
/// configuration. Other kinds and limit types are listed in [`Imported::skipped`]; several
/// `LimitRange`s in one namespace combine to the smallest limit.
pub fn import_registry_v2<'a>(
    texts: impl IntoIterator<Item = &'a str>,
) -> Result<Imported, ImportError> {
    let mut namespaces: BTreeMap<String, (Option<u64>, Option<u64>)> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut document = 0;
    for text in texts {
        for part in serde_yaml::Deserializer::from_str(text) {
            document += 1;
            let value = Value::deserialize(part).map_err(|e| ImportError::Yaml {
                document,
                source: YamlError(e),
            })?;
            let items = match value.get("kind").and_then(Value::as_str) {
                Some("List") => value
                    .get("items")
                    .and_then(Value::as_sequence)
                    .cloned()
                    .unwrap_or_default(),
                _ => vec![value],
            };
            for item in items {
                read_object(&item, document, &mut namespaces, &mut skipped)?;
            }
        }
    }
    let rules = namespaces
        .into_iter()
        .map(|(namespace, (size, tags))| Rule {
            path: format!("^{}/", escaped(&namespace)),
            limits: Limits {
                max_image_size: size.map_or(Limit::Unlimited, |b| Limit::Max(ByteSize::new(b))),
                tag_count_limit: tags.map_or(Limit::Unlimited, Limit::Max),
            },
            protections: Protections::default(),
        })
        .collect();
    Ok(Imported {
        config: Config {
            global: Limits {
                max_image_size: Limit::Unlimited,
                tag_count_limit: Limit::Unlimited,
            },
            rules,
            protections: Protections::default(),
        },
        skipped,
    })
}

fn read_object(
    item: &Value,
    document: usize,
    namespaces: &mut BTreeMap<String, (Option<u64>, Option<u64>)>,
    skipped: &mut Vec<String>,
) -> Result<(), ImportError> {
    let kind = item.get("kind").and_then(Value::as_str).unwrap_or("");
    let metadata = item.get("metadata").and_then(Value::as_mapping);
    let text = |m: Option<&Mapping>, key: &str| {
        m.and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let name = text(metadata, "name");
    if item.is_null() {
        return Ok(());
    }
    if kind != "LimitRange" {
        skipped.push(format!(
            "{} {name} (document {document}): only LimitRange objects have a legacy equivalent",
            if kind.is_empty() {
                "an object without kind"
            } else {
                kind
            }
        ));
        return Ok(());
    }
    let namespace = text(metadata, "namespace");
    if namespace.is_empty() {
        return Err(ImportError::NoNamespace { name, document });
    }
    let invalid = |key: &str, value: &Value, reason| ImportError::Invalid {
        key: key.to_owned(),
        value: match value {
            Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other)
                .unwrap_or_default()
                .trim()
                .to_owned(),
        },
        namespace: namespace.clone(),
        reason,
    };
    let limits = item
        .get("spec")
        .and_then(|spec| spec.get("limits"))
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    let entry = namespaces.entry(namespace.clone()).or_default();
    for limit in &limits {
        let kind = limit.get("type").and_then(Value::as_str).unwrap_or("");
        let max = limit.get("max").and_then(Value::as_mapping);
        for (key, value) in max.into_iter().flatten() {
            let key = key.as_str().unwrap_or("");
            let scalar = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => return Err(invalid(key, other, "expected a quantity")),
            };
            match (kind, key) {
                (IMAGE_TYPE, "storage") => {
                    let bytes = parse_quantity(&scalar).map_err(|r| invalid(key, value, r))?;
                    entry.0 = Some(entry.0.map_or(bytes, |b| b.min(bytes)));
                }
                (IMAGE_STREAM_TYPE, IMAGE_TAGS) => {
                    let tags = scalar
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| invalid(key, value, "expected a whole number"))?;
                    entry.1 = Some(entry.1.map_or(tags, |t| t.min(tags)));
                }
                _ => skipped.push(format!(
                    "{kind} max {key} in the LimitRange of namespace {namespace}: no legacy equivalent"
                )),
            }
        }
        for other in ["min", "default", "defaultRequest", "maxLimitRequestRatio"] {
            if limit.get(other).is_some() {
                skipped.push(format!(
                    "{kind} {other} in the LimitRange of namespace {namespace}: no legacy equivalent"
                ));
            }
        }
    }
    Ok(())
}

/// A YAML double-quoted scalar.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn quantities() {
        let cases: &[(&str, Result<u64, ()>)] = &[
            ("1Gi", Ok(1 << 30)),
            ("20Mi", Ok(20 << 20)),
            ("100", Ok(100)),
            ("1G", Ok(1_000_000_000)),
            ("5k", Ok(5_000)),
            ("1.5Gi", Err(())),
            ("100m", Err(())),
            ("Gi", Err(())),
            ("99999Ei", Err(())),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_quantity(text).map_err(|_| ()), *expected, "{text}");
        }
        for bytes in [1u64, 1023, 1024, 20 << 20, 1_395_864_371, 5 << 30, u64::MAX] {
            let printed = quantity(ByteSize::new(bytes));
            assert_eq!(parse_quantity(&printed), Ok(bytes), "{printed}");
        }
    }
}
