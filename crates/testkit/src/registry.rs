//! A real CNCF distribution registry (`docker-registry` 2.8) on a free loopback port.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use url::Url;

use crate::issuer::{ISSUER, SERVICE, TokenIssuer};
use crate::tools::{DOCKER_REGISTRY, HTPASSWD};

/// How long a registry may take to answer `GET /v2/` after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How the registry authenticates clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryAuth {
    /// No authentication: anyone may push and pull.
    Anonymous,
    /// `auth: htpasswd` with a bcrypt password file made by `htpasswd -B`.
    Basic,
    /// `auth: token`: clients fetch a JWT from the kit's [`TokenIssuer`].
    Token,
}

/// A username and password the registry (or its token issuer) accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct TestUser {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl TestUser {
    /// A user.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The `Authorization` header value `Basic base64(user:password)`.
    pub fn basic_authorization(&self) -> String {
        basic_authorization(&self.username, &self.password)
    }
}

impl std::fmt::Debug for TestUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestUser")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The `Authorization` header value `Basic base64(username:password)`.
pub fn basic_authorization(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// A free TCP port on 127.0.0.1 (bound, then released; nothing listens on it afterwards), for a
/// server process the test starts.
///
/// Ports come from 20000-32767, below Linux's ephemeral range (32768-60999), so that a socket
/// bound to port 0 meanwhile (a client, a test's own proxy) cannot take the port before the
/// server binds it; a port is never handed out twice by one test process, and the other test
/// processes start at other offsets.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_768;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(2_654_435_761)) % COUNT,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..COUNT {
        let port = FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT;
        let port = u16::try_from(port).unwrap_or(20_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("testkit: no free loopback port in 20000-32767")
}

/// Settings of a [`Registry`] before it starts; see [`Registry::builder`].
#[derive(Debug, Clone)]
pub struct RegistryBuilder {
    auth: RegistryAuth,
    users: Vec<TestUser>,
    extra_config: Vec<String>,
    token_lifetime: Duration,
}

impl RegistryBuilder {
    /// Adds a user besides the default `testuser` / `testpassword` (ignored when anonymous).
    pub fn user(mut self, username: &str, password: &str) -> Self {
        self.users.push(TestUser::new(username, password));
        self
    }

    /// YAML merged over the generated `config.yml` (maps merge key by key, anything else
    /// replaces), e.g. `"storage:\n  delete:\n    enabled: false\n"`.
    pub fn extra_config(mut self, yaml: &str) -> Self {
        self.extra_config.push(yaml.to_owned());
        self
    }

    /// A `notifications.endpoints` entry named `name` posting every event but pulls to `url`
    /// with `headers` (e.g. `("Authorization", "Bearer <token>")`), retried quickly: a 1 s
    /// `timeout`, a `threshold` of 3 failures and a 1 s `backoff`.
    pub fn notifications_endpoint(self, name: &str, url: &str, headers: &[(&str, &str)]) -> Self {
        let headers: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::json!([v])))
            .collect();
        let endpoint = serde_json::json!({"name": name, "url": url, "headers": headers, "timeout": "1s",
            "threshold": 3, "backoff": "1s", "ignore": {"actions": ["pull"]}});
        self.extra_config(
            &serde_json::json!({"notifications": {"endpoints": [endpoint]}}).to_string(),
        )
    }

    /// distribution's own read-only mode (`storage: maintenance: readonly: enabled: true`):
    /// reads work, every write is answered `405 Method Not Allowed`.
    pub fn read_only(self) -> Self {
        self.extra_config("storage:\n  maintenance:\n    readonly:\n      enabled: true\n")
    }

    /// The `expires_in` of issued tokens (token mode; default 300 s).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Writes the configuration, starts the registry and waits until it answers `GET /v2/`.
    ///
    /// # Panics
    /// When a tool is missing (naming its Debian package) or the registry does not come up;
    /// the message holds the registry's log.
    pub fn start(self) -> Registry {
        let program = DOCKER_REGISTRY.require();
        let dir = tempfile::Builder::new()
            .prefix("testkit-registry-")
            .tempdir()
            .unwrap_or_else(|e| panic!("testkit: cannot create a temporary directory: {e}"));
        let port = free_port();
        let users = if self.auth == RegistryAuth::Anonymous {
            Vec::new()
        } else {
            self.users
        };
        let issuer = (self.auth == RegistryAuth::Token)
            .then(|| TokenIssuer::start(dir.path(), users.clone(), self.token_lifetime));
        let auth_yaml = match (self.auth, &issuer) {
            (RegistryAuth::Basic, _) => {
                let htpasswd = write_htpasswd(dir.path(), &users);
                format!(
                    "auth:\n  htpasswd:\n    realm: testkit-registry\n    path: {}\n",
                    yaml_string(&htpasswd.display().to_string())
                )
            }
            (_, Some(issuer)) => {
                format!(
                    "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    yaml_string(issuer.realm().as_str()),
                    yaml_string(&issuer.cert_path().display().to_string())
                )
            }
            _ => String::new(),
        };
        let storage = dir.path().join("storage");
        let base = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: testkit-http-secret\n\
             {auth_yaml}",
            yaml_string(&storage.display().to_string()),
        );
        let config = merge_config(&base, &self.extra_config);
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)
            .unwrap_or_else(|e| panic!("testkit: cannot write {}: {e}", config_path.display()));
        let mut registry = Registry {
            log_path: dir.path().join("registry.log"),
            program,
            config_path,
            port,
            auth: self.auth,
            users,
            issuer,
            child: None,
            dir,
        };
        registry.start();
        registry
    }
}

