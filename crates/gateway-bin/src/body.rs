//! Body types shared by the server and the upstream client, and the discarding of a refused
//! request's body.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

/// Errors inside a body stream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed body in either direction.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// Bytes of a refused upload still read and discarded after the refusal, so the client reads
/// the 403 instead of a connection reset.
const DRAIN_BYTES: u64 = 256 << 20;
/// Longest time spent discarding a refused upload's remaining bytes.
const DRAIN_TIME: Duration = Duration::from_secs(10);

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

/// A body of bytes already in memory.
pub(crate) fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}
