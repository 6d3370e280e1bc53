//! Reading a request head for the read relay: bounded, parsed once with `httparse`, and
//! relayed only when it is a plain read (see [`read_request`]).
//!
//! The head is read into a buffer that grows by doubling from [`FIRST_BUFFER`] up to the
//! head bound (`--max-header-bytes`) and never past it; a connection that has sent nothing
//! holds no buffer at all. A head that does not end within the bound is answered `431`, as
//! hyper answers one on the connections it reads. It is parsed again only when the new bytes
//! may end it (hyper's own shortcut), so a head sent a byte at a time costs no more than one
//! sent at once.
//!
//! Nothing is allocated per header: the fields are checked in place with the same rules as
//! `http`'s `HeaderName` and `HeaderValue` ([`field_name_ok`], [`field_value_ok`]), and the
//! relay renders the head it sends upstream from the same bytes. The deadline of a head is a
//! timer the connection keeps and resets, not one registered anew for every request.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use bytes::BytesMut;
use http::{Method, Uri};
use registry_api::{ApiRequest, Route};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Sleep;

use crate::io::Watched;

/// Most headers in a head parsed here.
pub const MAX_HEADERS: usize = 96;
/// The first allocation of a head buffer.
const FIRST_BUFFER: usize = 8 * 1024;
/// The answer to a head over the bound, as hyper words it.
const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// What a connection's next request head calls for. (Returned once per request and matched
/// at once: boxing the large variant would cost an allocation per request.)
#[allow(clippy::large_enum_variant)]
pub enum Head {
    /// A plain read, relayed here; the head's length.
    Relay(ReadRequest, usize),
    /// Something hyper must read, from the bytes already read on.
    Handoff,
    /// The head does not end within the bound: answer `431` and close.
    TooLarge,
    /// The connection is over: closed, timed out, or the listener stopping.
    Closed,
}

/// A request head this path relays.
pub struct ReadRequest {
    /// `GET` or `HEAD`.
    pub method: Method,
    /// The origin-form target, as the client wrote it. (The headers are read again from
    /// the head's bytes when the request is sent on: they are not copied.)
    pub uri: Uri,
    /// The connection closes after this answer: the client asked (HTTP/1.1 `Connection:
    /// close`), or did not ask to keep it (HTTP/1.0 without `Connection: keep-alive`).
    pub close: bool,
    /// An HTTP/1.0 client: no chunked answers, and keep-alive said explicitly.
    pub http10: bool,
}

/// Reads until `buf` holds a complete request head of at most `bound` bytes, parsed once,
/// and tells what to do with it, within `timeout` (kept by `deadline`, the connection's head
/// timer, reset here). `buf` may hold bytes already (pipelined after the last request) and
/// never grows past `bound`.
pub async fn read_head(
    conn: &mut Watched,
    buf: &mut BytesMut,
    stop: &mut watch::Receiver<bool>,
    (mut deadline, timeout): (Pin<&mut Sleep>, Duration),
    bound: usize,
) -> Head {
    let mut armed = false;
    // Bytes of `buf` already looked at, none of which ended the head.
    let mut seen = 0;
    loop {
        if !buf.is_empty() {
            if let Some(head) = examine(buf, seen, bound) {
                return head;
            }
            seen = buf.len();
        }
        if !armed {
            // Reset only when the head is not in hand yet: moving a registered timer later
            // is one atomic operation, no lock.
            deadline
                .as_mut()
                .reset(tokio::time::Instant::now() + timeout);
            armed = true;
        }
        let read = tokio::select! {
            biased;
            read = read_more(conn, buf, bound) => read,
            () = deadline.as_mut() => return Head::Closed,
            _ = stop.changed(), if buf.is_empty() => return Head::Closed,
        };
        match read {
            Ok(0) | Err(_) => return Head::Closed,
            Ok(_) => {}
        }
    }
}

/// What the bytes in `buf` call for, or `None` to read more. `seen` bytes of it were looked
/// at before.
fn examine(buf: &[u8], seen: usize, bound: usize) -> Option<Head> {
    if buf.starts_with(b"PRI ") {
        return Some(Head::Handoff);
    }
    let full = buf.len() >= bound;
    if seen > 0 && !full && !may_end(buf, seen) {
        return None;
    }
    // Left uninitialised: the parser writes the fields it finds.
    let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => {
            Some(read_request(&request).map_or(Head::Handoff, |read| Head::Relay(read, len)))
        }
        Ok(httparse::Status::Partial) => full.then_some(Head::TooLarge),
        // hyper answers what `httparse` refuses (400, or 431 for too many headers).
        Err(_) => Some(Head::Handoff),
    }
}

