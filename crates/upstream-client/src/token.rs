//! Bearer tokens: where to fetch them, fetching one, how to read the answer, and the cache.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, StatusCode};
use url::Url;

use crate::auth::{AuthKind, Credentials};
use crate::challenge::Challenge;
use crate::error::{TokenProblem, UpstreamError, excerpt, shown};
use crate::request::Requester;

/// Lifetime of a token whose answer has no (or a zero) `expires_in`, as the distribution token
/// specification says.
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// Largest token endpoint answer read.
const MAX_TOKEN_BYTES: usize = 1 << 20;

/// The longest a cached token is dropped before it expires, to cover clock skew and the time a
/// request takes.
const MAX_EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// Where and for which service a Bearer challenge says to fetch tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BearerParams {
    pub(crate) realm: Url,
    pub(crate) service: Option<String>,
}

impl BearerParams {
    /// Reads realm and service from a Bearer challenge.
    ///
    /// A plain http realm is refused when the upstream itself is https and `insecure` is off:
    /// the configured password would otherwise leave over an unencrypted connection.
    pub(crate) fn from_challenge(
        challenge: &Challenge,
        upstream: &Url,
        insecure: bool,
    ) -> Result<Self, TokenProblem> {
        let raw = challenge.param("realm").ok_or(TokenProblem::MissingRealm)?;
        let realm = Url::parse(raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| TokenProblem::InvalidRealm {
                realm: raw.to_owned(),
            })?;
        if realm.scheme() == "http" && upstream.scheme() == "https" && !insecure {
            return Err(TokenProblem::InsecureRealm);
        }
        let service = challenge.param("service").map(str::to_owned);
        Ok(Self { realm, service })
    }

    /// The realm as shown in errors and logs: no user information, no query.
    pub(crate) fn shown(&self) -> String {
        let mut url = self.realm.clone();
        url.set_query(None);
        shown(&url)
    }
}

/// A token endpoint's JSON answer (distribution token specification, and the OAuth2 form).
#[derive(Debug, serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token ready to send, and how long it lives.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) header: HeaderValue,
    pub(crate) lifetime: Duration,
}

/// Reads a token endpoint's answer: `token` or else `access_token`, and `expires_in` seconds.
pub(crate) fn parse_token_response(body: &[u8]) -> Result<Token, TokenProblem> {
    let not_json = |e: serde_json::Error| TokenProblem::NotJson {
        excerpt: excerpt(body),
        source: Box::new(e),
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(not_json)?;
    if !value.is_object() {
        return Err(TokenProblem::NotJson {
            excerpt: excerpt(body),
            source: "expected a JSON object".into(),
        });
    }
    let answer: TokenResponse = serde_json::from_value(value).map_err(not_json)?;
    let token = answer
        .token
        .filter(|t| !t.is_empty())
        .or(answer.access_token.filter(|t| !t.is_empty()))
        .ok_or(TokenProblem::MissingToken)?;
    let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| TokenProblem::InvalidToken)?;
    header.set_sensitive(true);
    let lifetime = match answer.expires_in {
        None | Some(0) => DEFAULT_TOKEN_LIFETIME,
        Some(secs) => Duration::from_secs(secs),
    };
    Ok(Token { header, lifetime })
}

/// Fetches a token for `scope` from the realm `params` names: with `credentials` as Basic
/// auth and their user name as `account`, or anonymously; `kind` is what an error reports.
pub(crate) async fn fetch_token(
    requester: &Requester,
    params: &BearerParams,
    scope: &str,
    credentials: Option<&Credentials>,
    kind: AuthKind,
) -> Result<Token, UpstreamError> {
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
    let response = requester
        .execute(Method::GET, &url, basic.as_ref(), None, &realm)
        .await?;
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(UpstreamError::TokenRefused {
            realm,
            status,
            credentials: kind,
        });
    }
    if status != StatusCode::OK {
        return Err(UpstreamError::Token {
            realm,
            problem: TokenProblem::Status { status },
        });
    }
    let body = requester
        .read_body(response, MAX_TOKEN_BYTES, &realm)
        .await?;
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
    Ok(token)
}

/// What a cached token was fetched for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    pub(crate) realm: Url,
    pub(crate) service: Option<String>,
    pub(crate) scope: String,
    /// Whether the configured credentials fetched it (otherwise it is an anonymous token).
    pub(crate) configured: bool,
}

