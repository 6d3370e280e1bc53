//! Feeds arbitrary bodies to `oci_manifest::parse` under a content type picked by the first byte.
//!
//! Asserts, beyond "no panic": only the four manifest media types are ever accepted (a missing
//! or generic content type never is); every accepted image manifest's total is the sum of its
//! config and every layer; measuring it against a registry that holds every blob at its
//! declared size gives that total; a foreign layer always carries urls; a body over the limit
//! is never accepted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_manifest::{BlobState, MAX_MANIFEST_BYTES, Manifest, ManifestKind, parse};

const CONTENT_TYPES: [Option<&str>; 10] = [
    None,
    Some("application/json"),
    Some("application/octet-stream"),
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"),
    Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
    Some("APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON"),
    Some("text/plain"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let Ok(manifest) = parse(content_type, body) else {
        return;
    };
    assert!(body.len() <= MAX_MANIFEST_BYTES);
    assert_eq!(
        content_type.and_then(ManifestKind::from_media_type),
        Some(manifest.kind()),
        "accepted under a content type that does not name its kind"
    );
    if let Manifest::Image(image) = &manifest {
        let sum = image
            .layers()
            .iter()
            .try_fold(image.config().size(), |sum, l| sum.checked_add(l.size()));
        assert_eq!(
            sum,
            Some(image.total_size()),
            "total is the sum of the config and every layer"
        );
        let sizes: Vec<(&oci_manifest::Digest, u64)> = std::iter::once(image.config())
            .map(|c| (c.digest(), c.size()))
            .chain(image.layers().iter().map(|l| (l.digest(), l.size())))
            .collect();
        // A registry holding every blob: the first declared size of a digest is its real one.
        let measured = image.measure(|digest| {
            let size = sizes.iter().find(|(d, _)| *d == digest).map_or(0, |(_, s)| *s);
            BlobState::Present(size)
        });
        let consistent = sizes
            .iter()
            .all(|(d, s)| sizes.iter().find(|(e, _)| e == d).map(|(_, t)| t) == Some(s));
        if consistent {
            assert_eq!(measured, Ok(image.total_size()), "measure of a full registry");
        } else {
            assert!(measured.is_err(), "one digest with two sizes is a lie");
        }
        assert!(
            image.foreign_layers().all(|l| !l.urls().is_empty()),
            "a foreign layer without urls"
        );
        assert!(!image.kind().is_index());
    } else {
        assert!(manifest.kind().is_index());
    }
});
