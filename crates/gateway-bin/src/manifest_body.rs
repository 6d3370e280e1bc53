//! A manifest push's body: read within the body read timeout and the manifest size bound,
//! its bytes held against the gateway's manifest buffer budget.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use oci_manifest::MAX_MANIFEST_BYTES;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::body::drain;
use crate::refusal::Refusal;

/// A `Warning` header of the OCI distribution spec 1.1: code 299, no agent, the text quoted.
pub(crate) fn warning_header(text: &str) -> http::HeaderValue {
    let mut quoted = String::with_capacity(text.len() + 8);
    quoted.push_str("299 - \"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            c if c.is_control() => quoted.push(' '),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    http::HeaderValue::from_bytes(quoted.as_bytes())
        .unwrap_or_else(|_| http::HeaderValue::from_static("299 - \"limit warning\""))
}

/// Bytes of the manifest buffer budget held by one body while it is in memory.
#[derive(Debug)]
pub struct BufferPermit {
    budget: Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

impl BufferPermit {
    fn new(budget: Arc<Semaphore>) -> Self {
        Self {
            budget,
            held: None,
            bytes: 0,
        }
    }

    /// Takes `bytes` more from the budget, or refuses at once when it is spent: a body never
    /// waits for memory, so stalled uploads cannot queue up behind each other.
    fn grow(&mut self, bytes: usize) -> Result<(), Refusal> {
        if bytes == 0 {
            return Ok(());
        }
        let permits = u32::try_from(bytes).unwrap_or(u32::MAX);
        let more = Arc::clone(&self.budget)
            .try_acquire_many_owned(permits)
            .map_err(|_| Refusal::Busy)?;
        match &mut self.held {
            Some(held) => held.merge(more),
            None => self.held = Some(more),
        }
        self.bytes += bytes;
        Ok(())
    }
}

/// Reads a manifest body (of `declared` length, when its head declares one) of at most
/// [`MAX_MANIFEST_BYTES`] within the body read timeout,
/// holding its bytes against the buffer budget. A larger body is refused before any of it
/// reaches the upstream.
pub(crate) async fn read_body(
    declared: Option<u64>,
    mut body: Incoming,
    budget: &Arc<Semaphore>,
    timeout: Duration,
) -> Result<(Bytes, BufferPermit), Refusal> {
    if let Some(len) = declared.filter(|len| *len > MAX_MANIFEST_BYTES as u64) {
        drain(body);
        return Err(Refusal::ManifestTooLarge { size: Some(len) });
    }
    let mut permit = BufferPermit::new(Arc::clone(budget));
    if let Some(len) = declared {
        if let Err(refusal) = permit.grow(len as usize) {
            drain(body);
            return Err(refusal);
        }
    }
    let mut bytes = BytesMut::with_capacity(declared.map_or(8 * 1024, |len| len as usize));
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| Refusal::ManifestUnreadable {
                cause: err.to_string(),
            })?;
            if let Some(data) = frame.data_ref() {
                if bytes.len() + data.len() > MAX_MANIFEST_BYTES {
                    return Err(Refusal::ManifestTooLarge { size: None });
                }
                let beyond = (bytes.len() + data.len()).saturating_sub(permit.bytes);
                permit.grow(beyond)?;
                bytes.extend_from_slice(data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(())) => Ok((bytes.freeze(), permit)),
        Ok(Err(refusal)) => {
            drain(body);
            Err(refusal)
        }
        Err(_) => Err(Refusal::BodyTimeout { after: timeout }),
    }
}
