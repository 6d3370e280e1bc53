//! Descriptors: references from a manifest to a blob or to another manifest.

use crate::Digest;
use crate::media_types;

/// A content descriptor: the media type, digest and size of the content it points at. Used for
/// an image's config, an index's manifests and a manifest's `subject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    pub(crate) artifact_type: Option<String>,
}

impl Descriptor {
    /// The media type of the referenced content, as written in the manifest.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The digest of the referenced content.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The declared size of the referenced content in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The descriptor's `artifactType`, when it has one (OCI 1.1).
    pub fn artifact_type(&self) -> Option<&str> {
        self.artifact_type.as_deref()
    }

    /// Whether this is the OCI empty descriptor's media type (`application/vnd.oci.empty.v1+json`),
    /// the config artifacts use when they have none.
    pub fn is_empty_json(&self) -> bool {
        self.media_type
            .eq_ignore_ascii_case(media_types::OCI_EMPTY_JSON)
    }
}

/// One entry of an image manifest's `layers`, of any media type (OCI artifacts carry arbitrary
/// blobs as layers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
}

impl Layer {
    /// The layer's media type, as written in the manifest.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The layer's digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The layer's declared size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the layer is foreign / non-distributable: Docker's
    /// `application/vnd.docker.image.rootfs.foreign.diff.tar.gzip` or OCI's
    /// `application/vnd.oci.image.layer.nondistributable.v1.tar` (plain, `+gzip`, `+zstd`).
    /// Registries do not store such layers, so they do not count towards the image size.
    pub fn is_foreign(&self) -> bool {
        media_types::is_foreign_layer(&self.media_type)
    }
}
