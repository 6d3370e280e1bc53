//! The fixtures in `tests/fixtures/`, checked against their own digests and sizes.

use oci_manifest::{Manifest, ManifestError, ManifestKind, parse};

use crate::fixture;

const OCI_IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The two layers umoci made, as skopeo wrote them in both formats: (digest, size).
const UMOCI_LAYERS: [(&str, u64); 2] = [
    (
        "sha256:d381faf80ae4d15f2b3460336c677ffb55fc928c0b993569d6fde87be911f389",
        105,
    ),
    (
        "sha256:10917f1f90efc5e84f485ed2e0019dfb324fe3e709d31d7d904b9a42b69a5bec",
        104,
    ),
];
const UMOCI_CONFIG: &str =
    "sha256:62c0779efd5c4e05f65e0d5f958b279ff06fd6eccd202e816389dbcc19bce6c9";

fn image(content_type: Option<&str>, body: &[u8]) -> oci_manifest::ImageManifest {
    match parse(content_type, body) {
        Ok(Manifest::Image(image)) => image,
        other => panic!("expected an image manifest, got {other:?}"),
    }
}

fn index(content_type: Option<&str>, body: &[u8]) -> oci_manifest::IndexManifest {
    match parse(content_type, body) {
        Ok(Manifest::Index(index)) => index,
        other => panic!("expected an index, got {other:?}"),
    }
}

fn layer_facts(image: &oci_manifest::ImageManifest) -> Vec<(String, u64)> {
    image
        .layers()
        .iter()
        .map(|l| (l.digest().to_string(), l.size()))
        .collect()
}

fn umoci_layers() -> Vec<(String, u64)> {
    UMOCI_LAYERS
        .iter()
        .map(|(d, s)| ((*d).to_owned(), *s))
        .collect()
}

#[test]
fn skopeo_oci_image() {
    // skopeo writes no mediaType into OCI manifests: the content type decides.
    for content_type in [
        Some(OCI_IMAGE),
        Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
    ] {
        let image = image(content_type, fixture!("oci-image.json"));
        assert_eq!(image.kind(), ManifestKind::OciImage);
        assert_eq!(layer_facts(&image), umoci_layers());
        assert_eq!(image.total_size(), 439 + 209);
        assert_eq!(image.foreign_layers().count(), 0);
        assert_eq!(image.config().digest().as_str(), UMOCI_CONFIG);
        assert_eq!(image.config().size(), 439);
        assert_eq!(
            image.config().media_type(),
            "application/vnd.oci.image.config.v1+json"
        );
        assert!(
            image
                .layers()
                .iter()
                .all(|l| l.media_type() == "application/vnd.oci.image.layer.v1.tar+gzip")
        );
        assert_eq!(image.subject(), None);
        assert_eq!(image.artifact_type(), None);
        assert!(!image.is_artifact());
    }
}

#[test]
fn skopeo_docker_v2s2() {
    for content_type in [
        Some(DOCKER_V2),
        Some("Application/Vnd.Docker.Distribution.Manifest.V2+JSON"),
    ] {
        let image = image(content_type, fixture!("docker-v2s2.json"));
        assert_eq!(image.kind(), ManifestKind::DockerV2);
        assert_eq!(layer_facts(&image), umoci_layers());
        assert_eq!(image.total_size(), image.config().size() + 209);
        assert_eq!(image.config().digest().as_str(), UMOCI_CONFIG);
        assert_eq!(
            image.config().media_type(),
            "application/vnd.docker.container.image.v1+json"
        );
        assert!(!image.is_artifact());
    }
}

