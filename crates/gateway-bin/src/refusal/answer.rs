//! The one place a [`Refusal`] becomes an answer: its log line, its count, and the registry's
//! error envelope (or distribution's plain read-only answer).

use bytes::Bytes;
use http::{HeaderValue, Method, Response, header};
use http_body_util::{BodyExt, Full};
use limits_core::RepositoryName;
use serde_json::json;

use crate::body::ProxyBody;
use crate::metrics::Metrics;

use super::fact::{Failure, failure};
use super::{Fact, Refusal};

/// The body of distribution's answer to a write in `maintenance.readonly` mode, as
/// docker-registry 2.8 sends it: its routes leave the write methods out, so gorilla's
/// `MethodHandler` answers with Go's `http.Error`: `405 Method Not Allowed`, `Allow: GET, HEAD`,
/// `Content-Type: text/plain; charset=utf-8`, `X-Content-Type-Options: nosniff`, and this body.
/// Not an error envelope: podman and buildah print `StatusCode: 405, Method not allowed` and do
/// not retry, where an `UNSUPPORTED` envelope was retried three times.
pub const READ_ONLY_BODY: &str = "Method not allowed\n";

/// Where a refusal was answered, for its log line.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The request's method.
    pub method: &'a Method,
    /// The request's path as the client sent it.
    pub path: &'a str,
    /// The repository the request names, when it names one.
    pub repository: Option<&'a RepositoryName>,
    /// The manifest reference the request names, when it names one.
    pub reference: Option<&'a str>,
}

/// The one place a refusal becomes an answer: its log line, its count in
/// `registry_gateway_refusals_total` (a limit's refusal is counted as a decision instead), and
/// the response.
pub fn answer(refusal: Refusal, seen: &Seen<'_>, metrics: &Metrics) -> Response<ProxyBody> {
    log(&refusal, seen);
    if !matches!(refusal, Refusal::Denied(_) | Refusal::QuotaDenied(_)) {
        metrics.refusal(refusal.label());
    }
    response(refusal)
}

/// The log line of a refusal: a refused check is a `decision` with the check's name; a
/// request the gateway cannot pass on is a `refusal`. A limit's refusal ([`Refusal::Denied`])
/// was logged as a decision when it was decided.
fn log(refusal: &Refusal, seen: &Seen<'_>) {
    let (check, tag, rule, error) = match refusal {
        Refusal::Denied(_) | Refusal::QuotaDenied(_) => return,
        Refusal::ImmutableTag(refused) => (
            Some("immutable_tag"),
            Some(refused.tag.as_str()),
            Some(&refused.source),
            None,
        ),
        Refusal::ImmutableTagDelete(refused) => (
            Some("immutable_tag_delete"),
            Some(refused.tag.as_str()),
            Some(&refused.source),
            None,
        ),
        Refusal::ManifestTooLarge { .. }
        | Refusal::ManifestUnparsable(_)
        | Refusal::ManifestUnreadable { .. }
        | Refusal::BodyTimeout { .. }
        | Refusal::Busy => (Some("manifest"), None, None, None),
        Refusal::ManifestMismatch(_) => (Some("image_size"), None, None, None),
        Refusal::FactUnavailable { fact, source } => {
            let tag = match fact {
                Fact::ImmutableTagDigest { tag } => Some(tag.as_str()),
                _ => None,
            };
            (Some(fact.check()), tag, None, Some(source.to_string()))
        }
        Refusal::Uncoordinated(err) => (Some("tag_count"), None, None, Some(err.to_string())),
        Refusal::NamespaceUncoordinated { source, .. } => (
            Some("namespace_quota"),
            None,
            None,
            Some(source.to_string()),
        ),
        Refusal::DeleteUncoordinated { source, .. } => (
            Some("immutable_tag_delete"),
            None,
            None,
            Some(source.to_string()),
        ),
        _ => (None, None, None, None),
    };
    let message = refusal.message();
    let repository = seen.repository.map(tracing::field::display);
    let rule = rule.map(tracing::field::display);
    match check {
        Some(check) => tracing::warn!(
            event = "decision", repository, reference = seen.reference, check, tag, rule,
            error = error.as_deref(), verdict = "denied", reason = refusal.label(),
            method = %seen.method, path = seen.path, "{message}"
        ),
        None => tracing::warn!(
            event = "refusal", reason = refusal.label(), method = %seen.method,
            path = seen.path, repository, reference = seen.reference, "{message}"
        ),
    }
}

