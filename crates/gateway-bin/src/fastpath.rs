//! The pass-through read path: `GET` and `HEAD` requests that the gateway forwards without
//! inspecting anything, relayed over HTTP/1.1 without hyper, with response bodies moved from
//! the upstream's socket to the client's by `splice(2)`.
//!
//! Pulls are most of a registry's traffic and the gateway checks nothing on them, so they
//! should cost as little as a relay can. Every connection starts here: the request head is
//! read within the head bound and parsed with `httparse` ([`crate::request_head`]), routed with
//! the same [`registry_api::ApiRequest::parse`] as every other request, and only a plain read
//! (HTTP/1.1 or 1.0, origin-form target, no body, no `Expect` or `Upgrade`,
//! [`registry_api::Route::Read`]) is relayed here, with the headers prepared by the same
//! [`Target`] code as the hyper path. A head that does not end within the bound is answered
//! `431`, as hyper would answer it. Anything else (a write, a refusal, h2c, a head `httparse`
//! rejects) hands the connection, with the bytes already read, to hyper for the rest of its
//! life; hyper then reads it exactly as it would have from the start. The fast path therefore
//! never decides anything about a write.
//!
//! Upstream connections are kept in a small pool of idle sockets. A response body of known
//! length is spliced through a pipe, socket to socket, without being copied into the process;
//! chunked and close-delimited bodies (tag lists, error answers) are copied through a buffer,
//! with the chunked framing followed so that the connection can be reused (and the chunks
//! decoded for an HTTP/1.0 client).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::answer::{Reason, Refusal};
use crate::connections::Connection;
use crate::forward::{Target, connection_tokens};
use crate::metrics::Metrics;
use crate::request_head::{Head, MAX_HEADERS, ReadRequest, read_head, refuse_too_large};
use crate::io::{Prefixed, Watched};

/// Largest response head read here; a larger one is a bad upstream answer.
const MAX_HEAD: usize = 64 * 1024;
/// Bodies at least this long are spliced; shorter ones are copied (creating a pipe costs
/// more than copying a few kilobytes).
const SPLICE_MIN: u64 = 64 * 1024;
/// The pipe's size for splicing: the kernel's default ceiling for unprivileged processes.
const PIPE_SIZE: usize = 1024 * 1024;
/// Size of the copy buffer for bodies that are not spliced.
const COPY_BUFFER: usize = 64 * 1024;
/// Idle upstream connections kept for reuse.
const MAX_IDLE: usize = 64;
/// How long an idle upstream connection is kept (hyper's client keeps them as long).
const IDLE_KEEP: Duration = Duration::from_secs(90);

/// What happened to a client connection.
#[derive(Debug)]
pub enum Outcome {
    /// The connection is finished: closed by the client, after an error, or at shutdown.
    Closed,
    /// The connection carries a request this path does not relay: hyper serves the rest of
    /// it, starting with the bytes already read.
    Handoff(Prefixed<Watched>),
}

/// The pass-through read path of the proxy listener.
#[derive(Debug)]
pub struct ReadPath {
    target: Target,
    /// `host:port` of the upstream, for connecting.
    address: String,
    connect_timeout: Duration,
    upstream_timeout: Duration,
    header_read_timeout: Duration,
    /// Largest request head read.
    max_header_bytes: usize,
    idle: Mutex<Vec<(TcpStream, Instant)>>,
    metrics: Arc<Metrics>,
}

/// How long a response body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (an answer to `HEAD`, a 204 or a 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// Why a relayed request failed.
enum RelayError {
    /// Nothing was sent to the client yet: it gets this answer.
    Answer(Refusal),
    /// The answer was under way: the client connection can only be closed.
    Broken(io::Error),
}

