//! Command-line interface. Every flag also reads an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use url::Url;

mod report;

pub use report::{FailOn, RegistryAccount, ReportArgs, ReportFormat};

/// A reverse proxy for OCI registries that refuses pushes exceeding image size and tag count
/// limits.
#[derive(Debug, Parser)]
#[command(name = "registry-gateway", version, about, long_about = None)]
pub struct Cli {
    /// Log line format.
    #[arg(long, env = "REGISTRY_GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable `key=value` lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy.
    Serve(Box<ServeArgs>),
    /// Validate a configuration and print the effective limits and rules; exits non-zero when
    /// it is invalid.
    CheckConfig {
        /// Configuration file (data keys or a whole ConfigMap) or mounted ConfigMap directory.
        #[arg(env = "REGISTRY_GATEWAY_CONFIG")]
        path: PathBuf,
        /// Read the registry too, and print the usage of each namespace a quota applies to.
        #[arg(long, env = "REGISTRY_GATEWAY_UPSTREAM", value_parser = http_url)]
        upstream: Option<Url>,
        /// The account the registry is read with.
        #[command(flatten)]
        account: RegistryAccount,
    },
    /// Show which rule applies to a repository and the limits that follow.
    Explain {
        /// Configuration file or mounted ConfigMap directory.
        #[arg(long, env = "REGISTRY_GATEWAY_CONFIG")]
        config: PathBuf,
        /// Repository name, such as `project-1/app`, or an image reference, such as
        /// `localhost:5000/project-1/app:v1`, whose registry host (a first component holding a
        /// `.` or `:`, or `localhost`, as Docker reads it), tag and digest are left out.
        repository: String,
        /// Read the registry too, and print what the repository and its namespace hold against
        /// their limits.
        #[arg(long, env = "REGISTRY_GATEWAY_UPSTREAM", value_parser = http_url)]
        upstream: Option<Url>,
        /// The account the registry is read with.
        #[command(flatten)]
        account: RegistryAccount,
    },
    /// Print the limits of a configuration in another system's format.
    Export {
        /// The format.
        #[command(subcommand)]
        target: ExportTarget,
    },
    /// Read limits written in another system's format back into a configuration.
    Import {
        /// The format.
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Read the registry (catalog, tag lists, manifests) and print each repository's tag count
    /// and largest image against the limits that apply to it, those over or near a limit
    /// first.
    Report(Box<ReportArgs>),
}

/// Formats `export` writes.
#[derive(Debug, Subcommand)]
pub enum ExportTarget {
    /// Registry v2: one Kubernetes LimitRange per namespace (the repository path's first
    /// component), with a comment on every limit it cannot express exactly.
    RegistryV2(ExportArgs),
}

/// Options of `export registry-v2`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Configuration file (data keys or a whole ConfigMap) or mounted ConfigMap directory.
    #[arg(long, env = "REGISTRY_GATEWAY_CONFIG")]
    pub config: PathBuf,

    /// Namespaces to write a LimitRange for, comma-separated. Without it, the namespaces of the
    /// repositories in `--upstream`'s catalog, else those the rules name.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_EXPORT_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,

    /// A registry whose catalog (`GET /v2/_catalog`) lists the repositories in use.
    #[arg(long, env = "REGISTRY_GATEWAY_UPSTREAM", value_parser = http_url)]
    pub upstream: Option<Url>,

    /// Username for the catalog, when the registry wants one.
    #[arg(long, env = "REGISTRY_GATEWAY_EXPORT_USERNAME")]
    pub username: Option<String>,

