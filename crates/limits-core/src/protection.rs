//! Protections beside the two limits: a read-only switch, immutable tags, and signature tags
//! that neither count nor freeze (see [`SignatureTag`](crate::SignatureTag) for which ones).

use std::fmt;
use std::sync::Arc;

use regex::{RegexSet, RegexSetBuilder};
use serde::Serialize;

use crate::error::{ConfigError, Location, RegexError};
use crate::matcher::RULE_SIZE_LIMIT;
use crate::source::LimitSource;
use crate::{Enforcement, RepositoryName, WarnAt};

/// The optional protection keys, as written globally or in one rule. `None` means "not given":
/// in a rule, the global value applies; globally, the default does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Protections {
    /// `read_only`: refuse every write (default `false`).
    pub read_only: Option<bool>,
    /// `immutable_tags`: patterns of tags that may not be moved to another digest, nor removed
    /// by deleting their manifest (default none).
    pub immutable_tags: Option<Vec<String>>,
    /// `exempt_signature_tags`: signature, attestation and SBOM tags (`sha256-<hex>.sig`,
    /// `.att`, `.sbom`) whose digest names an image of the repository and whose manifest is the
    /// cosign artifact the suffix says neither count against the tag limit nor are immutable
    /// (default `true`; [`AppliedProtections::is_exempt`]).
    pub exempt_signature_tags: Option<bool>,
    /// `enforcement`: what happens to a push over a limit (default `deny`).
    pub enforcement: Option<Enforcement>,
    /// `warn_at`: the share of a limit from which an allowed push is warned about (default
    /// `off`).
    pub warn_at: Option<WarnAt>,
    /// `allow_deleting_immutable_tags`: let a manifest be deleted by an immutable tag, or by a
    /// digest an immutable tag points to (default `false`).
    pub allow_deleting_immutable_tags: Option<bool>,
}

impl Protections {
    /// Whether no key is given.
    pub fn is_empty(&self) -> bool {
        *self == Protections::default()
    }
}

