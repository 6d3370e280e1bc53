//! The gateway's own answers: every refusal, with its status, error code and metric label
//! defined once, and the distribution error envelope.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::body::ProxyBody;

/// Why the gateway answered a request itself. Each reason has one status, one distribution
/// error code and one metric label ([`Reason::status`], [`Reason::code`], [`Reason::label`]);
/// call sites only choose the reason and write the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A limit refused the push (image size, tag count, blob size): 403 `DENIED`.
    Denied,
    /// A write to a repository that is read-only (`read_only: true`): 405 `UNSUPPORTED` with
    /// `Allow: GET, HEAD`, as distribution's own `maintenance.readonly` mode answers 405 with
    /// that `Allow` header (docs/user-guide.md, read-only repositories).
    ReadOnly,
    /// A push that would move an immutable tag to another digest: 403 `DENIED`.
    ImmutableTag,
    /// A manifest delete that would remove an immutable tag (by the tag, or by the digest it
    /// points to): 403 `DENIED`.
    ImmutableTagDelete,
    /// A path outside `/v2/`: 404 `NOT_FOUND`.
    NotRegistryApi,
    /// A method the registry API does not have: 405 `UNSUPPORTED`.
    MethodNotAllowed,
    /// A path that does not decode, is not canonical, or names a repository outside the OCI
    /// grammar: 400 `NAME_INVALID`.
    NameInvalid,
    /// A manifest reference that is neither a tag nor a digest: 400 `TAG_INVALID`.
    ReferenceInvalid,
    /// An upload request with a form body, whose parameters the registry would read from the
    /// body: 400 `UNSUPPORTED`.
    FormBody,
    /// A header the gateway reads that the registry could read differently: several
    /// `Content-Type` headers on a manifest push, or a write whose `Connection` header names a
    /// header the checks use (a proxy removes those before forwarding): 400 `UNSUPPORTED`.
    AmbiguousHeader,
    /// A manifest body over 4 MiB: 413 `SIZE_INVALID`.
    ManifestTooLarge,
    /// A Docker schema 1 manifest: 400 `MANIFEST_INVALID`.
    Schema1,
    /// A manifest that does not parse, or whose content type is wrong: 400 `MANIFEST_INVALID`.
    ManifestInvalid,
    /// A blob whose declared size differs from the registry's: 400 `MANIFEST_INVALID`.
    BlobSizeMismatch,
    /// A counted blob the registry does not hold: 400 `MANIFEST_BLOB_UNKNOWN`.
    BlobUnknown,
    /// The manifest body did not arrive in time: 408 `MANIFEST_INVALID`.
    BodyTimeout,
    /// The budget for buffered manifest bodies is spent: 503 `UNAVAILABLE`.
    Busy,
    /// The upstream refused the client's own credentials: 401 `UNAUTHORIZED`, with the
    /// upstream's challenge.
    Unauthorized,
    /// The upstream refused the client access: 403 `DENIED`.
    Forbidden,
    /// The upstream did not answer in time: 504 `UNAVAILABLE`.
    UpstreamTimeout,
    /// The upstream could not be reached: 502 `UNAVAILABLE`.
    UpstreamUnreachable,
    /// No connection to the upstream could be made, so nothing was sent: 502 `UNAVAILABLE`,
    /// as [`Reason::UpstreamUnreachable`].
    UpstreamConnect,
    /// A fact the check needs (tag count, blob size, upload offset) could not be read from the
    /// upstream: 503 `UNAVAILABLE` (fail closed).
    FactsUnavailable,
}

