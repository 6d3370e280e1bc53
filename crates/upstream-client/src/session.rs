//! Requests with the credentials a call asks for: what the upstream's challenges taught about
//! its auth scheme, the cached Bearer tokens, and one retry after a 401.

use std::sync::{Mutex, PoisonError};

use http::{HeaderValue, Method, StatusCode};
use url::Url;

use crate::auth::{Auth, Credentials};
use crate::error::{UpstreamError, shown};
use crate::request::{Requester, challenges};
use crate::token::{BearerParams, TokenCache, TokenKey, fetch_token};

/// Sends requests with [`Auth`]: the client's header as it is, nothing, or the configured
/// credentials as Basic auth or through the Bearer token flow, whichever the upstream asks for.
#[derive(Debug)]
pub(crate) struct Session {
    requester: Requester,
    credentials: Option<Credentials>,
    insecure: bool,
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

impl Session {
    /// A session that has learned nothing yet. `insecure` allows a plain http token realm
    /// behind an https upstream.
    pub(crate) fn new(
        requester: Requester,
        credentials: Option<Credentials>,
        insecure: bool,
    ) -> Self {
        Self {
            requester,
            credentials,
            insecure,
            scheme: Mutex::new(Learned::Unknown),
            tokens: TokenCache::default(),
        }
    }

    /// What sends the requests.
    pub(crate) fn requester(&self) -> &Requester {
        &self.requester
    }

    /// The configured credentials.
    pub(crate) fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Whether certificate checks are off and a plain http realm is allowed.
    pub(crate) fn insecure(&self) -> bool {
        self.insecure
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
    pub(crate) async fn send(
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
            .requester
            .execute(method.clone(), url, first.as_ref(), accept, &shown_url)
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED || matches!(auth, Auth::Forward(_)) {
            return Ok(response);
        }
        let challenges = challenges(&response, &shown_url)?;
        let retry = if let Some(bearer) = challenges.iter().find(|c| c.is("bearer")) {
            let params = BearerParams::from_challenge(bearer, self.requester.base(), self.insecure)
                .map_err(|problem| UpstreamError::Token {
                    realm: bearer.param("realm").unwrap_or_default().to_owned(),
                    problem,
                })?;
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
            return Err(self.requester.failure(response, &shown_url, auth).await);
        };
        let response = self
            .requester
            .execute(method, url, Some(&retry), accept, &shown_url)
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.requester.failure(response, &shown_url, auth).await);
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
        let token = fetch_token(&self.requester, params, scope, credentials, auth.kind()).await?;
        self.tokens.insert(key, &token);
        Ok(token.header)
    }
}
