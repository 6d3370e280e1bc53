//! The compiled policy: which limits apply to a repository.

use std::fmt;
use std::sync::Arc;

use regex::{RegexBuilder, RegexSet, RegexSetBuilder};

use crate::error::{ConfigError, RegexError};
use crate::{Config, Limits, RepositoryName, Rule};

/// Compiled size allowed for one rule's pattern: plenty for any real path rule, small enough
/// that a hostile pattern such as `(a{1000}){1000}` is refused instead of exhausting memory.
pub const RULE_SIZE_LIMIT: usize = 1 << 20;
/// Compiled size allowed for all rules together.
pub const RULES_SIZE_LIMIT: usize = 256 << 20;

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

impl fmt::Display for LimitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitSource::Global => f.write_str("global limit"),
            LimitSource::Rule { position, path } => write!(f, "rule {position}: {path}"),
        }
    }
}

/// A configuration compiled for lookups: global limits plus ordered rules, first match wins.
///
/// ```
/// use limits_core::{LimitSource, Policy};
///
/// let policy = Policy::from_yaml(r#"
/// max_image_size: "100MB"
/// tag_count_limit: "100"
/// rules: |
///   - path: ^project-1/.*
///     limit:
///       max_image_size: "20MB"
///       tag_count_limit: "3"
/// "#)?;
/// let applied = policy.limits_for(&"project-1/app".parse()?);
/// assert_eq!(applied.limits.max_image_size.to_string(), "20 MB");
/// assert_eq!(applied.source.to_string(), "rule 1: ^project-1/.*");
/// assert_eq!(policy.limits_for(&"other/app".parse()?).source, LimitSource::Global);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Policy {
    config: Config,
    paths: Vec<Arc<str>>,
    set: RegexSet,
}

/// The limits that apply to one repository, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedLimits {
    /// The repository.
    pub repository: RepositoryName,
    /// Its limits.
    pub limits: Limits,
    /// The rule that gave them, or the global limits.
    pub source: LimitSource,
}

impl Policy {
    /// Compiles a configuration. Fails on a pattern that is not a valid regular expression or
    /// that compiles larger than [`RULE_SIZE_LIMIT`].
    pub fn new(config: Config) -> Result<Policy, ConfigError> {
        for (index, rule) in config.rules.iter().enumerate() {
            RegexBuilder::new(&rule.path)
                .size_limit(RULE_SIZE_LIMIT)
                .build()
                .map_err(|e| ConfigError::InvalidRegex {
                    position: index + 1,
                    path: rule.path.clone(),
                    source: RegexError(e),
                })?;
        }
        let set = RegexSetBuilder::new(config.rules.iter().map(|r| &r.path))
            .size_limit(RULES_SIZE_LIMIT)
            .build()
            .map_err(|e| ConfigError::RulesTooLarge {
                count: config.rules.len(),
                limit_bytes: RULES_SIZE_LIMIT,
                source: RegexError(e),
            })?;
        let paths = config
            .rules
            .iter()
            .map(|r| Arc::from(r.path.as_str()))
            .collect();
        Ok(Policy { config, paths, set })
    }

    /// Reads and compiles a YAML document: the ConfigMap's `data` keys or a whole ConfigMap.
    pub fn from_yaml(text: &str) -> Result<Policy, ConfigError> {
        Self::new(Config::from_yaml(text)?)
    }

    /// Reads and compiles the files of a mounted ConfigMap directory (key, file content).
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Policy, ConfigError> {
        Self::new(Config::from_entries(entries)?)
    }

    /// The configuration this policy was compiled from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The global limits.
    pub fn global(&self) -> &Limits {
        &self.config.global
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.config.rules
    }

    /// The limits for `repository`: those of the first rule whose pattern matches its name, or
    /// the global limits.
    pub fn limits_for(&self, repository: &RepositoryName) -> AppliedLimits {
        let (limits, source) = match self.first_match(repository.as_str()) {
            Some(index) => (
                self.config.rules[index].limits,
                LimitSource::Rule {
                    position: index + 1,
                    path: Arc::clone(&self.paths[index]),
                },
            ),
            None => (self.config.global, LimitSource::Global),
        };
        AppliedLimits {
            repository: repository.clone(),
            limits,
            source,
        }
    }

