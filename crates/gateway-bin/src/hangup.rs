//! `SIGHUP`: read the configuration (and the TLS certificate) again at once.

/// The `SIGHUP`s the process receives; each `Hangups` gets every one of them.
#[derive(Debug)]
pub struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Default for Hangups {
    fn default() -> Self {
        Self::new()
    }
}

impl Hangups {
    /// Starts listening; without signal support (or when it cannot be set up), none arrive.
    pub fn new() -> Self {
        Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    /// Resolves at the next `SIGHUP`.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
        }
        std::future::pending::<()>().await;
    }
}
