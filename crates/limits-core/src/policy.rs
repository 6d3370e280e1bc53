//! The compiled policy: which limits apply to a repository.

use std::sync::Arc;

use crate::deletion::{DeleteTarget, ImmutableDelete};
use crate::error::{ConfigError, Location};
use crate::matcher::Matcher;
use crate::protection::{AppliedProtections, ReadOnly, TagMove, TagPatterns};
use crate::quota::QuotaMatcher;
use crate::source::LimitSource;
use crate::{AppliedQuota, Config, Limits, NamespaceQuota, RepositoryName, Rule, namespace_of};

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
/// assert_eq!(applied.limits.max_image_size.to_string(), "20 MiB");
/// assert_eq!(applied.source.to_string(), "rule 1: ^project-1/.*");
/// assert_eq!(policy.limits_for(&"other/app".parse()?).source, LimitSource::Global);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Policy {
    config: Config,
    paths: Vec<Arc<str>>,
    matcher: Matcher,
    /// Compiled `immutable_tags`: the global ones, and each rule's own.
    global_immutable: Option<Arc<TagPatterns>>,
    rule_immutable: Vec<Option<Arc<TagPatterns>>>,
    /// Compiled `namespace_quotas` patterns.
    quotas: QuotaMatcher,
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
    /// The protections in force: each from the first matching rule when it gives the key,
    /// else the global value.
    pub protections: AppliedProtections,
}

impl AppliedLimits {
    /// Refuses a write while the repository is read-only.
    pub fn check_write(&self) -> Result<(), ReadOnly> {
        if self.protections.read_only.value {
            return Err(ReadOnly {
                repository: Some(self.repository.clone()),
                source: self.protections.read_only.source.clone(),
            });
        }
        Ok(())
    }

    /// Refuses moving `tag` from the digest it points to (`current`, `None` when the tag does
    /// not exist) to `pushed` when the tag matches an `immutable_tags` pattern. Re-pushing the
    /// same digest and creating the tag are allowed.
    ///
    /// ```
    /// use limits_core::Policy;
    ///
    /// let policy = Policy::from_yaml("immutable_tags: ['^v[0-9]+\\.']")?;
    /// let applied = policy.limits_for(&"team/app".parse()?);
    /// assert!(applied.check_tag_move("v1.0", Some("sha256:aa"), "sha256:aa").is_ok());
    /// assert!(applied.check_tag_move("v1.0", None, "sha256:bb").is_ok());
    /// assert!(applied.check_tag_move("latest", Some("sha256:aa"), "sha256:bb").is_ok());
    /// let refused = applied.check_tag_move("v1.0", Some("sha256:aa"), "sha256:bb").unwrap_err();
    /// assert_eq!(
    ///     refused.to_string(),
    ///     "tag v1.0 of repository team/app is immutable (pattern ^v[0-9]+\\. of global immutable_tags): it points to sha256:aa and cannot be moved to sha256:bb; push a new tag instead"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_tag_move(
        &self,
        tag: &str,
        current: Option<&str>,
        pushed: &str,
    ) -> Result<(), Box<TagMove>> {
        let Some(pattern) = self.protections.immutable_pattern(tag) else {
            return Ok(());
        };
        match current {
            Some(current) if current != pushed => Err(Box::new(TagMove {
                repository: self.repository.clone(),
                tag: tag.to_owned(),
                current: current.to_owned(),
                pushed: pushed.to_owned(),
                pattern: pattern.to_owned(),
                source: self.protections.immutable_tags.source.clone(),
            })),
            _ => Ok(()),
        }
    }

    /// Refuses a manifest delete that would remove an immutable tag: by a tag an
    /// `immutable_tags` pattern matches, or by a digest such a tag points to, unless
    /// `allow_deleting_immutable_tags: true`. `tags` are the facts for a delete by digest: tags
    /// of the repository with the digests they point to (only those matching a pattern
    /// matter); a delete by tag needs none. See [`ImmutableDelete`] for an example.
    ///
    /// ```
    /// use limits_core::{DeleteTarget, Policy};
    ///
    /// let policy = Policy::from_yaml("immutable_tags: ['^v']\nallow_deleting_immutable_tags: false")?;
    /// let applied = policy.limits_for(&"team/app".parse()?);
    /// let tags = [("v1", "sha256:aa"), ("latest", "sha256:bb")];
    /// assert!(applied.check_manifest_delete(DeleteTarget::Digest("sha256:aa"), tags).is_err());
    /// assert!(applied.check_manifest_delete(DeleteTarget::Digest("sha256:bb"), tags).is_ok());
    /// assert!(applied.check_manifest_delete(DeleteTarget::Tag("v1"), []).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_manifest_delete<'t>(
        &self,
        target: DeleteTarget<'_>,
        tags: impl IntoIterator<Item = (&'t str, &'t str)>,
    ) -> Result<(), Box<ImmutableDelete>> {
        let protections = &self.protections;
        if !protections.guards_deletes() {
            return Ok(());
        }
        let (reference, tag, pattern, digest) = match target {
            DeleteTarget::Tag(tag) => match protections.immutable_pattern(tag) {
                Some(pattern) => (tag, tag, pattern, None),
                None => return Ok(()),
            },
            DeleteTarget::Digest(digest) => {
                let found = tags
                    .into_iter()
                    .filter(|(_, points_to)| *points_to == digest)
                    .find_map(|(tag, _)| Some((tag, protections.immutable_pattern(tag)?)));
                match found {
                    Some((tag, pattern)) => (digest, tag, pattern, Some(digest)),
                    None => return Ok(()),
                }
            }
        };
        Err(Box::new(ImmutableDelete {
            repository: self.repository.clone(),
            reference: reference.to_owned(),
            tag: tag.to_owned(),
            digest: digest.map(str::to_owned),
            pattern: pattern.to_owned(),
            source: protections.immutable_tags.source.clone(),
        }))
    }
}

