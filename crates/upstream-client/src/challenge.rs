//! The `WWW-Authenticate` response header (RFC 9110 section 11.6.1).

use crate::header_tokens::{Cursor, is_ows, is_tchar};

/// One authentication challenge: a scheme and its parameters, or a token68.
///
/// Scheme and parameter names compare case-insensitively; values keep their case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
    token68: Option<String>,
}

impl Challenge {
    /// The scheme as written (`Bearer`, `Basic`, ...).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the scheme is `scheme`, ignoring case.
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The value of parameter `name` (case-insensitive), unquoted.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All parameters in order, names as written, values unquoted.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The token68 form (`Negotiate abc==`), if the challenge used it.
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }
}

/// Why a `WWW-Authenticate` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The header holds no challenge at all.
    #[error("invalid WWW-Authenticate header {header:?}: no challenge")]
    Empty {
        /// The whole header value.
        header: String,
    },
    /// A challenge does not start with a scheme token.
    #[error("invalid WWW-Authenticate header {header:?}: expected a scheme at byte {offset}")]
    ExpectedScheme {
        /// The whole header value.
        header: String,
        /// Byte offset of the offending character.
        offset: usize,
    },
    /// A parameter is missing its `=`, its value, or is followed by junk.
    #[error("invalid WWW-Authenticate header {header:?}: malformed parameter at byte {offset}")]
    InvalidParameter {
        /// The whole header value.
        header: String,
        /// Byte offset where the parameter went wrong.
        offset: usize,
    },
    /// A quoted value is never closed.
    #[error("invalid WWW-Authenticate header {header:?}: unterminated quoted string")]
    UnterminatedQuote {
        /// The whole header value.
        header: String,
    },
}

/// Every challenge in one `WWW-Authenticate` header value, in order.
///
/// Handles quoted values (with `\` escapes and commas inside), bare token values, several
/// challenges in one header (`Basic realm="r", Bearer realm="..."`), token68 challenges and
/// any case of scheme and parameter names.
///
/// ```
/// use upstream_client::parse_www_authenticate;
///
/// let header = r#"Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push""#;
/// let challenges = parse_www_authenticate(header)?;
/// assert!(challenges[0].is("bearer"));
/// assert_eq!(challenges[0].param("scope"), Some("repository:a/b:pull,push"));
/// # Ok::<(), upstream_client::ChallengeError>(())
/// ```
pub fn parse_www_authenticate(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    let mut p = Cursor::new(header);
    let mut challenges = Vec::new();
    loop {
        p.skip(|c| c == ',' || is_ows(c));
        if p.at_end() {
            break;
        }
        let scheme = p.take(is_tchar);
        if scheme.is_empty() {
            return Err(expected_scheme(&p));
        }
        let mut challenge = Challenge {
            scheme: scheme.to_owned(),
            params: Vec::new(),
            token68: None,
        };
        let spaces = p.take(|c| c == ' ');
        match p.peek() {
            None | Some(',') => {}
            Some(_) if spaces.is_empty() => return Err(expected_scheme(&p)),
            Some(_) if !param_ahead(p) => challenge.token68 = Some(token68(&mut p)?.to_owned()),
            Some(_) => params(&mut p, &mut challenge.params)?,
        }
        challenges.push(challenge);
    }
    if challenges.is_empty() {
        return Err(ChallengeError::Empty {
            header: header.to_owned(),
        });
    }
    Ok(challenges)
}

fn is_token68_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/".contains(c)
}

fn expected_scheme(p: &Cursor<'_>) -> ChallengeError {
    ChallengeError::ExpectedScheme {
        header: p.header().to_owned(),
        offset: p.pos(),
    }
}

fn invalid_parameter(p: &Cursor<'_>) -> ChallengeError {
    ChallengeError::InvalidParameter {
        header: p.header().to_owned(),
        offset: p.pos(),
    }
}

/// Whether `token BWS "=" BWS (token / quoted-string)` starts at `look`.
fn param_ahead(mut look: Cursor<'_>) -> bool {
    if look.take(is_tchar).is_empty() {
        return false;
    }
    look.skip(is_ows);
    if !look.eat('=') {
        return false;
    }
    look.skip(is_ows);
    look.peek().is_some_and(|c| c == '"' || is_tchar(c))
}

fn token68<'a>(p: &mut Cursor<'a>) -> Result<&'a str, ChallengeError> {
    let start = p.pos();
    p.skip(is_token68_char);
    if p.pos() == start {
        return Err(invalid_parameter(p));
    }
    p.skip(|c| c == '=');
    let value = &p.header()[start..p.pos()];
    p.skip(is_ows);
    match p.peek() {
        None | Some(',') => Ok(value),
        Some(_) => Err(invalid_parameter(p)),
    }
}

