//! The tag count of a manifest push, under the repository's lease: read from the repository's
//! tag set kept by the inventory ([`TagSets`]) plus the tags the coordination reserved
//! recently, or from a tag listing when the set is not kept or not exact; confirmed by a
//! listing before a refusal and when the count lands at or within one of the limit.
//!
//! The set is exact for the tags created through the gateway: every tag-creating push holds
//! the repository's lease from the count to the registry's answer and records what it created
//! ([`TagReservation::settle`]) before releasing it. With a shared store, other replicas
//! create tags too: the lease returns the repository's change counter, which every reservation
//! moves, and a set not exact at that counter is listed again.

use std::collections::HashSet;
use std::sync::Arc;

use limits_core::{AppliedLimits, Content, TagTally, admission};
use upstream_client::Upstream;

use crate::coordination::{Coordination, CoordinationError, Coordinator, RepositoryLease};
use crate::decision_log::DecisionLog;
use crate::facts::Facts;
use crate::inventory::tags::TagSets;
use crate::options::Options;
use crate::refusal::{Fact, Refusal};
use crate::reservation::{TagCounted, TagRead, TagReservation};

/// A repository's tags as one listing read them: every tag, and those that count (exempt
/// signature tags left out).
struct Listing {
    all: Vec<String>,
    counted: Vec<String>,
}

/// What the tag count of one push reads: the registry's facts, the coordination, the tag sets.
#[derive(Debug)]
pub struct TagCount<'a, U> {
    /// Tag listings and signature subjects.
    pub facts: &'a Facts<U>,
    /// Per-repository leases and recently reserved tags.
    pub coordination: &'a Coordination,
    /// Each counted repository's tags.
    pub tag_sets: &'a Arc<TagSets>,
    /// Where the decisions go.
    pub decisions: &'a DecisionLog,
    /// Behaviour options.
    pub options: &'a Options,
}

