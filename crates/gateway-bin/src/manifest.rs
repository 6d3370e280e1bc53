//! The checks of a manifest push: body size, schema, verified layer sizes, image size and tag
//! count.

use std::collections::HashSet;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use limits_core::{AppliedLimits, ByteSize, Limit, RepositoryName};
use oci_manifest::{MAX_MANIFEST_BYTES, Manifest};
use serde_json::json;
use tokio::sync::OwnedMutexGuard;
use upstream_client::Upstream;

use crate::answer::{Code, Refusal};
use crate::gateway::{Gateway, upstream_failure};
use crate::tags::RecentTags;
use crate::upload::drain;

/// The repository's lock, held from the tag count until the upstream answered, with the tags
/// the push creates.
#[derive(Debug)]
pub struct TagReservation {
    guard: OwnedMutexGuard<RecentTags>,
    created: Vec<String>,
}

impl TagReservation {
    /// The upstream accepted the push: its new tags count from now on.
    pub fn record(&mut self) {
        self.guard.record(std::mem::take(&mut self.created));
    }
}

fn too_large(size: Option<u64>) -> Refusal {
    let measured = size.map_or_else(
        || format!("more than {MAX_MANIFEST_BYTES}"),
        |s| s.to_string(),
    );
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        Code::SizeInvalid,
        format!("manifest body of {measured} bytes exceeds the limit of {MAX_MANIFEST_BYTES} bytes (4 MiB)"),
    )
    .with_detail(json!({ "limit": MAX_MANIFEST_BYTES }))
}

/// Reads a manifest body of at most [`MAX_MANIFEST_BYTES`]; a larger one is refused before
/// any of it reaches the upstream.
pub async fn read_body(headers: &HeaderMap, mut body: Incoming) -> Result<Bytes, Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > MAX_MANIFEST_BYTES as u64) {
        drain(body);
        return Err(too_large(Some(len)));
    }
    let mut bytes = BytesMut::with_capacity(declared.map_or(8 * 1024, |len| len as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                Code::ManifestInvalid,
                format!("the manifest body could not be read: {err}"),
            )
        })?;
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > MAX_MANIFEST_BYTES {
                drain(body);
                return Err(too_large(None));
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(bytes.freeze())
}

/// The tags a push creates: the reference when it is a tag, and every `?tag=` parameter
/// (OCI distribution 1.1), without duplicates.
pub fn requested_tags(reference: &str, query: Option<&str>) -> Vec<String> {
    let mut tags = Vec::new();
    // A digest reference is `algorithm:hex`; a tag never holds a colon.
    if !reference.contains(':') {
        tags.push(reference.to_owned());
    }
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key == "tag" && !value.is_empty() && !tags.iter().any(|t| *t == value) {
            tags.push(value.into_owned());
        }
    }
    tags
}

impl<U: Upstream> Gateway<U> {
    /// Every check of a manifest push. `Ok(Some(_))` holds the repository's tag lock until the
    /// upstream has answered.
    pub(crate) async fn check_manifest(
        &self,
        parts: &Parts,
        repository: &RepositoryName,
        reference: &str,
        bytes: &Bytes,
    ) -> Result<Option<TagReservation>, Refusal> {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let manifest = oci_manifest::parse(content_type, bytes).map_err(|err| {
            let reason = if err.is_schema1() { "schema1" } else { "manifest_invalid" };
            self.metrics.refusal(reason);
            tracing::warn!(event = "decision", repository = %repository, reference, reason, verdict = "denied", "{err}");
            Refusal::new(StatusCode::BAD_REQUEST, Code::ManifestInvalid, err.to_string())
        })?;
        let applied = self.policy.borrow().limits_for(repository);
        let auth = parts.headers.get(header::AUTHORIZATION);
        // The layer sizes and the tag listing are read from the upstream at the same time.
        let sizes = async {
            match &manifest {
                Manifest::Image(image) => self.verify_layer_sizes(repository, image, auth).await,
                Manifest::Index(_) => Ok(()),
            }
        };
        let tags = self.read_tags(&applied, reference, parts.uri.query(), auth);
        let (sizes, tags) = tokio::join!(sizes, tags);
        sizes?;
        if let Manifest::Image(image) = &manifest {
            let decision = applied.check_image_size(ByteSize::new(image.total_size()));
            self.log_decision(&decision, reference);
            if !decision.is_allowed() {
                return Err(crate::gateway::denied_refusal(&decision));
            }
        }
        match tags? {
            Some(read) => self.decide_tags(&applied, reference, read),
            None => Ok(None),
        }
    }

