//! A tiny raw HTTP/1.1 client over `tokio::net::TcpStream` that sends the request line exactly
//! as given: no URL parsing or normalisation (reqwest and `url` rewrite `%2F`, `..`, `//` and
//! the like, so attacks on path interpretation cannot be sent with them).
//!
//! * [`send`]: one whole request on a fresh connection (`Connection: close`), and its answer
//!   read by `Content-Length`, chunked encoding or until the server closes.
//! * [`RawConn`]: a connection the test drives itself: write a request head and part of a
//!   body, stall, read an answer later, or watch the server close the connection.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest wait for a whole answer in [`send`].
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// An answer read off the wire.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// The status code.
    pub status: u16,
    /// The headers in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl RawAnswer {
    /// The first value of a header, name compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first distribution error code (`errors[0].code`), if the body is an error envelope.
    pub fn error_code(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        json.pointer("/errors/0/code")?.as_str().map(str::to_owned)
    }

    /// The first distribution error message (`errors[0].message`).
    pub fn error_message(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        json.pointer("/errors/0/message")?
            .as_str()
            .map(str::to_owned)
    }

    /// Status, headers and body (cut to 2000 characters), for assertion messages.
    pub fn describe(&self) -> String {
        let mut text = format!("HTTP {}\n", self.status);
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {value}\n"));
        }
        let body = self.text();
        let cut: String = body.chars().take(2000).collect();
        text.push('\n');
        text.push_str(&cut);
        if cut.len() < body.len() {
            text.push_str("...");
        }
        text
    }
}