impl ReadPath {
    /// The read path towards `target`, or `None` when the upstream is reached over TLS (the
    /// bytes cannot be spliced; hyper serves every request then).
    pub fn new(
        target: Target,
        connect_timeout: Duration,
        upstream_timeout: Duration,
        header_read_timeout: Duration,
        max_header_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Option<Self> {
        let address = target.plain_http_address()?;
        Some(Self {
            target,
            address,
            connect_timeout,
            upstream_timeout,
            header_read_timeout,
            max_header_bytes,
            idle: Mutex::new(Vec::new()),
            metrics,
        })
    }

    /// Serves a client connection for as long as it carries plain reads; returns what is left
    /// of it. A relayed request is in flight on `connection` until its answer is through.
    pub async fn serve(
        &self,
        mut conn: Watched,
        remote: SocketAddr,
        connection: &Arc<Connection>,
        stop: &mut watch::Receiver<bool>,
    ) -> Outcome {
        let mut buf = BytesMut::new();
        let mut scratch = BytesMut::new();
        loop {
            if *stop.borrow() && buf.is_empty() {
                return Outcome::Closed;
            }
            let head = read_head(
                &mut conn,
                &mut buf,
                stop,
                self.header_read_timeout,
                self.max_header_bytes,
            )
            .await;
            let (request, head_len) = match head {
                Head::Relay(request, len) => (request, len),
                Head::Handoff => return Outcome::Handoff(Prefixed::new(buf.freeze(), conn)),
                Head::TooLarge => {
                    tracing::debug!(%remote, bound = self.max_header_bytes, "request head over the bound: 431");
                    refuse_too_large(&mut conn).await;
                    return Outcome::Closed;
                }
                Head::Closed => return Outcome::Closed,
            };
            // Shed while its head arrived: the connection is closing.
            let Some(_busy) = connection.begin() else {
                return Outcome::Closed;
            };
            buf.advance(head_len);
            if buf.is_empty() {
                // An idle connection holds no head buffer.
                buf = BytesMut::new();
            }
            let keep = self.relay(&mut conn, request, remote, &mut scratch).await;
            if !keep {
                return Outcome::Closed;
            }
        }
    }

    /// Relays one read; returns whether the client connection stays open.
    async fn relay(
        &self,
        conn: &mut Watched,
        request: ReadRequest,
        remote: SocketAddr,
        scratch: &mut BytesMut,
    ) -> bool {
        let _in_flight = self.metrics.in_flight();
        let method = request.method.clone();
        let close = request.close;
        match self.exchange(conn, request, remote, scratch).await {
            Ok((status, keep)) => {
                self.metrics.request(&method, status);
                keep && !close
            }
            Err(RelayError::Answer(refusal)) => {
                let status = refusal.status();
                self.metrics.refusal(refusal.reason.label());
                self.metrics.request(&method, status);
                let written = write_refusal(conn, refusal, method == Method::HEAD, close).await;
                written.is_ok() && !close
            }
            Err(RelayError::Broken(err)) => {
                tracing::debug!(error = %err, %remote, "read relay ended early");
                false
            }
        }
    }

    /// Sends the request upstream and the answer back; returns the answer's status and
    /// whether the client connection may carry another request.
    async fn exchange(
        &self,
        conn: &mut Watched,
        request: ReadRequest,
        remote: SocketAddr,
        scratch: &mut BytesMut,
    ) -> Result<(StatusCode, bool), RelayError> {
        let (close, http10) = (request.close, request.http10);
        let method = request.method.clone();
        let head = self.upstream_head(request, remote);
        let started = Instant::now();
        let (mut upstream, response) =
            tokio::time::timeout(self.upstream_timeout, self.send(&head, &method, scratch))
                .await
                .map_err(|_| {
                    RelayError::Answer(Refusal::new(
                        Reason::UpstreamTimeout,
                        format!(
                            "the upstream registry did not answer within {}",
                            humantime::format_duration(self.upstream_timeout)
                        ),
                    ))
                })??;
        self.metrics.upstream("proxy", started.elapsed());
        let status = response.status;
        // An HTTP/1.0 client cannot read chunks: the body is sent decoded, delimited by the
        // end of the connection.
        let dechunk = http10 && response.framing == Framing::Chunked;
        let mut out = self.response_head(
            status,
            response.headers,
            response.framing,
            close || dechunk,
            http10,
        );
        let in_hand = scratch.len() as u64;
        let reusable = match response.framing {
            Framing::Empty => {
                write_all(conn, &out).await?;
                in_hand == 0
            }
            Framing::Length(length) => {
                let first = in_hand.min(length) as usize;
                out.extend_from_slice(&scratch[..first]);
                write_all(conn, &out).await?;
                self.metrics.relayed("copy", first as u64);
                let remaining = length - first as u64;
                if remaining >= SPLICE_MIN {
                    let how = splice_body(&mut upstream, conn, remaining, scratch).await?;
                    self.metrics.relayed(how, remaining);
                } else if remaining > 0 {
                    copy_exact(&mut upstream, conn, remaining, scratch).await?;
                    self.metrics.relayed("copy", remaining);
                }
                in_hand <= length
            }
            Framing::Chunked => {
                write_all(conn, &out).await?;
                let (bytes, clean) = copy_chunked(&mut upstream, conn, scratch, dechunk).await?;
                self.metrics.relayed("copy", bytes);
                if dechunk {
                    if clean && response.reusable {
                        self.check_in(upstream);
                    }
                    conn.shutdown().await?;
                    return Ok((status, false));
                }
                clean
            }
            Framing::UntilClose => {
                write_all(conn, &out).await?;
                if !scratch.is_empty() {
                    write_all(conn, scratch).await?;
                }
                let bytes = copy_to_end(&mut upstream, conn, scratch).await?;
                self.metrics.relayed("copy", in_hand + bytes);
                return Ok((status, false));
            }
        };
        if reusable && response.reusable {
            self.check_in(upstream);
        }
        Ok((status, true))
    }

    /// Writes the request upstream and reads the answer's head, on a pooled connection when
    /// one is idle (retried once on a fresh connection if that one turns out to be closed).
    async fn send(
        &self,
        head: &[u8],
        method: &Method,
        scratch: &mut BytesMut,
    ) -> Result<(TcpStream, UpstreamHead), RelayError> {
        if let Some(mut pooled) = self.check_out() {
            scratch.clear();
            if pooled.write_all(head).await.is_ok() {
                match read_response_head(&mut pooled, method, scratch).await {
                    Ok(response) => return Ok((pooled, response)),
                    // The registry closed the idle connection before reading the request:
                    // nothing was answered, and a read can be sent again.
                    Err(ResponseError::Closed) => {}
                    Err(err) => return Err(RelayError::Answer(err.refusal())),
                }
            }
        }
        let mut fresh = self.connect().await?;
        scratch.clear();
        fresh
            .write_all(head)
            .await
            .map_err(|e| RelayError::Answer(unreachable(&e)))?;
        match read_response_head(&mut fresh, method, scratch).await {
            Ok(response) => Ok((fresh, response)),
            Err(err) => Err(RelayError::Answer(err.refusal())),
        }
    }

    async fn connect(&self) -> Result<TcpStream, RelayError> {
        let stream = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect(self.address.as_str()),
        )
        .await
        .map_err(|_| {
            RelayError::Answer(Refusal::new(
                Reason::UpstreamUnreachable,
                format!(
                    "the upstream registry is unavailable: connecting to {} timed out",
                    self.address
                ),
            ))
        })?
        .map_err(|e| RelayError::Answer(unreachable(&e)))?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// An idle upstream connection that is still open.
    fn check_out(&self) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((stream, since)) = idle.pop() {
            if since.elapsed() >= IDLE_KEEP {
                continue;
            }
            // An open, quiet connection has nothing to read; a closed one reads 0 bytes.
            let mut probe = [0u8; 1];
            if matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            {
                return Some(stream);
            }
        }
        None
    }

