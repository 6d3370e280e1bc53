//! The questions the gateway asks the upstream registry.

use std::future::Future;
use std::sync::Arc;

use limits_core::RepositoryName;
use oci_manifest::Digest;

use crate::auth::Auth;
use crate::error::UpstreamError;

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

/// What the gateway asks the upstream registry. [`ReqwestUpstream`](crate::ReqwestUpstream) is
/// the real implementation; tests can supply their own.
///
/// ```
/// use std::future::Future;
/// use limits_core::RepositoryName;
/// use oci_manifest::Digest;
/// use upstream_client::{Auth, FetchedManifest, Upstream, UpstreamError};
///
/// /// A fixed upstream for tests: every repository has the same tags and no blobs.
/// struct Fixed(Vec<String>);
///
/// impl Upstream for Fixed {
///     async fn tags(&self, _: &RepositoryName, _: Auth<'_>) -> Result<Vec<String>, UpstreamError> {
///         Ok(self.0.clone())
///     }
///     async fn blob_size(
///         &self,
///         _: &RepositoryName,
///         _: &Digest,
///         _: Auth<'_>,
///     ) -> Result<Option<u64>, UpstreamError> {
///         Ok(None)
///     }
///     async fn manifest_digest(
///         &self,
///         _: &RepositoryName,
///         _: &str,
///         _: Auth<'_>,
///     ) -> Result<Option<Digest>, UpstreamError> {
///         Ok(None)
///     }
///     async fn manifest(
///         &self,
///         _: &RepositoryName,
///         _: &str,
///         _: Auth<'_>,
///     ) -> Result<Option<FetchedManifest>, UpstreamError> {
///         Ok(None)
///     }
/// }
/// ```
pub trait Upstream: Send + Sync {
    /// All tags of the repository, every page. A repository the upstream does not know
    /// (404 `NAME_UNKNOWN`) has no tags.
    fn tags(
        &self,
        repo: &RepositoryName,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Vec<String>, UpstreamError>> + Send;

    /// The real size in bytes of a blob, from `HEAD /v2/<name>/blobs/<digest>`
    /// (`Content-Length`); `None` when the upstream answers 404.
    fn blob_size(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Option<u64>, UpstreamError>> + Send;

    /// The digest the manifest `reference` (a tag) points to, from `HEAD
    /// /v2/<name>/manifests/<reference>` (`Docker-Content-Digest`), asking for every manifest
    /// type; `None` when the upstream answers 404.
    fn manifest_digest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Option<Digest>, UpstreamError>> + Send;

    /// The manifest `reference` (a tag or a digest) of the repository, asking for OCI and
    /// Docker schema 2 images and indexes ([`MANIFEST_ACCEPT`]); `None` when the registry
    /// answers 404.
    fn manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Option<FetchedManifest>, UpstreamError>> + Send;
}

impl<T: Upstream> Upstream for Arc<T> {
    fn tags(
        &self,
        repo: &RepositoryName,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Vec<String>, UpstreamError>> + Send {
        T::tags(self, repo, auth)
    }

    fn blob_size(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Option<u64>, UpstreamError>> + Send {
        T::blob_size(self, repo, digest, auth)
    }

    fn manifest_digest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Option<Digest>, UpstreamError>> + Send {
        T::manifest_digest(self, repo, reference, auth)
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

impl<T: Upstream> Upstream for &T {
    fn tags(
        &self,
        repo: &RepositoryName,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Vec<String>, UpstreamError>> + Send {
        T::tags(self, repo, auth)
    }

    fn blob_size(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Option<u64>, UpstreamError>> + Send {
        T::blob_size(self, repo, digest, auth)
    }

    fn manifest_digest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Option<Digest>, UpstreamError>> + Send {
        T::manifest_digest(self, repo, reference, auth)
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
