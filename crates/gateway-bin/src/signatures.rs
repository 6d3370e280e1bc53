//! Which signature tags are exempt from the tag limit (`exempt_signature_tags`): the facts the
//! rule in `limits_core::AppliedProtections::is_exempt` needs, read from the registry.
//!
//! A tag named `sha256-<hex>.sig` (`.att`, `.sbom`) is exempt only when the digest names an
//! image the repository holds and, when it is pushed, the manifest is the cosign artifact its
//! suffix says. The subject is read from the registry (`GET` on the manifest by digest, through
//! the same address and credentials as the tag listing) and remembered by repository and digest:
//! what a digest holds never changes, so an image or attached manifest stays known; a digest
//! the registry does not hold is asked again after a short while.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures_util::StreamExt;
use limits_core::{AppliedLimits, Content, RepositoryName, Subject};
use upstream_client::{Auth, FetchedManifest, Upstream, UpstreamError};

use crate::gateway::{Gateway, TagSource, client_auth};
use crate::refusal::{Fact, Refusal};

impl<U: Upstream> Gateway<U> {
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
        let subject = subject_of(fetched?.as_ref());
        self.subjects.insert(repository, digest, subject);
        Ok(subject)
    }
}

/// What a manifest fetched by the digest a signature tag names is, for the exemption: nothing
/// (404), attached to another manifest, or an image of its own. A body that does not parse is
/// no manifest the gateway can vouch for, so nothing to attach an exemption to.
pub fn subject_of(fetched: Option<&FetchedManifest>) -> Subject {
    let Some(fetched) = fetched else {
        return Subject::Absent;
    };
    match oci_manifest::parse(fetched.media_type.as_deref(), &fetched.body) {
        Ok(manifest) if manifest.is_attached() => Subject::Attached,
        Ok(_) => Subject::Image,
        Err(_) => Subject::Absent,
    }
}
