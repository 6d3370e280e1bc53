//! Refusing blob uploads early: a request body that stops once the upload is known to exceed
//! the repository's image size limit.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use limits_core::{AppliedLimits, ByteSize, Decision};

use crate::body::BoxError;

/// Bytes of a refused upload still read and discarded after the refusal, so the client reads
/// the 403 instead of a connection reset.
const DRAIN_BYTES: u64 = 256 << 20;
/// Longest time spent discarding a refused upload's remaining bytes.
const DRAIN_TIME: Duration = Duration::from_secs(10);

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

/// Reads and discards a refused request's body in the background, for at most [`DRAIN_TIME`]
/// and [`DRAIN_BYTES`]: a client still sending when the refusal comes then reads it, instead
/// of a connection reset.
pub fn drain(mut body: Incoming) {
    tokio::spawn(async move {
        let discard = async {
            let mut read = 0u64;
            while let Some(Ok(frame)) = body.frame().await {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
                if read > DRAIN_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
    });
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
                        let decision = this.applied.check_blob(ByteSize::new(total));
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

/// The start offset of a chunk from `Content-Range: <start>-<end>`, and the end it announces.
pub fn content_range(headers: &HeaderMap) -> Option<(u64, u64)> {
    let value = headers.get(http::header::CONTENT_RANGE)?.to_str().ok()?;
    let value = value
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches([' ', '=']);
    let (start, end) = value.split_once('-')?;
    let end = end.split('/').next()?;
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?))
}

/// The bytes an upload session holds, from the `Range: 0-<end>` the upstream answers with.
pub fn upstream_range_end(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(http::header::RANGE)?.to_str().ok()?;
    let (_, end) = value.trim().trim_start_matches("bytes=").split_once('-')?;
    end.trim()
        .parse::<u64>()
        .ok()
        .map(|end| end.saturating_add(1))
}

/// How many bytes each upload session holds upstream, so a chunk without `Content-Range`
/// is still counted from the right offset. Bounded; oldest sessions go first.
#[derive(Debug)]
pub struct UploadProgress {
    capacity: usize,
    inner: Mutex<(HashMap<String, u64>, VecDeque<String>)>,
}

impl UploadProgress {
    /// Remembers at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, (HashMap<String, u64>, VecDeque<String>)> {
        match self.inner.lock() {
            Ok(inner) => inner,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Bytes the session holds, as last reported by the upstream.
    pub fn get(&self, session: &str) -> u64 {
        self.inner().0.get(session).copied().unwrap_or(0)
    }

    /// Records the bytes the session holds.
    pub fn set(&self, session: &str, bytes: u64) {
        let mut inner = self.inner();
        let (map, order) = &mut *inner;
        if map.insert(session.to_owned(), bytes).is_none() {
            order.push_back(session.to_owned());
            while order.len() > self.capacity {
                if let Some(oldest) = order.pop_front() {
                    map.remove(&oldest);
                }
            }
        }
    }

    /// Forgets a finished session.
    pub fn remove(&self, session: &str) {
        let mut inner = self.inner();
        let (map, order) = &mut *inner;
        if map.remove(session).is_some() {
            order.retain(|s| s != session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn ranges() {
        let cases: &[(&str, Option<(u64, u64)>)] = &[
            ("0-99", Some((0, 99))),
            ("100-199", Some((100, 199))),
            ("bytes 100-199/*", Some((100, 199))),
            ("bytes=5-9", Some((5, 9))),
            ("x-1", None),
            ("", None),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::CONTENT_RANGE,
                HeaderValue::from_str(value).expect("header"),
            );
            assert_eq!(content_range(&headers), *expected, "{value}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RANGE, HeaderValue::from_static("0-1023"));
        assert_eq!(upstream_range_end(&headers), Some(1024));
    }

    #[test]
    fn progress_is_bounded() {
        let progress = UploadProgress::new(1);
        progress.set("a", 5);
        progress.set("b", 7);
        assert_eq!(progress.get("a"), 0);
        assert_eq!(progress.get("b"), 7);
        progress.remove("b");
        assert_eq!(progress.get("b"), 0);
    }
}
