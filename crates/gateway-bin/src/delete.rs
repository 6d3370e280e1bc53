//! Manifest deletes against immutable tags: `DELETE /v2/<name>/manifests/<reference>` by a tag
//! an `immutable_tags` pattern matches, or by the digest such a tag points to, would remove the
//! tag, after which a push could create it again with other content. Such deletes are refused
//! unless `allow_deleting_immutable_tags: true`; the decision is
//! [`limits_core::AppliedLimits::check_manifest_delete`], the facts are read here.
//!
//! A delete by digest reads the repository's tags (where the tag count reads them) and the
//! digest of each tag a pattern matches (`HEAD` with the client's credentials, a bounded number
//! at once), under the repository's lease, which is held until the registry answered the
//! delete: no push through the gateway can create an immutable tag on the manifest between the
//! check and the delete. Repositories without immutable patterns cost nothing: their deletes
//! are forwarded as they always were.
//!
//! Any delete the registry may have carried out (every answer but a 4xx, or a connection that
//! could not be made) drops the repository's tag set kept for the tag count: the next push
//! lists the repository again.

use futures_util::StreamExt;
use http::{HeaderValue, Request, Response, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use limits_core::{AppliedLimits, Content, DeleteTarget, RepositoryName};
use oci_manifest::Digest;
use registry_api::Reference;
use upstream_client::Upstream;

use crate::body::{BoxError, ProxyBody};
use crate::coordination::{Coordination, Coordinator, Lease};
use crate::facts::Facts;
use crate::inventory::tags::TagSets;
use crate::options::Options;
use crate::refusal::refused;
use crate::refusal::{Fact, Refusal};
use crate::reservation::Delivery;
use crate::upstream::forward::Onward;

/// The `check` field of the decisions logged here.
const CHECK: &str = "immutable_tag_delete";

/// The handler of a manifest delete: the facts it asks of the registry (tags, their digests,
/// signature subjects) and the coordination whose lease it holds until the registry answered.
#[derive(Debug)]
pub struct ManifestDelete<'a, U> {
    /// Tag listings, digests of tags, signature subjects.
    pub facts: &'a Facts<U>,
    /// Per-repository leases.
    pub coordination: &'a Coordination,
    /// Each counted repository's tags, dropped by a delete.
    pub tag_sets: &'a TagSets,
    /// Behaviour options.
    pub options: &'a Options,
}

