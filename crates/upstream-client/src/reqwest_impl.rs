//! The [`Upstream`] implementation over `reqwest`.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, StatusCode, header};
use limits_core::RepositoryName;
use oci_manifest::Digest;
use url::Url;

use crate::auth::{Auth, Credentials};
use crate::builder::ReqwestUpstreamBuilder;
use crate::challenge::{Challenge, parse_www_authenticate};
use crate::error::{ResponseProblem, TokenProblem, UpstreamError};
use crate::inventory::{Inventory, is_reference};
use crate::link::parse_link_next;
use crate::token::{BearerParams, TokenCache, TokenKey, excerpt, parse_token_response};
use crate::upstream::{FetchedManifest, MANIFEST_ACCEPT, Upstream};

/// Largest tag list or catalog page read (a page of 1000 long tags is about 130 KiB).
const MAX_PAGE_BYTES: usize = 32 << 20;
/// Largest token endpoint answer read.
const MAX_TOKEN_BYTES: usize = 1 << 20;
/// Largest error body read to find a distribution error code.
const MAX_ERROR_BYTES: usize = 64 << 10;

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
    client: reqwest::Client,
    base: Url,
    credentials: Option<Credentials>,
    insecure: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_pages: usize,
    page_size: usize,
    scheme: Mutex<Learned>,
    tokens: TokenCache,
}

/// What the upstream's challenges said about its auth scheme.
#[derive(Debug, Clone)]
enum Learned {
    Unknown,
    Basic,
    Bearer(BearerParams),
}

impl fmt::Debug for ReqwestUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestUpstream")
            .field("base", &self.base.as_str())
            .field("credentials", &self.credentials)
            .field("insecure", &self.insecure)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_pages", &self.max_pages)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
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

/// One tag list page.
#[derive(Debug, serde::Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// One catalog page.
#[derive(Debug, serde::Deserialize)]
struct CatalogPage {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

/// A paginated listing.
#[derive(Debug, Clone, Copy)]
enum Listing<'a> {
    /// `GET /v2/<name>/tags/list`
    Tags(&'a RepositoryName),
    /// `GET /v2/_catalog`
    Catalog,
}

impl Listing<'_> {
    fn path(self) -> String {
        match self {
            Listing::Tags(repo) => format!("v2/{repo}/tags/list"),
            Listing::Catalog => "v2/_catalog".to_owned(),
        }
    }

    fn scope(self) -> String {
        match self {
            Listing::Tags(repo) => format!("repository:{repo}:pull"),
            Listing::Catalog => "registry:catalog:*".to_owned(),
        }
    }

    /// The entries of one page's body.
    fn entries(self, body: &[u8]) -> Result<Vec<String>, ResponseProblem> {
        match self {
            Listing::Tags(_) => serde_json::from_slice::<TagList>(body)
                .map(|page| page.tags.unwrap_or_default())
                .map_err(|e| ResponseProblem::TagList {
                    excerpt: excerpt(body),
                    source: Box::new(e),
                }),
            Listing::Catalog => serde_json::from_slice::<CatalogPage>(body)
                .map(|page| page.repositories.unwrap_or_default())
                .map_err(|e| ResponseProblem::Catalog {
                    excerpt: excerpt(body),
                    source: Box::new(e),
                }),
        }
    }
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

    pub(crate) fn from_parts(b: ReqwestUpstreamBuilder, client: reqwest::Client) -> Self {
        Self {
            client,
            base: b.base,
            credentials: b.credentials,
            insecure: b.insecure,
            connect_timeout: b.connect_timeout,
            request_timeout: b.request_timeout,
            max_pages: b.max_pages,
            page_size: b.page_size,
            scheme: Mutex::new(Learned::Unknown),
            tokens: TokenCache::default(),
        }
    }

    /// The upstream URL requests are built on (always ending in `/`).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Whether the registry is up: `GET /v2/` answered 200 or 401 (it wants credentials, which
    /// still means it is there). Sends no credentials.
    pub async fn ping(&self) -> Result<(), UpstreamError> {
        let url = self.url("v2/")?;
        let shown_url = shown(&url);
        let response = self
            .execute(Method::GET, &url, None, None, &shown_url)
            .await?;
        match response.status() {
            StatusCode::OK | StatusCode::UNAUTHORIZED => Ok(()),
            _ => Err(self.failure(response, &shown_url, Auth::Anonymous).await),
        }
    }

