//! Quota arithmetic: what a namespace holds, what a push adds, and the decision for each kind
//! of quota.

use std::fmt;

use serde::Serialize;

use super::{AppliedQuota, QuotaSource};
use crate::{ByteSize, Enforcement, Limit, Standing, WarnAt};

/// What a namespace holds, as counted by the caller (an inventory of the registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NamespaceUsage {
    /// Repositories holding at least one tag.
    pub repositories: u64,
    /// Distinct images (top-level manifests) in all its repositories.
    pub images: u64,
    /// Tags of all its repositories together.
    pub tags: u64,
    /// Bytes of the distinct blobs (configs and layers) of every manifest stored, each once.
    pub storage_bytes: u64,
}

/// What one push adds to its namespace, as worked out by the caller from the push and the
/// inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PushDelta {
    /// The push gives its first tag to a repository that holds none (a push by digest alone
    /// adds no repository: a repository counts once it holds a tag).
    pub new_repository: bool,
    /// The push adds an image the namespace's repository does not hold (a new tag on a digest
    /// it holds adds none; an index and its children are one image).
    pub new_image: bool,
    /// Tags the push creates (re-pushed tags, and exempt signature tags, not counted).
    pub new_tags: u64,
    /// Bytes of the blobs the push references that the namespace does not hold yet (each
    /// distinct blob once; foreign layers not counted).
    pub new_blob_bytes: u64,
}

impl PushDelta {
    /// What the push adds of `kind`, in its unit (bytes for storage).
    pub fn added(&self, kind: QuotaKind) -> u64 {
        match kind {
            QuotaKind::Repositories => u64::from(self.new_repository),
            QuotaKind::Images => u64::from(self.new_image),
            QuotaKind::Tags => self.new_tags,
            QuotaKind::Storage => self.new_blob_bytes,
        }
    }
}

impl NamespaceUsage {
    /// What the namespace holds of `kind`, in its unit (bytes for storage).
    pub fn held(&self, kind: QuotaKind) -> u64 {
        match kind {
            QuotaKind::Repositories => self.repositories,
            QuotaKind::Images => self.images,
            QuotaKind::Tags => self.tags,
            QuotaKind::Storage => self.storage_bytes,
        }
    }

    /// The usage once `push` is admitted (sums saturate instead of overflowing).
    pub fn after(&self, push: &PushDelta) -> NamespaceUsage {
        let add = |kind| self.held(kind).saturating_add(push.added(kind));
        NamespaceUsage {
            repositories: add(QuotaKind::Repositories),
            images: add(QuotaKind::Images),
            tags: add(QuotaKind::Tags),
            storage_bytes: add(QuotaKind::Storage),
        }
    }
}

/// The four kinds of namespace quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaKind {
    /// `repositories`.
    Repositories,
    /// `images`.
    Images,
    /// `tags`.
    Tags,
    /// `storage`.
    Storage,
}

impl QuotaKind {
    /// Every kind, in the order of the configuration.
    pub const ALL: [QuotaKind; 4] = [
        QuotaKind::Repositories,
        QuotaKind::Images,
        QuotaKind::Tags,
        QuotaKind::Storage,
    ];

    /// `repositories`, `images`, `tags` or `storage`: the key under `hard`, and the name in
    /// logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::Repositories => "repositories",
            QuotaKind::Images => "images",
            QuotaKind::Tags => "tags",
            QuotaKind::Storage => "storage",
        }
    }
}

