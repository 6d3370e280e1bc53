//! A one-line progress count on stderr, shown only when stderr is a terminal.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts repositories (or namespaces) read; draws `reading repositories: 12/40` over itself.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    what: &'static str,
    total: AtomicUsize,
    done: AtomicUsize,
}

impl Progress {
    /// A progress line of repositories, drawn only when `enabled` (stderr is a terminal).
    pub fn new(enabled: bool) -> Self {
        Self::counting(enabled, "repositories")
    }

    /// A progress line of `what` (`namespaces`), drawn only when `enabled`.
    pub fn counting(enabled: bool, what: &'static str) -> Self {
        Self {
            enabled,
            what,
            total: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        }
    }

    /// Starts counting up to `total`.
    pub fn start(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
        self.draw(0);
    }

    /// One more read.
    pub fn step(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.draw(done);
    }

    /// Erases the line.
    pub fn finish(&self) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }

    fn draw(&self, done: usize) {
        if self.enabled {
            let total = self.total.load(Ordering::Relaxed);
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\rreading {}: {done}/{total}", self.what);
            let _ = err.flush();
        }
    }
}
