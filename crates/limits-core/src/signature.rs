//! Signature, attestation and SBOM tags (`exempt_signature_tags`): which tags the exemption
//! from the tag limit holds for.
//!
//! cosign attaches what it makes to a manifest under a tag named after that manifest's digest:
//! `sha256-<hex>.sig`, `.att` or `.sbom`. A name is only a name, so the exemption is granted by
//! what the tag *is*: the digest it names must be an image the repository holds (a manifest
//! that is not itself attached to another one), and the manifest pushed under it must be the
//! artifact its suffix says. Each image then has at most three exempt tags. Whoever applies the
//! rule learns the facts (the subject, the pushed manifest's shape) and passes them in.

use std::fmt;

use crate::AppliedProtections;

/// A tag named the way cosign names what it attaches to a manifest: `sha256-<64 lowercase
/// hex>.sig`, `.att` or `.sbom`.
///
/// ```
/// use limits_core::SignatureTag;
///
/// let hex = "0123456789abcdef".repeat(4);
/// let tag = SignatureTag::parse(&format!("sha256-{hex}.sig")).expect("signature tag");
/// assert_eq!(tag.subject(), format!("sha256:{hex}"));
/// assert_eq!(tag.suffix(), "sig");
/// assert!(SignatureTag::parse("v1.sig").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureTag {
    subject: String,
    suffix: &'static str,
}

impl SignatureTag {
    /// The tag's parts, when it has the shape.
    pub fn parse(tag: &str) -> Option<Self> {
        let rest = tag.strip_prefix("sha256-")?;
        let (hex, suffix) = rest.split_once('.')?;
        let suffix = ["sig", "att", "sbom"].into_iter().find(|s| *s == suffix)?;
        let is_hex = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        is_hex.then(|| Self {
            subject: format!("sha256:{hex}"),
            suffix,
        })
    }

    /// The digest of the manifest the tag is attached to, `sha256:<hex>`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// `sig`, `att` or `sbom`.
    pub fn suffix(&self) -> &'static str {
        self.suffix
    }
}

/// Whether `tag` is named the way cosign names a signature, attestation or SBOM:
/// `sha256-<64 lowercase hex>.sig`, `.att` or `.sbom`. The name alone exempts nothing; see
/// [`AppliedProtections::is_exempt`].
///
/// ```
/// use limits_core::is_signature_tag;
///
/// let hex = "0123456789abcdef".repeat(4);
/// assert!(is_signature_tag(&format!("sha256-{hex}.sig")));
/// assert!(is_signature_tag(&format!("sha256-{hex}.sbom")));
/// assert!(!is_signature_tag(&format!("sha256-{hex}")));
/// assert!(!is_signature_tag("v1.sig"));
/// ```
pub fn is_signature_tag(tag: &str) -> bool {
    SignatureTag::parse(tag).is_some()
}

impl fmt::Display for SignatureTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.subject.replacen(':', "-", 1), self.suffix)
    }
}

/// What the repository holds under the digest a signature tag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// An image (or index) of its own: signatures may be attached to it.
    Image,
    /// A manifest that is itself attached to another one (a cosign artifact, an OCI referrer
    /// with a `subject`): attaching to it would chain exemptions without end.
    Attached,
    /// Nothing (the registry answers 404), or what it holds could not be read.
    Absent,
}

/// The manifest under a signature tag, as far as the exemption asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Content<'a> {
    /// The manifest being pushed under the tag: the tag suffix of the cosign artifact it is
    /// (`Some("sig")`, ...), or `None` when it has no cosign shape.
    Pushed(Option<&'a str>),
    /// A tag the registry already holds, whose manifest was checked when it was pushed.
    Stored,
}

impl AppliedProtections {
    /// The signature tag `tag` may be exempt as: `Some` when `exempt_signature_tags` is on and
    /// the name has the shape. The exemption itself is [`is_exempt`](Self::is_exempt)'s to
    /// grant.
    pub fn signature_candidate(&self, tag: &str) -> Option<SignatureTag> {
        if !self.exempt_signature_tags.value {
            return None;
        }
        SignatureTag::parse(tag)
    }

