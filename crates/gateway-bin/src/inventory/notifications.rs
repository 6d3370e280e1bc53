//! `POST /v1/registry-notifications`: the events the registry posts to its
//! `notifications.endpoints`, applied to the inventory.
//!
//! Checked in this order, each refusal changing nothing: the method (`405`), the bearer token
//! when one is configured (`401`), the `Content-Type` (`400`), the body's size (`413`), the body
//! (`400`, with the parser's error). Anything else is `200`: distribution retries an endpoint
//! that does not answer 2xx, so an event the inventory does not use is still accepted.

use std::path::Path;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::{BodyExt as _, Limited};
use registry_api::{Notification, is_notification_content_type};
use upstream_client::Inventory as Catalog;

use super::Inventory;

/// The path of the endpoint on the admin listener.
pub const PATH: &str = "/v1/registry-notifications";

/// How the endpoint authenticates and bounds what it reads.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bearer token the registry must send; `None` accepts any sender.
    pub token: Option<String>,
    /// Largest body read, in bytes.
    pub max_body: usize,
}

impl Settings {
    /// Reads the token from `token_file` (trailing newlines left out), when given.
    pub fn load(token_file: Option<&Path>, max_body: u64) -> anyhow::Result<Self> {
        let token = token_file
            .map(|path| {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let token = text.trim_end_matches(['\n', '\r']).to_owned();
                anyhow::ensure!(
                    !token.is_empty(),
                    "the notifications token file {} is empty",
                    path.display()
                );
                Ok(token)
            })
            .transpose()?;
        Ok(Settings {
            token,
            max_body: usize::try_from(max_body).unwrap_or(usize::MAX),
        })
    }

    /// Whether the request carries the configured token (always, when none is configured).
    /// The comparison takes the same time wherever the first difference is.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
        else {
            return false;
        };
        constant_time_eq(given.as_bytes(), token.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The answer to one notification request: status and a plain-text body.
pub async fn receive<U, B>(
    inventory: &Inventory<U>,
    settings: &Settings,
    request: http::Request<B>,
) -> (StatusCode, String)
where
    U: Catalog,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let metrics = inventory.metrics();
    if request.method() != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "registry notifications are POSTed\n".to_owned(),
        );
    }
    if !settings.authorized(request.headers()) {
        metrics.notification("unauthorized");
        return (
            StatusCode::UNAUTHORIZED,
            "a notification needs the configured bearer token\n".to_owned(),
        );
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_notification_content_type(content_type) {
        metrics.notification("invalid");
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "invalid Content-Type \"{}\": expected {} or application/json\n",
                content_type.escape_debug(),
                registry_api::EVENTS_MEDIA_TYPE_V1
            ),
        );
    }
    let body = match Limited::new(request.into_body(), settings.max_body)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            metrics.notification("too_large");
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("notification body over {} bytes\n", settings.max_body),
            );
        }
        Err(err) => {
            metrics.notification("invalid");
            return (
                StatusCode::BAD_REQUEST,
                format!("cannot read the notification body: {err}\n"),
            );
        }
    };
    let notification = match Notification::parse(&body) {
        Ok(notification) => notification,
        Err(err) => {
            metrics.notification("invalid");
            tracing::warn!(error = %err, "registry notification refused");
            return (StatusCode::BAD_REQUEST, format!("{err}\n"));
        }
    };
    inventory.tag_sets().apply_notification(&notification);
    let changes = inventory.apply(&notification).await;
    metrics.notification("accepted");
    metrics.notification_changes(changes);
    tracing::debug!(
        events = notification.events.len(),
        ignored = notification.ignored,
        changes,
        "registry notification applied"
    );
    (StatusCode::OK, format!("{changes} changes\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let settings = Settings {
            token: Some("s3cret".to_owned()),
            max_body: 1024,
        };
        #[rustfmt::skip]
        let cases: &[(Option<&str>, bool)] = &[
            (Some("Bearer s3cret"), true),
            (Some("bearer s3cret"), true),
            (Some("Bearer s3cre"), false),
            (Some("Bearer s3cret2"), false),
            (Some("Basic s3cret"), false),
            (Some("s3cret"), false),
            (None, false),
        ];
        for (value, want) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
            }
            assert_eq!(settings.authorized(&headers), *want, "{value:?}");
        }
        let open = Settings {
            token: None,
            max_body: 1024,
        };
        assert!(open.authorized(&HeaderMap::new()));
    }
}
