//! Forwarding a request to the upstream and its answer back, headers handled as a reverse
//! proxy must.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Uri, Version};

/// Headers that belong to one connection and are never forwarded (RFC 9110 section 7.6.1),
/// besides `Connection` itself and the headers it names.
const HOP_BY_HOP: [HeaderName; 6] = [
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The tokens of every `Connection` header, trimmed (values that are not text are skipped).
pub fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if !headers.contains_key(header::CONNECTION) {
        return;
    }
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect();
    for name in named.iter().chain([&header::CONNECTION]) {
        headers.remove(name);
    }
}

/// Where requests go: the upstream's scheme and authority.
#[derive(Debug, Clone)]
pub struct Target {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// `scheme://authority`, for recognising the upstream's own address in `Location`.
    origin: String,
    /// The scheme clients reach the gateway with: `X-Forwarded-Proto` unless a proxy in front
    /// of the gateway set it.
    client_scheme: &'static str,
}

impl Target {
    /// The target of an `http` or `https` upstream URL.
    pub fn new(url: &url::Url) -> Result<Self, String> {
        let scheme = match url.scheme() {
            "http" => http::uri::Scheme::HTTP,
            "https" => http::uri::Scheme::HTTPS,
            other => {
                return Err(format!(
                    "unsupported upstream scheme \"{other}\" (expected http or https)"
                ));
            }
        };
        if url.path() != "/" || url.query().is_some() {
            return Err(format!(
                "upstream URL \"{url}\" has a path or query; give the registry's scheme, host and port only (the registry API lives at /v2/)"
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("upstream URL \"{url}\" has no host"))?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let authority: http::uri::Authority = authority
            .parse()
            .map_err(|e| format!("invalid upstream address \"{authority}\": {e}"))?;
        let origin = format!("{scheme}://{authority}");
        Ok(Self {
            scheme,
            authority,
            origin,
            client_scheme: "http",
        })
    }

    /// The same target for a listener that clients reach over TLS: the registry is told
    /// (`X-Forwarded-Proto: https`) so that the URLs it answers with (an upload's `Location`)
    /// are `https` too.
    pub fn for_tls_listener(mut self) -> Self {
        self.client_scheme = "https";
        self
    }

    /// `host:port` of a plain-HTTP upstream, for connecting to it directly; `None` over TLS.
    pub fn plain_http_address(&self) -> Option<String> {
        (self.scheme == http::uri::Scheme::HTTP).then(|| {
            format!(
                "{}:{}",
                self.authority.host(),
                self.authority.port_u16().unwrap_or(80)
            )
        })
    }

    /// The upstream's authority, as a `Host` header would name it.
    pub fn authority(&self) -> &str {
        self.authority.as_str()
    }

    /// The upstream URI for a client's request target: only its path and query are kept, so
    /// neither an absolute-form target nor the `Host` header chooses where requests go. `path`,
    /// when given, replaces the client's path: the canonical form the gateway checked.
    pub fn uri(&self, client: &Uri, path: Option<&str>) -> Result<Uri, http::Error> {
        let builder = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone());
        match (path, client.query()) {
            (Some(path), Some(query)) => builder.path_and_query(format!("{path}?{query}")),
            (Some(path), None) => builder.path_and_query(path),
            (None, _) => {
                builder.path_and_query(client.path_and_query().map_or("/", |pq| pq.as_str()))
            }
        }
        .build()
    }

    /// Prepares a client's headers for the upstream: hop-by-hop headers removed, the client's
    /// `Host` kept (the registry builds its URLs from it), `X-Forwarded-*` set.
    pub fn request_headers(&self, headers: &mut HeaderMap, client: &Uri, remote: SocketAddr) {
        strip_hop_by_hop(headers);
        if !headers.contains_key(header::HOST) {
            // HTTP/2 clients send the authority in the request target instead.
            if let Some(value) = client
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            {
                headers.insert(header::HOST, value);
            }
        }
        let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(earlier) => format!("{earlier}, {}", remote.ip()),
            None => remote.ip().to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
            headers.insert("x-forwarded-for", value);
        }
        // An ingress in front of the gateway knows the client's real scheme and host; keep them.
        if !headers.contains_key("x-forwarded-proto") {
            headers.insert(
                "x-forwarded-proto",
                HeaderValue::from_static(self.client_scheme),
            );
        }
        if !headers.contains_key("x-forwarded-host") {
            if let Some(host) = headers.get(header::HOST).cloned() {
                headers.insert("x-forwarded-host", host);
            }
        }
    }

