//! How the gateway behaves where the configuration leaves a choice.

use std::time::Duration;

use upstream_client::{Fault, UpstreamError};

/// How the gateway behaves where the configuration leaves a choice.
#[derive(Debug, Clone)]
pub struct Options {
    /// Allow pushes whose tag count or layer sizes cannot be read from the upstream.
    pub fail_open: bool,
    /// Longest wait for the upstream's answer to a request without a streamed body.
    pub upstream_timeout: Duration,
    /// Layer size checks run at once for one manifest.
    pub head_concurrency: usize,
    /// How long tags created through this process count even when the upstream's listing
    /// does not show them yet.
    pub recent_tag_window: Duration,
    /// Longest time a manifest body may take to arrive.
    pub body_read_timeout: Duration,
}

impl Options {
    /// Whether a check whose fact the upstream could not tell lets the request through: only
    /// with `--fail-open`, and never when the failure is the client's (`Fault::Client`: the
    /// registry or its token service refused the client's own credentials), which goes back to
    /// the client instead. The one place that decides it.
    pub fn fails_open(&self, err: &UpstreamError) -> bool {
        self.fail_open && err.fault() != Fault::Client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn fail_open_never_covers_the_clients_own_credentials() {
        use upstream_client::AuthKind;
        let options = |fail_open| Options {
            fail_open,
            upstream_timeout: Duration::from_secs(1),
            head_concurrency: 1,
            recent_tag_window: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(1),
        };
        let refused = |credentials| UpstreamError::Unauthorized {
            status: StatusCode::UNAUTHORIZED,
            credentials,
            url: "http://u/v2/a/tags/list".into(),
            code: None,
            challenge: None,
        };
        let token_refused = |credentials| UpstreamError::TokenRefused {
            realm: "http://u/token".into(),
            status: StatusCode::UNAUTHORIZED,
            credentials,
        };
        let cases: Vec<(UpstreamError, bool)> = vec![
            (
                UpstreamError::Timeout {
                    url: "http://u/v2/".into(),
                    timeout: Duration::from_secs(1),
                },
                true,
            ),
            (
                UpstreamError::Status {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    url: "http://u/v2/".into(),
                    code: None,
                    message: None,
                },
                true,
            ),
            // Harbor mode's robot account refused: the gateway's configuration, not the client.
            (refused(AuthKind::Configured), true),
            (refused(AuthKind::Forwarded), false),
            (refused(AuthKind::Anonymous), false),
            (token_refused(AuthKind::Forwarded), false),
            (token_refused(AuthKind::Configured), true),
        ];
        for (err, fails_open) in &cases {
            assert_eq!(options(true).fails_open(err), *fails_open, "{err}");
            assert!(!options(false).fails_open(err), "{err}");
        }
    }
}
