//! Body types shared by the server and the upstream client.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

/// Errors inside a body stream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed body in either direction.
pub type ProxyBody = BoxBody<Bytes, BoxError>;
