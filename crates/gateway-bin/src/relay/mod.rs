//! The pass-through read path: `GET` and `HEAD` requests that the gateway forwards without
//! inspecting anything, relayed over HTTP/1.1 without hyper, with response bodies moved from
//! the upstream's socket to the client's by `splice(2)`.
//!
//! Pulls are most of a registry's traffic and the gateway checks nothing on them, so they
//! should cost as little as a relay can. Every connection starts here: the request head is
//! read within the head bound and parsed with `httparse` ([`crate::relay::request`]), routed with
//! the same [`registry_api::ApiRequest::parse`] as every other request, and only a plain read
//! (HTTP/1.1 or 1.0, origin-form target, no body, no `Expect` or `Upgrade`,
//! [`registry_api::Route::Read`]) is relayed here, with the headers prepared by the same
//! [`Target`] code as the hyper path. A head that does not end within the bound is answered
//! `431`, as hyper would answer it. Anything else (a write, a refusal, h2c, a head `httparse`
//! rejects) hands the connection, with the bytes already read, to hyper for the rest of its
//! life; hyper then reads it exactly as it would have from the start. The relay therefore
//! never decides anything about a write.
//!
//! Upstream connections are kept in a small pool of idle sockets. A response body of known
//! length is spliced through a pipe, socket to socket, without being copied into the process;
//! chunked and close-delimited bodies (tag lists, error answers) are copied through a buffer,
//! with the chunked framing followed so that the connection can be reused (and the chunks
//! decoded for an HTTP/1.0 client).

