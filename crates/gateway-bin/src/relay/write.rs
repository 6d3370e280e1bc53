//! The heads the relay writes: the request sent upstream and the answer's head sent back to
//! the client.
//!
//! Both are what the hyper path's header code makes of them ([`Target::request_headers`],
//! [`Target::response_headers`], on an `http::HeaderMap`). Most heads need nothing from that
//! code but its fixed additions: their field names are all different and none is hop-by-hop,
//! `X-Forwarded-*` or `Location`. Those are written straight from the bytes received, in their
//! order, names in lower case, as a `HeaderMap` would give them back, without building one
//! (which costs an allocation per field). Any other head goes through the `HeaderMap` code.
//! The tests render every kind of head both ways and compare the bytes.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};

use crate::upstream::target::Target;

use super::framing::Framing;

/// Field names that send a head through the `HeaderMap` code: hop-by-hop fields (including
/// `Connection`, which names more) and those the header code sets or rewrites.
const SPECIAL: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "location",
];

/// What the header code adds to every request head, found once from the code itself.
#[derive(Debug)]
pub(super) struct Additions {
    /// The value of `X-Forwarded-Proto`.
    forwarded_proto: Vec<u8>,
}

impl Additions {
    pub(super) fn of(target: &Target) -> Self {
        let mut headers = HeaderMap::new();
        target.request_headers(
            &mut headers,
            &Uri::from_static("/"),
            ([127, 0, 0, 1], 1).into(),
        );
        let forwarded_proto = headers
            .get("x-forwarded-proto")
            .map_or_else(Vec::new, |v| v.as_bytes().to_vec());
        Self { forwarded_proto }
    }
}

/// Whether fields can be written as received: names all different (ignoring case), none of
/// [`SPECIAL`] except a `Connection` of only `close`/`keep-alive` when `connection_ok`.
/// Returns the index of that `Connection` field, if any.
fn plain<'h>(fields: &[httparse::Header<'h>], connection_ok: bool) -> Result<Option<usize>, ()> {
    let mut connection = None;
    for (i, field) in fields.iter().enumerate() {
        let name = field.name;
        if fields[..i].iter().any(|earlier| {
            earlier.name.len() == name.len() && earlier.name.eq_ignore_ascii_case(name)
        }) {
            return Err(());
        }
        if !crate::relay::request::field_name_ok(name.as_bytes())
            || !crate::relay::request::field_value_ok(field.value)
        {
            return Err(());
        }
        if name.eq_ignore_ascii_case("connection") && connection_ok {
            let tokens = crate::relay::request::visible(field.value).ok_or(())?;
            let plain_tokens = tokens.split(',').map(str::trim).all(|token| {
                token.eq_ignore_ascii_case("close") || token.eq_ignore_ascii_case("keep-alive")
            });
            if !plain_tokens {
                return Err(());
            }
            connection = Some(i);
            continue;
        }
        // A field named like a `Connection` token would be removed too.
        let special = |s: &&str| s.len() == name.len() && name.eq_ignore_ascii_case(s);
        if name.eq_ignore_ascii_case("close") || SPECIAL.iter().any(special) {
            return Err(());
        }
    }
    Ok(connection)
}

fn write_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    let start = out.len();
    out.extend_from_slice(name.as_bytes());
    out[start..].make_ascii_lowercase();
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes `ip` as its `Display` writes it (IPv4 by hand: the formatting machinery costs more
/// than the rest of the head).
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(_) => {
            let _ = write!(out, "{ip}");
        }
    }
}

