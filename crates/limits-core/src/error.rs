//! Configuration errors.

use std::fmt;

use crate::SizeError;

/// Where in a configuration an error was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// The top level of the document.
    Document,
    /// The global limits (the `data` keys).
    Global,
    /// A rule, by its 1-based position, with its `path` when it has one.
    Rule {
        /// 1-based position in `rules`.
        position: usize,
        /// The rule's `path`, when it has a string one.
        path: Option<String>,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Document => f.write_str("the configuration"),
            Location::Global => f.write_str("the global limits"),
            Location::Rule {
                position,
                path: Some(path),
            } => write!(f, "rule {position} ({path})"),
            Location::Rule {
                position,
                path: None,
            } => write!(f, "rule {position}"),
        }
    }
}

/// The YAML parser's own error, kept out of the public API.
#[derive(Debug)]
pub struct YamlError(pub(crate) serde_yaml::Error);

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for YamlError {}

/// The regex compiler's own error, kept out of the public API.
#[derive(Debug)]
pub struct RegexError(pub(crate) regex::Error);

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The compiler's message spans several lines; keep it on one.
        let text = self.0.to_string();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        f.write_str(&lines.join(" "))
    }
}

impl std::error::Error for RegexError {}

/// Why a configuration was refused.
///
/// Every message names the key, where it was (global limits or rule position and path) and the
/// offending value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not YAML, or `rules` holds a string that is not YAML.
    #[error("invalid YAML in {location}: {source}")]
    Yaml {
        /// Where the text came from.
        location: Location,
        /// The parser's error.
        #[source]
        source: YamlError,
    },
    /// A manifest whose `kind` is not `ConfigMap`.
    #[error("expected kind ConfigMap, found \"{0}\"")]
    NotAConfigMap(String),
    /// A key the configuration does not know, usually a typo.
    #[error("unknown key \"{key}\" in {location} (expected {expected})")]
    UnknownKey {
        /// The unknown key.
        key: String,
        /// Where it was.
        location: Location,
        /// The keys allowed there.
        expected: &'static str,
    },
    /// A required key is missing.
    #[error("missing key \"{key}\" in {location}{hint}")]
    MissingKey {
        /// The missing key.
        key: &'static str,
        /// Where it was expected.
        location: Location,
        /// Why it is required, with a leading separator, or empty.
        hint: &'static str,
    },
    /// A value of the wrong YAML type.
    #[error("invalid {key} in {location}: expected {expected}, found {found}")]
    WrongType {
        /// The key whose value has the wrong type.
        key: String,
        /// Where it was.
        location: Location,
        /// What the key takes.
        expected: &'static str,
        /// What was found, with its value where short.
        found: String,
    },
    /// A size that does not parse.
    #[error("invalid {key} \"{value}\" in {location}: {source}")]
    InvalidSize {
        /// The key.
        key: &'static str,
        /// Where it was.
        location: Location,
        /// The refused value.
        value: String,
        /// Why it was refused.
        #[source]
        source: SizeError,
    },
    /// A tag count that is not a non-negative whole number.
    #[error("invalid {key} \"{value}\" in {location}: {reason}")]
    InvalidCount {
        /// The key.
        key: &'static str,
        /// Where it was.
        location: Location,
        /// The refused value.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A rule whose `path` is not a valid regular expression, or is too large to compile.
    #[error("invalid path \"{path}\" in rule {position}: {source}")]
    InvalidRegex {
        /// 1-based position of the rule.
        position: usize,
        /// The refused pattern.
        path: String,
        /// The compiler's error.
        #[source]
        source: RegexError,
    },
    /// A tag pattern (`immutable_tags`) that is not a valid regular expression, or is too
    /// large to compile.
    #[error("invalid {key} pattern \"{pattern}\" in {location}: {source}")]
    InvalidPattern {
        /// The key.
        key: &'static str,
        /// Where it was.
        location: Location,
        /// The refused pattern.
        pattern: String,
        /// The compiler's error.
        #[source]
        source: RegexError,
    },
    /// All rules together are too large to compile into one matcher.
    #[error(
        "the {count} rules together exceed the compiled size limit of {limit_bytes} bytes: {source}"
    )]
    RulesTooLarge {
        /// How many rules there are.
        count: usize,
        /// The compiled size limit.
        limit_bytes: usize,
        /// The compiler's error.
        #[source]
        source: RegexError,
    },
}
