//! Test images built in memory: layers of exact sizes, a config, a manifest, and the OCI image
//! layout that `skopeo copy oci:<dir>:<tag>` reads.

use std::path::Path;

use ring::digest::{SHA256, digest};
use serde_json::json;

use crate::tar;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer media type.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 2 config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker schema 2 gzip layer media type.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The smallest layer [`TestImage`] makes: an empty gzip stream is 23 bytes.
pub const MIN_LAYER_SIZE: u64 = 23;

/// A blob: its bytes and their `sha256:` digest.
#[derive(Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
    /// The content.
    pub data: Vec<u8>,
}

impl Blob {
    /// A blob of these bytes.
    pub fn new(data: Vec<u8>) -> Self {
        Self {
            digest: sha256_digest(&data),
            data,
        }
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    /// The hex part of the digest.
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("digest", &self.digest)
            .field("size", &self.size())
            .finish()
    }
}

/// The manifest format of [`TestImage::manifest_as`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    /// `application/vnd.oci.image.manifest.v1+json`
    Oci,
    /// `application/vnd.docker.distribution.manifest.v2+json`
    DockerV2S2,
}

impl ManifestFormat {
    /// The manifest's media type (its `Content-Type` when pushed).
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Oci => OCI_MANIFEST,
            Self::DockerV2S2 => DOCKER_MANIFEST,
        }
    }
}

/// An image made of deterministic pseudo-random layers of exact byte sizes.
///
/// Each layer is a valid gzip stream (stored, uncompressed blocks) of pseudo-random bytes, exactly
/// as large as asked, so `skopeo` pushes it as it is (it would compress a non-gzip layer and
/// change its size). The same sizes and seed always give the same digests; different seeds give
/// different layers.
///
/// ```
/// use testkit::TestImage;
///
/// let image = TestImage::new(&[1000, 2000], 7);
/// assert_eq!(image.layers()[1].size(), 2000);
/// assert_eq!(image.layer_total(), 3000);
/// assert_eq!(image, TestImage::new(&[1000, 2000], 7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestImage {
    config: Blob,
    layers: Vec<Blob>,
    manifest: Blob,
    /// The layers' media type when it is not the format's image layer type (an artifact).
    layer_type: Option<&'static str>,
}

impl TestImage {
    /// Builds the image in memory.
    ///
    /// # Panics
    /// When a size is below [`MIN_LAYER_SIZE`].
    pub fn new(layer_sizes: &[u64], seed: u64) -> Self {
        let mut diff_ids = Vec::new();
        let mut layers = Vec::new();
        for (index, &size) in layer_sizes.iter().enumerate() {
            let (layer, payload) = gzip_layer(size, seed ^ ((index as u64 + 1) << 32));
            diff_ids.push(sha256_digest(&payload));
            layers.push(layer);
        }
        let history: Vec<serde_json::Value> = (0..layers.len())
            .map(|i| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("testkit layer {i}")}))
            .collect();
        let config = json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"testkit.seed": seed.to_string()}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        let config = Blob::new(config.to_string().into_bytes());
        let mut image = Self {
            config,
            layers,
            manifest: Blob::new(Vec::new()),
            layer_type: None,
        };
        image.manifest = Blob::new(image.manifest_as(ManifestFormat::Oci, None));
        image
    }

    /// An artifact shaped as cosign stores what it attaches to the manifest `subject` (a
    /// `sha256:` digest): a small OCI config and `payloads` layers of `layer_type`
    /// (`application/vnd.dev.cosign.simplesigning.v1+json` for a signature,
    /// `application/vnd.dsse.envelope.v1+json` for an attestation, `text/spdx+json` for an
    /// SBOM), each a JSON payload naming the subject.
    pub fn attached(layer_type: &'static str, subject: &str, payloads: usize, seed: u64) -> Self {
        let layers = (0..payloads)
            .map(|i| {
                let payload = json!({
                    "critical": {"image": {"docker-manifest-digest": subject}, "type": layer_type},
                    "optional": {"testkit.seed": seed, "index": i},
                });
                Blob::new(payload.to_string().into_bytes())
            })
            .collect();
        let config = json!({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}});
        let mut image = Self {
            config: Blob::new(config.to_string().into_bytes()),
            layers,
            manifest: Blob::new(Vec::new()),
            layer_type: Some(layer_type),
        };
        image.manifest = Blob::new(image.manifest_as(ManifestFormat::Oci, None));
        image
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Blob] {
        &self.layers
    }

    /// The config blob.
    pub fn config(&self) -> &Blob {
        &self.config
    }

    /// The OCI manifest (true sizes), as bytes and digest.
    pub fn manifest(&self) -> &Blob {
        &self.manifest
    }

    /// The sum of the layer sizes (the gateway measures these plus the config blob).
    pub fn layer_total(&self) -> u64 {
        self.layers.iter().map(Blob::size).sum()
    }

    /// A manifest in `format`. With `declared_sizes`, the layers' `size` fields say those
    /// numbers instead of the truth: a lying manifest, which only a raw push can send.
    ///
    /// # Panics
    /// When `declared_sizes` does not give one size per layer.
    pub fn manifest_as(&self, format: ManifestFormat, declared_sizes: Option<&[u64]>) -> Vec<u8> {
        if let Some(sizes) = declared_sizes {
            assert_eq!(
                sizes.len(),
                self.layers.len(),
                "testkit: one declared size per layer"
            );
        }
        let (config_type, layer_type) = match format {
            ManifestFormat::Oci => (OCI_CONFIG, OCI_LAYER_GZIP),
            ManifestFormat::DockerV2S2 => (DOCKER_CONFIG, DOCKER_LAYER_GZIP),
        };
        let layer_type = self.layer_type.unwrap_or(layer_type);
        let layers: Vec<serde_json::Value> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let size = declared_sizes.map_or(layer.size(), |s| s[i]);
                json!({"mediaType": layer_type, "digest": layer.digest, "size": size})
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": format.media_type(),
            "config": {"mediaType": config_type, "digest": self.config.digest, "size": self.config.size()},
            "layers": layers,
        });
        manifest.to_string().into_bytes()
    }

    /// Writes an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) into `dir`,
    /// with the manifest tagged `tag` (`org.opencontainers.image.ref.name`), so that
    /// `skopeo copy oci:<dir>:<tag> ...` reads it. `dir` may hold other tags already.
    ///
    /// # Panics
    /// When the files cannot be written.
    pub fn write_oci_layout(&self, dir: &Path, tag: &str) {
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs)
            .unwrap_or_else(|e| panic!("testkit: cannot create {}: {e}", blobs.display()));
        for blob in self.layers.iter().chain([&self.config, &self.manifest]) {
            write(&blobs.join(blob.hex()), &blob.data);
        }
        write(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        );
        let index_path = dir.join("index.json");
        let mut manifests: Vec<serde_json::Value> = std::fs::read(&index_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|index| index.get("manifests").and_then(|m| m.as_array()).cloned())
            .unwrap_or_default();
        manifests.retain(|m| {
            m.pointer("/annotations/org.opencontainers.image.ref.name")
                .and_then(|n| n.as_str())
                != Some(tag)
        });
        manifests.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": self.manifest.digest,
            "size": self.manifest.size(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        write(&index_path, index.to_string().as_bytes());
    }
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data)
        .unwrap_or_else(|e| panic!("testkit: cannot write {}: {e}", path.display()));
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    let hash = digest(&SHA256, data);
    let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// `len` deterministic pseudo-random bytes (splitmix64) from `seed`.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A gzip stream of exactly `size` bytes holding pseudo-random bytes in stored deflate blocks,
