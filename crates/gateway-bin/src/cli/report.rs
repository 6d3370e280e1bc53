//! The options of `report`, and the registry account `report`, `check-config --upstream` and
//! `explain --upstream` read the registry with.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use url::Url;

use super::http_url;

/// Options of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Configuration file (data keys or a whole ConfigMap) or mounted ConfigMap directory.
    #[arg(long, env = "REGISTRY_GATEWAY_CONFIG")]
    pub config: PathBuf,

    /// The registry to read, such as `http://docker-registry:5000`; in Harbor mode, Harbor's
    /// public address (the gateway's --external-url).
    #[arg(long, env = "REGISTRY_GATEWAY_UPSTREAM", value_parser = http_url)]
    pub upstream: Url,

    /// The account the registry is read with.
    #[command(flatten)]
    pub account: RegistryAccount,

    /// Output format.
    #[arg(long, env = "REGISTRY_GATEWAY_REPORT_FORMAT", value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,

    /// Most requests to the registry at once.
    #[arg(long, env = "REGISTRY_GATEWAY_REPORT_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// A repository is `near` when its tag count or largest image is at or above this percent
    /// of its limit (default 80); a namespace, when a count is at or above it of its quota
    /// (default: the quota's warn_at, else 90).
    #[arg(long, env = "REGISTRY_GATEWAY_REPORT_NEAR", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub near: Option<u8>,

    /// Report namespaces instead of repositories: each namespace's repositories, images, tags
    /// and storage, counted as the gateway's inventory counts them, against its namespace
    /// quota and its repositories' image_count_limit.
    #[arg(long, env = "REGISTRY_GATEWAY_REPORT_NAMESPACES")]
    pub namespaces: bool,

    /// Exit with status 3 when a repository is over a limit (`over`), or over or near one
    /// (`near`).
    #[arg(long, env = "REGISTRY_GATEWAY_REPORT_FAIL_ON", value_enum)]
    pub fail_on: Option<FailOn>,
}

/// How `report`, and `check-config` and `explain` with `--upstream`, read the registry: the
/// account and the timeouts.
#[derive(Debug, Args)]
pub struct RegistryAccount {
    /// A directory laid out like the Secret `registry-gateway-external-registry-secret` (files
    /// `username`, `password`, optional `insecure`); wins over --username and --password.
    #[arg(long, env = "REGISTRY_GATEWAY_REPORT_CREDENTIALS_DIR")]
    pub credentials_dir: Option<PathBuf>,

    /// User name for the registry (Basic or token auth). Without an account the registry is
    /// read anonymously.
    #[arg(long, env = "REGISTRY_GATEWAY_REPORT_USERNAME")]
    pub username: Option<String>,

    /// Password or robot token. Prefer the environment variable or --credentials-dir to keep it
    /// out of process listings.
    #[arg(long, env = "REGISTRY_GATEWAY_REPORT_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// Skip certificate checks, and allow a plain http token service behind an https registry.
    #[arg(long, env = "REGISTRY_GATEWAY_REPORT_INSECURE")]
    pub insecure: bool,

    /// Longest wait for one answer of the registry.
    #[arg(long, env = "REGISTRY_GATEWAY_UPSTREAM_TIMEOUT", default_value = "30s")]
    pub upstream_timeout: humantime::Duration,

    /// Longest wait for a connection to the registry.
    #[arg(long, env = "REGISTRY_GATEWAY_CONNECT_TIMEOUT", default_value = "5s")]
    pub connect_timeout: humantime::Duration,
}

/// Output formats of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns for people; sizes like `25.0 MiB` (with exact bytes where rounding would
    /// make a size read as its limit).
    Table,
    /// An array of objects with sizes in bytes and counts as numbers; `null` for unlimited.
    Json,
    /// A header row, then one row per repository (RFC 4180); sizes in bytes, empty for
    /// unlimited.
    Csv,
}

/// When `report` exits with status 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// A repository (a namespace) is over a limit.
    Over,
    /// A repository (a namespace) is over or near a limit.
    Near,
}