/// The JSON envelope `{"errors":[{"code","message","detail"}]}`, or distribution's plain
/// text for [`Refusal::ReadOnly`].
pub fn envelope(refusal: &Refusal) -> Bytes {
    let Some(code) = refusal.code() else {
        return Bytes::from_static(READ_ONLY_BODY.as_bytes());
    };
    let message = refusal.message();
    let error = match refusal.detail() {
        None => json!({"code": code, "message": message}),
        Some(detail) => json!({"code": code, "message": message, "detail": detail}),
    };
    Bytes::from(json!({ "errors": [error] }).to_string())
}

/// The answer to send, not logged nor counted: see [`answer`].
pub fn response(refusal: Refusal) -> Response<ProxyBody> {
    let body = envelope(&refusal);
    let mut response = Response::new(
        Full::new(body.clone())
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = refusal.status();
    let headers = response.headers_mut();
    let content_type = if matches!(refusal, Refusal::ReadOnly(_)) {
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
    if let Refusal::FactUnavailable { source, .. } = &refusal {
        if let Failure::Refused(_, _, Some(challenge)) = failure(source) {
            headers.insert(header::WWW_AUTHENTICATE, challenge.clone());
        }
    }
    if matches!(refusal, Refusal::Busy) {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use limits_core::{LimitSource, ReadOnly};
    use upstream_client::UpstreamError;

    use super::*;

    #[test]
    fn envelopes() {
        let refusal = Refusal::ManifestTooLarge { size: Some(5) };
        assert_eq!(
            envelope(&refusal),
            r#"{"errors":[{"code":"SIZE_INVALID","detail":{"limit":4194304},"message":"manifest body of 5 bytes exceeds the limit of 4194304 bytes (4 MiB)"}]}"#
        );
        let plain = Refusal::NotRegistryApi { path: "/x".into() };
        assert_eq!(
            envelope(&plain),
            r#"{"errors":[{"code":"NOT_FOUND","message":"/x is not part of the registry API (/v2/)"}]}"#
        );
    }

    #[test]
    fn read_only_is_answered_as_distribution_answers() {
        let refusal = Refusal::ReadOnly(ReadOnly {
            repository: Some("a/b".parse().expect("name")),
            source: LimitSource::Global,
        });
        assert_eq!(envelope(&refusal), "Method not allowed\n");
        let response = response(refusal);
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
    }

    #[test]
    fn a_refusal_of_the_clients_credentials_is_passed_on() {
        let refusal = Refusal::fact(
            Fact::TagCount,
            UpstreamError::Unauthorized {
                status: StatusCode::UNAUTHORIZED,
                credentials: upstream_client::AuthKind::Forwarded,
                url: "http://u/v2/a/tags/list".into(),
                code: None,
                challenge: Some(HeaderValue::from_static("Bearer realm=\"x\"")),
            },
        );
        assert_eq!(refusal.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refusal.code(), Some("UNAUTHORIZED"));
        assert_eq!(refusal.label(), "unauthorized");
        assert_eq!(
            refusal.message(),
            "the tag count could not be read from the upstream registry: the registry refused the client's credentials (401 Unauthorized)"
        );
        let response = response(refusal);
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE),
            Some(&HeaderValue::from_static("Bearer realm=\"x\""))
        );
    }
}
