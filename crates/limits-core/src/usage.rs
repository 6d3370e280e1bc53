//! How much of its limits a repository already uses: the verdict of a usage report.

use std::fmt;

use crate::{ByteSize, Limit, Limits};

/// Where a repository stands against its limits, worst first (`Over < Near < Ok` in `Ord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Standing {
    /// Above a limit: more tags than the tag count limit, or an image larger than the size
    /// limit. A push like the one that made it would be refused today.
    Over,
    /// Within both limits, but at or above the threshold of one of them (a repository holding
    /// exactly its tag count limit is near: its next new tag is refused).
    Near,
    /// Below the threshold of both limits.
    Ok,
}

impl Standing {
    /// `over`, `near` or `ok`.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Over => "over",
            Standing::Near => "near",
            Standing::Ok => "ok",
        }
    }

    /// The verdict of a decision that stands so: `allowed`, `near_limit` or `denied` (over the
    /// limit, whatever the enforcement: with `warn` or `audit`, a push `deny` would have
    /// refused), for logs and metric labels.
    pub fn verdict(self) -> &'static str {
        match self {
            Standing::Ok => "allowed",
            Standing::Near => "near_limit",
            Standing::Over => "denied",
        }
    }

    /// Where `value` stands against `limit`: [`Standing::Over`] above it (equal is within, as
    /// for pushes), [`Standing::Near`] at or above `near_percent` percent of a bound that is
    /// not zero, else [`Standing::Ok`]. Compared in whole numbers, exactly.
    ///
    /// ```
    /// use limits_core::{Limit, Standing};
    ///
    /// assert_eq!(Standing::of(21, Limit::Max(20), 90), Standing::Over);
    /// assert_eq!(Standing::of(20, Limit::Max(20), 90), Standing::Near);
    /// assert_eq!(Standing::of(18, Limit::Max(20), 90), Standing::Near);
    /// assert_eq!(Standing::of(17, Limit::Max(20), 90), Standing::Ok);
    /// assert_eq!(Standing::of(u64::MAX, Limit::Unlimited, 90), Standing::Ok);
    /// ```
    pub fn of(value: u64, limit: Limit<u64>, near_percent: u8) -> Standing {
        if !limit.allows(&value) {
            Standing::Over
        } else if near(value, limit, near_percent) {
            Standing::Near
        } else {
            Standing::Ok
        }
    }
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a repository holds, measured against the limits that apply to it.
///
/// ```
/// use limits_core::{ByteSize, Limit, Limits, Standing, Usage};
///
/// let limits = Limits {
///     max_image_size: Limit::Max(ByteSize::new(100)),
///     tag_count_limit: Limit::Max(10),
///     image_count_limit: Limit::Unlimited,
/// };
/// assert_eq!(Usage::new(limits, 11, Some(ByteSize::new(5))).standing(80), Standing::Over);
/// assert_eq!(Usage::new(limits, 3, Some(ByteSize::new(101))).standing(80), Standing::Over);
/// assert_eq!(Usage::new(limits, 10, Some(ByteSize::new(5))).standing(80), Standing::Near);
/// assert_eq!(Usage::new(limits, 3, Some(ByteSize::new(80))).standing(80), Standing::Near);
/// assert_eq!(Usage::new(limits, 7, None).standing(80), Standing::Ok);
/// assert_eq!(Usage::new(limits, 11, None).fraction(), 1.1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// The limits that apply.
    pub limits: Limits,
    /// Tags the repository holds.
    pub tags: u64,
    /// The size of its largest image (config and layers), `None` when it holds none.
    pub largest_image: Option<ByteSize>,
}

impl Usage {
    /// The usage of a repository holding `tags` tags whose largest image is `largest_image`.
    pub fn new(limits: Limits, tags: u64, largest_image: Option<ByteSize>) -> Self {
        Self {
            limits,
            tags,
            largest_image,
        }
    }

    /// The tag count as a fraction of its limit; `None` when unlimited.
    pub fn tag_fraction(&self) -> Option<f64> {
        fraction(self.tags, self.limits.tag_count_limit)
    }

    /// The largest image's size as a fraction of the size limit; `None` when unlimited or when
    /// the repository holds no image.
    pub fn size_fraction(&self) -> Option<f64> {
        let size = self.largest_image?;
        fraction(
            size.bytes(),
            self.limits.max_image_size.map(ByteSize::bytes),
        )
    }

    /// The larger of the two fractions (0 when neither applies): how close the repository is
    /// to its nearest limit, for sorting.
    pub fn fraction(&self) -> f64 {
        let tags = self.tag_fraction().unwrap_or(0.0);
        let size = self.size_fraction().unwrap_or(0.0);
        tags.max(size)
    }

    /// Whether the tag count is above its limit.
    pub fn tags_over(&self) -> bool {
        !self.limits.tag_count_limit.allows(&self.tags)
    }

    /// Whether the largest image is above the size limit.
    pub fn size_over(&self) -> bool {
        self.largest_image
            .is_some_and(|size| !self.limits.max_image_size.allows(&size))
    }

    /// Whether the tag count is at or above `near_percent` percent of its limit.
    pub fn tags_near(&self, near_percent: u8) -> bool {
        near(self.tags, self.limits.tag_count_limit, near_percent)
    }

