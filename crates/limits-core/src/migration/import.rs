//! Import: Registry v2 `LimitRange` objects read back into a legacy configuration.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::quantity::parse_quantity;
use super::{IMAGE_STREAM_TYPE, IMAGE_TAGS, IMAGE_TYPE, escaped};
use crate::error::YamlError;
use crate::{ByteSize, Config, Limit, Limits, Protections, Rule};

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
                source: YamlError::plain(e),
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
                image_count_limit: Limit::Unlimited,
            },
            protections: Protections::default(),
        })
        .collect();
    Ok(Imported {
        config: Config {
            global: Limits {
                max_image_size: Limit::Unlimited,
                tag_count_limit: Limit::Unlimited,
                image_count_limit: Limit::Unlimited,
            },
            rules,
            protections: Protections::default(),
            namespace_quotas: Vec::new(),
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
