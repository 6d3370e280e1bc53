//! How much of its quota a namespace already uses: the verdict of a namespace report.

use super::{NamespaceUsage, QuotaHard, QuotaKind};
use crate::Standing;

/// What a namespace holds, measured against the quota that applies to it.
///
/// ```
/// use limits_core::{Limit, NamespaceUsage, QuotaHard, QuotaKind, QuotaUsage, Standing};
///
/// let hard = QuotaHard { repositories: Limit::Max(20), tags: Limit::Max(200), ..QuotaHard::UNLIMITED };
/// let usage = NamespaceUsage { repositories: 19, images: 500, tags: 201, storage_bytes: 1 << 40 };
/// let quota = QuotaUsage::new(hard, usage);
/// assert_eq!(quota.standing_of(QuotaKind::Tags, 90), Standing::Over);
/// assert_eq!(quota.standing_of(QuotaKind::Repositories, 90), Standing::Near);
/// assert_eq!(quota.standing_of(QuotaKind::Images, 90), Standing::Ok);
/// assert_eq!(quota.standing(90), Standing::Over);
/// assert_eq!(quota.fraction(), 1.005);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    /// The quota's limits.
    pub hard: QuotaHard,
    /// What the namespace holds.
    pub usage: NamespaceUsage,
}

impl QuotaUsage {
    /// The usage `usage` of a namespace whose quota is `hard`.
    pub fn new(hard: QuotaHard, usage: NamespaceUsage) -> Self {
        Self { hard, usage }
    }

    /// Where one kind stands (see [`Standing::of`]): over when the namespace holds more than
    /// the quota allows (equal is within, as for pushes), near at or above `near_percent`
    /// percent of it.
    pub fn standing_of(&self, kind: QuotaKind, near_percent: u8) -> Standing {
        Standing::of(self.usage.held(kind), self.hard.limit(kind), near_percent)
    }

    /// The worst standing of the four kinds.
    pub fn standing(&self, near_percent: u8) -> Standing {
        QuotaKind::ALL
            .iter()
            .map(|kind| self.standing_of(*kind, near_percent))
            .min()
            .unwrap_or(Standing::Ok)
    }

    /// What the namespace holds of `kind` as a fraction of its quota; `None` when unlimited.
    pub fn fraction_of(&self, kind: QuotaKind) -> Option<f64> {
        self.hard.limit(kind).fraction(self.usage.held(kind))
    }

    /// The largest fraction of the four kinds (0 when none is bounded): how close the
    /// namespace is to its nearest limit, for sorting.
    pub fn fraction(&self) -> f64 {
        QuotaKind::ALL
            .iter()
            .filter_map(|kind| self.fraction_of(*kind))
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ByteSize, Limit};
    use proptest::prelude::*;

    fn hard(repositories: Option<u64>, storage: Option<u64>) -> QuotaHard {
        QuotaHard {
            repositories: repositories.map_or(Limit::Unlimited, Limit::Max),
            storage: storage.map_or(Limit::Unlimited, |s| Limit::Max(ByteSize::new(s))),
            ..QuotaHard::UNLIMITED
        }
    }

    fn usage(repositories: u64, storage_bytes: u64) -> NamespaceUsage {
        NamespaceUsage {
            repositories,
            storage_bytes,
            ..NamespaceUsage::default()
        }
    }

    /// Repositories limit, storage limit, repositories, storage, near %, standing.
    type Case = (Option<u64>, Option<u64>, u64, u64, u8, Standing);

    #[test]
    fn standings() {
        use Standing::*;
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // repositories limit, storage limit, repositories, storage, near %, standing
            (Some(20), Some(1000), 21, 0,    90, Over),
            (Some(20), Some(1000), 20, 0,    90, Near),
            (Some(20), Some(1000), 18, 0,    90, Near),
            (Some(20), Some(1000), 17, 0,    90, Ok),
            (Some(20), Some(1000), 17, 900,  90, Near),
            (Some(20), Some(1000), 17, 899,  90, Ok),
            (Some(20), Some(1000), 20, 1001, 90, Over),
            (Some(20), Some(1000), 17, 899,  80, Near),
            (None,     None,       u64::MAX, u64::MAX, 1, Ok),
            (Some(0),  None,       0,  5,    90, Ok),
            (Some(0),  None,       1,  5,    90, Over),
        ];
        for &(repos_limit, storage_limit, repos, storage, near, want) in cases {
            let quota = QuotaUsage::new(hard(repos_limit, storage_limit), usage(repos, storage));
            assert_eq!(quota.standing(near), want, "{quota:?} at {near}%");
        }
    }

    #[test]
    fn fractions() {
        let quota = QuotaUsage::new(hard(Some(20), Some(1000)), usage(5, 750));
        assert_eq!(quota.fraction_of(QuotaKind::Repositories), Some(0.25));
        assert_eq!(quota.fraction_of(QuotaKind::Storage), Some(0.75));
        assert_eq!(quota.fraction_of(QuotaKind::Tags), None);
        assert_eq!(quota.fraction(), 0.75);
        let unlimited = QuotaUsage::new(QuotaHard::UNLIMITED, usage(5, 750));
        assert_eq!(unlimited.fraction(), 0.0);
    }

    proptest! {
        /// A namespace is over exactly when a push decision taken on what it holds would find
        /// it past a limit: the quota arithmetic of pushes agrees with the report.
        #[test]
        fn over_exactly_when_a_kind_is_past_its_limit(
            limit in proptest::option::of(0u64..50),
            held in 0u64..60,
            near in 1u8..=100,
        ) {
            let quota = QuotaUsage::new(hard(limit, None), usage(held, 0));
            let past = limit.is_some_and(|l| held > l);
            prop_assert_eq!(quota.standing(near) == Standing::Over, past);
            if quota.standing(near) == Standing::Near {
                prop_assert!(quota.fraction() * 100.0 >= f64::from(near) - 1e-9);
            }
        }
    }
}
