//! Measuring an image against what the registry holds.

use crate::{Digest, ImageManifest};

/// What the registry holds of one blob, as the caller learned it (`HEAD` on the blob).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobState {
    /// The registry holds the blob in the repository, with this real size in bytes.
    Present(u64),
    /// The registry does not hold the blob in the repository.
    Absent,
}

/// Why an image could not be measured: the manifest does not describe what the registry holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// A blob's declared size differs from the size of the blob the registry holds.
    #[error(
        "{field} {digest} declares {declared} bytes but the registry holds {actual} bytes; the \
         manifest's sizes must be true"
    )]
    SizeMismatch {
        /// Which blob: `config` or `layers[2]`.
        field: String,
        /// Its digest.
        digest: Digest,
        /// The size the manifest declares.
        declared: u64,
        /// The size of the blob the registry holds.
        actual: u64,
    },
    /// A blob that must be in the registry is not: the config, or a layer that is not foreign.
    #[error("{field} {digest} is not in the repository: push the blob before the manifest")]
    BlobUnknown {
        /// Which blob: `config` or `layers[2]`.
        field: String,
        /// Its digest.
        digest: Digest,
    },
}

impl MeasureError {
    /// The digest of the blob at fault.
    pub fn digest(&self) -> &Digest {
        match self {
            MeasureError::SizeMismatch { digest, .. }
            | MeasureError::BlobUnknown { digest, .. } => digest,
        }
    }
}

impl ImageManifest {
    /// The image's size: the sum of the sizes of every blob the registry holds for it.
    ///
    /// `lookup` says what the registry holds of a digest. The config and every layer count,
    /// each at its declared size, which must equal the real one ([`MeasureError::SizeMismatch`]).
    /// A blob the registry does not hold is refused ([`MeasureError::BlobUnknown`]): distribution
    /// does not check layers that carry `urls`, so a manifest could otherwise name a blob that
    /// is uploaded later under a false size. The one exception is a foreign layer
    /// ([`Layer::is_foreign`](crate::Layer::is_foreign)) the registry does not hold, which
    /// clients fetch from its `urls` and which counts for nothing; a foreign layer the registry
    /// does hold counts like any other.
    ///
    /// Every entry counts, repeated digests included, so the result is what the manifest
    /// declares for the blobs that count.
    ///
    /// ```
    /// use oci_manifest::{BlobState, MeasureError};
    ///
    /// let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
    ///   "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":10,
    ///     "digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111"},
    ///   "layers":[
    ///     {"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":300,
    ///      "digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222"},
    ///     {"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":5000,
    ///      "digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333",
    ///      "urls":["https://example.com/base.tar.gz"]}]}"#;
    /// let manifest = oci_manifest::parse(Some("application/vnd.docker.distribution.manifest.v2+json"), body)?;
    /// let image = manifest.as_image().expect("an image");
    /// // The registry holds the config and the first layer; the foreign layer is fetched elsewhere.
    /// let holds = |digest: &oci_manifest::Digest| match &digest.hex()[..1] {
    ///     "1" => BlobState::Present(10),
    ///     "2" => BlobState::Present(300),
    ///     _ => BlobState::Absent,
    /// };
    /// assert_eq!(image.measure(holds), Ok(310));
    /// // A layer that lies about its size is refused.
    /// let lies = |_: &oci_manifest::Digest| BlobState::Present(7);
    /// assert!(matches!(image.measure(lies), Err(MeasureError::SizeMismatch { .. })));
    /// # Ok::<(), oci_manifest::ManifestError>(())
    /// ```
    pub fn measure(
        &self,
        mut lookup: impl FnMut(&Digest) -> BlobState,
    ) -> Result<u64, MeasureError> {
        let config = std::iter::once((
            "config".to_owned(),
            self.config.digest(),
            self.config.size(),
            false,
        ));
        let layers = self.layers.iter().enumerate().map(|(index, layer)| {
            (
                format!("layers[{index}]"),
                layer.digest(),
                layer.size(),
                layer.is_foreign(),
            )
        });
        let mut total = 0u64;
        for (field, digest, declared, foreign) in config.chain(layers) {
            match lookup(digest) {
                BlobState::Present(actual) if actual != declared => {
                    return Err(MeasureError::SizeMismatch {
                        field,
                        digest: digest.clone(),
                        declared,
                        actual,
                    });
                }
                // Within the total checked at parse time: it cannot overflow.
                BlobState::Present(_) => total = total.saturating_add(declared),
                BlobState::Absent if foreign => {}
                BlobState::Absent => {
                    return Err(MeasureError::BlobUnknown {
                        field,
                        digest: digest.clone(),
                    });
                }
            }
        }
        Ok(total)
    }
}
