//! What cosign attaches to a manifest under a `sha256-<hex>.sig`, `.att` or `.sbom` tag, told
//! apart by the shape cosign writes.
//!
//! cosign stores each of them as an image manifest whose layers all carry one kind of payload
//! (sigstore/cosign `pkg/types/media.go`, `specs/SBOM_SPEC.md`):
//!
//! | tag suffix | what | every layer's media type |
//! | --- | --- | --- |
//! | `.sig` | signatures | `application/vnd.dev.cosign.simplesigning.v1+json` |
//! | `.att` | attestations (in-toto statements in DSSE envelopes) | `application/vnd.dsse.envelope.v1+json` |
//! | `.sbom` | software bills of materials | `text/spdx`, `application/vnd.cyclonedx` or `application/vnd.syft`, each optionally `+json` or `+xml` |

use std::fmt;

use crate::Manifest;

/// Media type of a cosign signature layer (a simple-signing payload).
pub const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Media type of a cosign attestation layer (a DSSE envelope).
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// SBOM formats cosign attaches (`cosign attach sbom --type spdx|cyclonedx|syft`).
const SBOM_TYPES: [&str; 3] = [
    "text/spdx",
    "application/vnd.cyclonedx",
    "application/vnd.syft",
];

/// What cosign attaches to a manifest, by the tag suffix it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CosignArtifact {
    /// Signatures, under `.sig`.
    Signature,
    /// Attestations, under `.att`.
    Attestation,
    /// Software bills of materials, under `.sbom`.
    Sbom,
}

impl CosignArtifact {
    /// The suffix of the tag cosign stores it under: `sig`, `att` or `sbom`.
    pub fn tag_suffix(self) -> &'static str {
        match self {
            CosignArtifact::Signature => "sig",
            CosignArtifact::Attestation => "att",
            CosignArtifact::Sbom => "sbom",
        }
    }

    /// The kind a layer's media type belongs to, if any.
    fn of_layer(media_type: &str) -> Option<Self> {
        match media_type {
            COSIGN_SIMPLE_SIGNING => Some(CosignArtifact::Signature),
            DSSE_ENVELOPE => Some(CosignArtifact::Attestation),
            other => {
                let base = other
                    .strip_suffix("+json")
                    .or_else(|| other.strip_suffix("+xml"))
                    .unwrap_or(other);
                SBOM_TYPES.contains(&base).then_some(CosignArtifact::Sbom)
            }
        }
    }
}

impl fmt::Display for CosignArtifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CosignArtifact::Signature => "cosign signature",
            CosignArtifact::Attestation => "cosign attestation",
            CosignArtifact::Sbom => "cosign SBOM",
        })
    }
}

impl Manifest {
    /// What cosign attached, when this manifest has its shape: an image manifest with at least
    /// one layer, every layer of one kind's media types. An index, an image without layers or
    /// with layers of mixed or other kinds is none.
    ///
    /// ```
    /// use oci_manifest::{CosignArtifact, parse};
    ///
    /// let signature = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    ///   "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":233,
    ///     "digest":"sha256:83bd5fb5b39f65f28e50a86d48fa79c07880befc292d92eebdc18531054b070c"},
    ///   "layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":246,
    ///     "digest":"sha256:ed3ad03d3b87843b5419d7dce9d50a3e0f45554b2ba93bf378611cae6b450cff",
    ///     "annotations":{"dev.cosignproject.cosign/signature":"MEUCIQ..."}}]}"#;
    /// let manifest = parse(Some("application/vnd.oci.image.manifest.v1+json"), signature)?;
    /// assert_eq!(manifest.cosign_artifact(), Some(CosignArtifact::Signature));
    /// # Ok::<(), oci_manifest::ManifestError>(())
    /// ```
    pub fn cosign_artifact(&self) -> Option<CosignArtifact> {
        let image = self.as_image()?;
        let mut kinds = image
            .layers()
            .iter()
            .map(|layer| CosignArtifact::of_layer(layer.media_type()));
        let first = kinds.next()??;
        kinds.all(|kind| kind == Some(first)).then_some(first)
    }

    /// Whether this manifest is attached to another one rather than an image of its own: a
    /// cosign artifact, or an OCI 1.1 referrer (it names a `subject`).
    pub fn is_attached(&self) -> bool {
        self.cosign_artifact().is_some() || self.subject().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(layer_types: &[&str]) -> Manifest {
        let layers: Vec<String> = layer_types
            .iter()
            .enumerate()
            .map(|(i, media_type)| {
                format!(
                    r#"{{"mediaType":"{media_type}","size":10,"digest":"sha256:{:064x}"}}"#,
                    i + 1
                )
            })
            .collect();
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:{:064x}"}},"layers":[{}]}}"#,
            0,
            layers.join(",")
        );
        crate::parse(
            Some("application/vnd.oci.image.manifest.v1+json"),
            body.as_bytes(),
        )
        .expect("valid manifest")
    }

    #[test]
    fn shapes() {
        use CosignArtifact::*;
        let cases: &[(&[&str], Option<CosignArtifact>)] = &[
            (&[COSIGN_SIMPLE_SIGNING], Some(Signature)),
            (
                &[COSIGN_SIMPLE_SIGNING, COSIGN_SIMPLE_SIGNING],
                Some(Signature),
            ),
            (&[DSSE_ENVELOPE], Some(Attestation)),
            (&["text/spdx"], Some(Sbom)),
            (&["text/spdx+json"], Some(Sbom)),
            (&["application/vnd.cyclonedx+xml"], Some(Sbom)),
            (&["application/vnd.syft+json", "text/spdx"], Some(Sbom)),
            (&[], None),
            (&["application/vnd.oci.image.layer.v1.tar+gzip"], None),
            (
                &[
                    COSIGN_SIMPLE_SIGNING,
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                ],
                None,
            ),
            (&[COSIGN_SIMPLE_SIGNING, DSSE_ENVELOPE], None),
            (&["text/spdx+yaml"], None),
            (&["TEXT/SPDX"], None),
        ];
        for (layers, expected) in cases {
            assert_eq!(image(layers).cosign_artifact(), *expected, "{layers:?}");
        }
    }

    #[test]
    fn an_index_is_no_artifact() {
        let index = crate::parse(
            Some("application/vnd.oci.image.index.v1+json"),
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
        )
        .expect("valid index");
        assert_eq!(index.cosign_artifact(), None);
        assert!(!index.is_attached());
    }
}
