//! The `serve` flags of the inventory and of the notification endpoint.

/// Flags of the registry inventory (`serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct InventoryArgs {
    /// How often each namespace the inventory knows is read again from the registry and the
    /// inventory corrected (each correction logged and counted).
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_INVENTORY_REFRESH",
        default_value = "10m"
    )]
    pub inventory_refresh: humantime::Duration,

    /// Requests to the registry at once while the inventory reads a namespace.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_INVENTORY_CONCURRENCY",
        default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub inventory_concurrency: u16,

    /// Repositories whose tags are kept for the tag count (each read by one tag listing the
    /// first time it is counted); past that, the least recently used are dropped and listed
    /// again when next counted. About 7 MiB per 100,000 tags kept (docs/performance.md).
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_TAG_INVENTORY_REPOSITORIES",
        default_value_t = 2_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub tag_inventory_repositories: u32,

    /// A file (a mounted Secret) holding the bearer token the registry must send with its
    /// notifications (`Authorization: Bearer <token>`); without it, notifications are accepted
    /// from anyone who reaches the admin listener.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_NOTIFICATIONS_TOKEN_FILE",
        value_name = "PATH"
    )]
    pub notifications_token_file: Option<std::path::PathBuf>,

    /// Largest notification body accepted; a larger one is answered 413.
    #[arg(
        long,
        env = "REGISTRY_GATEWAY_NOTIFICATIONS_MAX_BODY",
        default_value = "1MiB"
    )]
    pub notifications_max_body: limits_core::ByteSize,

    /// Export each namespace's usage and quota on /metrics
    /// (`registry_gateway_namespace_usage{namespace,kind}`,
    /// `registry_gateway_namespace_quota{namespace,kind}`): one series per kind for each
    /// namespace the inventory has read. Off by default.
    #[arg(long, env = "REGISTRY_GATEWAY_NAMESPACE_USAGE_METRICS")]
    pub namespace_usage_metrics: bool,
}
