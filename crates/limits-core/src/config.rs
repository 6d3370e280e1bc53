//! Reading the configuration: the ConfigMap's `data` keys, a whole ConfigMap manifest, or the
//! files of a mounted ConfigMap directory.

use serde_yaml::{Mapping, Value};

use crate::error::{ConfigError, Location, YamlError};
use crate::quota::namespace_quotas;
use crate::yaml::{
    boolean, count_limit, enforcement, key_str, list_or_string, missing, patterns, quote, short,
    size_limit, unknown, warn_at, wrong_type,
};
use crate::{Limit, Limits, NamespaceQuota, Protections};

/// The keys of the ConfigMap's `data`.
const DATA_KEYS: &str = "max_image_size, tag_count_limit, image_count_limit, rules, namespace_quotas, read_only, immutable_tags, exempt_signature_tags, enforcement, warn_at, allow_deleting_immutable_tags";
/// The keys of one rule.
const RULE_KEYS: &str = "path, limit, read_only, immutable_tags, exempt_signature_tags, enforcement, warn_at, allow_deleting_immutable_tags";
/// The keys of a rule's `limit`.
const LIMIT_KEYS: &str = "max_image_size, tag_count_limit, image_count_limit";
/// The top-level keys of a ConfigMap manifest.
const MANIFEST_KEYS: &str = "apiVersion, kind, metadata, data, binaryData, immutable";
/// Why a rule must give both limits.
const BOTH_LIMITS: &str = ": each rule must give both max_image_size and tag_count_limit";

/// One path rule as written in the configuration: a pattern and the limits it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The regular expression matched against repository names (unanchored).
    pub path: String,
    /// The limits for repositories it matches.
    pub limits: Limits,
    /// The protections it gives; a key it leaves out takes the global value.
    pub protections: Protections,
}

/// A configuration as read, before its patterns are compiled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// Limits for repositories no rule matches.
    pub global: Limits,
    /// Ordered rules; the first match wins.
    pub rules: Vec<Rule>,
    /// Protections for repositories whose rule leaves them out, or that no rule matches.
    pub protections: Protections,
    /// Ordered namespace quotas; the first whose pattern matches a namespace applies.
    pub namespace_quotas: Vec<NamespaceQuota>,
}

