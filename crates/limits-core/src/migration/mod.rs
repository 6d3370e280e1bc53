//! Migration to Registry v2 limits: the Kubernetes `LimitRange` objects that give each namespace
//! the limits the legacy configuration gives its repositories, the `ResourceQuota` objects of
//! its namespace quotas, and back.
//!
//! Registry v2 limits an image (`alauda.io/Image` `max.storage`) and an image stream, that is a
//! repository (`alauda.io/ImageStream` `max["alauda.io/image-tags"]` and
//! `max["alauda.io/images"]`), per Kubernetes namespace, and a namespace's totals with a
//! `ResourceQuota` (`alauda.io/imagestreams`, `alauda.io/images`, `alauda.io/image-tags`):
//! the first component of the repository path. It has no global defaults and no regular
//! expressions, so a rule that covers part of a namespace cannot be expressed; each such case is
//! written as a comment next to the limits, never approximated silently.

mod export;
mod import;
mod quantity;

pub use export::NamespaceLimits;
pub use import::{ImportError, Imported, import_registry_v2};
pub use quantity::{parse_quantity, quantity};

/// The `metadata.name` of exported `LimitRange` objects.
pub const LIMIT_RANGE_NAME: &str = "image-registry-limits";
/// The `metadata.name` of exported `ResourceQuota` objects.
pub const RESOURCE_QUOTA_NAME: &str = "image-registry-quota";
/// The `LimitRange` type of an image.
const IMAGE_TYPE: &str = "alauda.io/Image";
/// The `LimitRange` type of an image stream.
const IMAGE_STREAM_TYPE: &str = "alauda.io/ImageStream";
/// The resource that counts tags (of an image stream, or of a namespace's).
const IMAGE_TAGS: &str = "alauda.io/image-tags";
/// The resource that counts images (of an image stream, or of a namespace's).
const IMAGES: &str = "alauda.io/images";
/// The namespace resource that counts image streams, that is repositories.
const IMAGE_STREAMS: &str = "alauda.io/imagestreams";

/// A namespace as a regular expression: the characters of repository names are literal but
/// `.`.
fn escaped(namespace: &str) -> String {
    namespace.replace('.', "\\.")
}
