//! Content digests (`sha256:<64 hex>`, `sha384:<96 hex>`, `sha512:<128 hex>`): the algorithms
//! the CNCF distribution registry accepts (Go's go-digest).

use std::fmt;
use std::str::FromStr;

use crate::text::truncate;

/// A validated content digest: `sha256:` followed by 64 lowercase hex digits, `sha384:` by 96,
/// or `sha512:` by 128.
///
/// ```
/// use oci_manifest::Digest;
///
/// let d: Digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000".parse()?;
/// assert_eq!(d.algorithm(), "sha256");
/// assert!("sha256:abc".parse::<Digest>().is_err());
/// # Ok::<(), oci_manifest::DigestError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// Why a digest was refused. The refused value is kept cut to 150 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// No `algorithm:` prefix.
    #[error("invalid digest \"{0}\": missing algorithm prefix")]
    MissingAlgorithm(String),
    /// An algorithm other than sha256, sha384 or sha512 (the ones Go's go-digest, and so the
    /// registry, accepts).
    #[error("invalid digest \"{0}\": unsupported algorithm (expected sha256, sha384 or sha512)")]
    UnsupportedAlgorithm(String),
    /// The hex part has the wrong length or characters.
    #[error("invalid digest \"{value}\": expected {expected} lowercase hex digits")]
    InvalidHex {
        /// The refused digest.
        value: String,
        /// How many hex digits the algorithm needs.
        expected: usize,
    },
}

impl Digest {
    /// The whole digest, `algorithm:hex`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The algorithm part (`sha256`, `sha384` or `sha512`).
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map_or("", |(a, _)| a)
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, h)| h)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let (algorithm, hex) = value
            .split_once(':')
            .ok_or_else(|| DigestError::MissingAlgorithm(truncate(value)))?;
        let expected = match algorithm {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return Err(DigestError::UnsupportedAlgorithm(truncate(value))),
        };
        let valid = hex.len() == expected
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(DigestError::InvalidHex {
                value: truncate(value),
                expected,
            });
        }
        Ok(Self(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let h64 = "a".repeat(64);
        let h128 = "0".repeat(128);
        let cases: Vec<(String, bool)> = vec![
            (format!("sha256:{h64}"), true),
            (format!("sha512:{h128}"), true),
            (format!("sha256:{}", "A".repeat(64)), false),
            (format!("sha256:{}", "a".repeat(63)), false),
            (format!("sha512:{h64}"), false),
            (format!("sha384:{}", "b".repeat(96)), true),
            (format!("sha384:{h64}"), false),
            (format!("md5:{h64}"), false),
            (h64.clone(), false),
            (String::new(), false),
            ("sha256:".into(), false),
        ];
        for (value, ok) in cases {
            assert_eq!(value.parse::<Digest>().is_ok(), ok, "{value}");
        }
    }
}
