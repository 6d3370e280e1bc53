//! The `Link` response header (RFC 8288), as registries use it to paginate tag lists.

use crate::header_tokens::{Cursor, is_ows, is_tchar};

/// Why a `Link` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// A link value does not start with `<`.
    #[error("invalid Link header {header:?}: expected '<' at byte {offset}")]
    ExpectedUri {
        /// The whole header value.
        header: String,
        /// Byte offset of the offending character.
        offset: usize,
    },
    /// A `<` is never closed by `>`.
    #[error("invalid Link header {header:?}: unterminated '<'")]
    UnterminatedUri {
        /// The whole header value.
        header: String,
    },
    /// A quoted parameter value is never closed.
    #[error("invalid Link header {header:?}: unterminated quoted string")]
    UnterminatedQuote {
        /// The whole header value.
        header: String,
    },
    /// A parameter has no name, or an `=` without a value, or junk follows it.
    #[error("invalid Link header {header:?}: malformed parameter at byte {offset}")]
    InvalidParameter {
        /// The whole header value.
        header: String,
        /// Byte offset where the parameter went wrong.
        offset: usize,
    },
}

/// The target of the first link whose `rel` includes `next`, as written (not yet resolved).
///
/// Accepts several comma-separated links, parameters in any order and case, quoted or bare
/// values, `rel` lists such as `rel="prev next"`, and commas or semicolons inside `<...>` and
/// quoted strings. An empty header has no next link.
///
/// ```
/// use upstream_client::parse_link_next;
///
/// let next = parse_link_next(r#"</v2/app/tags/list?last=v9&n=100>; rel="next""#)?;
/// assert_eq!(next.as_deref(), Some("/v2/app/tags/list?last=v9&n=100"));
/// assert_eq!(parse_link_next(r#"</v2/app/tags/list>; rel="prev""#)?, None);
/// # Ok::<(), upstream_client::LinkError>(())
/// ```
pub fn parse_link_next(header: &str) -> Result<Option<String>, LinkError> {
    let mut p = Cursor::new(header);
    let mut next = None;
    loop {
        p.skip(|c| c == ',' || is_ows(c));
        if p.at_end() {
            return Ok(next);
        }
        let uri = uri(&mut p)?;
        let mut is_next = false;
        loop {
            p.skip(is_ows);
            match p.peek() {
                None | Some(',') => break,
                Some(';') => p.advance(1),
                Some(_) => return Err(invalid_parameter(&p)),
            }
            p.skip(is_ows);
            let (name, value) = parameter(&mut p)?;
            if name.eq_ignore_ascii_case("rel")
                && value
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
            {
                is_next = true;
            }
        }
        if is_next && next.is_none() {
            next = Some(uri.to_owned());
        }
    }
}

fn invalid_parameter(p: &Cursor<'_>) -> LinkError {
    LinkError::InvalidParameter {
        header: p.header().to_owned(),
        offset: p.pos(),
    }
}

/// `"<" URI-Reference ">"`, trimmed.
fn uri<'a>(p: &mut Cursor<'a>) -> Result<&'a str, LinkError> {
    if p.peek() != Some('<') {
        return Err(LinkError::ExpectedUri {
            header: p.header().to_owned(),
            offset: p.pos(),
        });
    }
    let rest = &p.rest()[1..];
    let end = rest.find('>').ok_or_else(|| LinkError::UnterminatedUri {
        header: p.header().to_owned(),
    })?;
    p.advance(end + 2);
    Ok(rest[..end].trim())
}

/// `name [ BWS "=" BWS ( token / quoted-string ) ]`
fn parameter<'a>(p: &mut Cursor<'a>) -> Result<(&'a str, String), LinkError> {
    let name = p.take(is_tchar);
    if name.is_empty() {
        return Err(invalid_parameter(p));
    }
    p.skip(is_ows);
    if !p.eat('=') {
        return Ok((name, String::new()));
    }
    p.skip(is_ows);
    if p.peek() == Some('"') {
        let value = p.quoted().ok_or_else(|| LinkError::UnterminatedQuote {
            header: p.header().to_owned(),
        })?;
        return Ok((name, value));
    }
    let value = p.take(|c| c != ',' && c != ';' && !is_ows(c) && c != '"');
    if value.is_empty() {
        return Err(invalid_parameter(p));
    }
    Ok((name, value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        #[rustfmt::skip]
        let cases: &[(&str, Option<&str>)] = &[
            ("", None),
            ("   ", None),
            (r#"</v2/a/tags/list?last=b&n=2>; rel="next""#, Some("/v2/a/tags/list?last=b&n=2")),
            ("</v2/a/tags/list?last=b>; rel=next", Some("/v2/a/tags/list?last=b")),
            (r#"<https://r.example/v2/a/tags/list?last=b>; rel="next""#, Some("https://r.example/v2/a/tags/list?last=b")),
            (r#"</x>; REL="NEXT""#, Some("/x")),
            (r#"</x>;rel="next""#, Some("/x")),
            (r#"</x> ; rel = "next""#, Some("/x")),
            (r#"</p>; rel="prev", </n>; rel="next""#, Some("/n")),
            (r#"</n>; rel="next", </p>; rel="prev""#, Some("/n")),
            (r#"</n>; rel="prev next""#, Some("/n")),
            (r#"</n>; title="a, b; c"; rel="next""#, Some("/n")),
            (r#"</n>; title="say \"next\""; rel="last""#, None),
            (r#"</a,b;c>; rel="next""#, Some("/a,b;c")),
            (r#"</first>; rel="next", </second>; rel="next""#, Some("/first")),
            (r#"</p>; rel="prev""#, None),
            ("</p>", None),
            ("</p>; crossorigin", None),
            ("</a>, </b>; rel=next", Some("/b")),
            (r#"<?last=v9&n=1000>; rel="next""#, Some("?last=v9&n=1000")),
            (r#"< /spaced >; rel="next""#, Some("/spaced")),
        ];
        for (header, want) in cases {
            let got = parse_link_next(header);
            assert_eq!(got, Ok(want.map(str::to_owned)), "header {header:?}");
        }
    }

    #[test]
    fn errors() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("/v2/a/tags/list; rel=next", "expected '<' at byte 0"),
            (r#"</x>; rel="next", garbage"#, "expected '<' at byte 18"),
            ("</v2/a/tags/list; rel=next", "unterminated '<'"),
            (r#"</x>; rel="next"#, "unterminated quoted string"),
            ("</x>; =next", "malformed parameter at byte 6"),
            ("</x>; rel=", "malformed parameter at byte 10"),
            ("</x> rel=next", "malformed parameter at byte 5"),
            (r#"</x>; rel="next"junk"#, "malformed parameter at byte 16"),
        ];
        for (header, want) in cases {
            let err = parse_link_next(header).expect_err(header);
            let msg = err.to_string();
            assert!(msg.contains(want), "header {header:?}: {msg}");
            assert!(
                msg.contains(&format!("{header:?}")),
                "message names the header: {msg}"
            );
        }
    }
}
