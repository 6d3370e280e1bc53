//! Every content type a client may send, against every kind of fixture.

use oci_manifest::{ManifestKind, parse};

use crate::fixture;

#[test]
fn generic_content_types_defer_to_the_body() {
    let generic = [
        None,
        Some(""),
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("APPLICATION/JSON"),
        Some("application/octet-stream"),
    ];
    let bodies: [(&[u8], ManifestKind); 5] = [
        (fixture!("oci-image.json"), ManifestKind::OciImage),
        (fixture!("oci-artifact.json"), ManifestKind::OciImage),
        (fixture!("docker-v2s2.json"), ManifestKind::DockerV2),
        (fixture!("oci-index.json"), ManifestKind::OciIndex),
        (
            fixture!("docker-manifest-list.json"),
            ManifestKind::DockerManifestList,
        ),
    ];
    for content_type in generic {
        for (body, kind) in bodies {
            assert_eq!(
                parse(content_type, body).unwrap().kind(),
                kind,
                "{content_type:?}"
            );
        }
    }
}

#[test]
fn manifest_content_types_ignore_case_and_parameters() {
    let bodies: [(&[u8], ManifestKind); 4] = [
        (fixture!("oci-image.json"), ManifestKind::OciImage),
        (fixture!("docker-v2s2.json"), ManifestKind::DockerV2),
        (fixture!("oci-index.json"), ManifestKind::OciIndex),
        (
            fixture!("docker-manifest-list.json"),
            ManifestKind::DockerManifestList,
        ),
    ];
    for (body, kind) in bodies {
        let media_type = kind.media_type();
        for content_type in [
            media_type.to_owned(),
            media_type.to_ascii_uppercase(),
            format!("{media_type}; charset=utf-8"),
            format!(" {media_type} ;q=1"),
        ] {
            assert_eq!(
                parse(Some(&content_type), body).unwrap().kind(),
                kind,
                "{content_type}"
            );
        }
    }
}

#[test]
fn unknown_content_types_are_refused() {
    let cases = [
        (
            "text/plain",
            "unsupported manifest content type \"text/plain\"",
        ),
        (
            "application/vnd.oci.artifact.manifest.v1+json; charset=utf-8",
            "unsupported manifest content type \"application/vnd.oci.artifact.manifest.v1+json\"",
        ),
    ];
    for (content_type, want) in cases {
        let error = parse(Some(content_type), fixture!("oci-image.json")).unwrap_err();
        assert_eq!(error.to_string(), want);
    }
}