impl fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one kind of namespace quota for one push.
///
/// ```
/// use limits_core::{NamespaceUsage, Policy, PushDelta, QuotaKind};
///
/// let policy = Policy::from_yaml(r#"
/// namespace_quotas: |
///   - namespace: ^team-a$
///     hard: {repositories: "20", storage: 50GB}
/// "#)?;
/// let quota = policy.quota_for(&"team-a/app".parse()?).expect("a quota applies");
/// let usage = NamespaceUsage { repositories: 20, storage_bytes: 50 << 30, ..Default::default() };
/// let push = PushDelta { new_repository: true, new_blob_bytes: 1 << 20, ..Default::default() };
/// let decisions = quota.check(&usage, &push);
/// let refused: Vec<String> = decisions.iter().filter(|d| d.refuses()).map(|d| d.to_string()).collect();
/// assert_eq!(refused, [
///     "namespace team-a would hold 21 repositories, over its quota of 20 (namespace quota 1: ^team-a$): it holds 20 and this push adds 1",
///     "namespace team-a would store 50.0 GiB (53688139776 bytes), over its storage quota of 50 GiB (53687091200 bytes) (namespace quota 1: ^team-a$): it stores 50.0 GiB (53687091200 bytes) and this push adds 1.0 MiB (1048576 bytes) of new blobs",
/// ]);
/// assert!(quota.check_kind(QuotaKind::Images, &usage, &push).is_allowed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDecision {
    /// The namespace.
    pub namespace: String,
    /// Which quota.
    pub kind: QuotaKind,
    /// What the namespace holds of it.
    pub held: u64,
    /// What the push adds.
    pub added: u64,
    /// The limit (bytes for storage).
    pub limit: Limit<u64>,
    /// The quota that sets the limit.
    pub source: QuotaSource,
    /// What happens when the limit is broken.
    pub enforcement: Enforcement,
    /// The warning threshold below the limit.
    pub warn_at: WarnAt,
    allowed: bool,
}

/// The facts of a quota decision as numbers, for the `detail` of an error answer and for logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaDetail {
    /// The namespace.
    pub namespace: String,
    /// `namespace_repositories`, `namespace_images`, `namespace_tags` or `namespace_storage`.
    pub check: &'static str,
    /// What the namespace would hold (bytes for storage).
    pub measured: u64,
    /// The limit, or `None` when unlimited.
    pub limit: Option<u64>,
    /// What the namespace holds.
    pub held: u64,
    /// What the push adds.
    pub added: u64,
    /// 1-based position of the quota in `namespace_quotas`.
    pub quota: usize,
    /// The quota's `namespace` pattern.
    pub quota_namespace: String,
}

impl AppliedQuota {
    /// The decision for each kind, in the order of [`QuotaKind::ALL`]: unlimited kinds and
    /// kinds the push adds nothing to are allowed.
    pub fn check(&self, usage: &NamespaceUsage, push: &PushDelta) -> Vec<QuotaDecision> {
        QuotaKind::ALL
            .iter()
            .map(|kind| self.check_kind(*kind, usage, push))
            .collect()
    }

    /// The decision for one kind: allowed when the push adds nothing to it (whatever the
    /// namespace holds) or when what the namespace would hold is within the limit (equal is
    /// within).
    pub fn check_kind(
        &self,
        kind: QuotaKind,
        usage: &NamespaceUsage,
        push: &PushDelta,
    ) -> QuotaDecision {
        let (held, added, limit) = (usage.held(kind), push.added(kind), self.hard.limit(kind));
        QuotaDecision {
            namespace: self.namespace.clone(),
            kind,
            held,
            added,
            limit,
            source: self.source.clone(),
            enforcement: self.enforcement,
            warn_at: self.warn_at,
            allowed: added == 0 || limit.allows(&held.saturating_add(added)),
        }
    }
}

impl QuotaDecision {
    /// What the namespace would hold once the push is admitted.
    pub fn total(&self) -> u64 {
        self.held.saturating_add(self.added)
    }

    /// Whether the push is within this quota.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// Whether the push is refused: over the quota, and the quota is enforced with `deny`.
    pub fn refuses(&self) -> bool {
        !self.allowed && self.enforcement == Enforcement::Deny
    }

    /// Within the quota, near it (at or above `warn_at`), or over it. A push that adds nothing
    /// of this kind is never near.
    pub fn standing(&self) -> Standing {
        if !self.allowed {
            return Standing::Over;
        }
        match self.limit {
            Limit::Max(max) if self.added > 0 && self.warn_at.reached(self.total(), max) => {
                Standing::Near
            }
            _ => Standing::Ok,
        }
    }

