//! Feeds arbitrary bodies to `oci_manifest::parse` under a content type picked by the first byte.
//!
//! Asserts, beyond "no panic": every accepted image manifest's total is the sum of its counted
//! layers, no counted layer is foreign, every foreign layer is foreign, and a body over the
//! limit is never accepted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_manifest::{MAX_MANIFEST_BYTES, Manifest, parse};

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
    if let Manifest::Image(image) = &manifest {
        let sum = image
            .layers()
            .iter()
            .try_fold(0u64, |sum, l| sum.checked_add(l.size()));
        assert_eq!(
            sum,
            Some(image.total_size()),
            "total is the sum of counted layers"
        );
        assert!(
            image.layers().iter().all(|l| !l.is_foreign()),
            "a counted layer is foreign"
        );
        assert!(
            image.foreign_layers().iter().all(|l| l.is_foreign()),
            "a foreign layer is not"
        );
        assert!(!image.kind().is_index());
    } else {
        assert!(manifest.kind().is_index());
    }
});
