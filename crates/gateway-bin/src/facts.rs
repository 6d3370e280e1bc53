//! The facts the checks read from the registry: real blob sizes (cached by digest), the digest
//! a tag points to, a repository's tags (from the upstream or Harbor's external address), and
//! which signature tags are exempt from the tag limit. Each read is timed; whether a failed
//! read lets the request through is the caller's choice ([`Options::fails_open`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use http::HeaderValue;
use limits_core::{AppliedLimits, Content, RepositoryName, Subject};
use upstream_client::{Auth, Upstream, UpstreamError};

use crate::blob_sizes::BlobSizes;
use crate::metrics::Metrics;
use crate::options::Options;
use crate::refusal::{Fact, Refusal};
use crate::subjects::Subjects;

/// Where tag counts are read.
#[derive(Debug)]
pub enum TagSource<U> {
    /// The upstream itself, with the pushing client's own `Authorization`.
    Upstream,
    /// Another address of the same registry (Harbor's public URL) with the gateway's own
    /// credentials.
    External(U),
}

/// The pushing client's credentials for the checks the gateway makes on its behalf.
pub(crate) fn client_auth(header: Option<&HeaderValue>) -> Auth<'_> {
    header.map_or(Auth::Anonymous, Auth::Forward)
}

/// Reads facts from the registry for the checks.
#[derive(Debug)]
pub struct Facts<U> {
    registry: U,
    tag_source: TagSource<U>,
    blob_sizes: BlobSizes,
    subjects: Subjects,
    metrics: Arc<Metrics>,
    options: Options,
}

impl<U: Upstream> Facts<U> {
    /// Facts read from `registry` (tags from `tag_source`), remembered in `blob_sizes` and
    /// `subjects`, timed in `metrics`.
    pub fn new(
        registry: U,
        tag_source: TagSource<U>,
        (blob_sizes, subjects): (BlobSizes, Subjects),
        metrics: Arc<Metrics>,
        options: Options,
    ) -> Self {
        Self {
            registry,
            tag_source,
            blob_sizes,
            subjects,
            metrics,
            options,
        }
    }

    /// The registry facts are read from.
    #[cfg(test)]
    pub fn registry(&self) -> &U {
        &self.registry
    }

    /// Real sizes of blobs, from the cache or the upstream.
    pub(crate) async fn blob_size(
        &self,
        repository: &RepositoryName,
        digest: &oci_manifest::Digest,
        auth: Option<&HeaderValue>,
    ) -> Result<Option<u64>, UpstreamError> {
        if let Some(size) = self.blob_sizes.get(digest) {
            self.metrics.blob_cache(true);
            return Ok(Some(size));
        }
        self.metrics.blob_cache(false);
        let started = Instant::now();
        let result = self
            .registry
            .blob_size(repository, digest, client_auth(auth))
            .await;
        self.metrics.upstream("blob_head", started.elapsed());
        if let Ok(Some(size)) = result {
            self.blob_sizes.insert(digest.clone(), size);
        }
        result
    }

    /// The digest a tag points to on the upstream (`HEAD` on the manifest, with the client's
    /// own credentials); `None` when the tag does not exist.
    pub(crate) async fn manifest_digest(
        &self,
        repository: &RepositoryName,
        tag: &str,
        auth: Option<&HeaderValue>,
    ) -> Result<Option<oci_manifest::Digest>, UpstreamError> {
        let started = Instant::now();
        let result = self
            .registry
            .manifest_digest(repository, tag, client_auth(auth))
            .await;
        self.metrics.upstream("manifest_head", started.elapsed());
        result
    }

    /// Every tag the repository holds, from the upstream or the external address.
    pub(crate) async fn list_tags(
        &self,
        repository: &RepositoryName,
        auth: Option<&HeaderValue>,
    ) -> Result<Vec<String>, UpstreamError> {
        let started = Instant::now();
        let result = match &self.tag_source {
            TagSource::Upstream => self.registry.tags(repository, client_auth(auth)).await,
            TagSource::External(external) => external.tags(repository, Auth::Configured).await,
        };
        self.metrics.upstream("tags", started.elapsed());
        result
    }