    /// `allowed`, `near_limit` or `denied` (over the quota, whatever the enforcement), for logs
    /// and metric labels.
    pub fn verdict(&self) -> &'static str {
        self.standing().verdict()
    }

    /// `namespace_repositories`, `namespace_images`, `namespace_tags` or `namespace_storage`,
    /// for logs and metric labels.
    pub fn check_name(&self) -> &'static str {
        match self.kind {
            QuotaKind::Repositories => "namespace_repositories",
            QuotaKind::Images => "namespace_images",
            QuotaKind::Tags => "namespace_tags",
            QuotaKind::Storage => "namespace_storage",
        }
    }

    /// What the client is told of a push that goes through: over the quota in `warn` mode, or
    /// near it in `deny` or `warn` mode. Nothing in `audit` mode, nor for a refusal.
    pub fn warning(&self) -> Option<String> {
        if self.enforcement == Enforcement::Audit {
            return None;
        }
        match self.standing() {
            Standing::Ok => None,
            Standing::Over => (self.enforcement == Enforcement::Warn).then(|| {
                format!("{self}; the push was accepted because the quota is enforced in warn mode")
            }),
            Standing::Near => {
                let max = self.limit.max().unwrap_or(u64::MAX).max(1);
                let percent = u128::from(self.total()) * 100 / u128::from(max);
                Some(format!(
                    "namespace {} would {} {}, {percent}% of its {} ({}); warnings start at {}",
                    self.namespace,
                    self.verb(),
                    self.amount(self.total()),
                    self.quota_phrase(),
                    self.source,
                    self.warn_at
                ))
            }
        }
    }

    /// The facts as numbers.
    pub fn detail(&self) -> QuotaDetail {
        QuotaDetail {
            namespace: self.namespace.clone(),
            check: self.check_name(),
            measured: self.total(),
            limit: self.limit.max(),
            held: self.held,
            added: self.added,
            quota: self.source.position,
            quota_namespace: self.source.pattern.to_string(),
        }
    }

    fn is_storage(&self) -> bool {
        self.kind == QuotaKind::Storage
    }

    fn verb(&self) -> &'static str {
        if self.is_storage() { "store" } else { "hold" }
    }

    /// A count with its noun, or a size with its exact bytes.
    fn amount(&self, value: u64) -> String {
        if self.is_storage() {
            let size = ByteSize::new(value);
            format!("{size} ({value} bytes)")
        } else {
            format!("{value} {}", self.kind)
        }
    }

    /// `quota of 20`, or `storage quota of 50 GiB (53687091200 bytes)`.
    fn quota_phrase(&self) -> String {
        match (self.is_storage(), self.limit) {
            (_, Limit::Unlimited) => "quota of unlimited".to_owned(),
            (false, Limit::Max(max)) => format!("quota of {max}"),
            (true, Limit::Max(max)) => {
                format!("storage quota of {:#} ({max} bytes)", ByteSize::new(max))
            }
        }
    }
}