/// and the uncompressed payload.
fn gzip_layer(size: u64, seed: u64) -> (Blob, Vec<u8>) {
    const HEADER_AND_TRAILER: u64 = 18;
    const BLOCK_HEADER: u64 = 5;
    const MAX_BLOCK: u64 = 65_535;
    assert!(
        size >= MIN_LAYER_SIZE,
        "testkit: layer size {size} is below {MIN_LAYER_SIZE} bytes"
    );
    let blocks = (size - HEADER_AND_TRAILER)
        .div_ceil(MAX_BLOCK + BLOCK_HEADER)
        .max(1);
    let payload_len = size - HEADER_AND_TRAILER - BLOCK_HEADER * blocks;
    let payload = tar_payload(payload_len as usize, seed);
    let mut out = Vec::with_capacity(size as usize);
    out.extend_from_slice(&[0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff]);
    let mut rest: &[u8] = &payload;
    for block in 0..blocks {
        let last = block + 1 == blocks;
        let take = if last {
            rest.len()
        } else {
            rest.len().min(MAX_BLOCK as usize)
        };
        let len = take as u16;
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
    }
    out.extend_from_slice(&crc32(&payload).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    debug_assert_eq!(out.len() as u64, size);
    (Blob::new(out), payload)
}

/// `len` bytes of a tar archive holding one file of pseudo-random content (`data`), its
/// end-of-archive blocks and zeros after them, so that clients that unpack layers (podman,
/// buildah) can; below 2 KiB, just pseudo-random bytes.
fn tar_payload(len: usize, seed: u64) -> Vec<u8> {
    const BLOCK: usize = tar::BLOCK;
    if len < 4 * BLOCK {
        return pseudo_random_bytes(len, seed);
    }
    // Header, content padded to a block, two zero blocks; zeros fill what is left.
    let content = (len - 3 * BLOCK) / BLOCK * BLOCK;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&tar::header("data", content));
    out.extend_from_slice(&pseudo_random_bytes(content, seed));
    out.resize(len, 0);
    out
}

/// CRC-32 (IEEE), as gzip's trailer needs.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !data.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_have_exact_sizes() {
        for size in [23, 24, 100, 65_557, 65_558, 65_559, 131_098, 1 << 20] {
            let (blob, payload) = gzip_layer(size, 3);
            assert_eq!(blob.size(), size, "size {size}");
            assert_eq!(&blob.data[..3], &[0x1f, 0x8b, 0x08]);
            let trailer = &blob.data[blob.data.len() - 4..];
            assert_eq!(
                u32::from_le_bytes(trailer.try_into().expect("4 bytes")),
                payload.len() as u32
            );
        }
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn gzip_stream_decodes_with_gzip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (blob, payload) = gzip_layer(200_000, 9);
        let path = dir.path().join("layer.gz");
        std::fs::write(&path, &blob.data).expect("write");
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&path)
            .output();
        if let Ok(out) = out {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.stdout, payload);
        }
    }

    #[test]
    fn seeds_differ() {
        let a = TestImage::new(&[100], 1);
        let b = TestImage::new(&[100], 2);
        assert_ne!(a.layers()[0].digest, b.layers()[0].digest);
        assert_ne!(a.manifest().digest, b.manifest().digest);
    }

    #[test]
    fn lying_manifest_declares_other_sizes() {
        let image = TestImage::new(&[100, 200], 1);
        let lie = image.manifest_as(ManifestFormat::DockerV2S2, Some(&[10, 20]));
        let value: serde_json::Value = serde_json::from_slice(&lie).expect("json");
        assert_eq!(value["layers"][0]["size"], 10);
        assert_eq!(value["mediaType"], DOCKER_MANIFEST);
    }
}
