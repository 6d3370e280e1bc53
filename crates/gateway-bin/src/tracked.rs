//! The service of a hyper connection, wrapped so that the connection table knows when a
//! request is in flight: from the moment hyper hands the service a request head until the
//! response body is finished or dropped (a client that hangs up drops it).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode, header};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::Service;

use crate::connections::{Busy, Connection};

/// A service whose requests count as in flight on their connection.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    connection: Arc<Connection>,
}

impl<S> Tracked<S> {
    /// `inner`, serving requests of `connection`.
    pub fn new(inner: S, connection: Arc<Connection>) -> Self {
        Self { inner, connection }
    }
}

type Answer<B> = Result<Response<TrackedBody<B>>, Infallible>;

impl<S, B> Service<Request<Incoming>> for Tracked<S>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<TrackedBody<B>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Answer<B>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let Some(busy) = self.connection.begin() else {
            // The connection was shed while hyper read this head: it is closing, and the
            // request is not served (nothing of it was forwarded).
            return Box::pin(std::future::ready(Ok(closing())));
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let Ok(response) = answer.await;
            Ok(response.map(|body| TrackedBody {
                inner: Some(body),
                busy: Some(busy),
            }))
        })
    }
}

/// The answer to a request that arrives on a connection being shed.
fn closing<B>() -> Response<TrackedBody<B>> {
    let mut response = Response::new(TrackedBody {
        inner: None,
        busy: None,
    });
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// A response body that keeps its request in flight until it ends or is dropped.
#[derive(Debug)]
pub struct TrackedBody<B> {
    /// `None` for the empty body of [`closing`].
    inner: Option<B>,
    busy: Option<Busy>,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
