//! Decisions: a measured value against a limit, with everything a refusal message needs.

use std::fmt;

use crate::{
    AppliedLimits, ByteSize, Detail, Enforcement, Limit, LimitSource, RepositoryName, Standing,
    WarnAt,
};

/// What was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// The sum of a pushed image manifest's layer sizes.
    ImageSize {
        /// The measured size.
        size: ByteSize,
        /// The limit.
        limit: Limit<ByteSize>,
    },
    /// Tags a push would add to those a repository holds.
    TagCount {
        /// Tags the repository holds.
        existing: u64,
        /// Tags the push would create.
        new: u64,
        /// The limit.
        limit: Limit<u64>,
    },
    /// Images a repository holds, and whether a push adds one (`image_count_limit`).
    ImageCount {
        /// Distinct top-level manifests the repository holds.
        existing: u64,
        /// Whether the push adds an image: a manifest the repository does not hold yet, that
        /// is neither a child of an index nor attached to another manifest.
        adds: bool,
        /// The limit.
        limit: Limit<u64>,
    },
    /// A single blob being uploaded, against the image size limit.
    BlobSize {
        /// The size known so far.
        size: ByteSize,
        /// The image size limit.
        limit: Limit<ByteSize>,
        /// How `size` is known: the blob's whole size, or only where its upload got to.
        known: BlobSizeKnown,
    },
}

/// How the size of a blob checked against the image size limit is known. Messages say it: a
/// streamed upload stopped at the limit is not a layer of that size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobSizeKnown {
    /// The blob as the registry stores it (a cross-repository mount): its whole size.
    Stored,
    /// The size the upload announces (`Content-Length`, `Content-Range`, with what the
    /// registry already holds of it), before its bytes are sent.
    Announced,
    /// The bytes streamed so far, the client having announced no size (docker, podman and
    /// buildah compress layers as they send them): the upload was stopped once it passed the
    /// limit, so the blob is at least this large, and its whole size is unknown.
    Streamed,
}

impl BlobSizeKnown {
    /// `stored`, `announced` or `streamed`, for the `detail` of an answer.
    pub fn as_str(self) -> &'static str {
        match self {
            BlobSizeKnown::Stored => "stored",
            BlobSizeKnown::Announced => "announced",
            BlobSizeKnown::Streamed => "streamed",
        }
    }
}

impl Check {
    /// The measured number (bytes, or the tags the repository would hold) and the limit's,
    /// `None` when unlimited.
    fn measured_and_limit(&self) -> (u64, Option<u64>) {
        match *self {
            Check::ImageSize { size, limit } | Check::BlobSize { size, limit, .. } => {
                (size.bytes(), limit.max().map(ByteSize::bytes))
            }
            Check::TagCount {
                existing,
                new,
                limit,
            } => (existing.saturating_add(new), limit.max()),
            Check::ImageCount {
                existing,
                adds,
                limit,
            } => (existing.saturating_add(u64::from(adds)), limit.max()),
        }
    }

    /// A short name for logs and metric labels: `image_size`, `tag_count`, `image_count` or
    /// `blob_size`.
    pub fn name(&self) -> &'static str {
        match self {
            Check::ImageSize { .. } => "image_size",
            Check::TagCount { .. } => "tag_count",
            Check::ImageCount { .. } => "image_count",
            Check::BlobSize { .. } => "blob_size",
        }
    }
}

/// The outcome of one check.
///
/// ```
/// use limits_core::{ByteSize, Policy};
///
/// let policy = Policy::from_yaml(r#"
/// rules:
///   - path: ^project-1/.*
///     limit: {max_image_size: 20MB, tag_count_limit: 3}
/// "#)?;
/// let applied = policy.limits_for(&"project-1/app".parse()?);
/// let decision = applied.check_image_size(ByteSize::new(25 << 20));
/// assert!(!decision.is_allowed());
/// assert_eq!(
///     decision.to_string(),
///     "image size 25.0 MiB (26214400 bytes) exceeds the limit of 20 MiB for repository project-1/app (rule 1: ^project-1/.*)"
/// );
/// assert!(applied.check_tags(2, 1).is_allowed());
/// assert!(!applied.check_tags(3, 1).is_allowed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The repository.
    pub repository: RepositoryName,
    /// What was measured against which limit.
    pub check: Check,
    /// Where the limit came from.
    pub source: LimitSource,
    /// What happens when the limit is broken.
    pub enforcement: Enforcement,
    /// The warning threshold below the limit.
    pub warn_at: WarnAt,
    allowed: bool,
}

