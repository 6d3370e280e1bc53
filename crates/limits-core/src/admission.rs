//! The rules around a push's decisions that say what the gateway must do before it can ask for
//! one: whether a push's tags need counting at all, how far a blob upload may stream before it
//! is stopped, and what a blob whose real size could not be read counts for when the gateway
//! fails open.
//!
//! ```
//! use limits_core::{Policy, admission};
//!
//! let policy = Policy::from_yaml(
//!     "rules:\n- path: ^p/\n  limit: {max_image_size: 1MB, tag_count_limit: 3}\n",
//! )?;
//! let applied = policy.limits_for(&"p/app".parse()?);
//! assert!(admission::counts_tags(&applied, &["v1".to_owned()]));
//! assert_eq!(admission::upload_guard(&applied), Some(1 << 20)); // 1MB is 1024 * 1024 bytes
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::{AppliedLimits, Enforcement, Limit};

/// Whether a push naming `requested` tags (after exempt signature tags are taken out) must have
/// the repository's tags counted: it names a tag and a tag count limit applies.
pub fn counts_tags(applied: &AppliedLimits, requested: &[String]) -> bool {
    !requested.is_empty() && applied.limits.tag_count_limit != Limit::Unlimited
}

/// Whether a push of `requested` tags creates one that `listed` (the registry's tags) does not
/// hold. A push that creates none needs no count.
pub fn creates_tags(requested: &[String], listed: &[String]) -> bool {
    requested.iter().any(|tag| !listed.contains(tag))
}

/// The size in bytes past which a blob upload to the repository is stopped: its image size
/// limit. `None` when the limit is unlimited, or enforced in `warn` or `audit` mode: then the
/// image goes through whatever its size, its layers too, and the manifest push logs and counts
/// the decision.
pub fn upload_guard(applied: &AppliedLimits) -> Option<u64> {
    if applied.protections.enforcement.value != Enforcement::Deny {
        return None;
    }
    Some(applied.limits.max_image_size.max()?.bytes())
}

/// What a blob whose real size the registry could not tell counts for when the gateway fails
/// open: the size the manifest declares for it (`declared`: digest and size of the config and
/// of every layer), or 0 when the manifest does not name it.
pub fn unverified_blob_size<'a>(
    declared: impl IntoIterator<Item = (&'a str, u64)>,
    digest: &str,
) -> u64 {
    declared
        .into_iter()
        .find(|(named, _)| *named == digest)
        .map_or(0, |(_, size)| size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    fn applied(limit: &str) -> AppliedLimits {
        let yaml = format!("rules:\n- path: ^p/\n  {limit}\n");
        let policy = Policy::from_yaml(&yaml).expect("valid policy");
        policy.limits_for(&"p/app".parse().expect("name"))
    }

    fn tags(names: &[&str]) -> Vec<String> {
        names.iter().map(|&name| name.to_owned()).collect()
    }

    #[test]
    fn which_pushes_count_tags() {
        let cases: &[(&str, &[&str], bool)] = &[
            (
                "limit: {max_image_size: 1MB, tag_count_limit: 3}",
                &["v1"],
                true,
            ),
            (
                "limit: {max_image_size: 1MB, tag_count_limit: 3}",
                &["v1", "v2"],
                true,
            ),
            (
                "limit: {max_image_size: 1MB, tag_count_limit: 3}",
                &[],
                false,
            ),
            (
                "limit: {max_image_size: 1MB, tag_count_limit: 0}",
                &["v1"],
                true,
            ),
            (
                "limit: {max_image_size: 1MB, tag_count_limit: unlimited}",
                &["v1"],
                false,
            ),
            (
                "limit: {max_image_size: unlimited, tag_count_limit: unlimited}",
                &["v1"],
                false,
            ),
        ];
        for (limit, requested, counts) in cases {
            assert_eq!(
                counts_tags(&applied(limit), &tags(requested)),
                *counts,
                "{limit} {requested:?}"
            );
        }
    }

    #[test]
    fn which_pushes_create_tags() {
        let cases: &[(&[&str], &[&str], bool)] = &[
            (&["v1"], &[], true),
            (&["v1"], &["v1"], false),
            (&["v1", "v2"], &["v1"], true),
            (&["v1", "v2"], &["v2", "v1", "v3"], false),
            (&[], &["v1"], false),
        ];
        for (requested, listed, creates) in cases {
            assert_eq!(
                creates_tags(&tags(requested), &tags(listed)),
                *creates,
                "{requested:?} {listed:?}"
            );
        }
    }

    #[test]
    fn uploads_are_guarded_only_when_a_size_limit_is_enforced() {
        let cases: &[(&str, Option<u64>)] = &[
            (
                "limit: {max_image_size: 1MB, tag_count_limit: 3}",
                Some(1 << 20),
            ),
            (
                "limit: {max_image_size: 1MiB, tag_count_limit: 3}",
                Some(1 << 20),
            ),
            (
                "enforcement: deny\n  limit: {max_image_size: 1MB, tag_count_limit: 3}",
                Some(1 << 20),
            ),
            (
                "enforcement: warn\n  limit: {max_image_size: 1MB, tag_count_limit: 3}",
                None,
            ),
            (
                "enforcement: audit\n  limit: {max_image_size: 1MB, tag_count_limit: 3}",
                None,
            ),
            (
                "limit: {max_image_size: unlimited, tag_count_limit: 3}",
                None,
            ),
            (
                "limit: {max_image_size: unlimited, tag_count_limit: unlimited}",
                None,
            ),
        ];
        for (limit, guard) in cases {
            assert_eq!(upload_guard(&applied(limit)), *guard, "{limit}");
        }
    }

    #[test]
    fn unverified_blobs_count_at_their_declared_size() {
        let declared = [("sha256:c", 10), ("sha256:l1", 300), ("sha256:l2", 0)];
        let cases: &[(&str, u64)] = &[
            ("sha256:c", 10),
            ("sha256:l1", 300),
            ("sha256:l2", 0),
            ("sha256:other", 0),
        ];
        for (digest, size) in cases {
            assert_eq!(
                unverified_blob_size(declared.iter().copied(), digest),
                *size,
                "{digest}"
            );
        }
    }
}