/// The fields, as a `HeaderMap` (names and values were checked when the head was read).
fn header_map(fields: &[httparse::Header<'_>]) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(fields.len());
    for field in fields {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(field.name.as_bytes()),
            HeaderValue::from_bytes(field.value),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

pub(super) fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Writes into `out` the request head sent upstream for a client's read: its method and
/// target, its `fields` prepared exactly as the hyper path prepares them.
pub(super) fn upstream_head(
    out: &mut Vec<u8>,
    (target, additions): (&Target, &Additions),
    (method, uri): (&Method, &Uri),
    fields: &[httparse::Header<'_>],
    remote: SocketAddr,
) {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        uri.path_and_query()
            .map_or("/", |pq| pq.as_str())
            .as_bytes(),
    );
    out.extend_from_slice(b" HTTP/1.1\r\n");
    match plain(fields, true) {
        Ok(connection) => {
            // `HeaderMap::remove` moves the last field into the removed one's place.
            let last = fields.len().saturating_sub(1);
            let mut host = None;
            for i in 0..fields.len() {
                if connection == Some(last) && i == last {
                    break;
                }
                let field = match connection {
                    Some(c) if i == c => &fields[last],
                    Some(_) if i == last => continue,
                    _ => &fields[i],
                };
                if field.name.eq_ignore_ascii_case("host") {
                    host = Some(field.value);
                }
                write_field(out, field.name, field.value);
            }
            out.extend_from_slice(b"x-forwarded-for: ");
            write_ip(out, remote.ip());
            out.extend_from_slice(b"\r\n");
            write_field(out, "x-forwarded-proto", &additions.forwarded_proto);
            match host {
                Some(host) => write_field(out, "x-forwarded-host", host),
                None => write_field(out, "host", target.authority().as_bytes()),
            }
        }
        Err(()) => write_mapped(out, target, uri, fields, remote),
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the request's fields as the header code prepares them in a `HeaderMap`.
fn write_mapped(
    out: &mut Vec<u8>,
    target: &Target,
    uri: &Uri,
    fields: &[httparse::Header<'_>],
    remote: SocketAddr,
) {
    let mut headers = header_map(fields);
    target.request_headers(&mut headers, uri, remote);
    if !headers.contains_key(header::HOST) {
        // What hyper's client adds when the request has no Host.
        if let Ok(host) = HeaderValue::from_str(target.authority()) {
            headers.insert(header::HOST, host);
        }
    }
    write_headers(out, &headers);
}

/// Writes the fields of an answer into `lines` (cleared first) and returns `true` when they
/// can go to the client as they are; `false` when the header code must see them. Fields that
/// go as they are include no `Transfer-Encoding`, so their framing is never chunked.
pub(super) fn plain_answer(fields: &[httparse::Header<'_>], lines: &mut Vec<u8>) -> bool {
    lines.clear();
    if plain(fields, false).is_err() {
        return false;
    }
    for field in fields {
        write_field(lines, field.name, field.value);
    }
    true
}

/// Writes into `out` the answer's head for the client: its fields are `lines` (from
/// [`plain_answer`]) or `headers`.
pub(super) fn response_head(
    out: &mut Vec<u8>,
    target: &Target,
    (status, headers, lines): (StatusCode, Option<HeaderMap>, &[u8]),
    framing: Framing,
    close: bool,
    http10: bool,
) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let Some(mut headers) = headers else {
        out.extend_from_slice(lines);
        if close || framing == Framing::UntilClose {
            out.extend_from_slice(b"connection: close\r\n");
        } else if http10 {
            out.extend_from_slice(b"connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        return;
    };
    target.response_headers(&mut headers);
    if framing == Framing::Chunked {
        headers.remove(header::CONTENT_LENGTH);
        if !http10 {
            headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
    }
    if close || framing == Framing::UntilClose {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    } else if http10 {
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    write_headers(out, &headers);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::new(&"http://registry:5000".parse().expect("url")).expect("target")
    }

    /// Every request head is written as the `HeaderMap` code writes it, whichever way it goes.
    #[test]
    fn addresses_are_written_as_displayed() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "127.0.0.1",
            "255.255.255.255",
            "192.168.100.9",
            "::1",
            "fe80::1:2",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            let mut out = Vec::new();
            write_ip(&mut out, ip);
            assert_eq!(String::from_utf8_lossy(&out), ip.to_string());
        }
    }

    #[test]
    fn request_heads_match_the_header_code() {
        let target = target();
        let additions = Additions::of(&target);
        let remote: SocketAddr = "10.1.2.3:4567".parse().expect("addr");
        let heads = [
            "GET /v2/ HTTP/1.1\r\nHost: gw:8080\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\n\r\n",
            "GET /v2/a/blobs/sha256:00?x=1 HTTP/1.1\r\nHost: gw\r\nUser-Agent: docker/27\r\nAccept: */*\r\n\r\n",
            "HEAD /v2/a/manifests/v1 HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: gw\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n",
            "HEAD /v2/a/manifests/v1 HTTP/1.0\r\nHost: gw\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nConnection: close, keep-alive\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nConnection: x-a\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\nHost: a\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nHost: a\r\nAccept: a\r\nX-A: 1\r\naccept: b\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Proto: https\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nX-Forwarded-Host: outer\r\nHost: a\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nHost: a\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\nTE: trailers\r\nTrailer: x\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nClose: x\r\nConnection: close\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nHost: a\r\nX-Odd: caf\u{e9}\tb\r\nContent-Length: 0\r\n\r\n",
            "GET /v2/ HTTP/1.1\r\nLocation: /x\r\nHost: a\r\n\r\n",
        ];
        for head in heads {
            let mut fields = [httparse::EMPTY_HEADER; 32];
            let mut request = httparse::Request::new(&mut fields);
            assert!(
                request
                    .parse(head.as_bytes())
                    .is_ok_and(|s| s.is_complete()),
                "{head:?}"
            );
            let method: Method = request.method.expect("method").parse().expect("method");
            let uri: Uri = request.path.expect("path").parse().expect("uri");
            let mut direct = Vec::new();
            upstream_head(
                &mut direct,
                (&target, &additions),
                (&method, &uri),
                request.headers,
                remote,
            );
            let mut mapped = Vec::new();
            write_mapped(&mut mapped, &target, &uri, request.headers, remote);
            let start = direct.iter().position(|&b| b == b'\n').expect("line") + 1;
            assert_eq!(
                String::from_utf8_lossy(&direct[start..direct.len() - 2]),
                String::from_utf8_lossy(&mapped),
                "{head:?}"
            );
        }
    }

    /// Every answer head is written as the `HeaderMap` code writes it, whichever way it goes.
    #[test]
    fn answer_heads_match_the_header_code() {
        let target = target();
        let answers = [
            "HTTP/1.1 200 OK\r\nAccept-Ranges: bytes\r\nContent-Length: 1024\r\nDocker-Content-Digest: sha256:00\r\nEtag: \"x\"\r\nDate: now\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://registry:5000/v2/x\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-Odd: caf\u{e9}\r\nContent-Length: 3\r\n\r\n",
        ];
        for answer in answers {
            for (framing, close, http10) in [
                (Framing::Length(3), false, false),
                (Framing::Length(3), true, false),
                (Framing::Length(3), false, true),
                (Framing::Empty, false, true),
                (Framing::UntilClose, false, false),
                (Framing::Chunked, false, false),
                (Framing::Chunked, true, true),
            ] {
                let mut fields = [httparse::EMPTY_HEADER; 32];
                let mut response = httparse::Response::new(&mut fields);
                assert!(response.parse(answer.as_bytes()).is_ok(), "{answer:?}");
                let status = StatusCode::from_u16(response.code.expect("code")).expect("status");
                let mut lines = Vec::new();
                let plain = plain_answer(response.headers, &mut lines);
                if plain && framing == Framing::Chunked {
                    // A chunked answer has a Transfer-Encoding field: never plain.
                    continue;
                }
                let mut direct = Vec::new();
                let headers = (!plain).then(|| header_map(response.headers));
                response_head(
                    &mut direct,
                    &target,
                    (status, headers, &lines),
                    framing,
                    close,
                    http10,
                );
                let mut mapped = Vec::new();
                let headers = Some(header_map(response.headers));
                response_head(
                    &mut mapped,
                    &target,
                    (status, headers, &[]),
                    framing,
                    close,
                    http10,
                );
                assert_eq!(
                    String::from_utf8_lossy(&direct),
                    String::from_utf8_lossy(&mapped),
                    "{answer:?} {framing:?} close {close} http10 {http10}"
                );
            }
        }
    }
}
