//! Moving a response body socket to socket through a pipe with `splice(2)`, without copying
//! it into the process; elsewhere than on Linux, copying it.

use std::io;

use bytes::BytesMut;
use tokio::net::TcpStream;

use crate::io::Watched;

use super::copy::copy_exact;

/// The pipe's size for splicing: the kernel's default ceiling for unprivileged processes.
const PIPE_SIZE: usize = 1024 * 1024;

/// A pipe for splicing, made for one large body and closed after it.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct Pipe {
    read: std::os::fd::OwnedFd,
    write: std::os::fd::OwnedFd,
    /// Bytes the pipe holds.
    size: usize,
}

#[cfg(target_os = "linux")]
impl Pipe {
    fn new() -> io::Result<Self> {
        use rustix::pipe::{PipeFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with};
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        // A larger pipe moves more per system call; the default (64 KiB) when refused.
        let size = fcntl_setpipe_size(&write, PIPE_SIZE).or_else(|_| fcntl_getpipe_size(&write))?;
        Ok(Self { read, write, size })
    }
}

/// Moves exactly `remaining` body bytes from the upstream's socket to the client's through a
/// pipe, never through the process's memory. Falls back to copying if no pipe can be made.
/// Returns how the bytes moved: `splice` or `copy`.
#[cfg(target_os = "linux")]
pub(super) async fn splice_body(
    upstream: &mut TcpStream,
    conn: &mut Watched,
    remaining: u64,
    scratch: &mut BytesMut,
) -> io::Result<&'static str> {
    // Made for this body and closed after it: an idle keep-alive connection holds no pipe
    // (two descriptors, and pipe pages counted against the user's limit whether used or not).
    let pipe = match Pipe::new() {
        Ok(pipe) => pipe,
        Err(err) => {
            tracing::debug!(error = %err, "no pipe for splicing; copying instead");
            copy_exact(upstream, conn, remaining, scratch).await?;
            return Ok("copy");
        }
    };
    splice_loop(upstream, conn, remaining, &pipe).await?;
    Ok("splice")
}

#[cfg(target_os = "linux")]
async fn splice_loop(
    upstream: &TcpStream,
    conn: &Watched,
    mut remaining: u64,
    pipe: &Pipe,
) -> io::Result<()> {
    use rustix::io::Errno;
    use rustix::pipe::{SpliceFlags, splice};
    use tokio::io::Interest;

    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    let client = conn.tcp();
    // Bytes in the pipe, spliced from the upstream and not yet to the client.
    let mut in_pipe = 0;
    while remaining > 0 || in_pipe > 0 {
        if remaining > 0 && in_pipe < pipe.size {
            let want = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(pipe.size - in_pipe);
            let fill = || splice(upstream, None, &pipe.write, None, want, flags);
            let moved = if in_pipe == 0 {
                // With the pipe empty, "would block" can only mean the socket has nothing:
                // let tokio clear its readiness and wait for more.
                match upstream.try_io(Interest::READABLE, || fill().map_err(io::Error::from)) {
                    Ok(n) => Some(n),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        upstream.readable().await?;
                        None
                    }
                    Err(err) => return Err(err),
                }
            } else {
                // A part-full pipe may be what blocks: top it up without touching the
                // socket's readiness.
                match fill() {
                    Ok(n) => Some(n),
                    Err(Errno::AGAIN) => None,
                    Err(err) => return Err(err.into()),
                }
            };
            match moved {
                Some(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Some(n) => {
                    in_pipe += n;
                    remaining -= n as u64;
                }
                None => {}
            }
        }
        if in_pipe > 0 {
            let drain =
                || splice(&pipe.read, None, client, None, in_pipe, flags).map_err(io::Error::from);
            match client.try_io(Interest::WRITABLE, drain) {
                Ok(n) => {
                    in_pipe -= n;
                    conn.touch();
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => client.writable().await?,
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

/// Without `splice(2)`, bodies are copied.
#[cfg(not(target_os = "linux"))]
pub(super) async fn splice_body(
    upstream: &mut TcpStream,
    conn: &mut Watched,
    remaining: u64,
    scratch: &mut BytesMut,
) -> io::Result<&'static str> {
    copy_exact(upstream, conn, remaining, scratch).await?;
    Ok("copy")
}
