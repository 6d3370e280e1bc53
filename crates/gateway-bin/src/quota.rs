//! The namespace step of a manifest push: `image_count_limit` and `namespace_quotas`, decided
//! on the namespace's inventory ([`Inventory::push_view`]) under a namespace lease, in this
//! process.
//!
//! The lease is a per-namespace async mutex, always taken before the repository's lease
//! (`coordination`), so two pushes never wait on each other crosswise. The decision is taken
//! on the inventory; when a push would be refused, or lands at or within one of a limit
//! enforced with `deny` (for storage: within the push's own new bytes), the namespace is read
//! from the registry again first ([`Inventory::reconcile_now`]) and the decision taken anew on
//! the fresh count: nothing is refused on a count the registry was not asked for during the
//! push. Once the registry answered (2xx, or an unknown outcome), the push is recorded in the
//! inventory by the forward task that owns the leases ([`AdmittedPush::settle`]), and only then
//! is the namespace lease released.
//!
//! Platform manifests pushed by digest before their index: an image manifest pushed by digest
//! without a tag (and not attached to another manifest) is counted from the moment it is
//! admitted, but its own push is refused for `images` (and `image_count_limit`) only when the
//! count would pass the limit by more than [`PLATFORM_GRACE`]. The index that follows names
//! them, and is checked as one new image in place of the platform images it names: a
//! multi-platform push is refused at its index, never midway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::Bytes;
use limits_core::{
    AppliedLimits, AppliedQuota, Decision, Enforcement, Limit, NamespaceUsage, PushDelta,
    QuotaDecision, QuotaKind, namespace_of,
};
use oci_manifest::{Digest, Manifest};
use registry_api::Reference;
use tokio::sync::OwnedMutexGuard;
use upstream_client::{Inventory as Catalog, ReqwestUpstream};

use crate::decision_log::DecisionLog;
use crate::inventory::{Inventory, ManifestFacts, PushView};
use crate::options::Options;
use crate::refusal::Refusal;
use crate::reservation::Delivery;

/// How far past `images` (and `image_count_limit`) image manifests pushed by digest without a
/// tag may take a count, for the platform manifests of a multi-platform image that arrive
/// before their index.
pub const PLATFORM_GRACE: u64 = 16;

/// Leases per namespace, in this process.
#[derive(Debug, Default)]
pub struct NamespaceLeases {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

/// A namespace's lease: held until dropped.
#[derive(Debug)]
pub struct NamespaceLease {
    _guard: OwnedMutexGuard<()>,
}

impl NamespaceLeases {
    /// Waits for `namespace`'s lease.
    pub async fn lease(&self, namespace: &str) -> NamespaceLease {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            if locks.len() >= 1024 {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            match locks.get(namespace).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(namespace.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        NamespaceLease {
            _guard: lock.lock_owned().await,
        }
    }
}

/// The inventory push decisions count from, and the namespace leases.
#[derive(Debug)]
pub struct QuotaGate<C = ReqwestUpstream> {
    inventory: Arc<Inventory<C>>,
    leases: NamespaceLeases,
}

impl<C> QuotaGate<C> {
    /// Decisions counted from `inventory`.
    pub fn new(inventory: Arc<Inventory<C>>) -> Self {
        QuotaGate {
            inventory,
            leases: NamespaceLeases::default(),
        }
    }
}

/// The namespace step of one push: the gate, and the namespace quota that applies, if any.
#[derive(Debug)]
pub struct QuotaStep<'a, C = ReqwestUpstream> {
    /// The inventory and the leases.
    pub gate: &'a QuotaGate<C>,
    /// The namespace quota of the repository (`Policy::quota_for`).
    pub quota: Option<AppliedQuota>,
}

/// What the step decides on besides the inventory: the push.
#[derive(Debug)]
pub struct PushFacts<'a> {
    /// The pushed manifest.
    pub manifest: &'a Manifest,
    /// Its bytes.
    pub bytes: &'a Bytes,
    /// The reference it is pushed to.
    pub reference: &'a Reference,
    /// The tags it creates or moves that count (exempt signature tags left out).
    pub counted: &'a [String],
    /// Every tag it names, exempt ones included (what the registry will hold).
    pub tags: &'a [String],
}

/// A push the step admitted: recorded in the inventory once the registry answered, then the
/// namespace lease is released.
#[derive(Debug)]
pub struct AdmittedPush<C = ReqwestUpstream> {
    _lease: NamespaceLease,
    inventory: Arc<Inventory<C>>,
    repository: String,
    digest: Digest,
    tags: Vec<String>,
    facts: Vec<(Digest, ManifestFacts)>,
}

impl<C: Catalog> AdmittedPush<C> {
    /// Records the push unless the registry surely did not take it, then releases the lease.
    pub fn settle(self, delivery: Delivery) {
        if delivery != Delivery::NotCreated {
            self.inventory
                .record_push(&self.repository, &self.digest, &self.tags, self.facts);
        }
    }
}

impl<C: Catalog> QuotaStep<'_, C> {
    /// The namespace's lease when the step applies to a push under `applied`: the repository
    /// has a namespace, and its `image_count_limit` is bounded or a namespace quota applies.
    pub async fn lease(&self, applied: &AppliedLimits) -> Option<NamespaceLease> {
        let namespace = namespace_of(applied.repository.as_str())?;
        let counts = applied.limits.image_count_limit != Limit::Unlimited;
        let bounded = self.quota.as_ref().is_some_and(|quota| {
            QuotaKind::ALL
                .iter()
                .any(|k| quota.hard.limit(*k).max().is_some())
        });
        if !counts && !bounded {
            return None;
        }
        Some(self.gate.leases.lease(namespace).await)
    }

