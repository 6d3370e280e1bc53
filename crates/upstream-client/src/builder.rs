//! Settings of a [`ReqwestUpstream`], checked once when it is built.

use std::time::Duration;

use url::Url;

use crate::auth::Credentials;
use crate::error::BuildError;
use crate::reqwest_impl::{ReqwestUpstream, shown};

/// Default time to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time for one whole request, answer body included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `n` asked for per tag list page. Distribution 3 refuses pages larger than 1000 by
/// default; distribution 2.8 ignores `n` and returns every tag at once.
pub const DEFAULT_PAGE_SIZE: usize = 1000;
/// Default most tag list pages followed before giving up with
/// [`UpstreamError::TooManyPages`](crate::UpstreamError::TooManyPages).
pub const DEFAULT_MAX_PAGES: usize = 1000;

/// Builds a [`ReqwestUpstream`]; see [`ReqwestUpstream::builder`].
#[derive(Debug, Clone)]
pub struct ReqwestUpstreamBuilder {
    pub(crate) base: Url,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) insecure: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_pages: usize,
    pub(crate) page_size: usize,
    pub(crate) user_agent: String,
}

impl ReqwestUpstreamBuilder {
    pub(crate) fn new(base: Url) -> Self {
        Self {
            base,
            credentials: None,
            insecure: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_pages: DEFAULT_MAX_PAGES,
            page_size: DEFAULT_PAGE_SIZE,
            user_agent: concat!(
                "registry-gateway-upstream-client/",
                env!("CARGO_PKG_VERSION")
            )
            .to_owned(),
        }
    }

    /// The account [`Auth::Configured`](crate::Auth::Configured) calls use.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Skip certificate checks, and allow a plain http token realm behind an https upstream.
    ///
    /// Plain http to the upstream URL itself is always allowed: the operator chose that URL, and
    /// an in-cluster registry usually speaks plain http.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// Time to establish a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time for each request, from sending it to the end of the answer's body (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Most tag list pages followed (default 1000).
    pub fn max_pages(mut self, pages: usize) -> Self {
        self.max_pages = pages;
        self
    }

    /// The `n` asked for per tag list page (default 1000).
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = size;
        self
    }

    /// The `User-Agent` sent with every request.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// The URL must be http or https, without user information, query or fragment. A path is
    /// kept as a prefix (`https://host/prefix` asks `https://host/prefix/v2/...`).
    pub fn build(mut self) -> Result<ReqwestUpstream, BuildError> {
        if !matches!(self.base.scheme(), "http" | "https") || !self.base.has_host() {
            return Err(BuildError::UnsupportedScheme {
                url: shown(&self.base),
            });
        }
        if !self.base.username().is_empty() || self.base.password().is_some() {
            let host = self.base.host_str().unwrap_or_default().to_owned();
            return Err(BuildError::CredentialsInUrl { host });
        }
        if self.base.query().is_some() || self.base.fragment().is_some() {
            return Err(BuildError::QueryInUrl {
                url: self.base.to_string(),
            });
        }
        if self.page_size == 0 {
            return Err(BuildError::Zero {
                setting: "page_size",
            });
        }
        if self.max_pages == 0 {
            return Err(BuildError::Zero {
                setting: "max_pages",
            });
        }
        if !self.base.path().ends_with('/') {
            let path = format!("{}/", self.base.path());
            self.base.set_path(&path);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .danger_accept_invalid_certs(self.insecure)
            .user_agent(self.user_agent.clone())
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| BuildError::Client {
                source: Box::new(e),
            })?;
        Ok(ReqwestUpstream::from_parts(self, client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        #[rustfmt::skip]
        let cases: &[(&str, Option<&str>)] = &[
            ("http://registry:5000", None),
            ("https://harbor.example/", None),
            ("https://harbor.example/prefix", None),
            ("ftp://registry/", Some("is not http or https")),
            ("http://robot:secret@registry/", Some("carries user information")),
            ("http://registry/?x=1", Some("must not have a query")),
        ];
        for (url, want) in cases {
            let got = ReqwestUpstream::builder(url.parse().expect("url")).build();
            match (got, want) {
                (Ok(_), None) => {}
                (Err(e), Some(want)) => {
                    let msg = e.to_string();
                    assert!(msg.contains(want), "{url}: {msg}");
                    assert!(!msg.contains("secret"), "{url}: {msg}");
                }
                (got, _) => panic!("{url}: {:?}", got.map(|_| ())),
            }
        }
        let zero = ReqwestUpstream::builder("http://r/".parse().expect("url"))
            .page_size(0)
            .build();
        assert!(matches!(
            zero,
            Err(BuildError::Zero {
                setting: "page_size"
            })
        ));
    }
}