/// Tokens per (realm, service, scope, credentials), each until shortly before it expires.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<TokenKey, (HeaderValue, Instant)>>,
}

impl TokenCache {
    /// A cached token that is still good.
    pub(crate) fn get(&self, key: &TokenKey) -> Option<HeaderValue> {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        tokens.retain(|_, (_, until)| *until > now);
        tokens.get(key).map(|(header, _)| header.clone())
    }

    /// Keeps a token until shortly before its lifetime ends: a tenth of it, at most 10 s.
    pub(crate) fn insert(&self, key: TokenKey, token: &Token) {
        let margin = (token.lifetime / 10).min(MAX_EXPIRY_MARGIN);
        let until = Instant::now() + token.lifetime.saturating_sub(margin);
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.insert(key, (token.header.clone(), until));
    }

    /// Forgets a token the upstream refused.
    pub(crate) fn remove(&self, key: &TokenKey) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::parse_www_authenticate;

    #[test]
    fn token_answers() {
        #[rustfmt::skip]
        let cases: &[(&str, Option<(&str, u64)>)] = &[
            (r#"{"token":"abc","expires_in":300}"#, Some(("Bearer abc", 300))),
            (r#"{"access_token":"xyz"}"#, Some(("Bearer xyz", 60))),
            (r#"{"token":"","access_token":"xyz","expires_in":0}"#, Some(("Bearer xyz", 60))),
            (r#"{"token":"t","access_token":"a","issued_at":"2024-01-01T00:00:00Z"}"#, Some(("Bearer t", 60))),
            (r#"{"expires_in":300}"#, None),
            ("<html>garbage</html>", None),
            (r#"{"token":"bad\nvalue"}"#, None),
            (r#"["token"]"#, None),
        ];
        for (body, want) in cases {
            let got = parse_token_response(body.as_bytes());
            match (got, want) {
                (Ok(t), Some((header, secs))) => {
                    assert_eq!(t.header.to_str().ok(), Some(*header), "{body}");
                    assert_eq!(t.lifetime, Duration::from_secs(*secs), "{body}");
                    assert!(t.header.is_sensitive());
                }
                (Err(_), None) => {}
                (got, _) => panic!("{body}: {got:?}"),
            }
        }
    }

    #[test]
    fn realm_rules() {
        let https: Url = "https://registry.example/".parse().expect("url");
        let http: Url = "http://registry:5000/".parse().expect("url");
        #[rustfmt::skip]
        let cases: &[(&str, &Url, bool, bool)] = &[
            (r#"Bearer realm="https://auth.example/token",service="s""#, &https, false, true),
            (r#"Bearer realm="http://auth.example/token",service="s""#, &https, false, false),
            (r#"Bearer realm="http://auth.example/token",service="s""#, &https, true, true),
            (r#"Bearer realm="http://auth.example/token""#, &http, false, true),
            (r#"Bearer service="s""#, &http, false, false),
            (r#"Bearer realm="/relative/token""#, &http, false, false),
            (r#"Bearer realm="ftp://auth/token""#, &http, false, false),
        ];
        for (header, upstream, insecure, ok) in cases {
            let c = parse_www_authenticate(header).expect("parses");
            let got = BearerParams::from_challenge(&c[0], upstream, *insecure);
            assert_eq!(got.is_ok(), *ok, "{header} insecure={insecure}: {got:?}");
        }
    }

    #[test]
    fn cache_expires() {
        let cache = TokenCache::default();
        let key = TokenKey {
            realm: "http://a/token".parse().expect("url"),
            service: None,
            scope: "repository:a:pull".into(),
            configured: true,
        };
        let header = HeaderValue::from_static("Bearer t");
        cache.insert(
            key.clone(),
            &Token {
                header: header.clone(),
                lifetime: Duration::ZERO,
            },
        );
        assert!(cache.get(&key).is_none());
        cache.insert(
            key.clone(),
            &Token {
                header,
                lifetime: Duration::from_secs(60),
            },
        );
        assert!(cache.get(&key).is_some());
        let other = TokenKey {
            configured: false,
            ..key.clone()
        };
        assert!(cache.get(&other).is_none());
        cache.remove(&key);
        assert!(cache.get(&key).is_none());
    }
}
