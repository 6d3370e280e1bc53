//! The namespace step of a manifest push: `image_count_limit` and `namespace_quotas`, decided
//! on the namespace's inventory ([`Inventory::push_view`]) under a namespace lease.
//!
//! The lease ([`lease`]) is a per-namespace async mutex, and with `--coordination redis://` a
//! lease in Redis too, always taken before the repository's lease (`coordination`), so two
//! pushes never wait on each other crosswise. With Redis, the holder first applies the pushes
//! other replicas admitted in the namespace since it last held it ([`shared`]), and appends its
//! own push to the namespace's log before releasing the lease. The decision is taken
//! on the inventory; when a push would be refused, or lands at or within one of a limit
//! enforced with `deny` (for storage: within the push's own new bytes), the namespace is read
//! from the registry again first ([`Inventory::reconcile_now`]) and the decision taken anew on
//! the fresh count: nothing is refused on a count the registry was not asked for during the
//! push. Once the registry answered (2xx, or an unknown outcome), the push is recorded in the
//! inventory by the forward task that owns the leases ([`AdmittedPush::settle`]), and only then
//! is the namespace lease released (with Redis: once the push is in the namespace's log too).
//!
//! Platform manifests pushed by digest before their index: an image manifest pushed by digest
//! without a tag (and not attached to another manifest) is counted from the moment it is
//! admitted, but its own push is refused for `images` (and `image_count_limit`) only when the
//! count would pass the limit by more than [`PLATFORM_GRACE`]. The index that follows names
//! them, and is checked as one new image in place of the platform images it names: a
//! multi-platform push is refused at its index, never midway.

mod decide;
pub mod lease;
pub mod shared;

use std::sync::Arc;

use bytes::Bytes;
use limits_core::{AppliedLimits, AppliedQuota, Limit, QuotaKind};
use oci_manifest::{Digest, Manifest};
use registry_api::Reference;
use upstream_client::{Inventory as Catalog, ReqwestUpstream};

use crate::coordination::{CoordinationError, RedisNamespaces};
use crate::decision_log::DecisionLog;
use crate::inventory::{Inventory, ManifestFacts, scope_of};
use crate::options::Options;
use crate::refusal::Refusal;
use crate::reservation::Delivery;

use self::decide::{Shape, decide};
use self::lease::{NamespaceLease, NamespaceLeases};
use self::shared::{CatchUpError, Push};

/// How far past `images` (and `image_count_limit`) image manifests pushed by digest without a
/// tag may take a count, for the platform manifests of a multi-platform image that arrive
/// before their index.
pub const PLATFORM_GRACE: u64 = 16;

/// The inventory push decisions count from, and the namespace leases.
#[derive(Debug)]
pub struct QuotaGate<C = ReqwestUpstream> {
    inventory: Arc<Inventory<C>>,
    leases: NamespaceLeases,
}