/// Sends one request on a new connection to `127.0.0.1:<port>` and reads the whole answer.
///
/// `target` goes into the request line byte for byte. `Host: 127.0.0.1:<port>` and
/// `Connection: close` are added unless `headers` has them; `Content-Length` is added for a
/// non-empty body (or for `PUT`/`POST`/`PATCH`) unless `headers` has `Content-Length` or
/// `Transfer-Encoding`. A server that refuses early and stops reading still has its answer
/// read. Panics when no answer comes within 30 s.
pub async fn send(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawAnswer {
    let mut conn = RawConn::connect(port).await;
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut all: Vec<(String, String)> = Vec::new();
    if !has("host") {
        all.push(("Host".to_owned(), format!("127.0.0.1:{port}")));
    }
    all.extend(
        headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    let with_body = !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH");
    if with_body && !has("content-length") && !has("transfer-encoding") {
        all.push(("Content-Length".to_owned(), body.len().to_string()));
    }
    if !has("connection") {
        all.push(("Connection".to_owned(), "close".to_owned()));
    }
    let mut request = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    for (name, value) in &all {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    // A server may answer and stop reading before the body is through (a refused upload):
    // a failed write is not the end, the answer may be waiting.
    let written = conn.stream.write_all(&request).await;
    let _ = conn.stream.flush().await;
    match conn.read_answer(method == "HEAD", ANSWER_TIMEOUT).await {
        Ok(answer) => answer,
        Err(err) => panic!(
            "rawhttp: {method} {target} on port {port}: no answer: {err} (write: {written:?})"
        ),
    }
}

/// A connection driven step by step by the test.
#[derive(Debug)]
pub struct RawConn {
    stream: TcpStream,
    /// Bytes read but not consumed yet.
    buffer: Vec<u8>,
}

impl RawConn {
    /// Connects to `127.0.0.1:<port>`.
    pub async fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("rawhttp: cannot connect to 127.0.0.1:{port}: {e}"));
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Writes bytes as they are (a request head, part of a body, anything).
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Writes a request line and headers (no body, nothing added but the blank line).
    pub async fn write_head(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<()> {
        let mut head = format!("{method} {target} HTTP/1.1\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.write(head.as_bytes()).await
    }

    /// Reads one answer (skipping `1xx` interim answers) within `limit`. `head` tells that the
    /// request was a `HEAD`, whose answer has no body.
    pub async fn read_answer(&mut self, head: bool, limit: Duration) -> Result<RawAnswer, String> {
        match tokio::time::timeout(limit, self.read_answer_inner(head)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no complete answer within {limit:?} (read so far: {:?})",
                String::from_utf8_lossy(&self.buffer)
            )),
        }
    }

    /// Waits at most `limit` for the server to close the connection: `Ok(bytes it sent
    /// before closing)` on end of file or reset, `Err(bytes so far)` when it is still open.
    pub async fn closed_within(&mut self, limit: Duration) -> Result<Vec<u8>, Vec<u8>> {
        let deadline = Instant::now() + limit;
        let mut chunk = vec![0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::mem::take(&mut self.buffer));
            }
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(std::mem::take(&mut self.buffer)),
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(std::mem::take(&mut self.buffer)),
                Ok(Ok(n)) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Whether any byte arrives within `limit` (it stays buffered for a later read).
    pub async fn anything_within(&mut self, limit: Duration) -> bool {
        if !self.buffer.is_empty() {
            return true;
        }
        let mut chunk = vec![0u8; 4096];
        match tokio::time::timeout(limit, self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    /// Reads more bytes into the buffer; an error at end of file.
    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = vec![0u8; 64 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(0) => Err(format!(
                "connection closed (read so far: {:?})",
                String::from_utf8_lossy(&self.buffer)
            )),
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(format!(
                "read failed: {e} (read so far: {:?})",
                String::from_utf8_lossy(&self.buffer)
            )),
        }
    }

    /// Takes one CRLF-terminated line off the buffer, reading as needed.
    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(at) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffer[..at]).into_owned();
                self.buffer.drain(..at + 2);
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    /// Takes exactly `n` bytes off the buffer, reading as needed.
    async fn exactly(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.buffer.len() < n {
            self.fill().await?;
        }
        Ok(self.buffer.drain(..n).collect())
    }

    async fn read_answer_inner(&mut self, head: bool) -> Result<RawAnswer, String> {
        loop {
            let status_line = self.line().await?;
            let status: u16 = status_line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad status line {status_line:?}"))?;
            let mut headers = Vec::new();
            loop {
                let line = self.line().await?;
                if line.is_empty() {
                    break;
                }
                let (name, value) = line
                    .split_once(':')
                    .ok_or_else(|| format!("bad header line {line:?}"))?;
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            if (100..200).contains(&status) {
                continue;
            }
            let mut answer = RawAnswer {
                status,
                headers,
                body: Vec::new(),
            };
            if head || status == 204 || status == 304 {
                return Ok(answer);
            }
            let chunked = answer
                .header("transfer-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
            if chunked {
                loop {
                    let size_line = self.line().await?;
                    let size =
                        usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                            .map_err(|e| format!("bad chunk size {size_line:?}: {e}"))?;
                    if size == 0 {
                        // Trailers, then the blank line.
                        while !self.line().await?.is_empty() {}
                        break;
                    }
                    let data = self.exactly(size).await?;
                    answer.body.extend_from_slice(&data);
                    self.exactly(2).await?;
                }
            } else if let Some(length) = answer.header("content-length") {
                let length: usize = length
                    .parse()
                    .map_err(|e| format!("bad Content-Length {length:?}: {e}"))?;
                answer.body = self.exactly(length).await?;
            } else {
                // Until the server closes.
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    match self.stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                    }
                }
                answer.body = std::mem::take(&mut self.buffer);
            }
            return Ok(answer);
        }
    }
}

/// The path and query of a `Location` value, whether absolute (`http://host/v2/...`) or
/// relative (`/v2/...`), byte for byte.
pub fn path_of(location: &str) -> String {
    for scheme in ["http://", "https://"] {
        if location.len() >= scheme.len() && location[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &location[scheme.len()..];
            return match rest.find('/') {
                Some(at) => rest[at..].to_owned(),
                None => "/".to_owned(),
            };
        }
    }
    location.to_owned()
}