    /// Password for the catalog.
    #[arg(long, env = "REGISTRY_GATEWAY_EXPORT_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

/// Formats `import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// Registry v2 LimitRange objects (YAML files, several documents each); prints the
    /// configuration with one rule per namespace.
    RegistryV2 {
        /// Files holding the objects, as `kubectl get limitrange -A -o yaml` prints them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// An `http://` or `https://` URL, the value of every URL flag. A value without a scheme
/// (`127.0.0.1:5000`, `registry.example.com`) is refused with the hint to add one, rather than
/// with the URL parser's `relative URL without a base`, or read as a URL of scheme `localhost`.
pub fn http_url(value: &str) -> Result<Url, String> {
    let add_scheme = || {
        format!(
            "no scheme: add http:// or https:// (http://{value} for a plain-HTTP registry, https://{value} for TLS)"
        )
    };
    if !value.contains("://") {
        return Err(add_scheme());
    }
    let url = Url::parse(value).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "the scheme is {other}://: expected http:// or https://"
        )),
    }
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (data keys or a whole ConfigMap) or mounted ConfigMap directory.
    /// Changes are picked up without a restart.
    #[arg(long, env = "REGISTRY_GATEWAY_CONFIG")]
    pub config: PathBuf,

    /// The registry to proxy, such as `http://docker-registry:5000`.
    #[arg(long, env = "REGISTRY_GATEWAY_UPSTREAM", value_parser = http_url)]
    pub upstream: Url,

    /// Address of the proxy.
    #[arg(long, env = "REGISTRY_GATEWAY_LISTEN", default_value = "0.0.0.0:5000")]
    pub listen: SocketAddr,

    /// Address of `/metrics`, `/healthz`, `/readyz` and `/readyz/coordination`. It answers
    /// anyone who can reach it (metrics name repositories and rules): bind it to loopback or a
    /// pod network that only the scraper reaches.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_ADMIN_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    pub admin_listen: SocketAddr,

    /// PEM file of the proxy listener's certificate chain: the server's certificate first, then
    /// its intermediates. With --tls-key, the proxy listener serves TLS only (HTTP/2 and
    /// HTTP/1.1 by ALPN); the admin listener stays plain HTTP. Read again when it changes, as
    /// the configuration is.
    #[arg(long, env = "REGISTRY_GATEWAY_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file of the private key of --tls-cert's certificate (PKCS#8, RSA PKCS#1 or EC
    /// SEC1).
    #[arg(long, env = "REGISTRY_GATEWAY_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,

    /// Harbor mode: the registry's public address (Harbor core), through which tag counts are
    /// read with the gateway's own credentials.
    #[arg(long, env = "REGISTRY_GATEWAY_EXTERNAL_URL", value_parser = http_url)]
    pub external_url: Option<Url>,

    /// Harbor mode: a directory laid out like the Secret
    /// `registry-gateway-external-registry-secret` (files `username`, `password`, optional
    /// `insecure`).
    #[arg(long, env = "REGISTRY_GATEWAY_EXTERNAL_CREDENTIALS_DIR")]
    pub external_credentials_dir: Option<PathBuf>,

    /// Harbor mode: user name (a robot account with `repository:pull` and `tag:list`).
    #[arg(long, env = "REGISTRY_GATEWAY_EXTERNAL_USERNAME")]
    pub external_username: Option<String>,

    /// Harbor mode: password or robot token. Prefer the environment variable or the
    /// credentials directory to keep it out of process listings.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_EXTERNAL_PASSWORD",
        hide_env_values = true
    )]
    pub external_password: Option<String>,

    /// Harbor mode: skip certificate checks and allow plain http towards the external URL.
    #[arg(long, env = "REGISTRY_GATEWAY_EXTERNAL_INSECURE")]
    pub external_insecure: bool,

    /// Allow pushes whose tag count or layer sizes cannot be read from the upstream, instead
    /// of refusing them with 503.
    #[arg(long, env = "REGISTRY_GATEWAY_FAIL_OPEN")]
    pub fail_open: bool,

    /// Post one CloudEvents 1.0 event per limit decision that refused, warned about or audited
    /// a push to this URL, in the background (a slow or dead receiver never delays a push).
    #[arg(long, env = "REGISTRY_GATEWAY_WEBHOOK_URL", value_parser = http_url)]
    pub webhook_url: Option<url::Url>,

    /// A file (a mounted Secret) holding the `Authorization` header value sent with each
    /// webhook event, such as `Bearer <token>`.
    #[arg(long, env = "REGISTRY_GATEWAY_WEBHOOK_AUTHORIZATION_FILE")]
    pub webhook_authorization_file: Option<std::path::PathBuf>,

    /// The `Authorization` header value sent with each webhook event (prefer the file).
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_WEBHOOK_AUTHORIZATION",
        hide_env_values = true
    )]
    pub webhook_authorization: Option<String>,

    /// Webhook events waiting to be delivered at most; beyond, new ones are dropped and
    /// counted.
    #[arg(long, env = "REGISTRY_GATEWAY_WEBHOOK_QUEUE", default_value_t = 1024)]
    pub webhook_queue: usize,

    /// Longest wait for one webhook delivery attempt.
    #[arg(long, env = "REGISTRY_GATEWAY_WEBHOOK_TIMEOUT", default_value = "5s")]
    pub webhook_timeout: humantime::Duration,

    /// Delivery attempts of one webhook event after the first failed, with exponential
    /// backoff from 200ms up to 30s.
    #[arg(long, env = "REGISTRY_GATEWAY_WEBHOOK_RETRIES", default_value_t = 5)]
    pub webhook_retries: u32,

    /// Serve every request through hyper, turning off the relay of plain reads (GET and HEAD
    /// over HTTP/1.1 to a plain-HTTP upstream) that splices response bodies socket to socket.
    #[arg(long, env = "REGISTRY_GATEWAY_NO_READ_RELAY")]
    pub no_read_relay: bool,

    /// How often the configuration is checked for changes (SIGHUP reloads at once).
    #[arg(long, env = "REGISTRY_GATEWAY_RELOAD_INTERVAL", default_value = "2s")]
    pub reload_interval: humantime::Duration,

    /// How long requests in flight may run after SIGTERM before the process exits.
    #[arg(long, env = "REGISTRY_GATEWAY_SHUTDOWN_TIMEOUT", default_value = "30s")]
    pub shutdown_timeout: humantime::Duration,

    /// Longest wait for the upstream's answer to a tag listing, a layer check, a manifest push
    /// or a request without a body. Streamed uploads have no such bound.
    #[arg(long, env = "REGISTRY_GATEWAY_UPSTREAM_TIMEOUT", default_value = "30s")]
    pub upstream_timeout: humantime::Duration,

    /// Longest wait for a connection to the upstream.
    #[arg(long, env = "REGISTRY_GATEWAY_CONNECT_TIMEOUT", default_value = "5s")]
    pub connect_timeout: humantime::Duration,

    /// How long a tag reserved by a push (reserved before its manifest is forwarded) counts
    /// even if the upstream's tag listing does not show it: a push whose outcome is unknown (a
    /// timeout, a process killed while forwarding) keeps its tags counted this long. Must be
    /// longer than --upstream-timeout plus --lease-wait.
    #[arg(long, env = "REGISTRY_GATEWAY_RECENT_TAG_WINDOW", default_value = "5m")]
    pub recent_tag_window: humantime::Duration,

    /// Layer sizes remembered by digest.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_BLOB_SIZE_CACHE",
        default_value_t = 100_000
    )]
    pub blob_size_cache: usize,

    /// Layer size checks sent at once for one manifest, and immutable tags read at once for
    /// one manifest delete.
    #[arg(long, env = "REGISTRY_GATEWAY_HEAD_CONCURRENCY", default_value_t = 8)]
    pub head_concurrency: usize,

    /// Longest time a client may take to send a request's head; also how long an idle
    /// HTTP/1 connection waits for its next request. Applies to the admin listener too.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_HEADER_READ_TIMEOUT",
        default_value = "30s"
    )]
    pub header_read_timeout: humantime::Duration,

    /// Longest time a manifest body may take to arrive (bodies the gateway buffers).
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_BODY_READ_TIMEOUT",
        default_value = "30s"
    )]
    pub body_read_timeout: humantime::Duration,

    /// A connection over which no byte moved for this long is closed (HTTP/1 and HTTP/2),
    /// whatever it is doing: also a stalled upload, or a request whose answer the registry
    /// takes this long to give. Must be longer than --upstream-timeout and than the longest
    /// time the registry takes to complete an upload (object storage may take minutes for a
    /// large blob).
    #[arg(long, env = "REGISTRY_GATEWAY_IDLE_TIMEOUT", default_value = "10m")]
    pub idle_timeout: humantime::Duration,

    /// Most client connections open at once. When all are taken, the connection idle longest
    /// (no request in flight) is closed for a new one; only when every connection carries a
    /// request does a new one wait to be accepted.
    #[arg(long, env = "REGISTRY_GATEWAY_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Most connections open at once from one IP address, on each listener; a new one sheds
    /// the source's connection idle longest, or is closed when all of them carry a request.
    /// 0 (the default) for no cap: behind a load balancer, every client has its address.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_MAX_CONNECTIONS_PER_SOURCE",
        default_value_t = 0
    )]
    pub max_connections_per_source: usize,

    /// Largest request head (request line and headers, a size string: 64KiB), on both
    /// listeners; also the HTTP/2 header list size. A longer head is answered 431 and its
    /// connection closed. At least 8KiB.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_MAX_HEADER_BYTES",
        default_value = "64KiB"
    )]
    pub max_header_bytes: limits_core::ByteSize,

    /// Most concurrent streams on one HTTP/2 connection.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_MAX_CONCURRENT_STREAMS",
        default_value_t = 128
    )]
    pub max_concurrent_streams: u32,

    /// Most bytes of manifest bodies held in memory at once, over all requests (a size string:
    /// 64MiB). A manifest that would go over it is answered 503 at once.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_MANIFEST_BUFFER_BUDGET",
        default_value = "64MiB"
    )]
    pub manifest_buffer_budget: limits_core::ByteSize,

    /// Coordinate tag counts with other replicas through Redis (or any server speaking its
    /// protocol): `redis://[user:password@]host:port/db`, or `rediss://` for TLS. Without it,
    /// tag counts are exact within this process only. Prefer the environment variable (or
    /// --coordination-password-file) to keep the password out of process listings.
    #[arg(long, env = "REGISTRY_GATEWAY_COORDINATION", hide_env_values = true)]
    pub coordination: Option<String>,

    /// A file holding the Redis password (a mounted Secret); replaces any password in
    /// --coordination.
    #[arg(long, env = "REGISTRY_GATEWAY_COORDINATION_PASSWORD_FILE")]
    pub coordination_password_file: Option<PathBuf>,

    /// Prefix of the gateway's Redis keys; give gateways of different registries sharing one
    /// Redis different prefixes.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_COORDINATION_PREFIX",
        default_value = "registry-gateway"
    )]
    pub coordination_prefix: String,

    /// Time to live of a repository's (and a namespace's) lease in Redis; renewed every third
    /// of it while held, so it bounds only how long a replica that died holding it blocks the
    /// repository.
    #[arg(long, env = "REGISTRY_GATEWAY_LEASE_TTL", default_value = "10s")]
    pub lease_ttl: humantime::Duration,

    /// Longest wait for a repository's (or a namespace's) lease held by another push; past it,
    /// 503.
    #[arg(long, env = "REGISTRY_GATEWAY_LEASE_WAIT", default_value = "30s")]
    pub lease_wait: humantime::Duration,

    /// Longest wait for one answer from Redis.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_COORDINATION_TIMEOUT",
        default_value = "1s"
    )]
    pub coordination_timeout: humantime::Duration,

    /// Most connections open at once on the admin listener.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_ADMIN_MAX_CONNECTIONS",
        default_value_t = 64
    )]
    pub admin_max_connections: usize,

    /// The registry inventory and its notification endpoint.
    #[command(flatten)]
    pub inventory: crate::inventory::InventoryArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_flags_take_http_and_https_urls() {
        #[rustfmt::skip]
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("http://127.0.0.1:5102", Ok("http://127.0.0.1:5102/")),
            ("https://harbor.example.com/", Ok("https://harbor.example.com/")),
            ("HTTP://Registry:5000", Ok("http://registry:5000/")),
            ("127.0.0.1:5102", Err("no scheme: add http:// or https:// (http://127.0.0.1:5102 for a plain-HTTP registry, https://127.0.0.1:5102 for TLS)")),
            ("localhost:5000", Err("no scheme: add http:// or https:// (http://localhost:5000 for a plain-HTTP registry, https://localhost:5000 for TLS)")),
            ("registry.example.com", Err("no scheme: add http:// or https:// (http://registry.example.com for a plain-HTTP registry, https://registry.example.com for TLS)")),
            ("ftp://registry", Err("the scheme is ftp://: expected http:// or https://")),
            ("http://", Err("not a URL: empty host")),
            ("http://[::1", Err("not a URL: invalid IPv6 address")),
        ];
        for (value, want) in cases {
            let got = http_url(value);
            assert_eq!(
                got.as_ref().map(Url::as_str).map_err(String::as_str),
                *want,
                "{value}"
            );
        }
    }
}