impl AppliedLimits {
    /// Checks an image whose counted layers add up to `size`.
    pub fn check_image_size(&self, size: ByteSize) -> Decision {
        let limit = self.limits.max_image_size;
        self.decide(Check::ImageSize { size, limit }, limit.allows(&size))
    }

    /// Checks a push that creates `new` tags in a repository holding `existing`.
    pub fn check_tags(&self, existing: u64, new: u64) -> Decision {
        let limit = self.limits.tag_count_limit;
        let allowed = new == 0 || limit.allows(&existing.saturating_add(new));
        self.decide(
            Check::TagCount {
                existing,
                new,
                limit,
            },
            allowed,
        )
    }

    /// Checks a push into a repository holding `existing` images; `adds` tells whether the
    /// push adds one (a new tag on a digest the repository holds adds none). Like the tag
    /// count, a push that adds no image is allowed whatever the count.
    ///
    /// ```
    /// use limits_core::Policy;
    ///
    /// let policy = Policy::from_yaml("rules:\n- path: ^team-a/\n  limit: {max_image_size: 1GB, tag_count_limit: 100, image_count_limit: 2}")?;
    /// let applied = policy.limits_for(&"team-a/app".parse()?);
    /// assert!(applied.check_images(1, true).is_allowed());
    /// assert!(applied.check_images(2, false).is_allowed());
    /// let refused = applied.check_images(2, true);
    /// assert!(refused.refuses());
    /// assert_eq!(
    ///     refused.to_string(),
    ///     "image count 3 would exceed the limit of 2 for repository team-a/app (rule 1: ^team-a/): the repository holds 2 images and this push adds a new one"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_images(&self, existing: u64, adds: bool) -> Decision {
        let limit = self.limits.image_count_limit;
        let allowed = !adds || limit.allows(&existing.saturating_add(1));
        self.decide(
            Check::ImageCount {
                existing,
                adds,
                limit,
            },
            allowed,
        )
    }

    /// Checks one blob of `size` bytes (or at least `size`, while it uploads: see `known`)
    /// against the image size limit: a larger layer can never be part of an allowed image.
    ///
    /// ```
    /// use limits_core::{BlobSizeKnown, ByteSize, Policy};
    ///
    /// let policy = Policy::from_yaml("max_image_size: 5MB")?;
    /// let applied = policy.limits_for(&"team/app".parse()?);
    /// let cut = applied.check_blob(ByteSize::new(5_243_250), BlobSizeKnown::Streamed);
    /// assert!(!cut.is_allowed());
    /// assert_eq!(
    ///     cut.to_string(),
    ///     "layer upload stopped at 5243250 bytes, where it passed the image size limit of 5 MiB (5242880 bytes) for repository team/app (global limit); the client did not announce the layer's size"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_blob(&self, size: ByteSize, known: BlobSizeKnown) -> Decision {
        let limit = self.limits.max_image_size;
        self.decide(Check::BlobSize { size, limit, known }, limit.allows(&size))
    }

    fn decide(&self, check: Check, allowed: bool) -> Decision {
        Decision {
            repository: self.repository.clone(),
            check,
            source: self.source.clone(),
            enforcement: self.protections.enforcement.value,
            warn_at: self.protections.warn_at.value,
            allowed,
        }
    }
}

impl Decision {
    /// Whether the push may go on.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// Whether the push is refused: over the limit, and the limit is enforced with `deny`.
    pub fn refuses(&self) -> bool {
        !self.allowed && self.enforcement == Enforcement::Deny
    }

