//! Blob uploads: refused as soon as they are known to exceed the repository's image size limit,
//! counted from the bytes the registry says each session holds; cross-repository mounts of
//! blobs over the limit refused.

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use limits_core::{AppliedLimits, BlobSizeKnown, ByteSize, Decision, RepositoryName};
use registry_api::{ApiRequest, Mount, Route, upload};
use upstream_client::Upstream;

use crate::body::{BoxError, ProxyBody, drain};
use crate::decision_log::DecisionLog;
use crate::facts::Facts;
use crate::options::Options;
use crate::refusal::refused;
use crate::refusal::{Fact, Refusal};
use crate::upload_sessions::UploadSessions;
use crate::upstream::forward::Onward;

/// What a guarded body leaves behind when it trips: the decision, and the rest of the
/// client's body, which is never forwarded.
#[derive(Debug, Default)]
pub struct Trip {
    decision: OnceLock<Decision>,
    rest: Mutex<Option<Incoming>>,
}

impl Trip {
    /// The decision that stopped the upload, if it was stopped.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.get()
    }

    /// Reads and discards what the client still sends, for a bounded time and number of bytes,
    /// so that closing the connection does not reset it before the client read the refusal.
    pub fn drain_rest(&self) {
        let rest = match self.rest.lock() {
            Ok(mut rest) => rest.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(body) = rest {
            drain(body);
        }
    }
}

/// Error a guarded body returns once the limit is exceeded.
#[derive(Debug, thiserror::Error)]
#[error("upload stopped: {0}")]
pub struct LimitExceeded(String);

/// A client's upload body that counts bytes and fails once `offset + bytes` exceeds the limit.
#[derive(Debug)]
pub struct GuardedBody {
    inner: Option<Incoming>,
    applied: AppliedLimits,
    limit: u64,
    offset: u64,
    seen: u64,
    trip: Arc<Trip>,
}

