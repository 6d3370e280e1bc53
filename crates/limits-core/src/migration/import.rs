//! Import: Registry v2 `LimitRange` and `ResourceQuota` objects read back into a legacy
//! configuration.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::quantity::parse_quantity;
use super::{IMAGE_STREAM_TYPE, IMAGE_STREAMS, IMAGE_TAGS, IMAGE_TYPE, IMAGES, escaped};
use crate::error::YamlError;
use crate::{ByteSize, Config, Limit, Limits, NamespaceQuota, Protections, QuotaHard, Rule};

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
    /// A `LimitRange` or `ResourceQuota` without `metadata.namespace`.
    #[error("{kind} {name} in document {document} has no metadata.namespace")]
    NoNamespace {
        /// `LimitRange` or `ResourceQuota`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// 1-based position of the document.
        document: usize,
    },
    /// A value that is not what the key takes.
    #[error("invalid {key} {value:?} in the {kind} of namespace {namespace}: {reason}")]
    Invalid {
        /// `LimitRange` or `ResourceQuota`.
        kind: &'static str,
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
    /// One rule `^<namespace>/` per namespace with a `LimitRange`, one namespace quota
    /// `^<namespace>$` per namespace with a `ResourceQuota`; global limits `unlimited`, as
    /// Registry v2 has none.
    pub config: Config,
    /// Objects and limits with no legacy equivalent, which were not imported.
    pub skipped: Vec<String>,
}

/// The limits read for one namespace: a `LimitRange`'s image size, tag count and image count,
/// or a `ResourceQuota`'s image streams, images and tags.
type Found = [Option<u64>; 3];

/// What the objects read so far give each namespace.
#[derive(Default)]
struct Read {
    limit_ranges: BTreeMap<String, Found>,
    quotas: BTreeMap<String, Found>,
    skipped: Vec<String>,
}

/// Keeps the smaller of two limits: Kubernetes enforces every object of a namespace.
fn keep_smaller(slot: &mut Option<u64>, value: u64) {
    *slot = Some(slot.map_or(value, |old| old.min(value)));
}

fn limit(value: Option<u64>) -> Limit<u64> {
    value.map_or(Limit::Unlimited, Limit::Max)
}

/// Reads Registry v2 `LimitRange` and `ResourceQuota` objects (YAML streams, `kind: List`
/// too) back into a legacy configuration. Other kinds and limit types are listed in
/// [`Imported::skipped`]; several objects of a kind in one namespace combine to the smallest
/// limit.
///
/// ```
/// use limits_core::{Limit, import_registry_v2};
///
/// let imported = import_registry_v2([r#"
/// apiVersion: v1
/// kind: ResourceQuota
/// metadata: {name: image-registry-quota, namespace: team-a}
/// spec:
///   hard: {alauda.io/imagestreams: "20", alauda.io/images: "200", alauda.io/image-tags: "200"}
/// "#])?;
/// let quota = &imported.config.namespace_quotas[0];
/// assert_eq!(quota.namespace, "^team-a$");
/// assert_eq!(quota.hard.repositories, Limit::Max(20));
/// # Ok::<(), limits_core::ImportError>(())
/// ```
pub fn import_registry_v2<'a>(
    texts: impl IntoIterator<Item = &'a str>,
) -> Result<Imported, ImportError> {
    let mut read = Read::default();
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
                read_object(&item, document, &mut read)?;
            }
        }
    }
    let rules = read
        .limit_ranges
        .into_iter()
        .map(|(namespace, [size, tags, images])| Rule {
            path: format!("^{}/", escaped(&namespace)),
            limits: Limits {
                max_image_size: limit(size).map(ByteSize::new),
                tag_count_limit: limit(tags),
                image_count_limit: limit(images),
            },
            protections: Protections::default(),
        })
        .collect();
    let namespace_quotas = read
        .quotas
        .into_iter()
        .map(|(namespace, [repositories, images, tags])| NamespaceQuota {
            namespace: format!("^{}$", escaped(&namespace)),
            hard: QuotaHard {
                repositories: limit(repositories),
                images: limit(images),
                tags: limit(tags),
                storage: Limit::Unlimited,
            },
            enforcement: None,
            warn_at: None,
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
            namespace_quotas,
        },
        skipped: read.skipped,
    })
}

