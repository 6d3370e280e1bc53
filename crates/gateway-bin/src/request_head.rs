//! Reading a request head for the read relay: parsed once with `httparse`, and relayed only
//! when it is a plain read (see [`read_request`]).

use std::str::FromStr;
use std::time::Duration;

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use registry_api::{ApiRequest, Route};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::forward::connection_tokens;
use crate::server::Watched;

/// Largest request head read here; a larger one goes to hyper, which answers it as it would
/// any other.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a head parsed here.
pub const MAX_HEADERS: usize = 96;

/// What a connection's next request head calls for. (Returned once per request and matched
/// at once: boxing the large variant would cost an allocation per request.)
#[allow(clippy::large_enum_variant)]
pub enum Head {
    /// A plain read, relayed here; the head's length.
    Relay(ReadRequest, usize),
    /// Something hyper must read, from the bytes already read on.
    Handoff,
    /// The connection is over: closed, timed out, or the listener stopping.
    Closed,
}

/// A request head this path relays.
pub struct ReadRequest {
    /// `GET` or `HEAD`.
    pub method: Method,
    /// The origin-form target, as the client wrote it.
    pub uri: Uri,
    /// The client's headers, in order.
    pub headers: HeaderMap,
    /// The connection closes after this answer: the client asked (HTTP/1.1 `Connection:
    /// close`), or did not ask to keep it (HTTP/1.0 without `Connection: keep-alive`).
    pub close: bool,
    /// An HTTP/1.0 client: no chunked answers, and keep-alive said explicitly.
    pub http10: bool,
}

/// Reads until `buf` holds a complete request head, parsed once, and tells what to do
/// with it.
pub async fn read_head(
    conn: &mut Watched,
    buf: &mut BytesMut,
    stop: &mut watch::Receiver<bool>,
    timeout: Duration,
) -> Head {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if !buf.is_empty() {
            if buf.starts_with(b"PRI ") {
                return Head::Handoff;
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(buf) {
                Ok(httparse::Status::Complete(len)) => {
                    return read_request(&request)
                        .map_or(Head::Handoff, |read| Head::Relay(read, len));
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                _ => return Head::Handoff,
            }
        }
        buf.reserve(4096);
        let read = tokio::select! {
            read = tokio::time::timeout_at(deadline, conn.read_buf(buf)) => read,
            _ = stop.changed(), if buf.is_empty() => return Head::Closed,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Head::Closed,
            Ok(Ok(_)) => {}
        }
    }
}

/// The request in `head` when this path relays it: a plain HTTP/1.1 or HTTP/1.0 read without a
/// body.
pub fn read_request(request: &httparse::Request<'_, '_>) -> Option<ReadRequest> {
    let http10 = match request.version? {
        1 => false,
        0 => true,
        _ => return None,
    };
    let method = match request.method? {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        _ => return None,
    };
    let target = request.path?;
    if !target.starts_with('/') {
        return None;
    }
    let uri = Uri::from_str(target).ok()?;
    let api = ApiRequest::parse(method.as_str(), uri.path(), uri.query()).ok()?;
    if !matches!(api.route, Route::Read) || api.forward_path.is_some() {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for h in request.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        if name == header::TRANSFER_ENCODING || name == header::EXPECT || name == header::UPGRADE {
            return None;
        }
        if name == header::CONTENT_LENGTH && value.as_bytes() != b"0" {
            return None;
        }
        if name == header::CONNECTION && value.to_str().is_err() {
            return None;
        }
        headers.append(name, value);
    }
    if headers.get_all(header::CONTENT_LENGTH).iter().count() > 1 {
        return None;
    }
    let (mut close, mut keep_alive) = (false, false);
    for token in connection_tokens(&headers) {
        close |= token.eq_ignore_ascii_case("close");
        keep_alive |= token.eq_ignore_ascii_case("keep-alive");
    }
    Some(ReadRequest {
        method,
        uri,
        headers,
        close: close || (http10 && !keep_alive),
        http10,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_reads_are_relayed() {
        let relayed = |head: &str| {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            matches!(
                request.parse(head.as_bytes()),
                Ok(httparse::Status::Complete(_))
            ) && read_request(&request).is_some()
        };
        assert!(relayed("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(relayed("HEAD /v2/a/b/blobs/sha256:00 HTTP/1.1\r\n\r\n"));
        assert!(relayed(
            "GET /v2/a/tags/list?n=10 HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(relayed(
            "GET /v2/a/manifests/v1 HTTP/1.1\r\nConnection: close\r\n\r\n"
        ));
        // Reads go to the registry as the client wrote them, on either path: the registry
        // decodes and redirects them itself.
        assert!(relayed("GET /v2/a%2Fb/manifests/v1 HTTP/1.1\r\n\r\n"));
        assert!(relayed("GET /v2//a/manifests/v1 HTTP/1.1\r\n\r\n"));
        assert!(relayed(
            "HEAD /v2/a/manifests/v1 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
        ));
        for head in [
            // Writes, whatever they look like.
            "PUT /v2/a/manifests/v1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "POST /v2/a/blobs/uploads/ HTTP/1.1\r\n\r\n",
            "PATCH /v2/a/blobs/uploads/x HTTP/1.1\r\n\r\n",
            "DELETE /v2/a/manifests/v1 HTTP/1.1\r\n\r\n",
            "get /v2/ HTTP/1.1\r\n\r\n",
            "OPTIONS /v2/ HTTP/1.1\r\n\r\n",
            // Bodies, expectations, upgrades.
            "GET /v2/ HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
            // Other versions and target forms.
            "GET /v2/ HTTP/2.0\r\n\r\n",
            "GET http://registry/v2/ HTTP/1.1\r\n\r\n",
            "GET * HTTP/1.1\r\n\r\n",
            // Paths the gateway answers itself.
            "GET /debug/vars HTTP/1.1\r\n\r\n",
            // Incomplete.
            "GET /v2/ HTTP/1.1\r\n",
        ] {
            assert!(!relayed(head), "{head:?}");
        }
    }
}
