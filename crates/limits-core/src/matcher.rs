//! Finding the first rule whose pattern matches a repository name, and the bounds on what the
//! patterns may compile to. The policy and the `immutable_tags` patterns share the bounds; the
//! migration reads the literal prefix a pattern requires.

use std::collections::HashMap;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::error::{ConfigError, RegexError};

/// Compiled size allowed for one rule's pattern: plenty for any real path rule, small enough
/// that a hostile pattern such as `(a{1000}){1000}` is refused instead of exhausting memory.
pub const RULE_SIZE_LIMIT: usize = 1 << 20;
/// Compiled size allowed for all rules together.
pub const RULES_SIZE_LIMIT: usize = 256 << 20;

/// Finds the first matching rule without trying every pattern.
///
/// Most rules start with an anchored literal (`^project-1/.*`): such a rule can only match a
/// name that starts with that literal, so it is found through an index of prefixes and only
/// the few candidates are run. The other rules are compiled together into one `RegexSet`.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    /// Each rule's own regex, for candidates from the prefix index.
    regexes: Vec<Regex>,
    /// Rules by their required literal prefix.
    by_prefix: HashMap<String, Vec<usize>>,
    /// The distinct prefix lengths, ascending.
    prefix_lengths: Vec<usize>,
    /// Rules without a required prefix, and their positions in `rules`.
    rest: RegexSet,
    rest_index: Vec<usize>,
}

impl Matcher {
    /// Compiles the rules' patterns, in order: each bounded by [`RULE_SIZE_LIMIT`], those
    /// without a required prefix together by [`RULES_SIZE_LIMIT`].
    pub(crate) fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Result<Self, ConfigError> {
        let paths: Vec<&str> = paths.into_iter().collect();
        let mut regexes = Vec::with_capacity(paths.len());
        let mut by_prefix: HashMap<String, Vec<usize>> = HashMap::new();
        let mut rest_index = Vec::new();
        for (index, path) in paths.iter().enumerate() {
            let regex = RegexBuilder::new(path)
                .size_limit(RULE_SIZE_LIMIT)
                .build()
                .map_err(|e| ConfigError::InvalidRegex {
                    position: index + 1,
                    path: (*path).to_owned(),
                    source: RegexError(e),
                })?;
            regexes.push(regex);
            match required_prefix(path) {
                Some(prefix) => by_prefix.entry(prefix).or_default().push(index),
                None => rest_index.push(index),
            }
        }
        let rest = RegexSetBuilder::new(rest_index.iter().map(|i| paths[*i]))
            .size_limit(RULES_SIZE_LIMIT)
            .build()
            .map_err(|e| ConfigError::RulesTooLarge {
                count: rest_index.len(),
                limit_bytes: RULES_SIZE_LIMIT,
                source: RegexError(e),
            })?;
        let mut prefix_lengths: Vec<usize> = by_prefix.keys().map(String::len).collect();
        prefix_lengths.sort_unstable();
        prefix_lengths.dedup();
        Ok(Matcher {
            regexes,
            by_prefix,
            prefix_lengths,
            rest,
            rest_index,
        })
    }

    /// Index of the first rule whose pattern matches `name`.
    pub(crate) fn first_match(&self, name: &str) -> Option<usize> {
        let unprefixed = self
            .rest
            .matches(name)
            .iter()
            .next()
            .map(|i| self.rest_index[i]);
        let mut candidates: Vec<usize> = self
            .prefix_lengths
            .iter()
            .take_while(|len| **len <= name.len())
            .filter_map(|len| name.get(..*len))
            .filter_map(|prefix| self.by_prefix.get(prefix))
            .flatten()
            .copied()
            .filter(|index| unprefixed.is_none_or(|u| *index < u))
            .collect();
        candidates.sort_unstable();
        candidates
            .into_iter()
            .find(|index| self.regexes[*index].is_match(name))
            .or(unprefixed)
    }
}

/// The literal every match must start with: what follows a leading `^` up to the first
/// character with a special meaning. `None` when the pattern has no such literal or holds an
/// alternation (`|`), which could make the literal optional.
pub(crate) fn required_prefix(pattern: &str) -> Option<String> {
    let rest = pattern.strip_prefix('^')?;
    if pattern.contains('|') {
        return None;
    }
    let mut prefix = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if "\\.+*?()[]{}^$".contains(c) {
            break;
        }
        // A quantifier after a character makes that character optional or repeated.
        if chars.peek().is_some_and(|next| "?*{+".contains(*next)) {
            break;
        }
        prefix.push(c);
    }
    (!prefix.is_empty()).then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_prefixes() {
        let cases: &[(&str, Option<&str>)] = &[
            ("^project-1/.*", Some("project-1/")),
            ("^project-2/big-image/.*", Some("project-2/big-image/")),
            ("^team", Some("team")),
            ("^abc?", Some("ab")),
            ("^ab*c", Some("a")),
            ("^a+", None),
            ("^a{2}", None),
            ("^project\\.x", Some("project")),
            ("^(a|b)/", None),
            ("^a/|^b/", None),
            ("^[ab]/", None),
            ("project-1/", None),
            ("(?i)^project", None),
            ("^", None),
        ];
        for (pattern, prefix) in cases {
            assert_eq!(required_prefix(pattern).as_deref(), *prefix, "{pattern}");
        }
    }
}