/// Whether the bytes after the first `seen` may end a head (an empty line), as hyper checks
/// before parsing again.
fn may_end(buf: &[u8], seen: usize) -> bool {
    let from = seen.saturating_sub(3);
    buf[from..].windows(2).any(|w| w == b"\n\n" || w == b"\n\r")
}

/// Reads more of a head into `buf`, at most up to `bound` bytes; allocates the buffer only
/// once the socket has something to read, and doubles it as needed.
async fn read_more(conn: &mut Watched, buf: &mut BytesMut, bound: usize) -> std::io::Result<usize> {
    if buf.len() == buf.capacity() {
        if buf.capacity() == 0 {
            conn.tcp().readable().await?;
        }
        let capacity = (buf.capacity() * 2).clamp(FIRST_BUFFER.min(bound), bound);
        let mut bigger = BytesMut::with_capacity(capacity);
        bigger.extend_from_slice(buf);
        *buf = bigger;
    }
    let room = bound.saturating_sub(buf.len()) as u64;
    (&mut *conn).take(room).read_buf(buf).await
}

/// Answers a head over the bound with `431` and closes the connection.
pub async fn refuse_too_large(conn: &mut Watched) {
    if conn.write_all(TOO_LARGE).await.is_ok() {
        let _ = conn.shutdown().await;
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
    let (mut close, mut keep_alive, mut lengths) = (false, false, 0);
    for h in request.headers.iter() {
        let (name, value) = (h.name, h.value);
        if !field_name_ok(name.as_bytes()) || !field_value_ok(value) {
            return None;
        }
        let is = |other: &str| name.eq_ignore_ascii_case(other);
        if is("transfer-encoding") || is("expect") || is("upgrade") {
            return None;
        }
        if is("content-length") {
            lengths += 1;
            if value != b"0" || lengths > 1 {
                return None;
            }
        }
        if is("connection") {
            for token in visible(value)?.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    Some(ReadRequest {
        method,
        uri,
        close: close || (http10 && !keep_alive),
        http10,
    })
}

/// Whether `name` is a valid field name, as `http::HeaderName::from_bytes` decides it (a
/// non-empty token of at most 65,535 bytes).
pub fn field_name_ok(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() < 1 << 16
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` is a valid field value, as `http::HeaderValue::from_bytes` decides it.
pub fn field_value_ok(value: &[u8]) -> bool {
    value.iter().all(|&b| b >= 32 && b != 127 || b == b'\t')
}

/// `value` as text when it is visible ASCII, as `http::HeaderValue::to_str` decides it.
pub fn visible(value: &[u8]) -> Option<&str> {
    if value.iter().all(|&b| (32..127).contains(&b) || b == b'\t') {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the relay makes of `bytes` arriving in two reads split at `at` (each cut at the
    /// bound, as `read_more` cuts them).
    fn outcome(bytes: &[u8], at: usize, bound: usize) -> &'static str {
        let (mut buf, mut seen) = (Vec::new(), 0);
        for mut part in [&bytes[..at], &bytes[at..]] {
            while !part.is_empty() {
                let take = part.len().min(bound - buf.len());
                buf.extend_from_slice(&part[..take]);
                part = &part[take..];
                match examine(&buf, seen, bound) {
                    Some(Head::Relay(..)) => return "relay",
                    Some(Head::Handoff) => return "handoff",
                    Some(Head::TooLarge) => return "431",
                    Some(Head::Closed) => return "closed",
                    None => seen = buf.len(),
                }
            }
        }
        "more"
    }

    #[test]
    fn heads_are_bounded_however_they_arrive() {
        let get = "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n";
        let cases: &[(&str, usize, &str)] = &[
            (get, 1024, "relay"),
            (get, get.len(), "relay"),
            (get, get.len() - 1, "431"),
            ("GET /v2/ HTTP/1.1\nHost: x\n\n", 1024, "relay"),
            ("GET /v2/ HTTP/1.1\r\nHost: x\r\n", 1024, "more"),
            (
                "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaa",
                40,
                "431",
            ),
            (
                "PUT /v2/a/manifests/v1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                1024,
                "handoff",
            ),
            ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 1024, "handoff"),
            ("\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}", 1024, "handoff"),
            // Refused by httparse: hyper answers it (400).
            (
                "GET /v2/ HTTP/1.1\r\nBad Header: x\r\n\r\n",
                1024,
                "handoff",
            ),
            (
                "GET /v2/ HTTP/1.1\r\nBad Header: x\r\nX-Pad: aaaaaaaaaaaaaaaa",
                50,
                "handoff",
            ),
        ];
        for (head, bound, want) in cases {
            for at in 0..=head.len() {
                assert_eq!(
                    outcome(head.as_bytes(), at, *bound),
                    *want,
                    "{head:?} bound {bound} split at {at}"
                );
            }
        }
    }

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
