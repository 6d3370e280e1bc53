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
    /// A write to a repository that is read-only (`read_only: true`): exactly what
    /// distribution's own `maintenance.readonly` mode answers ([`READ_ONLY_BODY`]), which
    /// clients do not retry. It has no error envelope, so no code: the message goes to the log.
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

    /// The distribution error code of the envelope; `None` for the one answer without an
    /// envelope, [`Reason::ReadOnly`].
    pub fn code(self) -> Option<&'static str> {
        let code = match self {
            Reason::ReadOnly => return None,
            Reason::Denied
            | Reason::ImmutableTag
            | Reason::ImmutableTagDelete
            | Reason::Forbidden => "DENIED",
            Reason::NotRegistryApi => "NOT_FOUND",
            Reason::MethodNotAllowed | Reason::FormBody | Reason::AmbiguousHeader => "UNSUPPORTED",
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
        };
        Some(code)
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

/// The body of distribution's answer to a write in `maintenance.readonly` mode, as
/// docker-registry 2.8 sends it: its routes leave the write methods out, so gorilla's
/// `MethodHandler` answers with Go's `http.Error`: `405 Method Not Allowed`, `Allow: GET, HEAD`,
/// `Content-Type: text/plain; charset=utf-8`, `X-Content-Type-Options: nosniff`, and this body.
/// Not an error envelope: podman and buildah print `StatusCode: 405, Method not allowed` and do
/// not retry, where an `UNSUPPORTED` envelope was retried three times.
pub const READ_ONLY_BODY: &str = "Method not allowed\n";

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

    /// The JSON envelope `{"errors":[{"code","message","detail"}]}`, or distribution's plain
    /// text for [`Reason::ReadOnly`].
    pub fn body(&self) -> Bytes {
        let Some(code) = self.reason.code() else {
            return Bytes::from_static(READ_ONLY_BODY.as_bytes());
        };
        let code = self
            .upstream
            .as_ref()
            .and_then(|upstream| upstream.code.as_deref())
            .unwrap_or(code);
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
        let content_type = if self.reason == Reason::ReadOnly {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            "text/plain; charset=utf-8"
        } else {
            "application/json"
        };
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        headers.insert(
            "docker-distribution-api-version",
            HeaderValue::from_static("registry/2.0"),
        );
        if let Some(challenge) = self.upstream.and_then(|upstream| upstream.challenge) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
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
            match reason.code() {
                Some(code) => assert!(CODES.contains(&code), "{reason:?}"),
                None => assert_eq!(reason, Reason::ReadOnly),
            }
            assert!(!reason.label().is_empty());
        }
    }

    #[test]
    fn read_only_is_answered_as_distribution_answers() {
        let response = Refusal::new(Reason::ReadOnly, "repository a/b is read-only")
            .with_detail(json!({"check": "read_only"}))
            .into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let mut headers: Vec<(&str, &str)> = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap_or("?")))
            .collect();
        headers.sort_unstable();
        assert_eq!(
            headers,
            [
                ("allow", "GET, HEAD"),
                ("content-length", "19"),
                ("content-type", "text/plain; charset=utf-8"),
                ("docker-distribution-api-version", "registry/2.0"),
                ("x-content-type-options", "nosniff"),
            ]
        );
        assert_eq!(
            Refusal::new(Reason::ReadOnly, "x").body(),
            "Method not allowed\n"
        );
    }
}
