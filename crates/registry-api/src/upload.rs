//! Upload sessions: how many bytes one holds, and how large a chunk announces itself.

/// The bytes an upload session holds, from the `Range` header the registry answers an upload
/// request with (`0-<last byte>`, with or without a `bytes=` prefix).
///
/// distribution answers `0-0` both for an empty session and for one holding a single byte (and
/// `0--1` for an empty one on a status request); `0-0` is read as empty, so the one-byte
/// ambiguity favours the client by at most one byte. Any other shape is `None`.
///
/// ```
/// use registry_api::upload::held_bytes;
///
/// assert_eq!(held_bytes("0-1023"), Some(1024));
/// assert_eq!(held_bytes("bytes=0-0"), Some(0));
/// assert_eq!(held_bytes("0--1"), Some(0));
/// assert_eq!(held_bytes("5-9"), None);
/// ```
pub fn held_bytes(range: &str) -> Option<u64> {
    let range = range.trim();
    let range = range.strip_prefix("bytes=").unwrap_or(range);
    let last = range.strip_prefix("0-")?.trim();
    if last == "-1" || last == "0" {
        return Some(0);
    }
    last.parse::<u64>().ok()?.checked_add(1)
}

/// The first and last byte a chunk announces in its `Content-Range` (`<first>-<last>`, or
/// `bytes <first>-<last>/<total>`).
///
/// ```
/// use registry_api::upload::content_range;
///
/// assert_eq!(content_range("100-199"), Some((100, 199)));
/// assert_eq!(content_range("bytes 100-199/*"), Some((100, 199)));
/// assert_eq!(content_range("x-1"), None);
/// ```
pub fn content_range(value: &str) -> Option<(u64, u64)> {
    let value = value
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches([' ', '=']);
    let (first, last) = value.split_once('-')?;
    let last = last.split('/').next()?;
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?))
}

/// The size a blob upload is known to reach once a chunk is stored: the bytes the session
/// already holds (from the registry) plus the chunk's `Content-Length`, or the end its
/// `Content-Range` announces, whichever is larger. `None` when the chunk announces nothing.
/// Only ever used to refuse early; the bytes that actually stream are counted as they pass.
///
/// ```
/// use registry_api::upload::announced_size;
///
/// assert_eq!(announced_size(100, Some(50), None), Some(150));
/// assert_eq!(announced_size(100, None, Some((100, 999))), Some(1000));
/// assert_eq!(announced_size(0, None, None), None);
/// ```
pub fn announced_size(
    held: u64,
    content_length: Option<u64>,
    content_range: Option<(u64, u64)>,
) -> Option<u64> {
    let by_length = content_length.map(|len| held.saturating_add(len));
    let by_range = content_range.map(|(_, last)| last.saturating_add(1));
    by_length.max(by_range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0-0", Some(0)),
            ("0--1", Some(0)),
            ("0-1", Some(2)),
            ("0-1048575", Some(1_048_576)),
            ("bytes=0-9", Some(10)),
            (" 0-9 ", Some(10)),
            ("0-18446744073709551615", None),
            ("1-9", None),
            ("0-", None),
            ("0-x", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(held_bytes(value), *want, "{value:?}");
        }
    }

    #[test]
    fn content_range_table() {
        let cases: &[(&str, Option<(u64, u64)>)] = &[
            ("0-99", Some((0, 99))),
            ("bytes 100-199/*", Some((100, 199))),
            ("bytes=5-9", Some((5, 9))),
            ("x-1", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(content_range(value), *want, "{value}");
        }
    }

    #[test]
    fn announced_table() {
        // (held, Content-Length, Content-Range, announced)
        type Case = (u64, Option<u64>, Option<(u64, u64)>, Option<u64>);
        let cases: &[Case] = &[
            (0, None, None, None),
            (0, Some(10), None, Some(10)),
            (5, Some(10), None, Some(15)),
            (5, Some(10), Some((0, 99)), Some(100)),
            (u64::MAX, Some(10), None, Some(u64::MAX)),
            (0, None, Some((0, u64::MAX)), Some(u64::MAX)),
        ];
        for (held, length, range, want) in cases {
            assert_eq!(announced_size(*held, *length, *range), *want);
        }
    }
}
