//! Starting the gateway binary on free loopback ports, and small HTTP helpers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{CommandOutput, RawPusher, TestImage};
use url::Url;

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_registry-gateway");

/// A running `registry-gateway serve`, killed on drop.
pub struct Gateway {
    child: Child,
    /// Proxy port.
    pub port: u16,
    /// Admin port.
    pub admin_port: u16,
    dir: tempfile::TempDir,
}

/// How to start a gateway.
pub struct GatewayBuilder {
    upstream: Url,
    config: Option<String>,
    config_path: Option<PathBuf>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    listen_ip: String,
    admin_port: Option<u16>,
}

impl GatewayBuilder {
    /// Configuration text, written to a file in the gateway's directory.
    pub fn config(mut self, yaml: &str) -> Self {
        self.config = Some(yaml.to_owned());
        self
    }

    /// A configuration file or directory the test manages.
    pub fn config_path(mut self, path: &Path) -> Self {
        self.config_path = Some(path.to_owned());
        self
    }

    /// Extra arguments of `serve`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// The address the proxy listens on (`127.0.0.1` unless told otherwise; `0.0.0.0` for
    /// clients that must reach it by another address too).
    pub fn listen_ip(mut self, ip: &str) -> Self {
        self.listen_ip = ip.to_owned();
        self
    }

    /// The admin listener's port (default: a free one), for a registry configured before the
    /// gateway starts to notify it.
    pub fn admin_port(mut self, port: u16) -> Self {
        self.admin_port = Some(port);
        self
    }

    /// An environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts the gateway and waits until its admin port answers.
    pub fn start(self) -> Gateway {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config_path = match (self.config_path, self.config) {
            (Some(path), _) => path,
            (None, config) => {
                let path = dir.path().join("limits.yaml");
                std::fs::write(&path, config.unwrap_or_default()).expect("write config");
                path
            }
        };
        let port = testkit::free_port();
        let admin_port = self.admin_port.unwrap_or_else(testkit::free_port);
        let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log file");
        let mut args = self.args;
        if !args.iter().any(|a| a == "--reload-interval") {
            // Tests watch reloads happen; poll often.
            args.extend(["--reload-interval".to_owned(), "200ms".to_owned()]);
        }
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .arg("--upstream")
            .arg(self.upstream.as_str())
            .arg("--listen")
            .arg(format!("{}:{port}", self.listen_ip))
            .arg("--admin-listen")
            .arg(format!("127.0.0.1:{admin_port}"))
            .args(&args)
            .envs(self.envs)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start registry-gateway");
        let mut gateway = Gateway {
            child,
            port,
            admin_port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while get(admin_port, "/healthz").map(|(status, _)| status) != Some(200) {
            if let Ok(Some(status)) = gateway.child.try_wait() {
                panic!("registry-gateway exited with {status}:\n{}", gateway.logs());
            }
            assert!(
                Instant::now() < deadline,
                "registry-gateway did not start:\n{}",
                gateway.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        gateway
    }
}

impl Gateway {
    /// A gateway in front of `upstream`.
    pub fn builder(upstream: Url) -> GatewayBuilder {
        GatewayBuilder {
            upstream,
            config: None,
            config_path: None,
            args: Vec::new(),
            envs: Vec::new(),
            listen_ip: "127.0.0.1".to_owned(),
            admin_port: None,
        }
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}/", self.port)).expect("url")
    }

    /// `127.0.0.1:<port>`, for skopeo references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Everything the gateway logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the process a signal by name: `TERM` (how Kubernetes stops a pod), `HUP`.
    pub fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{name} {}", self.pid());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `/metrics` text.
    pub fn metrics(&self) -> String {
        get(self.admin_port, "/metrics").expect("metrics answer").1
    }

    /// Value of one sample of `/metrics`, such as
    /// `registry_gateway_config_reloads_total{result="failure"}`; 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        parse_metric(&self.metrics(), sample)
    }
}

impl Gateway {
    /// Pushes `image` as `<repository>:<tag>` through the gateway with skopeo, passing `args`
    /// to `skopeo copy`. Returns what skopeo printed.
    pub async fn push(
        &self,
        image: &TestImage,
        repository: &str,
        tag: &str,
        args: &[&str],
    ) -> CommandOutput {
        testkit::skopeo_push(&self.host(), image, repository, tag, args, None).await
    }