    /// Index of the first rule that matches `name`.
    fn first_match(&self, name: &str) -> Option<usize> {
        if self.paths.is_empty() {
            return None;
        }
        self.set.matches(name).iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ByteSize, Limit};
    use proptest::prelude::*;

    fn rule(path: &str, tags: u64) -> Rule {
        Rule {
            path: path.to_owned(),
            limits: Limits {
                max_image_size: Limit::Max(ByteSize::new(1)),
                tag_count_limit: Limit::Max(tags),
            },
        }
    }

    fn policy(paths: &[&str]) -> Policy {
        let rules = paths
            .iter()
            .enumerate()
            .map(|(i, p)| rule(p, i as u64))
            .collect();
        Policy::new(Config {
            global: Limits::DEFAULT,
            rules,
        })
        .expect("valid rules")
    }

    #[test]
    fn first_match_wins() {
        let p = policy(&[
            "^project-1/.*",
            "^project-2/big-image/.*",
            "^project-2/.*",
            "app$",
        ]);
        let cases: &[(&str, Option<usize>)] = &[
            ("project-1/app", Some(1)),
            ("project-2/big-image/x", Some(2)),
            ("project-2/big-image", Some(3)),
            ("project-2/small", Some(3)),
            ("project-3/app", Some(4)),
            ("project-3/web", None),
            ("x/project-1/a", None),
        ];
        for (name, position) in cases {
            let applied = p.limits_for(&name.parse().expect("valid name"));
            let got = match applied.source {
                LimitSource::Rule { position, .. } => Some(position),
                LimitSource::Global => None,
            };
            assert_eq!(got, *position, "{name}");
        }
    }

    #[test]
    fn unanchored_like_go() {
        let p = policy(&["project-1"]);
        let applied = p.limits_for(&"team/project-1/app".parse().expect("valid name"));
        assert_eq!(applied.source.to_string(), "rule 1: project-1");
    }

    #[test]
    fn refuses_bad_and_huge_patterns() {
        let cases: &[(&str, &str)] = &[
            (
                "^project-1/(",
                "invalid path \"^project-1/(\" in rule 2: regex parse error: ^project-1/( ^ error: unclosed group",
            ),
            (
                "(a{1000}){1000}",
                "invalid path \"(a{1000}){1000}\" in rule 2: Compiled regex exceeds size limit of 1048576 bytes.",
            ),
        ];
        for (path, message) in cases {
            let rules = vec![rule("ok", 1), rule(path, 2)];
            let err = Policy::new(Config {
                global: Limits::DEFAULT,
                rules,
            })
            .expect_err(path);
            assert_eq!(err.to_string(), *message);
        }
    }

    proptest! {
        #[test]
        fn set_agrees_with_ordered_scan(
            prefixes in prop::collection::vec("[a-c]{1,3}", 0..20),
            anchored in prop::collection::vec(any::<bool>(), 20),
            names in prop::collection::vec("[a-c]{1,4}(/[a-c]{1,3}){0,2}", 1..20),
        ) {
            let paths: Vec<String> = prefixes
                .iter()
                .zip(&anchored)
                .map(|(p, a)| if *a { format!("^{p}") } else { p.clone() })
                .collect();
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            let p = policy(&refs);
            let scan: Vec<regex::Regex> = paths.iter().map(|p| regex::Regex::new(p).expect("valid")).collect();
            for name in &names {
                let expected = scan.iter().position(|r| r.is_match(name)).map(|i| i + 1);
                let got = match p.limits_for(&name.parse().expect("valid name")).source {
                    LimitSource::Rule { position, .. } => Some(position),
                    LimitSource::Global => None,
                };
                prop_assert_eq!(got, expected, "{}", name);
            }
        }
    }
}
