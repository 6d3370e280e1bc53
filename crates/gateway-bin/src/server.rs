//! Serving connections: HTTP/1.1 and h2c on one port, or HTTP/1.1 and HTTP/2 over TLS, with
//! bounded resources and a graceful stop.
//!
//! Every listener (the proxy and the admin endpoints) gets the same protections, TLS or not,
//! because a client that holds connections open costs memory whatever it asks for:
//!
//! * a cap on open connections, and optionally per source address; when the listener is full,
//!   the connection idle longest is shed for a new one, and only when every connection carries
//!   a request does a new one wait (see [`crate::connections`]);
//! * a bound on every request head: `--max-header-bytes` for an HTTP/1 head (hyper's read
//!   buffer, and the read relay's), answered `431` and closed beyond it, and the same bound on
//!   an HTTP/2 header list (`SETTINGS_MAX_HEADER_LIST_SIZE`; beyond it the stream gets `431`);
//! * a header read timeout, which hyper also applies while an HTTP/1 connection waits idle for
//!   its next request, and which bounds a TLS handshake too (a connection in its handshake
//!   carries no request, so it is also shed like any idle one);
//! * an idle timeout: a connection over which no byte moved in either direction for that long
//!   is closed, HTTP/2 included;
//! * a cap on concurrent HTTP/2 streams per connection.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::connections::Connections;
use crate::io::Watched;
use crate::relay::{Outcome, ReadRelay};
use crate::tls::Handshake;
use crate::tracked::Tracked;

/// The smallest request head bound: hyper's HTTP/1 read buffer cannot be smaller.
pub const MIN_HEADER_BYTES: usize = 8 * 1024;

/// The resource bounds of each connection of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest time to receive a request's head, and to wait for the next request on an idle
    /// HTTP/1 connection.
    pub header_read_timeout: Duration,
    /// Longest time a connection may stay open with no byte moving either way.
    pub idle_timeout: Duration,
    /// Most concurrent streams on one HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// Largest request head (HTTP/1) or header list (HTTP/2), in bytes; at least
    /// [`MIN_HEADER_BYTES`].
    pub max_header_bytes: usize,
}

/// What reads a new connection first.
#[derive(Debug, Clone)]
pub enum Entry {
    /// hyper: HTTP/1.1, and HTTP/2 with prior knowledge (h2c).
    Plain,
    /// The read relay, which relays plain reads itself and hands every other connection to
    /// hyper (see [`ReadRelay`]).
    ReadRelay(Arc<ReadRelay>),
    /// A TLS handshake, then hyper: HTTP/2 or HTTP/1.1 as the client chose by ALPN. The read
    /// relay splices plain TCP, so it has no part here.
    Tls(Handshake),
}

/// Serves `listener` until `stop` resolves, then lets requests in flight finish for at most
/// `grace`. `connections` admits each connection (see [`Connections`]); `service` makes the
/// service of one connection from the client's address; `entry` says what reads it first.
/// Returns whether every request finished in time.
pub async fn serve<S, B, F>(
    listener: TcpListener,
    limits: Limits,
    connections: Arc<Connections>,
    service: F,
    entry: Entry,
    stop: impl Future<Output = ()>,
    grace: Duration,
) -> bool
where
    F: Fn(SocketAddr) -> S,
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // `true` once the listener stops: connections finish the request in flight and close.
    let (stopping, stopped) = watch::channel(false);
    let head_bound = limits.max_header_bytes.max(MIN_HEADER_BYTES);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper reads at most this much before a head is complete, then answers 431.
        .max_buf_size(head_bound);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(head_bound).unwrap_or(u32::MAX));
    tokio::pin!(stop);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let slot = tokio::select! {
            slot = connections.admit(remote) => match slot {
                Some(slot) => slot,
                None => continue,
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let (io, activity) = Watched::new(stream);
        let connection = Arc::clone(slot.connection());
        let service = Tracked::new(service(remote), Arc::clone(&connection));
        let builder = builder.clone();
        let entry = entry.clone();
        let mut stopped = stopped.clone();
        let idle = limits.idle_timeout;
        let handshake_limit = limits.header_read_timeout;
        tokio::spawn(async move {
            let serving = async {
                match entry {
                    Entry::Plain => serve_hyper(&builder, io, service, &mut stopped).await,
                    Entry::ReadRelay(relay) => {
                        match relay.serve(io, remote, &connection, &mut stopped).await {
                            Outcome::Closed => {}
                            Outcome::Handoff(io) => {
                                serve_hyper(&builder, io, service, &mut stopped).await;
                            }
                        }
                    }
                    Entry::Tls(handshake) => {
                        let accepted = tokio::select! {
                            accepted = handshake.accept(io, remote, handshake_limit) => accepted,
                            true = async { stopped.wait_for(|stop| *stop).await.is_ok() } => None,
                        };
                        if let Some(io) = accepted {
                            serve_hyper(&builder, io, service, &mut stopped).await;
                        }
                    }
                }
            };
            tokio::select! {
                () = serving => {}
                () = activity.idle_for(idle) => {
                    tracing::debug!(%remote, idle = %humantime::format_duration(idle), "idle connection closed");
                }
                // Logged and counted by the table.
                () = connection.shed() => {}
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!(grace = %humantime::format_duration(grace), "stopped accepting; waiting for requests in flight");
    let _ = stopping.send(true);
    // Every connection holds its slot until it ends.
    tokio::select! {
        () = connections.closed() => true,
        () = tokio::time::sleep(grace) => false,
    }
}

/// Serves a connection with hyper until it ends; once `stopped` turns true, hyper finishes
/// the requests in flight and closes it.
async fn serve_hyper<I, S, B>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    stopped: &mut watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        true = async { stopped.wait_for(|stop| *stop).await.is_ok() } => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