    /// The tags of `tags` that are exempt signature tags, given what is under them (`content`:
    /// the manifest being pushed, or what the registry already stores). Subjects not known yet
    /// are read from the registry, a bounded number at once. A subject that cannot be read
    /// fails the push like any fact (503, or `--fail-open`: exempt), and the registry's refusal
    /// of the client's credentials is passed on.
    pub(crate) async fn exempt_tags(
        &self,
        applied: &AppliedLimits,
        tags: &[String],
        content: Content<'_>,
        auth: Option<&http::HeaderValue>,
    ) -> Result<HashSet<String>, Refusal> {
        let candidates: Vec<_> = tags
            .iter()
            .filter_map(|tag| Some((tag, applied.protections.signature_candidate(tag)?)))
            .collect();
        if candidates.is_empty() {
            return Ok(HashSet::new());
        }
        let subjects: HashSet<&str> = candidates.iter().map(|(_, c)| c.subject()).collect();
        let lookups: Vec<_> = subjects
            .into_iter()
            .map(|digest| self.subject_of(&applied.repository, digest, auth))
            .collect();
        let mut lookups = futures_util::stream::iter(lookups)
            .buffer_unordered(self.options.head_concurrency.max(1));
        let mut known = HashMap::new();
        while let Some((digest, result)) = lookups.next().await {
            let subject = match result {
                Ok(subject) => subject,
                Err(err) if self.options.fails_open(&err) => {
                    tracing::warn!(repository = %applied.repository, digest, error = %err, "signature tag's subject unread; exempt by --fail-open");
                    Subject::Image
                }
                Err(err) => {
                    let fact = Fact::SignatureSubject {
                        digest: digest.to_owned(),
                    };
                    return Err(Refusal::fact(fact, err));
                }
            };
            known.insert(digest, subject);
        }
        Ok(candidates
            .iter()
            .filter(|(tag, candidate)| {
                let subject = known
                    .get(candidate.subject())
                    .copied()
                    .unwrap_or(Subject::Absent);
                let exempt = applied.protections.is_exempt(candidate, subject, content);
                // Said once, when pushed; a stored tag is read again on every count.
                if !exempt && matches!(content, Content::Pushed(_)) {
                    tracing::info!(repository = %applied.repository, tag = %tag, subject = ?subject, content = ?content, "signature-named tag counted like any tag: its digest names no image of the repository, or its manifest is not the artifact its name says");
                } else if !exempt {
                    tracing::debug!(repository = %applied.repository, tag = %tag, subject = ?subject, "stored signature-named tag counted like any tag");
                }
                exempt
            })
            .map(|(tag, _)| (*tag).clone())
            .collect())
    }

    async fn subject_of<'a>(
        &self,
        repository: &RepositoryName,
        digest: &'a str,
        auth: Option<&http::HeaderValue>,
    ) -> (&'a str, Result<Subject, UpstreamError>) {
        (digest, self.subject(repository, digest, auth).await)
    }

    /// What the repository holds under `digest`: from the cache, or read from the registry
    /// through the tag source (the client's credentials, or Harbor mode's own).
    async fn subject(
        &self,
        repository: &RepositoryName,
        digest: &str,
        auth: Option<&http::HeaderValue>,
    ) -> Result<Subject, UpstreamError> {
        if let Some(subject) = self.subjects.get(repository, digest) {
            return Ok(subject);
        }
        let started = Instant::now();
        let fetched = match &self.tag_source {
            TagSource::Upstream => {
                self.registry
                    .manifest(repository, digest, client_auth(auth))
                    .await
            }
            TagSource::External(external) => {
                external
                    .manifest(repository, digest, Auth::Configured)
                    .await
            }
        };
        self.metrics.upstream("manifest_get", started.elapsed());
        let subject = crate::signatures::subject_of(fetched?.as_ref());
        self.subjects.insert(repository, digest, subject);
        Ok(subject)
    }
}
