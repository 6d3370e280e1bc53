//! The pool of idle upstream connections kept for reuse.

use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// Idle upstream connections kept for reuse.
const MAX_IDLE: usize = 64;
/// How long an idle upstream connection is kept (hyper's client keeps them as long).
const IDLE_KEEP: Duration = Duration::from_secs(90);

/// Idle upstream connections, each with the moment it went idle.
#[derive(Debug, Default)]
pub(super) struct Pool {
    idle: Mutex<Vec<(TcpStream, Instant)>>,
}

impl Pool {
    /// An idle upstream connection that is still open.
    pub(super) fn check_out(&self) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((stream, since)) = idle.pop() {
            if since.elapsed() >= IDLE_KEEP {
                continue;
            }
            // An open, quiet connection has nothing to read; a closed one reads 0 bytes.
            let mut probe = [0u8; 1];
            if matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            {
                return Some(stream);
            }
        }
        None
    }

    pub(super) fn check_in(&self, stream: TcpStream) {
        // One reading of the clock for the whole list.
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|(_, since)| now.saturating_duration_since(*since) < IDLE_KEEP);
        if idle.len() < MAX_IDLE {
            idle.push((stream, now));
        }
    }
}