    /// Whether the largest image is at or above `near_percent` percent of the size limit.
    pub fn size_near(&self, near_percent: u8) -> bool {
        self.largest_image.is_some_and(|size| {
            near(
                size.bytes(),
                self.limits.max_image_size.map(ByteSize::bytes),
                near_percent,
            )
        })
    }

    /// [`Standing::Over`] when a limit is exceeded (equal to the limit is within it, as for
    /// pushes); else [`Standing::Near`] when a value is at or above `near_percent` percent of a
    /// limit that is not zero; else [`Standing::Ok`]. Compared in whole numbers, exactly.
    pub fn standing(&self, near_percent: u8) -> Standing {
        if self.tags_over() || self.size_over() {
            Standing::Over
        } else if self.tags_near(near_percent) || self.size_near(near_percent) {
            Standing::Near
        } else {
            Standing::Ok
        }
    }
}

fn fraction(value: u64, limit: Limit<u64>) -> Option<f64> {
    match limit {
        Limit::Unlimited => None,
        Limit::Max(0) if value == 0 => Some(0.0),
        Limit::Max(0) => Some(f64::INFINITY),
        Limit::Max(max) => Some(value as f64 / max as f64),
    }
}

fn near(value: u64, limit: Limit<u64>, near_percent: u8) -> bool {
    match limit {
        Limit::Max(max) if max > 0 => {
            u128::from(value) * 100 >= u128::from(max) * u128::from(near_percent)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(size: Option<u64>, tags: Option<u64>) -> Limits {
        Limits {
            max_image_size: size.map_or(Limit::Unlimited, |s| Limit::Max(ByteSize::new(s))),
            tag_count_limit: tags.map_or(Limit::Unlimited, Limit::Max),
            image_count_limit: Limit::Unlimited,
        }
    }

    /// Size limit, tag limit, tags, largest image, near percent, standing.
    type Case = (Option<u64>, Option<u64>, u64, Option<u64>, u8, Standing);

    #[test]
    fn standings() {
        use Standing::*;
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // size limit, tag limit, tags, largest, near %, standing
            (Some(100), Some(10), 11, None,      80, Over),
            (Some(100), Some(10), 10, None,      80, Near),
            (Some(100), Some(10), 8,  None,      80, Near),
            (Some(100), Some(10), 7,  None,      80, Ok),
            (Some(100), Some(10), 0,  Some(101), 80, Over),
            (Some(100), Some(10), 0,  Some(100), 80, Near),
            (Some(100), Some(10), 0,  Some(80),  80, Near),
            (Some(100), Some(10), 0,  Some(79),  80, Ok),
            (Some(100), Some(10), 9,  Some(101), 80, Over),
            (Some(100), Some(10), 7,  Some(79),  100, Ok),
            (Some(100), Some(10), 10, Some(79),  100, Near),
            (None,      None,     u64::MAX, Some(u64::MAX), 80, Ok),
            (None,      Some(0),  0,  None,      80, Ok),
            (None,      Some(0),  1,  None,      80, Over),
            (Some(0),   None,     5,  Some(0),   80, Ok),
            (Some(0),   None,     5,  Some(1),   80, Over),
            (Some(u64::MAX), Some(u64::MAX), u64::MAX, Some(u64::MAX), 100, Near),
        ];
        for &(size, tags_limit, tags, largest, near_percent, want) in cases {
            let usage = Usage::new(limits(size, tags_limit), tags, largest.map(ByteSize::new));
            assert_eq!(
                usage.standing(near_percent),
                want,
                "{usage:?} at {near_percent}%"
            );
        }
    }

    #[test]
    fn fractions() {
        let usage = Usage::new(limits(Some(200), Some(10)), 5, Some(ByteSize::new(150)));
        assert_eq!(usage.tag_fraction(), Some(0.5));
        assert_eq!(usage.size_fraction(), Some(0.75));
        assert_eq!(usage.fraction(), 0.75);
        let unlimited = Usage::new(limits(None, None), 5, Some(ByteSize::new(150)));
        assert_eq!(
            (unlimited.tag_fraction(), unlimited.size_fraction()),
            (None, None)
        );
        assert_eq!(unlimited.fraction(), 0.0);
        let over_zero = Usage::new(limits(None, Some(0)), 1, None);
        assert_eq!(over_zero.fraction(), f64::INFINITY);
    }

    proptest! {
        /// A repository is over exactly when the push checks refuse what it holds.
        #[test]
        fn over_matches_the_push_checks(
            size in proptest::option::of(0u64..1000),
            tag_limit in proptest::option::of(0u64..50),
            tags in 0u64..60,
            largest in proptest::option::of(0u64..1200),
            near_percent in 0u8..=100,
        ) {
            let limits = limits(size, tag_limit);
            let policy = crate::Policy::new(crate::Config {
                global: limits,
                ..crate::Config::default()
            })
            .expect("valid");
            let applied = policy.limits_for(&"p/app".parse().expect("valid name"));
            let refused = !applied.check_tags(0, tags).is_allowed()
                || largest.is_some_and(|l| !applied.check_image_size(ByteSize::new(l)).is_allowed());
            let usage = Usage::new(limits, tags, largest.map(ByteSize::new));
            prop_assert_eq!(usage.standing(near_percent) == Standing::Over, refused);
            if usage.standing(near_percent) == Standing::Near {
                prop_assert!(usage.fraction() * 100.0 >= f64::from(near_percent) - 1e-9);
            }
        }
    }
}
