//! Where a repository's limits and protections came from: the first matching rule, or the
//! global configuration.

use std::fmt;
use std::sync::Arc;

/// Where a repository's limits came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitSource {
    /// No rule matched; the global limits apply.
    Global,
    /// The first matching rule.
    Rule {
        /// 1-based position of the rule in `rules`.
        position: usize,
        /// The rule's pattern.
        path: Arc<str>,
    },
}

impl LimitSource {
    /// Where the setting `key` came from, for messages: `rule 1: ^p/` or `global key`.
    pub(crate) fn setting(&self, key: &str) -> String {
        match self {
            LimitSource::Global => format!("global {key}"),
            rule => rule.to_string(),
        }
    }

    /// The rule's 1-based position and path, for the `detail` of an answer; `None` for the
    /// global configuration.
    pub(crate) fn rule_and_path(&self) -> (Option<usize>, Option<String>) {
        match self {
            LimitSource::Global => (None, None),
            LimitSource::Rule { position, path } => (Some(*position), Some(path.to_string())),
        }
    }
}

impl fmt::Display for LimitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitSource::Global => f.write_str("global limit"),
            LimitSource::Rule { position, path } => write!(f, "rule {position}: {path}"),
        }
    }
}