    /// Confirms every counted layer's declared size with the upstream (`HEAD` on the blob,
    /// with the client's own credentials, a bounded number at once, cached by digest).
    async fn verify_layer_sizes(
        &self,
        repository: &RepositoryName,
        image: &oci_manifest::ImageManifest,
        auth: Option<&http::HeaderValue>,
    ) -> Result<(), Refusal> {
        let mut seen = HashSet::new();
        let layers: Vec<_> = image
            .layers()
            .iter()
            .filter(|l| seen.insert(l.digest().clone()))
            .collect();
        let checks: Vec<_> = layers
            .into_iter()
            .map(|layer| self.layer_size(repository, layer, auth))
            .collect();
        let mut checks = futures_util::stream::iter(checks)
            .buffer_unordered(self.options.head_concurrency.max(1));
        while let Some((layer, result)) = checks.next().await {
            match result {
                Ok(Some(real)) if real != layer.size() => {
                    self.metrics.refusal("layer_size_mismatch");
                    let message = format!(
                        "layer {} declares {} bytes but the registry holds {} bytes ({}); the manifest's layer sizes must be true",
                        layer.digest(),
                        layer.size(),
                        real,
                        ByteSize::new(real),
                    );
                    tracing::warn!(repository = %repository, event = "decision", verdict = "denied", "{}", message);
                    return Err(Refusal::new(
                        StatusCode::BAD_REQUEST,
                        Code::ManifestInvalid,
                        message,
                    )
                    .with_detail(json!({
                        "digest": layer.digest().as_str(),
                        "declared": layer.size(),
                        "actual": real,
                    })));
                }
                // Present and true, or absent: the upstream answers MANIFEST_BLOB_UNKNOWN itself.
                Ok(_) => {}
                Err(err) if self.options.fail_open => {
                    tracing::warn!(repository = %repository, digest = %layer.digest(), error = %err,
                        "layer size unverified; allowed by --fail-open");
                }
                Err(err) => {
                    self.metrics.refusal("upstream_unavailable");
                    let what = format!(
                        "the size of layer {} could not be read from the upstream registry",
                        layer.digest()
                    );
                    return Err(
                        upstream_failure(&err, &what, StatusCode::SERVICE_UNAVAILABLE)
                            .with_detail(json!({ "digest": layer.digest().as_str() })),
                    );
                }
            }
        }
        Ok(())
    }

    async fn layer_size<'a>(
        &self,
        repository: &RepositoryName,
        layer: &'a oci_manifest::Layer,
        auth: Option<&http::HeaderValue>,
    ) -> (
        &'a oci_manifest::Layer,
        Result<Option<u64>, upstream_client::UpstreamError>,
    ) {
        (
            layer,
            self.blob_size(repository, layer.digest(), auth).await,
        )
    }

    /// Takes the repository's lock and reads its tags, when the push creates tags and a tag
    /// limit applies.
    async fn read_tags(
        &self,
        applied: &AppliedLimits,
        reference: &str,
        query: Option<&str>,
        auth: Option<&http::HeaderValue>,
    ) -> Result<Option<TagRead>, Refusal> {
        let requested = requested_tags(reference, query);
        if requested.is_empty() || applied.limits.tag_count_limit == Limit::Unlimited {
            return Ok(None);
        }
        let guard = self
            .ledger
            .lock(&applied.repository, self.options.recent_tag_window)
            .await;
        match self.list_tags(&applied.repository, auth).await {
            Ok(listed) => Ok(Some(TagRead {
                guard,
                listed,
                requested,
            })),
            Err(err) if self.options.fail_open => {
                tracing::warn!(repository = %applied.repository, error = %err, "tag count unread; allowed by --fail-open");
                Ok(None)
            }
            Err(err) => {
                self.metrics.refusal("upstream_unavailable");
                tracing::warn!(event = "decision", repository = %applied.repository, reference, error = %err, verdict = "denied", "tag count unreadable; push refused");
                Err(upstream_failure(
                    &err,
                    "the tag count could not be read from the upstream registry",
                    StatusCode::SERVICE_UNAVAILABLE,
                ))
            }
        }
    }

    /// The tag count decision: the upstream's tags plus those this process created recently
    /// that the listing does not show yet, against the tags the push creates.
    fn decide_tags(
        &self,
        applied: &AppliedLimits,
        reference: &str,
        read: TagRead,
    ) -> Result<Option<TagReservation>, Refusal> {
        let TagRead {
            mut guard,
            listed,
            requested,
        } = read;
        let recent: Vec<&str> = guard
            .current(self.options.recent_tag_window)
            .filter(|tag| !listed.iter().any(|l| l == tag))
            .collect();
        let existing = (listed.len() + recent.len()) as u64;
        let created: Vec<String> = requested
            .into_iter()
            .filter(|tag| !listed.contains(tag) && !recent.contains(&tag.as_str()))
            .collect();
        if created.is_empty() {
            return Ok(None);
        }
        let decision = applied.check_tags(existing, created.len() as u64);
        self.log_decision(&decision, reference);
        if !decision.is_allowed() {
            return Err(crate::gateway::denied_refusal(&decision));
        }
        Ok(Some(TagReservation { guard, created }))
    }
}

