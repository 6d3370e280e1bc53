//! Integration tests of `oci-manifest`: real manifests made by umoci and skopeo
//! (`tests/fixtures/make-fixtures.sh`), hand-written indexes and artifacts, and properties of
//! generated manifests.

#![allow(clippy::unwrap_used)]

mod content_type;
mod fixtures;
mod sizes;

/// Loads a fixture from `tests/fixtures/` at compile time.
macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $name
        ))
        .as_slice()
    };
}
pub(crate) use fixture;
