//! Query parameters as Go's `net/url` reads them.

/// The first value of `key` in a raw query string, as Go's `url.ParseQuery` followed by
/// `Values.Get` reads it for the registry: pairs are separated by `&`; a pair holding a `;` or an
/// invalid escape is dropped; keys and values are unescaped (`+` is a space); the first pair
/// with the key wins.
///
/// ```
/// use registry_api::go_query_value;
///
/// assert_eq!(go_query_value(Some("m%6Funt=a&mount=b"), "mount").as_deref(), Some("a"));
/// assert_eq!(go_query_value(Some("mount=a;&mount=b"), "mount").as_deref(), Some("b"));
/// assert_eq!(go_query_value(Some("from=a%2Fb"), "from").as_deref(), Some("a/b"));
/// assert_eq!(go_query_value(None, "from"), None);
/// ```
pub fn go_query_value(query: Option<&str>, key: &str) -> Option<String> {
    values(query?, key).next()
}

/// Every value of `key` in a raw query string, in order, as Go's `url.ParseQuery` reads them
/// (`Values[key]`), by the same rules as [`go_query_value`]. A value that is not UTF-8 once
/// unescaped is left out: none of the values read here is valid unless UTF-8.
///
/// ```
/// use registry_api::go_query_values;
///
/// assert_eq!(go_query_values(Some("tag=a&t%61g=b&tag=c;&tag=%zz&tag=d+e"), "tag"), ["a", "b", "d e"]);
/// assert!(go_query_values(None, "tag").is_empty());
/// ```
pub fn go_query_values(query: Option<&str>, key: &str) -> Vec<String> {
    query.map_or_else(Vec::new, |query| values(query, key).collect())
}

/// The values of the pairs with `key` that Go keeps: pairs are separated by `&`; a pair holding
/// a `;` or an invalid escape is dropped; keys and values are unescaped.
fn values<'a>(query: &'a str, key: &'a str) -> impl Iterator<Item = String> + 'a {
    query.split('&').filter_map(move |pair| {
        if pair.is_empty() || pair.contains(';') {
            return None;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (unescape(k)? == key).then(|| unescape(v)).flatten()
    })
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte, anything else after `%` an error.
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                let (high, low) = (hex(bytes.get(i + 1))?, hex(bytes.get(i + 2))?);
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    // Go strings may hold any bytes; none of the values read here is valid unless UTF-8.
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("mount=a&from=b", "from", Some("b")),
            ("mount=a&mount=b", "mount", Some("a")),
            ("mount", "mount", Some("")),
            ("mount=", "mount", Some("")),
            ("&&mount=x", "mount", Some("x")),
            ("mount=%zz&mount=b", "mount", Some("b")),
            ("mount=a;b", "mount", None),
            ("mount=a+b", "mount", Some("a b")),
            ("%6dount=a", "mount", Some("a")),
            ("Mount=a", "mount", None),
            ("mount=a=b", "mount", Some("a=b")),
            ("from=x%2Fy", "from", Some("x/y")),
        ];
        for (query, key, want) in cases {
            assert_eq!(
                go_query_value(Some(query), key).as_deref(),
                *want,
                "{query} {key}"
            );
        }
    }

    #[test]
    fn all_values() {
        let cases: &[(&str, &[&str])] = &[
            ("tag=a&tag=b", &["a", "b"]),
            ("tag=a&x=1&tag=a", &["a", "a"]),
            ("tag=&tag", &["", ""]),
            ("t%61g=a%2Bb&tag=c+d", &["a+b", "c d"]),
            ("tag=a;b&tag=%zz&tag=%ff&tag=ok", &["ok"]),
            ("Tag=a&tags=b", &[]),
            ("", &[]),
        ];
        for (query, want) in cases {
            assert_eq!(go_query_values(Some(query), "tag"), *want, "{query}");
        }
    }
}
