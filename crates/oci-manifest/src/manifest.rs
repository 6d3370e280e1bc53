//! Parsed manifests: an image manifest or an index of manifests.

use crate::{Descriptor, Layer, ManifestKind, media_types};

/// A parsed, validated manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An OCI image manifest (including OCI artifacts) or a Docker schema 2 image manifest.
    Image(ImageManifest),
    /// An OCI image index or a Docker manifest list.
    Index(IndexManifest),
}

impl Manifest {
    /// Which of the four kinds this is.
    pub fn kind(&self) -> ManifestKind {
        match self {
            Manifest::Image(image) => image.kind,
            Manifest::Index(index) => index.kind,
        }
    }

    /// The `subject` this manifest refers to (OCI 1.1 referrers), if any.
    pub fn subject(&self) -> Option<&Descriptor> {
        match self {
            Manifest::Image(image) => image.subject(),
            Manifest::Index(index) => index.subject(),
        }
    }

    /// The manifest's `artifactType`, if any.
    pub fn artifact_type(&self) -> Option<&str> {
        match self {
            Manifest::Image(image) => image.artifact_type(),
            Manifest::Index(index) => index.artifact_type(),
        }
    }

    /// The image manifest, when this is one.
    pub fn as_image(&self) -> Option<&ImageManifest> {
        match self {
            Manifest::Image(image) => Some(image),
            Manifest::Index(_) => None,
        }
    }

    /// The index, when this is one.
    pub fn as_index(&self) -> Option<&IndexManifest> {
        match self {
            Manifest::Image(_) => None,
            Manifest::Index(index) => Some(index),
        }
    }
}

/// An image manifest: a config and layers. Its size is the sum of the blobs the registry holds
/// for it: the config and every layer, foreign layers only when the registry holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub(crate) kind: ManifestKind,
    pub(crate) artifact_type: Option<String>,
    pub(crate) config: Descriptor,
    pub(crate) layers: Vec<Layer>,
    pub(crate) total_size: u64,
    pub(crate) subject: Option<Descriptor>,
}

impl ImageManifest {
    /// [`ManifestKind::OciImage`] or [`ManifestKind::DockerV2`].
    pub fn kind(&self) -> ManifestKind {
        self.kind
    }

    /// The manifest's `artifactType` (OCI artifacts only).
    pub fn artifact_type(&self) -> Option<&str> {
        self.artifact_type.as_deref()
    }

    /// Whether this is an OCI artifact rather than a container image: it has an `artifactType`,
    /// or its config is not an OCI or Docker image config.
    pub fn is_artifact(&self) -> bool {
        let config = self.config.media_type();
        self.artifact_type.is_some()
            || !(config.eq_ignore_ascii_case(media_types::OCI_IMAGE_CONFIG)
                || config.eq_ignore_ascii_case(media_types::DOCKER_IMAGE_CONFIG))
    }

    /// The config descriptor. Counted: the registry stores it like a layer.
    pub fn config(&self) -> &Descriptor {
        &self.config
    }

    /// Every layer, in manifest order, foreign ones included ([`Layer::is_foreign`]).
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The foreign / non-distributable layers ([`Layer::is_foreign`]), in manifest order.
    pub fn foreign_layers(&self) -> impl Iterator<Item = &Layer> {
        self.layers.iter().filter(|layer| layer.is_foreign())
    }

    /// The sum of the declared sizes of the config and every layer, in bytes: the most the
    /// image can measure ([`measure`](Self::measure) leaves out foreign layers the registry
    /// does not hold). Parsing fails rather than let this overflow.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// The `subject` this manifest refers to (OCI only).
    pub fn subject(&self) -> Option<&Descriptor> {
        self.subject.as_ref()
    }
}

/// An index of manifests: an OCI image index or a Docker manifest list. Not measured: each child
/// manifest is checked when it is pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexManifest {
    pub(crate) kind: ManifestKind,
    pub(crate) artifact_type: Option<String>,
    pub(crate) manifests: Vec<Descriptor>,
    pub(crate) subject: Option<Descriptor>,
}

impl IndexManifest {
    /// [`ManifestKind::OciIndex`] or [`ManifestKind::DockerManifestList`].
    pub fn kind(&self) -> ManifestKind {
        self.kind
    }

    /// The index's `artifactType` (OCI only).
    pub fn artifact_type(&self) -> Option<&str> {
        self.artifact_type.as_deref()
    }

    /// The child manifests, in index order.
    pub fn manifests(&self) -> &[Descriptor] {
        &self.manifests
    }

    /// The `subject` this index refers to (OCI only).
    pub fn subject(&self) -> Option<&Descriptor> {
        self.subject.as_ref()
    }
}