/// A running `docker-registry serve` with filesystem storage in a temporary directory.
///
/// Dropping it kills the process (also when a test panics) and removes the directory.
/// [`stop`](Self::stop) and [`start`](Self::start) take it down and bring it back on the same
/// port with the same data, for "upstream down, then back" tests.
///
/// ```no_run
/// use testkit::{Registry, TestImage};
///
/// # async fn run() {
/// let registry = Registry::token();
/// let image = TestImage::new(&[1024, 4096], 1);
/// registry.push(&image, "project-1/app", "v1").await;
/// println!("registry at {}, user {:?}", registry.base_url(), registry.user());
/// # }
/// ```
#[derive(Debug)]
pub struct Registry {
    program: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    port: u16,
    auth: RegistryAuth,
    users: Vec<TestUser>,
    issuer: Option<TokenIssuer>,
    child: Option<Child>,
    // Last, so that the directory is removed after the process is gone.
    dir: tempfile::TempDir,
}

impl Registry {
    /// The default user of Basic and token registries.
    pub const DEFAULT_USER: &'static str = "testuser";
    /// The default user's password.
    pub const DEFAULT_PASSWORD: &'static str = "testpassword";

    /// Settings for a registry with the given authentication and the default user.
    pub fn builder(auth: RegistryAuth) -> RegistryBuilder {
        RegistryBuilder {
            auth,
            users: vec![TestUser::new(Self::DEFAULT_USER, Self::DEFAULT_PASSWORD)],
            extra_config: Vec::new(),
            token_lifetime: Duration::from_secs(300),
        }
    }

    /// A started registry without authentication.
    pub fn anonymous() -> Self {
        Self::builder(RegistryAuth::Anonymous).start()
    }

    /// A started registry with Basic auth for the default user.
    pub fn basic() -> Self {
        Self::builder(RegistryAuth::Basic).start()
    }

    /// A started registry with token auth; the kit's issuer knows the default user.
    pub fn token() -> Self {
        Self::builder(RegistryAuth::Token).start()
    }

    /// How clients authenticate.
    pub fn auth(&self) -> RegistryAuth {
        self.auth
    }

    /// `http://127.0.0.1:<port>/`
    pub fn base_url(&self) -> Url {
        let url = format!("http://127.0.0.1:{}/", self.port);
        Url::parse(&url).unwrap_or_else(|e| panic!("testkit: bad registry URL {url}: {e}"))
    }

    /// `127.0.0.1:<port>`, as image references (`docker://127.0.0.1:<port>/repo:tag`) use it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on; the same across [`stop`](Self::stop) and
    /// [`start`](Self::start).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The default user; `None` for an anonymous registry.
    pub fn user(&self) -> Option<&TestUser> {
        self.users.first()
    }

    /// Every user the registry accepts.
    pub fn users(&self) -> &[TestUser] {
        &self.users
    }

