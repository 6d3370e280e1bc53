//! The tokenizer shared by the `WWW-Authenticate` and `Link` header parsers: a cursor over
//! one header value and the RFC 9110 section 5.6 character classes.
//!
//! It reports no errors itself; each parser builds its own from [`Cursor::header`] and
//! [`Cursor::pos`].

/// Optional white space (`OWS`, `BWS`): space or horizontal tab.
pub(crate) fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// A `tchar`, one character of a `token`.
pub(crate) fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A byte position in a header value. Copy it to look ahead without consuming.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    header: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `header`.
    pub(crate) fn new(header: &'a str) -> Self {
        Self { header, pos: 0 }
    }

    /// The whole header value.
    pub(crate) fn header(&self) -> &'a str {
        self.header
    }

    /// The byte offset of the next character.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// What is left of the header from the cursor on.
    pub(crate) fn rest(&self) -> &'a str {
        &self.header[self.pos..]
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.header.len()
    }

    /// Moves on `bytes` bytes, which must end on a character boundary.
    pub(crate) fn advance(&mut self, bytes: usize) {
        self.pos += bytes;
    }

    /// Consumes `c` if it is next; says whether it was.
    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Consumes characters while `f` holds.
    pub(crate) fn skip(&mut self, f: impl Fn(char) -> bool) {
        while let Some(c) = self.peek().filter(|&c| f(c)) {
            self.pos += c.len_utf8();
        }
    }

    /// Consumes and returns the characters while `f` holds (possibly none).
    pub(crate) fn take(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        self.skip(f);
        &self.header[start..self.pos]
    }

    /// The `quoted-string` starting at the cursor's `"`, unquoted, with `\` escapes resolved.
    /// `None` when it is never closed; the cursor then stays where it was.
    pub(crate) fn quoted(&mut self) -> Option<String> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Some(out);
                }
                '\\' => out.push(chars.next()?.1),
                c => out.push(c),
            }
        }
        None
    }
}
