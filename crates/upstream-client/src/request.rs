//! Sending one request to the upstream and reading its answer: transport failures, bounded
//! bodies and unexpected answers become typed [`UpstreamError`]s. Which credentials to send is
//! decided before (see `session.rs`).

use std::time::{Duration, Instant};

use http::{HeaderValue, Method, StatusCode, header};
use url::Url;

use crate::auth::Auth;
use crate::challenge::{Challenge, parse_www_authenticate};
use crate::error::{ResponseProblem, UpstreamError};

/// Largest error body read to find a distribution error code.
const MAX_ERROR_BYTES: usize = 64 << 10;

/// The HTTP client, the upstream URL requests are built on, and the timeouts that bound them.
#[derive(Debug)]
pub(crate) struct Requester {
    client: reqwest::Client,
    base: Url,
    connect_timeout: Duration,
    request_timeout: Duration,
}

/// `{"errors": [{"code": ..., "message": ...}]}`
#[derive(Debug, Default, serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Debug, serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl Requester {
    /// A requester for the upstream at `base` (ending in `/`), with the timeouts `client` was
    /// built with, for error messages.
    pub(crate) fn new(
        client: reqwest::Client,
        base: Url,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Self {
        Self {
            client,
            base,
            connect_timeout,
            request_timeout,
        }
    }

    /// The upstream URL requests are built on (always ending in `/`).
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// The time to establish a connection.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The time for one whole request.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// `path` on the upstream URL.
    pub(crate) fn url(&self, path: &str) -> Result<Url, UpstreamError> {
        self.base
            .join(path)
            .map_err(|source| UpstreamError::InvalidUrl {
                value: path.to_owned(),
                source,
            })
    }

    /// Sends one request, with `accept` as its `Accept` header when given; transport failures
    /// become typed errors.
    pub(crate) async fn execute(
        &self,
        method: Method,
        url: &Url,
        authorization: Option<&HeaderValue>,
        accept: Option<&'static str>,
        shown_url: &str,
    ) -> Result<reqwest::Response, UpstreamError> {
        let started = Instant::now();
        let mut request = self.client.request(method.clone(), url.clone());
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value.clone());
        }
        if let Some(value) = accept {
            request = request.header(header::ACCEPT, value);
        }
        match request.send().await {
            Ok(response) => {
                tracing::debug!(
                    %method,
                    url = shown_url,
                    status = response.status().as_u16(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "upstream answered"
                );
                Ok(response)
            }
            Err(e) => {
                let error = self.transport_error(shown_url, e);
                tracing::debug!(%method, url = shown_url, %error, "upstream request failed");
                Err(error)
            }
        }
    }

    fn transport_error(&self, shown_url: &str, error: reqwest::Error) -> UpstreamError {
        let url = shown_url.to_owned();
        if error.is_timeout() {
            let timeout = if error.is_connect() {
                self.connect_timeout
            } else {
                self.request_timeout
            };
            UpstreamError::Timeout { url, timeout }
        } else if error.is_connect() {
            UpstreamError::Connect {
                url,
                source: Box::new(error.without_url()),
            }
        } else {
            UpstreamError::Transport {
                url,
                source: Box::new(error.without_url()),
            }
        }
    }

    /// Reads a whole body, refusing more than `limit` bytes.
    pub(crate) async fn read_body(
        &self,
        mut response: reqwest::Response,
        limit: usize,
        shown_url: &str,
    ) -> Result<Vec<u8>, UpstreamError> {
        let too_large = || UpstreamError::InvalidResponse {
            url: shown_url.to_owned(),
            problem: ResponseProblem::BodyTooLarge { limit },
        };
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(shown_url, e))?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The error for an answer the call did not expect, with the distribution error code
    /// from its body when there is one.
    pub(crate) async fn failure(
        &self,
        response: reqwest::Response,
        shown_url: &str,
        auth: Auth<'_>,
    ) -> UpstreamError {
        let status = response.status();
        let challenge = response
            .headers()
            .get(http::header::WWW_AUTHENTICATE)
            .cloned();
        let body = self
            .read_body(response, MAX_ERROR_BYTES, shown_url)
            .await
            .unwrap_or_default();
        let first = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .and_then(|b| b.errors.into_iter().next());
        let (code, message) = first.map(|e| (e.code, e.message)).unwrap_or_default();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            UpstreamError::Unauthorized {
                status,
                credentials: auth.kind(),
                url: shown_url.to_owned(),
                code,
                challenge,
            }
        } else {
            UpstreamError::Status {
                status,
                url: shown_url.to_owned(),
                code,
                message,
            }
        }
    }
}

/// The value of header `name` of an answer, parsed: `missing` when absent, `invalid` with the
/// value as received when it does not parse.
pub(crate) fn header_value<T: std::str::FromStr>(
    response: &reqwest::Response,
    name: &str,
    shown_url: &str,
    missing: ResponseProblem,
    invalid: impl FnOnce(String) -> ResponseProblem,
) -> Result<T, UpstreamError> {
    let problem = |problem| UpstreamError::InvalidResponse {
        url: shown_url.to_owned(),
        problem,
    };
    let value = response
        .headers()
        .get(name)
        .ok_or_else(|| problem(missing))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<T>().ok())
        .ok_or_else(|| {
            problem(invalid(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ))
        })
}

/// Every challenge in every `WWW-Authenticate` header of a 401 answer.
pub(crate) fn challenges(
    response: &reqwest::Response,
    shown_url: &str,
) -> Result<Vec<Challenge>, UpstreamError> {
    let mut out = Vec::new();
    for value in response.headers().get_all(header::WWW_AUTHENTICATE) {
        let text = String::from_utf8_lossy(value.as_bytes());
        let parsed = parse_www_authenticate(&text).map_err(|source| UpstreamError::Challenge {
            url: shown_url.to_owned(),
            source,
        })?;
        out.extend(parsed);
    }
    Ok(out)
}
