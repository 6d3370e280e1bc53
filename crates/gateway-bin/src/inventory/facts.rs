//! What one manifest stores, as the inventory counts it: its blobs with their sizes, an
//! index's children, whether it is attached to another manifest.

use std::collections::BTreeMap;

use oci_manifest::{Digest, Manifest};

/// How deep indexes may nest when their blobs are gathered (an index of indexes is 2).
pub const MAX_INDEX_DEPTH: usize = 4;

/// What one manifest stores, read once from its content (content-addressed: never stale).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManifestFacts {
    /// An image's config and layers with their sizes, foreign layers left out; empty for an
    /// index, whose blobs are its children's.
    pub blobs: BTreeMap<Digest, u64>,
    /// An index's children.
    pub children: Vec<Digest>,
    /// Whether it is attached to another manifest (it has a `subject`).
    pub attached: bool,
}

impl ManifestFacts {
    /// The facts of a parsed manifest.
    pub fn of(manifest: &Manifest) -> Self {
        match manifest {
            Manifest::Image(image) => {
                let mut blobs = BTreeMap::new();
                blobs.insert(image.config().digest().clone(), image.config().size());
                for layer in image.layers().iter().filter(|l| !l.is_foreign()) {
                    blobs.insert(layer.digest().clone(), layer.size());
                }
                ManifestFacts {
                    blobs,
                    children: Vec::new(),
                    attached: image.subject().is_some(),
                }
            }
            Manifest::Index(index) => ManifestFacts {
                blobs: BTreeMap::new(),
                children: index
                    .manifests()
                    .iter()
                    .map(|d| d.digest().clone())
                    .collect(),
                attached: index.subject().is_some(),
            },
        }
    }
}
