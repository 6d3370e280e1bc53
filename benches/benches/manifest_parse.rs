//! How long `oci_manifest::parse` takes for a typical image manifest (10 layers) and a large one
//! (1,000 layers), generated here in the shape skopeo writes.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const OCI_IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

/// An OCI image manifest with `layers` gzip layers of distinct digests and sizes.
fn manifest(layers: usize) -> Vec<u8> {
    let layers: Vec<String> = (0..layers)
        .map(|i| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{i:064x}","size":{}}}"#,
                1_000_000 + i * 7919
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_IMAGE}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{:064x}","size":1469}},"layers":[{}],"annotations":{{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}}}"#,
        u64::MAX,
        layers.join(",")
    )
    .into_bytes()
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("manifest_parse");
    for (name, layers) in [("typical_10_layers", 10), ("large_1000_layers", 1000)] {
        let body = manifest(layers);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| oci_manifest::parse(black_box(Some(OCI_IMAGE)), black_box(&body)))
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
