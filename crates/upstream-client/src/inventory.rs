//! Reading what a whole registry holds: its repositories.

use std::future::Future;
use std::sync::Arc;

use crate::auth::Auth;
use crate::error::UpstreamError;
use crate::upstream::Upstream;

/// What a usage report reads besides what the push path asks: the catalog of repositories.
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

    /// The repositories under `<namespace>/` the catalog lists. The default reads the whole
    /// catalog and keeps them; [`ReqwestUpstream`](crate::ReqwestUpstream) starts at
    /// `?last=<namespace>` and stops at the first page past the namespace.
    fn catalog_namespace(
        &self,
        namespace: &str,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Vec<String>, UpstreamError>> + Send {
        let prefix = format!("{namespace}/");
        let all = self.catalog(auth);
        async move {
            Ok(all
                .await?
                .into_iter()
                .filter(|name| name.starts_with(&prefix))
                .collect())
        }
    }
}

impl<T: Inventory> Inventory for Arc<T> {
    fn catalog(
        &self,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Vec<String>, UpstreamError>> + Send {
        T::catalog(self, auth)
    }

    fn catalog_namespace(
        &self,
        namespace: &str,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Vec<String>, UpstreamError>> + Send {
        T::catalog_namespace(self, namespace, auth)
    }
}

impl<T: Inventory> Inventory for &T {
    fn catalog(
        &self,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Vec<String>, UpstreamError>> + Send {
        T::catalog(self, auth)
    }

    fn catalog_namespace(
        &self,
        namespace: &str,
        auth: Auth<'_>,
    ) -> impl Future<Output = Result<Vec<String>, UpstreamError>> + Send {
        T::catalog_namespace(self, namespace, auth)
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
