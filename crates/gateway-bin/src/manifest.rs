//! The checks of a manifest push: body size, schema, verified blob sizes, image size, tag
//! count, image count and namespace quotas (`quota`); then the forward, in a task of its own
//! that no client hang-up can cut short.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http::request::Parts;
use http::{Request, Response, header};
use hyper::body::Incoming;
use limits_core::{AppliedLimits, ByteSize, Content, RepositoryName, admission};
use oci_manifest::{BlobState, Manifest};
use registry_api::{ContentType, Reference};
use tokio::sync::Semaphore;
use upstream_client::Upstream;

use crate::body::ProxyBody;
use crate::body::full;
use crate::coordination::Coordination;
use crate::decision_log::DecisionLog;
use crate::facts::Facts;
use crate::inventory::tags::TagSets;
use crate::manifest_body::{read_body, warning_header};
use crate::options::Options;
use crate::quota::{AdmittedPush, PushFacts, QuotaStep};
use crate::refusal::refused;
use crate::refusal::{Fact, Refusal};
use crate::reservation::{Delivery, TagReservation};
use crate::tag_count::TagCount;
use crate::upstream::forward::Onward;

/// The handler of a manifest push: the facts it asks of the registry, the coordination of the
/// repository's tags, where its decisions go, and the budget of buffered manifest bodies.
#[derive(Debug)]
pub struct ManifestPush<'a, U> {
    /// Blob sizes, tag listings, digests of tags, signature subjects.
    pub facts: &'a Facts<U>,
    /// Per-repository leases and recently created tags.
    pub coordination: &'a Coordination,
    /// Each counted repository's tags, kept by the inventory.
    pub tag_sets: &'a Arc<TagSets>,
    /// Where the decisions go.
    pub decisions: &'a DecisionLog,
    /// Behaviour options.
    pub options: &'a Options,
    /// Bytes of manifest bodies that may be buffered at once, as permits.
    pub buffers: &'a Arc<Semaphore>,
    /// The image count and namespace quota step, when the inventory is in this process.
    pub quotas: Option<QuotaStep<'a>>,
}