    /// Starts a blob upload through the gateway and returns the session's URL.
    pub async fn start_upload(&self, pusher: &RawPusher, repository: &str) -> Url {
        let url = self
            .base_url()
            .join(&format!("v2/{repository}/blobs/uploads/"))
            .expect("url");
        let start = pusher.send(http::Method::POST, url, None, Vec::new()).await;
        assert_eq!(start.status, http::StatusCode::ACCEPTED, "{}", start.text());
        let location = start.header("location").expect("upload location");
        self.base_url().join(location).expect("url")
    }
}

/// Polls `check` every 50 ms until it holds, for at most 10 s.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the asynchronous `check` every 50 ms until it holds, for at most 10 s.
pub async fn eventually_async<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `sample` in Prometheus text, or 0.
pub fn parse_metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// A plain HTTP/1.0 GET on loopback: (status, body), or `None` when nothing answers.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((status, body))
}

/// Runs the binary with `args`: (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .output()
        .expect("run registry-gateway");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The flags `subcommand --help` lists (`--help` left out), how many of them name a
/// `REGISTRY_GATEWAY_` environment variable, and the help text.
pub fn flags_and_variables(subcommand: &str) -> (usize, usize, String) {
    let (ok, out, err) = run(&[subcommand, "--help"]);
    assert!(ok, "{err}");
    let flags = out
        .lines()
        .filter(|l| l.trim_start().starts_with("--") && !l.contains("--help"))
        .count();
    let variables = out.matches("[env: REGISTRY_GATEWAY_").count();
    (flags, variables, out)
}

/// Tags of `repository` as the registry itself lists them.
pub async fn upstream_tags(registry: &testkit::Registry, repository: &str) -> Vec<String> {
    let pusher = testkit::RawPusher::for_registry(registry, repository);
    let url = registry
        .base_url()
        .join(&format!("v2/{repository}/tags/list"))
        .expect("url");
    let answer = pusher.send(http::Method::GET, url, None, Vec::new()).await;
    if answer.status == 404 {
        return Vec::new();
    }
    let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("tag list JSON");
    let mut tags: Vec<String> = json["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP proxy in front of the registry that holds every manifest `PUT` for a while before
/// sending it on (also when the gateway has hung up meanwhile) and passes everything else at
/// once. One request per connection: it asks the registry to close after answering, so the
/// gateway's client opens a new connection for the next request.
pub struct DelayingProxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DelayingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DelayingProxy {
    /// Starts the proxy in front of the registry on `upstream_port`, delaying manifest `PUT`s
    /// by `delay`.
    pub async fn start(upstream_port: u16, delay: Duration) -> Self {
        Self::start_for(upstream_port, delay, "/manifests/").await
    }

    /// Like [`start`](Self::start), delaying only manifest `PUT`s whose path contains `marker`.
    pub async fn start_for(upstream_port: u16, delay: Duration, marker: &'static str) -> Self {
        Self::start_delaying(upstream_port, delay, "PUT ", marker).await
    }

    /// Delays manifest `DELETE`s whose path contains `marker` by `delay`, and nothing else.
    pub async fn start_for_deletes(
        upstream_port: u16,
        delay: Duration,
        marker: &'static str,
    ) -> Self {
        Self::start_delaying(upstream_port, delay, "DELETE ", marker).await
    }

    /// Delays manifest requests of `method` (`"PUT "`) whose path contains `marker`.
    async fn start_delaying(
        upstream_port: u16,
        delay: Duration,
        method: &'static str,
        marker: &'static str,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let task = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                tokio::spawn(relay(down, upstream_port, delay, method, marker));
            }
        });
        Self { port, task }
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://127.0.0.1:{}/", self.port)).expect("url")
    }
}

/// Relays one request (read whole, by `Content-Length`) and its answer.
async fn relay(
    mut down: tokio::net::TcpStream,
    upstream_port: u16,
    delay: Duration,
    method: &'static str,
    marker: &'static str,
) {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        match down.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    let mut chunked = false;
    for line in lines {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if name == "content-length" {
            length = line
                .split_once(':')
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
        }
        if name == "transfer-encoding" && line.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
        if name != "connection" {
            headers.push(line.to_owned());
        }
    }
    let body_start = head_end + 4;
    // A chunked body is passed on as it is, up to its last chunk.
    let complete = |buffer: &[u8]| {
        if chunked {
            buffer.len() >= body_start + 5 && buffer.ends_with(b"0\r\n\r\n")
        } else {
            buffer.len() >= body_start + length
        }
    };
    while !complete(&buffer) {
        match down.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    if chunked {
        length = buffer.len() - body_start;
    }
    if request_line.starts_with(method)
        && request_line.contains("/manifests/")
        && request_line.contains(marker)
    {
        tokio::time::sleep(delay).await;
    }
    let mut request = format!("{request_line}\r\n");
    for line in headers {
        request.push_str(&line);
        request.push_str("\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(&buffer[body_start..body_start + length]);
    let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await else {
        return;
    };
    if up.write_all(&request).await.is_err() {
        return;
    }
    let mut down_open = true;
    loop {
        match up.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if down_open && down.write_all(&chunk[..n]).await.is_err() {
                    down_open = false;
                }
            }
        }
    }
}
