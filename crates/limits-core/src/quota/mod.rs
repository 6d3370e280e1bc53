//! Namespace quotas (`namespace_quotas`): how much a namespace, the first component of its
//! repositories' names, may hold in repositories, images, tags and storage; which quota applies
//! to a namespace (the first whose pattern matches); and the arithmetic of a push against it.

mod check;
mod config;
mod standing;

use std::fmt;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};

use crate::error::{ConfigError, Location, RegexError};
use crate::matcher::RULE_SIZE_LIMIT;
use crate::{ByteSize, Enforcement, Limit, WarnAt};

pub use check::{NamespaceUsage, PushDelta, QuotaDecision, QuotaDetail, QuotaKind};
pub(crate) use config::namespace_quotas;
pub use standing::QuotaUsage;

/// The namespace of a repository: the first component of its name (`team-a` for `team-a/app`
/// and `team-a/tools/app`); `None` for a name without a `/`, to which no namespace quota
/// applies.
///
/// ```
/// use limits_core::namespace_of;
///
/// assert_eq!(namespace_of("team-a/tools/app"), Some("team-a"));
/// assert_eq!(namespace_of("ubuntu"), None);
/// ```
pub fn namespace_of(repository: &str) -> Option<&str> {
    repository
        .split_once('/')
        .map(|(namespace, _)| namespace)
        .filter(|namespace| !namespace.is_empty())
}

/// The `hard` limits of a namespace quota; each key is optional and absent means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotaHard {
    /// `repositories`: repositories holding at least one tag.
    pub repositories: Limit<u64>,
    /// `images`: distinct images (top-level manifests, as for `image_count_limit`) in all the
    /// namespace's repositories.
    pub images: Limit<u64>,
    /// `tags`: the tags of all its repositories together.
    pub tags: Limit<u64>,
    /// `storage`: distinct blobs (configs and layers) of every manifest stored, each once.
    pub storage: Limit<ByteSize>,
}

impl QuotaHard {
    /// No limit at all.
    pub const UNLIMITED: QuotaHard = QuotaHard {
        repositories: Limit::Unlimited,
        images: Limit::Unlimited,
        tags: Limit::Unlimited,
        storage: Limit::Unlimited,
    };

    /// The limit of one kind, in its unit (bytes for storage).
    pub fn limit(&self, kind: QuotaKind) -> Limit<u64> {
        match kind {
            QuotaKind::Repositories => self.repositories,
            QuotaKind::Images => self.images,
            QuotaKind::Tags => self.tags,
            QuotaKind::Storage => self.storage.map(ByteSize::bytes),
        }
    }
}

impl Default for QuotaHard {
    fn default() -> Self {
        Self::UNLIMITED
    }
}

/// The bounded limits, as `repositories 20, images 200, tags 200, storage 50 GiB`; `no limit`
/// when every one is unlimited.
impl fmt::Display for QuotaHard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for kind in QuotaKind::ALL {
            if let Limit::Max(_) = self.limit(kind) {
                let value = match kind {
                    QuotaKind::Storage => self.storage.to_string(),
                    _ => self.limit(kind).to_string(),
                };
                parts.push(format!("{} {value}", kind.as_str()));
            }
        }
        if parts.is_empty() {
            return f.write_str("no limit");
        }
        f.write_str(&parts.join(", "))
    }
}

/// One entry of `namespace_quotas`, as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceQuota {
    /// The regular expression matched against namespace names (unanchored, as rule paths are).
    pub namespace: String,
    /// The limits.
    pub hard: QuotaHard,
    /// `enforcement`; absent, the global `enforcement` applies (default `deny`).
    pub enforcement: Option<Enforcement>,
    /// `warn_at`; absent, the global `warn_at` applies (default `off`).
    pub warn_at: Option<WarnAt>,
}

/// The namespace quota that applies: its 1-based position in `namespace_quotas` and its
/// pattern. Prints as `namespace quota 1: ^team-a$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuotaSource {
    /// 1-based position in `namespace_quotas`.
    pub position: usize,
    /// The quota's `namespace` pattern.
    pub pattern: Arc<str>,
}

impl fmt::Display for QuotaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "namespace quota {}: {}", self.position, self.pattern)
    }
}

/// The quota that applies to one namespace, with its enforcement resolved (the quota's own,
/// else the global one, else `deny`; the same for `warn_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedQuota {
    /// The namespace.
    pub namespace: String,
    /// Its limits.
    pub hard: QuotaHard,
    /// The quota that gave them.
    pub source: QuotaSource,
    /// What happens to a push over a limit.
    pub enforcement: Enforcement,
    /// From which share of a limit an allowed push is warned about.
    pub warn_at: WarnAt,
}

/// Compiled `namespace_quotas` patterns, tried in order (quota lists are short).
#[derive(Debug, Clone)]
pub(crate) struct QuotaMatcher {
    regexes: Vec<Regex>,
    patterns: Vec<Arc<str>>,
}

impl QuotaMatcher {
    /// Compiles each quota's pattern, bounded like a rule's.
    pub(crate) fn new(quotas: &[NamespaceQuota]) -> Result<Self, ConfigError> {
        let regexes = quotas
            .iter()
            .enumerate()
            .map(|(index, quota)| {
                RegexBuilder::new(&quota.namespace)
                    .size_limit(RULE_SIZE_LIMIT)
                    .build()
                    .map_err(|e| ConfigError::InvalidPattern {
                        key: "namespace",
                        location: Location::NamespaceQuota {
                            position: index + 1,
                            namespace: None,
                        },
                        pattern: quota.namespace.clone(),
                        source: RegexError(e),
                    })
            })
            .collect::<Result<_, _>>()?;
        let patterns = quotas
            .iter()
            .map(|q| Arc::from(q.namespace.as_str()))
            .collect();
        Ok(Self { regexes, patterns })
    }

    /// The index of the first quota whose pattern matches `namespace`, with its source.
    pub(crate) fn first_match(&self, namespace: &str) -> Option<(usize, QuotaSource)> {
        let index = self.regexes.iter().position(|r| r.is_match(namespace))?;
        Some((
            index,
            QuotaSource {
                position: index + 1,
                pattern: Arc::clone(&self.patterns[index]),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        let cases: &[(&str, Option<&str>)] = &[
            ("team-a/app", Some("team-a")),
            ("team-a/tools/app", Some("team-a")),
            ("app", None),
            ("/app", None),
            ("a/b", Some("a")),
        ];
        for (repository, namespace) in cases {
            assert_eq!(namespace_of(repository), *namespace, "{repository}");
        }
    }

    #[test]
    fn hard_display() {
        let hard = QuotaHard {
            repositories: Limit::Max(20),
            storage: Limit::Max(ByteSize::new(50 << 30)),
            ..QuotaHard::UNLIMITED
        };
        assert_eq!(hard.to_string(), "repositories 20, storage 50 GiB");
        assert_eq!(QuotaHard::UNLIMITED.to_string(), "no limit");
    }
}
