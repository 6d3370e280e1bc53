//! Deleting what an immutable tag names: a manifest delete by such a tag, or by the digest such
//! a tag points to, removes the tag, after which it could be pushed again with other content.

use std::fmt;

use serde::Serialize;

use crate::RepositoryName;
use crate::source::LimitSource;

/// What `DELETE /v2/<name>/manifests/<reference>` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteTarget<'a> {
    /// A tag: registries that delete by tag (OCI distribution 1.1) remove the tag.
    Tag(&'a str),
    /// A digest: the registry removes the manifest and every tag that points to it.
    Digest(&'a str),
}

/// A manifest delete refused because it would remove an immutable tag.
///
/// ```
/// use limits_core::{DeleteTarget, Policy};
///
/// let policy = Policy::from_yaml(r#"
/// rules:
///   - path: ^p/
///     immutable_tags: ['^v[0-9]']
///     limit: {max_image_size: 1GB, tag_count_limit: 10}
/// "#)?;
/// let applied = policy.limits_for(&"p/app".parse()?);
/// // The facts: the tags that match a pattern, with the digests they point to.
/// let tags = [("v1.0", "sha256:aa"), ("v2.0", "sha256:bb")];
/// let refused = applied
///     .check_manifest_delete(DeleteTarget::Digest("sha256:aa"), tags)
///     .unwrap_err();
/// assert_eq!(
///     refused.to_string(),
///     "manifest sha256:aa of repository p/app cannot be deleted: immutable tag v1.0 points to it (pattern ^v[0-9] of rule 1: ^p/); set allow_deleting_immutable_tags: true to allow such deletes"
/// );
/// assert_eq!(refused.detail().check, "immutable_tag_delete");
/// // A digest no immutable tag points to may go.
/// assert!(applied.check_manifest_delete(DeleteTarget::Digest("sha256:cc"), tags).is_ok());
/// // Deleting by the tag itself needs no facts.
/// let by_tag = applied.check_manifest_delete(DeleteTarget::Tag("v1.0"), []).unwrap_err();
/// assert!(by_tag.to_string().starts_with("tag v1.0 of repository p/app cannot be deleted: it is immutable"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmutableDelete {
    /// The repository.
    pub repository: RepositoryName,
    /// The reference the delete names: the immutable tag, or a digest.
    pub reference: String,
    /// The immutable tag the delete would remove.
    pub tag: String,
    /// The digest the tag points to, when the delete names a digest; `None` when it names the
    /// tag itself.
    pub digest: Option<String>,
    /// The `immutable_tags` pattern the tag matches.
    pub pattern: String,
    /// Where the pattern came from.
    pub source: LimitSource,
}

/// The facts of a refused manifest delete, for the `detail` of an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImmutableDeleteDetail {
    /// The repository.
    pub repository: String,
    /// `immutable_tag_delete`.
    pub check: &'static str,
    /// The reference the delete names.
    pub reference: String,
    /// The immutable tag.
    pub tag: String,
    /// The digest the tag points to; `None` when the delete names the tag.
    pub digest: Option<String>,
    /// The matching pattern.
    pub pattern: String,
    /// 1-based position of the rule that gave the pattern; `None` for the global key.
    pub rule: Option<usize>,
    /// The rule's path; `None` for the global key.
    pub rule_path: Option<String>,
}

impl ImmutableDelete {
    /// The facts as values.
    pub fn detail(&self) -> ImmutableDeleteDetail {
        let (rule, rule_path) = self.source.rule_and_path();
        ImmutableDeleteDetail {
            repository: self.repository.to_string(),
            check: "immutable_tag_delete",
            reference: self.reference.clone(),
            tag: self.tag.clone(),
            digest: self.digest.clone(),
            pattern: self.pattern.clone(),
            rule,
            rule_path,
        }
    }
}

impl fmt::Display for ImmutableDelete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = self.source.setting("immutable_tags");
        match &self.digest {
            Some(digest) => write!(
                f,
                "manifest {digest} of repository {} cannot be deleted: immutable tag {} points to it (pattern {} of {source})",
                self.repository, self.tag, self.pattern
            )?,
            None => write!(
                f,
                "tag {} of repository {} cannot be deleted: it is immutable (pattern {} of {source})",
                self.tag, self.repository, self.pattern
            )?,
        }
        f.write_str("; set allow_deleting_immutable_tags: true to allow such deletes")
    }
}

#[cfg(test)]
mod tests {
    use crate::{DeleteTarget, Policy};

    const CONFIG: &str = r#"
immutable_tags: ['^v[0-9]+\.']
rules:
  - path: ^open/
    allow_deleting_immutable_tags: true
    limit: {max_image_size: 1GB, tag_count_limit: 10}
  - path: ^scratch/
    immutable_tags: []
    limit: {max_image_size: 1GB, tag_count_limit: 10}
  - path: ^strict/
    immutable_tags: ['^release-']
    exempt_signature_tags: false
    limit: {max_image_size: 1GB, tag_count_limit: 10}
"#;

