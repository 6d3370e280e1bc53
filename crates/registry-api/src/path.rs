//! Percent-decoding and cleanliness of request paths, as Go's `net/url` and gorilla/mux see them.

use std::borrow::Cow;

/// Why a path could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A `%` not followed by two hex digits; Go's HTTP server answers 400 to such a request.
    #[error("invalid percent-escape at byte {offset} of the path")]
    InvalidEscape {
        /// Byte offset of the `%`.
        offset: usize,
    },
    /// The decoded bytes are not UTF-8.
    #[error("the decoded path is not UTF-8")]
    NotUtf8,
}

/// Decodes `%XX` escapes in a request path as Go's `url.PathUnescape` does for the registry:
/// every escape is decoded (`%2F` becomes a `/` that separates path segments, as gorilla/mux
/// routes on the decoded path), `+` stays a `+`, and a `%` not followed by two hex digits is an
/// error. A path without `%` is returned as it is, without a copy.
///
/// ```
/// use registry_api::decode_path;
///
/// assert_eq!(decode_path("/v2/project-1%2Fapp").unwrap(), "/v2/project-1/app");
/// assert_eq!(decode_path("/v2/%70roject-1/a+b").unwrap(), "/v2/project-1/a+b");
/// assert!(decode_path("/v2/a%zz").is_err());
/// ```
pub fn decode_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.contains('%') {
        return Ok(Cow::Borrowed(path));
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
            match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                }
                _ => return Err(PathError::InvalidEscape { offset: i }),
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| PathError::NotUtf8)
}

/// Whether gorilla/mux would route `path` as it is rather than redirect it to a cleaned form:
/// it starts with `/`, and no segment is empty (`//`), `.` or `..`; a trailing `/` is kept.
///
/// ```
/// use registry_api::is_clean;
///
/// assert!(is_clean("/v2/a/blobs/uploads/"));
/// assert!(!is_clean("/v2/a//b"));
/// assert!(!is_clean("/v2/a/./b"));
/// assert!(!is_clean("/v2/a/.."));
/// ```
pub fn is_clean(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    rest.split('/')
        .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_table() {
        let cases: &[(&str, Result<&str, PathError>)] = &[
            ("/v2/", Ok("/v2/")),
            ("/v2/a%2Fb", Ok("/v2/a/b")),
            ("/v2/a%2fb", Ok("/v2/a/b")),
            ("/%762/a", Ok("/v2/a")),
            ("/v2/a%252F", Ok("/v2/a%2F")),
            ("/v2/a+b", Ok("/v2/a+b")),
            ("/v2/a%20b", Ok("/v2/a b")),
            ("/v2/%C3%A9", Ok("/v2/é")),
            ("/v2/a%", Err(PathError::InvalidEscape { offset: 5 })),
            ("/v2/a%2", Err(PathError::InvalidEscape { offset: 5 })),
            ("/v2/a%zz", Err(PathError::InvalidEscape { offset: 5 })),
            ("/v2/%ff", Err(PathError::NotUtf8)),
        ];
        for (path, want) in cases {
            assert_eq!(decode_path(path).as_deref(), want.as_deref(), "{path}");
        }
    }

    #[test]
    fn clean_table() {
        let cases = [
            ("/", true),
            ("/v2", true),
            ("/v2/", true),
            ("/v2/a/manifests/v1", true),
            ("/v2/a/blobs/uploads/", true),
            ("/v2/a.b/..c", true),
            ("", false),
            ("v2/", false),
            ("//v2/", false),
            ("/v2//", false),
            ("/v2/a//b", false),
            ("/v2/./a", false),
            ("/v2/a/.", false),
            ("/v2/a/./", false),
            ("/v2/a/../b", false),
            ("/v2/a/..", false),
        ];
        for (path, want) in cases {
            assert_eq!(is_clean(path), want, "{path:?}");
        }
    }
}
