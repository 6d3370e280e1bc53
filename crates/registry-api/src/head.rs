//! A request head read once: the route, and every header fact the gateway's checks read, so
//! that no check reads a header its own way.

use crate::query::go_query_values;
use crate::reference::Reference;
use crate::route::{ApiRequest, RequestError, Route};
use crate::upload::content_range;

/// The headers the gateway's checks read, lowercase. A proxy removes the headers a `Connection`
/// header names before forwarding, so the registry would not see what was checked: a write
/// whose `Connection` names one of these cannot be checked as it will be read
/// ([`RequestHead::connection_names`]).
pub const CHECKED_HEADERS: [&str; 5] = [
    "authorization",
    "content-length",
    "content-range",
    "content-type",
    "host",
];

/// The most characters of an offending header value an error shows.
const MAX_SHOWN: usize = 150;

/// The `Content-Type` headers of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentType {
    /// None.
    Absent,
    /// Exactly one: its value as text, or `None` when it is not text (visible ASCII, spaces and
    /// tabs), which no media type is.
    One(Option<String>),
    /// Several: which one the registry would read is not certain.
    Ambiguous,
}

impl ContentType {
    /// The media type to read a body by: the value of the one `Content-Type` header when it is
    /// text; `None` when there is none, or several.
    pub fn value(&self) -> Option<&str> {
        match self {
            ContentType::One(value) => value.as_deref(),
            ContentType::Absent | ContentType::Ambiguous => None,
        }
    }
}

/// A header whose value could not be read as one value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// A value that does not parse.
    #[error("invalid {name} header {value:?}")]
    Invalid {
        /// The header, as `Content-Length`.
        name: &'static str,
        /// The value, cut to 150 characters.
        value: String,
    },
    /// Values that say different things (in several headers, or a list in one).
    #[error("conflicting {name} headers {first:?} and {other:?}")]
    Conflicting {
        /// The header, as `Content-Length`.
        name: &'static str,
        /// The first value (for a list, the first item).
        first: String,
        /// The first value that differs from it.
        other: String,
    },
}

/// A request's head read once, before any check: its route ([`ApiRequest::parse`]) and every
/// header fact the checks read. Synchronous and free of I/O: headers come in as (name, value)
/// byte pairs, names compared ASCII case-insensitively, values with surrounding spaces and tabs
/// ignored, as HTTP parsers read them. An `http::HeaderMap` can be given as it is (`&HeaderMap`
/// iterates over such pairs), and so can `httparse` headers mapped to
/// `(header.name, header.value)`.
///
/// ```
/// use registry_api::{ContentType, RequestHead, Route};
///
/// let head = RequestHead::parse(
///     "PUT",
///     "/v2/project-1/app/manifests/v1",
///     Some("tag=v2&tag=v1&tag="),
///     [
///         ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
///         ("Content-Length", "1234"),
///         ("Authorization", "Bearer t"),
///         ("Connection", "keep-alive, Content-Length"),
///     ],
/// )?;
/// assert!(matches!(head.request.route, Route::ManifestPut { .. }));
/// assert_eq!(head.content_type.value(), Some("application/vnd.oci.image.manifest.v1+json"));
/// assert_eq!(head.content_length, Ok(Some(1234)));
/// assert!(head.authorization);
/// // A proxy would remove Content-Length before the registry sees it.
/// assert_eq!(head.connection_names, Some("content-length"));
/// assert_eq!(head.tags, ["v2", "v1"]);
/// assert_eq!(head.requested_tags(), ["v1", "v2"]);
///
/// let several = RequestHead::parse("PUT", "/v2/a/manifests/v1", None, [
///     ("content-type", "application/vnd.oci.image.manifest.v1+json"),
///     ("CONTENT-TYPE", "application/vnd.oci.image.index.v1+json"),
/// ])?;
/// assert_eq!(several.content_type, ContentType::Ambiguous);
/// # Ok::<(), registry_api::RequestError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestHead {
    /// The method, the route and the path to forward, exactly as [`ApiRequest::parse`] reads
    /// them.
    pub request: ApiRequest,
    /// The `Content-Type` headers.
    pub content_type: ContentType,
    /// The declared body length: `None` without `Content-Length`. Several headers, or a
    /// comma-separated list, are one length when all say the same number; a value that is not
    /// a whole number of bytes, or numbers that differ, are an error.
    pub content_length: Result<Option<u64>, HeaderError>,
    /// The first and last byte a chunk announces (`Content-Range: <first>-<last>`, see
    /// [`upload::content_range`](crate::upload::content_range)): `None` without the header; a
    /// value that does not parse, or several that differ, are an error.
    pub content_range: Result<Option<(u64, u64)>, HeaderError>,
    /// Whether a `Content-Type` names a form body (`application/x-www-form-urlencoded` or
    /// `multipart/form-data`, parameters and case ignored), whose parameters Go's
    /// `Request.FormValue` reads for the registry as if they were in the query.
    pub form: bool,
    /// Whether an `Authorization` header is present.
    pub authorization: bool,
    /// The first of the [`CHECKED_HEADERS`] a `Connection` header names (its comma-separated
    /// tokens, case-insensitive), lowercase; `None` when it names none.
    pub connection_names: Option<&'static str>,
    /// The `?tag=` values of a manifest push (OCI distribution 1.1), as Go's `url.ParseQuery`
    /// reads them ([`go_query_values`](crate::go_query_values)), in order, without empty values
    /// and duplicates; empty for every other route.
    pub tags: Vec<String>,
}

