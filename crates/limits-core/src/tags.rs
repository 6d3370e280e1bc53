//! Tag arithmetic: what a repository holds and what a push adds.

/// A repository's tags as a push sees them: the registry's listing plus tags created moments ago
/// that the listing does not show yet, against the tags the push asks for.
///
/// ```
/// use limits_core::TagTally;
///
/// let listed = ["v1".to_owned(), "v2".to_owned()];
/// let recent = ["v3".to_owned(), "v1".to_owned()];
/// let requested = ["v2".to_owned(), "v4".to_owned(), "v4".to_owned()];
/// let tally = TagTally::new(&listed, &recent, &requested);
/// assert_eq!(tally.existing, 3); // v1, v2 and v3
/// assert_eq!(tally.created, ["v4"]); // v2 exists; v4 once
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTally {
    /// Tags the repository holds: listed, plus recent ones the listing does not show.
    pub existing: u64,
    /// Requested tags that do not exist yet, each once, in request order.
    pub created: Vec<String>,
}

impl TagTally {
    /// Counts `listed` (the registry's tag list) and `recent` (tags created moments ago) as the
    /// repository's tags, and keeps the `requested` ones that are new.
    pub fn new(listed: &[String], recent: &[String], requested: &[String]) -> Self {
        let listed_set: std::collections::HashSet<&str> =
            listed.iter().map(String::as_str).collect();
        let mut known = listed_set.clone();
        let mut existing = listed_set.len() as u64;
        for tag in recent {
            if known.insert(tag) {
                existing += 1;
            }
        }
        let mut created: Vec<String> = Vec::new();
        for tag in requested {
            if !known.contains(tag.as_str()) && !created.contains(tag) {
                created.push(tag.clone());
            }
        }
        Self { existing, created }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn table() {
        type Case<'a> = (
            &'a [&'a str],
            &'a [&'a str],
            &'a [&'a str],
            u64,
            &'a [&'a str],
        );
        let cases: &[Case<'_>] = &[
            (&[], &[], &[], 0, &[]),
            (&[], &[], &["a"], 0, &["a"]),
            (&["a"], &[], &["a"], 1, &[]),
            (&["a"], &["a"], &["b"], 1, &["b"]),
            (&["a"], &["b"], &["b", "c"], 2, &["c"]),
            (&["a", "a"], &[], &["c", "c", "d"], 1, &["c", "d"]),
            (&[], &["x", "x"], &["x"], 1, &[]),
        ];
        for (listed, recent, requested, existing, created) in cases {
            let tally = TagTally::new(&strings(listed), &strings(recent), &strings(requested));
            assert_eq!(
                tally.existing, *existing,
                "{listed:?} {recent:?} {requested:?}"
            );
            assert_eq!(
                tally.created,
                strings(created),
                "{listed:?} {recent:?} {requested:?}"
            );
        }
    }
}