impl Config {
    /// Reads a YAML document holding either the ConfigMap's `data` keys or a whole ConfigMap
    /// manifest (`kind: ConfigMap`, as `kubectl get configmap -o yaml` prints it).
    ///
    /// Errors inside the `rules: |` string give the rule and the line of the file.
    ///
    /// ```
    /// use limits_core::Config;
    ///
    /// let text = "\
    /// max_image_size: 1GB
    /// rules: |
    ///   - path: ^a/
    ///     limit: {max_image_size: 1GB
    ///   - path: ^b/
    /// ";
    /// let err = Config::from_yaml(text).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid YAML in rule 1 of rules: did not find expected ',' or '}' at line 5 column 9, while parsing a flow mapping at line 4 column 12"
    /// );
    /// ```
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        Self::read_yaml(text).map_err(|err| err.placed_in(text))
    }

    fn read_yaml(text: &str) -> Result<Config, ConfigError> {
        let document: Value = serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml {
            location: Location::Document,
            source: YamlError::new(e, text),
        })?;
        let mapping = match document {
            // An empty file is an empty configuration: every default applies.
            Value::Null => return Ok(Config::default()),
            Value::Mapping(mapping) => mapping,
            other => {
                return Err(wrong_type(
                    "configuration",
                    Location::Document,
                    "a mapping",
                    &other,
                ));
            }
        };
        if mapping.contains_key("kind") || mapping.contains_key("apiVersion") {
            return Self::from_manifest(mapping);
        }
        Self::from_data(mapping)
    }

    /// Builds the configuration from the files of a mounted ConfigMap: each entry is a key and
    /// the content of the file of that name. The caller leaves out Kubernetes' own `..data`
    /// entries.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Config, ConfigError> {
        let mapping = entries
            .into_iter()
            .map(|(key, content)| (Value::from(key), Value::from(content)))
            .collect();
        Self::from_data(mapping).map_err(ConfigError::in_own_file)
    }

    fn from_manifest(mapping: Mapping) -> Result<Config, ConfigError> {
        let mut data = None;
        for (key, value) in mapping {
            match key_str(&key, Location::Document)? {
                "kind" => match value.as_str() {
                    Some("ConfigMap") => {}
                    _ => return Err(ConfigError::NotAConfigMap(short(&value))),
                },
                "apiVersion" | "metadata" | "binaryData" | "immutable" => {}
                "data" => data = Some(value),
                other => return Err(unknown(other, Location::Document, MANIFEST_KEYS)),
            }
        }
        match data {
            None | Some(Value::Null) => Ok(Config::default()),
            Some(Value::Mapping(data)) => Self::from_data(data),
            Some(other) => Err(wrong_type("data", Location::Document, "a mapping", &other)),
        }
    }

    fn from_data(data: Mapping) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        for (key, value) in data {
            match key_str(&key, Location::Global)? {
                "max_image_size" => {
                    config.global.max_image_size =
                        size_limit("max_image_size", &value, Location::Global)?;
                }
                "tag_count_limit" => {
                    config.global.tag_count_limit =
                        count_limit("tag_count_limit", &value, Location::Global)?;
                }
                "image_count_limit" => {
                    config.global.image_count_limit =
                        count_limit("image_count_limit", &value, Location::Global)?;
                }
                "rules" => config.rules = rules(value)?,
                "namespace_quotas" => config.namespace_quotas = namespace_quotas(value)?,
                other => {
                    if !protection(&mut config.protections, other, &value, &Location::Global)? {
                        return Err(unknown(other, Location::Global, DATA_KEYS));
                    }
                }
            }
        }
        Ok(config)
    }

    /// The configuration as a `data`-keys YAML document that reads back to the same value.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        push_limits(&mut out, "", &self.global);
        push_protections(&mut out, "", &self.protections);
        if self.rules.is_empty() {
            out.push_str("rules: []\n");
        } else {
            out.push_str("rules:\n");
        }
        for rule in &self.rules {
            out.push_str(&format!("  - path: {}\n", quote(&rule.path)));
            push_protections(&mut out, "    ", &rule.protections);
            out.push_str("    limit:\n");
            push_limits(&mut out, "      ", &rule.limits);
        }
        push_quotas(&mut out, &self.namespace_quotas);
        out
    }
}

fn push_limits(out: &mut String, indent: &str, limits: &Limits) {
    let size = match limits.max_image_size {
        Limit::Max(size) => size.to_exact_string(),
        Limit::Unlimited => "unlimited".to_owned(),
    };
    let count = match limits.tag_count_limit {
        Limit::Max(count) => count.to_string(),
        Limit::Unlimited => "unlimited".to_owned(),
    };
    out.push_str(&format!("{indent}max_image_size: {}\n", quote(&size)));
    out.push_str(&format!("{indent}tag_count_limit: {}\n", quote(&count)));
    // Absent reads as unlimited: only a bound is written.
    if let Limit::Max(images) = limits.image_count_limit {
        out.push_str(&format!("{indent}image_count_limit: \"{images}\"\n"));
    }
}

fn push_quotas(out: &mut String, quotas: &[NamespaceQuota]) {
    if quotas.is_empty() {
        return;
    }
    out.push_str("namespace_quotas:\n");
    for quota in quotas {
        out.push_str(&format!("  - namespace: {}\n", quote(&quota.namespace)));
        let hard = &quota.hard;
        let mut lines = Vec::new();
        for (key, limit) in [
            ("repositories", hard.repositories),
            ("images", hard.images),
            ("tags", hard.tags),
        ] {
            if let Limit::Max(count) = limit {
                lines.push(format!("      {key}: \"{count}\"\n"));
            }
        }
        if let Limit::Max(size) = hard.storage {
            lines.push(format!("      storage: \"{}\"\n", size.to_exact_string()));
        }
        if lines.is_empty() {
            out.push_str("    hard: {}\n");
        } else {
            out.push_str("    hard:\n");
            out.push_str(&lines.concat());
        }
        if let Some(enforcement) = quota.enforcement {
            out.push_str(&format!("    enforcement: {enforcement}\n"));
        }
        if let Some(warn_at) = quota.warn_at {
            out.push_str(&format!("    warn_at: \"{warn_at}\"\n"));
        }
    }
}