impl RequestHead {
    /// Reads a request's method, path, raw query and headers. Fails only where
    /// [`ApiRequest::parse`] fails; a header fact that cannot be read is kept as an error in
    /// its field, for the check that reads it to decide.
    pub fn parse<N, V>(
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, RequestError>
    where
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let request = ApiRequest::parse(method, path, query)?;
        let mut content_types = Vec::new();
        let mut lengths = Vec::new();
        let mut ranges = Vec::new();
        let mut authorization = false;
        let mut connection_names = None;
        for (name, value) in headers {
            let name = name.as_ref();
            let value = trim(value.as_ref());
            if name.eq_ignore_ascii_case(b"content-type") {
                content_types.push(text(value).map(str::to_owned));
            } else if name.eq_ignore_ascii_case(b"content-length") {
                lengths.push(value.to_vec());
            } else if name.eq_ignore_ascii_case(b"content-range") {
                ranges.push(value.to_vec());
            } else if name.eq_ignore_ascii_case(b"authorization") {
                authorization = true;
            } else if name.eq_ignore_ascii_case(b"connection") && connection_names.is_none() {
                connection_names = text(value).and_then(checked_token);
            }
        }
        let form = content_types.iter().flatten().any(|value| is_form(value));
        let content_type = match content_types.len() {
            0 => ContentType::Absent,
            1 => ContentType::One(content_types.pop().flatten()),
            _ => ContentType::Ambiguous,
        };
        let tags = match &request.route {
            Route::ManifestPut { .. } => {
                let mut tags: Vec<String> = Vec::new();
                for tag in go_query_values(query, "tag") {
                    if !tag.is_empty() && !tags.contains(&tag) {
                        tags.push(tag);
                    }
                }
                tags
            }
            _ => Vec::new(),
        };
        Ok(Self {
            request,
            content_type,
            content_length: content_length(&lengths),
            content_range: one_range(&ranges),
            form,
            authorization,
            connection_names,
            tags,
        })
    }

    /// The route.
    pub fn route(&self) -> &Route {
        &self.request.route
    }

    /// The tags a manifest push creates: its reference when the registry reads it as a tag,
    /// then the [`tags`](Self::tags) of its query, without duplicates. Empty for every other
    /// route.
    pub fn requested_tags(&self) -> Vec<String> {
        let mut tags = Vec::new();
        if let Route::ManifestPut {
            reference: Reference::Tag(tag),
            ..
        } = &self.request.route
        {
            tags.push(tag.clone());
        }
        for tag in &self.tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        tags
    }
}

