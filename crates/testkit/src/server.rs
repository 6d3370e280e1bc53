//! A small HTTP/1.1 server on loopback, run on its own thread and runtime.
//!
//! Its own thread means it answers whatever runtime (or none) the test uses, and a test that
//! blocks its own runtime cannot starve it. Dropping it stops the runtime, which also drops
//! connections still being answered (a reply that hangs ends with the server).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// An answer being computed.
pub(crate) type ReplyFuture = Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>;
/// Answers one request, whose body has been read whole.
pub(crate) type Handler = Arc<dyn Fn(Request<Bytes>) -> ReplyFuture + Send + Sync>;

/// A running server; stops when dropped.
pub(crate) struct BackgroundServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for BackgroundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl BackgroundServer {
    /// Binds a free loopback port and serves `handler` there.
    pub(crate) fn start(name: &str, handler: Handler) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("{name}: cannot bind a loopback port: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{name}: cannot make the listener non-blocking: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{name}: cannot read the listener's address: {e}"));
        let (shutdown, stopped) = oneshot::channel();
        let thread_name = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || serve(&thread_name, listener, handler, stopped))
            .unwrap_or_else(|e| panic!("{name}: cannot start its thread: {e}"));
        Self {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The bound address (`127.0.0.1:<port>`).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    name: &str,
    listener: std::net::TcpListener,
    handler: Handler,
    mut stopped: oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{name}: cannot build its runtime: {e}"));
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => panic!("{name}: cannot register the listener: {e}"),
        };
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<Incoming>| {
                            let handler = handler.clone();
                            async move {
                                let (parts, body) = request.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|c| c.to_bytes())
                                    .unwrap_or_default();
                                Ok::<_, Infallible>(handler(Request::from_parts(parts, body)).await)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
    });
    // Dropping the runtime here drops every connection still open.
}