/// `auth-param *( OWS "," OWS auth-param )`, stopping before the next challenge's scheme.
fn params(p: &mut Cursor<'_>, out: &mut Vec<(String, String)>) -> Result<(), ChallengeError> {
    loop {
        let name = p.take(is_tchar);
        if name.is_empty() {
            return Err(invalid_parameter(p));
        }
        p.skip(is_ows);
        if !p.eat('=') {
            return Err(invalid_parameter(p));
        }
        p.skip(is_ows);
        let value = if p.peek() == Some('"') {
            p.quoted()
                .ok_or_else(|| ChallengeError::UnterminatedQuote {
                    header: p.header().to_owned(),
                })?
        } else {
            let value = p.take(is_tchar);
            if value.is_empty() {
                return Err(invalid_parameter(p));
            }
            value.to_owned()
        };
        out.push((name.to_owned(), value));
        p.skip(is_ows);
        match p.peek() {
            None => return Ok(()),
            Some(',') => {}
            Some(_) => return Err(invalid_parameter(p)),
        }
        p.skip(|c| c == ',' || is_ows(c));
        if p.at_end() || !param_ahead(*p) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Want<'a> = &'a [(&'a str, &'a [(&'a str, &'a str)])];

    fn show(challenges: &[Challenge]) -> Vec<(String, Vec<(String, String)>)> {
        challenges
            .iter()
            .map(|c| {
                let mut params: Vec<(String, String)> = c
                    .params()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                if let Some(t) = c.token68() {
                    params.push(("<token68>".to_owned(), t.to_owned()));
                }
                (c.scheme().to_owned(), params)
            })
            .collect()
    }

    #[test]
    fn table() {
        #[rustfmt::skip]
        let cases: &[(&str, Want<'_>)] = &[
            (r#"Basic realm="Registry Realm""#, &[("Basic", &[("realm", "Registry Realm")])]),
            ("Basic", &[("Basic", &[])]),
            ("basic realm=simple", &[("basic", &[("realm", "simple")])]),
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
                &[("Bearer", &[("realm", "https://auth.docker.io/token"), ("service", "registry.docker.io"), ("scope", "repository:library/alpine:pull")])],
            ),
            (
                r#"Bearer realm="http://h/token",service="reg",scope="repository:a/b:pull,push""#,
                &[("Bearer", &[("realm", "http://h/token"), ("service", "reg"), ("scope", "repository:a/b:pull,push")])],
            ),
            (
                r#"BEARER Realm = "r" , Service="s""#,
                &[("BEARER", &[("Realm", "r"), ("Service", "s")])],
            ),
            (
                r#"Basic realm="basic", Bearer realm="tok",service="svc""#,
                &[("Basic", &[("realm", "basic")]), ("Bearer", &[("realm", "tok"), ("service", "svc")])],
            ),
            (
                r#"Bearer realm="a,b",error="insufficient_scope", Basic realm="x""#,
                &[("Bearer", &[("realm", "a,b"), ("error", "insufficient_scope")]), ("Basic", &[("realm", "x")])],
            ),
            (r#"Bearer realm="say \"hi\"""#, &[("Bearer", &[("realm", r#"say "hi""#)])]),
            ("Negotiate abc+/def==", &[("Negotiate", &[("<token68>", "abc+/def==")])]),
            ("Negotiate abc==, Basic realm=r", &[("Negotiate", &[("<token68>", "abc==")]), ("Basic", &[("realm", "r")])]),
            ("Basic, Bearer", &[("Basic", &[]), ("Bearer", &[])]),
            ("Bearer realm=", &[("Bearer", &[("<token68>", "realm=")])]),
            (r#"Bearer realm="r",,  service="s",  "#, &[("Bearer", &[("realm", "r"), ("service", "s")])]),
            ("Newauth realm=\"apps\", type=1, title=\"Login to \\\"apps\\\"\", Basic realm=\"simple\"",
                &[("Newauth", &[("realm", "apps"), ("type", "1"), ("title", "Login to \"apps\"")]), ("Basic", &[("realm", "simple")])]),
        ];
        for (header, want) in cases {
            let got = parse_www_authenticate(header).unwrap_or_else(|e| panic!("{header:?}: {e}"));
            let want: Vec<(String, Vec<(String, String)>)> = want
                .iter()
                .map(|(s, ps)| {
                    let ps = ps
                        .iter()
                        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                        .collect();
                    ((*s).to_owned(), ps)
                })
                .collect();
            assert_eq!(show(&got), want, "header {header:?}");
        }
    }

    #[test]
    fn lookups_ignore_case() {
        let c = parse_www_authenticate(r#"bEaReR REALM="r""#).expect("parses");
        assert!(c[0].is("Bearer"));
        assert_eq!(c[0].param("realm"), Some("r"));
        assert_eq!(c[0].param("service"), None);
    }

    #[test]
    fn errors() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("", "no challenge"),
            (" , ", "no challenge"),
            ("=x", "expected a scheme at byte 0"),
            ("Bearer\"x\"", "expected a scheme at byte 6"),
            (r#"Bearer realm="unterminated"#, "unterminated quoted string"),
            ("Bearer realm=r, service=", "expected a scheme at byte 23"),
            ("Bearer realm=r junk", "malformed parameter at byte 15"),
            ("Negotiate abc== junk", "malformed parameter at byte 16"),
            ("Bearer realm=\"r\" service=\"s\"", "malformed parameter at byte 17"),
        ];
        for (header, want) in cases {
            let err = parse_www_authenticate(header).expect_err(header);
            let msg = err.to_string();
            assert!(msg.contains(want), "header {header:?}: {msg}");
        }
    }
}