    /// Within the limit, near it (at or above `warn_at`), or over it.
    ///
    /// ```
    /// use limits_core::{ByteSize, Policy, Standing};
    ///
    /// let policy = Policy::from_yaml("max_image_size: 100MB\nwarn_at: 80%\nenforcement: warn")?;
    /// let applied = policy.limits_for(&"team/app".parse()?);
    /// let mb = |n: u64| ByteSize::new(n << 20);
    /// assert_eq!(applied.check_image_size(mb(79)).standing(), Standing::Ok);
    /// let near = applied.check_image_size(mb(85));
    /// assert_eq!(near.standing(), Standing::Near);
    /// assert_eq!(
    ///     near.warning().as_deref(),
    ///     Some("image size 85.0 MiB (89128960 bytes) is 85% of the limit of 100 MiB for repository team/app (global limit); warnings start at 80%")
    /// );
    /// let over = applied.check_image_size(mb(120));
    /// assert_eq!(over.standing(), Standing::Over);
    /// assert!(!over.refuses());
    /// assert_eq!(
    ///     over.warning().as_deref(),
    ///     Some("image size 120.0 MiB (125829120 bytes) exceeds the limit of 100 MiB for repository team/app (global limit); the push was accepted because the limit is enforced in warn mode")
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn standing(&self) -> Standing {
        if !self.allowed {
            return Standing::Over;
        }
        // A push that creates no tag (no image) is not near the limit, whatever the count.
        if matches!(
            self.check,
            Check::TagCount { new: 0, .. } | Check::ImageCount { adds: false, .. }
        ) {
            return Standing::Ok;
        }
        let (measured, limit) = self.check.measured_and_limit();
        match limit {
            Some(limit) if self.warn_at.reached(measured, limit) => Standing::Near,
            _ => Standing::Ok,
        }
    }

    /// `allowed`, `near_limit` or `denied` (over the limit, whatever the enforcement: with
    /// `warn` or `audit`, a push `deny` would have refused), for logs and metric labels.
    pub fn verdict(&self) -> &'static str {
        self.standing().verdict()
    }

    /// What the client is told of a push that goes through: over the limit in `warn` mode, or
    /// near it in `deny` or `warn` mode. Nothing in `audit` mode, nor for a refusal.
    pub fn warning(&self) -> Option<String> {
        if self.enforcement == Enforcement::Audit {
            return None;
        }
        match self.standing() {
            Standing::Ok => None,
            Standing::Over => (self.enforcement == Enforcement::Warn).then(|| {
                format!("{self}; the push was accepted because the limit is enforced in warn mode")
            }),
            Standing::Near => Some(self.near_message()),
        }
    }

    fn near_message(&self) -> String {
        let (repo, source, warn_at) = (&self.repository, &self.source, self.warn_at);
        let percent =
            |measured: u64, limit: u64| u128::from(measured) * 100 / u128::from(limit.max(1));
        match self.check {
            Check::ImageSize { size, limit } | Check::BlobSize { size, limit, .. } => {
                let what = if matches!(self.check, Check::BlobSize { .. }) {
                    "layer size"
                } else {
                    "image size"
                };
                let max = limit.max().map_or(u64::MAX, ByteSize::bytes);
                format!(
                    "{what} {size} ({} bytes) is {}% of the limit of {limit} for repository {repo} ({source}); warnings start at {warn_at}",
                    size.bytes(),
                    percent(size.bytes(), max)
                )
            }
            Check::TagCount {
                existing,
                new,
                limit,
            } => {
                let total = existing.saturating_add(new);
                let max = limit.max().unwrap_or(u64::MAX);
                format!(
                    "tag count {total} is {}% of the limit of {limit} for repository {repo} ({source}); warnings start at {warn_at}",
                    percent(total, max)
                )
            }
            Check::ImageCount { limit, .. } => {
                let (total, max) = self.check.measured_and_limit();
                format!(
                    "image count {total} is {}% of the limit of {limit} for repository {repo} ({source}); warnings start at {warn_at}",
                    percent(total, max.unwrap_or(u64::MAX))
                )
            }
        }
    }

    /// The facts as numbers.
    pub fn detail(&self) -> Detail {
        let (measured, limit) = self.check.measured_and_limit();
        let (existing_tags, new_tags) = match self.check {
            Check::TagCount { existing, new, .. } => (Some(existing), Some(new)),
            _ => (None, None),
        };
        let (existing_images, new_images) = match self.check {
            Check::ImageCount { existing, adds, .. } => (Some(existing), Some(u64::from(adds))),
            _ => (None, None),
        };
        let size_known = match self.check {
            Check::BlobSize { known, .. } => Some(known.as_str()),
            _ => None,
        };
        let (rule, rule_path) = match &self.source {
            LimitSource::Global => (None, None),
            LimitSource::Rule { position, path } => (Some(*position), Some(path.to_string())),
        };
        Detail {
            repository: self.repository.to_string(),
            check: self.check.name(),
            measured,
            limit,
            existing_tags,
            new_tags,
            existing_images,
            new_images,
            size_known,
            rule,
            rule_path,
        }
    }
}