    /// Prepares the upstream's answer for the client: hop-by-hop headers removed, and a
    /// `Location` at the upstream's own address made relative so clients never see it.
    pub fn response_headers(&self, headers: &mut HeaderMap) {
        strip_hop_by_hop(headers);
        if let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
            if let Some(rest) = strip_origin(location, &self.origin) {
                let relative = if rest.is_empty() {
                    "/".to_owned()
                } else {
                    rest.to_owned()
                };
                if let Ok(value) = HeaderValue::from_str(&relative) {
                    headers.insert(header::LOCATION, value);
                }
            }
        }
    }
}

/// The part of `location` after `origin`, when it starts with it (scheme and host
/// case-insensitive) followed by a path, query or nothing.
fn strip_origin<'a>(location: &'a str, origin: &str) -> Option<&'a str> {
    let head = location.get(..origin.len())?;
    if !head.eq_ignore_ascii_case(origin) {
        return None;
    }
    let rest = &location[origin.len()..];
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then_some(rest)
}

/// The version used towards the upstream: HTTP/1.1, whatever the client spoke.
pub const UPSTREAM_VERSION: Version = Version::HTTP_11;

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::new(&"http://registry:5000".parse().expect("url")).expect("target")
    }

    #[test]
    fn upstream_urls() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("http://registry:5000", Ok("http://registry:5000")),
            ("https://registry.example/", Ok("https://registry.example")),
            (
                "ftp://registry",
                Err("unsupported upstream scheme \"ftp\" (expected http or https)"),
            ),
            (
                "http://registry:5000/v2/",
                Err(
                    "upstream URL \"http://registry:5000/v2/\" has a path or query; give the registry's scheme, host and port only (the registry API lives at /v2/)",
                ),
            ),
        ];
        for (url, expected) in cases {
            let got = Target::new(&url.parse().expect("url")).map(|t| t.origin);
            assert_eq!(got.as_deref().map_err(String::as_str), *expected, "{url}");
        }
    }

    #[test]
    fn uri_ignores_client_authority() {
        let uri: Uri = "http://evil.example/v2/a/manifests/x?tag=1"
            .parse()
            .expect("uri");
        assert_eq!(
            target().uri(&uri, None).expect("uri").to_string(),
            "http://registry:5000/v2/a/manifests/x?tag=1"
        );
        let encoded: Uri = "/v2/a%2Fb/manifests/x?tag=1".parse().expect("uri");
        assert_eq!(
            target()
                .uri(&encoded, Some("/v2/a/b/manifests/x"))
                .expect("uri")
                .to_string(),
            "http://registry:5000/v2/a/b/manifests/x?tag=1"
        );
    }

    #[test]
    fn location_rewrite() {
        let cases: &[(&str, &str)] = &[
            (
                "http://registry:5000/v2/a/blobs/uploads/1?_state=x",
                "/v2/a/blobs/uploads/1?_state=x",
            ),
            ("HTTP://Registry:5000/v2/", "/v2/"),
            ("http://registry:50001/v2/", "http://registry:50001/v2/"),
            ("http://gateway:5000/v2/a", "http://gateway:5000/v2/a"),
            ("/v2/a/blobs/uploads/1", "/v2/a/blobs/uploads/1"),
        ];
        for (location, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::LOCATION,
                HeaderValue::from_str(location).expect("header"),
            );
            target().response_headers(&mut headers);
            assert_eq!(headers[header::LOCATION], *expected, "{location}");
        }
    }

    #[test]
    fn hop_by_hop_and_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::HOST, HeaderValue::from_static("gateway:5000"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let uri: Uri = "/v2/".parse().expect("uri");
        target().request_headers(&mut headers, &uri, "127.0.0.9:1234".parse().expect("addr"));
        assert!(!headers.contains_key(header::CONNECTION));
        assert!(!headers.contains_key("x-private"));
        assert!(!headers.contains_key(header::TRANSFER_ENCODING));
        assert_eq!(headers[header::HOST], "gateway:5000");
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.9");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "gateway:5000");
        assert_eq!(headers[header::AUTHORIZATION], "Bearer t");
    }

    #[test]
    fn a_tls_listener_forwards_https_unless_a_proxy_in_front_said_otherwise() {
        let uri: Uri = "/v2/".parse().expect("uri");
        let remote = "127.0.0.9:1234".parse().expect("addr");
        for (sent, expected) in [(None, "https"), (Some("http"), "http")] {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static("gateway:5000"));
            if let Some(sent) = sent {
                headers.insert("x-forwarded-proto", HeaderValue::from_static(sent));
            }
            target()
                .for_tls_listener()
                .request_headers(&mut headers, &uri, remote);
            assert_eq!(headers["x-forwarded-proto"], expected, "{sent:?}");
        }
    }
}
