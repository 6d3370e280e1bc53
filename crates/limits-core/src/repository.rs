//! Repository names, validated with the distribution grammar.

use std::fmt;
use std::str::FromStr;

/// The longest repository name distribution accepts.
pub const MAX_REPOSITORY_NAME_LEN: usize = 255;

/// A repository name such as `project-1/app`: no host, no tag, no digest.
///
/// The grammar is the one of the OCI distribution specification:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255 bytes.
///
/// ```
/// use limits_core::RepositoryName;
///
/// let name: RepositoryName = "project-1/app".parse()?;
/// assert_eq!(name.as_str(), "project-1/app");
/// assert!("Project/App".parse::<RepositoryName>().is_err());
/// # Ok::<(), limits_core::RepositoryNameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

/// Why a repository name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryNameError {
    /// The name is empty.
    #[error("invalid repository name \"\": empty")]
    Empty,
    /// The name is longer than 255 bytes.
    #[error("invalid repository name \"{name}\": longer than {MAX_REPOSITORY_NAME_LEN} bytes")]
    TooLong {
        /// The refused name.
        name: String,
    },
    /// The name breaks the grammar at the given byte offset.
    #[error("invalid repository name \"{name}\": unexpected {found} at byte {offset}")]
    Invalid {
        /// The refused name.
        name: String,
        /// Byte offset of the first offending character.
        offset: usize,
        /// The offending character quoted, or `end of name` where the name ends too early.
        found: String,
    },
}

impl RepositoryName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RepositoryName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for RepositoryName {
    type Err = RepositoryNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if name.is_empty() {
            return Err(RepositoryNameError::Empty);
        }
        if name.len() > MAX_REPOSITORY_NAME_LEN {
            return Err(RepositoryNameError::TooLong {
                name: name.to_owned(),
            });
        }
        validate(name)?;
        Ok(Self(name.to_owned()))
    }
}

impl TryFrom<&str> for RepositoryName {
    type Error = RepositoryNameError;

    fn try_from(name: &str) -> Result<Self, Self::Error> {
        name.parse()
    }
}

/// Walks the name once: components of alphanumerics joined by `.`, `_`, `__` or runs of `-`,
/// components separated by `/`.
fn validate(name: &str) -> Result<(), RepositoryNameError> {
    let invalid = |offset: usize| RepositoryNameError::Invalid {
        name: name.to_owned(),
        offset,
        found: name[offset..]
            .chars()
            .next()
            .map_or_else(|| "end of name".to_owned(), |c| format!("{c:?}")),
    };
    let bytes = name.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        // One path component: alnum+ (separator alnum+)*
        if i >= bytes.len() || !alnum(bytes[i]) {
            return Err(invalid(i));
        }
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        loop {
            let sep_len = match bytes.get(i) {
                Some(b'.') => 1,
                Some(b'_') if bytes.get(i + 1) == Some(&b'_') => 2,
                Some(b'_') => 1,
                Some(b'-') => bytes[i..].iter().take_while(|&&b| b == b'-').count(),
                _ => 0,
            };
            if sep_len == 0 {
                break;
            }
            i += sep_len;
            if i >= bytes.len() || !alnum(bytes[i]) {
                return Err(invalid(i));
            }
            while i < bytes.len() && alnum(bytes[i]) {
                i += 1;
            }
        }
        match bytes.get(i) {
            None => return Ok(()),
            Some(b'/') => i += 1,
            Some(_) => return Err(invalid(i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        let cases: &[(&str, bool)] = &[
            ("app", true),
            ("project-1/app", true),
            ("a/b/c/d", true),
            ("my.app_v2", true),
            ("a__b", true),
            ("a---b", true),
            ("library/ubuntu", true),
            ("0", true),
            ("", false),
            ("App", false),
            ("a/", false),
            ("/a", false),
            ("a//b", false),
            ("a___b", false),
            ("a..b", false),
            ("a.-b", false),
            ("-a", false),
            ("a-", false),
            ("a b", false),
            ("a:tag", false),
            ("a@sha256", false),
            ("é", false),
        ];
        for (name, ok) in cases {
            assert_eq!(name.parse::<RepositoryName>().is_ok(), *ok, "{name:?}");
        }
    }

    #[test]
    fn too_long() {
        let name = "a".repeat(256);
        assert!(matches!(
            name.parse::<RepositoryName>(),
            Err(RepositoryNameError::TooLong { .. })
        ));
        assert!("a".repeat(255).parse::<RepositoryName>().is_ok());
    }

    #[test]
    fn error_names_the_value() {
        let err = "a//b".parse::<RepositoryName>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid repository name \"a//b\": unexpected '/' at byte 2"
        );
    }
}
