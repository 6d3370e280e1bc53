//! HTTP/1 answer heads from the upstream: reading and parsing them, and the framing of the
//! body that follows (RFC 9112 section 6.3).

use std::io;
use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::refusal::Refusal;
use crate::relay::request::{MAX_HEADERS, visible};
use crate::upstream::target::connection_tokens;

use super::unreachable;
use super::write::plain_answer;

/// Largest response head read here; a larger one is a bad upstream answer.
const MAX_HEAD: usize = 64 * 1024;

/// How long a response body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body (an answer to `HEAD`, a 204 or a 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// The upstream's answer head, ready for the client.
pub(super) struct UpstreamHead {
    pub(super) status: StatusCode,
    /// The fields, when the header code must see them; `None` when they were written as
    /// they are into the `lines` given to [`read_response_head`].
    pub(super) headers: Option<HeaderMap>,
    pub(super) framing: Framing,
    /// The upstream did not ask to close the connection.
    pub(super) reusable: bool,
}

#[derive(Debug)]
pub(super) enum ResponseError {
    /// The connection closed before any byte of an answer.
    Closed,
    Io(io::Error),
    /// The upstream's answer is not valid HTTP/1.1.
    Invalid(String),
}

impl ResponseError {
    pub(super) fn refusal(self) -> Refusal {
        match self {
            ResponseError::Closed => Refusal::UpstreamClosed,
            ResponseError::Io(err) => unreachable(&err),
            ResponseError::Invalid(why) => {
                tracing::warn!(error = %why, "proxy: invalid answer from the upstream");
                Refusal::UpstreamInvalidAnswer { why }
            }
        }
    }
}

/// Reads an answer head into `buf` (informational 1xx answers skipped) and removes it from
/// there, leaving any body bytes that came with it.
pub(super) async fn read_response_head(
    upstream: &mut TcpStream,
    method: &Method,
    buf: &mut BytesMut,
    lines: &mut Vec<u8>,
) -> Result<UpstreamHead, ResponseError> {
    loop {
        let parsed = {
            // Left uninitialised: the parser writes the fields it finds.
            let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut []);
            let config = httparse::ParserConfig::default();
            match config.parse_response_with_uninit_headers(&mut response, buf, &mut headers) {
                Ok(httparse::Status::Complete(len)) => {
                    Some(parse_response(&response, method, len, lines))
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => None,
                Ok(httparse::Status::Partial) => {
                    return Err(ResponseError::Invalid("answer head too large".into()));
                }
                Err(err) => return Err(ResponseError::Invalid(err.to_string())),
            }
        };
        match parsed {
            Some(Ok((len, None))) => buf.advance(len),
            Some(Ok((len, Some(head)))) => {
                buf.advance(len);
                return Ok(head);
            }
            Some(Err(why)) => return Err(ResponseError::Invalid(why)),
            None => {
                buf.reserve(8 * 1024);
                match upstream.read_buf(buf).await {
                    Ok(0) if buf.is_empty() => return Err(ResponseError::Closed),
                    Ok(0) => {
                        return Err(ResponseError::Invalid(
                            "connection closed in the answer head".into(),
                        ));
                    }
                    Ok(_) => {}
                    Err(err) if buf.is_empty() && is_reset(&err) => {
                        return Err(ResponseError::Closed);
                    }
                    Err(err) => return Err(ResponseError::Io(err)),
                }
            }
        }
    }
}

