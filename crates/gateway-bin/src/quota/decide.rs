//! The decisions of the namespace step on one [`PushView`] (pure): which image count and which
//! quota kinds are checked, how a push by digest and an index are counted, and when a decision
//! is confirmed with the registry first.

use limits_core::{
    AppliedLimits, AppliedQuota, Decision, Enforcement, Limit, NamespaceUsage, PushDelta,
    QuotaDecision, QuotaKind,
};
use oci_manifest::Manifest;

use crate::decision_log::DecisionLog;
use crate::inventory::PushView;
use crate::refusal::Refusal;

use super::PLATFORM_GRACE;

/// What kind of push it is, for the images count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// An image manifest pushed by digest, without a tag, attached to nothing.
    UntaggedImage,
    /// An index.
    Index,
    /// Only exempt signature tags: no image, no tag, no repository.
    Exempt,
    /// Anything else.
    Other,
}

impl Shape {
    pub(super) fn of(manifest: &Manifest, counted: &[String], tags: &[String]) -> Self {
        match manifest {
            _ if counted.is_empty() && !tags.is_empty() => Shape::Exempt,
            Manifest::Index(_) => Shape::Index,
            Manifest::Image(image) if tags.is_empty() && image.subject().is_none() => {
                Shape::UntaggedImage
            }
            Manifest::Image(_) => Shape::Other,
        }
    }
}

/// The decisions of one push: the image count's, when bounded, and each bounded quota kind's.
#[derive(Debug)]
pub(super) struct Counted {
    images: Option<Decision>,
    quotas: Vec<QuotaDecision>,
}

/// The images a repository or namespace holds and whether the push adds one, as the step
/// counts them for `limit` (see the module docs).
fn counted_images(
    held: u64,
    adds: bool,
    view: &PushView,
    shape: Shape,
    limit: Limit<u64>,
) -> (u64, bool) {
    match shape {
        Shape::Exempt => (held, false),
        Shape::Index if view.platform_images > 0 => {
            (held.saturating_sub(view.platform_images), true)
        }
        Shape::UntaggedImage => match limit {
            Limit::Max(max) if adds && held < max.saturating_add(PLATFORM_GRACE) => (held, false),
            _ => (held, adds),
        },
        _ => (held, adds),
    }
}

/// The decisions on `view` (pure).
pub(super) fn decide(
    applied: &AppliedLimits,
    quota: Option<&AppliedQuota>,
    view: &PushView,
    shape: Shape,
) -> Counted {
    let limit = applied.limits.image_count_limit;
    let images = (limit != Limit::Unlimited).then(|| {
        let held = view.repository.images;
        let (held, adds) = counted_images(held, view.delta.new_image, view, shape, limit);
        applied.check_images(held, adds)
    });
    let quotas = quota.map_or_else(Vec::new, |quota| {
        let (held, adds) = counted_images(
            view.usage.images,
            view.delta.new_image,
            view,
            shape,
            quota.hard.limit(QuotaKind::Images),
        );
        let usage = NamespaceUsage {
            images: held,
            ..view.usage
        };
        let mut delta = PushDelta {
            new_image: adds,
            ..view.delta
        };
        if shape == Shape::Exempt {
            delta.new_repository = false;
        }
        QuotaKind::ALL
            .iter()
            .filter(|kind| quota.hard.limit(**kind).max().is_some())
            .map(|kind| quota.check_kind(*kind, &usage, &delta))
            .collect()
    });
    Counted { images, quotas }
}

/// Whether `held + added` is over `limit` or within `added` of it.
fn close(held: u64, added: u64, limit: Option<u64>) -> bool {
    match limit {
        Some(max) => added > 0 && held.saturating_add(added.saturating_mul(2)) >= max,
        None => false,
    }
}

impl Counted {
    /// Whether a decision enforced with `deny` refuses or is close to its limit.
    pub(super) fn confirm(&self) -> bool {
        let images = self.images.as_ref().is_some_and(|decision| {
            let limits_core::Check::ImageCount {
                existing,
                adds,
                limit,
            } = decision.check
            else {
                return false;
            };
            decision.enforcement == Enforcement::Deny
                && close(existing, u64::from(adds), limit.max())
        });
        images
            || self.quotas.iter().any(|decision| {
                decision.enforcement == Enforcement::Deny
                    && close(decision.held, decision.added, decision.limit.max())
            })
    }

