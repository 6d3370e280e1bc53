//! Reading what a whole registry holds: its repositories and their manifests.

use std::future::Future;
use std::sync::Arc;

use limits_core::RepositoryName;

use crate::auth::Auth;
use crate::error::UpstreamError;
use crate::upstream::Upstream;

/// The media types a manifest `GET` accepts: OCI and Docker schema 2 images and indexes.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// A manifest as the registry served it, not yet parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The answer's `Content-Type`, when it had one.
    pub media_type: Option<String>,
    /// The manifest's bytes, as stored.
    pub body: Vec<u8>,
}

/// What a usage report reads besides tags: the catalog of repositories and manifests.
///
/// Separate from [`Upstream`], which holds only what the push path asks; a report needs both.
/// [`ReqwestUpstream`](crate::ReqwestUpstream) implements it.
pub trait Inventory: Upstream {
    /// Every repository name the registry lists at `GET /v2/_catalog`, every page, as the
    /// registry wrote them (a name may not be valid; the caller decides what to do with it).
    fn catalog(
        &self,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Vec<String>, UpstreamError>> + Send;

    /// The manifest `reference` (a tag or a digest) of the repository, asking for OCI and
    /// Docker schema 2 images and indexes ([`MANIFEST_ACCEPT`]); `None` when the registry
    /// answers 404 (deleted since it was listed).
    fn manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Option<FetchedManifest>, UpstreamError>> + Send;
}

impl<T: Inventory> Inventory for Arc<T> {
    fn catalog(
        &self,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Vec<String>, UpstreamError>> + Send {
        T::catalog(self, auth)
    }

    fn manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Option<FetchedManifest>, UpstreamError>> + Send {
        T::manifest(self, repo, reference, auth)
    }
}

impl<T: Inventory> Inventory for &T {
    fn catalog(
        &self,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Vec<String>, UpstreamError>> + Send {
        T::catalog(self, auth)
    }

    fn manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Option<FetchedManifest>, UpstreamError>> + Send {
        T::manifest(self, repo, reference, auth)
    }
}

/// Whether `reference` is a tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) or an `algorithm:hex`
/// digest, so that it can go into a URL path as it is.
pub(crate) fn is_reference(reference: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let is_tag = reference.len() <= 128
        && reference.starts_with(word)
        && reference.chars().all(|c| word(c) || c == '.' || c == '-');
    is_tag || reference.parse::<oci_manifest::Digest>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        #[rustfmt::skip]
        let cases = [
            ("v1", true),
            ("latest", true),
            ("_x.y-z", true),
            ("sha256:0000000000000000000000000000000000000000000000000000000000000000", true),
            ("", false),
            (".hidden", false),
            ("-v1", false),
            ("../../v2/_catalog", false),
            ("a/b", false),
            ("v1?x=1", false),
            ("sha256:xyz", false),
        ];
        for (reference, want) in cases {
            assert_eq!(is_reference(reference), want, "{reference:?}");
        }
        assert!(is_reference(&"a".repeat(128)));
        assert!(!is_reference(&"a".repeat(129)));
    }
}