    fn url(&self, path: &str) -> Result<Url, UpstreamError> {
        self.base
            .join(path)
            .map_err(|source| UpstreamError::InvalidUrl {
                value: path.to_owned(),
                source,
            })
    }

    fn credentials_for(&self, auth: Auth<'_>) -> Option<&Credentials> {
        match auth {
            Auth::Configured => self.credentials.as_ref(),
            Auth::Anonymous | Auth::Forward(_) => None,
        }
    }

    fn learned(&self) -> Learned {
        self.scheme
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn learn(&self, learned: Learned) {
        *self.scheme.lock().unwrap_or_else(PoisonError::into_inner) = learned;
    }

    fn token_key(&self, params: &BearerParams, scope: &str, auth: Auth<'_>) -> TokenKey {
        TokenKey {
            realm: params.realm.clone(),
            service: params.service.clone(),
            scope: scope.to_owned(),
            configured: self.credentials_for(auth).is_some(),
        }
    }

    /// Sends one request, with `accept` as its `Accept` header when given; transport failures
    /// become typed errors.
    async fn execute(
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
    async fn read_body(
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
    async fn failure(
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

    /// The credentials to send before any challenge, from what earlier calls learned.
    async fn upfront(
        &self,
        auth: Auth<'_>,
        scope: &str,
    ) -> Result<Option<HeaderValue>, UpstreamError> {
        match (auth, self.learned()) {
            (Auth::Forward(value), _) => Ok(Some(value.clone())),
            (_, Learned::Unknown) => Ok(None),
            (_, Learned::Basic) => Ok(self
                .credentials_for(auth)
                .and_then(Credentials::basic_header)),
            (_, Learned::Bearer(params)) => {
                let key = self.token_key(&params, scope, auth);
                match self.tokens.get(&key) {
                    Some(token) => Ok(Some(token)),
                    None => self.fetch_token(&params, scope, key, auth).await.map(Some),
                }
            }
        }
    }

    /// Sends a request with the credentials `auth` selects, answering one 401 challenge.
    ///
    /// Returns any answer but 401; a 401 that remains becomes [`UpstreamError::Unauthorized`].
    async fn send(
        &self,
        method: Method,
        url: &Url,
        auth: Auth<'_>,
        scope: &str,
        accept: Option<&'static str>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let shown_url = shown(url);
        let first = self.upfront(auth, scope).await?;
        let response = self
            .execute(method.clone(), url, first.as_ref(), accept, &shown_url)
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED || matches!(auth, Auth::Forward(_)) {
            return Ok(response);
        }
        let challenges = challenges(&response, &shown_url)?;
        let retry = if let Some(bearer) = challenges.iter().find(|c| c.is("bearer")) {
            let params = BearerParams::from_challenge(bearer, &self.base, self.insecure).map_err(
                |problem| UpstreamError::Token {
                    realm: bearer.param("realm").unwrap_or_default().to_owned(),
                    problem,
                },
            )?;
            self.learn(Learned::Bearer(params.clone()));
            let key = self.token_key(&params, scope, auth);
            self.tokens.remove(&key);
            let asked = bearer
                .param("scope")
                .filter(|s| !s.trim().is_empty())
                .unwrap_or(scope);
            Some(self.fetch_token(&params, asked, key, auth).await?)
        } else if challenges.iter().any(|c| c.is("basic")) {
            self.learn(Learned::Basic);
            let basic = self
                .credentials_for(auth)
                .and_then(Credentials::basic_header);
            basic.filter(|b| first.as_ref() != Some(b))
        } else {
            None
        };
        let Some(retry) = retry else {
            return Err(self.failure(response, &shown_url, auth).await);
        };
        let response = self
            .execute(method, url, Some(&retry), accept, &shown_url)
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.failure(response, &shown_url, auth).await);
        }
        Ok(response)
    }

    /// Fetches a token for `scope` from the realm and caches it under `key`.
    async fn fetch_token(
        &self,
        params: &BearerParams,
        scope: &str,
        key: TokenKey,
        auth: Auth<'_>,
    ) -> Result<HeaderValue, UpstreamError> {
        let credentials = self.credentials_for(auth);
        let realm = params.shown();
        let mut url = params.realm.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = &params.service {
                query.append_pair("service", service);
            }
            for s in scope.split_ascii_whitespace() {
                query.append_pair("scope", s);
            }
            if let Some(c) = credentials {
                query.append_pair("account", c.username());
            }
        }
        let basic = credentials.and_then(Credentials::basic_header);
        let response = self
            .execute(Method::GET, &url, basic.as_ref(), None, &realm)
            .await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(UpstreamError::TokenRefused {
                realm,
                status,
                credentials: auth.kind(),
            });
        }
        if status != StatusCode::OK {
            return Err(UpstreamError::Token {
                realm,
                problem: TokenProblem::Status { status },
            });
        }
        let body = self.read_body(response, MAX_TOKEN_BYTES, &realm).await?;
        let token = parse_token_response(&body).map_err(|problem| UpstreamError::Token {
            realm: realm.clone(),
            problem,
        })?;
        tracing::debug!(
            realm,
            service = params.service.as_deref(),
            scope,
            lifetime_s = token.lifetime.as_secs(),
            "fetched upstream token"
        );
        self.tokens.insert(key, &token);
        Ok(token.header)
    }