/// `namespace team-a would hold 21 repositories, over its quota of 20 (namespace quota 1:
/// ^team-a$): it holds 20 and this push adds 1`; `within` for an allowed push.
impl fmt::Display for QuotaDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let standing = if self.allowed { "within" } else { "over" };
        write!(
            f,
            "namespace {} would {} {}, {standing} its {} ({}): ",
            self.namespace,
            self.verb(),
            self.amount(self.total()),
            self.quota_phrase(),
            self.source
        )?;
        if self.is_storage() {
            let (held, added) = (ByteSize::new(self.held), ByteSize::new(self.added));
            write!(
                f,
                "it stores {held} ({} bytes) and this push adds {added} ({} bytes) of new blobs",
                self.held, self.added
            )
        } else {
            write!(
                f,
                "it holds {} and this push adds {}",
                self.held, self.added
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::QuotaHard;

    fn quota(hard: QuotaHard, enforcement: Enforcement) -> AppliedQuota {
        AppliedQuota {
            namespace: "team-a".to_owned(),
            hard,
            source: QuotaSource {
                position: 1,
                pattern: Arc::from("^team-a$"),
            },
            enforcement,
            warn_at: WarnAt::Off,
        }
    }

    fn limit() -> impl Strategy<Value = Limit<u64>> {
        prop_oneof![Just(Limit::Unlimited), (0u64..40).prop_map(Limit::Max)]
    }

    fn hard() -> impl Strategy<Value = QuotaHard> {
        (limit(), limit(), limit(), limit()).prop_map(|(r, i, t, s)| QuotaHard {
            repositories: r,
            images: i,
            tags: t,
            storage: s.map(ByteSize::new),
        })
    }

    fn push() -> impl Strategy<Value = PushDelta> {
        (any::<bool>(), any::<bool>(), 0u64..4, 0u64..9).prop_map(|(r, i, t, b)| PushDelta {
            new_repository: r,
            new_image: i,
            new_tags: t,
            new_blob_bytes: b,
        })
    }

    fn usage() -> impl Strategy<Value = NamespaceUsage> {
        (0u64..50, 0u64..50, 0u64..50, 0u64..50).prop_map(|(r, i, t, s)| NamespaceUsage {
            repositories: r,
            images: i,
            tags: t,
            storage_bytes: s,
        })
    }

    /// Admits the pushes one after the other, as serialised admissions do, when no kind
    /// refuses; returns the usage at the end and the usages on the way.
    fn admit_all(
        quota: &AppliedQuota,
        start: NamespaceUsage,
        pushes: &[PushDelta],
    ) -> Vec<NamespaceUsage> {
        let mut seen = vec![start];
        let mut usage = start;
        for push in pushes {
            if !quota.check(&usage, push).iter().any(QuotaDecision::refuses) {
                usage = usage.after(push);
                seen.push(usage);
            }
        }
        seen
    }

    proptest! {
        /// In deny mode, admissions in any order never take a kind past its limit: a kind that
        /// started within its limit stays within it, and one that started over it (a limit
        /// lowered) never grows.
        #[test]
        fn deny_never_passes_a_limit_in_any_order(
            hard in hard(),
            start in usage(),
            pushes in prop::collection::vec(push(), 0..24).prop_shuffle(),
        ) {
            let quota = quota(hard, Enforcement::Deny);
            for usage in admit_all(&quota, start, &pushes) {
                for kind in QuotaKind::ALL {
                    if let Limit::Max(max) = hard.limit(kind) {
                        prop_assert!(
                            usage.held(kind) <= max.max(start.held(kind)),
                            "{kind}: {} over {max} from {}", usage.held(kind), start.held(kind)
                        );
                    }
                }
            }
        }

        /// A decision allows exactly what adds nothing or stays within the limit, and only
        /// `deny` refuses.
        #[test]
        fn allowed_is_within_the_limit(
            hard in hard(),
            usage in usage(),
            push in push(),
            enforcement in prop::sample::select(vec![Enforcement::Deny, Enforcement::Warn, Enforcement::Audit]),
        ) {
            let quota = quota(hard, enforcement);
            for decision in quota.check(&usage, &push) {
                let kind = decision.kind;
                let total = usage.held(kind) + push.added(kind);
                let within = push.added(kind) == 0 || hard.limit(kind).allows(&total);
                prop_assert_eq!(decision.is_allowed(), within);
                prop_assert_eq!(decision.refuses(), !within && enforcement == Enforcement::Deny);
                prop_assert_eq!(decision.total(), total);
            }
        }
    }

    #[test]
    fn sums_saturate() {
        let usage = NamespaceUsage {
            storage_bytes: u64::MAX,
            ..NamespaceUsage::default()
        };
        let push = PushDelta {
            new_blob_bytes: 5,
            ..PushDelta::default()
        };
        assert_eq!(usage.after(&push).storage_bytes, u64::MAX);
        let hard = QuotaHard {
            storage: Limit::Max(ByteSize::new(u64::MAX)),
            ..QuotaHard::UNLIMITED
        };
        let decision = quota(hard, Enforcement::Deny).check_kind(QuotaKind::Storage, &usage, &push);
        assert!(decision.is_allowed());
    }
}
