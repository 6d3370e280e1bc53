//! Tag or digest: the reference of a manifest request, told apart as the registry does.

use std::fmt;

/// The reference of `/v2/<name>/manifests/<reference>`.
///
/// distribution's router accepts a reference matching its tag grammar
/// (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) or its digest grammar
/// (`[a-z0-9]+([.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`); its handler then asks go-digest whether the
/// reference is a valid digest (`sha256`, `sha384` or `sha512` with the right number of
/// lowercase hex digits) and treats **everything else as a tag**, including `sha256:abc` and
/// `md5:...`. [`Reference::parse`] follows the same two steps, so a push the registry stores
/// under a tag is never taken for a push by digest.
///
/// ```
/// use registry_api::Reference;
///
/// assert!(matches!(Reference::parse("v1.0"), Ok(Reference::Tag(_))));
/// assert!(matches!(Reference::parse(&format!("sha256:{}", "a".repeat(64))), Ok(Reference::Digest(_))));
/// // Looks like a digest, is not one: the registry makes it a tag.
/// assert!(matches!(Reference::parse("sha256:abc"), Ok(Reference::Tag(_))));
/// assert!(Reference::parse("a/b").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A tag: the push creates or moves it.
    Tag(String),
    /// A valid digest: the push creates no tag.
    Digest(oci_manifest::Digest),
}

/// A reference that matches neither grammar: distribution's router does not route it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid reference \"{0}\": expected a tag ([A-Za-z0-9_][A-Za-z0-9_.-], at most 128 \
     characters) or a digest (algorithm:hex)"
)]
pub struct ReferenceError(pub String);

impl Reference {
    /// Reads a (decoded) reference as distribution does.
    pub fn parse(reference: &str) -> Result<Self, ReferenceError> {
        if let Ok(digest) = reference.parse::<oci_manifest::Digest>() {
            return Ok(Reference::Digest(digest));
        }
        if is_tag(reference) || is_digest_shaped(reference) {
            Ok(Reference::Tag(reference.to_owned()))
        } else {
            Err(ReferenceError(reference.chars().take(150).collect()))
        }
    }

    /// The tag, when this is one.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Reference::Tag(tag) => Some(tag),
            Reference::Digest(_) => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(tag) => f.write_str(tag),
            Reference::Digest(digest) => f.write_str(digest.as_str()),
        }
    }
}

/// distribution's `TagRegexp`, anchored: `[\w][\w.-]{0,127}` with Go's ASCII `\w`.
pub(crate) fn is_tag(text: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes[1..]
            .iter()
            .all(|&b| word(b) || b == b'.' || b == b'-')
}

/// go-digest's `DigestRegexp`, anchored: `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
fn is_digest_shaped(text: &str) -> bool {
    let Some((algorithm, encoded)) = text.split_once(':') else {
        return false;
    };
    let lower = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let algorithm_ok = algorithm
        .split(['.', '+', '_', '-'])
        .all(|part| !part.is_empty() && part.bytes().all(lower));
    let encoded_ok = !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'=' || b == b'_' || b == b'-');
    algorithm_ok && encoded_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let h64 = "a".repeat(64);
        let cases: Vec<(String, Option<&str>)> = vec![
            ("latest".into(), Some("tag")),
            ("Latest".into(), Some("tag")),
            ("_x".into(), Some("tag")),
            ("v1.0-rc.1".into(), Some("tag")),
            ("a".repeat(128), Some("tag")),
            ("a".repeat(129), None),
            (".x".into(), None),
            ("-x".into(), None),
            ("a/b".into(), None),
            ("a b".into(), None),
            ("".into(), None),
            (format!("sha256:{h64}"), Some("digest")),
            (format!("sha384:{}", "b".repeat(96)), Some("digest")),
            (format!("sha512:{}", "c".repeat(128)), Some("digest")),
            // Digest-shaped but invalid: the registry stores it as a tag.
            ("sha256:abc".into(), Some("tag")),
            (format!("sha256:{}", "A".repeat(64)), Some("tag")),
            (format!("md5:{h64}"), Some("tag")),
            ("a.b+c_d-e:x=y_z-1".into(), Some("tag")),
            ("A:b".into(), None),
            ("a:".into(), None),
            (":a".into(), None),
            ("a..b:c".into(), None),
            ("a:b:c".into(), None),
        ];
        for (reference, want) in cases {
            let got = match Reference::parse(&reference) {
                Ok(Reference::Tag(_)) => Some("tag"),
                Ok(Reference::Digest(_)) => Some("digest"),
                Err(_) => None,
            };
            assert_eq!(got, want, "{reference}");
        }
    }
}
