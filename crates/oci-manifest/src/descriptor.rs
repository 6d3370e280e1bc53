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
    pub(crate) urls: Vec<String>,
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

    /// The descriptor's `urls`: where clients may fetch the content instead of the registry.
    pub fn urls(&self) -> &[String] {
        &self.urls
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
    pub(crate) urls: Vec<String>,
    pub(crate) foreign: bool,
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

    /// The layer's `urls`: where clients fetch a foreign layer from.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Whether the registry may accept this layer without holding it: a foreign /
    /// non-distributable layer, by the registry's own rule. That rule is the CNCF distribution
    /// registry's, which compares media types exactly (case-sensitive) and per manifest format:
    ///
    /// * in a Docker schema 2 manifest, `application/vnd.docker.image.rootfs.foreign.diff.tar.gzip`;
    /// * in an OCI image manifest, `application/vnd.oci.image.layer.nondistributable.v1.tar` and
    ///   its `+gzip` variant (not `+zstd`, which distribution 2.8 stores like any blob);
    ///
    /// and the layer must carry `urls` (without them distribution requires the blob).
    ///
    /// A foreign layer is still counted when the registry holds its blob: see
    /// [`ImageManifest::measure`](crate::ImageManifest::measure).
    pub fn is_foreign(&self) -> bool {
        self.foreign
    }
}