    /// Whether `tag` is exempt from the tag limit and from `immutable_tags`: its subject is an
    /// image the repository holds, and, when it is being pushed, the manifest is the cosign
    /// artifact its suffix names. Anything else counts like any tag.
    ///
    /// ```
    /// use limits_core::{Content, Policy, Subject};
    ///
    /// let policy = Policy::from_yaml("tag_count_limit: 2")?;
    /// let applied = policy.limits_for(&"team/app".parse()?);
    /// let tag = applied
    ///     .protections
    ///     .signature_candidate(&format!("sha256-{}.sig", "a".repeat(64)))
    ///     .expect("exempt_signature_tags is on by default");
    /// let p = &applied.protections;
    /// assert!(p.is_exempt(&tag, Subject::Image, Content::Pushed(Some("sig"))));
    /// assert!(p.is_exempt(&tag, Subject::Image, Content::Stored));
    /// // An ordinary image under a signature's name, a made-up digest, a signature of a signature:
    /// assert!(!p.is_exempt(&tag, Subject::Image, Content::Pushed(None)));
    /// assert!(!p.is_exempt(&tag, Subject::Image, Content::Pushed(Some("att"))));
    /// assert!(!p.is_exempt(&tag, Subject::Absent, Content::Pushed(Some("sig"))));
    /// assert!(!p.is_exempt(&tag, Subject::Attached, Content::Stored));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_exempt(&self, tag: &SignatureTag, subject: Subject, content: Content<'_>) -> bool {
        let shaped = match content {
            Content::Pushed(kind) => kind == Some(tag.suffix()),
            Content::Stored => true,
        };
        self.exempt_signature_tags.value && subject == Subject::Image && shaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    #[test]
    fn names() {
        let hex = "a".repeat(64);
        let cases: &[(String, Option<&str>)] = &[
            (format!("sha256-{hex}.sig"), Some("sig")),
            (format!("sha256-{hex}.att"), Some("att")),
            (format!("sha256-{hex}.sbom"), Some("sbom")),
            (format!("sha256-{hex}.SIG"), None),
            (format!("sha256-{hex}.sig.bak"), None),
            (format!("sha256-{hex}"), None),
            (format!("sha512-{hex}.sig"), None),
            (format!("sha256-{}.sig", "A".repeat(64)), None),
            (format!("sha256-{}.sig", "a".repeat(63)), None),
            ("v1.sig".to_owned(), None),
            ("latest".to_owned(), None),
        ];
        for (tag, suffix) in cases {
            let parsed = SignatureTag::parse(tag);
            assert_eq!(parsed.as_ref().map(SignatureTag::suffix), *suffix, "{tag}");
            if let Some(parsed) = parsed {
                assert_eq!(parsed.to_string(), *tag);
                assert_eq!(parsed.subject(), format!("sha256:{hex}"));
            }
        }
    }

    #[test]
    fn exemption() {
        let policy = Policy::from_yaml(
            "rules:\n  - path: ^counted/\n    exempt_signature_tags: false\n    limit: {max_image_size: 1GB, tag_count_limit: 2}\n",
        )
        .expect("valid");
        let sig = format!("sha256-{}.sig", "b".repeat(64));
        let exempting = policy.limits_for(&"team/app".parse().expect("name"));
        let tag = exempting
            .protections
            .signature_candidate(&sig)
            .expect("candidate");
        use Content::*;
        use Subject::*;
        let cases: &[(Subject, Content<'_>, bool)] = &[
            (Image, Pushed(Some("sig")), true),
            (Image, Stored, true),
            (Image, Pushed(Some("sbom")), false),
            (Image, Pushed(None), false),
            (Attached, Pushed(Some("sig")), false),
            (Attached, Stored, false),
            (Absent, Pushed(Some("sig")), false),
            (Absent, Stored, false),
        ];
        for (subject, content, exempt) in cases {
            assert_eq!(
                exempting.protections.is_exempt(&tag, *subject, *content),
                *exempt,
                "{subject:?} {content:?}"
            );
        }
        let counted = policy.limits_for(&"counted/app".parse().expect("name"));
        assert_eq!(counted.protections.signature_candidate(&sig), None);
        assert!(
            !counted
                .protections
                .is_exempt(&tag, Image, Pushed(Some("sig")))
        );
    }
}
