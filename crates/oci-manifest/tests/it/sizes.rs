//! Properties of generated image manifests: the total is the sum of the config and every layer,
//! or an overflow error exactly when that sum does not fit in 64 bits; measuring against a
//! registry that holds every blob but the foreign ones gives the sum of the rest.

use oci_manifest::{BlobState, Manifest, ManifestError, MeasureError, parse};
use proptest::prelude::*;

const FOREIGN: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A layer size: mostly small, sometimes close to `u64::MAX` so that sums overflow.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0..=u64::from(u32::MAX),
        1 => (u64::MAX / 4)..=u64::MAX,
        1 => Just(u64::MAX),
        1 => Just(0),
    ]
}

const DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

/// A manifest whose layers have these sizes; `true` marks a foreign layer of the format's own
/// foreign type, with urls. The config is 7 bytes.
fn manifest(layers: &[(u64, bool)], docker: bool) -> String {
    let (media_type, layer_type, foreign_type) = if docker {
        (
            DOCKER,
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        )
    } else {
        (OCI, LAYER, FOREIGN)
    };
    let layers: Vec<String> = layers
        .iter()
        .enumerate()
        .map(|(i, (size, foreign))| {
            let (media_type, urls) = if *foreign {
                (foreign_type, r#","urls":["https://example.com/l"]"#)
            } else {
                (layer_type, "")
            };
            format!(
                r#"{{"mediaType":"{media_type}","digest":"sha256:{i:064x}","size":{size}{urls}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{:064x}","size":7}},"layers":[{}]}}"#,
        u64::MAX,
        layers.join(",")
    )
}

proptest! {
    #[test]
    fn total_is_the_checked_sum_and_measure_leaves_out_absent_foreign_layers(
        layers in prop::collection::vec((size(), prop::bool::weighted(0.2)), 0..40),
        docker in any::<bool>(),
    ) {
        let body = manifest(&layers, docker);
        let content_type = if docker { DOCKER } else { OCI };
        let all = std::iter::once(7).chain(layers.iter().map(|(s, _)| *s));
        let sum = all.clone().try_fold(0u64, |sum, size| sum.checked_add(size));
        match (parse(Some(content_type), body.as_bytes()), sum) {
            (Ok(Manifest::Image(image)), Some(sum)) => {
                prop_assert_eq!(image.total_size(), sum);
                let sizes: Vec<u64> = image.layers().iter().map(|l| l.size()).collect();
                prop_assert_eq!(sizes, layers.iter().map(|(s, _)| *s).collect::<Vec<_>>());
                prop_assert_eq!(
                    image.foreign_layers().count(),
                    layers.iter().filter(|(_, f)| *f).count()
                );
                // The registry holds the config and every non-foreign layer, at their sizes.
                let held: std::collections::HashMap<String, u64> = image
                    .layers()
                    .iter()
                    .filter(|l| !l.is_foreign())
                    .map(|l| (l.digest().to_string(), l.size()))
                    .chain([(image.config().digest().to_string(), 7)])
                    .collect();
                let measured = image.measure(|d| {
                    held.get(d.as_str()).map_or(BlobState::Absent, |s| BlobState::Present(*s))
                });
                let counted: u64 = layers.iter().filter(|(_, f)| !f).map(|(s, _)| *s).sum::<u64>() + 7;
                prop_assert_eq!(measured, Ok(counted));
                // A registry that holds nothing knows none of the counted blobs.
                let unknown = image.measure(|_| BlobState::Absent);
                let is_blob_unknown = matches!(unknown, Err(MeasureError::BlobUnknown { .. }));
                prop_assert!(is_blob_unknown);
            }
            (Err(ManifestError::SizeOverflow { sum, size, .. }), None) => {
                prop_assert!(sum.checked_add(size).is_none());
            }
            (other, sum) => prop_assert!(false, "sum {:?} but parse gave {:?}", sum, other),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(None, &body);
    }
}
