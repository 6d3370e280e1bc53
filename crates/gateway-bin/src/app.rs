//! Start-up: the subcommand a command line names, and `serve`, which builds the gateway from
//! its flags and serves the proxy and admin listeners until SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use upstream_client::{Credentials, ReqwestUpstream};

use crate::cli::{Cli, Command, LogFormat, ServeArgs};
use crate::facts::TagSource;
use crate::gateway::{Gateway, GatewayParts};
use crate::metrics::Metrics;
use crate::options::Options;
use crate::{
    admin, blob_sizes, config_source, connections, coordination, credentials, inspect, inventory,
    migrate, relay, report, server, subjects, tls, upload_sessions, upstream, webhook,
};

/// Runs the subcommand `cli` names; the process's exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::CheckConfig {
            path,
            upstream,
            account,
        } => inspect::check_config(&path, upstream_of(upstream.as_ref(), &account)),
        Command::Explain {
            config,
            repository,
            upstream,
            account,
        } => inspect::explain(
            &config,
            &repository,
            upstream_of(upstream.as_ref(), &account),
        ),
        Command::Export { target } => migrate::export(target),
        Command::Import { source } => migrate::import(source),
        Command::Report(args) => match report::run(*args) {
            Ok(code) => return code,
            Err(err) => Err(err),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the message already
/// holds (the libraries' messages name their cause themselves).
fn error_chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

/// Logs to standard error, as text or JSON lines, filtered by `RUST_LOG` (default `info`;
/// `warn` for `report`, whose stderr is for what went wrong).
pub fn init_logging(cli: &Cli) {
    let default = match cli.command {
        Command::Report(_) | Command::CheckConfig { .. } | Command::Explain { .. } => "warn",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// The registry `check-config` and `explain` read, when `--upstream` is given.
fn upstream_of<'a>(
    url: Option<&'a url::Url>,
    account: &'a crate::cli::RegistryAccount,
) -> Option<inspect::Upstream<'a>> {
    url.map(|url| inspect::Upstream { url, account })
}

/// Harbor mode credentials: the Secret's directory, else the environment or flags.
fn external_credentials(args: &ServeArgs) -> anyhow::Result<(Credentials, bool)> {
    let source = credentials::CredentialSource {
        dir: args.external_credentials_dir.as_deref(),
        username: args.external_username.as_deref(),
        password: args.external_password.as_deref(),
        insecure: args.external_insecure,
    };
    source.load()?.context(
        "--external-url needs credentials: --external-credentials-dir, or REGISTRY_GATEWAY_EXTERNAL_USERNAME and REGISTRY_GATEWAY_EXTERNAL_PASSWORD",
    )
}

/// The webhook that decisions are notified to, when `--webhook-url` is given.
fn webhook(args: &ServeArgs, metrics: &Arc<Metrics>) -> anyhow::Result<Option<webhook::Webhook>> {
    let Some(url) = &args.webhook_url else {
        return Ok(None);
    };
    let authorization = match (
        &args.webhook_authorization_file,
        &args.webhook_authorization,
    ) {
        (Some(path), _) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        ),
        (None, Some(value)) => Some(value.clone()),
        (None, None) => None,
    };
    let authorization = authorization
        .map(|value| {
            let mut value = http::HeaderValue::from_str(&value).map_err(|_| {
                anyhow::anyhow!("the webhook Authorization value is not a valid header value")
            })?;
            value.set_sensitive(true);
            Ok::<_, anyhow::Error>(value)
        })
        .transpose()?;
    tracing::info!(webhook = %url, authorization = authorization.is_some(), queue = args.webhook_queue, "decisions notified to a webhook");
    Ok(Some(webhook::Webhook::start(
        webhook::WebhookSettings {
            url: url.clone(),
            authorization,
            queue: args.webhook_queue,
            timeout: *args.webhook_timeout,
            retries: args.webhook_retries,
        },
        Arc::clone(metrics),
    )?))
}