/// A repository's tags as read under its lock, with the tags a push asks for.
#[derive(Debug)]
struct TagRead {
    guard: OwnedMutexGuard<RecentTags>,
    listed: Vec<String>,
    requested: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use limits_core::Policy;
    use oci_manifest::Digest;
    use upstream_client::{Auth, UpstreamError};

    use crate::gateway::{Options, TagSource};

    /// An upstream whose tag listing never shows new tags, as a lagging replica or cache would;
    /// every blob is as large as declared.
    #[derive(Debug, Default)]
    struct LaggingUpstream {
        listings: AtomicUsize,
    }

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
            Ok(None)
        }
    }

    fn gateway(window: Duration) -> Gateway<LaggingUpstream> {
        let policy = Policy::from_yaml(
            "rules:\n- path: ^p/\n  limit: {max_image_size: 1MB, tag_count_limit: 3}\n",
        )
        .expect("valid policy");
        let (_, policy) = tokio::sync::watch::channel(Arc::new(policy));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Gateway {
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build(connector),
            target: crate::forward::Target::new(&"http://127.0.0.1:9".parse().expect("url"))
                .expect("target"),
            registry: LaggingUpstream::default(),
            tag_source: TagSource::Upstream,
            policy,
            ledger: crate::tags::TagLedger::default(),
            blob_sizes: crate::blob_sizes::BlobSizes::new(16),
            uploads: crate::upload::UploadProgress::new(16),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            options: Options {
                fail_open: false,
                upstream_timeout: Duration::from_secs(1),
                head_concurrency: 4,
                recent_tag_window: window,
            },
        }
    }

    const INDEX: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

    async fn push(
        gateway: &Gateway<LaggingUpstream>,
        tag: &str,
    ) -> Result<Option<TagReservation>, Refusal> {
        let (parts, ()) = http::Request::put(format!("/v2/p/app/manifests/{tag}"))
            .header(
                header::CONTENT_TYPE,
                "application/vnd.oci.image.index.v1+json",
            )
            .body(())
            .expect("request")
            .into_parts();
        let repository: RepositoryName = "p/app".parse().expect("name");
        gateway
            .check_manifest(&parts, &repository, tag, &Bytes::from_static(INDEX))
            .await
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
                .record();
        }
        let refusal = push(&gateway, "c").await.expect_err("limit reached");
        assert_eq!(refusal.status, StatusCode::FORBIDDEN);
        assert!(
            refusal
                .message
                .contains("the repository holds 3 tags and this push adds 1"),
            "{}",
            refusal.message
        );
        // Re-pushing a recent tag creates nothing.
        assert!(push(&gateway, "a").await.expect("allowed").is_none());
        assert_eq!(gateway.registry.listings.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn recent_tags_expire_after_the_window() {
        let gateway = gateway(Duration::ZERO);
        for tag in ["a", "b", "c", "d"] {
            push(&gateway, tag)
                .await
                .expect("allowed")
                .expect("creates a tag")
                .record();
        }
    }

    #[test]
    fn tags_of_a_push() {
        let digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        let cases: &[(&str, Option<&str>, &[&str])] = &[
            ("latest", None, &["latest"]),
            (digest, None, &[]),
            (digest, Some("tag=a&tag=b"), &["a", "b"]),
            ("v1", Some("tag=v1&tag=v2&x=1"), &["v1", "v2"]),
            (digest, Some("tag=&tag=a%2Bb"), &["a+b"]),
        ];
        for (reference, query, expected) in cases {
            assert_eq!(
                requested_tags(reference, *query),
                *expected,
                "{reference} {query:?}"
            );
        }
    }
}
