//! The changes the inventory applies to a namespace: admitted pushes and registry events, and
//! the corrections a reconciliation finds.

use oci_manifest::Digest;
use registry_api::EventKind;

/// One change to what a namespace holds: an admitted push, or a registry event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A manifest was stored in `repository`, under `tags` (none: by digest).
    Pushed {
        /// The repository, whole name.
        repository: String,
        /// The manifest's digest.
        digest: Digest,
        /// The tags it was pushed by.
        tags: Vec<String>,
    },
    /// Every tag of `repository` pointing at `digest` was removed, and the digest itself.
    DigestDeleted {
        /// The repository.
        repository: String,
        /// The digest (a manifest's; a blob's matches nothing).
        digest: Digest,
    },
    /// One tag was removed.
    TagDeleted {
        /// The repository.
        repository: String,
        /// The tag.
        tag: String,
    },
    /// The whole repository was removed.
    RepositoryDeleted {
        /// The repository.
        repository: String,
    },
}

impl Change {
    /// The change a registry event makes; `None` for an event that changes no manifest or tag
    /// (a blob stored: blobs count through the manifests that reference them).
    pub fn from_event(kind: &EventKind) -> Option<Change> {
        match kind {
            EventKind::ManifestPushed {
                repository,
                digest,
                tag,
                ..
            } => Some(Change::Pushed {
                repository: repository.to_string(),
                digest: digest.clone(),
                tags: tag.iter().cloned().collect(),
            }),
            EventKind::DigestDeleted { repository, digest } => Some(Change::DigestDeleted {
                repository: repository.to_string(),
                digest: digest.clone(),
            }),
            EventKind::TagDeleted { repository, tag } => Some(Change::TagDeleted {
                repository: repository.to_string(),
                tag: tag.clone(),
            }),
            EventKind::RepositoryDeleted { repository } => Some(Change::RepositoryDeleted {
                repository: repository.to_string(),
            }),
            _ => None,
        }
    }

    /// The repository it changes.
    pub fn repository(&self) -> &str {
        match self {
            Change::Pushed { repository, .. }
            | Change::DigestDeleted { repository, .. }
            | Change::TagDeleted { repository, .. }
            | Change::RepositoryDeleted { repository } => repository,
        }
    }

    /// The digest whose facts the change needs, if any.
    pub fn pushed_digest(&self) -> Option<&Digest> {
        match self {
            Change::Pushed { digest, .. } => Some(digest),
            _ => None,
        }
    }
}

/// One difference a reconciliation found between the inventory and the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// The repository.
    pub repository: String,
    /// What was wrong: `tag_added`, `tag_removed`, `tag_moved` or `untagged_removed`.
    pub kind: &'static str,
    /// The tag, or the digest for `untagged_removed`.
    pub reference: String,
}