fn push_protections(out: &mut String, indent: &str, protections: &Protections) {
    if let Some(read_only) = protections.read_only {
        out.push_str(&format!("{indent}read_only: {read_only}\n"));
    }
    if let Some(patterns) = &protections.immutable_tags {
        let list: Vec<String> = patterns.iter().map(|p| quote(p)).collect();
        out.push_str(&format!("{indent}immutable_tags: [{}]\n", list.join(", ")));
    }
    if let Some(exempt) = protections.exempt_signature_tags {
        out.push_str(&format!("{indent}exempt_signature_tags: {exempt}\n"));
    }
    if let Some(enforcement) = protections.enforcement {
        out.push_str(&format!("{indent}enforcement: {enforcement}\n"));
    }
    if let Some(warn_at) = protections.warn_at {
        out.push_str(&format!("{indent}warn_at: \"{warn_at}\"\n"));
    }
    if let Some(allow) = protections.allow_deleting_immutable_tags {
        out.push_str(&format!("{indent}allow_deleting_immutable_tags: {allow}\n"));
    }
}

/// Reads one of the optional protection keys into `protections`; `false` when `key` is not
/// one of them.
fn protection(
    protections: &mut Protections,
    key: &str,
    value: &Value,
    location: &Location,
) -> Result<bool, ConfigError> {
    match key {
        "read_only" => protections.read_only = Some(boolean("read_only", value, location)?),
        "exempt_signature_tags" => {
            protections.exempt_signature_tags =
                Some(boolean("exempt_signature_tags", value, location)?);
        }
        "immutable_tags" => {
            protections.immutable_tags = Some(patterns("immutable_tags", value, location)?);
        }
        "allow_deleting_immutable_tags" => {
            protections.allow_deleting_immutable_tags =
                Some(boolean("allow_deleting_immutable_tags", value, location)?);
        }
        "enforcement" => protections.enforcement = Some(enforcement(value, location)?),
        "warn_at" => protections.warn_at = Some(warn_at(value, location)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `rules` as a YAML list, or as a string holding one (the ConfigMap form `rules: |`).
fn rules(value: Value) -> Result<Vec<Rule>, ConfigError> {
    list_or_string(value, "rules", "a list of rules", |rule| Location::Rules {
        rule,
    })?
    .into_iter()
    .enumerate()
    .map(|(index, item)| rule(index + 1, item))
    .collect()
}

fn rule(position: usize, item: Value) -> Result<Rule, ConfigError> {
    let bare = Location::Rule {
        position,
        path: None,
    };
    let Value::Mapping(mapping) = item else {
        return Err(wrong_type(
            "rule",
            bare,
            "a mapping with path and limit",
            &item,
        ));
    };
    let path = match mapping.get("path") {
        None => return Err(missing("path", bare, "")),
        Some(Value::String(path)) => path.clone(),
        Some(other) => {
            return Err(wrong_type(
                "path",
                bare,
                "a regular expression string",
                other,
            ));
        }
    };
    let location = Location::Rule {
        position,
        path: Some(path.clone()),
    };
    let mut limit = None;
    let mut protections = Protections::default();
    for (key, value) in &mapping {
        match key_str(key, location.clone())? {
            "path" => {}
            "limit" => limit = Some(value),
            other => {
                if !protection(&mut protections, other, value, &location)? {
                    return Err(unknown(other, location, RULE_KEYS));
                }
            }
        }
    }
    let limit = match limit {
        None => return Err(missing("limit", location, BOTH_LIMITS)),
        Some(Value::Mapping(limit)) => limit,
        Some(other) => return Err(wrong_type("limit", location, "a mapping", other)),
    };
    let (mut size, mut count, mut images) = (None, None, Limit::Unlimited);
    for (key, value) in limit {
        match key_str(key, location.clone())? {
            "max_image_size" => size = Some(size_limit("max_image_size", value, location.clone())?),
            "tag_count_limit" => {
                count = Some(count_limit("tag_count_limit", value, location.clone())?);
            }
            "image_count_limit" => {
                images = count_limit("image_count_limit", value, location.clone())?;
            }
            other => return Err(unknown(other, location, LIMIT_KEYS)),
        }
    }
    let max_image_size =
        size.ok_or_else(|| missing("max_image_size", location.clone(), BOTH_LIMITS))?;
    let tag_count_limit = count.ok_or_else(|| missing("tag_count_limit", location, BOTH_LIMITS))?;
    Ok(Rule {
        path,
        limits: Limits {
            max_image_size,
            tag_count_limit,
            image_count_limit: images,
        },
        protections,
    })
}