    fn check_in(&self, stream: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|(_, since)| since.elapsed() < IDLE_KEEP);
        if idle.len() < MAX_IDLE {
            idle.push((stream, Instant::now()));
        }
    }

    /// The request head sent upstream: the client's method and target, its headers prepared
    /// exactly as the hyper path prepares them.
    fn upstream_head(&self, request: ReadRequest, remote: SocketAddr) -> Vec<u8> {
        let mut headers = request.headers;
        self.target
            .request_headers(&mut headers, &request.uri, remote);
        if !headers.contains_key(header::HOST) {
            // What hyper's client adds when the request has no Host.
            if let Ok(host) = HeaderValue::from_str(self.target.authority()) {
                headers.insert(header::HOST, host);
            }
        }
        let mut head = Vec::with_capacity(512);
        head.extend_from_slice(request.method.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(
            request
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .as_bytes(),
        );
        head.extend_from_slice(b" HTTP/1.1\r\n");
        write_headers(&mut head, &headers);
        head.extend_from_slice(b"\r\n");
        head
    }

    fn response_head(
        &self,
        status: StatusCode,
        mut headers: HeaderMap,
        framing: Framing,
        close: bool,
        http10: bool,
    ) -> Vec<u8> {
        self.target.response_headers(&mut headers);
        let mut head = Vec::with_capacity(512);
        head.extend_from_slice(b"HTTP/1.1 ");
        head.extend_from_slice(status.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
        head.extend_from_slice(b"\r\n");
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
        write_headers(&mut head, &headers);
        head.extend_from_slice(b"\r\n");
        head
    }
}

impl From<io::Error> for RelayError {
    fn from(err: io::Error) -> Self {
        RelayError::Broken(err)
    }
}

fn unreachable(err: &io::Error) -> Refusal {
    tracing::warn!(error = %err, "proxy: upstream request failed");
    Refusal::new(
        Reason::UpstreamUnreachable,
        format!("the upstream registry is unavailable: {err}"),
    )
}

fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// The upstream's answer head, ready for the client.
struct UpstreamHead {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    /// The upstream did not ask to close the connection.
    reusable: bool,
}

#[derive(Debug)]
enum ResponseError {
    /// The connection closed before any byte of an answer.
    Closed,
    Io(io::Error),
    /// The upstream's answer is not valid HTTP/1.1.
    Invalid(String),
}

impl ResponseError {
    fn refusal(self) -> Refusal {
        match self {
            ResponseError::Closed => Refusal::new(
                Reason::UpstreamUnreachable,
                "the upstream registry is unavailable: it closed the connection without an answer",
            ),
            ResponseError::Io(err) => unreachable(&err),
            ResponseError::Invalid(why) => {
                tracing::warn!(error = %why, "proxy: invalid answer from the upstream");
                Refusal::new(
                    Reason::UpstreamUnreachable,
                    format!("the upstream registry gave an invalid answer: {why}"),
                )
            }
        }
    }
}

/// Reads an answer head into `buf` (informational 1xx answers skipped) and removes it from
/// there, leaving any body bytes that came with it.
async fn read_response_head(
    upstream: &mut TcpStream,
    method: &Method,
    buf: &mut BytesMut,
) -> Result<UpstreamHead, ResponseError> {
    loop {
        let parsed = {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(buf) {
                Ok(httparse::Status::Complete(len)) => Some(parse_response(&response, method, len)),
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
) -> Result<ParsedHead, String> {
    let code = response.code.ok_or("no status")?;
    let status = StatusCode::from_u16(code).map_err(|e| e.to_string())?;
    if status.is_informational() {
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err("unexpected 101 Switching Protocols".into());
        }
        return Ok((len, None));
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
            headers,
            framing,
            reusable,
        }),
    ))
}

