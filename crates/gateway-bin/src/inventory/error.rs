//! Why a namespace could not be read from the registry.

use upstream_client::UpstreamError;

/// Why the inventory could not read what it needs from the registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// A request to the registry failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The catalog listed a name outside the OCI grammar.
    #[error("the registry listed an invalid repository name \"{name}\": {source}")]
    Name {
        /// The name, as listed.
        name: String,
        /// Why it was refused.
        #[source]
        source: limits_core::RepositoryNameError,
    },
    /// A manifest the registry served cannot be read.
    #[error("manifest {digest} of repository {repository} cannot be read: {source}")]
    Manifest {
        /// The repository.
        repository: String,
        /// The manifest's digest.
        digest: String,
        /// Why it was refused.
        #[source]
        source: oci_manifest::ManifestError,
    },
}