/// `value` without leading and trailing spaces and tabs.
fn trim(value: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// A header value as text: visible ASCII, spaces and tabs only (what `http::HeaderValue::to_str`
/// accepts).
fn text(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|b| (0x20..0x7f).contains(b) || *b == b'\t')
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// The first of a `Connection` value's tokens that is a checked header.
fn checked_token(value: &str) -> Option<&'static str> {
    value.split(',').map(str::trim).find_map(|token| {
        CHECKED_HEADERS
            .into_iter()
            .find(|name| token.eq_ignore_ascii_case(name))
    })
}

/// Whether a `Content-Type` value names a form body.
fn is_form(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        || essence.eq_ignore_ascii_case("multipart/form-data")
}

/// A value for an error message: lossy text, cut to [`MAX_SHOWN`] characters.
fn shown(value: &[u8]) -> String {
    String::from_utf8_lossy(value)
        .chars()
        .take(MAX_SHOWN)
        .collect()
}

/// Every `Content-Length` value, each a comma-separated list of whole numbers: one length when
/// they all agree. A conflict names the first two numbers that differ.
fn content_length(values: &[Vec<u8>]) -> Result<Option<u64>, HeaderError> {
    const NAME: &str = "Content-Length";
    let mut found: Option<(u64, &[u8])> = None;
    for value in values {
        for token in value.split(|b| *b == b',').map(trim) {
            let length = std::str::from_utf8(token)
                .ok()
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| HeaderError::Invalid {
                    name: NAME,
                    value: shown(value),
                })?;
            match found {
                None => found = Some((length, token)),
                Some((first, _)) if first == length => {}
                Some((_, first)) => {
                    return Err(HeaderError::Conflicting {
                        name: NAME,
                        first: shown(first),
                        other: shown(token),
                    });
                }
            }
        }
    }
    Ok(found.map(|(length, _)| length))
}