/// The framing of an answer's body (RFC 9112 section 6.3).
fn framing(headers: &HeaderMap, status: StatusCode, method: &Method) -> Result<Framing, String> {
    if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
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
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value
            .to_str()
            .map_err(|_| "invalid Content-Length")?
            .split(',')
        {
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
    Ok(match length {
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

async fn write_all(conn: &mut Watched, bytes: &[u8]) -> io::Result<()> {
    conn.write_all(bytes).await
}

async fn write_refusal(
    conn: &mut Watched,
    refusal: Refusal,
    head_only: bool,
    close: bool,
) -> io::Result<()> {
    let body = refusal.body();
    let response = refusal.into_response();
    let status = response.status();
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    write_headers(&mut out, response.headers());
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&body);
    }
    conn.write_all(&out).await
}

/// Copies exactly `remaining` body bytes through `buf`.
async fn copy_exact(
    upstream: &mut TcpStream,
    conn: &mut Watched,
    mut remaining: u64,
    buf: &mut BytesMut,
) -> io::Result<()> {
    while remaining > 0 {
        buf.clear();
        let want = remaining.min(COPY_BUFFER as u64) as usize;
        buf.reserve(want);
        let n = (&mut *upstream).take(want as u64).read_buf(buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        conn.write_all(&buf[..n]).await?;
        remaining -= n as u64;
    }
    buf.clear();
    Ok(())
}

/// Copies until the upstream closes; returns the bytes copied.
async fn copy_to_end(
    upstream: &mut TcpStream,
    conn: &mut Watched,
    buf: &mut BytesMut,
) -> io::Result<u64> {
    let mut copied = 0;
    loop {
        buf.clear();
        buf.reserve(COPY_BUFFER);
        let n = upstream.read_buf(buf).await?;
        if n == 0 {
            conn.shutdown().await?;
            return Ok(copied);
        }
        conn.write_all(buf).await?;
        copied += n as u64;
    }
}

/// Copies a chunked body to its last chunk and trailers: the bytes unchanged, or with
/// `dechunk` only the chunks' data (for an HTTP/1.0 client). `buf` holds the bytes already
/// read. Returns the bytes copied and whether the connection ended exactly at the body's end
/// (so that it can be reused).
async fn copy_chunked(
    upstream: &mut TcpStream,
    conn: &mut Watched,
    buf: &mut BytesMut,
    dechunk: bool,
) -> Result<(u64, bool), RelayError> {
    let mut chunks = Chunks::default();
    let mut copied = 0;
    let mut data = Vec::new();
    loop {
        if !buf.is_empty() {
            data.clear();
            let (used, done) = chunks.feed(buf, &mut data).map_err(|why| {
                RelayError::Broken(io::Error::new(io::ErrorKind::InvalidData, why))
            })?;
            if dechunk {
                for range in &data {
                    conn.write_all(&buf[range.clone()]).await?;
                    copied += range.len() as u64;
                }
            } else {
                conn.write_all(&buf[..used]).await?;
                copied += used as u64;
            }
            let extra = buf.len() > used;
            buf.clear();
            if done {
                return Ok((copied, !extra));
            }
        }
        buf.reserve(COPY_BUFFER);
        if upstream.read_buf(buf).await? == 0 {
            return Err(RelayError::Broken(io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

/// Follows the framing of a chunked body (RFC 9112 section 7.1) without changing it.
#[derive(Debug, Default)]
struct Chunks {
    state: ChunkState,
    /// Bytes of the current size or trailer line, to bound them.
    line: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// In a chunk-size line: the size so far, whether a digit was seen, whether in the
    /// extensions.
    #[default]
    Size,
    SizeDigits(u64),
    Extension(u64),
    SizeLf(u64),
    /// Chunk data bytes left.
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    Trailer,
    TrailerLf {
        empty: bool,
    },
    Done,
}

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;

impl Chunks {
    /// Follows `bytes`; returns how many belong to the body and whether the body ended, and
    /// adds the ranges of `bytes` that are chunk data to `data`.
    fn feed(
        &mut self,
        bytes: &[u8],
        data: &mut Vec<std::ops::Range<usize>>,
    ) -> Result<(usize, bool), &'static str> {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == ChunkState::Done {
                return Ok((i, true));
            }
            if let ChunkState::Data(left) = self.state {
                let take = (bytes.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                data.push(i..i + take);
                i += take;
                let left = left - take as u64;
                self.state = if left == 0 {
                    ChunkState::DataCr
                } else {
                    ChunkState::Data(left)
                };
                continue;
            }
            let byte = bytes[i];
            i += 1;
            self.line += 1;
            if self.line > MAX_LINE {
                return Err("chunk line too long");
            }
            self.state = match (self.state, byte) {
                (ChunkState::Size, b) => ChunkState::SizeDigits(u64::from(hex(b)?)),
                (ChunkState::SizeDigits(n), b'\r') => ChunkState::SizeLf(n),
                (ChunkState::SizeDigits(n), b';' | b' ' | b'\t') => ChunkState::Extension(n),
                (ChunkState::SizeDigits(n), b) => ChunkState::SizeDigits(
                    n.checked_mul(16)
                        .and_then(|n| n.checked_add(u64::from(hex(b).ok()?)))
                        .ok_or("invalid chunk size")?,
                ),
                (ChunkState::Extension(n), b'\r') => ChunkState::SizeLf(n),
                (ChunkState::Extension(_), b'\n') => return Err("bare LF in chunk extension"),
                (ChunkState::Extension(n), _) => ChunkState::Extension(n),
                (ChunkState::SizeLf(n), b'\n') => {
                    self.line = 0;
                    if n == 0 {
                        ChunkState::TrailerStart
                    } else {
                        ChunkState::Data(n)
                    }
                }
                (ChunkState::DataCr, b'\r') => ChunkState::DataLf,
                (ChunkState::DataLf, b'\n') => {
                    self.line = 0;
                    ChunkState::Size
                }
                (ChunkState::TrailerStart, b'\r') => ChunkState::TrailerLf { empty: true },
                (ChunkState::TrailerStart | ChunkState::Trailer, b'\n') => {
                    return Err("bare LF in trailer");
                }
                (ChunkState::Trailer, b'\r') => ChunkState::TrailerLf { empty: false },
                (ChunkState::TrailerStart | ChunkState::Trailer, _) => ChunkState::Trailer,
                (ChunkState::TrailerLf { empty }, b'\n') => {
                    self.line = 0;
                    if empty {
                        ChunkState::Done
                    } else {
                        ChunkState::TrailerStart
                    }
                }
                _ => return Err("invalid chunked framing"),
            };
        }
        Ok((i, self.state == ChunkState::Done))
    }
}

fn hex(byte: u8) -> Result<u8, &'static str> {
    match byte {
        b'0'..=b'9' => Ok(byte - b'0'),
        b'a'..=b'f' => Ok(byte - b'a' + 10),
        b'A'..=b'F' => Ok(byte - b'A' + 10),
        _ => Err("invalid chunk size"),
    }
}

/// A pipe for splicing, made for one large body and closed after it.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct Pipe {
    read: std::os::fd::OwnedFd,
    write: std::os::fd::OwnedFd,
    /// Bytes the pipe holds.
    size: usize,
}

#[cfg(target_os = "linux")]
impl Pipe {
    fn new() -> io::Result<Self> {
        use rustix::pipe::{PipeFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with};
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        // A larger pipe moves more per system call; the default (64 KiB) when refused.
        let size = fcntl_setpipe_size(&write, PIPE_SIZE).or_else(|_| fcntl_getpipe_size(&write))?;
        Ok(Self { read, write, size })
    }
}

/// Moves exactly `remaining` body bytes from the upstream's socket to the client's through a
/// pipe, never through the process's memory. Falls back to copying if no pipe can be made.
/// Returns how the bytes moved: `splice` or `copy`.
#[cfg(target_os = "linux")]
async fn splice_body(
    upstream: &mut TcpStream,
    conn: &mut Watched,
    remaining: u64,
    scratch: &mut BytesMut,
) -> io::Result<&'static str> {
    // Made for this body and closed after it: an idle keep-alive connection holds no pipe
    // (two descriptors, and pipe pages counted against the user's limit whether used or not).
    let pipe = match Pipe::new() {
        Ok(pipe) => pipe,
        Err(err) => {
            tracing::debug!(error = %err, "no pipe for splicing; copying instead");
            copy_exact(upstream, conn, remaining, scratch).await?;
            return Ok("copy");
        }
    };
    splice_loop(upstream, conn, remaining, &pipe).await?;
    Ok("splice")
}

#[cfg(target_os = "linux")]
async fn splice_loop(
    upstream: &TcpStream,
    conn: &Watched,
    mut remaining: u64,
    pipe: &Pipe,
) -> io::Result<()> {
    use rustix::io::Errno;
    use rustix::pipe::{SpliceFlags, splice};
    use tokio::io::Interest;

    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    let client = conn.tcp();
    // Bytes in the pipe, spliced from the upstream and not yet to the client.
    let mut in_pipe = 0;
    while remaining > 0 || in_pipe > 0 {
        if remaining > 0 && in_pipe < pipe.size {
            let want = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(pipe.size - in_pipe);
            let fill = || splice(upstream, None, &pipe.write, None, want, flags);
            let moved = if in_pipe == 0 {
                // With the pipe empty, "would block" can only mean the socket has nothing:
                // let tokio clear its readiness and wait for more.
                match upstream.try_io(Interest::READABLE, || fill().map_err(io::Error::from)) {
                    Ok(n) => Some(n),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        upstream.readable().await?;
                        None
                    }
                    Err(err) => return Err(err),
                }
            } else {
                // A part-full pipe may be what blocks: top it up without touching the
                // socket's readiness.
                match fill() {
                    Ok(n) => Some(n),
                    Err(Errno::AGAIN) => None,
                    Err(err) => return Err(err.into()),
                }
            };
            match moved {
                Some(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Some(n) => {
                    in_pipe += n;
                    remaining -= n as u64;
                }
                None => {}
            }
        }
        if in_pipe > 0 {
            let drain =
                || splice(&pipe.read, None, client, None, in_pipe, flags).map_err(io::Error::from);
            match client.try_io(Interest::WRITABLE, drain) {
                Ok(n) => {
                    in_pipe -= n;
                    conn.touch();
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => client.writable().await?,
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

/// Without `splice(2)`, bodies are copied.
#[cfg(not(target_os = "linux"))]
async fn splice_body(
    upstream: &mut TcpStream,
    conn: &mut Watched,
    remaining: u64,
    scratch: &mut BytesMut,
) -> io::Result<&'static str> {
    copy_exact(upstream, conn, remaining, scratch).await?;
    Ok("copy")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` split at `at` and returns what `Chunks` made of it.
    fn follow(body: &[u8], at: usize) -> Result<(usize, bool), &'static str> {
        let mut chunks = Chunks::default();
        let mut data = Vec::new();
        let (first, done) = chunks.feed(&body[..at], &mut data)?;
        if done {
            return Ok((first, true));
        }
        let (second, done) = chunks.feed(&body[at..], &mut data)?;
        Ok((first + second, done))
    }

    /// The data of a chunked body, fed split at `at`.
    fn decode(body: &[u8], at: usize) -> Vec<u8> {
        let mut chunks = Chunks::default();
        let mut out = Vec::new();
        for part in [&body[..at], &body[at..]] {
            let mut data = Vec::new();
            chunks.feed(part, &mut data).expect("valid");
            for range in data {
                out.extend_from_slice(&part[range]);
            }
        }
        out
    }

    #[test]
    fn chunk_data_is_found_however_the_body_is_split() {
        let body = b"5\r\nhello\r\nA;x=1\r\n, chunked!\r\n0\r\nX-Sum: 1\r\n\r\n";
        for at in 0..=body.len() {
            assert_eq!(decode(body, at), b"hello, chunked!", "split at {at}");
        }
    }

    #[test]
    fn chunked_bodies_end_where_their_framing_ends_however_they_are_split() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", Some(15)),
            (b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1", Some(15)),
            (b"A;ext=1\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n", Some(36)),
            (
                b"1f \r\n0123456789012345678901234567890\r\n0\r\n\r\n",
                Some(43),
            ),
            (b"5\r\nhello\r\n0\r\n", None),
            (b"5\r\nhelloXX0\r\n\r\n", Some(0)),
            (b"g\r\n", Some(0)),
            (b"\r\n", Some(0)),
            (b"5\nhello\r\n0\r\n\r\n", Some(0)),
            (b"ffffffffffffffffff\r\n", Some(0)),
        ];
        for (body, end) in cases {
            for at in 0..=body.len() {
                let got = follow(body, at);
                match end {
                    Some(0) => assert!(got.is_err(), "{:?} split at {at}: {got:?}", body),
                    Some(end) => assert_eq!(got, Ok((*end, true)), "{:?} split at {at}", body),
                    None => assert_eq!(got, Ok((body.len(), false)), "{:?} split at {at}", body),
                }
            }
        }
    }

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