/// The message of SPEC section 3, for refusals and, with "is within", for allowed pushes.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.allowed { "is within" } else { "exceeds" };
        let (repo, source) = (&self.repository, &self.source);
        match self.check {
            Check::ImageSize { size, limit } => write!(
                f,
                "image size {size} ({} bytes) {verb} the limit of {limit} for repository {repo} ({source})",
                size.bytes()
            ),
            Check::BlobSize {
                size,
                limit,
                known: BlobSizeKnown::Stored,
            } => write!(
                f,
                "layer size {size} ({} bytes) {verb} the image size limit of {limit} for repository {repo} ({source})",
                size.bytes()
            ),
            Check::BlobSize {
                size,
                limit,
                known: BlobSizeKnown::Announced,
            } => write!(
                f,
                "layer upload announced at {size} ({} bytes) {verb} the image size limit of {limit} for repository {repo} ({source})",
                size.bytes()
            ),
            // Only the bytes sent are known: a rounded size would read as the layer's, and as
            // equal to the limit it just passed.
            Check::BlobSize {
                size,
                limit,
                known: BlobSizeKnown::Streamed,
            } => {
                let limit_bytes = limit
                    .max()
                    .map(|max| format!(" ({} bytes)", max.bytes()))
                    .unwrap_or_default();
                if self.allowed {
                    write!(
                        f,
                        "layer upload at {} bytes is within the image size limit of {limit}{limit_bytes} for repository {repo} ({source})",
                        size.bytes()
                    )
                } else {
                    write!(
                        f,
                        "layer upload stopped at {} bytes, where it passed the image size limit of {limit}{limit_bytes} for repository {repo} ({source}); the client did not announce the layer's size",
                        size.bytes()
                    )
                }
            }
            Check::TagCount {
                existing,
                new,
                limit,
            } => {
                let total = existing.saturating_add(new);
                let verb = if self.allowed {
                    "is within"
                } else {
                    "would exceed"
                };
                write!(
                    f,
                    "tag count {total} {verb} the limit of {limit} for repository {repo} ({source}): \
                     the repository holds {existing} {} and this push adds {new}",
                    if existing == 1 { "tag" } else { "tags" }
                )
            }
            Check::ImageCount {
                existing,
                adds,
                limit,
            } => {
                let total = existing.saturating_add(u64::from(adds));
                let verb = if self.allowed {
                    "is within"
                } else {
                    "would exceed"
                };
                write!(
                    f,
                    "image count {total} {verb} the limit of {limit} for repository {repo} ({source}): \
                     the repository holds {existing} {} and this push adds {}",
                    if existing == 1 { "image" } else { "images" },
                    if adds { "a new one" } else { "none" }
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    fn applied(name: &str) -> AppliedLimits {
        let policy = Policy::from_yaml(
            "max_image_size: 100MB\ntag_count_limit: 100\nimage_count_limit: 1\nrules:\n- path: ^project-1/.*\n  limit: {max_image_size: 20MB, tag_count_limit: 3, image_count_limit: 4}\n- path: ^free/\n  limit: {max_image_size: unlimited, tag_count_limit: unlimited}\n",
        )
        .expect("valid");
        policy.limits_for(&name.parse().expect("valid name"))
    }

    #[test]
    fn messages() {
        let mb = |n: u64| ByteSize::new(n << 20);
        let cases: Vec<(Decision, bool, &str)> = vec![
            (
                applied("project-1/app").check_image_size(mb(25)),
                false,
                "image size 25.0 MiB (26214400 bytes) exceeds the limit of 20 MiB for repository project-1/app (rule 1: ^project-1/.*)",
            ),
            (
                applied("project-1/app").check_image_size(mb(20)),
                true,
                "image size 20.0 MiB (20971520 bytes) is within the limit of 20 MiB for repository project-1/app (rule 1: ^project-1/.*)",
            ),
            (
                applied("other/app").check_image_size(ByteSize::new(104_857_601)),
                false,
                "image size 100.0 MiB (104857601 bytes) exceeds the limit of 100 MiB for repository other/app (global limit)",
            ),
            (
                applied("project-1/app").check_tags(3, 1),
                false,
                "tag count 4 would exceed the limit of 3 for repository project-1/app (rule 1: ^project-1/.*): the repository holds 3 tags and this push adds 1",
            ),
            (
                applied("project-1/app").check_tags(1, 2),
                true,
                "tag count 3 is within the limit of 3 for repository project-1/app (rule 1: ^project-1/.*): the repository holds 1 tag and this push adds 2",
            ),
            (
                applied("project-1/app").check_blob(mb(30), BlobSizeKnown::Stored),
                false,
                "layer size 30.0 MiB (31457280 bytes) exceeds the image size limit of 20 MiB for repository project-1/app (rule 1: ^project-1/.*)",
            ),
            (
                applied("project-1/app").check_blob(mb(30), BlobSizeKnown::Announced),
                false,
                "layer upload announced at 30.0 MiB (31457280 bytes) exceeds the image size limit of 20 MiB for repository project-1/app (rule 1: ^project-1/.*)",
            ),
            (
                applied("project-1/app")
                    .check_blob(ByteSize::new((20 << 20) + 370), BlobSizeKnown::Streamed),
                false,
                "layer upload stopped at 20971890 bytes, where it passed the image size limit of 20 MiB (20971520 bytes) for repository project-1/app (rule 1: ^project-1/.*); the client did not announce the layer's size",
            ),
            (
                applied("project-1/app").check_blob(mb(2), BlobSizeKnown::Streamed),
                true,
                "layer upload at 2097152 bytes is within the image size limit of 20 MiB (20971520 bytes) for repository project-1/app (rule 1: ^project-1/.*)",
            ),
            (
                applied("free/app").check_blob(mb(2), BlobSizeKnown::Streamed),
                true,
                "layer upload at 2097152 bytes is within the image size limit of unlimited for repository free/app (rule 2: ^free/)",
            ),
            (
                applied("project-1/app").check_images(4, true),
                false,
                "image count 5 would exceed the limit of 4 for repository project-1/app (rule 1: ^project-1/.*): the repository holds 4 images and this push adds a new one",
            ),
            (
                applied("project-1/app").check_images(3, true),
                true,
                "image count 4 is within the limit of 4 for repository project-1/app (rule 1: ^project-1/.*): the repository holds 3 images and this push adds a new one",
            ),
            (
                applied("project-1/app").check_images(9, false),
                true,
                "image count 9 is within the limit of 4 for repository project-1/app (rule 1: ^project-1/.*): the repository holds 9 images and this push adds none",
            ),
            (
                applied("other/app").check_images(1, true),
                false,
                "image count 2 would exceed the limit of 1 for repository other/app (global limit): the repository holds 1 image and this push adds a new one",
            ),
            (
                applied("free/app").check_images(u64::MAX, true),
                true,
                "image count 18446744073709551615 is within the limit of unlimited for repository free/app (rule 2: ^free/): the repository holds 18446744073709551615 images and this push adds a new one",
            ),
            (
                applied("free/app").check_image_size(ByteSize::new(u64::MAX)),
                true,
                "image size 16.0 EiB (18446744073709551615 bytes) is within the limit of unlimited for repository free/app (rule 2: ^free/)",
            ),
        ];
        for (decision, allowed, message) in cases {
            assert_eq!(decision.is_allowed(), allowed, "{message}");
            assert_eq!(decision.to_string(), message);
        }
    }

    #[test]
    fn no_new_tags_is_always_allowed() {
        assert!(applied("project-1/app").check_tags(500, 0).is_allowed());
        assert!(
            applied("free/app")
                .check_tags(u64::MAX, u64::MAX)
                .is_allowed()
        );
    }

    #[test]
    fn detail_carries_numbers() {
        let detail = applied("project-1/app").check_tags(3, 1).detail();
        let json = serde_json::to_string(&detail).expect("serialisable");
        assert_eq!(
            json,
            r#"{"repository":"project-1/app","check":"tag_count","measured":4,"limit":3,"existing_tags":3,"new_tags":1,"rule":1,"rule_path":"^project-1/.*"}"#
        );
        let detail = applied("project-1/app").check_images(4, true).detail();
        let json = serde_json::to_string(&detail).expect("serialisable");
        assert_eq!(
            json,
            r#"{"repository":"project-1/app","check":"image_count","measured":5,"limit":4,"existing_images":4,"new_images":1,"rule":1,"rule_path":"^project-1/.*"}"#
        );
        let detail = applied("x/y").check_image_size(ByteSize::new(5)).detail();
        assert_eq!(detail.rule, None);
        assert_eq!(detail.limit, Some(100 << 20));
        let detail = applied("project-1/app")
            .check_blob(ByteSize::new(5 << 21), BlobSizeKnown::Streamed)
            .detail();
        let json = serde_json::to_string(&detail).expect("serialisable");
        assert_eq!(
            json,
            r#"{"repository":"project-1/app","check":"blob_size","measured":10485760,"limit":20971520,"size_known":"streamed","rule":1,"rule_path":"^project-1/.*"}"#
        );
    }
}
