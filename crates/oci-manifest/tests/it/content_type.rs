//! Every content type a client may send, against every kind of fixture.

use oci_manifest::{ManifestKind, parse};

use crate::fixture;

#[test]
fn missing_and_generic_content_types_are_refused() {
    // Distribution decodes these as signed schema 1: the body is never measured as an image.
    let bodies: [&[u8]; 5] = [
        fixture!("oci-image.json"),
        fixture!("oci-artifact.json"),
        fixture!("docker-v2s2.json"),
        fixture!("oci-index.json"),
        fixture!("docker-manifest-list.json"),
    ];
    for body in bodies {
        for content_type in [None, Some(""), Some(" ; charset=utf-8")] {
            let error = parse(content_type, body).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with("manifest content type is missing"),
                "{content_type:?}: {error}"
            );
        }
        for content_type in [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/octet-stream",
        ] {
            let error = parse(Some(content_type), body).unwrap_err();
            assert!(
                error.to_string().starts_with(&format!(
                    "unsupported manifest content type \"{}\": expected one of",
                    content_type.split(';').next().unwrap_or_default()
                )),
                "{content_type}: {error}"
            );
        }
    }
}

#[test]
fn the_body_media_type_must_match_exactly() {
    let body = String::from_utf8_lossy(fixture!("docker-v2s2.json")).replace(
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.V2+json",
    );
    let error = parse(
        Some("application/vnd.docker.distribution.manifest.v2+json"),
        body.as_bytes(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "content type \"application/vnd.docker.distribution.manifest.v2+json\" does not match the \
         manifest's mediaType \"application/vnd.docker.distribution.manifest.V2+json\""
    );
}

#[test]
fn a_top_level_signatures_key_is_schema1() {
    for key in ["signatures", "Signatures", "\u{017F}ignatures"] {
        let body = String::from_utf8_lossy(fixture!("docker-v2s2.json")).replacen(
            '{',
            &format!("{{\"{key}\":[],"),
            1,
        );
        let error = parse(
            Some("application/vnd.docker.distribution.manifest.v2+json"),
            body.as_bytes(),
        )
        .unwrap_err();
        assert!(error.is_schema1(), "{key}: {error}");
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
            "unsupported manifest content type \"text/plain\": expected one of \
             application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.docker.distribution.manifest.list.v2+json",
        ),
        (
            "application/vnd.oci.artifact.manifest.v1+json; charset=utf-8",
            "unsupported manifest content type \"application/vnd.oci.artifact.manifest.v1+json\": \
             expected one of application/vnd.oci.image.manifest.v1+json, \
             application/vnd.oci.image.index.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.docker.distribution.manifest.list.v2+json",
        ),
    ];
    for (content_type, want) in cases {
        let error = parse(Some(content_type), fixture!("oci-image.json")).unwrap_err();
        assert_eq!(error.to_string(), want);
    }
}
