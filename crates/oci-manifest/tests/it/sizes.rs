//! Properties of generated image manifests: the total is the sum of the counted layers, or an
//! overflow error exactly when that sum does not fit in 64 bits.

use oci_manifest::{Manifest, ManifestError, parse};
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

fn manifest(layers: &[(u64, bool)], docker: bool) -> String {
    let (media_type, layer_type) = if docker {
        (
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    } else {
        ("application/vnd.oci.image.manifest.v1+json", LAYER)
    };
    let layers: Vec<String> = layers
        .iter()
        .enumerate()
        .map(|(i, (size, foreign))| {
            let media_type = if *foreign { FOREIGN } else { layer_type };
            format!(r#"{{"mediaType":"{media_type}","digest":"sha256:{i:064x}","size":{size}}}"#)
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
    fn total_is_the_checked_sum_of_counted_layers(
        layers in prop::collection::vec((size(), prop::bool::weighted(0.2)), 0..40),
        docker in any::<bool>(),
    ) {
        let body = manifest(&layers, docker);
        let counted: Vec<u64> = layers.iter().filter(|(_, f)| !f).map(|(s, _)| *s).collect();
        let sum = counted.iter().try_fold(0u64, |sum, size| sum.checked_add(*size));
        match (parse(None, body.as_bytes()), sum) {
            (Ok(Manifest::Image(image)), Some(sum)) => {
                prop_assert_eq!(image.total_size(), sum);
                let sizes: Vec<u64> = image.layers().iter().map(|l| l.size()).collect();
                prop_assert_eq!(sizes, counted);
                prop_assert_eq!(
                    image.foreign_layers().len(),
                    layers.iter().filter(|(_, f)| *f).count()
                );
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