/// The Redis URL, with the password from `password_file` when given.
fn coordination_url(url: &str, password_file: Option<&Path>) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).map_err(|e| {
        anyhow::anyhow!(
            "invalid --coordination URL {}: {e}",
            coordination::redacted(url)
        )
    })?;
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        bail!(
            "invalid --coordination URL {}: expected redis:// or rediss://",
            coordination::redacted(url)
        );
    }
    if let Some(path) = password_file {
        let password = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let password = password.trim_end_matches(['\n', '\r']);
        parsed
            .set_password(Some(password))
            .map_err(|()| anyhow::anyhow!("--coordination URL cannot take a password"))?;
    }
    Ok(parsed.to_string())
}

fn http_client(args: &ServeArgs) -> anyhow::Result<upstream::forward::HttpClient> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(*args.connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .context("cannot load the system's root certificates")?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .build(connector))
}

#[tokio::main]
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let (source, policy) = config_source::ConfigSource::open(&args.config, Arc::clone(&metrics))?;
    {
        let current = policy.borrow();
        tracing::info!(config = %args.config.display(), global = %current.global(), rules = current.rules().len(), "configuration loaded");
    }
    let registry = Arc::new(
        ReqwestUpstream::builder(args.upstream.clone())
            .connect_timeout(*args.connect_timeout)
            .request_timeout(*args.upstream_timeout)
            .build()
            .context("invalid --upstream")?,
    );
    let tag_source = match &args.external_url {
        None => TagSource::Upstream,
        Some(url) => {
            let (credentials, insecure) = external_credentials(&args)?;
            tracing::info!(external_url = %url, username = credentials.username(), insecure, "Harbor mode: tag counts read through the external URL");
            TagSource::External(Arc::new(
                ReqwestUpstream::builder(url.clone())
                    .credentials(credentials)
                    .insecure(insecure)
                    .connect_timeout(*args.connect_timeout)
                    .request_timeout(*args.upstream_timeout)
                    .build()
                    .context("invalid --external-url")?,
            ))
        }
    };
    // The inventory reads the registry as tag counts do: through Harbor's external URL with the
    // robot account in Harbor mode, else the upstream itself.
    let inventory_reader = match &tag_source {
        TagSource::External(external) => Arc::clone(external),
        TagSource::Upstream => Arc::clone(&registry),
    };
    let inventory = Arc::new(
        inventory::Inventory::new(
            inventory_reader,
            usize::from(args.inventory.inventory_concurrency),
            Arc::new(inventory::InventoryMetrics::new()),
        )
        .with_tag_capacity(args.inventory.tag_inventory_repositories as usize),
    );
    let notification_settings = inventory::notifications::Settings::load(
        args.inventory.notifications_token_file.as_deref(),
        args.inventory.notifications_max_body.bytes(),
    )?;
    tracing::info!(refresh = %args.inventory.inventory_refresh, token = notification_settings.token.is_some(), "registry inventory: notifications at {} on the admin listener", inventory::notifications::PATH);
    let inventory_task =
        tokio::spawn(Arc::clone(&inventory).refresh_every(*args.inventory.inventory_refresh));
    let tag_sets_task = tokio::spawn(
        Arc::clone(&inventory).refresh_tag_sets_every(*args.inventory.inventory_refresh),
    );
    let tls_files = tls::TlsFiles::from_flags(args.tls_cert.as_deref(), args.tls_key.as_deref())?;
    let mut target = upstream::target::Target::new(&args.upstream).map_err(anyhow::Error::msg)?;
    if tls_files.is_some() {
        target = target.for_tls_listener();
    }
    if *args.idle_timeout <= *args.upstream_timeout {
        bail!(
            "--idle-timeout ({}) must be longer than --upstream-timeout ({}): a connection waits without traffic while the upstream answers",
            args.idle_timeout,
            args.upstream_timeout
        );
    }
    if *args.recent_tag_window <= *args.upstream_timeout + *args.lease_wait {
        bail!(
            "--recent-tag-window ({}) must be longer than --upstream-timeout ({}) plus --lease-wait ({}): a reserved tag must keep counting until a push whose outcome is unknown has settled",
            args.recent_tag_window,
            args.upstream_timeout,
            args.lease_wait
        );
    }
    let budget = usize::try_from(args.manifest_buffer_budget.bytes())
        .unwrap_or(usize::MAX)
        .min(tokio::sync::Semaphore::MAX_PERMITS);
    if budget < oci_manifest::MAX_MANIFEST_BYTES {
        bail!(
            "--manifest-buffer-budget ({}) must hold at least one manifest of 4 MiB",
            args.manifest_buffer_budget
        );
    }
    let max_header_bytes = usize::try_from(args.max_header_bytes.bytes()).unwrap_or(usize::MAX);
    if max_header_bytes < server::MIN_HEADER_BYTES {
        bail!(
            "--max-header-bytes ({}, {max_header_bytes} bytes) must be at least {} bytes: hyper reads request heads into a buffer of at least 8 KiB",
            args.max_header_bytes,
            server::MIN_HEADER_BYTES
        );
    }
    if u32::try_from(max_header_bytes).is_err() {
        bail!(
            "--max-header-bytes ({}) must be under 4GiB (the HTTP/2 header list size is 32 bits)",
            args.max_header_bytes
        );
    }
    let coordination = match &args.coordination {
        None => coordination::Coordination::Local(coordination::local::TagLedger::default()),
        Some(url) => {
            let url = coordination_url(url, args.coordination_password_file.as_deref())?;
            if *args.lease_ttl < std::time::Duration::from_millis(300) {
                bail!("--lease-ttl ({}) must be at least 300ms", args.lease_ttl);
            }
            tracing::info!(coordination = %coordination::redacted(&url), lease_ttl = %args.lease_ttl, lease_wait = %args.lease_wait, "tag counts coordinated through Redis");
            coordination::Coordination::Redis(
                coordination::RedisCoordination::new(
                    coordination::RedisSettings {
                        url,
                        prefix: args.coordination_prefix.clone(),
                        ttl: *args.lease_ttl,
                        wait: *args.lease_wait,
                        timeout: *args.coordination_timeout,
                    },
                    Arc::clone(&metrics),
                )
                .map_err(anyhow::Error::msg)?,
            )
        }
    };
    let shared_store = match &coordination {
        coordination::Coordination::Redis(redis) => Some(redis.clone()),
        coordination::Coordination::Local(_) => None,
    };
    let store_watch = shared_store
        .clone()
        .map(|redis| tokio::spawn(redis.watch(coordination::HEALTH_INTERVAL)));
    let tls = tls_files
        .map(|files| tls::TlsSource::open(files, Arc::clone(&metrics)))
        .transpose()?;
    let entry = match &tls {
        Some(source) => server::Entry::Tls(tls::Handshake::new(
            source.server_config().context("cannot set up TLS")?,
            Arc::clone(&metrics),
        )),
        None if args.no_read_relay => server::Entry::Plain,
        None => relay::ReadRelay::new(
            target.clone(),
            *args.connect_timeout,
            *args.upstream_timeout,
            *args.header_read_timeout,
            max_header_bytes,
            Arc::clone(&metrics),
        )
        .map_or(server::Entry::Plain, |relay| {
            server::Entry::ReadRelay(Arc::new(relay))
        }),
    };
    let namespace_usage_policy = args
        .inventory
        .namespace_usage_metrics
        .then(|| policy.clone());
    let gateway = Arc::new(Gateway::new(GatewayParts {
        client: http_client(&args)?,
        target,
        registry: Arc::clone(&registry),
        tag_source,
        policy,
        coordination,
        blob_sizes: blob_sizes::BlobSizes::new(args.blob_size_cache),
        subjects: subjects::Subjects::new(args.blob_size_cache),
        uploads: upload_sessions::UploadSessions::new(10_000),
        manifest_buffers: Arc::new(tokio::sync::Semaphore::new(budget)),
        metrics: Arc::clone(&metrics),
        options: Options {
            fail_open: args.fail_open,
            upstream_timeout: *args.upstream_timeout,
            head_concurrency: args.head_concurrency,
            recent_tag_window: *args.recent_tag_window,
            body_read_timeout: *args.body_read_timeout,
        },
        webhook: webhook(&args, &metrics)?,
        // Tag sets are kept exact across replicas through the coordination's change counter.
        tag_sets: Arc::clone(inventory.tag_sets()),
        inventory: Some(Arc::clone(&inventory)),
    }));
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let admin_listener = TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.admin_listen))?;
    tracing::info!(
        listen = %listener.local_addr().map_or_else(|_| args.listen.to_string(), |a| a.to_string()),
        admin = %admin_listener.local_addr().map_or_else(|_| args.admin_listen.to_string(), |a| a.to_string()),
        upstream = %args.upstream,
        fail_open = args.fail_open,
        tls = tls.is_some(),
        read_relay = matches!(entry, server::Entry::ReadRelay(_)),
        "registry-gateway serving"
    );
    let limits = server::Limits {
        header_read_timeout: *args.header_read_timeout,
        idle_timeout: *args.idle_timeout,
        max_concurrent_streams: args.max_concurrent_streams,
        max_header_bytes,
    };
    let admin_limits = server::Limits {
        max_concurrent_streams: 16,
        ..limits.clone()
    };
    let connections = connections::Connections::new(
        "proxy",
        connections::Caps {
            max: args.max_connections,
            per_source: args.max_connections_per_source,
        },
        Arc::clone(&metrics),
    );
    let admin_connections = connections::Connections::new(
        "admin",
        connections::Caps {
            max: args.admin_max_connections,
            per_source: args.max_connections_per_source,
        },
        Arc::clone(&metrics),
    );
    let mut admin = admin::Admin::new(
        Arc::clone(&metrics),
        registry,
        shared_store,
        inventory,
        notification_settings,
    );
    if let Some(policy) = namespace_usage_policy {
        admin = admin.with_namespace_usage(policy);
    }
    let admin = Arc::new(admin);
    let admin_task = tokio::spawn(server::serve(
        admin_listener,
        admin_limits,
        admin_connections,
        move |_| {
            let admin = Arc::clone(&admin);
            hyper::service::service_fn(move |request| {
                let admin = Arc::clone(&admin);
                async move { Ok::<_, std::convert::Infallible>(admin.answer(request).await) }
            })
        },
        server::Entry::Plain,
        std::future::pending(),
        std::time::Duration::ZERO,
    ));
    let watch_task = tokio::spawn(source.watch(*args.reload_interval));
    let tls_task = tls.map(|source| tokio::spawn(source.watch(*args.reload_interval)));
    let webhook_gateway = Arc::clone(&gateway);
    let finished =
        server::serve(
            listener,
            limits,
            connections,
            move |remote| {
                let gateway = Arc::clone(&gateway);
                hyper::service::service_fn(move |request| {
                    let gateway = Arc::clone(&gateway);
                    async move {
                        Ok::<_, std::convert::Infallible>(gateway.handle(request, remote).await)
                    }
                })
            },
            entry,
            server::termination(),
            *args.shutdown_timeout,
        )
        .await;
    if finished {
        tracing::info!("all requests finished; exiting");
    } else {
        tracing::warn!("shutdown timeout reached with requests still in flight; exiting");
    }
    if let Some(webhook) = webhook_gateway.webhook() {
        webhook.flush().await;
    }
    admin_task.abort();
    inventory_task.abort();
    tag_sets_task.abort();
    watch_task.abort();
    if let Some(task) = tls_task {
        task.abort();
    }
    if let Some(task) = store_watch {
        task.abort();
    }
    Ok(())
}