impl<U: Upstream> TagCount<'_, U> {
    /// Takes the repository's lease and counts its tags, when the push creates tags and a tag
    /// limit applies. With a shared coordination store, a push that the tag set (or, when the
    /// set does not say it creates a tag, a listing) shows creates no tag takes no lease (and
    /// works while the store is down). `hold`: the push names an immutable tag, so the lease is
    /// taken even when nothing is counted, and held until the upstream answered: no other push
    /// through the gateway moves the tag between the check of its digest and this push.
    pub async fn read(
        &self,
        applied: &AppliedLimits,
        requested: &[String],
        hold: bool,
        auth: Option<&http::HeaderValue>,
    ) -> Result<Option<TagRead>, Refusal> {
        let repository = &applied.repository;
        let requested = requested.to_vec();
        let mut count = admission::counts_tags(applied, &requested);
        let window = self.options.recent_tag_window;
        // Shared store: a push the set says creates a tag goes straight to the lease. Else the
        // tags are listed before the lease: a tag the listing does not show was reserved, under
        // the lease, before its manifest was forwarded, so the reservations read under the
        // lease cover it (docs/architecture.md, coordination through Redis).
        let mut listed_first = None;
        if count
            && self.coordination.is_shared()
            && self.tag_sets.creates(repository, &requested) != Some(true)
        {
            let reason = if self.tag_sets.usable(repository, None) {
                "confirm"
            } else {
                "load"
            };
            self.tag_sets.listed(reason);
            match self.listing(applied, auth).await? {
                None => count = false,
                Some(listed) if !admission::creates_tags(&requested, &listed.counted) => {
                    count = false;
                }
                Some(listed) => listed_first = Some(listed),
            }
        }
        if !count && !hold {
            return Ok(None);
        }
        let mut lease = match self.coordination.lease(repository, window).await {
            Ok(lease) => lease,
            Err(err) => {
                // The set said the push creates a tag, unlisted: a re-push of a tag another
                // replica created needs no lease, and goes through while the store is down.
                if count && !hold && listed_first.is_none() && self.coordination.is_shared() {
                    self.tag_sets.listed("confirm");
                    if let Some(listed) = self.listing(applied, auth).await? {
                        if !admission::creates_tags(&requested, &listed.counted) {
                            return Ok(None);
                        }
                    }
                }
                return self.coordination_failure(applied, err);
            }
        };
        if !count {
            return Ok(Some(TagRead {
                lease,
                count: None,
                hold,
            }));
        }
        let reserved = match lease.reserved(window).await {
            Ok(reserved) => reserved,
            Err(err) => return self.coordination_failure(applied, err),
        };
        let version = lease.changes();
        // A shared store that did not tell its change counter: the set cannot be trusted.
        let trusted = version.is_some() || !self.coordination.is_shared();
        let counted = match listed_first {
            Some(listed) => {
                self.tag_sets
                    .adopt(repository, &listed.all, &reserved, version);
                Some((TagTally::new(&listed.counted, &reserved, &requested), true))
            }
            None => match self
                .count_from_set(applied, version, &reserved, &requested, auth)
                .await?
                .filter(|_| trusted)
            {
                Some(tally) => Some((tally, false)),
                None => {
                    let reason = if self.tag_sets.usable(repository, None) {
                        "stale"
                    } else {
                        "load"
                    };
                    self.list_and_adopt(applied, (version, &reserved), &requested, reason, auth)
                        .await?
                        .map(|tally| (tally, true))
                }
            },
        };
        Ok(Some(TagRead {
            lease,
            // Unread and allowed by --fail-open: nothing is counted.
            count: counted.map(|(tally, fresh)| TagCounted {
                tally,
                fresh,
                reserved,
                requested,
            }),
            hold,
        }))
    }

    /// The tag count decision: the repository's tags plus those reserved recently that it
    /// does not show (yet), against the tags the push creates. A count from the tag set that
    /// would refuse, or that lands at or within one of the limit, is decided on a listing
    /// read now instead.
    pub async fn decide(
        &self,
        applied: &AppliedLimits,
        reference: &str,
        read: TagRead,
        auth: Option<&http::HeaderValue>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<TagReservation>, Refusal> {
        let TagRead { lease, count, hold } = read;
        let window = self.options.recent_tag_window;
        let unchanged = |lease| {
            hold.then(|| TagReservation {
                lease,
                created: Vec::new(),
                window,
                tag_set: None,
            })
        };
        let Some(mut count) = count else {
            return Ok(unchanged(lease));
        };
        let mut decision = decide_on(applied, &count.tally);
        // Lands at or within one of the limit: two more tags would refuse.
        let near = || {
            let tally = &count.tally;
            let more = tally.existing.saturating_add(2);
            applied
                .check_tags(more, tally.created.len() as u64)
                .refuses()
        };
        if !count.fresh && !count.tally.created.is_empty() && (decision.refuses() || near()) {
            let version = lease.changes();
            let reserved = (version, count.reserved.as_slice());
            match self
                .list_and_adopt(applied, reserved, &count.requested, "confirm", auth)
                .await?
            {
                Some(tally) => count.tally = tally,
                // Unread and allowed by --fail-open: nothing is counted.
                None => return Ok(unchanged(lease)),
            }
            decision = decide_on(applied, &count.tally);
        }
        if count.tally.created.is_empty() {
            return Ok(unchanged(lease));
        }
        self.decisions.decide(&decision, reference)?;
        warnings.extend(decision.warning());
        Ok(Some(TagReservation {
            lease,
            created: count.tally.created,
            window,
            tag_set: Some((Arc::clone(self.tag_sets), applied.repository.clone())),
        }))
    }

    /// The count from the repository's tag set, when it is kept and exact at `version`.
    async fn count_from_set(
        &self,
        applied: &AppliedLimits,
        version: Option<u64>,
        reserved: &[String],
        requested: &[String],
        auth: Option<&http::HeaderValue>,
    ) -> Result<Option<TagTally>, Refusal> {
        let repository = &applied.repository;
        let Some(shaped) = self.tag_sets.signature_shaped(repository, version) else {
            return Ok(None);
        };
        let exempt = if shaped.is_empty() {
            HashSet::new()
        } else {
            self.facts
                .exempt_tags(applied, &shaped, Content::Stored, auth)
                .await?
        };
        Ok(self
            .tag_sets
            .tally(repository, version, &exempt, reserved, requested))
    }

    /// Lists the repository's tags under its lease, keeps them (with `reserved`) as its tag
    /// set exact at `version`, and counts from them; `Ok(None)` when they cannot be read and
    /// `--fail-open` allows (the set is then dropped: the push is not counted).
    async fn list_and_adopt(
        &self,
        applied: &AppliedLimits,
        (version, reserved): (Option<u64>, &[String]),
        requested: &[String],
        reason: &'static str,
        auth: Option<&http::HeaderValue>,
    ) -> Result<Option<TagTally>, Refusal> {
        let repository = &applied.repository;
        self.tag_sets.listed(reason);
        let Some(listed) = self.listing(applied, auth).await? else {
            self.tag_sets.forget(repository);
            return Ok(None);
        };
        self.tag_sets
            .adopt(repository, &listed.all, reserved, version);
        Ok(Some(TagTally::new(&listed.counted, reserved, requested)))
    }

    /// The repository's tags, every one and those that count against the limit (all but
    /// exempt signature tags); `Ok(None)` when they cannot be read and `--fail-open` allows.
    async fn listing(
        &self,
        applied: &AppliedLimits,
        auth: Option<&http::HeaderValue>,
    ) -> Result<Option<Listing>, Refusal> {
        match self.facts.list_tags(&applied.repository, auth).await {
            Ok(all) => {
                let exempt = self
                    .facts
                    .exempt_tags(applied, &all, Content::Stored, auth)
                    .await?;
                let counted = all
                    .iter()
                    .filter(|tag| !exempt.contains(*tag))
                    .cloned()
                    .collect();
                Ok(Some(Listing { all, counted }))
            }
            Err(err) if self.options.fails_open(&err) => {
                tracing::warn!(repository = %applied.repository, error = %err, "tag count unread; allowed by --fail-open");
                Ok(None)
            }
            Err(err) => Err(Refusal::fact(Fact::TagCount, err)),
        }
    }

    /// A lease or reserved tags that could not be had: 503, or allowed by `--fail-open` (the
    /// repository's tag set is then dropped: the push is not counted).
    fn coordination_failure(
        &self,
        applied: &AppliedLimits,
        err: CoordinationError,
    ) -> Result<Option<TagRead>, Refusal> {
        if self.options.fail_open {
            tracing::warn!(repository = %applied.repository, error = %err, "tag count not coordinated; allowed by --fail-open");
            self.tag_sets.forget(&applied.repository);
            return Ok(None);
        }
        Err(Refusal::Uncoordinated(err))
    }
}

/// The decision on `tally`.
fn decide_on(applied: &AppliedLimits, tally: &TagTally) -> limits_core::Decision {
    applied.check_tags(tally.existing, tally.created.len() as u64)
}
