//! What can go wrong when asking the upstream, whose fault it is, and whether to retry.

use std::time::Duration;

use http::StatusCode;
use url::Url;

use crate::auth::AuthKind;
use crate::challenge::ChallengeError;

/// A boxed error from a dependency, kept as a `source` only.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Whose fault a failed call was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The pushing client's: its credentials were refused, or it has no access.
    Client,
    /// The upstream's: unreachable, slow, a 5xx, or an answer that breaks the protocol.
    Upstream,
    /// The gateway's own: its configured credentials or settings are wrong, or it sent a request
    /// the upstream could not accept.
    Internal,
}

/// A failed call to the upstream registry.
///
/// Messages name the URL and what was wrong, never a credential or a token. URLs are shown
/// without user information.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The upstream could not be reached: refused connection, DNS or TLS failure.
    #[error("cannot connect to upstream {url}")]
    Connect {
        /// The URL that was asked.
        url: String,
        /// The transport error.
        #[source]
        source: BoxError,
    },
    /// No complete answer within the connect or request timeout.
    #[error("upstream {url} did not answer within {timeout:?}")]
    Timeout {
        /// The URL that was asked.
        url: String,
        /// The timeout that ran out (connect or request).
        timeout: Duration,
    },
    /// The connection broke, or the answer could not be read.
    #[error("request to upstream {url} failed")]
    Transport {
        /// The URL that was asked.
        url: String,
        /// The transport error.
        #[source]
        source: BoxError,
    },
    /// 401 or 403: the upstream refused the credentials, or they lack access to the repository.
    #[error("upstream refused {credentials} with {status} for {url}{}", code_suffix(code.as_deref()))]
    Unauthorized {
        /// 401 or 403.
        status: StatusCode,
        /// Which credentials were refused.
        credentials: AuthKind,
        /// The URL that was asked.
        url: String,
        /// The distribution error code from the body, if any (`UNAUTHORIZED`, `DENIED`).
        code: Option<String>,
        /// The upstream's `WWW-Authenticate` challenge, when it sent one: a client whose own
        /// credentials were refused needs it to authenticate again.
        challenge: Option<http::HeaderValue>,
    },
    /// An answer with a status the call does not expect.
    #[error("upstream answered {status} for {url}{}", code_suffix(code.as_deref()))]
    Status {
        /// The status received.
        status: StatusCode,
        /// The URL that was asked.
        url: String,
        /// The distribution error code from the body, if any (`NAME_INVALID`, ...).
        code: Option<String>,
        /// The distribution error message from the body, if any.
        message: Option<String>,
    },
    /// The `Link` header of a tag list page could not be read or resolved.
    #[error("upstream sent a malformed Link header {value:?} for {url}")]
    MalformedLink {
        /// The URL of the page.
        url: String,
        /// The header value.
        value: String,
        /// What is wrong with it.
        #[source]
        source: BoxError,
    },
    /// A `Link` header points away from the upstream; credentials are not sent there.
    #[error("upstream's Link header points outside the upstream, to {target}")]
    LinkOutsideUpstream {
        /// The resolved target.
        target: String,
    },
    /// The tag list or catalog still had a next page after the configured number of pages.
    #[error("listing at {url} still has a next page after {limit} pages")]
    TooManyPages {
        /// The configured page limit.
        limit: usize,
        /// The first page's URL.
        url: String,
    },
    /// A 401 answer carries a `WWW-Authenticate` header that cannot be read.
    #[error("upstream sent an unreadable WWW-Authenticate header for {url}")]
    Challenge {
        /// The URL that was asked.
        url: String,
        /// What is wrong with the header.
        #[source]
        source: ChallengeError,
    },
    /// The token endpoint refused the credentials (401 or 403).
    #[error("token endpoint {realm} refused {credentials} with {status}")]
    TokenRefused {
        /// The token endpoint, without its query.
        realm: String,
        /// 401 or 403.
        status: StatusCode,
        /// Which credentials were refused.
        credentials: AuthKind,
    },
    /// No usable token could be had from the token endpoint.
    #[error("no token from token endpoint {realm}: {problem}")]
    Token {
        /// The token endpoint, without its query.
        realm: String,
        /// What went wrong.
        #[source]
        problem: TokenProblem,
    },
    /// The upstream's answer breaks the distribution protocol.
    #[error("invalid answer from upstream {url}: {problem}")]
    InvalidResponse {
        /// The URL that was asked.
        url: String,
        /// What is wrong with it.
        #[source]
        problem: ResponseProblem,
    },
    /// A manifest reference that is neither a tag nor a digest, which is not put in a URL.
    #[error("invalid manifest reference {reference:?}: neither a tag nor a digest")]
    InvalidReference {
        /// The reference.
        reference: String,
    },
    /// A request URL could not be built from the upstream URL.
    #[error("cannot build a request URL from {value:?}")]
    InvalidUrl {
        /// The text that did not make a URL.
        value: String,
        /// The parse error.
        #[source]
        source: url::ParseError,
    },
}

fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(" ({c})")).unwrap_or_default()
}

/// A URL as errors and logs show it: without user information.
pub(crate) fn shown(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// The first 100 characters of a body, for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(100).collect()
}

/// Why the token endpoint's answer could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenProblem {
    /// The Bearer challenge has no `realm`.
    #[error("the Bearer challenge has no realm")]
    MissingRealm,
    /// The realm is not an http or https URL.
    #[error("the realm {realm:?} is not an http(s) URL")]
    InvalidRealm {
        /// The realm as the challenge gave it.
        realm: String,
    },
    /// The realm uses plain http while the upstream uses https, and `insecure` is off.
    #[error("the realm uses plain http while the upstream uses https (set insecure to allow)")]
    InsecureRealm,
    /// The token endpoint answered with an unexpected status.
    #[error("it answered {status}")]
    Status {
        /// The status received.
        status: StatusCode,
    },
    /// The body is not the JSON object a token endpoint sends.
    #[error("the body is not a JSON token response: {excerpt:?}")]
    NotJson {
        /// The start of the body, at most 100 characters.
        excerpt: String,
        /// The JSON error.
        #[source]
        source: BoxError,
    },
    /// The JSON has neither `token` nor `access_token`.
    #[error("the answer has neither token nor access_token")]
    MissingToken,
    /// The token cannot be sent in a header.
    #[error("the token contains characters not allowed in a header")]
    InvalidToken,
}

/// How an upstream answer breaks the protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseProblem {
    /// A tag list page is not `{"name": ..., "tags": [...]}`.
    #[error("the tag list is not JSON with a tags array: {excerpt:?}")]
    TagList {
        /// The start of the body, at most 100 characters.
        excerpt: String,
        /// The JSON error.
        #[source]
        source: BoxError,
    },
    /// A catalog page is not `{"repositories": [...]}`.
    #[error("the catalog is not JSON with a repositories array: {excerpt:?}")]
    Catalog {
        /// The start of the body, at most 100 characters.
        excerpt: String,
        /// The JSON error.
        #[source]
        source: BoxError,
    },
    /// A blob HEAD answer has no `Content-Length`.
    #[error("the blob HEAD answer has no Content-Length")]
    MissingContentLength,
    /// A blob HEAD answer has a `Content-Length` that is not a number.
    #[error("the blob HEAD answer has an invalid Content-Length {value:?}")]
    InvalidContentLength {
        /// The header value.
        value: String,
    },
    /// A manifest HEAD answer has no `Docker-Content-Digest`.
    #[error("the manifest HEAD answer has no Docker-Content-Digest")]
    MissingDigest,
    /// A manifest HEAD answer has a `Docker-Content-Digest` that is not a digest.
    #[error("the manifest HEAD answer has an invalid Docker-Content-Digest {value:?}")]
    InvalidDigest {
        /// The header value.
        value: String,
    },
    /// The body is larger than the client reads.
    #[error("the body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl UpstreamError {
    /// When the upstream refused the pushing client's own credentials (forwarded, or none):
    /// the status (401 or 403), the distribution error code, and the `WWW-Authenticate`
    /// challenge to hand back so that the client authenticates again.
    pub fn client_refusal(&self) -> Option<(StatusCode, Option<&str>, Option<&http::HeaderValue>)> {
        match self {
            Self::Unauthorized {
                status,
                credentials: AuthKind::Forwarded | AuthKind::Anonymous,
                code,
                challenge,
                ..
            } => Some((*status, code.as_deref(), challenge.as_ref())),
            _ => None,
        }
    }

    /// Whose fault the failure was.
    ///
    /// Refused credentials are the client's fault when they are the client's own (forwarded or
    /// anonymous), and the gateway's ([`Fault::Internal`]) when they are the configured ones.
    pub fn fault(&self) -> Fault {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } | Self::Transport { .. } => Fault::Upstream,
            Self::Unauthorized { credentials, .. } | Self::TokenRefused { credentials, .. } => {
                match credentials {
                    AuthKind::Configured => Fault::Internal,
                    AuthKind::Anonymous | AuthKind::Forwarded => Fault::Client,
                }
            }
            Self::Status { status, .. } => {
                if status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::NOT_FOUND
                {
                    Fault::Upstream
                } else {
                    Fault::Internal
                }
            }
            Self::Token { problem, .. } => match problem {
                TokenProblem::InsecureRealm => Fault::Internal,
                _ => Fault::Upstream,
            },
            Self::MalformedLink { .. }
            | Self::LinkOutsideUpstream { .. }
            | Self::TooManyPages { .. }
            | Self::Challenge { .. }
            | Self::InvalidResponse { .. } => Fault::Upstream,
            Self::InvalidUrl { .. } | Self::InvalidReference { .. } => Fault::Internal,
        }
    }

    /// Whether the same call may succeed if tried again later: transport failures, timeouts,
    /// 429, 500, 502, 503 and 504.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } | Self::Transport { .. } => true,
            Self::Status { status, .. }
            | Self::Token {
                problem: TokenProblem::Status { status },
                ..
            } => matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// Whether the upstream (or its token endpoint) did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// Whether the upstream (or its token endpoint) could not be connected to.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }

    /// The HTTP status the upstream answered, where the failure is one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Unauthorized { status, .. }
            | Self::Status { status, .. }
            | Self::TokenRefused { status, .. }
            | Self::Token {
                problem: TokenProblem::Status { status },
                ..
            } => Some(*status),
            _ => None,
        }
    }
}

