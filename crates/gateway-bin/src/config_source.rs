//! Loading the limits from a file or a mounted ConfigMap directory, and reloading them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use limits_core::{ConfigError, Policy};
use tokio::sync::watch;

use crate::hangup::Hangups;
use crate::metrics::Metrics;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// What was read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The content is not a valid configuration.
    #[error("invalid configuration {path}: {source}")]
    Invalid {
        /// What was read.
        path: PathBuf,
        /// Why it is invalid.
        #[source]
        source: Box<ConfigError>,
    },
}

/// The raw content behind a config path: one file, or the key files of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    File(String),
    Directory(Vec<(String, String)>),
}

/// Reads what `path` holds, following the `..data` symlinks of a Kubernetes ConfigMap mount.
fn read(path: &Path) -> Result<Content, LoadError> {
    let err = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(err)?;
    if !metadata.is_dir() {
        return std::fs::read_to_string(path)
            .map(Content::File)
            .map_err(err);
    }
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(path).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Kubernetes keeps the real files in `..<timestamp>` and points `..data` at them.
        if name.starts_with("..") {
            continue;
        }
        let file = entry.path();
        let is_file = std::fs::metadata(&file).map_err(err)?.is_file();
        if !is_file {
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Read {
            path: file.clone(),
            source,
        })?;
        entries.push((name, text));
    }
    entries.sort();
    Ok(Content::Directory(entries))
}

fn compile(path: &Path, content: &Content) -> Result<Policy, LoadError> {
    let result = match content {
        Content::File(text) => Policy::from_yaml(text),
        Content::Directory(entries) => {
            Policy::from_entries(entries.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }
    };
    result.map_err(|source| LoadError::Invalid {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

/// Loads and compiles the configuration at `path` (file or directory).
pub fn load(path: &Path) -> Result<Policy, LoadError> {
    compile(path, &read(path)?)
}

/// The live configuration: the policy in force, replaced when the source changes.
#[derive(Debug)]
pub struct ConfigSource {
    path: PathBuf,
    last_seen: Option<Content>,
    sender: watch::Sender<Arc<Policy>>,
    metrics: Arc<Metrics>,
}

impl ConfigSource {
    /// Loads the configuration once; fails when it is invalid.
    pub fn open(
        path: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, watch::Receiver<Arc<Policy>>), LoadError> {
        let content = read(path)?;
        let policy = compile(path, &content)?;
        metrics.config_loaded(&policy, true);
        let (sender, receiver) = watch::channel(Arc::new(policy));
        Ok((
            Self {
                path: path.to_owned(),
                last_seen: Some(content),
                sender,
                metrics,
            },
            receiver,
        ))
    }

    /// Reads the source again and swaps the policy in when the content changed and is valid.
    /// An invalid change is logged once and counted; the last good policy stays in force.
    pub fn reload(&mut self) {
        let content = match read(&self.path) {
            Ok(content) => content,
            Err(err) => {
                // A mount in the middle of a kubelet swap can vanish for an instant; the next
                // poll sees the new files.
                tracing::warn!(error = %err, "config reload: cannot read the configuration");
                return;
            }
        };
        if self.last_seen.as_ref() == Some(&content) {
            return;
        }
        self.last_seen = Some(content.clone());
        match compile(&self.path, &content) {
            Ok(policy) => {
                tracing::info!(
                    path = %self.path.display(),
                    global = %policy.global(),
                    rules = policy.rules().len(),
                    "config reloaded"
                );
                self.metrics.config_loaded(&policy, true);
                self.sender.send_replace(Arc::new(policy));
            }
            Err(err) => {
                tracing::error!(error = %err, "config reload refused; the last good configuration stays in force");
                self.metrics.config_reload_failed();
            }
        }
    }

    /// Polls every `interval` and reloads on `SIGHUP` until the process ends.
    pub async fn watch(mut self, interval: Duration) {
        let mut hangups = Hangups::new();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once; the configuration was just loaded.
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = hangups.recv() => tracing::info!("SIGHUP: reloading the configuration"),
            }
            self.reload();
        }
    }
}