impl GuardedBody {
    /// Guards `inner`, an upload chunk starting at `offset` bytes of the blob.
    pub fn new(
        inner: Incoming,
        applied: AppliedLimits,
        limit: u64,
        offset: u64,
        trip: Arc<Trip>,
    ) -> Self {
        Self {
            inner: Some(inner),
            applied,
            limit,
            offset,
            seen: 0,
            trip,
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len() as u64);
                    let total = this.offset.saturating_add(this.seen);
                    if total > this.limit {
                        let decision = this
                            .applied
                            .check_blob(ByteSize::new(total), BlobSizeKnown::Streamed);
                        let message = decision.to_string();
                        let _ = this.trip.decision.set(decision);
                        if let Ok(mut rest) = this.trip.rest.lock() {
                            *rest = this.inner.take();
                        }
                        return Poll::Ready(Some(Err(Box::new(LimitExceeded(message)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
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

/// The bytes an upload session holds according to an upload answer's `Range`.
fn answered_range(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    upload::held_bytes(value)
}

/// The handler of a blob upload (`POST` to start a session, `PATCH`/`PUT` of a chunk): it reads
/// blob sizes from the registry for mounts, logs the decisions, and keeps the bytes each session
/// holds.
#[derive(Debug)]
pub struct BlobUpload<'a, U> {
    /// Blob sizes for mounts.
    pub facts: &'a Facts<U>,
    /// Where the decisions go.
    pub decisions: &'a DecisionLog,
    /// Bytes held by upload sessions.
    pub sessions: &'a UploadSessions,
    /// Behaviour options.
    pub options: &'a Options,
    /// Whether the request has a form body ([`registry_api::RequestHead::form`]), whose parameters (`mount`,
    /// `from`, `_state`, `digest`) Go's `Request.FormValue` reads for the registry as if they
    /// were in the query.
    pub form: bool,
    /// The body's declared length and the chunk's announced range, from the request head read
    /// once ([`registry_api::RequestHead::content_length`], `content_range`; a value the head
    /// could not read as one number or range counts as not announced: the body is guarded as
    /// it streams all the same).
    pub announced: (Option<u64>, Option<(u64, u64)>),
    /// The repository's limits and the size an upload may reach, when uploads are guarded
    /// ([`limits_core::admission::upload_guard`]).
    pub guard: Option<(AppliedLimits, u64)>,
}

impl<U: Upstream> BlobUpload<'_, U> {
    /// `POST /v2/<name>/blobs/uploads/`: a mount of a blob larger than the repository's image
    /// size limit is refused (its size comes from the upstream, with the client's credentials);
    /// the session the registry opens is remembered with the bytes it holds.
    pub async fn start(
        self,
        request: Request<Incoming>,
        repository: RepositoryName,
        mount: Option<Mount>,
        onward: Onward,
    ) -> Result<Response<ProxyBody>, Refusal> {
        if self.form {
            return Err(refused(request, Refusal::FormBody));
        }
        if let (Some(mount), Some((applied, limit))) = (&mount, &self.guard) {
            let limit = *limit;
            let auth = request.headers().get(header::AUTHORIZATION).cloned();
            match self
                .facts
                .blob_size(&mount.from, &mount.digest, auth.as_ref())
                .await
            {
                Ok(Some(size)) if size > limit => {
                    let decision = applied.check_blob(ByteSize::new(size), BlobSizeKnown::Stored);
                    self.decisions.log(&decision, mount.digest.as_str());
                    return Err(refused(request, Refusal::denied(&decision)));
                }
                // Within the limit, or absent from `from`: the registry then opens a plain
                // upload, whose bytes are counted as they arrive.
                Ok(_) => {}
                Err(err) if self.options.fails_open(&err) => {
                    tracing::warn!(repository = %repository, digest = %mount.digest, error = %err,
                        "mounted blob size unverified; allowed by --fail-open");
                }
                Err(err) => {
                    let fact = Fact::MountedBlobSize {
                        digest: mount.digest.clone(),
                        from: mount.from.clone(),
                    };
                    return Err(refused(request, Refusal::fact(fact, err)));
                }
            }
        }
        // distribution 2.8 ignores an upload start's body, but registries that take a
        // monolithic upload in the POST (distribution 3, zot) store it: count it as a chunk
        // from 0.
        let response = match &self.guard {
            None => {
                let timeout = Some(self.options.upstream_timeout);
                onward.request(request, timeout).await?
            }
            Some(_) => {
                let (parts, body) = request.into_parts();
                self.guarded_forward(parts, body, 0, &onward).await?
            }
        };
        if response.status() == StatusCode::ACCEPTED {
            self.remember_new_session(&repository, &response).await;
        }
        Ok(response)
    }

    /// Forwards an upload body that already holds `held` bytes upstream: refused at once when
    /// its announced size is over the guard's limit, stopped before a byte over it is
    /// forwarded. Unguarded uploads are forwarded as they are.
    async fn guarded_forward(
        &self,
        parts: Parts,
        body: Incoming,
        held: u64,
        onward: &Onward,
    ) -> Result<Response<ProxyBody>, Refusal> {
        let Some((applied, limit)) = &self.guard else {
            return onward
                .send(parts, body.map_err(BoxError::from).boxed(), None)
                .await;
        };
        let limit = *limit;
        let (content_length, content_range) = self.announced;
        if let Some(known) = upload::announced_size(held, content_length, content_range)
            .filter(|known| *known > limit)
        {
            let decision = applied.check_blob(ByteSize::new(known), BlobSizeKnown::Announced);
            self.decisions.log(&decision, parts.uri.path());
            drain(body);
            return Err(Refusal::denied(&decision));
        }
        let trip = Arc::new(Trip::default());
        let guarded = GuardedBody::new(body, applied.clone(), limit, held, Arc::clone(&trip));
        let response = onward.send(parts, guarded.boxed(), None).await;
        if let Some(decision) = trip.decision() {
            self.decisions.log(decision, "upload");
            trip.drain_rest();
            return Err(Refusal::denied(decision));
        }
        response
    }

    /// Remembers the session an upload start opened, keyed by the decoded id of its
    /// `Location`, with the bytes its `Range` says it holds.
    async fn remember_new_session(
        &self,
        repository: &RepositoryName,
        response: &Response<ProxyBody>,
    ) {
        let Some(location) = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
        else {
            return;
        };
        let path = location.find("/v2/").map_or(location, |at| &location[at..]);
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let Ok(ApiRequest {
            route: Route::UploadChunk { name, id },
            ..
        }) = ApiRequest::parse("PATCH", path, None)
        else {
            return;
        };
        if name != *repository {
            return;
        }
        if let Some(held) = answered_range(response.headers()) {
            *self.sessions.lock(&name, &id).await = Some(held);
        }
    }

    /// `PATCH`/`PUT` of an upload session: counted from the bytes the registry holds for it
    /// (asked of the registry when the gateway does not know), refused at once when its
    /// announced size is over the limit, stopped as soon as the bytes streamed pass it.
    pub async fn chunk(
        self,
        request: Request<Incoming>,
        repository: RepositoryName,
        id: String,
        onward: Onward,
    ) -> Result<Response<ProxyBody>, Refusal> {
        if self.form {
            return Err(refused(request, Refusal::FormBody));
        }
        if self.guard.is_none() {
            let response = onward.request(request, None).await?;
            if response.status() == StatusCode::CREATED {
                self.sessions.remove(&repository, &id);
            }
            return Ok(response);
        }
        let mut session = self.sessions.lock(&repository, &id).await;
        let (parts, body) = request.into_parts();
        let held = match *session {
            Some(held) => held,
            None => match self.ask_held(&parts, &onward).await {
                Ok(Ok(held)) => held,
                Ok(Err(answer)) => {
                    drain(body);
                    return Ok(answer);
                }
                Err(refusal) => {
                    drain(body);
                    return Err(refusal);
                }
            },
        };
        // Until the registry answers, the session's size is unknown: if this request is cut
        // short, or refused part way, the next one asks the registry.
        *session = None;
        let response = self.guarded_forward(parts, body, held, &onward).await?;
        if response.status() == StatusCode::CREATED {
            drop(session);
            self.sessions.remove(&repository, &id);
        } else if response.status().is_success() {
            *session = answered_range(response.headers());
        }
        Ok(response)
    }

    /// The bytes an upload session holds, asked of the registry: `GET` on the session with the
    /// client's credentials and query (distribution 2.8 needs its `_state`), read from the
    /// answer's `Range`. The registry's refusal of that request (`Ok(Err(_))`) is the answer
    /// to the chunk too.
    async fn ask_held(
        &self,
        parts: &Parts,
        onward: &Onward,
    ) -> Result<Result<u64, Response<ProxyBody>>, Refusal> {
        let mut status =
            Request::get(parts.uri.clone())
                .body(())
                .map_err(|e| Refusal::TargetInvalid {
                    cause: e.to_string(),
                })?;
        for name in [header::AUTHORIZATION, header::HOST] {
            if let Some(value) = parts.headers.get(&name) {
                status.headers_mut().insert(name, value.clone());
            }
        }
        let (status_parts, ()) = status.into_parts();
        let empty = Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed();
        let answer = onward
            .send(status_parts, empty, Some(self.options.upstream_timeout))
            .await?;
        if !answer.status().is_success() {
            return Ok(Err(answer));
        }
        match answered_range(answer.headers()) {
            Some(held) => Ok(Ok(held)),
            None if self.options.fail_open => {
                tracing::warn!(
                    path = parts.uri.path(),
                    "upload progress unread; counted from 0 (--fail-open)"
                );
                Ok(Ok(0))
            }
            None => Err(Refusal::UploadProgressUnread),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn forms() {
        let cases = [
            ("application/x-www-form-urlencoded", true),
            ("Application/X-WWW-Form-Urlencoded; charset=utf-8", true),
            ("multipart/form-data; boundary=x", true),
            ("application/octet-stream", false),
            ("", false),
        ];
        for (value, want) in cases {
            let head = registry_api::RequestHead::parse(
                "POST",
                "/v2/a/blobs/uploads/",
                None,
                [("Content-Type", value)],
            )
            .expect("an upload start");
            assert_eq!(head.form, want, "{value}");
        }
    }
}
