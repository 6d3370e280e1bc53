//! The facts a check reads from the upstream, and how the upstream failed to tell one.

use http::{HeaderValue, StatusCode};
use limits_core::RepositoryName;
use oci_manifest::Digest;
use serde_json::{Value, json};
use upstream_client::UpstreamError;

/// A fact the gateway reads from the upstream for a check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fact {
    /// The size of a blob an image manifest names.
    BlobSize {
        /// The blob.
        digest: Digest,
    },
    /// The size of a blob a cross-repository mount takes from another repository.
    MountedBlobSize {
        /// The blob.
        digest: Digest,
        /// The repository it is mounted from.
        from: RepositoryName,
    },
    /// The tags of the repository a push counts.
    TagCount,
    /// The digest an immutable tag points to.
    ImmutableTagDigest {
        /// The tag.
        tag: String,
    },
    /// The tags of a repository whose manifest is deleted by digest.
    DeleteTags {
        /// The repository.
        repository: RepositoryName,
    },
    /// The manifest a signature tag's name points to.
    SignatureSubject {
        /// Its digest.
        digest: String,
    },
}

impl Fact {
    /// What could not be read, as the first part of the message.
    pub(super) fn what(&self) -> String {
        match self {
            Fact::BlobSize { digest } => {
                format!("the size of blob {digest} could not be read from the upstream registry")
            }
            Fact::MountedBlobSize { digest, from } => format!(
                "the size of blob {digest} in {from} could not be read from the upstream registry"
            ),
            Fact::TagCount => "the tag count could not be read from the upstream registry".into(),
            Fact::ImmutableTagDigest { tag } => format!(
                "the digest of immutable tag {tag} could not be read from the upstream registry"
            ),
            Fact::DeleteTags { repository } => format!(
                "the tags of repository {repository} could not be read from the upstream registry to check the delete against its immutable tags"
            ),
            Fact::SignatureSubject { digest } => format!(
                "the manifest {digest} a signature tag names could not be read from the upstream registry"
            ),
        }
    }

    /// The check that needed it, for the log line.
    pub(super) fn check(&self) -> &'static str {
        match self {
            Fact::BlobSize { .. } => "image_size",
            Fact::MountedBlobSize { .. } => "blob_size",
            Fact::TagCount => "tag_count",
            Fact::ImmutableTagDigest { .. } => "immutable_tag",
            Fact::DeleteTags { .. } => "immutable_tag_delete",
            Fact::SignatureSubject { .. } => "exempt_signature_tags",
        }
    }

    /// Machine-readable facts for the answer's detail.
    pub(super) fn detail(&self) -> Option<Value> {
        match self {
            Fact::BlobSize { digest } | Fact::MountedBlobSize { digest, .. } => {
                Some(json!({ "digest": digest.as_str() }))
            }
            _ => None,
        }
    }
}

/// How the upstream failed to tell a fact.
pub(super) enum Failure<'a> {
    /// It refused the client's own credentials, with this status, code and challenge.
    Refused(StatusCode, Option<&'a str>, Option<&'a HeaderValue>),
    Timeout,
    Unreachable,
    Other,
}

pub(super) fn failure(err: &UpstreamError) -> Failure<'_> {
    if let Some((status, code, challenge)) = err.client_refusal() {
        Failure::Refused(status, code, challenge)
    } else if err.is_timeout() {
        Failure::Timeout
    } else if err.is_unreachable() {
        Failure::Unreachable
    } else {
        Failure::Other
    }
}
