//! Content digests (`sha256:<64 hex>`, `sha384:<96 hex>`, `sha512:<128 hex>`): the algorithms
//! the CNCF distribution registry accepts (Go's go-digest), read from text or computed from
//! bytes.

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

/// A digest algorithm the registry accepts.
///
/// ```
/// use oci_manifest::DigestAlgorithm;
///
/// assert_eq!(DigestAlgorithm::from_name("sha384"), Some(DigestAlgorithm::Sha384));
/// assert_eq!(DigestAlgorithm::from_name("md5"), None);
/// assert_eq!(DigestAlgorithm::Sha512.to_string(), "sha512");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    /// SHA-256, the canonical algorithm: 64 hex digits.
    Sha256,
    /// SHA-384: 96 hex digits.
    Sha384,
    /// SHA-512: 128 hex digits.
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm named exactly (`sha256`, `sha384`, `sha512`), or `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The name a digest starts with.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// How many hex digits a digest of this algorithm has.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha384 => 96,
            Self::Sha512 => 128,
        }
    }

    fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
    /// The digest of `bytes` with `algorithm`: what the registry gives the very bytes pushed
    /// (a manifest's digest is that of its bytes as sent, not of a re-encoding).
    ///
    /// ```
    /// use oci_manifest::{Digest, DigestAlgorithm};
    ///
    /// let digest = Digest::of_bytes(DigestAlgorithm::Sha256, b"abc");
    /// assert_eq!(
    ///     digest.as_str(),
    ///     "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    /// );
    /// assert_eq!(Digest::sha256(b"abc"), digest);
    /// assert_eq!(Digest::of_bytes(DigestAlgorithm::Sha512, b"").hex().len(), 128);
    /// ```
    pub fn of_bytes(algorithm: DigestAlgorithm, bytes: &[u8]) -> Self {
        let hash = ring::digest::digest(algorithm.ring(), bytes);
        let mut text = String::with_capacity(algorithm.name().len() + 1 + algorithm.hex_len());
        text.push_str(algorithm.name());
        text.push(':');
        for byte in hash.as_ref() {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        Self(text)
    }

    /// The digest of `bytes` to compare with a digest whose algorithm is `name`: with that
    /// algorithm when the registry supports it, sha256 (its default) otherwise.
    ///
    /// ```
    /// use oci_manifest::Digest;
    ///
    /// assert_eq!(Digest::of_bytes_named("sha512", b"").hex().len(), 128);
    /// assert_eq!(Digest::of_bytes_named("md5", b"abc"), Digest::sha256(b"abc"));
    /// ```
    pub fn of_bytes_named(name: &str, bytes: &[u8]) -> Self {
        let algorithm = DigestAlgorithm::from_name(name).unwrap_or(DigestAlgorithm::Sha256);
        Self::of_bytes(algorithm, bytes)
    }

    /// The sha256 digest of `bytes`, the algorithm registries use unless told otherwise.
    pub fn sha256(bytes: &[u8]) -> Self {
        Self::of_bytes(DigestAlgorithm::Sha256, bytes)
    }

    /// The whole digest, `algorithm:hex`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The algorithm part (`sha256`, `sha384` or `sha512`).
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map_or("", |(a, _)| a)
    }

    /// The algorithm, typed.
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        DigestAlgorithm::from_name(self.algorithm()).unwrap_or(DigestAlgorithm::Sha256)
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, h)| h)
    }
}

/// Lowercase hex digits, as digests are written.
const HEX: &[u8; 16] = b"0123456789abcdef";

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
        let expected = DigestAlgorithm::from_name(algorithm)
            .ok_or_else(|| DigestError::UnsupportedAlgorithm(truncate(value)))?
            .hex_len();
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

    /// A pushed manifest's digest, with the algorithm of the digest it is compared to.
    #[test]
    fn digests_of_pushed_bytes() {
        let cases: &[(&str, &[u8], &str)] = &[
            (
                "sha256",
                b"",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                "sha256",
                b"abc",
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                "sha512",
                b"",
                "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
            ),
            (
                "md5",
                b"",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
        ];
        for (algorithm, bytes, expected) in cases {
            assert_eq!(
                Digest::of_bytes_named(algorithm, bytes).as_str(),
                *expected,
                "{algorithm}"
            );
        }
    }

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

    #[test]
    fn of_bytes() {
        use DigestAlgorithm::{Sha256, Sha384, Sha512};
        #[rustfmt::skip]
        let cases: &[(DigestAlgorithm, &[u8], &str)] = &[
            (Sha256, b"", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (Sha256, b"abc", "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (Sha384, b"", "sha384:38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"),
            (Sha384, b"abc", "sha384:cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
            (Sha512, b"", "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
            (Sha512, b"abc", "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
        ];
        for (algorithm, bytes, expected) in cases {
            let digest = Digest::of_bytes(*algorithm, bytes);
            assert_eq!(digest.as_str(), *expected, "{algorithm} {bytes:?}");
            // A computed digest is a valid one, of the algorithm asked for.
            assert_eq!(expected.parse::<Digest>().as_ref(), Ok(&digest));
            assert_eq!(digest.digest_algorithm(), *algorithm);
        }
        assert_eq!(Digest::sha256(b"abc"), Digest::of_bytes(Sha256, b"abc"));
    }

    #[test]
    fn algorithm_names() {
        for algorithm in [
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha384,
            DigestAlgorithm::Sha512,
        ] {
            assert_eq!(
                DigestAlgorithm::from_name(algorithm.name()),
                Some(algorithm)
            );
        }
        for name in ["", "SHA256", "sha1", "md5", "sha256 "] {
            assert_eq!(DigestAlgorithm::from_name(name), None, "{name:?}");
        }
    }
}
