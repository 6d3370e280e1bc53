//! Why a manifest was refused.

use std::fmt;

use crate::{DigestError, ManifestKind};

/// The media types a manifest `PUT` may carry, for messages.
const EXPECTED_CONTENT_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// Why [`parse`](crate::parse) refused a manifest. Every message is meant to be shown to the
/// pushing client as is; offending values are quoted and cut to 150 characters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The body is larger than [`MAX_MANIFEST_BYTES`](crate::MAX_MANIFEST_BYTES).
    #[error("manifest is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// The body's length in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A Docker schema 1 manifest (by `Content-Type`, `mediaType` or `schemaVersion: 1`).
    #[error(
        "docker schema 1 manifests are not supported (deprecated by Docker since 2019); convert the \
         image with a current client (pull and push it again) or with \"skopeo copy --format v2s2 \
         SRC DST\""
    )]
    Schema1 {
        /// Whether the body carries JWS `signatures`.
        signed: bool,
    },
    /// The request has no `Content-Type`. Distribution would decode the body as signed
    /// Docker schema 1.
    #[error(
        "manifest content type is missing: send the manifest's media type as Content-Type \
         ({EXPECTED_CONTENT_TYPES})"
    )]
    MissingContentType,
    /// The `Content-Type` is not one of the four manifest media types (generic JSON included:
    /// distribution would decode such a body as signed Docker schema 1).
    #[error(
        "unsupported manifest content type \"{content_type}\": expected one of \
         {EXPECTED_CONTENT_TYPES}"
    )]
    UnsupportedContentType {
        /// The content type, parameters dropped.
        content_type: String,
    },
    /// The body is not valid JSON (or not UTF-8, or nested too deeply).
    #[error("manifest is not valid json at line {line} column {column}")]
    InvalidJson {
        /// Line of the error, counting from 1.
        line: usize,
        /// Column of the error, counting from 1.
        column: usize,
        /// What the JSON parser said.
        #[source]
        source: JsonError,
    },
    /// The body is valid JSON but not an object.
    #[error("manifest must be a json object, found {found}")]
    NotAnObject {
        /// What was found instead (`an array`, `null`, ...).
        found: String,
    },
    /// A field the manifest needs appears twice in one object.
    #[error("duplicate field \"{field}\"")]
    DuplicateField {
        /// Path of the field, e.g. `layers[0].size`.
        field: String,
    },
    /// A key differs from a field the manifest needs only in letter case. Go clients (Docker,
    /// containerd, distribution) match keys case-insensitively, so they could read it instead.
    #[error(
        "field \"{key}\" differs from \"{field}\" only in letter case (go clients would read it as \
         \"{field}\")"
    )]
    CaseVariantField {
        /// Path of the field, e.g. `layers[0].size`.
        field: String,
        /// The key as written.
        key: String,
    },
    /// A required field is absent.
    #[error("missing field \"{field}\"")]
    MissingField {
        /// Path of the field, e.g. `layers[0].digest`.
        field: String,
    },
    /// A field holds the wrong JSON type.
    #[error("field \"{field}\" must be {expected}, found {found}")]
    WrongType {
        /// Path of the field, e.g. `config`.
        field: String,
        /// What was expected (`a string`, `an object`, ...).
        expected: &'static str,
        /// What was found, with its value when short.
        found: String,
    },
    /// `schemaVersion` is a number other than 1 or 2.
    #[error("unsupported schemaVersion {found} (expected 2)")]
    UnsupportedSchemaVersion {
        /// The value as found.
        found: String,
    },
    /// The `Content-Type` names one kind of manifest, the body's `mediaType` another.
    #[error(
        "content type \"{content_type}\" does not match the manifest's mediaType \"{media_type}\""
    )]
    MediaTypeMismatch {
        /// The content type, parameters dropped.
        content_type: String,
        /// The body's `mediaType`.
        media_type: String,
    },
    /// An image manifest with `manifests`, or an index with `layers` or `config`: such a
    /// manifest could be read as the other kind (the OCI type confusion advisory of 2021).
    #[error("{kind} must not have field \"{field}\"")]
    UnexpectedField {
        /// The kind the manifest was parsed as.
        kind: ManifestKind,
        /// The field that belongs to the other kind.
        field: &'static str,
    },
    /// A digest is not `sha256:` + 64, `sha384:` + 96 or `sha512:` + 128 lowercase hex digits.
    #[error("field \"{field}\": {reason}")]
    InvalidDigest {
        /// Path of the field, e.g. `layers[1].digest`.
        field: String,
        /// What is wrong with it.
        reason: DigestError,
    },
    /// A size is a number but not a non-negative integer that fits in 64 bits.
    #[error("invalid size {found} in field \"{field}\": expected a non-negative integer")]
    InvalidSize {
        /// Path of the field, e.g. `layers[1].size`.
        field: String,
        /// The number as found.
        found: String,
    },
    /// The sum of the config and layer sizes does not fit in 64 bits.
    #[error("sum of blob sizes overflows 64 bits at field \"{field}\" ({sum} + {size})")]
    SizeOverflow {
        /// Path of the size that overflowed the sum, e.g. `layers[3].size`.
        field: String,
        /// The sum of the blobs before it.
        sum: u64,
        /// Its size.
        size: u64,
    },
}

impl ManifestError {
    /// Whether this is the refusal of a Docker schema 1 manifest.
    pub fn is_schema1(&self) -> bool {
        matches!(self, ManifestError::Schema1 { .. })
    }

    /// Whether the body was larger than [`MAX_MANIFEST_BYTES`](crate::MAX_MANIFEST_BYTES).
    pub fn is_too_large(&self) -> bool {
        matches!(self, ManifestError::TooLarge { .. })
    }
}

/// What the JSON parser said about a body that is not valid JSON. Opaque: only its message is
/// public.
#[derive(Debug)]
pub struct JsonError(pub(crate) serde_json::Error);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for JsonError {}

impl ManifestError {
    /// Wraps a JSON syntax error; a function rather than a `From` impl so that serde_json's type
    /// stays out of the public API.
    pub(crate) fn invalid_json(error: serde_json::Error) -> Self {
        ManifestError::InvalidJson {
            line: error.line(),
            column: error.column(),
            source: JsonError(error),
        }
    }
}
