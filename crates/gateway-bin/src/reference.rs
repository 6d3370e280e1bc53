//! Image references as users type them (`localhost:5000/team/app:v1`), read down to the
//! repository name limits apply to (`team/app`), for `explain`.

use std::fmt;

/// A reference read as a repository name, with what was left out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading<'a> {
    /// The repository name: no host, no tag, no digest.
    pub repository: &'a str,
    /// The registry host, as Docker tells it from a repository's first component: one that
    /// holds a `.` or a `:`, or is `localhost`.
    pub host: Option<&'a str>,
    /// The tag after the last `:` of the last component.
    pub tag: Option<&'a str>,
    /// The digest after `@`.
    pub digest: Option<&'a str>,
}

impl<'a> Reading<'a> {
    /// Reads `reference`; a bare repository name reads as itself. The name is not checked here
    /// (`RepositoryName` does that), only taken apart.
    pub fn of(reference: &'a str) -> Self {
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) if !digest.is_empty() => (name, Some(digest)),
            _ => (reference, None),
        };
        let last_slash = name.rfind('/').map_or(0, |at| at + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(at) if last_slash + at + 1 < name.len() => {
                (&name[..last_slash + at], Some(&name[last_slash + at + 1..]))
            }
            _ => (name, None),
        };
        let (host, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':']) || first == "localhost" && !rest.is_empty() =>
            {
                (Some(first), rest)
            }
            _ => (None, name),
        };
        Reading {
            repository,
            host,
            tag,
            digest,
        }
    }

    /// Whether anything was left out.
    pub fn left_out_anything(&self) -> bool {
        self.host.is_some() || self.tag.is_some() || self.digest.is_some()
    }
}

/// What was left out: `host localhost:5000 and tag v1 left out`.
impl fmt::Display for Reading<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            self.host.map(|h| format!("host {h}")),
            self.tag.map(|t| format!("tag {t}")),
            self.digest.map(|d| format!("digest {d}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        match parts.as_slice() {
            [] => f.write_str("nothing left out"),
            [one] => write!(f, "{one} left out"),
            [rest @ .., last] => write!(f, "{} and {last} left out", rest.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference, and the repository, host, tag and digest it reads as.
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );

    #[test]
    fn references_read_as_repositories() {
        const DIGEST: &str =
            "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        let with_digest = format!("registry.example.com/team/app:v1@{DIGEST}");
        let bare_digest = format!("team/app@{DIGEST}");
        #[rustfmt::skip]
        let cases: Vec<Case<'_>> = vec![
            ("team/app", "team/app", None, None, None),
            ("app", "app", None, None, None),
            ("localhost:5000/team/app:v1", "team/app", Some("localhost:5000"), Some("v1"), None),
            ("localhost/app", "app", Some("localhost"), None, None),
            ("localhost", "localhost", None, None, None),
            ("registry.example.com/team/app", "team/app", Some("registry.example.com"), None, None),
            ("team/app:v1.2", "team/app", None, Some("v1.2"), None),
            ("127.0.0.1:5000/app", "app", Some("127.0.0.1:5000"), None, None),
            (&with_digest, "team/app", Some("registry.example.com"), Some("v1"), Some(DIGEST)),
            (&bare_digest, "team/app", None, None, Some(DIGEST)),
            // Left for the name check to refuse: an upper-case first component is a name here.
            ("Bad/Name", "Bad/Name", None, None, None),
            ("team/app:", "team/app:", None, None, None),
            ("project.v2/app", "app", Some("project.v2"), None, None),
        ];
        for (input, repository, host, tag, digest) in cases {
            let reading = Reading::of(input);
            assert_eq!(
                reading,
                Reading {
                    repository,
                    host,
                    tag,
                    digest
                },
                "{input}"
            );
        }
    }

    #[test]
    fn says_what_was_left_out() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("team/app", "nothing left out"),
            ("team/app:v1", "tag v1 left out"),
            ("localhost:5000/team/app:v1", "host localhost:5000 and tag v1 left out"),
            ("h.io/a:v@sha256:ab", "host h.io, tag v and digest sha256:ab left out"),
        ];
        for (input, text) in cases {
            assert_eq!(Reading::of(input).to_string(), *text, "{input}");
        }
    }
}
