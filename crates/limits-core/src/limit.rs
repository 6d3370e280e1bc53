//! Limits: a bound or `unlimited`, and the limits a repository gets.

use std::fmt;

use crate::ByteSize;

/// A bound on a measured value, or no bound at all (`unlimited` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit<T> {
    /// Values up to and including this one are allowed.
    Max(T),
    /// Every value is allowed.
    Unlimited,
}

impl<T: PartialOrd> Limit<T> {
    /// Whether `value` is within the limit (equal counts as within).
    pub fn allows(&self, value: &T) -> bool {
        match self {
            Limit::Max(max) => value <= max,
            Limit::Unlimited => true,
        }
    }
}

impl<T> Limit<T> {
    /// The bound mapped by `f`; unlimited stays unlimited.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Limit<U> {
        match self {
            Limit::Max(max) => Limit::Max(f(max)),
            Limit::Unlimited => Limit::Unlimited,
        }
    }
}

impl<T: Copy> Limit<T> {
    /// The bound, or `None` when unlimited.
    pub fn max(&self) -> Option<T> {
        match self {
            Limit::Max(max) => Some(*max),
            Limit::Unlimited => None,
        }
    }
}

impl Limit<u64> {
    /// `value` as a fraction of the bound (1.0 at the limit); `None` when unlimited. A bound of
    /// zero gives 0 for a value of zero and infinity above it.
    ///
    /// ```
    /// use limits_core::Limit;
    ///
    /// assert_eq!(Limit::Max(20).fraction(15), Some(0.75));
    /// assert_eq!(Limit::Max(0).fraction(1), Some(f64::INFINITY));
    /// assert_eq!(Limit::Unlimited.fraction(15), None);
    /// ```
    pub fn fraction(&self, value: u64) -> Option<f64> {
        match *self {
            Limit::Unlimited => None,
            Limit::Max(0) if value == 0 => Some(0.0),
            Limit::Max(0) => Some(f64::INFINITY),
            Limit::Max(max) => Some(value as f64 / max as f64),
        }
    }
}

/// Sizes print in their compact form (`20 MiB`), counts as numbers, and no bound as `unlimited`.
impl<T: fmt::Display> fmt::Display for Limit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Max(max) => write!(f, "{max:#}"),
            Limit::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// The limits that apply to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The largest image: the sum of a manifest's layer sizes.
    pub max_image_size: Limit<ByteSize>,
    /// The most tags the repository may hold.
    pub tag_count_limit: Limit<u64>,
    /// The most images the repository may hold: distinct top-level manifests (one a tag points
    /// to, or one pushed by digest that is neither a child of an index nor attached to another
    /// manifest). Optional in the configuration; absent, unlimited.
    pub image_count_limit: Limit<u64>,
}

impl Limits {
    /// The original product's defaults: `1GB` and `1000` tags; no image count limit.
    pub const DEFAULT: Limits = Limits {
        max_image_size: Limit::Max(ByteSize::new(1 << 30)),
        tag_count_limit: Limit::Max(1000),
        image_count_limit: Limit::Unlimited,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// `max_image_size 20 MiB, tag_count_limit 3`, with `, image_count_limit 50` when the image
/// count is bounded (the key is optional and absent means unlimited).
impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "max_image_size {}, tag_count_limit {}",
            self.max_image_size, self.tag_count_limit
        )?;
        if let Limit::Max(images) = self.image_count_limit {
            write!(f, ", image_count_limit {images}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_up_to_and_including_the_bound() {
        let cases: &[(Limit<u64>, u64, bool)] = &[
            (Limit::Max(3), 2, true),
            (Limit::Max(3), 3, true),
            (Limit::Max(3), 4, false),
            (Limit::Max(0), 0, true),
            (Limit::Max(0), 1, false),
            (Limit::Unlimited, u64::MAX, true),
        ];
        for (limit, value, allowed) in cases {
            assert_eq!(limit.allows(value), *allowed, "{limit:?} {value}");
        }
    }

    #[test]
    fn display() {
        assert_eq!(Limit::Max(ByteSize::new(20 << 20)).to_string(), "20 MiB");
        assert_eq!(Limit::<ByteSize>::Unlimited.to_string(), "unlimited");
        assert_eq!(Limit::Max(10u64).to_string(), "10");
        assert_eq!(
            Limits::DEFAULT.to_string(),
            "max_image_size 1 GiB, tag_count_limit 1000"
        );
        let bounded = Limits {
            image_count_limit: Limit::Max(50),
            ..Limits::DEFAULT
        };
        assert_eq!(
            bounded.to_string(),
            "max_image_size 1 GiB, tag_count_limit 1000, image_count_limit 50"
        );
    }
}
