//! Coordination of tag-creating pushes: one holder per repository from the tag count until the
//! registry's answer, and the tags reserved moments ago (created, or possibly created by a push
//! whose outcome is unknown), which count even before the registry lists them.
//!
//! One small trait, [`Coordinator`] (with its [`RepositoryLease`]), and two implementations:
//! in-process ([`TagLedger`], the default, exact within one gateway process) and Redis
//! ([`RedisCoordination`], `--coordination redis://...`, exact across replicas). The Redis
//! semantics, and the argument for why they hold, are in `docs/architecture.md`.

pub mod local;
pub mod namespace;
mod redis;

use std::time::Duration;

use limits_core::RepositoryName;
use tokio::sync::OwnedMutexGuard;

use crate::coordination::local::{RecentTags, TagLedger};

pub use self::namespace::{RedisNamespaceLease, RedisNamespaces, Since};
pub use self::redis::{HEALTH_INTERVAL, RedisCoordination, RedisLease, RedisSettings, redacted};

/// Why a lease could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinationError {
    /// Redis did not answer, or answered an error.
    #[error("tag limit cannot be enforced: coordination store unreachable ({0})")]
    Unreachable(String),
    /// The lease expired (or could not be renewed) before the push's tags were reserved, so
    /// another push may have counted without them.
    #[error(
        "tag limit cannot be enforced: the repository's lease expired before the push's tags could be reserved; retry"
    )]
    LeaseLost,
    /// Another push held the repository's lease for longer than the wait allows.
    #[error(
        "tag limit cannot be enforced: waited {waited} for the repository's lease, held by another push; retry"
    )]
    LeaseTimeout {
        /// How long was waited.
        waited: String,
    },
}

/// The coordination seam: serialises the pushes that create tags in one repository, from the
/// tag count to the registry's answer, and keeps the tags they reserved before forwarding until
/// the registry's listing shows them or the window ends. Implemented in process by [`TagLedger`] and across replicas by
/// [`RedisCoordination`]; [`Coordination`] is the one chosen at start-up.
pub trait Coordinator: Send + Sync {
    /// A held lease.
    type Lease: RepositoryLease;

    /// Waits for the repository's lease: while it is held, no other push creating tags in the
    /// repository counts, on any process sharing the store.
    fn lease(
        &self,
        repository: &RepositoryName,
        window: Duration,
    ) -> impl Future<Output = Result<Self::Lease, CoordinationError>> + Send;

    /// Whether the store is shared with other processes, and so may fail. A push that creates
    /// no tag then takes no lease.
    fn is_shared(&self) -> bool;
}

/// A repository's lease, released when dropped.
pub trait RepositoryLease: Send {
    /// Tags reserved within `window` through any process sharing the store: created, or
    /// possibly created by a push whose outcome is unknown.
    fn reserved(
        &mut self,
        window: Duration,
    ) -> impl Future<Output = Result<Vec<String>, CoordinationError>> + Send;

    /// Reserves `tags` for `window` before the manifest that creates them is forwarded: every
    /// later decision counts them, whatever then happens to the push or to this process. Fails
    /// (reserving nothing) when the lease is no longer held; the push must then not be
    /// forwarded.
    fn reserve(
        &mut self,
        tags: &[String],
        window: Duration,
    ) -> impl Future<Output = Result<(), CoordinationError>> + Send;

    /// The registry refused the push, or never received it: `tags` were not created, and their
    /// reservations are dropped, at the latest when the lease is released.
    fn forget(&mut self, tags: Vec<String>);

    /// The repository's change counter in a shared store, which every reservation of new tags
    /// moves: as the lease was acquired, then as this lease's own reservation left it. A tag
    /// set exact at this value knows every tag created through any replica. `None` in process,
    /// where the lease alone orders every tag-creating push.
    fn changes(&self) -> Option<u64> {
        None
    }
}

impl Coordinator for TagLedger {
    type Lease = OwnedMutexGuard<RecentTags>;

    async fn lease(
        &self,
        repository: &RepositoryName,
        window: Duration,
    ) -> Result<Self::Lease, CoordinationError> {
        Ok(self.lock(repository, window).await)
    }

    fn is_shared(&self) -> bool {
        false
    }
}

impl RepositoryLease for OwnedMutexGuard<RecentTags> {
    async fn reserved(&mut self, window: Duration) -> Result<Vec<String>, CoordinationError> {
        Ok(self.current(window).map(str::to_owned).collect())
    }

    async fn reserve(
        &mut self,
        tags: &[String],
        _window: Duration,
    ) -> Result<(), CoordinationError> {
        RecentTags::record(self, tags.iter().cloned());
        Ok(())
    }

    fn forget(&mut self, tags: Vec<String>) {
        RecentTags::forget(self, &tags);
    }
}

/// The coordination chosen at start-up: in process, or through Redis.
#[derive(Debug)]
pub enum Coordination {
    /// In this process.
    Local(TagLedger),
    /// In Redis, shared by every replica.
    Redis(RedisCoordination),
}

impl Coordinator for Coordination {
    type Lease = Lease;

    async fn lease(
        &self,
        repository: &RepositoryName,
        window: Duration,
    ) -> Result<Lease, CoordinationError> {
        Ok(match self {
            Coordination::Local(ledger) => Lease::Local(ledger.lease(repository, window).await?),
            Coordination::Redis(redis) => Lease::Redis(redis.lease(repository, window).await?),
        })
    }

    fn is_shared(&self) -> bool {
        match self {
            Coordination::Local(ledger) => ledger.is_shared(),
            Coordination::Redis(redis) => redis.is_shared(),
        }
    }
}

/// The lease of [`Coordination`].
#[derive(Debug)]
pub enum Lease {
    /// An in-process lock.
    Local(OwnedMutexGuard<RecentTags>),
    /// A Redis lease.
    Redis(RedisLease),
}

impl RepositoryLease for Lease {
    async fn reserved(&mut self, window: Duration) -> Result<Vec<String>, CoordinationError> {
        match self {
            Lease::Local(guard) => guard.reserved(window).await,
            Lease::Redis(lease) => lease.reserved(window).await,
        }
    }

    async fn reserve(
        &mut self,
        tags: &[String],
        window: Duration,
    ) -> Result<(), CoordinationError> {
        match self {
            Lease::Local(guard) => guard.reserve(tags, window).await,
            Lease::Redis(lease) => lease.reserve(tags, window).await,
        }
    }

    fn forget(&mut self, tags: Vec<String>) {
        match self {
            Lease::Local(guard) => guard.forget(tags),
            Lease::Redis(lease) => lease.forget(tags),
        }
    }

    fn changes(&self) -> Option<u64> {
        match self {
            Lease::Local(guard) => guard.changes(),
            Lease::Redis(lease) => lease.changes(),
        }
    }
}