/// Every `Content-Range` value: one range when they all agree.
fn one_range(values: &[Vec<u8>]) -> Result<Option<(u64, u64)>, HeaderError> {
    const NAME: &str = "Content-Range";
    let mut found: Option<((u64, u64), &[u8])> = None;
    for value in values {
        let range = text(value)
            .and_then(content_range)
            .ok_or_else(|| HeaderError::Invalid {
                name: NAME,
                value: shown(value),
            })?;
        match found {
            None => found = Some((range, value)),
            Some((first, _)) if first == range => {}
            Some((_, first)) => {
                return Err(HeaderError::Conflicting {
                    name: NAME,
                    first: shown(first),
                    other: shown(value),
                });
            }
        }
    }
    Ok(found.map(|(range, _)| range))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers as (name, value) pairs.
    type Headers = &'static [(&'static str, &'static [u8])];
    /// Values of one header.
    type Values = &'static [&'static [u8]];

    fn head(headers: &[(&str, &[u8])]) -> RequestHead {
        let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), *v));
        RequestHead::parse("PATCH", "/v2/a/blobs/uploads/1", None, pairs).expect("parses")
    }

    #[test]
    fn content_types() {
        const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
        const OCI_BYTES: &[u8] = OCI.as_bytes();
        #[rustfmt::skip]
        let cases: &[(Headers, ContentType)] = &[
            (&[], ContentType::Absent),
            (&[("Content-Type", OCI_BYTES)], ContentType::One(Some(OCI.into()))),
            (&[("content-type", b"  a/b ; x=1\t")], ContentType::One(Some("a/b ; x=1".into()))),
            (&[("Content-Type", b"a/\xffb")], ContentType::One(None)),
            (&[("Content-Type", b"a/\x01b")], ContentType::One(None)),
            (&[("Content-Type", b"a/b"), ("CONTENT-TYPE", b"a/b")], ContentType::Ambiguous),
            (&[("Content-Type", b"a/b"), ("X", b"1"), ("content-type", b"")], ContentType::Ambiguous),
            (&[("Content-Typo", b"a/b")], ContentType::Absent),
        ];
        for (headers, want) in cases {
            assert_eq!(head(headers).content_type, *want, "{headers:?}");
        }
    }

    #[test]
    fn content_lengths() {
        let invalid = |v: &str| {
            Err(HeaderError::Invalid {
                name: "Content-Length",
                value: v.into(),
            })
        };
        let conflict = |a: &str, b: &str| {
            Err(HeaderError::Conflicting {
                name: "Content-Length",
                first: a.into(),
                other: b.into(),
            })
        };
        #[rustfmt::skip]
        let cases: &[(Values, Result<Option<u64>, HeaderError>)] = &[
            (&[], Ok(None)),
            (&[b"0"], Ok(Some(0))),
            (&[b" 1234 "], Ok(Some(1234))),
            (&[b"5", b"5"], Ok(Some(5))),
            (&[b"5, 5,5"], Ok(Some(5))),
            (&[b"18446744073709551615"], Ok(Some(u64::MAX))),
            (&[b"18446744073709551616"], invalid("18446744073709551616")),
            (&[b"+5"], invalid("+5")),
            (&[b"-1"], invalid("-1")),
            (&[b""], invalid("")),
            (&[b"5,"], invalid("5,")),
            (&[b"0x10"], invalid("0x10")),
            (&[b"\xff"], invalid("\u{fffd}")),
            (&[b"5", b"6"], conflict("5", "6")),
            (&[b"5, 6"], conflict("5", "6")),
            (&[b"5", b"5, 7"], conflict("5", "7")),
            (&[b"5", b"x"], invalid("x")),
        ];
        for (values, want) in cases {
            let headers: Vec<(&str, &[u8])> =
                values.iter().map(|v| ("Content-Length", *v)).collect();
            assert_eq!(head(&headers).content_length, *want, "{values:?}");
        }
    }

    #[test]
    fn content_ranges() {
        let invalid = |v: &str| {
            Err(HeaderError::Invalid {
                name: "Content-Range",
                value: v.into(),
            })
        };
        #[rustfmt::skip]
        type Range = Result<Option<(u64, u64)>, HeaderError>;
        let cases: &[(Values, Range)] = &[
            (&[], Ok(None)),
            (&[b"0-99"], Ok(Some((0, 99)))),
            (&[b"bytes 100-199/*"], Ok(Some((100, 199)))),
            (&[b"0-99", b"0-99"], Ok(Some((0, 99)))),
            (&[b"x-1"], invalid("x-1")),
            (&[b"0-\xff"], invalid("0-\u{fffd}")),
            (
                &[b"0-99", b"0-100"],
                Err(HeaderError::Conflicting {
                    name: "Content-Range",
                    first: "0-99".into(),
                    other: "0-100".into(),
                }),
            ),
        ];
        for (values, want) in cases {
            let headers: Vec<(&str, &[u8])> =
                values.iter().map(|v| ("content-range", *v)).collect();
            assert_eq!(head(&headers).content_range, *want, "{values:?}");
        }
    }

    #[test]
    fn forms() {
        #[rustfmt::skip]
        let cases: &[(Headers, bool)] = &[
            (&[], false),
            (&[("Content-Type", b"application/octet-stream")], false),
            (&[("Content-Type", b"application/x-www-form-urlencoded")], true),
            (&[("content-type", b"Application/X-WWW-Form-Urlencoded; charset=utf-8")], true),
            (&[("Content-Type", b"multipart/form-data; boundary=x")], true),
            (&[("Content-Type", b" multipart/form-data ")], true),
            (&[("Content-Type", b"multipart/form-datax")], false),
            (&[("Content-Type", b"application/octet-stream"), ("Content-Type", b"multipart/form-data")], true),
            (&[("Content-Type", b"multipart/form-data\xff")], false),
            (&[("X-Content-Type", b"multipart/form-data")], false),
        ];
        for (headers, want) in cases {
            assert_eq!(head(headers).form, *want, "{headers:?}");
        }
    }

    #[test]
    fn authorization_and_connection() {
        #[rustfmt::skip]
        let cases: &[(Headers, bool, Option<&str>)] = &[
            (&[], false, None),
            (&[("Authorization", b"Bearer t")], true, None),
            (&[("AUTHORIZATION", b"")], true, None),
            (&[("Connection", b"keep-alive")], false, None),
            (&[("Connection", b"Authorization")], false, Some("authorization")),
            (&[("connection", b"x-private, content-range")], false, Some("content-range")),
            (&[("Connection", b"close"), ("Connection", b" HOST ")], false, Some("host")),
            (&[("Connection", b"content-type,content-length")], false, Some("content-type")),
            (&[("Connection", b"content-lengthx, x-content-type")], false, None),
            (&[("Connection", b"content-length\xff")], false, None),
            (&[("Keep-Alive", b"content-length")], false, None),
        ];
        for (headers, authorization, named) in cases {
            let head = head(headers);
            assert_eq!(head.authorization, *authorization, "{headers:?}");
            assert_eq!(head.connection_names, *named, "{headers:?}");
        }
    }

    #[test]
    fn tags() {
        let d = format!("sha256:{}", "a".repeat(64));
        let digest_push = format!("/v2/a/manifests/{d}");
        // (method, path, query, tags, requested tags)
        type Case<'a> = (
            &'a str,
            &'a str,
            Option<&'a str>,
            &'a [&'a str],
            &'a [&'a str],
        );
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("PUT", "/v2/a/manifests/latest", None, &[], &["latest"]),
            ("PUT", &digest_push, None, &[], &[]),
            ("PUT", &digest_push, Some("tag=a&tag=b"), &["a", "b"], &["a", "b"]),
            ("PUT", "/v2/a/manifests/v1", Some("tag=v1&tag=v2&x=1"), &["v1", "v2"], &["v1", "v2"]),
            ("PUT", &digest_push, Some("tag=&tag=a%2Bb&tag=a+b"), &["a+b", "a b"], &["a+b", "a b"]),
            ("PUT", &digest_push, Some("tag=b&tag=a&tag=b"), &["b", "a"], &["b", "a"]),
            ("PUT", &digest_push, Some("tag=a;b&tag=%zz&t%61g=c"), &["c"], &["c"]),
            ("PUT", "/v2/a/manifests/sha256:abc", Some("tag=x"), &["x"], &["sha256:abc", "x"]),
            ("DELETE", "/v2/a/manifests/v1", Some("tag=x"), &[], &[]),
            ("POST", "/v2/a/blobs/uploads/", Some("tag=x"), &[], &[]),
            ("GET", "/v2/a/manifests/v1", Some("tag=x"), &[], &[]),
        ];
        for (method, path, query, tags, requested) in cases {
            let head = RequestHead::parse(method, path, *query, [("Host", "r")]).expect("parses");
            assert_eq!(head.tags, *tags, "{method} {path} {query:?}");
            assert_eq!(
                head.requested_tags(),
                *requested,
                "{method} {path} {query:?}"
            );
        }
    }

    #[test]
    fn route_is_api_request() {
        let no_headers: [(&str, &str); 0] = [];
        #[rustfmt::skip]
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("PUT", "/v2/a%2Fb/manifests/v%31", Some("tag=x")),
            ("POST", "/v2/a/blobs/uploads/", Some("mount=sha256:abc&from=b")),
            ("GET", "/v2/", None),
            ("GET", "/metrics", None),
            ("put", "/v2/a/manifests/v1", None),
            ("PUT", "/v2/a/./b/manifests/v1", None),
            ("PUT", "/v2/A/manifests/v1", None),
            ("GET", "/v2/a%zz", None),
        ];
        for (method, path, query) in cases {
            let head = RequestHead::parse(method, path, *query, no_headers);
            let api = ApiRequest::parse(method, path, *query);
            assert_eq!(
                head.as_ref().map(|h| &h.request),
                api.as_ref(),
                "{method} {path}"
            );
            if let Ok(head) = head {
                assert_eq!(head.route(), &head.request.route);
            }
        }
    }
}