impl<U: Upstream> ManifestPush<'_, U> {
    /// `PUT /v2/<name>/manifests/<reference>` under the repository's limits (`applied`): size,
    /// schema and tag checks, then forwarded with the very bytes the client sent.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        applied: AppliedLimits,
        (reference, requested): (Reference, Vec<String>),
        (content_type, content_length): (ContentType, Option<u64>),
        onward: Onward,
    ) -> Result<Response<ProxyBody>, Refusal> {
        if content_type == ContentType::Ambiguous {
            return Err(refused(request, Refusal::SeveralContentTypes));
        }
        let (parts, body) = request.into_parts();
        let (bytes, permit) = read_body(
            content_length,
            body,
            self.buffers,
            self.options.body_read_timeout,
        )
        .await?;
        let (reservation, admitted, warnings) = self
            .check(
                &parts,
                content_type.value(),
                &applied,
                (&reference, requested),
                &bytes,
            )
            .await?;
        // From here the push is admitted: reserving its tags, the forward and settling the
        // reservation run in a task of their own, so that a client hanging up cannot release
        // the repository's lock before the registry has answered, nor leave tags forwarded but
        // unreserved.
        let options = self.options.clone();
        let repository = applied.repository;
        let task = tokio::spawn(async move {
            let mut reservation = reservation;
            if let Some(held) = &mut reservation {
                if let Err(err) = held.reserve().await {
                    if !options.fail_open {
                        return Err(Refusal::Uncoordinated(err));
                    }
                    tracing::warn!(repository = %repository, error = %err, "tags not reserved; allowed by --fail-open");
                }
            }
            let timeout = Some(options.upstream_timeout);
            let result = onward.send(parts, full(bytes), timeout).await;
            drop(permit);
            if let Some(held) = &mut reservation {
                held.settle(Delivery::of(&result));
            }
            // Recorded before the namespace's lease is released.
            if let Some(admitted) = admitted {
                admitted.settle(Delivery::of(&result)).await;
            }
            result
        });
        match task.await {
            Ok(Err(refusal)) => Err(refusal),
            Ok(Ok(mut response)) => {
                if response.status().is_success() {
                    for warning in &warnings {
                        response
                            .headers_mut()
                            .append(header::WARNING, warning_header(warning));
                    }
                }
                Ok(response)
            }
            Err(err) => Err(Refusal::Incomplete {
                what: "manifest push",
                cause: err.to_string(),
            }),
        }
    }

    /// Every check of a manifest push to `reference` creating the tags `requested` (read as
    /// the registry reads them: `RequestHead::requested_tags`). `Ok((Some(_), _, _))` holds the
    /// repository's tag lock until the upstream has answered, `Ok((_, Some(_), _))` the
    /// namespace's lease until the push is recorded; the texts are the warnings for the client
    /// (a limit broken in `warn` mode, or a value past `warn_at`).
    pub async fn check(
        &self,
        parts: &Parts,
        content_type: Option<&str>,
        applied: &AppliedLimits,
        (reference, mut requested): (&Reference, Vec<String>),
        bytes: &Bytes,
    ) -> Result<(Option<TagReservation>, Option<AdmittedPush>, Vec<String>), Refusal> {
        let mut warnings = Vec::new();
        let reference_text = reference.to_string();
        let manifest =
            oci_manifest::parse(content_type, bytes).map_err(Refusal::ManifestUnparsable)?;
        let auth = parts.headers.get(header::AUTHORIZATION);
        // Signature tags that are what their name says neither count nor freeze; every other
        // tag does (`exempt_signature_tags`).
        let pushed = manifest.cosign_artifact().map(|kind| kind.tag_suffix());
        let exempt = self
            .facts
            .exempt_tags(applied, &requested, Content::Pushed(pushed), auth)
            .await?;
        let named = requested.clone();
        requested.retain(|tag| !exempt.contains(tag));
        // The namespace's lease, before the repository's (read_tags).
        let namespace_lease = match &self.quotas {
            Some(step) => step.lease(applied, self.options).await?,
            None => None,
        };
        let immutable: Vec<&str> = requested
            .iter()
            .map(String::as_str)
            .filter(|tag| applied.protections.immutable_pattern(tag).is_some())
            .collect();
        // The blob sizes and the tag listing are read from the upstream at the same time.
        let sizes = async {
            match &manifest {
                Manifest::Image(image) => {
                    let repository = &applied.repository;
                    self.image_size(repository, image, auth).await.map(Some)
                }
                Manifest::Index(_) => Ok(None),
            }
        };
        let count = self.tag_count();
        let tags = count.read(applied, &requested, !immutable.is_empty(), auth);
        let (size, tags) = tokio::join!(sizes, tags);
        if let Some(size) = size? {
            let decision = applied.check_image_size(ByteSize::new(size));
            self.decisions.decide(&decision, &reference_text)?;
            warnings.extend(decision.warning());
        }
        let tags = tags?;
        // Under the repository's lease, when one could be had.
        self.check_tag_moves(applied, &immutable, bytes, auth)
            .await?;
        let reservation = match tags {
            Some(read) => {
                count
                    .decide(applied, &reference_text, read, auth, &mut warnings)
                    .await?
            }
            None => None,
        };
        let admitted = match (&self.quotas, namespace_lease) {
            (Some(step), Some(lease)) => {
                let push = PushFacts {
                    manifest: &manifest,
                    bytes,
                    reference,
                    counted: &requested,
                    tags: &named,
                };
                let log = (self.decisions, self.options);
                step.decide(lease, applied, push, log, &mut warnings)
                    .await?
            }
            _ => None,
        };
        Ok((reservation, admitted, warnings))
    }

    /// The tag count step, with what it reads.
    fn tag_count(&self) -> TagCount<'_, U> {
        TagCount {
            facts: self.facts,
            coordination: self.coordination,
            tag_sets: self.tag_sets,
            decisions: self.decisions,
            options: self.options,
        }
    }

    /// The image's size as the registry holds it: the config and every layer, each confirmed
    /// with the upstream (`HEAD` on the blob, with the client's own credentials, a bounded
    /// number at once, cached by digest); see [`oci_manifest::ImageManifest::measure`].
    async fn image_size(
        &self,
        repository: &RepositoryName,
        image: &oci_manifest::ImageManifest,
        auth: Option<&http::HeaderValue>,
    ) -> Result<u64, Refusal> {
        let mut digests: Vec<&oci_manifest::Digest> = std::iter::once(image.config().digest())
            .chain(image.layers().iter().map(|l| l.digest()))
            .collect();
        digests.sort();
        digests.dedup();
        let lookups: Vec<_> = digests
            .into_iter()
            .map(|digest| self.lookup(repository, digest, auth))
            .collect();
        let mut lookups = futures_util::stream::iter(lookups)
            .buffer_unordered(self.options.head_concurrency.max(1));
        let mut states: HashMap<&oci_manifest::Digest, BlobState> = HashMap::new();
        while let Some((digest, result)) = lookups.next().await {
            let state = match result {
                Ok(Some(size)) => BlobState::Present(size),
                Ok(None) => BlobState::Absent,
                Err(err) if self.options.fails_open(&err) => {
                    tracing::warn!(repository = %repository, digest = %digest, error = %err,
                        "blob size unverified; the declared size counts (--fail-open)");
                    let config = image.config();
                    let declared = std::iter::once((config.digest(), config.size()))
                        .chain(image.layers().iter().map(|l| (l.digest(), l.size())))
                        .map(|(digest, size)| (digest.as_str(), size));
                    BlobState::Present(admission::unverified_blob_size(declared, digest.as_str()))
                }
                Err(err) => {
                    let fact = Fact::BlobSize {
                        digest: digest.clone(),
                    };
                    return Err(Refusal::fact(fact, err));
                }
            };
            states.insert(digest, state);
        }
        image
            .measure(|digest| states.get(digest).copied().unwrap_or(BlobState::Absent))
            .map_err(Refusal::ManifestMismatch)
    }

    async fn lookup<'a>(
        &self,
        repository: &RepositoryName,
        digest: &'a oci_manifest::Digest,
        auth: Option<&http::HeaderValue>,
    ) -> (
        &'a oci_manifest::Digest,
        Result<Option<u64>, upstream_client::UpstreamError>,
    ) {
        (digest, self.facts.blob_size(repository, digest, auth).await)
    }

    /// Refuses moving an immutable tag: each of `tags` (those an `immutable_tags` pattern
    /// matches) that exists on the upstream must already point to the pushed bytes' digest.
    async fn check_tag_moves(
        &self,
        applied: &AppliedLimits,
        tags: &[&str],
        bytes: &Bytes,
        auth: Option<&http::HeaderValue>,
    ) -> Result<(), Refusal> {
        for tag in tags {
            let current = match self
                .facts
                .manifest_digest(&applied.repository, tag, auth)
                .await
            {
                Ok(current) => current,
                Err(err) if self.options.fails_open(&err) => {
                    tracing::warn!(repository = %applied.repository, tag, error = %err, "immutable tag unchecked; allowed by --fail-open");
                    continue;
                }
                Err(err) => {
                    let fact = Fact::ImmutableTagDigest {
                        tag: (*tag).to_owned(),
                    };
                    return Err(Refusal::fact(fact, err));
                }
            };
            let Some(current) = current else { continue };
            let pushed = oci_manifest::Digest::of_bytes_named(current.algorithm(), bytes);
            applied
                .check_tag_move(tag, Some(current.as_str()), pushed.as_str())
                .map_err(Refusal::ImmutableTag)?;
            tracing::info!(event = "decision", repository = %applied.repository, reference = *tag,
                check = "immutable_tag", verdict = "allowed", "immutable tag {tag} re-pushed with its digest {current}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use limits_core::Policy;
    use oci_manifest::Digest;
    use tokio::sync::Semaphore;
    use upstream_client::{Auth, UpstreamError};

    use crate::coordination::Coordinator;
    use crate::facts::TagSource;

    /// An upstream whose tag listing never shows new tags, as a lagging replica or cache would;
    /// every blob is 10 bytes, and the only manifest it holds by digest is [`SUBJECT`], an
    /// image.
    #[derive(Debug, Default)]
    struct LaggingUpstream {
        listings: AtomicUsize,
    }

    /// The digest of the image that signatures in these tests are attached to.
    const SUBJECT: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    impl Upstream for LaggingUpstream {
        async fn tags(
            &self,
            _: &RepositoryName,
            _: Auth<'_>,
        ) -> Result<Vec<String>, UpstreamError> {
            self.listings.fetch_add(1, Ordering::SeqCst);
            Ok(vec!["old".to_owned()])
        }

        async fn blob_size(
            &self,
            _: &RepositoryName,
            _: &Digest,
            _: Auth<'_>,
        ) -> Result<Option<u64>, UpstreamError> {
            Ok(Some(10))
        }

        async fn manifest_digest(
            &self,
            _: &RepositoryName,
            _: &str,
            _: Auth<'_>,
        ) -> Result<Option<Digest>, UpstreamError> {
            Ok(None)
        }

        async fn manifest(
            &self,
            _: &RepositoryName,
            reference: &str,
            _: Auth<'_>,
        ) -> Result<Option<upstream_client::FetchedManifest>, UpstreamError> {
            Ok(
                (reference == SUBJECT).then(|| upstream_client::FetchedManifest {
                    media_type: Some(oci_manifest::media_types::OCI_IMAGE_INDEX.to_owned()),
                    body: INDEX.to_vec(),
                }),
            )
        }
    }

    /// What a push handler is built from: no HTTP client, no target, no upload sessions.
    struct World {
        facts: Facts<LaggingUpstream>,
        coordination: Coordination,
        tag_sets: Arc<TagSets>,
        decisions: DecisionLog,
        options: Options,
        buffers: Arc<Semaphore>,
        policy: Policy,
    }

    impl World {
        fn push(&self) -> ManifestPush<'_, LaggingUpstream> {
            ManifestPush {
                facts: &self.facts,
                coordination: &self.coordination,
                tag_sets: &self.tag_sets,
                decisions: &self.decisions,
                options: &self.options,
                buffers: &self.buffers,
                quotas: None,
            }
        }
    }

    fn gateway(window: Duration) -> World {
        gateway_with(
            "rules:\n- path: ^p/\n  limit: {max_image_size: 1MB, tag_count_limit: 3}\n",
            window,
        )
    }

    fn gateway_with(config: &str, window: Duration) -> World {
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let options = Options {
            fail_open: false,
            upstream_timeout: Duration::from_secs(1),
            head_concurrency: 4,
            recent_tag_window: window,
            body_read_timeout: Duration::from_secs(1),
        };
        World {
            facts: Facts::new(
                LaggingUpstream::default(),
                TagSource::Upstream,
                (
                    crate::blob_sizes::BlobSizes::new(16),
                    crate::subjects::Subjects::new(16),
                ),
                Arc::clone(&metrics),
                options.clone(),
            ),
            coordination: Coordination::Local(crate::coordination::local::TagLedger::default()),
            tag_sets: Arc::new(TagSets::new(
                16,
                Arc::new(crate::inventory::InventoryMetrics::new()),
            )),
            decisions: DecisionLog::new(metrics, None),
            options,
            buffers: Arc::new(Semaphore::new(1 << 20)),
            policy: Policy::from_yaml(config).expect("valid policy"),
        }
    }

    const INDEX: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

    /// A cosign signature: one simple-signing layer of 10 bytes.
    const SIGNATURE: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":10,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":10,"digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333"}]}"#;

    async fn push(gateway: &World, tag: &str) -> Result<Option<TagReservation>, Refusal> {
        push_manifest(
            gateway,
            tag,
            "application/vnd.oci.image.index.v1+json",
            INDEX,
        )
        .await
    }

    async fn push_manifest(
        gateway: &World,
        tag: &str,
        content_type: &str,
        body: &'static [u8],
    ) -> Result<Option<TagReservation>, Refusal> {
        let (parts, ()) = http::Request::put(format!("/v2/p/app/manifests/{tag}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(())
            .expect("request")
            .into_parts();
        let repository: RepositoryName = "p/app".parse().expect("name");
        let reference = Reference::parse(tag).expect("reference");
        let applied = gateway.policy.limits_for(&repository);
        gateway
            .push()
            .check(
                &parts,
                Some(content_type),
                &applied,
                (
                    &reference,
                    reference.tag().into_iter().map(str::to_owned).collect(),
                ),
                &Bytes::from_static(body),
            )
            .await
            .map(|(reservation, _, _)| reservation)
    }

    /// Tags created moments ago count although the upstream's listing does not show them, and
    /// only once the upstream accepted the push.
    #[tokio::test]
    async fn recent_tags_count_while_the_listing_lags() {
        let gateway = gateway(Duration::from_secs(300));
        // The upstream refused this push: its tag counts for nothing.
        drop(push(&gateway, "refused").await.expect("allowed"));
        for tag in ["a", "b"] {
            push(&gateway, tag)
                .await
                .expect("allowed")
                .expect("creates a tag")
                .reserve()
                .await
                .expect("reserved");
        }
        let refusal = push(&gateway, "c").await.expect_err("limit reached");
        assert_eq!(refusal.status(), http::StatusCode::FORBIDDEN);
        assert!(
            refusal
                .message()
                .contains("the repository holds 3 tags and this push adds 1"),
            "{}",
            refusal.message()
        );
        // Re-pushing a recent tag creates nothing.
        assert!(push(&gateway, "a").await.expect("allowed").is_none());
        // Listed to load the repository's tag set, then to confirm each count that lands
        // within one of the limit or refuses ("a", "b", "c"); the re-push counts from the set.
        assert_eq!(gateway.facts.registry().listings.load(Ordering::SeqCst), 4);
    }

    /// A signature tag neither uses up the limit nor needs the tag listing, when it is one: its
    /// digest names an image of the repository and its manifest is a signature.
    #[tokio::test]
    async fn signature_tags_are_not_counted() {
        let gateway = gateway(Duration::from_secs(300));
        for tag in ["a", "b"] {
            push(&gateway, tag)
                .await
                .expect("allowed")
                .expect("creates a tag")
                .reserve()
                .await
                .expect("reserved");
        }
        let listings = gateway.facts.registry().listings.load(Ordering::SeqCst);
        let signature = SUBJECT.replace(':', "-") + ".sig";
        let pushed = push_manifest(&gateway, &signature, OCI, SIGNATURE).await;
        assert!(pushed.expect("allowed").is_none());
        assert_eq!(
            gateway.facts.registry().listings.load(Ordering::SeqCst),
            listings
        );
        // The same name on what is no signature, or a signature of a digest the repository does
        // not hold, counts like any tag: the limit of 3 is reached.
        push(&gateway, &signature).await.expect_err("limit reached");
        let forged = format!("sha256-{}.sig", "0".repeat(64));
        push_manifest(&gateway, &forged, OCI, SIGNATURE)
            .await
            .expect_err("limit reached");
        push(&gateway, "c").await.expect_err("limit reached");
    }

    const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

    /// A push naming an immutable tag holds the repository's lease until the upstream
    /// answered, even when no tag limit applies; other tags take none.
    #[tokio::test]
    async fn immutable_tag_push_holds_the_lease() {
        let window = Duration::from_secs(60);
        let gateway = gateway_with(
            "rules:\n- path: ^p/\n  immutable_tags: ['^v']\n  limit: {max_image_size: 1MB, tag_count_limit: unlimited}\n",
            window,
        );
        let repository: RepositoryName = "p/app".parse().expect("name");
        let held = push(&gateway, "v1").await.expect("allowed");
        assert!(held.is_some(), "the lease is held");
        let waiting = tokio::time::timeout(
            Duration::from_millis(100),
            gateway.coordination.lease(&repository, window),
        )
        .await;
        assert!(waiting.is_err(), "another push waits");
        drop(held);
        assert!(push(&gateway, "latest").await.expect("allowed").is_none());
        assert_eq!(gateway.facts.registry().listings.load(Ordering::SeqCst), 0);
    }

    /// Far from the limit the tag set counts without a listing; it learns the tags of pushes
    /// the registry accepted or whose outcome is unknown, not of those it refused.
    #[tokio::test]
    async fn the_tag_set_learns_what_the_registry_may_hold() {
        let gateway = gateway_with(
            "rules:\n- path: ^p/\n  limit: {max_image_size: 1MB, tag_count_limit: 10}\n",
            Duration::from_secs(300),
        );
        let repository: RepositoryName = "p/app".parse().expect("name");
        for (tag, delivery) in [
            ("refused", Delivery::NotCreated),
            ("created", Delivery::Created),
            ("unknown", Delivery::Unknown),
        ] {
            let mut reservation = push(&gateway, tag)
                .await
                .expect("allowed")
                .expect("creates a tag");
            reservation.reserve().await.expect("reserved");
            reservation.settle(delivery);
        }
        let kept = |tag: &str| {
            gateway
                .tag_sets
                .creates(&repository, &[tag.to_owned()])
                .map(|creates| !creates)
        };
        assert_eq!(kept("refused"), Some(false));
        assert_eq!(kept("created"), Some(true));
        assert_eq!(kept("unknown"), Some(true));
        assert_eq!(kept("old"), Some(true));
        assert_eq!(gateway.facts.registry().listings.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn recent_tags_expire_after_the_window() {
        let gateway = gateway(Duration::ZERO);
        for tag in ["a", "b", "c", "d"] {
            push(&gateway, tag)
                .await
                .expect("allowed")
                .expect("creates a tag")
                .reserve()
                .await
                .expect("reserved");
        }
    }
}
