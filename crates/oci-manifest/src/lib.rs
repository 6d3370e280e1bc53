//! Parse manifests pushed to an OCI / Docker registry, refuse Docker schema 1, and measure
//! images.
//!
//! [`parse`] takes the request's `Content-Type` and body and returns a typed [`Manifest`]:
//!
//! * an [`ImageManifest`] (OCI image manifest, OCI artifact with any `artifactType`, or Docker
//!   schema 2), measured by [`measure`](ImageManifest::measure) against what the registry
//!   holds: the config and every layer count, at sizes that must be true; only a foreign /
//!   non-distributable layer (by the registry's exact rule, [`Layer::is_foreign`]) that the
//!   registry does not hold is left out;
//! * an [`IndexManifest`] (OCI image index or Docker manifest list), which is not measured;
//!
//! or a [`ManifestError`] whose message can be shown to the pushing client as is. Docker schema
//! 1 manifests, signed or not, are refused with [`ManifestError::Schema1`], whose message says how
//! to convert them.
//!
//! # Example
//!
//! ```
//! use oci_manifest::{Manifest, ManifestKind};
//!
//! let body = br#"{
//!   "schemaVersion": 2,
//!   "mediaType": "application/vnd.oci.image.manifest.v1+json",
//!   "config": {
//!     "mediaType": "application/vnd.oci.image.config.v1+json",
//!     "digest": "sha256:605b6dae482b6fc2d41d3a4b9bac06fb8894e5b81a7fdba1081395705abdfc2a",
//!     "size": 439
//!   },
//!   "layers": [
//!     {
//!       "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
//!       "digest": "sha256:62621a33d896f72e9bef6dd5ba18431497f94b03371adb40754b0dfcd34e5d2f",
//!       "size": 105
//!     },
//!     {
//!       "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
//!       "digest": "sha256:f3fde3016eb36aeb24dda32a57541f11b0d08851dafe9ce089fac8857ab920ef",
//!       "size": 5000000,
//!       "urls": ["https://example.com/base-layer.tar.gz"]
//!     }
//!   ]
//! }"#;
//!
//! let manifest = oci_manifest::parse(Some("application/vnd.oci.image.manifest.v1+json"), body)?;
//! assert_eq!(manifest.kind(), ManifestKind::OciImage);
//! let Manifest::Image(image) = manifest else { panic!("an image manifest") };
//! assert_eq!(image.layers().len(), 2);
//! assert_eq!(image.foreign_layers().count(), 1);
//! assert_eq!(image.total_size(), 439 + 105 + 5000000);
//! // The registry holds the config and the first layer, not the foreign one.
//! let size = image.measure(|digest| match digest.hex().as_bytes()[0] {
//!     b'6' => oci_manifest::BlobState::Present(if digest.hex().starts_with("605b") { 439 } else { 105 }),
//!     _ => oci_manifest::BlobState::Absent,
//! });
//! assert_eq!(size, Ok(439 + 105));
//!
//! let error = oci_manifest::parse(Some("application/json"), br#"{"schemaVersion": 1, "fsLayers": []}"#).unwrap_err();
//! assert!(error.is_schema1());
//! # Ok::<(), oci_manifest::ManifestError>(())
//! ```
//!
//! # No I/O
//!
//! This crate does no I/O: no network, files, environment, clock or async runtime. Bytes and a
//! content type go in, a value comes out. It never checks that a declared size or digest is
//! true; the caller learns what the registry holds (`HEAD` on each blob) and hands it to
//! [`ImageManifest::measure`], which compares. Hashing is computation, not I/O: [`Digest::of_bytes`] gives the
//! digest the registry gives pushed bytes.
//!
//! # How a body is read
//!
//! The `Content-Type` decides the kind, as it does for the CNCF distribution registry, and it
//! must be one of the four manifest media types: distribution decodes a body sent without one,
//! or with a generic one (`application/json`, `application/octet-stream`), as a signed Docker
//! schema 1 manifest, so such a body is refused rather than measured as something else. The
//! body's own `mediaType`, when present, must be exactly that media type (distribution compares
//! it exactly); `Content-Type` is compared ASCII case-insensitively with its parameters
//! dropped, as Go's `mime.ParseMediaType` reads it. A body with `schemaVersion: 1`, a schema 1
//! `mediaType` or a top-level `signatures` key is schema 1. Then the body is decoded as that one
//! kind; nothing is guessed by trying shapes in turn. An image manifest with `manifests`, or an
//! index with `layers` or `config`, is refused, since some client could read it as the other
//! kind.
//!
//! Docker, containerd and the CNCF distribution registry decode JSON with Go's
//! `encoding/json`, which matches keys case-insensitively and keeps the last of duplicate keys.
//! A manifest with both `"layers"` and `"Layers"` would then be measured by one list here and
//! pulled by the other there, so a duplicate or a case variant of any field this crate reads is
//! refused ([`ManifestError::DuplicateField`], [`ManifestError::CaseVariantField`]).
//!
//! # Why not oci-spec's manifest types
//!
//! The media type strings of OCI come from [`oci_spec::image::MediaType`] (the constants in
//! [`media_types`] are checked against it, and foreign layers are recognised through it). The
//! manifests themselves are not decoded into `oci_spec::image::ImageManifest` /
//! `ImageIndex`, for four reasons:
//!
//! * its errors are serde strings, where every refusal here needs its own variant naming the
//!   field (`layers[2].size`) and the offending value;
//! * its `Digest` accepts any registered algorithm and encoding, where a registry accepts
//!   `sha256`, `sha384` and `sha512` only ([`Digest`]);
//! * it has no Docker manifest list and no Docker media types;
//! * serde derive cannot refuse the case-variant keys described above.
//!
//! So the body is read into a small JSON tree that keeps every key, and decoded from it by hand.

mod cosign;
mod decode;
mod descriptor;
mod digest;
mod error;
mod json;
mod kind;
mod manifest;
mod measure;
pub mod media_types;
mod parse;
mod text;

pub use cosign::{COSIGN_SIMPLE_SIGNING, CosignArtifact, DSSE_ENVELOPE};
pub use descriptor::{Descriptor, Layer};
pub use digest::{Digest, DigestAlgorithm, DigestError};
pub use error::{JsonError, ManifestError};
pub use kind::ManifestKind;
pub use manifest::{ImageManifest, IndexManifest, Manifest};
pub use measure::{BlobState, MeasureError};
pub use parse::{MAX_MANIFEST_BYTES, parse};