#[test]
fn skopeo_docker_v2s1_is_refused_in_every_form() {
    let cases: [(Option<&str>, &[u8], bool); 10] = [
        (
            Some(SCHEMA1_SIGNED),
            fixture!("docker-v2s1-signed.json"),
            true,
        ),
        (Some(SCHEMA1), fixture!("docker-v2s1-signed.json"), true),
        (
            Some("application/json"),
            fixture!("docker-v2s1-signed.json"),
            true,
        ),
        (None, fixture!("docker-v2s1-signed.json"), true),
        (Some(SCHEMA1), fixture!("docker-v2s1-unsigned.json"), false),
        (
            Some("application/json"),
            fixture!("docker-v2s1-unsigned.json"),
            false,
        ),
        (
            Some("application/octet-stream"),
            fixture!("docker-v2s1-unsigned.json"),
            false,
        ),
        (None, fixture!("docker-v2s1-unsigned.json"), false),
        // The body is schema 1 whatever the content type claims.
        (
            Some(OCI_IMAGE),
            fixture!("docker-v2s1-unsigned.json"),
            false,
        ),
        // A schema 1 content type is refused before the body is looked at.
        (Some(SCHEMA1_SIGNED), b"not json", false),
    ];
    for (content_type, body, signed) in cases {
        let error = parse(content_type, body).unwrap_err();
        assert!(error.is_schema1(), "{content_type:?}: {error}");
        assert!(
            matches!(error, ManifestError::Schema1 { signed: s } if s == signed),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "docker schema 1 manifests are not supported (deprecated by Docker since 2019); \
             convert the image with a current client (pull and push it again) or with \
             \"skopeo copy --format v2s2 SRC DST\""
        );
    }
}

#[test]
fn foreign_layers_by_the_registrys_rule() {
    let image = image(Some(DOCKER_V2), fixture!("docker-v2s2-foreign.json"));
    assert_eq!(image.kind(), ManifestKind::DockerV2);
    let sizes: Vec<u64> = image.layers().iter().map(|l| l.size()).collect();
    assert_eq!(sizes, [1_718_332_879, 1_234_567, 99_999, 2048]);
    // Only Docker's own foreign type, with urls, is foreign in a Docker manifest; the OCI
    // non-distributable zstd layer is stored by distribution like any other blob.
    let foreign: Vec<&str> = image
        .foreign_layers()
        .map(|l| l.digest().as_str())
        .collect();
    assert_eq!(
        foreign,
        ["sha256:4612f6d0b889cad0ed0292fae3a0b0c8a9e49aff6dea8eb049b2386d9b07986f"]
    );
    assert_eq!(image.layers()[0].urls().len(), 1);
    assert_eq!(
        image.total_size(),
        1872 + 1_718_332_879 + 1_234_567 + 99_999 + 2048
    );
    // The registry holds everything but the foreign layer.
    let holds = |digest: &oci_manifest::Digest| {
        image
            .layers()
            .iter()
            .map(|l| (l.digest(), l.size()))
            .chain([(image.config().digest(), image.config().size())])
            .find(|(d, _)| *d == digest && !d.as_str().starts_with("sha256:4612"))
            .map_or(oci_manifest::BlobState::Absent, |(_, size)| {
                oci_manifest::BlobState::Present(size)
            })
    };
    assert_eq!(image.measure(holds), Ok(1872 + 1_234_567 + 99_999 + 2048));
}

#[test]
fn artifact_with_empty_config_and_subject() {
    let manifest = parse(Some(OCI_IMAGE), fixture!("oci-artifact.json")).unwrap();
    assert_eq!(manifest.kind(), ManifestKind::OciImage);
    assert_eq!(
        manifest.artifact_type(),
        Some("application/vnd.example.sbom.v1+json")
    );
    let subject = manifest.subject().expect("a subject");
    assert_eq!(subject.media_type(), OCI_IMAGE);
    assert_eq!(
        subject.digest().as_str(),
        "sha256:ec7fe7e70faddcf1f42b0b5f4540ad7dee7e455c93e0b4131499434e4a1b50ce"
    );
    assert_eq!(subject.size(), 499);

    let image = manifest.as_image().expect("an image manifest");
    assert!(image.is_artifact());
    assert!(image.config().is_empty_json());
    assert_eq!(image.config().size(), 2);
    // Layers of any media type count.
    let media_types: Vec<&str> = image.layers().iter().map(|l| l.media_type()).collect();
    assert_eq!(
        media_types,
        [
            "application/spdx+json",
            "application/vnd.example.signature.v1"
        ]
    );
    assert_eq!(image.layers()[1].digest().algorithm(), "sha512");
    assert_eq!(image.total_size(), 2 + 18432 + 256);
}