mod chunked;
mod copy;
mod framing;
mod pool;
mod request;
mod splice;
mod write;

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::{Method, Response, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::body::ProxyBody;
use crate::connections::Connection;
use crate::io::{Prefixed, Watched};
use crate::metrics::Metrics;
use crate::refusal::{self, Refusal, Seen};
use crate::relay::request::{Head, MAX_HEADERS, ReadRequest, read_head, refuse_too_large};
use crate::upstream::target::Target;

use self::copy::{copy_chunked, copy_exact, copy_to_end};
use self::framing::{Framing, ResponseError, UpstreamHead, read_response_head};
use self::pool::Pool;
use self::splice::splice_body;
use self::write::{Additions, response_head, upstream_head, write_headers};

/// Bodies at least this long are spliced; shorter ones are copied (creating a pipe costs
/// more than copying a few kilobytes).
const SPLICE_MIN: u64 = 64 * 1024;

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
pub struct ReadRelay {
    target: Target,
    /// What the header code adds to every request head.
    additions: Additions,
    /// `host:port` of the upstream, for connecting.
    address: String,
    connect_timeout: Duration,
    upstream_timeout: Duration,
    header_read_timeout: Duration,
    /// Largest request head read.
    max_header_bytes: usize,
    /// Idle upstream connections.
    pool: Pool,
    metrics: Arc<Metrics>,
}

/// What a client connection keeps from one relayed request to the next, so that a request
/// allocates nothing: the answer's bytes in hand, the request head sent upstream, the
/// answer's fields, and the head (with a short body) written to the client.
#[derive(Default)]
struct Buffers {
    scratch: BytesMut,
    upstream_head: Vec<u8>,
    lines: Vec<u8>,
    out: Vec<u8>,
}

/// Why a relayed request failed.
pub(super) enum RelayError {
    /// Nothing was sent to the client yet: it gets this answer.
    Answer(Refusal),
    /// The answer was under way: the client connection can only be closed.
    Broken(io::Error),
}

impl ReadRelay {
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
            additions: Additions::of(&target),
            target,
            address,
            connect_timeout,
            upstream_timeout,
            header_read_timeout,
            max_header_bytes,
            pool: Pool::default(),
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
        let mut buffers = Buffers::default();
        // One timer each for the head and the upstream's answer, reset for every request.
        let head_timer = tokio::time::sleep(self.header_read_timeout);
        let upstream_timer = tokio::time::sleep(self.upstream_timeout);
        tokio::pin!(head_timer, upstream_timer);
        loop {
            if *stop.borrow() && buf.is_empty() {
                return Outcome::Closed;
            }
            let head = read_head(
                &mut conn,
                &mut buf,
                stop,
                (head_timer.as_mut(), self.header_read_timeout),
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
            {
                // The head was parsed whole once already; its fields are read again in place.
                let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
                let mut parsed = httparse::Request::new(&mut []);
                let complete = matches!(
                    parsed.parse_with_uninit_headers(&buf[..head_len], &mut fields),
                    Ok(httparse::Status::Complete(_))
                );
                let fields: &[httparse::Header<'_>] = if complete { parsed.headers } else { &[] };
                upstream_head(
                    &mut buffers.upstream_head,
                    (&self.target, &self.additions),
                    (&request.method, &request.uri),
                    fields,
                    remote,
                );
            }
            buf.advance(head_len);
            if buf.is_empty() {
                // An idle connection holds no head buffer.
                buf = BytesMut::new();
            }
            let keep = self
                .relay(
                    &mut conn,
                    request,
                    remote,
                    &mut buffers,
                    upstream_timer.as_mut(),
                )
                .await;
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
        buffers: &mut Buffers,
        timer: Pin<&mut Sleep>,
    ) -> bool {
        let _in_flight = self.metrics.in_flight();
        let method = request.method.clone();
        let close = request.close;
        match self.exchange(conn, &request, buffers, timer).await {
            Ok((status, keep)) => {
                self.metrics.request(&method, status);
                keep && !close
            }
            Err(RelayError::Answer(refusal)) => {
                let body = refusal::envelope(&refusal);
                let seen = Seen {
                    method: &method,
                    path: request.uri.path(),
                    repository: None,
                    reference: None,
                };
                let response = refusal::answer(refusal, &seen, &self.metrics);
                self.metrics.request(&method, response.status());
                let written =
                    write_refusal(conn, &response, &body, method == Method::HEAD, close).await;
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
        request: &ReadRequest,
        buffers: &mut Buffers,
        mut timer: Pin<&mut Sleep>,
    ) -> Result<(StatusCode, bool), RelayError> {
        let (close, http10, method) = (request.close, request.http10, request.method.clone());
        let Buffers {
            scratch,
            upstream_head: head,
            lines,
            out,
        } = buffers;
        let started = Instant::now();
        timer.as_mut().reset(started + self.upstream_timeout);
        let sent = tokio::select! {
            biased;
            sent = self.send(head, &method, scratch, lines) => sent,
            () = timer => Err(RelayError::Answer(Refusal::UpstreamTimeout {
                after: self.upstream_timeout,
            })),
        };
        let (mut upstream, response) = sent?;
        self.metrics.upstream("proxy", started.elapsed());
        let status = response.status;
        // An HTTP/1.0 client cannot read chunks: the body is sent decoded, delimited by the
        // end of the connection.
        let dechunk = http10 && response.framing == Framing::Chunked;
        response_head(
            out,
            &self.target,
            (status, response.headers, lines),
            response.framing,
            close || dechunk,
            http10,
        );
        let in_hand = scratch.len() as u64;
        let reusable = match response.framing {
            Framing::Empty => {
                write_all(conn, out).await?;
                in_hand == 0
            }
            Framing::Length(length) => {
                let first = in_hand.min(length) as usize;
                out.extend_from_slice(&scratch[..first]);
                write_all(conn, out).await?;
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
                write_all(conn, out).await?;
                let (bytes, clean) = copy_chunked(&mut upstream, conn, scratch, dechunk).await?;
                self.metrics.relayed("copy", bytes);
                if dechunk {
                    if clean && response.reusable {
                        self.pool.check_in(upstream);
                    }
                    conn.shutdown().await?;
                    return Ok((status, false));
                }
                clean
            }
            Framing::UntilClose => {
                write_all(conn, out).await?;
                if !scratch.is_empty() {
                    write_all(conn, scratch).await?;
                }
                let bytes = copy_to_end(&mut upstream, conn, scratch).await?;
                self.metrics.relayed("copy", in_hand + bytes);
                return Ok((status, false));
            }
        };
        if reusable && response.reusable {
            self.pool.check_in(upstream);
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
        lines: &mut Vec<u8>,
    ) -> Result<(TcpStream, UpstreamHead), RelayError> {
        if let Some(mut pooled) = self.pool.check_out() {
            scratch.clear();
            if pooled.write_all(head).await.is_ok() {
                match read_response_head(&mut pooled, method, scratch, lines).await {
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
        match read_response_head(&mut fresh, method, scratch, lines).await {
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
            RelayError::Answer(Refusal::UpstreamConnectTimeout {
                address: self.address.clone(),
            })
        })?
        .map_err(|e| RelayError::Answer(unreachable(&e)))?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

impl From<io::Error> for RelayError {
    fn from(err: io::Error) -> Self {
        RelayError::Broken(err)
    }
}

pub(super) fn unreachable(err: &io::Error) -> Refusal {
    tracing::warn!(error = %err, "proxy: upstream request failed");
    Refusal::UpstreamUnreachable {
        cause: err.to_string(),
    }
}

async fn write_all(conn: &mut Watched, bytes: &[u8]) -> io::Result<()> {
    conn.write_all(bytes).await
}

async fn write_refusal(
    conn: &mut Watched,
    response: &Response<ProxyBody>,
    body: &[u8],
    head_only: bool,
    close: bool,
) -> io::Result<()> {
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
        out.extend_from_slice(body);
    }
    conn.write_all(&out).await
}