    #[test]
    fn decisions() {
        let policy = Policy::from_yaml(CONFIG).expect("valid");
        let sig = format!("sha256-{}.sig", "a".repeat(64));
        let tags = [
            ("v1.0", "sha256:aa"),
            ("latest", "sha256:bb"),
            ("release-1", "sha256:cc"),
            (sig.as_str(), "sha256:dd"),
        ];
        // (repository, target, refused by which tag)
        let cases: &[(&str, DeleteTarget<'_>, Option<&str>)] = &[
            ("team/app", DeleteTarget::Digest("sha256:aa"), Some("v1.0")),
            ("team/app", DeleteTarget::Digest("sha256:bb"), None),
            ("team/app", DeleteTarget::Digest("sha256:ee"), None),
            ("team/app", DeleteTarget::Tag("v1.0"), Some("v1.0")),
            ("team/app", DeleteTarget::Tag("v9.9"), Some("v9.9")),
            ("team/app", DeleteTarget::Tag("latest"), None),
            // Signature tags are never immutable unless counted.
            ("team/app", DeleteTarget::Tag("sha256-x.sig"), None),
            ("team/app", DeleteTarget::Digest("sha256:dd"), None),
            ("strict/app", DeleteTarget::Digest("sha256:dd"), None),
            (
                "strict/app",
                DeleteTarget::Digest("sha256:cc"),
                Some("release-1"),
            ),
            ("strict/app", DeleteTarget::Digest("sha256:aa"), None),
            ("strict/app", DeleteTarget::Tag(&sig), None),
            // The opt-out, and a rule without patterns.
            ("open/app", DeleteTarget::Digest("sha256:aa"), None),
            ("open/app", DeleteTarget::Tag("v1.0"), None),
            ("scratch/app", DeleteTarget::Digest("sha256:aa"), None),
            ("scratch/app", DeleteTarget::Tag("v1.0"), None),
        ];
        for (name, target, refused_by) in cases {
            let applied = policy.limits_for(&name.parse().expect("name"));
            let got = applied
                .check_manifest_delete(*target, tags)
                .err()
                .map(|refusal| refusal.tag);
            assert_eq!(got.as_deref(), *refused_by, "{name} {target:?}");
        }
    }

    /// A signature tag's name exempts it from nothing here: the caller leaves out the tags that
    /// `AppliedProtections::is_exempt` (which needs what they are, not only their name).
    #[test]
    fn signature_tags_are_immutable_by_name_alone() {
        let policy = Policy::from_yaml(CONFIG).expect("valid");
        let sig = format!("sha256-{}.sig", "a".repeat(64));
        let strict =
            Policy::from_yaml("immutable_tags: ['.']\nexempt_signature_tags: false\nrules: []\n")
                .expect("valid")
                .limits_for(&"a/b".parse().expect("name"));
        assert!(
            strict
                .check_manifest_delete(DeleteTarget::Tag(&sig), [])
                .is_err()
        );
        let exempt = Policy::from_yaml("immutable_tags: ['.']\nrules: []\n")
            .expect("valid")
            .limits_for(&"a/b".parse().expect("name"));
        assert!(exempt.protections.signature_candidate(&sig).is_some());
        assert!(
            exempt
                .check_manifest_delete(DeleteTarget::Tag(&sig), [])
                .is_err()
        );
        // Under the patterns of CONFIG, the signature tag matches none.
        let unmatched = policy.limits_for(&"a/b".parse().expect("name"));
        assert!(
            unmatched
                .check_manifest_delete(DeleteTarget::Tag(&sig), [])
                .is_ok()
        );
    }

    #[test]
    fn messages_and_details() {
        let policy = Policy::from_yaml(CONFIG).expect("valid");
        let strict = policy.limits_for(&"strict/app".parse().expect("name"));
        let refused = strict
            .check_manifest_delete(DeleteTarget::Tag("release-2"), [])
            .expect_err("immutable");
        assert_eq!(
            refused.to_string(),
            "tag release-2 of repository strict/app cannot be deleted: it is immutable (pattern ^release- of rule 3: ^strict/); set allow_deleting_immutable_tags: true to allow such deletes"
        );
        assert_eq!(
            serde_json::to_string(&refused.detail()).expect("serialisable"),
            r#"{"repository":"strict/app","check":"immutable_tag_delete","reference":"release-2","tag":"release-2","digest":null,"pattern":"^release-","rule":3,"rule_path":"^strict/"}"#
        );
        let global = policy.limits_for(&"team/app".parse().expect("name"));
        let refused = global
            .check_manifest_delete(DeleteTarget::Digest("sha256:aa"), [("v1.0", "sha256:aa")])
            .expect_err("immutable");
        assert_eq!(
            refused.to_string(),
            "manifest sha256:aa of repository team/app cannot be deleted: immutable tag v1.0 points to it (pattern ^v[0-9]+\\. of global immutable_tags); set allow_deleting_immutable_tags: true to allow such deletes"
        );
        assert_eq!(
            serde_json::to_string(&refused.detail()).expect("serialisable"),
            r#"{"repository":"team/app","check":"immutable_tag_delete","reference":"sha256:aa","tag":"v1.0","digest":"sha256:aa","pattern":"^v[0-9]+\\.","rule":null,"rule_path":null}"#
        );
    }
}