#[test]
fn oci_index() {
    for content_type in [
        Some(OCI_INDEX),
        Some("Application/Vnd.OCI.Image.Index.V1+JSON"),
    ] {
        let index = index(content_type, fixture!("oci-index.json"));
        assert_eq!(index.kind(), ManifestKind::OciIndex);
        let facts: Vec<(&str, u64)> = index
            .manifests()
            .iter()
            .map(|m| (m.digest().as_str(), m.size()))
            .collect();
        assert_eq!(
            facts,
            [
                (
                    "sha256:ec7fe7e70faddcf1f42b0b5f4540ad7dee7e455c93e0b4131499434e4a1b50ce",
                    499
                ),
                (
                    "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
                    1024
                ),
                (
                    "sha256:c8d3e7e8b1f5d1f24d0b4f0e6c0e9a5ef5e9f26f1c8d6a2f56f2d0a7a3e2b9d1",
                    840
                ),
            ]
        );
        assert!(
            index
                .manifests()
                .iter()
                .all(|m| m.media_type() == OCI_IMAGE)
        );
        assert_eq!(index.subject(), None);
        assert!(
            parse(content_type, fixture!("oci-index.json"))
                .unwrap()
                .as_image()
                .is_none()
        );
    }
}

#[test]
fn docker_manifest_list() {
    let index = index(Some(DOCKER_LIST), fixture!("docker-manifest-list.json"));
    assert_eq!(index.kind(), ManifestKind::DockerManifestList);
    assert!(index.kind().is_index());
    let facts: Vec<(&str, u64)> = index
        .manifests()
        .iter()
        .map(|m| (m.digest().as_str(), m.size()))
        .collect();
    assert_eq!(
        facts,
        [
            (
                "sha256:10f4b5bff4acea9cb34b35c0cb0f11322ea10819630a831735a7571cbcd9884d",
                583
            ),
            (
                "sha256:3f2b1d0c9e8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e",
                583
            ),
        ]
    );
    assert!(
        index
            .manifests()
            .iter()
            .all(|m| m.media_type() == DOCKER_V2)
    );
}

#[test]
fn index_references_match_the_tool_made_fixtures() {
    // The hand-written index and list point at the real manifests by their true digest and size.
    let oci = index(Some(OCI_INDEX), fixture!("oci-index.json"));
    assert_eq!(
        oci.manifests()[0].size(),
        fixture!("oci-image.json").len() as u64
    );
    let list = index(Some(DOCKER_LIST), fixture!("docker-manifest-list.json"));
    assert_eq!(
        list.manifests()[0].size(),
        fixture!("docker-v2s2.json").len() as u64
    );
}

#[test]
fn content_type_that_contradicts_the_fixture() {
    let cases: [(&str, &[u8], &str); 4] = [
        (
            OCI_IMAGE,
            fixture!("docker-v2s2.json"),
            "content type \"application/vnd.oci.image.manifest.v1+json\" does not match the \
             manifest's mediaType \"application/vnd.docker.distribution.manifest.v2+json\"",
        ),
        (
            DOCKER_LIST,
            fixture!("oci-index.json"),
            "content type \"application/vnd.docker.distribution.manifest.list.v2+json\" does not \
             match the manifest's mediaType \"application/vnd.oci.image.index.v1+json\"",
        ),
        (
            OCI_INDEX,
            fixture!("oci-image.json"),
            "oci image index must not have field \"layers\"",
        ),
        (
            OCI_IMAGE,
            fixture!("oci-index.json"),
            "content type \"application/vnd.oci.image.manifest.v1+json\" does not match the \
             manifest's mediaType \"application/vnd.oci.image.index.v1+json\"",
        ),
    ];
    for (content_type, body, want) in cases {
        assert_eq!(
            parse(Some(content_type), body).unwrap_err().to_string(),
            want
        );
    }
}