impl Policy {
    /// Compiles a configuration. Fails on a pattern that is not a valid regular expression or
    /// that compiles larger than [`RULE_SIZE_LIMIT`](crate::RULE_SIZE_LIMIT).
    pub fn new(config: Config) -> Result<Policy, ConfigError> {
        let matcher = Matcher::new(config.rules.iter().map(|rule| rule.path.as_str()))?;
        let paths = config
            .rules
            .iter()
            .map(|r| Arc::from(r.path.as_str()))
            .collect();
        let global_immutable = TagPatterns::compile(&config.protections, Location::Global)?;
        let rule_immutable = config
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                TagPatterns::compile(
                    &rule.protections,
                    Location::Rule {
                        position: index + 1,
                        path: Some(rule.path.clone()),
                    },
                )
            })
            .collect::<Result<_, _>>()?;
        let quotas = QuotaMatcher::new(&config.namespace_quotas)?;
        Ok(Policy {
            config,
            paths,
            matcher,
            global_immutable,
            rule_immutable,
            quotas,
        })
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
        let index = self.first_match(repository.as_str());
        let (limits, source) = match index {
            Some(index) => (
                self.config.rules[index].limits,
                LimitSource::Rule {
                    position: index + 1,
                    path: Arc::clone(&self.paths[index]),
                },
            ),
            None => (self.config.global, LimitSource::Global),
        };
        let rule = index.map(|i| {
            let rule = &self.config.rules[i];
            (&rule.protections, &self.rule_immutable[i], &source)
        });
        let global = (&self.config.protections, &self.global_immutable);
        let protections = AppliedProtections::resolve(global, rule);
        AppliedLimits {
            repository: repository.clone(),
            limits,
            source,
            protections,
        }
    }

    /// The namespace quotas, in order.
    pub fn namespace_quotas(&self) -> &[NamespaceQuota] {
        &self.config.namespace_quotas
    }

    /// The namespace quota for `repository`'s namespace (see [`namespace_of`]); `None` for a
    /// name without a `/`, or when no quota's pattern matches the namespace.
    ///
    /// ```
    /// use limits_core::{Enforcement, Policy};
    ///
    /// let policy = Policy::from_yaml(r#"
    /// enforcement: warn
    /// namespace_quotas:
    ///   - namespace: ^team-a$
    ///     hard: {repositories: "20", images: "200", tags: "200", storage: 50GB}
    ///     enforcement: deny
    ///   - namespace: ^team-
    ///     hard: {tags: 1000}
    /// "#)?;
    /// let quota = policy.quota_for(&"team-a/tools/app".parse()?).expect("quota 1");
    /// assert_eq!(quota.source.to_string(), "namespace quota 1: ^team-a$");
    /// assert_eq!(quota.hard.to_string(), "repositories 20, images 200, tags 200, storage 50 GiB");
    /// assert_eq!(quota.enforcement, Enforcement::Deny);
    /// let other = policy.quota_for(&"team-b/app".parse()?).expect("quota 2");
    /// assert_eq!((other.source.position, other.enforcement), (2, Enforcement::Warn));
    /// assert!(policy.quota_for(&"ubuntu".parse()?).is_none());
    /// assert!(policy.quota_for(&"library/ubuntu".parse()?).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn quota_for(&self, repository: &RepositoryName) -> Option<AppliedQuota> {
        self.quota_for_namespace(namespace_of(repository.as_str())?)
    }

    /// The first namespace quota whose pattern matches `namespace` (unanchored, as rule paths
    /// are), with its enforcement and `warn_at` resolved: the quota's own, else the global
    /// ones, else the defaults.
    pub fn quota_for_namespace(&self, namespace: &str) -> Option<AppliedQuota> {
        let (index, source) = self.quotas.first_match(namespace)?;
        let quota = &self.config.namespace_quotas[index];
        let global = &self.config.protections;
        Some(AppliedQuota {
            namespace: namespace.to_owned(),
            hard: quota.hard,
            source,
            enforcement: quota.enforcement.or(global.enforcement).unwrap_or_default(),
            warn_at: quota.warn_at.or(global.warn_at).unwrap_or_default(),
        })
    }

    /// Whether any repository is read-only: the global `read_only` or any rule's. A write whose
    /// repository cannot be read is refused while this holds.
    pub fn any_read_only(&self) -> Option<ReadOnly> {
        if self.config.protections.read_only == Some(true) {
            return Some(ReadOnly {
                repository: None,
                source: LimitSource::Global,
            });
        }
        self.config
            .rules
            .iter()
            .position(|rule| rule.protections.read_only == Some(true))
            .map(|index| ReadOnly {
                repository: None,
                source: LimitSource::Rule {
                    position: index + 1,
                    path: Arc::clone(&self.paths[index]),
                },
            })
    }

    /// Index of the first rule that matches `name`.
    fn first_match(&self, name: &str) -> Option<usize> {
        if self.paths.is_empty() {
            return None;
        }
        self.matcher.first_match(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ByteSize, Limit, Protections};
    use proptest::prelude::*;

    fn rule(path: &str, tags: u64) -> Rule {
        Rule {
            path: path.to_owned(),
            limits: Limits {
                max_image_size: Limit::Max(ByteSize::new(1)),
                tag_count_limit: Limit::Max(tags),
                image_count_limit: Limit::Unlimited,
            },
            protections: Protections::default(),
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
            protections: Protections::default(),
            namespace_quotas: Vec::new(),
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
                protections: Protections::default(),
                namespace_quotas: Vec::new(),
            })
            .expect_err(path);
            assert_eq!(err.to_string(), *message);
        }
    }

    proptest! {
        #[test]
        fn first_match_agrees_with_ordered_scan(
            prefixes in prop::collection::vec("[a-c]{1,3}", 0..20),
            anchored in prop::collection::vec(any::<bool>(), 20),
            suffixes in prop::collection::vec(prop::sample::select(vec!["", "?", "*", "+", "|c", "/.*", "/", "$", "[ab]", "{2}"]), 20),
            names in prop::collection::vec("[a-c]{1,4}(/[a-c]{1,3}){0,2}", 1..20),
        ) {
            let paths: Vec<String> = prefixes
                .iter()
                .zip(&anchored)
                .zip(&suffixes)
                .map(|((p, a), s)| if *a { format!("^{p}{s}") } else { format!("{p}{s}") })
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
