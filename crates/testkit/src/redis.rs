//! A real `redis-server` on a free loopback port, for gateways that coordinate through it.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry::free_port;
use crate::tools::REDIS_SERVER;

/// Longest wait for the server to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Debian's `redis-server`, in memory only (no snapshots, no append-only file), on a free
/// loopback port. It can be stopped and started again on the same port, empty, as after a
/// failover that lost data. Dropping it kills the process.
///
/// ```no_run
/// let redis = testkit::RedisServer::start();
/// println!("coordinate through {}", redis.url());
/// ```
#[derive(Debug)]
pub struct RedisServer {
    program: PathBuf,
    port: u16,
    password: Option<String>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server without a password.
    ///
    /// # Panics
    /// When `redis-server` is missing (naming its Debian package) or does not come up.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a server that requires `password` (`requirepass`).
    pub fn with_password(password: &str) -> Self {
        Self::start_with(Some(password.to_owned()))
    }

    fn start_with(password: Option<String>) -> Self {
        let program = REDIS_SERVER.require();
        let dir = tempfile::Builder::new()
            .prefix("testkit-redis-")
            .tempdir()
            .unwrap_or_else(|e| panic!("testkit: cannot create a temporary directory: {e}"));
        let mut server = Self {
            program,
            port: free_port(),
            password,
            child: None,
            dir,
        };
        server.resume();
        server
    }

    /// `redis://[:password@]127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server; its port then refuses connections and its data is gone. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port, empty, and waits until it answers `PING`.
    ///
    /// # Panics
    /// When it does not come up in 20 s.
    pub fn resume(&mut self) {
        if self.child.is_some() {
            return;
        }
        let log_path = self.dir.path().join("redis.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("testkit: cannot open {}: {e}", log_path.display()));
        let mut command = Command::new(&self.program);
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path());
        if let Some(password) = &self.password {
            command.arg("--requirepass").arg(password);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("testkit: cannot run {}: {e}", self.program.display()));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "testkit: redis-server did not answer PING within {START_TIMEOUT:?}:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one command in the Redis protocol and returns the raw answers (with `AUTH`'s and
    /// `QUIT`'s `+OK` around it).
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.port)))
            .unwrap_or_else(|e| panic!("testkit: cannot connect to redis-server: {e}"));
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut request = String::new();
        if let Some(password) = &self.password {
            request.push_str(&encode(&["AUTH", password]));
        }
        request.push_str(&encode(args));
        // The server closes the connection after QUIT: every answer is read to the end.
        request.push_str(&encode(&["QUIT"]));
        stream
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("testkit: cannot write to redis-server: {e}"));
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.port)))
        else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        if stream.write_all(encode(&["PING"]).as_bytes()).is_err() {
            return false;
        }
        let mut answer = [0u8; 64];
        // Without the password the server answers NOAUTH: it is up all the same.
        matches!(stream.read(&mut answer), Ok(n) if n > 0)
    }
}

/// A command as a RESP array of bulk strings.
fn encode(args: &[&str]) -> String {
    let mut out = format!("*{}\r\n", args.len());
    for arg in args {
        out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    out
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