impl<C> QuotaGate<C> {
    /// Decisions counted from `inventory`, shared with other replicas through `shared`.
    pub fn new(inventory: Arc<Inventory<C>>, shared: Option<RedisNamespaces>) -> Self {
        QuotaGate {
            inventory,
            leases: NamespaceLeases::new(shared),
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
    lease: NamespaceLease,
    inventory: Arc<Inventory<C>>,
    repository: String,
    digest: Digest,
    tags: Vec<String>,
    facts: Vec<(Digest, ManifestFacts)>,
}

impl<C: Catalog> AdmittedPush<C> {
    /// Records the push unless the registry surely did not take it (with Redis, in the
    /// namespace's log as well), then releases the lease.
    pub async fn settle(self, delivery: Delivery) {
        if delivery == Delivery::NotCreated {
            return;
        }
        self.inventory
            .record_push(&self.repository, &self.digest, &self.tags, self.facts);
        if let Some(shared) = &self.lease.shared {
            let push = Push {
                facts: self.inventory.tree(&self.repository, &self.digest),
                repository: self.repository,
                digest: self.digest,
                tags: self.tags,
            };
            shared::record(shared, &push).await;
        }
    }
}

impl<C: Catalog> QuotaStep<'_, C> {
    /// The lease of the repository's scope (its namespace, or the repository alone when it has
    /// none: [`scope_of`]) when the step applies to a push under `applied`: its
    /// `image_count_limit` is bounded or a namespace quota applies. When it cannot be had
    /// (Redis), the push is refused, or let through unchecked by `--fail-open`.
    pub async fn lease(
        &self,
        applied: &AppliedLimits,
        options: &Options,
    ) -> Result<Option<NamespaceLease>, Refusal> {
        let counts = applied.limits.image_count_limit != Limit::Unlimited;
        let bounded = self.quota.as_ref().is_some_and(|quota| {
            QuotaKind::ALL
                .iter()
                .any(|k| quota.hard.limit(*k).max().is_some())
        });
        if !counts && !bounded {
            return Ok(None);
        }
        let scope = scope_of(applied.repository.as_str());
        match self.gate.leases.lease(&scope).await {
            Ok(lease) => Ok(Some(lease)),
            Err(err) => uncoordinated(options, &scope, err),
        }
    }

    /// Decides the push under `lease` through `decisions`; the warnings go to `warnings`.
    pub async fn decide(
        &self,
        mut lease: NamespaceLease,
        applied: &AppliedLimits,
        push: PushFacts<'_>,
        (decisions, options): (&DecisionLog, &Options),
        warnings: &mut Vec<String>,
    ) -> Result<Option<AdmittedPush<C>>, Refusal> {
        let repository = applied.repository.as_str();
        let scope = scope_of(repository);
        let digest = match push.reference {
            Reference::Digest(named) => Digest::of_bytes_named(named.algorithm(), push.bytes),
            Reference::Tag(_) => Digest::sha256(push.bytes),
        };
        let facts = vec![(digest.clone(), ManifestFacts::of(push.manifest))];
        let shape = Shape::of(push.manifest, push.counted, push.tags);
        let inventory = &self.gate.inventory;
        if let Some(shared) = &mut lease.shared {
            match shared::catch_up(inventory, shared).await {
                Ok(()) => {}
                Err(CatchUpError::Store(err)) => return uncoordinated(options, &scope, err),
                Err(CatchUpError::Registry(err)) => {
                    return unavailable(options, repository, err.into());
                }
            }
        }
        let view = |facts: Vec<(Digest, ManifestFacts)>| {
            inventory.push_view(repository, &digest, push.counted, facts)
        };
        let mut counted = match view(facts.clone()).await {
            Ok(view) => decide(applied, self.quota.as_ref(), &view, shape),
            Err(err) => return unavailable(options, repository, err.into()),
        };
        if counted.confirm() {
            // Confirmed with the registry before refusing, or when close to a limit.
            let fresh = match inventory.reconcile_now(&scope).await {
                Ok(_) => view(facts.clone()).await,
                Err(err) => Err(err),
            };
            counted = match fresh {
                Ok(view) => decide(applied, self.quota.as_ref(), &view, shape),
                Err(err) => return unavailable(options, repository, err.into()),
            };
        }
        let reference = push.reference.to_string();
        counted.log(decisions, repository, &reference, warnings)?;
        Ok(Some(AdmittedPush {
            lease,
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

/// The namespace's lease, or the other replicas' pushes, could not be had: 503, or allowed by
/// `--fail-open`.
fn uncoordinated<T>(
    options: &Options,
    scope: &str,
    err: CoordinationError,
) -> Result<Option<T>, Refusal> {
    if options.fail_open {
        tracing::warn!(scope, error = %err, "image and namespace counts not coordinated; allowed by --fail-open");
        return Ok(None);
    }
    Err(Refusal::NamespaceUncoordinated {
        scope: scope.to_owned(),
        source: err,
    })
}
