//! Copying a response body through a buffer, for bodies that are not spliced.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::io::Watched;

use super::RelayError;
use super::chunked::Chunks;

/// Size of the copy buffer for bodies that are not spliced.
const COPY_BUFFER: usize = 64 * 1024;

/// Copies exactly `remaining` body bytes through `buf`.
pub(super) async fn copy_exact(
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
pub(super) async fn copy_to_end(
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
pub(super) async fn copy_chunked(
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
