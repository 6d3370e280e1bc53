//! Configuration errors.

use std::fmt;
use std::sync::Arc;

use crate::SizeError;
use crate::position::{self, Position};

/// Where in a configuration an error was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// The top level of the document.
    Document,
    /// The global limits (the `data` keys).
    Global,
    /// The YAML text of `rules` given as a string (the ConfigMap form `rules: |`), with the
    /// 1-based position of the rule the error is in, when it is in one.
    Rules {
        /// 1-based position in `rules`.
        rule: Option<usize>,
    },
    /// The YAML text of `namespace_quotas` given as a string, with the 1-based position of the
    /// quota the error is in, when it is in one.
    NamespaceQuotas {
        /// 1-based position in `namespace_quotas`.
        quota: Option<usize>,
    },
    /// A namespace quota, by its 1-based position, with its `namespace` pattern when it has
    /// one.
    NamespaceQuota {
        /// 1-based position in `namespace_quotas`.
        position: usize,
        /// The quota's `namespace` pattern, when it has a string one.
        namespace: Option<Arc<str>>,
    },
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
            Location::Rules { rule: Some(rule) } => write!(f, "rule {rule} of rules"),
            Location::Rules { rule: None } => f.write_str("rules"),
            Location::NamespaceQuotas { quota: Some(quota) } => {
                write!(f, "namespace quota {quota} of namespace_quotas")
            }
            Location::NamespaceQuotas { quota: None } => f.write_str("namespace_quotas"),
            Location::NamespaceQuota {
                position,
                namespace: Some(namespace),
            } => write!(f, "namespace quota {position} ({namespace})"),
            Location::NamespaceQuota {
                position,
                namespace: None,
            } => write!(f, "namespace quota {position}"),
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

/// The YAML parser's own error, kept out of the public API, with its positions put right where
/// the parser's are not: a key that repeats an earlier one (the parser names the mapping, or
/// nothing at the top), and an error inside a string the file holds (the parser counts lines
/// from the string's start; see [`ConfigError::Yaml`]).
#[derive(Debug)]
pub struct YamlError {
    source: serde_yaml::Error,
    /// The key that repeats, when that is the error, and where.
    duplicate: Option<(String, Position)>,
    /// The text parsed is a string the file holds.
    in_string: bool,
    /// Lines and columns to add to the positions of an error in a string to get the file's.
    shift: Option<(usize, usize)>,
}

impl YamlError {
    /// The parser's error on `text`, a whole file.
    pub(crate) fn new(source: serde_yaml::Error, text: &str) -> Self {
        Self {
            duplicate: position::duplicate_key(text),
            source,
            in_string: false,
            shift: None,
        }
    }

    /// The parser's error on `text`, a string the file holds: its positions count from the
    /// string's start until [`YamlError::place`] puts them in the file.
    pub(crate) fn in_string(source: serde_yaml::Error, text: &str) -> Self {
        Self {
            in_string: true,
            ..Self::new(source, text)
        }
    }

    /// A parser's error whose positions are right as they are.
    pub(crate) fn plain(source: serde_yaml::Error) -> Self {
        Self {
            source,
            duplicate: None,
            in_string: false,
            shift: None,
        }
    }

    /// Where the error belongs, as counted in the text parsed: the construct the parser was
    /// reading when it failed (`while parsing a flow mapping at line 4 column 10`), else where
    /// it failed.
    pub(crate) fn line_column(&self) -> Option<(usize, usize)> {
        if let Some((_, at)) = &self.duplicate {
            return Some((at.line, at.column));
        }
        positions(&self.source.to_string())
            .last()
            .copied()
            .or_else(|| self.source.location().map(|l| (l.line(), l.column())))
    }

    /// Puts an error in a string into the file: the string's line 1 is the file's line
    /// `first_line`, and its columns are indented by `indent` (a literal block scalar).
    pub(crate) fn place(&mut self, first_line: usize, indent: usize) {
        if self.in_string {
            self.shift = Some((first_line - 1, indent));
        }
    }

    /// Takes the string's positions as the file's: the string is a file of its own (a key of
    /// a mounted ConfigMap directory).
    pub(crate) fn own_file(&mut self) {
        if self.shift.is_none() {
            self.shift = Some((0, 0));
        }
    }
}

/// The pattern of a position in the parser's messages.
const AT_LINE: &str = r"at line (\d+) column (\d+)";

/// Every position a message names, in order.
fn positions(message: &str) -> Vec<(usize, usize)> {
    let Ok(pattern) = regex::Regex::new(AT_LINE) else {
        return Vec::new();
    };
    pattern
        .captures_iter(message)
        .filter_map(|c| Some((c[1].parse().ok()?, c[2].parse().ok()?)))
        .collect()
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = match &self.duplicate {
            Some((key, at)) => format!(
                "duplicate entry with key {key:?} at line {} column {}",
                at.line, at.column
            ),
            None => self.source.to_string(),
        };
        if !self.in_string {
            return f.write_str(&message);
        }
        let Ok(pattern) = regex::Regex::new(AT_LINE) else {
            return f.write_str(&message);
        };
        let placed = pattern.replace_all(&message, |c: &regex::Captures<'_>| {
            let (line, column) = (
                c[1].parse::<usize>().unwrap_or(0),
                c[2].parse::<usize>().unwrap_or(0),
            );
            match self.shift {
                Some((lines, columns)) => {
                    format!("at line {} column {}", line + lines, column + columns)
                }
                None => format!("at line {line} column {column} of the string"),
            }
        });
        f.write_str(&placed)
    }
}

// No `source()`: the parser's error, with its own positions, is what this one corrects.
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

impl ConfigError {
    /// Puts the position of an error inside the `rules` or `namespace_quotas` string of `text`
    /// (a literal block, `rules: |`) into the file; positions in other strings are left as
    /// counted in the string.
    pub(crate) fn placed_in(mut self, text: &str) -> Self {
        if let ConfigError::Yaml { location, source } = &mut self {
            let key = match location {
                Location::Rules { .. } => "rules",
                Location::NamespaceQuotas { .. } => "namespace_quotas",
                _ => return self,
            };
            let block = [&[key][..], &["data", key][..]]
                .iter()
                .find_map(|path| position::value_at(text, path))
                .and_then(|at| position::literal_block(text, at));
            if let Some((first_line, indent)) = block {
                source.place(first_line, indent);
            }
        }
        self
    }

    /// Takes positions inside the `rules` (or `namespace_quotas`) string as that file's (a
    /// mounted ConfigMap directory holds each key in a file of its own).
    pub(crate) fn in_own_file(mut self) -> Self {
        if let ConfigError::Yaml {
            location: Location::Rules { .. } | Location::NamespaceQuotas { .. },
            source,
        } = &mut self
        {
            source.own_file();
        }
        self
    }
}

/// Why a configuration was refused.
///
/// Every message names the key, where it was (global limits or rule position and path) and the
/// offending value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not YAML, or `rules` holds a string that is not YAML. For an error inside
    /// `rules: |`, the location names the rule and the position is the file's, read through
    /// [`Config::from_yaml`](crate::Config::from_yaml); through
    /// [`Config::from_entries`](crate::Config::from_entries), the `rules` file's.
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