fn read_object(item: &Value, document: usize, read: &mut Read) -> Result<(), ImportError> {
    if item.is_null() {
        return Ok(());
    }
    let kind = item.get("kind").and_then(Value::as_str).unwrap_or("");
    let metadata = item.get("metadata").and_then(Value::as_mapping);
    let text = |m: Option<&Mapping>, key: &str| {
        m.and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let name = text(metadata, "name");
    let kind: &'static str = match kind {
        "LimitRange" => "LimitRange",
        "ResourceQuota" => "ResourceQuota",
        other => {
            read.skipped.push(format!(
                "{} {name} (document {document}): only LimitRange and ResourceQuota objects have a legacy equivalent",
                if other.is_empty() {
                    "an object without kind"
                } else {
                    other
                }
            ));
            return Ok(());
        }
    };
    let namespace = text(metadata, "namespace");
    if namespace.is_empty() {
        return Err(ImportError::NoNamespace {
            kind,
            name,
            document,
        });
    }
    let object = Object {
        kind,
        namespace: &namespace,
    };
    let spec = item.get("spec");
    if kind == "ResourceQuota" {
        return object.read_quota(spec, read);
    }
    let limits = spec
        .and_then(|spec| spec.get("limits"))
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    let entry = read.limit_ranges.entry(namespace.clone()).or_default();
    for limit in &limits {
        let kind = limit.get("type").and_then(Value::as_str).unwrap_or("");
        let max = limit.get("max").and_then(Value::as_mapping);
        for (key, value) in max.into_iter().flatten() {
            let key = key.as_str().unwrap_or("");
            match (kind, key) {
                (IMAGE_TYPE, "storage") => {
                    let scalar = object.scalar(key, value)?;
                    let bytes =
                        parse_quantity(&scalar).map_err(|r| object.invalid(key, value, r))?;
                    keep_smaller(&mut entry[0], bytes);
                }
                (IMAGE_STREAM_TYPE, IMAGE_TAGS) => {
                    keep_smaller(&mut entry[1], object.count(key, value)?);
                }
                (IMAGE_STREAM_TYPE, IMAGES) => {
                    keep_smaller(&mut entry[2], object.count(key, value)?);
                }
                _ => read.skipped.push(format!(
                    "{kind} max {key} in the LimitRange of namespace {namespace}: no legacy equivalent"
                )),
            }
        }
        for other in ["min", "default", "defaultRequest", "maxLimitRequestRatio"] {
            if limit.get(other).is_some() {
                read.skipped.push(format!(
                    "{kind} {other} in the LimitRange of namespace {namespace}: no legacy equivalent"
                ));
            }
        }
    }
    Ok(())
}

/// The object being read, for its values and errors.
struct Object<'a> {
    kind: &'static str,
    namespace: &'a str,
}

impl Object<'_> {
    fn invalid(&self, key: &str, value: &Value, reason: &'static str) -> ImportError {
        ImportError::Invalid {
            kind: self.kind,
            key: key.to_owned(),
            value: match value {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            },
            namespace: self.namespace.to_owned(),
            reason,
        }
    }

    fn scalar(&self, key: &str, value: &Value) -> Result<String, ImportError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(self.invalid(key, other, "expected a quantity")),
        }
    }

    fn count(&self, key: &str, value: &Value) -> Result<u64, ImportError> {
        self.scalar(key, value)?
            .trim()
            .parse::<u64>()
            .map_err(|_| self.invalid(key, value, "expected a whole number"))
    }

    /// A `ResourceQuota`'s `spec.hard`: image streams (repositories), images and tags.
    fn read_quota(&self, spec: Option<&Value>, read: &mut Read) -> Result<(), ImportError> {
        let namespace = self.namespace;
        let hard = spec
            .and_then(|spec| spec.get("hard"))
            .and_then(Value::as_mapping);
        let entry = read.quotas.entry(namespace.to_owned()).or_default();
        for (key, value) in hard.into_iter().flatten() {
            let key = key.as_str().unwrap_or("");
            let slot = match key {
                IMAGE_STREAMS => 0,
                IMAGES => 1,
                IMAGE_TAGS => 2,
                _ => {
                    read.skipped.push(format!(
                        "hard {key} in the ResourceQuota of namespace {namespace}: no legacy equivalent"
                    ));
                    continue;
                }
            };
            keep_smaller(&mut entry[slot], self.count(key, value)?);
        }
        for other in ["scopes", "scopeSelector"] {
            if spec.and_then(|spec| spec.get(other)).is_some() {
                read.skipped.push(format!(
                    "{other} in the ResourceQuota of namespace {namespace}: no legacy equivalent (the quota was imported for the whole namespace)"
                ));
            }
        }
        Ok(())
    }
}