    /// An `Authorization` value that lets the default user pull and push `repository`: Basic
    /// for a Basic registry, a Bearer token minted by the issuer for a token registry, `None`
    /// for an anonymous one.
    pub fn authorization(&self, repository: &str) -> Option<String> {
        let user = self.user()?;
        match &self.issuer {
            Some(issuer) => {
                let scope = format!("repository:{repository}:pull,push");
                Some(format!(
                    "Bearer {}",
                    issuer.issue(&user.username, &[scope.as_str()])
                ))
            }
            None => Some(user.basic_authorization()),
        }
    }

    /// The token issuer (token mode only).
    pub fn issuer(&self) -> Option<&TokenIssuer> {
        self.issuer.as_ref()
    }

    /// How many requests the token issuer received (0 unless token mode).
    pub fn token_requests(&self) -> usize {
        self.issuer.as_ref().map_or(0, TokenIssuer::requests)
    }

    /// The generated `config.yml`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The temporary directory holding config, storage and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the registry printed so far (it logs every request).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the process; the port then refuses connections. Data stays. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process (again) on the same port with the same data, and waits until it
    /// answers `GET /v2/`. Does nothing when it runs already.
    ///
    /// # Panics
    /// When it does not come up in 30 s or exits; the message holds its log.
    pub fn start(&mut self) {
        if self.is_running() {
            return;
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap_or_else(|e| panic!("testkit: cannot open {}: {e}", self.log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("testkit: cannot share {}: {e}", self.log_path.display()));
        let child = Command::new(&self.program)
            .arg("serve")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("testkit: cannot run {}: {e}", self.program.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "testkit: docker-registry exited with {status} at start:\n{}",
                        self.logs()
                    );
                }
            }
            if answers_v2(addr) {
                return;
            }
            if Instant::now() > deadline {
                self.stop();
                panic!(
                    "testkit: docker-registry did not answer GET /v2/ on {addr} within {START_TIMEOUT:?}:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether an HTTP server on `addr` answers `GET /v2/` with any status line.
fn answers_v2(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

fn write_htpasswd(dir: &Path, users: &[TestUser]) -> PathBuf {
    let program = HTPASSWD.require();
    let mut content = String::new();
    for user in users {
        let output = Command::new(&program)
            .args(["-B", "-b", "-n", "-C", "4", &user.username, &user.password])
            .output()
            .unwrap_or_else(|e| panic!("testkit: cannot run htpasswd: {e}"));
        assert!(
            output.status.success(),
            "testkit: htpasswd failed for {}: {}",
            user.username,
            String::from_utf8_lossy(&output.stderr)
        );
        content.push_str(String::from_utf8_lossy(&output.stdout).trim());
        content.push('\n');
    }
    let path = dir.join("htpasswd");
    std::fs::write(&path, content)
        .unwrap_or_else(|e| panic!("testkit: cannot write {}: {e}", path.display()));
    path
}

/// A YAML double-quoted scalar.
fn yaml_string(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// The base config with each extra YAML document merged over it.
fn merge_config(base: &str, extras: &[String]) -> String {
    let parse = |text: &str| -> serde_yaml::Value {
        serde_yaml::from_str(text)
            .unwrap_or_else(|e| panic!("testkit: invalid registry config YAML: {e}\n{text}"))
    };
    let mut config = parse(base);
    for extra in extras {
        merge(&mut config, parse(extra));
    }
    serde_yaml::to_string(&config)
        .unwrap_or_else(|e| panic!("testkit: cannot write registry config: {e}"))
}

fn merge(into: &mut serde_yaml::Value, from: serde_yaml::Value) {
    match (into, from) {
        (serde_yaml::Value::Mapping(into), serde_yaml::Value::Mapping(from)) => {
            for (key, value) in from {
                match into.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        into.insert(key, value);
                    }
                }
            }
        }
        (into, from) => *into = from,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_config_merges() {
        let merged = merge_config(
            "a:\n  b: 1\n  c: 2\nd: [1]\n",
            &["a:\n  c: 3\n  e: 4\nd: [2]\n".to_owned()],
        );
        let value: serde_yaml::Value = serde_yaml::from_str(&merged).expect("yaml");
        let want: serde_yaml::Value =
            serde_yaml::from_str("a:\n  b: 1\n  c: 3\n  e: 4\nd: [2]\n").expect("yaml");
        assert_eq!(value, want);
    }

    #[test]
    fn basic_authorization_is_rfc7617() {
        assert_eq!(
            basic_authorization("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
