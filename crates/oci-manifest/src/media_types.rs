//! The media types this crate tells apart, as `&'static str` constants.
//!
//! The OCI ones are the strings of [`oci_spec::image::MediaType`] (a unit test keeps them equal);
//! they are repeated here because oci-spec only hands them out through a borrowed `as_ref()`, and
//! it has no Docker ones at all. A `Content-Type` is compared ASCII case-insensitively with its
//! parameters (`; charset=utf-8`) ignored, as Go's `mime.ParseMediaType` reads it for the
//! registry; a manifest's own `mediaType` and its layers' media types are compared exactly, as
//! the registry compares them.

use crate::ManifestKind;

/// OCI image manifest.
pub const OCI_IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform), schema 2.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 1, unsigned. Refused.
pub const DOCKER_SCHEMA1_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker image manifest, schema 1, signed (JWS). Refused.
pub const DOCKER_SCHEMA1_SIGNED_MANIFEST: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Generic JSON: the manifest's own `mediaType` decides.
pub const APPLICATION_JSON: &str = "application/json";
/// Generic bytes: the manifest's own `mediaType` decides.
pub const APPLICATION_OCTET_STREAM: &str = "application/octet-stream";
/// OCI image config.
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config.
pub const DOCKER_IMAGE_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// The OCI empty config (`{}`) that artifacts without a config use.
pub const OCI_EMPTY_JSON: &str = "application/vnd.oci.empty.v1+json";
/// Docker foreign layer (Windows base layers), fetched by clients from its `urls`.
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// OCI non-distributable layer, uncompressed, fetched by clients from its `urls`.
pub const OCI_NONDISTRIBUTABLE_LAYER: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// OCI non-distributable layer, gzip, fetched by clients from its `urls`.
pub const OCI_NONDISTRIBUTABLE_LAYER_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// OCI non-distributable layer, zstd. Distribution 2.8 does not know it and stores it like any
/// other blob, so it is counted.
pub const OCI_NONDISTRIBUTABLE_LAYER_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// The media type part of a `Content-Type` value: parameters dropped, whitespace trimmed.
pub(crate) fn essence(content_type: &str) -> &str {
    content_type
        .split_once(';')
        .map_or(content_type, |(essence, _)| essence)
        .trim()
}

/// Whether a layer of this media type is foreign / non-distributable in a manifest of `kind`,
/// by the CNCF distribution registry's rule: an exact, case-sensitive comparison, per format.
/// Docker schema 2 knows only Docker's foreign layer; OCI only the non-distributable `tar` and
/// `tar+gzip` layers (distribution 2.8 predates `tar+zstd` and stores it like any blob).
pub(crate) fn is_foreign_layer(kind: ManifestKind, media_type: &str) -> bool {
    match kind {
        ManifestKind::DockerV2 => media_type == DOCKER_FOREIGN_LAYER,
        ManifestKind::OciImage => {
            media_type == OCI_NONDISTRIBUTABLE_LAYER
                || media_type == OCI_NONDISTRIBUTABLE_LAYER_GZIP
        }
        ManifestKind::OciIndex | ManifestKind::DockerManifestList => false,
    }
}

/// Whether this (manifest or content) media type is one of Docker schema 1.
pub(crate) fn is_schema1(media_type: &str) -> bool {
    media_type.eq_ignore_ascii_case(DOCKER_SCHEMA1_MANIFEST)
        || media_type.eq_ignore_ascii_case(DOCKER_SCHEMA1_SIGNED_MANIFEST)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::MediaType;

    #[test]
    fn oci_constants_match_oci_spec() {
        let cases = [
            (OCI_IMAGE_MANIFEST, MediaType::ImageManifest),
            (OCI_IMAGE_INDEX, MediaType::ImageIndex),
            (OCI_IMAGE_CONFIG, MediaType::ImageConfig),
            (OCI_EMPTY_JSON, MediaType::EmptyJSON),
            (
                OCI_NONDISTRIBUTABLE_LAYER,
                MediaType::ImageLayerNonDistributable,
            ),
            (
                OCI_NONDISTRIBUTABLE_LAYER_GZIP,
                MediaType::ImageLayerNonDistributableGzip,
            ),
            (
                OCI_NONDISTRIBUTABLE_LAYER_ZSTD,
                MediaType::ImageLayerNonDistributableZstd,
            ),
        ];
        for (constant, media_type) in cases {
            assert_eq!(constant, media_type.to_string());
        }
    }

    #[test]
    fn essence_table() {
        let cases = [
            ("application/json", "application/json"),
            ("application/json; charset=utf-8", "application/json"),
            ("  Application/JSON ;charset=utf-8", "Application/JSON"),
            ("", ""),
            (";", ""),
        ];
        for (input, want) in cases {
            assert_eq!(essence(input), want, "{input:?}");
        }
    }

    #[test]
    fn foreign_table() {
        use ManifestKind::{DockerV2, OciImage};
        let cases = [
            (DockerV2, DOCKER_FOREIGN_LAYER, true),
            (OciImage, DOCKER_FOREIGN_LAYER, false),
            (
                DockerV2,
                "application/vnd.docker.image.rootfs.FOREIGN.diff.tar.gzip",
                false,
            ),
            (OciImage, OCI_NONDISTRIBUTABLE_LAYER, true),
            (OciImage, OCI_NONDISTRIBUTABLE_LAYER_GZIP, true),
            (OciImage, OCI_NONDISTRIBUTABLE_LAYER_ZSTD, false),
            (DockerV2, OCI_NONDISTRIBUTABLE_LAYER_GZIP, false),
            (
                OciImage,
                "application/vnd.oci.image.layer.NONDISTRIBUTABLE.v1.tar+gzip",
                false,
            ),
            (
                OciImage,
                "application/vnd.oci.image.layer.v1.tar+gzip",
                false,
            ),
            (
                DockerV2,
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                false,
            ),
            (
                OciImage,
                "application/vnd.oci.image.layer.nondistributable.v1.tar+xz",
                false,
            ),
            (OciImage, "", false),
        ];
        for (kind, media_type, want) in cases {
            assert_eq!(
                is_foreign_layer(kind, media_type),
                want,
                "{kind} {media_type}"
            );
        }
    }
}