    /// Resolves a page's `Link` next target against the page's URL, refusing other origins.
    fn next_page(&self, page: &Url, link: &str) -> Result<Option<Url>, UpstreamError> {
        let malformed = |source: crate::error::BoxError| UpstreamError::MalformedLink {
            url: shown(page),
            value: link.to_owned(),
            source,
        };
        let Some(target) = parse_link_next(link).map_err(|e| malformed(Box::new(e)))? else {
            return Ok(None);
        };
        let next = page.join(&target).map_err(|e| malformed(Box::new(e)))?;
        if next.origin() != self.base.origin() {
            return Err(UpstreamError::LinkOutsideUpstream {
                target: shown(&next),
            });
        }
        Ok(Some(next))
    }

    /// Every entry of a paginated listing (a tag list or the catalog), following `Link`.
    async fn list(
        &self,
        listing: Listing<'_>,
        auth: Auth<'_>,
    ) -> Result<Vec<String>, UpstreamError> {
        let mut url = self.url(&listing.path())?;
        url.query_pairs_mut()
            .append_pair("n", &self.page_size.to_string());
        let first = shown(&url);
        let scope = listing.scope();
        let mut entries = Vec::new();
        for page in 1..=self.max_pages {
            let shown_url = shown(&url);
            let response = self.send(Method::GET, &url, auth, &scope, None).await?;
            match response.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND if page == 1 && matches!(listing, Listing::Tags(_)) => {
                    let error = self.failure(response, &shown_url, auth).await;
                    return match &error {
                        UpstreamError::Status {
                            code: Some(code), ..
                        } if code == "NAME_UNKNOWN" => Ok(Vec::new()),
                        _ => Err(error),
                    };
                }
                _ => return Err(self.failure(response, &shown_url, auth).await),
            }
            let links: Vec<&str> = response
                .headers()
                .get_all(header::LINK)
                .iter()
                .map(|v| v.to_str().unwrap_or("\u{fffd}"))
                .collect();
            let next = if links.is_empty() {
                None
            } else {
                self.next_page(&url, &links.join(", "))?
            };
            let body = self.read_body(response, MAX_PAGE_BYTES, &shown_url).await?;
            let page_entries =
                listing
                    .entries(&body)
                    .map_err(|problem| UpstreamError::InvalidResponse {
                        url: shown_url.clone(),
                        problem,
                    })?;
            entries.extend(page_entries);
            match next {
                Some(next) => url = next,
                None => {
                    match listing {
                        Listing::Tags(repo) => {
                            tracing::debug!(repository = %repo, tags = entries.len(), pages = page, "listed upstream tags");
                        }
                        Listing::Catalog => {
                            tracing::debug!(
                                repositories = entries.len(),
                                pages = page,
                                "listed upstream catalog"
                            );
                        }
                    }
                    return Ok(entries);
                }
            }
        }
        Err(UpstreamError::TooManyPages {
            limit: self.max_pages,
            url: first,
        })
    }

    /// Sends `method` to `v2/<repo>/<rest>` with pull scope: `None` for 404, the answer and
    /// its URL as shown in errors for 200, an error otherwise.
    async fn pull(
        &self,
        method: Method,
        repo: &RepositoryName,
        rest: &str,
        accept: Option<&'static str>,
        auth: Auth<'_>,
    ) -> Result<Option<(reqwest::Response, String)>, UpstreamError> {
        let url = self.url(&format!("v2/{repo}/{rest}"))?;
        let shown_url = shown(&url);
        let scope = format!("repository:{repo}:pull");
        let response = self.send(method, &url, auth, &scope, accept).await?;
        match response.status() {
            StatusCode::OK => Ok(Some((response, shown_url))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.failure(response, &shown_url, auth).await),
        }
    }

    async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> Result<Option<FetchedManifest>, UpstreamError> {
        if !is_reference(reference) {
            return Err(UpstreamError::InvalidReference {
                reference: reference.to_owned(),
            });
        }
        let rest = format!("manifests/{reference}");
        let Some((response, shown_url)) = self
            .pull(Method::GET, repo, &rest, Some(MANIFEST_ACCEPT), auth)
            .await?
        else {
            return Ok(None);
        };
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = self
            .read_body(response, oci_manifest::MAX_MANIFEST_BYTES, &shown_url)
            .await?;
        Ok(Some(FetchedManifest { media_type, body }))
    }

    async fn head_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        auth: Auth<'_>,
    ) -> Result<Option<u64>, UpstreamError> {
        let rest = format!("blobs/{digest}");
        let Some((response, shown_url)) = self.pull(Method::HEAD, repo, &rest, None, auth).await?
        else {
            return Ok(None);
        };
        header_value(
            &response,
            header::CONTENT_LENGTH.as_str(),
            &shown_url,
            ResponseProblem::MissingContentLength,
            |value| ResponseProblem::InvalidContentLength { value },
        )
        .map(Some)
    }

    async fn head_manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> Result<Option<Digest>, UpstreamError> {
        let rest = format!("manifests/{reference}");
        let Some((response, shown_url)) = self
            .pull(Method::HEAD, repo, &rest, Some(MANIFEST_ACCEPT), auth)
            .await?
        else {
            return Ok(None);
        };
        header_value(
            &response,
            "docker-content-digest",
            &shown_url,
            ResponseProblem::MissingDigest,
            |value| ResponseProblem::InvalidDigest { value },
        )
        .map(Some)
    }
}

/// The value of header `name` of an answer, parsed: `missing` when absent, `invalid` with the
/// value as received when it does not parse.
fn header_value<T: std::str::FromStr>(
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
fn challenges(
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

impl Upstream for ReqwestUpstream {
    async fn tags(
        &self,
        repo: &RepositoryName,
        auth: Auth<'_>,
    ) -> Result<Vec<String>, UpstreamError> {
        self.list(Listing::Tags(repo), auth).await
    }

    async fn blob_size(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        auth: Auth<'_>,
    ) -> Result<Option<u64>, UpstreamError> {
        self.head_blob(repo, digest, auth).await
    }

    async fn manifest_digest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> Result<Option<Digest>, UpstreamError> {
        self.head_manifest(repo, reference, auth).await
    }

    async fn manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        auth: Auth<'_>,
    ) -> Result<Option<FetchedManifest>, UpstreamError> {
        self.get_manifest(repo, reference, auth).await
    }
}

impl Inventory for ReqwestUpstream {
    async fn catalog(&self, auth: Auth<'_>) -> Result<Vec<String>, UpstreamError> {
        self.list(Listing::Catalog, auth).await
    }
}
