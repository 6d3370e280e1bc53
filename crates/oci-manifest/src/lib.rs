//! Parse manifests pushed to an OCI / Docker registry, refuse Docker schema 1, and measure
//! images.
//!
//! [`parse`] takes the request's `Content-Type` and body and returns a typed [`Manifest`]:
//!
//! * an [`ImageManifest`] (OCI image manifest, OCI artifact with any `artifactType`, or Docker
//!   schema 2), whose [`total_size`](ImageManifest::total_size) is the checked sum of its
//!   layers' declared sizes, leaving out foreign / non-distributable layers (which the registry
//!   does not store) and the config blob;
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
//!       "size": 5000000
//!     }
//!   ]
//! }"#;
//!
//! let manifest = oci_manifest::parse(Some("application/vnd.oci.image.manifest.v1+json"), body)?;
//! assert_eq!(manifest.kind(), ManifestKind::OciImage);
//! let Manifest::Image(image) = manifest else { panic!("an image manifest") };
//! assert_eq!(image.layers().len(), 1);
//! assert_eq!(image.foreign_layers().len(), 1);
//! assert_eq!(image.total_size(), 105);
//!
//! let error = oci_manifest::parse(None, br#"{"schemaVersion": 1, "fsLayers": []}"#).unwrap_err();
//! assert!(error.is_schema1());
//! # Ok::<(), oci_manifest::ManifestError>(())
//! ```
//!
//! # No I/O
//!
//! This crate does no I/O: no network, files, environment, clock or async runtime. Bytes and a
//! content type go in, a value comes out. It never checks that a declared size or digest is
//! true; the caller learns real blob sizes from the registry and compares them with
//! [`Layer::size`].
//!
//! # How a body is read
//!
//! The kind is probed first (`Content-Type`, then the body's `schemaVersion` and `mediaType`,
//! then, for OCI manifests without `mediaType`, the presence of `layers`/`config` or
//! `manifests`), then the body is decoded as that one kind; nothing is guessed by trying shapes in
//! turn. Media types are compared case-insensitively and `Content-Type` parameters are ignored.
//! An image manifest with `manifests`, or an index with `layers` or `config`, is refused, since
//! some client could read it as the other kind.
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
//!   `sha256` and `sha512` only ([`Digest`]);
//! * it has no Docker manifest list and no Docker media types;
//! * serde derive cannot refuse the case-variant keys described above.
//!
//! So the body is read into a small JSON tree that keeps every key, and decoded from it by hand.

mod decode;
mod descriptor;
mod digest;
mod error;
mod json;
mod kind;
mod manifest;
pub mod media_types;
mod parse;
mod text;

pub use descriptor::{Descriptor, Layer};
pub use digest::{Digest, DigestError};
pub use error::{JsonError, ManifestError};
pub use kind::ManifestKind;
pub use manifest::{ImageManifest, IndexManifest, Manifest};
pub use parse::{MAX_MANIFEST_BYTES, parse};