fn is_reset(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// A parsed answer head: its length and, unless it is informational, the answer.
type ParsedHead = (usize, Option<UpstreamHead>);

fn parse_response(
    response: &httparse::Response<'_, '_>,
    method: &Method,
    len: usize,
    lines: &mut Vec<u8>,
) -> Result<ParsedHead, String> {
    let code = response.code.ok_or("no status")?;
    let status = StatusCode::from_u16(code).map_err(|e| e.to_string())?;
    if status.is_informational() {
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err("unexpected 101 Switching Protocols".into());
        }
        return Ok((len, None));
    }
    if plain_answer(response.headers, lines) {
        // No `Connection` and no `Transfer-Encoding` among them.
        let framing = if bodiless(status, method) {
            Framing::Empty
        } else {
            let lengths = response
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("content-length"));
            content_length(lengths.map(|h| h.value))?.map_or(Framing::UntilClose, Framing::Length)
        };
        return Ok((
            len,
            Some(UpstreamHead {
                status,
                headers: None,
                framing,
                reusable: response.version == Some(1),
            }),
        ));
    }
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    for h in response.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_bytes(h.value).map_err(|e| e.to_string())?;
        headers.append(name, value);
    }
    let framing = framing(&headers, status, method)?;
    let close = connection_tokens(&headers).any(|token| token.eq_ignore_ascii_case("close"));
    let reusable = response.version == Some(1) && !close;
    Ok((
        len,
        Some(UpstreamHead {
            status,
            headers: Some(headers),
            framing,
            reusable,
        }),
    ))
}

/// The framing of an answer's body (RFC 9112 section 6.3).
fn framing(headers: &HeaderMap, status: StatusCode, method: &Method) -> Result<Framing, String> {
    if bodiless(status, method) {
        return Ok(Framing::Empty);
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        let last = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|coding| !coding.is_empty());
        return Ok(match last {
            Some(coding) if coding.eq_ignore_ascii_case("chunked") => Framing::Chunked,
            _ => Framing::UntilClose,
        });
    }
    let lengths = headers.get_all(header::CONTENT_LENGTH);
    Ok(
        match content_length(lengths.iter().map(HeaderValue::as_bytes))? {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        },
    )
}

/// An answer without a body whatever its fields say.
fn bodiless(status: StatusCode, method: &Method) -> bool {
    *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// The length the `Content-Length` fields agree on, if any.
fn content_length<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<Option<u64>, String> {
    let mut length = None;
    for value in values {
        for part in visible(value).ok_or("invalid Content-Length")?.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("invalid Content-Length \"{part}\""));
            }
            let n: u64 = part
                .parse()
                .map_err(|_| format!("invalid Content-Length \"{part}\""))?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length values".into());
            }
            length = Some(n);
        }
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_framing() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (n, v) in pairs {
                map.append(
                    HeaderName::from_bytes(n.as_bytes()).expect("name"),
                    HeaderValue::from_str(v).expect("value"),
                );
            }
            map
        };
        let ok = StatusCode::OK;
        let get = Method::GET;
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            StatusCode,
            &'a Method,
            Result<Framing, ()>,
        );
        let cases: &[Case<'_>] = &[
            (
                &[("content-length", "12")],
                ok,
                &get,
                Ok(Framing::Length(12)),
            ),
            (
                &[("content-length", "12")],
                ok,
                &Method::HEAD,
                Ok(Framing::Empty),
            ),
            (&[], StatusCode::NOT_MODIFIED, &get, Ok(Framing::Empty)),
            (&[], StatusCode::NO_CONTENT, &get, Ok(Framing::Empty)),
            (
                &[("content-length", "12, 12")],
                ok,
                &get,
                Ok(Framing::Length(12)),
            ),
            (
                &[("content-length", "12"), ("content-length", "13")],
                ok,
                &get,
                Err(()),
            ),
            (&[("content-length", "+12")], ok, &get, Err(())),
            (&[("content-length", "")], ok, &get, Err(())),
            (
                &[("transfer-encoding", "chunked")],
                ok,
                &get,
                Ok(Framing::Chunked),
            ),
            (
                &[
                    ("transfer-encoding", "gzip, Chunked"),
                    ("content-length", "3"),
                ],
                ok,
                &get,
                Ok(Framing::Chunked),
            ),
            (
                &[("transfer-encoding", "chunked, gzip")],
                ok,
                &get,
                Ok(Framing::UntilClose),
            ),
            (&[], ok, &get, Ok(Framing::UntilClose)),
        ];
        for (pairs, status, method, want) in cases {
            let got = framing(&headers(pairs), *status, method).map_err(|_| ());
            assert_eq!(got, *want, "{pairs:?} {status} {method}");
        }
    }
}
