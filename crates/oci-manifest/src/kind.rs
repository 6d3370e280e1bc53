//! The four kinds of manifest a registry accepts today.

use std::fmt;

use crate::media_types;

/// Which kind of manifest was pushed: an image manifest (OCI or Docker schema 2) or an index of
/// manifests (OCI image index or Docker manifest list).
///
/// ```
/// use oci_manifest::ManifestKind;
///
/// let kind = ManifestKind::from_media_type("application/vnd.oci.image.index.v1+json; charset=utf-8");
/// assert_eq!(kind, Some(ManifestKind::OciIndex));
/// assert!(ManifestKind::OciIndex.is_index());
/// assert_eq!(ManifestKind::DockerV2.to_string(), "docker image manifest (schema 2)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManifestKind {
    /// `application/vnd.oci.image.manifest.v1+json`, including OCI artifacts.
    OciImage,
    /// `application/vnd.docker.distribution.manifest.v2+json`.
    DockerV2,
    /// `application/vnd.oci.image.index.v1+json`.
    OciIndex,
    /// `application/vnd.docker.distribution.manifest.list.v2+json`.
    DockerManifestList,
}

impl ManifestKind {
    /// Every kind, in declaration order.
    pub const ALL: [ManifestKind; 4] = [
        ManifestKind::OciImage,
        ManifestKind::DockerV2,
        ManifestKind::OciIndex,
        ManifestKind::DockerManifestList,
    ];

    /// The kind's media type, as registries send it in `Content-Type`.
    pub const fn media_type(self) -> &'static str {
        match self {
            ManifestKind::OciImage => media_types::OCI_IMAGE_MANIFEST,
            ManifestKind::DockerV2 => media_types::DOCKER_MANIFEST_V2,
            ManifestKind::OciIndex => media_types::OCI_IMAGE_INDEX,
            ManifestKind::DockerManifestList => media_types::DOCKER_MANIFEST_LIST,
        }
    }

    /// The kind a media type names, ignoring case and `Content-Type` parameters; `None` for
    /// anything else (including Docker schema 1 and generic JSON).
    pub fn from_media_type(media_type: &str) -> Option<ManifestKind> {
        let essence = media_types::essence(media_type);
        ManifestKind::ALL
            .into_iter()
            .find(|kind| kind.media_type().eq_ignore_ascii_case(essence))
    }

    /// Whether this is an index of manifests (OCI image index or Docker manifest list).
    pub const fn is_index(self) -> bool {
        matches!(
            self,
            ManifestKind::OciIndex | ManifestKind::DockerManifestList
        )
    }

    /// Whether this is an OCI kind (as opposed to a Docker one).
    pub const fn is_oci(self) -> bool {
        matches!(self, ManifestKind::OciImage | ManifestKind::OciIndex)
    }
}

impl fmt::Display for ManifestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ManifestKind::OciImage => "oci image manifest",
            ManifestKind::DockerV2 => "docker image manifest (schema 2)",
            ManifestKind::OciIndex => "oci image index",
            ManifestKind::DockerManifestList => "docker manifest list",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_media_type_table() {
        let cases = [
            (
                "application/vnd.oci.image.manifest.v1+json",
                Some(ManifestKind::OciImage),
            ),
            (
                "APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON",
                Some(ManifestKind::OciImage),
            ),
            (
                "application/vnd.oci.image.index.v1+json;charset=utf-8",
                Some(ManifestKind::OciIndex),
            ),
            (
                "application/vnd.docker.distribution.manifest.v2+json",
                Some(ManifestKind::DockerV2),
            ),
            (
                " application/vnd.docker.distribution.manifest.list.v2+json ",
                Some(ManifestKind::DockerManifestList),
            ),
            ("application/vnd.docker.distribution.manifest.v1+json", None),
            (
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
                None,
            ),
            ("application/json", None),
            ("", None),
        ];
        for (media_type, want) in cases {
            assert_eq!(
                ManifestKind::from_media_type(media_type),
                want,
                "{media_type}"
            );
        }
    }

    #[test]
    fn round_trip() {
        for kind in ManifestKind::ALL {
            assert_eq!(ManifestKind::from_media_type(kind.media_type()), Some(kind));
        }
    }
}