/// Why [`ReqwestUpstreamBuilder::build`](crate::ReqwestUpstreamBuilder::build) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The upstream URL is not http or https.
    #[error("upstream URL {url} is not http or https")]
    UnsupportedScheme {
        /// The URL, without user information.
        url: String,
    },
    /// The upstream URL carries a username or password; use `credentials` instead.
    #[error("upstream URL for host {host:?} carries user information; use credentials instead")]
    CredentialsInUrl {
        /// The URL's host.
        host: String,
    },
    /// The upstream URL has a query or fragment, which request URLs cannot be built on.
    #[error("upstream URL {url} must not have a query or fragment")]
    QueryInUrl {
        /// The URL.
        url: String,
    },
    /// A page size or page limit of zero.
    #[error("{setting} must be at least 1")]
    Zero {
        /// `page_size` or `max_pages`.
        setting: &'static str,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client")]
    Client {
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> UpstreamError {
        UpstreamError::Status {
            status: StatusCode::from_u16(code).expect("valid"),
            url: "http://u/".into(),
            code: None,
            message: None,
        }
    }

    #[test]
    fn status_faults() {
        #[rustfmt::skip]
        let cases = [
            (500, Fault::Upstream, true),
            (501, Fault::Upstream, false),
            (502, Fault::Upstream, true),
            (503, Fault::Upstream, true),
            (504, Fault::Upstream, true),
            (429, Fault::Upstream, true),
            (404, Fault::Upstream, false),
            (400, Fault::Internal, false),
            (405, Fault::Internal, false),
        ];
        for (code, fault, retry) in cases {
            assert_eq!(status(code).fault(), fault, "{code}");
            assert_eq!(status(code).is_retryable(), retry, "{code}");
        }
    }

    #[test]
    fn unauthorized_fault_follows_credentials() {
        let cases = [
            (AuthKind::Forwarded, Fault::Client),
            (AuthKind::Anonymous, Fault::Client),
            (AuthKind::Configured, Fault::Internal),
        ];
        for (credentials, fault) in cases {
            let e = UpstreamError::Unauthorized {
                status: StatusCode::UNAUTHORIZED,
                credentials,
                url: "http://u/v2/".into(),
                code: Some("UNAUTHORIZED".into()),
                challenge: None,
            };
            assert_eq!(e.fault(), fault);
            assert!(!e.is_retryable());
        }
    }

    #[test]
    fn messages() {
        let e = UpstreamError::Unauthorized {
            status: StatusCode::UNAUTHORIZED,
            credentials: AuthKind::Forwarded,
            url: "http://u/v2/a/tags/list".into(),
            code: Some("UNAUTHORIZED".into()),
            challenge: None,
        };
        assert_eq!(
            e.to_string(),
            "upstream refused the client's forwarded credentials with 401 Unauthorized for \
             http://u/v2/a/tags/list (UNAUTHORIZED)"
        );
        let e = UpstreamError::Timeout {
            url: "http://u/v2/".into(),
            timeout: Duration::from_secs(2),
        };
        assert_eq!(
            e.to_string(),
            "upstream http://u/v2/ did not answer within 2s"
        );
        assert!(e.is_timeout() && e.is_retryable() && !e.is_unreachable());
    }
}
