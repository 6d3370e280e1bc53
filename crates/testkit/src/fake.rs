//! A scripted HTTP server, for what a real registry cannot be made to do: a malformed header,
//! endless pagination, a 500, a hang, a garbage body.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use http_body_util::Full;
use url::Url;

use crate::server::{BackgroundServer, Handler};

/// A request the fake server received.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    /// The method.
    pub method: Method,
    /// The request target (`/v2/a/tags/list?n=10`).
    pub uri: Uri,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl FakeRequest {
    /// The path.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.uri.query()?;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the fake server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    delay: Duration,
}

impl Reply {
    /// An empty answer with this status.
    ///
    /// # Panics
    /// When `status` is not a valid HTTP status.
    pub fn status(status: u16) -> Self {
        let status = StatusCode::from_u16(status)
            .unwrap_or_else(|e| panic!("testkit: invalid status {status}: {e}"));
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            delay: Duration::ZERO,
        }
    }

    /// A JSON answer with this status.
    pub fn json(status: u16, body: &str) -> Self {
        Self::status(status)
            .header("content-type", "application/json")
            .body(body.to_owned())
    }

    /// A distribution error answer: `{"errors":[{"code":..,"message":..}]}`.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
        Self::json(status, &body.to_string())
    }

    /// Adds a header (any visible bytes, so malformed values are possible).
    ///
    /// # Panics
    /// When the name is invalid or the value holds control characters.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|e| panic!("testkit: invalid header name {name:?}: {e}"));
        let value = HeaderValue::from_str(value)
            .unwrap_or_else(|e| panic!("testkit: invalid header value {value:?}: {e}"));
        self.headers.push((name, value));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Waits this long before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Never answers (until the server is dropped).
    pub fn hang() -> Self {
        Self::status(200).delay(Duration::from_secs(24 * 3600))
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

/// A loopback HTTP/1.1 server that answers with a closure and records every request.
///
/// It runs on its own thread, so it works from any runtime; dropping it stops it, hanging
/// answers included.
///
/// ```
/// use testkit::{FakeServer, Reply};
///
/// let server = FakeServer::start(|request, base| match request.path() {
///     "/v2/" => Reply::status(200),
///     _ => Reply::error(404, "NAME_UNKNOWN", &format!("unknown at {base}")),
/// });
/// assert!(server.url().as_str().starts_with("http://127.0.0.1:"));
/// assert_eq!(server.requests().len(), 0);
/// ```
pub struct FakeServer {
    server: BackgroundServer,
    requests: Arc<Mutex<Vec<FakeRequest>>>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl FakeServer {
    /// Starts answering on a free loopback port. The closure gets each request and the server's
    /// own base URL (`http://127.0.0.1:<port>/`), to point headers back at itself.
    pub fn start<F>(answer: F) -> Self
    where
        F: Fn(&FakeRequest, &Url) -> Reply + Send + Sync + 'static,
    {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let base = Arc::new(Mutex::new(None::<Url>));
        let base_in_handler = base.clone();
        let handler: Handler = Arc::new(move |request: http::Request<Bytes>| {
            let (parts, body) = request.into_parts();
            let request = FakeRequest {
                method: parts.method,
                uri: parts.uri,
                headers: parts.headers,
                body,
            };
            let base = base_in_handler
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let base = base.unwrap_or_else(|| panic!("testkit: fake server has no address yet"));
            let reply = answer(&request, &base);
            recorded
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(request);
            Box::pin(async move {
                if !reply.delay.is_zero() {
                    tokio::time::sleep(reply.delay).await;
                }
                reply.into_response()
            })
        });
        let server = BackgroundServer::start("testkit-fake-server", handler);
        let url = format!("http://{}/", server.addr());
        let url = Url::parse(&url).unwrap_or_else(|e| panic!("testkit: bad URL {url}: {e}"));
        *base.lock().unwrap_or_else(PoisonError::into_inner) = Some(url);
        Self { server, requests }
    }

    /// `http://127.0.0.1:<port>/`
    pub fn url(&self) -> Url {
        let url = format!("http://{}/", self.server.addr());
        Url::parse(&url).unwrap_or_else(|e| panic!("testkit: bad URL {url}: {e}"))
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<FakeRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
