//! The media types this crate tells apart, as `&'static str` constants.
//!
//! The OCI ones are the strings of [`oci_spec::image::MediaType`] (a unit test keeps them equal);
//! they are repeated here because oci-spec only hands them out through a borrowed `as_ref()`, and
//! it has no Docker ones at all. Media types are compared ASCII case-insensitively, as RFC 6838
//! says, and `Content-Type` parameters such as `; charset=utf-8` are ignored.

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
/// Docker foreign layer (Windows base layers): not stored by the registry, not counted.
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// OCI non-distributable layer, uncompressed: not stored by the registry, not counted.
pub const OCI_NONDISTRIBUTABLE_LAYER: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// OCI non-distributable layer, gzip: not stored by the registry, not counted.
pub const OCI_NONDISTRIBUTABLE_LAYER_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// OCI non-distributable layer, zstd: not stored by the registry, not counted.
pub const OCI_NONDISTRIBUTABLE_LAYER_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// The media type part of a `Content-Type` value: parameters dropped, whitespace trimmed.
pub(crate) fn essence(content_type: &str) -> &str {
    content_type
        .split_once(';')
        .map_or(content_type, |(essence, _)| essence)
        .trim()
}

/// Whether a layer of this media type is foreign / non-distributable: the registry does not
/// store it, so it does not count towards the image size.
pub(crate) fn is_foreign_layer(media_type: &str) -> bool {
    use oci_spec::image::MediaType;
    if media_type.eq_ignore_ascii_case(DOCKER_FOREIGN_LAYER) {
        return true;
    }
    matches!(
        MediaType::from(media_type.to_ascii_lowercase().as_str()),
        MediaType::ImageLayerNonDistributable
            | MediaType::ImageLayerNonDistributableGzip
            | MediaType::ImageLayerNonDistributableZstd
    )
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
        let cases = [
            (DOCKER_FOREIGN_LAYER, true),
            (
                "application/vnd.docker.image.rootfs.FOREIGN.diff.tar.gzip",
                true,
            ),
            (OCI_NONDISTRIBUTABLE_LAYER, true),
            (OCI_NONDISTRIBUTABLE_LAYER_GZIP, true),
            (OCI_NONDISTRIBUTABLE_LAYER_ZSTD, true),
            ("application/vnd.oci.image.layer.v1.tar+gzip", false),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", false),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+xz",
                false,
            ),
            ("", false),
        ];
        for (media_type, want) in cases {
            assert_eq!(is_foreign_layer(media_type), want, "{media_type}");
        }
    }
}