impl<U: Upstream> ManifestDelete<'_, U> {
    /// `DELETE /v2/<name>/manifests/<reference>` under the repository's limits (`applied`):
    /// checked against the repository's immutable tags, then forwarded; with the repository's
    /// lease held until the registry answered when the delete names a digest.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        applied: AppliedLimits,
        reference: Reference,
        onward: Onward,
    ) -> Result<Response<ProxyBody>, Refusal> {
        let repository = applied.repository.clone();
        let result = self.forward(request, applied, reference, onward).await;
        if Delivery::of(&result) != Delivery::NotCreated {
            self.tag_sets.forget(&repository);
        }
        result
    }

    /// Checks and forwards the delete.
    async fn forward(
        &self,
        request: Request<Incoming>,
        applied: AppliedLimits,
        reference: Reference,
        onward: Onward,
    ) -> Result<Response<ProxyBody>, Refusal> {
        let timeout = Some(self.options.upstream_timeout);
        if !applied.protections.guards_deletes() {
            return onward.request(request, timeout).await;
        }
        let auth = request.headers().get(header::AUTHORIZATION).cloned();
        let lease = match self.check(&applied, &reference, auth.as_ref()).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return onward.request(request, timeout).await,
            Err(refusal) => return Err(refused(request, refusal)),
        };
        // The forward runs in a task of its own, so that a client hanging up cannot release
        // the lease before the registry has answered.
        let (parts, body) = request.into_parts();
        let body = body.map_err(BoxError::from).boxed();
        let task = tokio::spawn(async move {
            let response = onward.send(parts, body, timeout).await;
            drop(lease);
            response
        });
        task.await.unwrap_or_else(|err| {
            Err(Refusal::Incomplete {
                what: "manifest delete",
                cause: err.to_string(),
            })
        })
    }

    /// Every check of a manifest delete in a repository with immutable patterns. `Ok(Some(_))`
    /// is the repository's lease, to hold until the registry answered; `Ok(None)` lets the
    /// delete through without one (a delete by a tag no pattern matches removes that tag
    /// only; a lease `--fail-open` did without).
    pub async fn check(
        &self,
        applied: &AppliedLimits,
        reference: &Reference,
        auth: Option<&HeaderValue>,
    ) -> Result<Option<Lease>, Refusal> {
        let digest = match reference {
            Reference::Tag(tag) => {
                // A signature tag that is what its name says is not immutable; its subject is
                // read only when a pattern matches it at all.
                if applied.protections.immutable_pattern(tag).is_none() {
                    return Ok(None);
                }
                let exempt = self
                    .facts
                    .exempt_tags(applied, std::slice::from_ref(tag), Content::Stored, auth)
                    .await?;
                if exempt.contains(tag) {
                    return Ok(None);
                }
                applied
                    .check_manifest_delete(DeleteTarget::Tag(tag), [])
                    .map_err(Refusal::ImmutableTagDelete)?;
                return Ok(None);
            }
            Reference::Digest(digest) => digest,
        };
        let window = self.options.recent_tag_window;
        let lease = match self.coordination.lease(&applied.repository, window).await {
            Ok(lease) => Some(lease),
            Err(err) if self.options.fail_open => {
                tracing::warn!(repository = %applied.repository, reference = %digest, error = %err,
                    "manifest delete not coordinated; allowed by --fail-open");
                None
            }
            Err(source) => {
                return Err(Refusal::DeleteUncoordinated {
                    repository: applied.repository.clone(),
                    source,
                });
            }
        };
        self.check_digest_delete(applied, digest, auth).await?;
        Ok(lease)
    }

    /// Refuses deleting `digest` when an immutable tag of the repository points to it.
    async fn check_digest_delete(
        &self,
        applied: &AppliedLimits,
        digest: &Digest,
        auth: Option<&HeaderValue>,
    ) -> Result<(), Refusal> {
        let repository = &applied.repository;
        let tags = match self.facts.list_tags(repository, auth).await {
            Ok(tags) => tags,
            Err(err) if self.options.fails_open(&err) => {
                tracing::warn!(repository = %repository, reference = %digest, error = %err,
                    "immutable tags unread; delete allowed by --fail-open");
                return Ok(());
            }
            Err(err) => {
                let fact = Fact::DeleteTags {
                    repository: repository.clone(),
                };
                return Err(Refusal::fact(fact, err));
            }
        };
        let mut immutable: Vec<String> = tags
            .into_iter()
            .filter(|tag| applied.protections.immutable_pattern(tag).is_some())
            .collect();
        let exempt = self
            .facts
            .exempt_tags(applied, &immutable, Content::Stored, auth)
            .await?;
        immutable.retain(|tag| !exempt.contains(tag));
        let reads: Vec<_> = immutable
            .iter()
            .map(|tag| self.tag_digest(repository, tag, auth))
            .collect();
        let mut reads = futures_util::stream::iter(reads)
            .buffer_unordered(self.options.head_concurrency.max(1));
        while let Some((tag, result)) = reads.next().await {
            let current = match result {
                Ok(Some(current)) => current,
                // Gone since the listing: it points to nothing.
                Ok(None) => continue,
                Err(err) if self.options.fails_open(&err) => {
                    tracing::warn!(repository = %repository, tag, error = %err,
                        "immutable tag unchecked; delete allowed by --fail-open");
                    continue;
                }
                Err(err) => {
                    let fact = Fact::ImmutableTagDigest {
                        tag: tag.to_owned(),
                    };
                    return Err(Refusal::fact(fact, err));
                }
            };
            applied
                .check_manifest_delete(
                    DeleteTarget::Digest(digest.as_str()),
                    [(tag, current.as_str())],
                )
                .map_err(Refusal::ImmutableTagDelete)?;
        }
        tracing::info!(event = "decision", repository = %repository, reference = %digest,
            check = CHECK, verdict = "allowed",
            "no immutable tag points to manifest {digest} ({} checked)", immutable.len());
        Ok(())
    }

    /// The digest `tag` points to, with the tag.
    async fn tag_digest<'a>(
        &self,
        repository: &RepositoryName,
        tag: &'a str,
        auth: Option<&HeaderValue>,
    ) -> (
        &'a str,
        Result<Option<Digest>, upstream_client::UpstreamError>,
    ) {
        (tag, self.facts.manifest_digest(repository, tag, auth).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use http::StatusCode;
    use limits_core::Policy;
    use upstream_client::{Auth, AuthKind, UpstreamError};

    use crate::facts::TagSource;

    const V1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const V2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const LATEST: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    const CONFIG: &str = "immutable_tags: ['^v']\nrules: []\n";

    /// How a read of the fake registry ends.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Answer {
        Ok,
        /// 500: the registry's fault.
        Broken,
        /// 401 for the client's own credentials.
        Unauthorized,
    }

    fn failure(answer: Answer) -> Option<UpstreamError> {
        match answer {
            Answer::Ok => None,
            Answer::Broken => Some(UpstreamError::Status {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                url: "http://registry/v2/".to_owned(),
                code: None,
                message: None,
            }),
            Answer::Unauthorized => Some(UpstreamError::Unauthorized {
                status: StatusCode::UNAUTHORIZED,
                credentials: AuthKind::Forwarded,
                url: "http://registry/v2/".to_owned(),
                code: Some("UNAUTHORIZED".to_owned()),
                challenge: None,
            }),
        }
    }

    /// A registry holding `v1`, `v2` and `latest`, whose listing and manifest reads answer as
    /// told, counting them.
    #[derive(Debug)]
    struct Tags {
        listing: Answer,
        head: Answer,
        listings: AtomicUsize,
        heads: AtomicUsize,
    }

    impl Upstream for Tags {
        async fn tags(
            &self,
            _: &RepositoryName,
            _: Auth<'_>,
        ) -> Result<Vec<String>, UpstreamError> {
            self.listings.fetch_add(1, Ordering::SeqCst);
            match failure(self.listing) {
                Some(err) => Err(err),
                None => Ok(["latest", "v1", "v2"].map(str::to_owned).to_vec()),
            }
        }

        async fn blob_size(
            &self,
            _: &RepositoryName,
            _: &Digest,
            _: Auth<'_>,
        ) -> Result<Option<u64>, UpstreamError> {
            Ok(None)
        }

        async fn manifest_digest(
            &self,
            _: &RepositoryName,
            tag: &str,
            _: Auth<'_>,
        ) -> Result<Option<Digest>, UpstreamError> {
            self.heads.fetch_add(1, Ordering::SeqCst);
            if let Some(err) = failure(self.head) {
                return Err(err);
            }
            let digest = match tag {
                "v1" => V1,
                "v2" => V2,
                "latest" => LATEST,
                _ => return Ok(None),
            };
            Ok(Some(digest.parse().expect("digest")))
        }

        async fn manifest(
            &self,
            _: &RepositoryName,
            _: &str,
            _: Auth<'_>,
        ) -> Result<Option<upstream_client::FetchedManifest>, UpstreamError> {
            Ok(None)
        }
    }

    /// What a delete handler is built from: no HTTP client, no target.
    struct World {
        facts: Facts<Tags>,
        coordination: Coordination,
        tag_sets: TagSets,
        options: Options,
        policy: Policy,
    }

    fn gateway(config: &str, listing: Answer, head: Answer, fail_open: bool) -> World {
        let options = Options {
            fail_open,
            upstream_timeout: Duration::from_secs(1),
            head_concurrency: 2,
            recent_tag_window: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(1),
        };
        let registry = Tags {
            listing,
            head,
            listings: AtomicUsize::new(0),
            heads: AtomicUsize::new(0),
        };
        World {
            facts: Facts::new(
                registry,
                TagSource::Upstream,
                (
                    crate::blob_sizes::BlobSizes::new(16),
                    crate::subjects::Subjects::new(16),
                ),
                std::sync::Arc::new(crate::metrics::Metrics::new()),
                options.clone(),
            ),
            coordination: Coordination::Local(crate::coordination::local::TagLedger::default()),
            tag_sets: TagSets::new(4, std::sync::Arc::default()),
            options,
            policy: Policy::from_yaml(config).expect("valid policy"),
        }
    }

    async fn check(gateway: &World, reference: &str) -> Result<Option<Lease>, Refusal> {
        let repository: RepositoryName = "p/app".parse().expect("name");
        let applied = gateway.policy.limits_for(&repository);
        let reference = Reference::parse(reference).expect("reference");
        let delete = ManifestDelete {
            facts: &gateway.facts,
            coordination: &gateway.coordination,
            tag_sets: &gateway.tag_sets,
            options: &gateway.options,
        };
        delete.check(&applied, &reference, None).await
    }

    /// The kinds of refusal the table below tells apart.
    #[derive(Debug, PartialEq, Eq)]
    enum Reason {
        ImmutableTagDelete,
        FactsUnavailable,
        Unauthorized,
        Other(&'static str),
    }

    impl Reason {
        fn of(refusal: &Refusal) -> Self {
            match refusal {
                Refusal::ImmutableTagDelete(_) => Reason::ImmutableTagDelete,
                _ if refusal.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    Reason::FactsUnavailable
                }
                _ if refusal.status() == StatusCode::UNAUTHORIZED => Reason::Unauthorized,
                _ => Reason::Other(refusal.label()),
            }
        }
    }

    #[tokio::test]
    async fn decisions_and_the_facts_they_read() {
        use Answer::{Broken, Ok as Fine, Unauthorized};
        // (reference, listing, head, --fail-open, the answer: a lease held / passed without
        // one / refused with this reason, listings, most heads)
        type Case = (
            &'static str,
            Answer,
            Answer,
            bool,
            Result<bool, Reason>,
            usize,
            usize,
        );
        let cases: &[Case] = &[
            (V1, Fine, Fine, false, Err(Reason::ImmutableTagDelete), 1, 2),
            (V2, Fine, Fine, false, Err(Reason::ImmutableTagDelete), 1, 2),
            // Only the immutable tags are read; `latest` is not.
            (LATEST, Fine, Fine, false, Ok(true), 1, 2),
            (
                "v1",
                Fine,
                Fine,
                false,
                Err(Reason::ImmutableTagDelete),
                0,
                0,
            ),
            (
                "v3",
                Fine,
                Fine,
                false,
                Err(Reason::ImmutableTagDelete),
                0,
                0,
            ),
            ("latest", Fine, Fine, false, Ok(false), 0, 0),
            (V1, Broken, Fine, false, Err(Reason::FactsUnavailable), 1, 0),
            (V1, Broken, Fine, true, Ok(true), 1, 0),
            (
                V1,
                Unauthorized,
                Fine,
                true,
                Err(Reason::Unauthorized),
                1,
                0,
            ),
            (V1, Fine, Broken, false, Err(Reason::FactsUnavailable), 1, 2),
            (V1, Fine, Broken, true, Ok(true), 1, 2),
            (
                V1,
                Fine,
                Unauthorized,
                true,
                Err(Reason::Unauthorized),
                1,
                2,
            ),
        ];
        for (reference, listing, head, fail_open, expected, listings, heads) in cases {
            let gateway = gateway(CONFIG, *listing, *head, *fail_open);
            let got = check(&gateway, reference)
                .await
                .map(|lease| lease.is_some())
                .map_err(|refusal| Reason::of(&refusal));
            let case = format!("{reference} {listing:?} {head:?} fail_open={fail_open}");
            assert_eq!(got, *expected, "{case}");
            assert_eq!(
                gateway.facts.registry().listings.load(Ordering::SeqCst),
                *listings,
                "{case}"
            );
            assert!(
                gateway.facts.registry().heads.load(Ordering::SeqCst) <= *heads,
                "{case}"
            );
        }
    }

    #[tokio::test]
    async fn refusals_carry_the_message_and_detail() {
        let gateway = gateway(CONFIG, Answer::Ok, Answer::Ok, false);
        let refusal = check(&gateway, V2).await.expect_err("immutable");
        assert_eq!(refusal.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            refusal.message(),
            format!(
                "manifest {V2} of repository p/app cannot be deleted: immutable tag v2 points to it (pattern ^v of global immutable_tags); set allow_deleting_immutable_tags: true to allow such deletes"
            )
        );
        let detail = refusal.detail().unwrap_or_default();
        assert_eq!(detail["check"], "immutable_tag_delete");
        assert_eq!(detail["digest"], V2);
        assert!(
            String::from_utf8_lossy(&crate::refusal::envelope(&refusal))
                .contains("\"code\":\"DENIED\""),
            "{:?}",
            crate::refusal::envelope(&refusal)
        );
    }

    /// A delete by digest holds the repository's lease, the one an immutable tag push takes,
    /// until it is dropped (after the registry answered).
    #[tokio::test]
    async fn a_delete_by_digest_holds_the_lease() {
        let gateway = gateway(CONFIG, Answer::Ok, Answer::Ok, false);
        let repository: RepositoryName = "p/app".parse().expect("name");
        let held = check(&gateway, LATEST)
            .await
            .expect("allowed")
            .expect("a lease");
        let waiting = tokio::time::timeout(
            Duration::from_millis(100),
            gateway
                .coordination
                .lease(&repository, Duration::from_secs(60)),
        )
        .await;
        assert!(waiting.is_err(), "a push waits");
        drop(held);
        gateway
            .coordination
            .lease(&repository, Duration::from_secs(60))
            .await
            .expect("free again");
    }
}
