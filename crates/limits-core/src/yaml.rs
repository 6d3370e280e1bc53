//! Reading YAML values for the configuration: scalars, booleans, lists of patterns, and the
//! errors that name the key, where it was and what was found.

use serde_yaml::Value;

use crate::error::{ConfigError, Location, YamlError};
use crate::{ByteSize, Enforcement, Limit, WarnAt};

/// A scalar's text: a string as it is, a number as written (ConfigMap `data` values are
/// strings, but a YAML file may hold `warn_at: 80`).
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `enforcement`: `deny`, `warn` or `audit`.
pub(crate) fn enforcement(value: &Value, location: &Location) -> Result<Enforcement, ConfigError> {
    const EXPECTED: &str = "deny, warn or audit";
    scalar_text(value)
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| wrong_type("enforcement", location.clone(), EXPECTED, value))
}

/// `warn_at`: a percentage from 1% to 100%, or `off`.
pub(crate) fn warn_at(value: &Value, location: &Location) -> Result<WarnAt, ConfigError> {
    const EXPECTED: &str = "a percentage from 1% to 100% (such as 80%) or off";
    scalar_text(value)
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| wrong_type("warn_at", location.clone(), EXPECTED, value))
}

/// `true` or `false`, as a YAML boolean or as a string (ConfigMap `data` values are strings).
pub(crate) fn boolean(
    key: &'static str,
    value: &Value,
    location: &Location,
) -> Result<bool, ConfigError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(text) => match text.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(wrong_type(key, location.clone(), "true or false", value)),
        },
        other => Err(wrong_type(key, location.clone(), "true or false", other)),
    }
}

/// A list of regular expression strings, as a YAML list or a string holding one (the
/// ConfigMap form `immutable_tags: |`).
pub(crate) fn patterns(
    key: &'static str,
    value: &Value,
    location: &Location,
) -> Result<Vec<String>, ConfigError> {
    const EXPECTED: &str = "a list of regular expressions";
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(list) => list
            .iter()
            .map(|item| match item {
                Value::String(pattern) => Ok(pattern.clone()),
                other => Err(wrong_type(key, location.clone(), EXPECTED, other)),
            })
            .collect(),
        Value::String(text) => {
            let inner: Value = serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml {
                location: location.clone(),
                source: YamlError::in_string(e, text),
            })?;
            match inner {
                Value::Null => Ok(Vec::new()),
                Value::Sequence(_) => patterns(key, &inner, location),
                _ => Err(wrong_type(key, location.clone(), EXPECTED, value)),
            }
        }
        other => Err(wrong_type(key, location.clone(), EXPECTED, other)),
    }
}

/// A YAML double-quoted scalar.
pub(crate) fn quote(text: &str) -> String {
    // serde_json's string escaping is valid YAML double-quoted syntax.
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

pub(crate) fn is_unlimited(text: &str) -> bool {
    text.trim().eq_ignore_ascii_case("unlimited")
}

/// A string or number as text; other YAML types are refused.
pub(crate) fn scalar(
    key: &'static str,
    value: &Value,
    location: &Location,
    expected: &'static str,
) -> Result<String, ConfigError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        other => Err(wrong_type(key, location.clone(), expected, other)),
    }
}

pub(crate) fn key_str(key: &Value, location: Location) -> Result<&str, ConfigError> {
    key.as_str().ok_or_else(|| ConfigError::UnknownKey {
        key: short(key),
        location,
        expected: "a string key",
    })
}

pub(crate) fn unknown(key: &str, location: Location, expected: &'static str) -> ConfigError {
    ConfigError::UnknownKey {
        key: key.to_owned(),
        location,
        expected,
    }
}

pub(crate) fn missing(key: &'static str, location: Location, hint: &'static str) -> ConfigError {
    ConfigError::MissingKey {
        key,
        location,
        hint,
    }
}

/// The items of `key`, written as a YAML list or as a string holding one (the ConfigMap form
/// `key: |`); `what` is what the key takes, and `in_string` the location of a YAML error in
/// the string, from the position of the item it falls in.
pub(crate) fn list_or_string(
    value: Value,
    key: &str,
    what: &'static str,
    in_string: fn(Option<usize>) -> Location,
) -> Result<Vec<Value>, ConfigError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(list) => Ok(list),
        Value::String(text) => {
            let inner: Value = serde_yaml::from_str(&text).map_err(|e| {
                let source = YamlError::in_string(e, &text);
                let item = source
                    .line_column()
                    .and_then(|(line, column)| crate::position::item_at(&text, line, column));
                ConfigError::Yaml {
                    location: in_string(item),
                    source,
                }
            })?;
            match inner {
                Value::String(_) => Err(wrong_type(key, Location::Global, what, &inner)),
                other => list_or_string(other, key, what, in_string),
            }
        }
        other => Err(wrong_type(key, Location::Global, what, &other)),
    }
}

pub(crate) fn wrong_type(
    key: &str,
    location: Location,
    expected: &'static str,
    found: &Value,
) -> ConfigError {
    let found = match found {
        Value::Null => "nothing".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{}\"", truncate(s)),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    };
    ConfigError::WrongType {
        key: key.to_owned(),
        location,
        expected,
        found,
    }
}

/// A short rendering of a YAML value for messages.
pub(crate) fn short(value: &Value) -> String {
    match value {
        Value::String(s) => truncate(s),
        other => truncate(serde_yaml::to_string(other).unwrap_or_default().trim()),
    }
}

pub(crate) fn truncate(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

/// A size limit (`max_image_size`, a quota's `storage`): a size string or `unlimited`.
pub(crate) fn size_limit(
    key: &'static str,
    value: &Value,
    location: Location,
) -> Result<Limit<ByteSize>, ConfigError> {
    let text = scalar(
        key,
        value,
        &location,
        "a size such as \"100MB\" or \"unlimited\"",
    )?;
    if is_unlimited(&text) {
        return Ok(Limit::Unlimited);
    }
    text.parse::<ByteSize>()
        .map(Limit::Max)
        .map_err(|source| ConfigError::InvalidSize {
            key,
            location,
            value: text,
            source,
        })
}

/// A count limit (`tag_count_limit`, `image_count_limit`, a quota's counts): a whole number,
/// as a string or a YAML integer, or `unlimited`.
pub(crate) fn count_limit(
    key: &'static str,
    value: &Value,
    location: Location,
) -> Result<Limit<u64>, ConfigError> {
    let text = scalar(
        key,
        value,
        &location,
        "a whole number such as \"100\" or \"unlimited\"",
    )?;
    let trimmed = text.trim();
    if is_unlimited(trimmed) {
        return Ok(Limit::Unlimited);
    }
    let invalid = |reason| ConfigError::InvalidCount {
        key,
        location: location.clone(),
        value: text.clone(),
        reason,
    };
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    if trimmed.starts_with('-') {
        return Err(invalid("negative"));
    }
    if !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("not a whole number"));
    }
    trimmed
        .parse::<u64>()
        .map(Limit::Max)
        .map_err(|_| invalid("does not fit in 64 bits"))
}