    /// Logs every decision; `Err` with the first refusal.
    pub(super) fn log(
        self,
        decisions: &DecisionLog,
        repository: &str,
        reference: &str,
        warnings: &mut Vec<String>,
    ) -> Result<(), Refusal> {
        let mut refusal = None;
        if let Some(decision) = &self.images {
            decisions.log(decision, reference);
            if decision.refuses() {
                refusal = Some(Refusal::denied(decision));
            }
            warnings.extend(decision.warning());
        }
        for decision in &self.quotas {
            decisions.log_quota(decision, repository, reference);
            if decision.refuses() && refusal.is_none() {
                refusal = Some(Refusal::QuotaDenied(Box::new(decision.clone())));
            }
            warnings.extend(decision.warning());
        }
        refusal.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use limits_core::Policy;

    use super::*;
    use crate::inventory::RepositoryCounts;

    const CONFIG: &str = r#"
rules:
- path: ^team/
  limit: {max_image_size: 1GB, tag_count_limit: unlimited, image_count_limit: 2}
namespace_quotas:
- namespace: ^team$
  hard: {repositories: "5", images: "3", tags: "4", storage: 1KB}
"#;

    /// (repository images, namespace usage, delta, platform images)
    type Case = (u64, (u64, u64, u64, u64), (bool, bool, u64, u64), u64);

    fn view((repo, usage, delta, platform_images): Case) -> PushView {
        PushView {
            usage: NamespaceUsage {
                repositories: usage.0,
                images: usage.1,
                tags: usage.2,
                storage_bytes: usage.3,
            },
            delta: PushDelta {
                new_repository: delta.0,
                new_image: delta.1,
                new_tags: delta.2,
                new_blob_bytes: delta.3,
            },
            repository: RepositoryCounts {
                images: repo,
                tags: 0,
            },
            platform_images,
        }
    }

    /// Each case: the push, what refuses it (`image_count` or a quota check name), and whether
    /// the decision is confirmed with the registry first.
    #[test]
    fn decisions() {
        let policy = Policy::from_yaml(CONFIG).expect("valid");
        let repository = "team/app".parse().expect("name");
        let applied = policy.limits_for(&repository);
        let quota = policy.quota_for(&repository);
        #[rustfmt::skip]
        let cases: &[(Shape, Case, &[&str], bool)] = &[
            // Far from every limit.
            (Shape::Other, (0, (0, 0, 0, 0), (true, false, 1, 100), 0), &[], false),
            // At the repository's image limit: a new image is refused, a new tag is not.
            (Shape::Other, (2, (1, 2, 2, 0), (false, true, 1, 0), 0), &["image_count"], true),
            (Shape::Other, (2, (1, 2, 1, 0), (false, false, 1, 0), 0), &[], false),
            // One below a limit: allowed, confirmed.
            (Shape::Other, (1, (4, 2, 2, 0), (true, true, 1, 0), 0), &[], true),
            // Each namespace kind at its limit.
            (Shape::Other, (0, (5, 0, 0, 0), (true, false, 1, 0), 0), &["namespace_repositories"], true),
            (Shape::Other, (0, (1, 3, 0, 0), (false, true, 0, 0), 0), &["namespace_images"], true),
            (Shape::Other, (0, (1, 0, 4, 0), (false, false, 1, 0), 0), &["namespace_tags"], true),
            (Shape::Other, (0, (1, 0, 0, 1000), (false, false, 0, 100), 0), &["namespace_storage"], true),
            // Storage within the push's own bytes of the limit: confirmed.
            (Shape::Other, (0, (1, 0, 0, 900), (false, false, 0, 100), 0), &[], true),
            (Shape::Other, (0, (1, 0, 0, 700), (false, false, 0, 100), 0), &[], false),
            // Platform manifests by digest: within the grace, not refused.
            (Shape::UntaggedImage, (2, (1, 3, 1, 0), (false, true, 0, 0), 0), &[], false),
            (Shape::UntaggedImage, (18, (1, 18, 1, 0), (false, true, 0, 0), 0), &["image_count"], true),
            (Shape::UntaggedImage, (1, (1, 19, 1, 0), (false, true, 0, 0), 0), &["namespace_images"], true),
            // The index that names them is one new image in their place.
            (Shape::Index, (3, (1, 3, 1, 0), (false, false, 1, 0), 2), &[], true),
            (Shape::Index, (4, (1, 4, 1, 0), (false, false, 1, 0), 2), &["image_count"], true),
            (Shape::Index, (2, (1, 5, 1, 0), (false, false, 1, 0), 2), &["namespace_images"], true),
            // Only exempt signature tags: no image, no repository.
            (Shape::Exempt, (2, (5, 3, 4, 0), (true, true, 0, 0), 0), &[], false),
        ];
        for (shape, case, refused, confirm) in cases {
            let counted = decide(&applied, quota.as_ref(), &view(*case), *shape);
            let mut got: Vec<&str> = counted
                .images
                .iter()
                .filter(|d| d.refuses())
                .map(|d| d.check.name())
                .collect();
            got.extend(
                counted
                    .quotas
                    .iter()
                    .filter(|d| d.refuses())
                    .map(QuotaDecision::check_name),
            );
            assert_eq!(&got, refused, "{shape:?} {case:?}");
            assert_eq!(counted.confirm(), *confirm, "{shape:?} {case:?}");
        }
    }
}