impl Reason {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Reason::Denied
            | Reason::ImmutableTag
            | Reason::ImmutableTagDelete
            | Reason::Forbidden => StatusCode::FORBIDDEN,
            Reason::NotRegistryApi => StatusCode::NOT_FOUND,
            Reason::MethodNotAllowed | Reason::ReadOnly => StatusCode::METHOD_NOT_ALLOWED,
            Reason::NameInvalid
            | Reason::ReferenceInvalid
            | Reason::FormBody
            | Reason::AmbiguousHeader
            | Reason::Schema1
            | Reason::ManifestInvalid
            | Reason::BlobSizeMismatch
            | Reason::BlobUnknown => StatusCode::BAD_REQUEST,
            Reason::ManifestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reason::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Reason::Busy | Reason::FactsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Reason::Unauthorized => StatusCode::UNAUTHORIZED,
            Reason::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Reason::UpstreamUnreachable | Reason::UpstreamConnect => StatusCode::BAD_GATEWAY,
        }
    }

    /// The distribution error code of the envelope.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Denied
            | Reason::ImmutableTag
            | Reason::ImmutableTagDelete
            | Reason::Forbidden => "DENIED",
            Reason::NotRegistryApi => "NOT_FOUND",
            Reason::MethodNotAllowed
            | Reason::ReadOnly
            | Reason::FormBody
            | Reason::AmbiguousHeader => "UNSUPPORTED",
            Reason::NameInvalid => "NAME_INVALID",
            Reason::ReferenceInvalid => "TAG_INVALID",
            Reason::Schema1
            | Reason::ManifestInvalid
            | Reason::BlobSizeMismatch
            | Reason::BodyTimeout => "MANIFEST_INVALID",
            Reason::BlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Reason::ManifestTooLarge => "SIZE_INVALID",
            Reason::Unauthorized => "UNAUTHORIZED",
            Reason::Busy
            | Reason::UpstreamTimeout
            | Reason::UpstreamUnreachable
            | Reason::UpstreamConnect
            | Reason::FactsUnavailable => "UNAVAILABLE",
        }
    }

    /// The `reason` label of `registry_gateway_refusals_total`.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Denied => "denied",
            Reason::ReadOnly => "read_only",
            Reason::ImmutableTag => "immutable_tag",
            Reason::ImmutableTagDelete => "immutable_tag_delete",
            Reason::NotRegistryApi => "not_registry_api",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::NameInvalid => "name_invalid",
            Reason::ReferenceInvalid => "reference_invalid",
            Reason::FormBody => "form_body",
            Reason::AmbiguousHeader => "ambiguous_header",
            Reason::ManifestTooLarge => "manifest_too_large",
            Reason::Schema1 => "schema1",
            Reason::ManifestInvalid => "manifest_invalid",
            Reason::BlobSizeMismatch => "layer_size_mismatch",
            Reason::BlobUnknown => "blob_unknown",
            Reason::BodyTimeout => "body_timeout",
            Reason::Busy => "busy",
            Reason::Unauthorized => "unauthorized",
            Reason::Forbidden => "forbidden",
            Reason::UpstreamTimeout
            | Reason::UpstreamUnreachable
            | Reason::UpstreamConnect
            | Reason::FactsUnavailable => "upstream_unavailable",
        }
    }

    /// Every reason, for tests and documentation.
    #[cfg(test)]
    pub const ALL: [Reason; 23] = [
        Reason::Denied,
        Reason::ReadOnly,
        Reason::ImmutableTag,
        Reason::ImmutableTagDelete,
        Reason::NotRegistryApi,
        Reason::MethodNotAllowed,
        Reason::NameInvalid,
        Reason::ReferenceInvalid,
        Reason::FormBody,
        Reason::AmbiguousHeader,
        Reason::ManifestTooLarge,
        Reason::Schema1,
        Reason::ManifestInvalid,
        Reason::BlobSizeMismatch,
        Reason::BlobUnknown,
        Reason::BodyTimeout,
        Reason::Busy,
        Reason::Unauthorized,
        Reason::Forbidden,
        Reason::UpstreamTimeout,
        Reason::UpstreamUnreachable,
        Reason::UpstreamConnect,
        Reason::FactsUnavailable,
    ];
}

/// A refusal or failure the gateway answers itself.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Why.
    pub reason: Reason,
    /// The message a client prints after `denied:` or the like.
    pub message: String,
    /// Machine-readable facts.
    pub detail: Value,
    /// What the upstream said, when its refusal of the client is passed on.
    pub upstream: Option<Box<UpstreamRefusal>>,
}

/// The parts of an upstream's refusal of the client that are handed back to it.
#[derive(Debug, Clone, Default)]
pub struct UpstreamRefusal {
    /// The upstream's `WWW-Authenticate` challenge, so that the client authenticates again.
    pub challenge: Option<HeaderValue>,
    /// The upstream's error code, in place of the reason's.
    pub code: Option<String>,
}

impl Refusal {
    /// A refusal with an empty detail.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            detail: Value::Null,
            upstream: None,
        }
    }

    /// Adds machine-readable facts.
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.reason.status()
    }

    /// The JSON envelope `{"errors":[{"code","message","detail"}]}`.
    pub fn body(&self) -> Bytes {
        let code = self
            .upstream
            .as_ref()
            .and_then(|upstream| upstream.code.as_deref())
            .unwrap_or(self.reason.code());
        let error = if self.detail.is_null() {
            json!({"code": code, "message": self.message})
        } else {
            json!({"code": code, "message": self.message, "detail": self.detail})
        };
        Bytes::from(json!({ "errors": [error] }).to_string())
    }

    /// The answer to send.
    pub fn into_response(self) -> Response<ProxyBody> {
        let body = self.body();
        let mut response = Response::new(
            Full::new(body.clone())
                .map_err(|never| match never {})
                .boxed(),
        );
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        headers.insert(
            "docker-distribution-api-version",
            HeaderValue::from_static("registry/2.0"),
        );
        if let Some(challenge) = self.upstream.and_then(|upstream| upstream.challenge) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if self.reason == Reason::ReadOnly {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        if self.reason == Reason::Busy {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope() {
        let refusal = Refusal::new(Reason::Denied, "too big").with_detail(json!({"measured": 3}));
        assert_eq!(
            refusal.body(),
            r#"{"errors":[{"code":"DENIED","detail":{"measured":3},"message":"too big"}]}"#
        );
        let plain = Refusal::new(Reason::NotRegistryApi, "no");
        assert_eq!(
            plain.body(),
            r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#
        );
    }

    #[test]
    fn every_reason_is_a_client_or_server_error_with_a_known_code() {
        const CODES: [&str; 10] = [
            "DENIED",
            "NOT_FOUND",
            "UNSUPPORTED",
            "NAME_INVALID",
            "TAG_INVALID",
            "MANIFEST_INVALID",
            "MANIFEST_BLOB_UNKNOWN",
            "SIZE_INVALID",
            "UNAUTHORIZED",
            "UNAVAILABLE",
        ];
        for reason in Reason::ALL {
            let status = reason.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{reason:?}"
            );
            assert!(CODES.contains(&reason.code()), "{reason:?}");
            assert!(!reason.label().is_empty());
        }
    }
}
