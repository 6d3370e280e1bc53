//! A token issuer for distribution's `auth: token` mode.
//!
//! It checks Basic credentials against its users and answers `GET /token?service=..&scope=..`
//! with a JWT signed (ES256) by a key whose self-signed certificate the registry trusts through
//! `rootcertbundle`; the token's header carries that certificate as `x5c`. Valid users get every
//! action the scopes ask for; a request without credentials gets a token with no access; wrong
//! credentials get 401.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;
use url::Url;

use crate::TestUser;
use crate::server::{BackgroundServer, Handler};
use crate::tools::OPENSSL;

/// The issuer name written into tokens and the registry's config.
pub const ISSUER: &str = "testkit-token-issuer";
/// The service name of the registry (the tokens' audience).
pub const SERVICE: &str = "testkit-registry";

/// A running token issuer; stops when dropped.
#[derive(Debug)]
pub struct TokenIssuer {
    state: Arc<IssuerState>,
    cert_path: PathBuf,
    server: BackgroundServer,
}

struct IssuerState {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    cert_der: Vec<u8>,
    users: Vec<TestUser>,
    lifetime: Duration,
    requests: AtomicUsize,
    next_jti: AtomicU64,
}

impl std::fmt::Debug for IssuerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerState")
            .field("users", &self.users)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// Creates a key and certificate in `dir` and starts serving tokens on a free loopback
    /// port. Tokens live `lifetime` (the answer's `expires_in`).
    ///
    /// # Panics
    /// When `openssl` is missing or fails.
    pub fn start(dir: &Path, users: Vec<TestUser>, lifetime: Duration) -> Self {
        let openssl = OPENSSL.require();
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap_or_else(|e| panic!("token issuer: cannot generate a key: {e}"));
        let key_path = dir.join("token-key.pem");
        let cert_path = dir.join("token-cert.pem");
        std::fs::write(&key_path, pem("PRIVATE KEY", pkcs8.as_ref()))
            .unwrap_or_else(|e| panic!("token issuer: cannot write {}: {e}", key_path.display()));
        let output = Command::new(openssl)
            .args(["req", "-x509", "-new", "-sha256", "-days", "3650"])
            .args(["-subj", "/CN=testkit-token-issuer", "-key"])
            .arg(&key_path)
            .arg("-out")
            .arg(&cert_path)
            .output()
            .unwrap_or_else(|e| panic!("token issuer: cannot run openssl: {e}"));
        assert!(
            output.status.success(),
            "token issuer: openssl req -x509 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let cert_pem = std::fs::read_to_string(&cert_path)
            .unwrap_or_else(|e| panic!("token issuer: cannot read {}: {e}", cert_path.display()));
        let cert_der = pem_body(&cert_pem);
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap_or_else(|e| panic!("token issuer: cannot load its key: {e}"));
        let state = Arc::new(IssuerState {
            key,
            rng,
            cert_der,
            users,
            lifetime,
            requests: AtomicUsize::new(0),
            next_jti: AtomicU64::new(1),
        });
        let handler_state = state.clone();
        let handler: Handler = Arc::new(move |request| {
            let reply = handler_state.answer(&request);
            Box::pin(async move { reply })
        });
        let server = BackgroundServer::start("testkit-token-issuer", handler);
        Self {
            state,
            cert_path,
            server,
        }
    }

    /// The realm URL the registry sends clients to (`http://127.0.0.1:<port>/token`).
    pub fn realm(&self) -> Url {
        let url = format!("http://{}/token", self.server.addr());
        Url::parse(&url).unwrap_or_else(|e| panic!("token issuer: bad realm {url}: {e}"))
    }

    /// The PEM certificate the registry must trust (`rootcertbundle`).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// How many token requests arrived so far, refused ones included.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// A signed token for `subject` granting what `scopes` ask
    /// (`repository:project-1/app:pull,push`), without going through HTTP.
    pub fn issue(&self, subject: &str, scopes: &[&str]) -> String {
        self.state.token(subject, scopes.iter().copied())
    }
}

impl IssuerState {
    fn answer(&self, request: &Request<Bytes>) -> Response<Full<Bytes>> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if request.uri().path() != "/token" {
            return reply(StatusCode::NOT_FOUND, json!({"details": "not found"}));
        }
        let query = request.uri().query().unwrap_or_default();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((_, service)) = pairs.iter().find(|(k, _)| k == "service") {
            if service != SERVICE {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"details": "unknown service"}),
                );
            }
        }
        let scopes = pairs
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.as_str());
        let Some(authorization) = request.headers().get(header::AUTHORIZATION) else {
            let token = self.token("", std::iter::empty());
            return self.token_reply(token);
        };
        match self.user(authorization.as_bytes()) {
            Some(user) => {
                let token = self.token(&user.username, scopes);
                self.token_reply(token)
            }
            None => {
                let mut response = reply(
                    StatusCode::UNAUTHORIZED,
                    json!({"details": "invalid username or password"}),
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Basic realm=\"testkit-token-issuer\""),
                );
                response
            }
        }
    }

    fn user(&self, authorization: &[u8]) -> Option<&TestUser> {
        let text = std::str::from_utf8(authorization).ok()?;
        let (scheme, encoded) = text.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = STANDARD.decode(encoded.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (username, password) = decoded.split_once(':')?;
        self.users
            .iter()
            .find(|u| u.username == username && u.password == password)
    }

    fn token_reply(&self, token: String) -> Response<Full<Bytes>> {
        reply(
            StatusCode::OK,
            json!({
                "token": token,
                "access_token": token,
                "expires_in": self.lifetime.as_secs(),
            }),
        )
    }

    fn token<'a>(&self, subject: &str, scopes: impl Iterator<Item = &'a str>) -> String {
        let access: Vec<serde_json::Value> = scopes
            .filter_map(|scope| {
                let (rest, actions) = scope.rsplit_once(':')?;
                let (kind, name) = rest.split_once(':')?;
                let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
                Some(json!({"type": kind, "name": name, "actions": actions}))
            })
            .collect();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let jti = self.next_jti.fetch_add(1, Ordering::SeqCst);
        let header =
            json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&self.cert_der)]});
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + self.lifetime.as_secs().max(1),
            "nbf": now.saturating_sub(10),
            "iat": now,
            "jti": format!("testkit-{jti}"),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .unwrap_or_else(|e| panic!("token issuer: cannot sign: {e}"));
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn pem(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_body(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD
        .decode(body.trim())
        .unwrap_or_else(|e| panic!("token issuer: openssl wrote an unreadable certificate: {e}"))
}