/// The keys given, as `read_only true, immutable_tags [^v[0-9]+\.], exempt_signature_tags
/// false`; empty when none is.
impl fmt::Display for Protections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(read_only) = self.read_only {
            parts.push(format!("read_only {read_only}"));
        }
        if let Some(patterns) = &self.immutable_tags {
            parts.push(format!("immutable_tags [{}]", patterns.join(", ")));
        }
        if let Some(exempt) = self.exempt_signature_tags {
            parts.push(format!("exempt_signature_tags {exempt}"));
        }
        if let Some(enforcement) = self.enforcement {
            parts.push(format!("enforcement {enforcement}"));
        }
        if let Some(warn_at) = self.warn_at {
            parts.push(format!("warn_at {warn_at}"));
        }
        if let Some(allow) = self.allow_deleting_immutable_tags {
            parts.push(format!("allow_deleting_immutable_tags {allow}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Compiled `immutable_tags` patterns.
#[derive(Debug, Clone)]
pub struct TagPatterns {
    patterns: Vec<String>,
    set: RegexSet,
}

impl PartialEq for TagPatterns {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl Eq for TagPatterns {}

impl TagPatterns {
    /// Compiles the patterns of `immutable_tags` at `location`.
    pub(crate) fn new(patterns: &[String], location: &Location) -> Result<Self, ConfigError> {
        let invalid = |pattern: &str, e| ConfigError::InvalidPattern {
            key: "immutable_tags",
            location: location.clone(),
            pattern: pattern.to_owned(),
            source: RegexError(e),
        };
        for pattern in patterns {
            regex::RegexBuilder::new(pattern)
                .size_limit(RULE_SIZE_LIMIT)
                .build()
                .map_err(|e| invalid(pattern, e))?;
        }
        let set = RegexSetBuilder::new(patterns)
            .size_limit(RULE_SIZE_LIMIT.saturating_mul(patterns.len().max(1)))
            .build()
            .map_err(|e| invalid(&patterns.join(", "), e))?;
        Ok(Self {
            patterns: patterns.to_vec(),
            set,
        })
    }

    /// The compiled `immutable_tags` of one place (global, or one rule at `location`): `None`
    /// when the key is absent or lists no pattern.
    pub(crate) fn compile(
        protections: &Protections,
        location: Location,
    ) -> Result<Option<Arc<Self>>, ConfigError> {
        protections
            .immutable_tags
            .as_deref()
            .filter(|patterns| !patterns.is_empty())
            .map(|patterns| Self::new(patterns, &location).map(Arc::new))
            .transpose()
    }

    /// The first pattern `tag` matches (unanchored, as rule paths are).
    pub fn first_match(&self, tag: &str) -> Option<&str> {
        self.set
            .matches(tag)
            .iter()
            .next()
            .map(|i| self.patterns[i].as_str())
    }

    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// A protection's value for one repository and where it came from: the first matching rule
/// when that rule gives the key, else the global configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// The rule that gave it, or [`LimitSource::Global`] for the global key or the default.
    pub source: LimitSource,
}

/// The protections in force for one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedProtections {
    /// Whether every write is refused.
    pub read_only: Setting<bool>,
    /// Patterns of tags that may not move; `None` when there are none.
    pub immutable_tags: Setting<Option<Arc<TagPatterns>>>,
    /// Whether signature tags may be exempt from the tag limit and from immutability.
    pub exempt_signature_tags: Setting<bool>,
    /// What happens to a push over a limit.
    pub enforcement: Setting<Enforcement>,
    /// From which share of a limit an allowed push is warned about.
    pub warn_at: Setting<WarnAt>,
    /// Whether manifests that immutable tags name may be deleted.
    pub allow_deleting_immutable_tags: Setting<bool>,
}

/// The value of one protection key: the rule's when it gives one, else the global one, else
/// `default`.
fn setting<T: Clone>(
    rule: Option<(&T, &LimitSource)>,
    global: Option<&T>,
    default: T,
) -> Setting<T> {
    match (rule, global) {
        (Some((value, source)), _) => Setting {
            value: value.clone(),
            source: source.clone(),
        },
        (None, Some(value)) => Setting {
            value: value.clone(),
            source: LimitSource::Global,
        },
        (None, None) => Setting {
            value: default,
            source: LimitSource::Global,
        },
    }
}

impl AppliedProtections {
    /// The protections in force where `rule` is the first matching rule (its keys, its
    /// compiled `immutable_tags`, where it is), or no rule matched: each key from the rule when
    /// it gives the key, else the global one (`global`: the keys and their compiled
    /// `immutable_tags`), else the default.
    pub(crate) fn resolve(
        global: (&Protections, &Option<Arc<TagPatterns>>),
        rule: Option<(&Protections, &Option<Arc<TagPatterns>>, &LimitSource)>,
    ) -> Self {
        let (global, global_immutable) = global;
        let source = rule.map(|(_, _, source)| source);
        let rule_keys = rule.map(|(keys, _, _)| keys);
        let immutable_rule = rule
            .filter(|(keys, _, _)| keys.immutable_tags.is_some())
            .map(|(_, patterns, source)| (patterns, source));
        AppliedProtections {
            read_only: setting(
                rule_keys.and_then(|r| r.read_only.as_ref()).zip(source),
                global.read_only.as_ref(),
                false,
            ),
            immutable_tags: setting(
                immutable_rule,
                global.immutable_tags.as_ref().map(|_| global_immutable),
                None,
            ),
            exempt_signature_tags: setting(
                rule_keys
                    .and_then(|r| r.exempt_signature_tags.as_ref())
                    .zip(source),
                global.exempt_signature_tags.as_ref(),
                true,
            ),
            enforcement: setting(
                rule_keys.and_then(|r| r.enforcement.as_ref()).zip(source),
                global.enforcement.as_ref(),
                Enforcement::Deny,
            ),
            warn_at: setting(
                rule_keys.and_then(|r| r.warn_at.as_ref()).zip(source),
                global.warn_at.as_ref(),
                WarnAt::Off,
            ),
            allow_deleting_immutable_tags: setting(
                rule_keys
                    .and_then(|r| r.allow_deleting_immutable_tags.as_ref())
                    .zip(source),
                global.allow_deleting_immutable_tags.as_ref(),
                false,
            ),
        }
    }

    /// The immutable pattern `tag` matches, if any. A signature tag that
    /// [`is_exempt`](Self::is_exempt) is not immutable: the caller leaves it out.
    pub fn immutable_pattern(&self, tag: &str) -> Option<&str> {
        self.immutable_tags.value.as_deref()?.first_match(tag)
    }

    /// Whether a manifest delete must be checked against the immutable tags: the repository
    /// has `immutable_tags` patterns and `allow_deleting_immutable_tags` is not `true`. When
    /// this is `false`, no delete is refused for immutability and no fact needs reading.
    pub fn guards_deletes(&self) -> bool {
        self.immutable_tags.value.is_some() && !self.allow_deleting_immutable_tags.value
    }
}

/// A write refused because the repository is read-only.
///
/// ```
/// use limits_core::Policy;
///
/// let policy = Policy::from_yaml(r#"
/// rules:
///   - path: ^project-1/
///     read_only: true
///     limit: {max_image_size: 1GB, tag_count_limit: 10}
/// "#)?;
/// let refusal = policy.limits_for(&"project-1/app".parse()?).check_write().unwrap_err();
/// assert_eq!(
///     refusal.to_string(),
///     "repository project-1/app is read-only for maintenance (rule 1: ^project-1/): writes are refused until read_only is turned off"
/// );
/// assert!(policy.limits_for(&"other/app".parse()?).check_write().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnly {
    /// The repository, or `None` for a write whose repository could not be read.
    pub repository: Option<RepositoryName>,
    /// Where `read_only: true` came from.
    pub source: LimitSource,
}

impl fmt::Display for ReadOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = self.source.setting("read_only");
        match &self.repository {
            Some(repository) => write!(
                f,
                "repository {repository} is read-only for maintenance ({source}): writes are refused until read_only is turned off"
            ),
            None => write!(
                f,
                "the registry is read-only for maintenance ({source}) and this write names no repository the gateway can read"
            ),
        }
    }
}

