//! [`ReqwestUpstream`], the [`Upstream`] and [`Inventory`] implementation over `reqwest`, and
//! its settings, checked once when it is built.

use std::fmt;
use std::time::Duration;

use http::{Method, StatusCode};
use limits_core::RepositoryName;
use oci_manifest::Digest;
use url::Url;

use crate::auth::{Auth, Credentials};
use crate::error::{BuildError, UpstreamError, shown};
use crate::inventory::Inventory;
use crate::listing::{self, Listing, Pages};
use crate::lookup;
use crate::request::Requester;
use crate::session::Session;
use crate::upstream::{FetchedManifest, Upstream};

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
    base: Url,
    credentials: Option<Credentials>,
    insecure: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_pages: usize,
    page_size: usize,
    user_agent: String,
}

impl ReqwestUpstreamBuilder {
    fn new(base: Url) -> Self {
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
        let requester = Requester::new(
            client,
            self.base,
            self.connect_timeout,
            self.request_timeout,
        );
        Ok(ReqwestUpstream {
            session: Session::new(requester, self.credentials, self.insecure),
            pages: Pages {
                size: self.page_size,
                max: self.max_pages,
            },
        })
    }
}

/// Asks an OCI distribution registry over HTTP, with `reqwest` (rustls).
///
/// Cheap to share: wrap it in an `Arc`; the connection pool, the token cache and what was
/// learned about the upstream's auth scheme are shared by all calls.
///
/// Auth: [`Auth::Forward`] sends the client's header as it is. [`Auth::Configured`] and
/// [`Auth::Anonymous`] learn from the first 401's `WWW-Authenticate` challenge: `Basic` sends the
/// configured credentials; `Bearer` fetches a token from the realm (with the configured
/// credentials as Basic, or none for anonymous), caches it per realm, service and scope until
/// shortly before `expires_in` (default 60 s) runs out, and retries the request once. Later
/// calls send the learned credentials up front.
pub struct ReqwestUpstream {
    session: Session,
    pages: Pages,
}

impl fmt::Debug for ReqwestUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let requester = self.session.requester();
        f.debug_struct("ReqwestUpstream")
            .field("base", &requester.base().as_str())
            .field("credentials", &self.session.credentials())
            .field("insecure", &self.session.insecure())
            .field("connect_timeout", &requester.connect_timeout())
            .field("request_timeout", &requester.request_timeout())
            .field("max_pages", &self.pages.max)
            .field("page_size", &self.pages.size)
            .finish_non_exhaustive()
    }
}

impl ReqwestUpstream {
    /// Starts building a client for the registry at `base_url` (`http://registry:5000`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use upstream_client::{Credentials, ReqwestUpstream};
    ///
    /// let upstream = ReqwestUpstream::builder("https://harbor.example".parse()?)
    ///     .credentials(Credentials::new("robot$gateway", "secret"))
    ///     .connect_timeout(Duration::from_secs(2))
    ///     .request_timeout(Duration::from_secs(10))
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(base_url: Url) -> ReqwestUpstreamBuilder {
        ReqwestUpstreamBuilder::new(base_url)
    }

    /// The upstream URL requests are built on (always ending in `/`).
    pub fn base_url(&self) -> &Url {
        self.session.requester().base()
    }

    /// Whether the registry is up: `GET /v2/` answered 200 or 401 (it wants credentials, which
    /// still means it is there). Sends no credentials.
    pub async fn ping(&self) -> Result<(), UpstreamError> {
        let requester = self.session.requester();
        let url = requester.url("v2/")?;
        let shown_url = shown(&url);
        let response = requester
            .execute(Method::GET, &url, None, None, &shown_url)
            .await?;
        match response.status() {
            StatusCode::OK | StatusCode::UNAUTHORIZED => Ok(()),
            _ => Err(requester
                .failure(response, &shown_url, Auth::Anonymous)
                .await),
        }
    }
}

impl Upstream for ReqwestUpstream {
    async fn tags(
        &self,
        repo: &RepositoryName,
        auth: Auth<'_>,
    ) -> Result<Vec<String>, UpstreamError> {
        listing::list(&self.session, Listing::Tags(repo), self.pages, auth).await
    }

    async fn blob_size(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        auth: Auth<'_>,
    ) -> Result<Option<u64>, UpstreamError> {
        lookup::blob_size(&self.session, repo, digest, auth).await
    }

    async fn manifest_digest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> Result<Option<Digest>, UpstreamError> {
        lookup::manifest_digest(&self.session, repo, reference, auth).await
    }

    async fn manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> Result<Option<FetchedManifest>, UpstreamError> {
        lookup::manifest(&self.session, repo, reference, auth).await
    }
}

impl Inventory for ReqwestUpstream {
    async fn catalog(&self, auth: Auth<'_>) -> Result<Vec<String>, UpstreamError> {
        listing::list(&self.session, Listing::Catalog, self.pages, auth).await
    }

    async fn catalog_namespace(
        &self,
        namespace: &str,
        auth: Auth<'_>,
    ) -> Result<Vec<String>, UpstreamError> {
        listing::list(
            &self.session,
            Listing::CatalogNamespace(namespace),
            self.pages,
            auth,
        )
        .await
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
