//! The gateway's own answers: the distribution error envelope.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::body::ProxyBody;

/// Error codes of the distribution specification the gateway answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A limit refused the push.
    Denied,
    /// The manifest is schema 1, malformed, or lies about its layer sizes.
    ManifestInvalid,
    /// The manifest body is larger than the gateway accepts.
    SizeInvalid,
    /// The upstream registry could not be asked.
    Unavailable,
    /// The path is not part of the registry API.
    NotFound,
}

impl Code {
    /// The code as the envelope spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Denied => "DENIED",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unavailable => "UNAVAILABLE",
            Code::NotFound => "NOT_FOUND",
        }
    }
}

/// A refusal or failure the gateway answers itself.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// HTTP status.
    pub status: StatusCode,
    /// Envelope code.
    pub code: Code,
    /// The message a client prints after `denied:` or the like.
    pub message: String,
    /// Machine-readable facts.
    pub detail: Value,
}

impl Refusal {
    /// A refusal with an empty detail.
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: Value::Null,
        }
    }

    /// Adds machine-readable facts.
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    /// The JSON envelope `{"errors":[{"code","message","detail"}]}`.
    pub fn body(&self) -> Bytes {
        let error = if self.detail.is_null() {
            json!({"code": self.code.as_str(), "message": self.message})
        } else {
            json!({"code": self.code.as_str(), "message": self.message, "detail": self.detail})
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
        *response.status_mut() = self.status;
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
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope() {
        let refusal = Refusal::new(StatusCode::FORBIDDEN, Code::Denied, "too big")
            .with_detail(json!({"measured": 3}));
        assert_eq!(
            refusal.body(),
            r#"{"errors":[{"code":"DENIED","detail":{"measured":3},"message":"too big"}]}"#
        );
        let plain = Refusal::new(StatusCode::NOT_FOUND, Code::NotFound, "no");
        assert_eq!(
            plain.body(),
            r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#
        );
    }
}
