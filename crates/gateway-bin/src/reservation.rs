//! The tags a manifest push creates, reserved under the repository's lease before the push is
//! forwarded and settled by what the forward came to.

use std::sync::Arc;
use std::time::Duration;

use http::Response;
use limits_core::{RepositoryName, TagTally};

use crate::coordination::{CoordinationError, Lease, RepositoryLease};
use crate::inventory::tags::TagSets;
use crate::refusal::Refusal;

/// The repository's lease, held from the tag count until the upstream answered, with the tags
/// the push creates.
#[derive(Debug)]
pub struct TagReservation {
    pub(crate) lease: Lease,
    pub(crate) created: Vec<String>,
    pub(crate) window: Duration,
    /// The repository's tag set, counted from under this lease: told what the push created.
    pub(crate) tag_set: Option<(Arc<TagSets>, RepositoryName)>,
}

/// What a forwarded manifest push came to, as far as its tags go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The registry accepted the push: its tags exist.
    Created,
    /// The registry refused the push (a 4xx answer), or the connection to it could not be
    /// made: nothing was created.
    NotCreated,
    /// The answer is unknown (a timeout, a reset after the request was sent, a 5xx): the tags
    /// may have been created, and keep counting until the registry lists them or the window
    /// ends.
    Unknown,
}

impl Delivery {
    /// The outcome of a forward that returned `result`.
    pub fn of<B>(result: &Result<Response<B>, Refusal>) -> Self {
        match result {
            Ok(response) if response.status().is_success() => Delivery::Created,
            Ok(response) if response.status().is_client_error() => Delivery::NotCreated,
            Ok(_) => Delivery::Unknown,
            Err(Refusal::UpstreamConnect { .. }) => Delivery::NotCreated,
            Err(_) => Delivery::Unknown,
        }
    }
}

impl TagReservation {
    /// Reserves the tags the push creates, before its manifest is forwarded: from now on every
    /// decision counts them, in this process and (with Redis) in every replica, even if this
    /// process dies before the registry answers.
    pub async fn reserve(&mut self) -> Result<(), CoordinationError> {
        self.lease.reserve(&self.created, self.window).await
    }

    /// Settles the reservation once the forward ended: tags of a push that created nothing are
    /// no longer counted; created and possibly created ones keep counting.
    pub fn settle(&mut self, delivery: Delivery) {
        if delivery == Delivery::NotCreated {
            self.lease.forget(std::mem::take(&mut self.created));
        }
        if let Some((sets, repository)) = &self.tag_set {
            sets.record(repository, &self.created, self.lease.changes());
        }
    }
}

/// A repository's lease, with its tags as counted under it when the push is counted.
#[derive(Debug)]
pub(crate) struct TagRead {
    pub(crate) lease: Lease,
    pub(crate) count: Option<TagCounted>,
    /// Whether the lease is held until the upstream answered even when no tag is created.
    pub(crate) hold: bool,
}

/// The tag count of a push, under the repository's lease.
#[derive(Debug)]
pub(crate) struct TagCounted {
    /// The repository's tags and those the push creates.
    pub(crate) tally: TagTally,
    /// Whether the count comes from a listing read during this push (else from the tag set).
    pub(crate) fresh: bool,
    /// Tags reserved recently, as the lease read them.
    pub(crate) reserved: Vec<String>,
    /// The tags the push asks for that count.
    pub(crate) requested: Vec<String>,
}