    /// Decides the push under `lease` through `decisions`; the warnings go to `warnings`.
    pub async fn decide(
        &self,
        lease: NamespaceLease,
        applied: &AppliedLimits,
        push: PushFacts<'_>,
        (decisions, options): (&DecisionLog, &Options),
        warnings: &mut Vec<String>,
    ) -> Result<Option<AdmittedPush<C>>, Refusal> {
        let repository = applied.repository.as_str();
        let Some(namespace) = namespace_of(repository) else {
            return Ok(None);
        };
        let digest = match push.reference {
            Reference::Digest(named) => Digest::of_bytes_named(named.algorithm(), push.bytes),
            Reference::Tag(_) => Digest::sha256(push.bytes),
        };
        let facts = vec![(digest.clone(), ManifestFacts::of(push.manifest))];
        let shape = Shape::of(push.manifest, push.counted, push.tags);
        let inventory = &self.gate.inventory;
        let view = |facts: Vec<(Digest, ManifestFacts)>| {
            inventory.push_view(repository, &digest, push.counted, facts)
        };
        let mut counted = match view(facts.clone()).await {
            Ok(Some(view)) => decide(applied, self.quota.as_ref(), &view, shape),
            Ok(None) => return Ok(None),
            Err(err) => return unavailable(options, repository, err.into()),
        };
        if counted.confirm() {
            // Confirmed with the registry before refusing, or when close to a limit.
            let fresh = match inventory.reconcile_now(namespace).await {
                Ok(_) => view(facts.clone()).await,
                Err(err) => Err(err),
            };
            counted = match fresh {
                Ok(Some(view)) => decide(applied, self.quota.as_ref(), &view, shape),
                Ok(None) => return Ok(None),
                Err(err) => return unavailable(options, repository, err.into()),
            };
        }
        let reference = push.reference.to_string();
        counted.log(decisions, repository, &reference, warnings)?;
        Ok(Some(AdmittedPush {
            _lease: lease,
            inventory: Arc::clone(inventory),
            repository: repository.to_owned(),
            digest,
            tags: push.tags.to_vec(),
            facts,
        }))
    }
}

/// The namespace's count could not be read: 503, or allowed by `--fail-open`.
fn unavailable<T>(
    options: &Options,
    repository: &str,
    err: Box<crate::inventory::InventoryError>,
) -> Result<Option<T>, Refusal> {
    if options.fail_open {
        tracing::warn!(repository, error = %err, "image and namespace counts unread; allowed by --fail-open");
        return Ok(None);
    }
    Err(Refusal::InventoryUnavailable(*err))
}

/// What kind of push it is, for the images count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
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
    fn of(manifest: &Manifest, counted: &[String], tags: &[String]) -> Self {
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
struct Counted {
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
fn decide(
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
    fn confirm(&self) -> bool {
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
    fn log(
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

    #[tokio::test]
    async fn leases_are_per_namespace() {
        let leases = NamespaceLeases::default();
        let held = leases.lease("team").await;
        let other = tokio::time::timeout(std::time::Duration::from_millis(50), leases.lease("b"));
        assert!(other.await.is_ok(), "another namespace is free");
        let same = tokio::time::timeout(std::time::Duration::from_millis(50), leases.lease("team"));
        assert!(same.await.is_err(), "the same namespace waits");
        drop(held);
        let again =
            tokio::time::timeout(std::time::Duration::from_millis(50), leases.lease("team"));
        assert!(again.await.is_ok());
    }
}