/// A manifest push refused because it would move an immutable tag to another digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagMove {
    /// The repository.
    pub repository: RepositoryName,
    /// The tag.
    pub tag: String,
    /// The digest the tag points to now.
    pub current: String,
    /// The digest of the pushed manifest.
    pub pushed: String,
    /// The `immutable_tags` pattern the tag matches.
    pub pattern: String,
    /// Where the pattern came from.
    pub source: LimitSource,
}

/// The facts of a refused tag move, for the `detail` of an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagMoveDetail {
    /// The repository.
    pub repository: String,
    /// `immutable_tag`.
    pub check: &'static str,
    /// The tag.
    pub tag: String,
    /// The digest the tag points to now.
    pub current_digest: String,
    /// The digest of the pushed manifest.
    pub pushed_digest: String,
    /// The matching pattern.
    pub pattern: String,
    /// 1-based position of the rule that gave the pattern; `None` for the global key.
    pub rule: Option<usize>,
    /// The rule's path; `None` for the global key.
    pub rule_path: Option<String>,
}

impl TagMove {
    /// The facts as values.
    pub fn detail(&self) -> TagMoveDetail {
        let (rule, rule_path) = self.source.rule_and_path();
        TagMoveDetail {
            repository: self.repository.to_string(),
            check: "immutable_tag",
            tag: self.tag.clone(),
            current_digest: self.current.clone(),
            pushed_digest: self.pushed.clone(),
            pattern: self.pattern.clone(),
            rule,
            rule_path,
        }
    }
}

impl fmt::Display for TagMove {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tag {} of repository {} is immutable (pattern {} of {}): it points to {} and cannot be moved to {}; push a new tag instead",
            self.tag,
            self.repository,
            self.pattern,
            self.source.setting("immutable_tags"),
            self.current,
            self.pushed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_given_keys() {
        assert_eq!(Protections::default().to_string(), "");
        let all = Protections {
            read_only: Some(true),
            immutable_tags: Some(vec!["^v".to_owned(), "^r".to_owned()]),
            exempt_signature_tags: Some(false),
            enforcement: Some(crate::Enforcement::Audit),
            warn_at: Some(crate::WarnAt::Percent(80)),
            allow_deleting_immutable_tags: None,
        };
        assert_eq!(
            all.to_string(),
            "read_only true, immutable_tags [^v, ^r], exempt_signature_tags false, enforcement audit, warn_at 80%"
        );
    }

    #[test]
    fn display_shows_the_delete_opt_out() {
        let cases: &[(Option<bool>, &str)] = &[
            (None, ""),
            (Some(true), "allow_deleting_immutable_tags true"),
            (Some(false), "allow_deleting_immutable_tags false"),
        ];
        for (allow, expected) in cases {
            let protections = Protections {
                allow_deleting_immutable_tags: *allow,
                ..Protections::default()
            };
            assert_eq!(protections.to_string(), *expected, "{allow:?}");
        }
    }

    #[test]
    fn patterns_match_unanchored_first_wins() {
        let patterns = TagPatterns::new(
            &["^v[0-9]+\\.".to_owned(), "release".to_owned()],
            &Location::Global,
        )
        .expect("valid");
        let cases: &[(&str, Option<&str>)] = &[
            ("v1.0", Some("^v[0-9]+\\.")),
            ("v1", None),
            ("pre-release-2", Some("release")),
            ("latest", None),
        ];
        for (tag, expected) in cases {
            assert_eq!(patterns.first_match(tag), *expected, "{tag}");
        }
    }
}
