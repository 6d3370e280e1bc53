//! The namespace counts recomputed from scratch, walking every repository and manifest: the
//! test oracle the incremental counts of [`NamespaceState`] are checked against, and the cost
//! they are measured against ([`scale`](super::scale)).

use std::collections::{BTreeMap, BTreeSet};

use limits_core::{NamespaceUsage, PushDelta};
use oci_manifest::Digest;

use super::facts::MAX_INDEX_DEPTH;
use super::state::{NamespaceState, RepositoryCounts, RepositoryState};

/// Every digest the repository holds: tagged or pushed by digest.
fn held(repo: &RepositoryState) -> BTreeSet<&Digest> {
    repo.tags().values().chain(repo.untagged()).collect()
}

/// The blobs `digest` stores with their sizes, its children's for an index (each once).
fn gather(state: &NamespaceState, digest: &Digest, depth: usize, out: &mut BTreeMap<Digest, u64>) {
    let Some(facts) = state.facts(digest) else {
        return;
    };
    out.extend(facts.blobs.iter().map(|(d, size)| (d.clone(), *size)));
    if depth < MAX_INDEX_DEPTH {
        for child in &facts.children {
            gather(state, child, depth + 1, out);
        }
    }
}

/// The images among `held`: every held digest but the children of a held index, and but the
/// attached artifacts no tag points to.
fn images_among(
    state: &NamespaceState,
    held: &BTreeSet<&Digest>,
    tagged: &BTreeSet<&Digest>,
) -> u64 {
    let children: BTreeSet<&Digest> = held
        .iter()
        .filter_map(|d| state.facts(d))
        .flat_map(|facts| facts.children.iter())
        .collect();
    held.iter()
        .filter(|d| !children.contains(*d))
        .filter(|d| tagged.contains(*d) || !state.facts(d).is_some_and(|f| f.attached))
        .count() as u64
}

/// A repository's image and tag counts.
pub fn repository_counts(state: &NamespaceState, repository: &str) -> RepositoryCounts {
    let Some(repo) = state.repositories().get(repository) else {
        return RepositoryCounts::default();
    };
    let tagged: BTreeSet<&Digest> = repo.tags().values().collect();
    RepositoryCounts {
        images: images_among(state, &held(repo), &tagged),
        tags: repo.tags().len() as u64,
    }
}

/// The distinct blobs of every manifest the namespace holds, with their sizes.
fn stored_blobs(state: &NamespaceState) -> BTreeMap<Digest, u64> {
    let held: BTreeSet<&Digest> = state.repositories().values().flat_map(held).collect();
    let mut blobs = BTreeMap::new();
    for digest in held {
        gather(state, digest, 0, &mut blobs);
    }
    blobs
}

/// What the namespace holds, as the quotas count it.
pub fn usage(state: &NamespaceState) -> NamespaceUsage {
    let mut usage = NamespaceUsage {
        storage_bytes: stored_blobs(state)
            .values()
            .fold(0u64, |sum, size| sum.saturating_add(*size)),
        ..NamespaceUsage::default()
    };
    for (name, repo) in state.repositories() {
        let counts = repository_counts(state, name);
        usage.repositories += u64::from(!repo.tags().is_empty());
        usage.images += counts.images;
        usage.tags += counts.tags;
    }
    usage
}

/// What pushing `digest` to `repository` under `tags` (none: by digest) would add.
pub fn delta(
    state: &NamespaceState,
    repository: &str,
    digest: &Digest,
    tags: &[String],
) -> PushDelta {
    let empty = RepositoryState::default();
    let repo = state.repositories().get(repository).unwrap_or(&empty);
    let new_tags: BTreeSet<&String> = tags
        .iter()
        .filter(|tag| !repo.tags().contains_key(*tag))
        .collect();
    let before = repository_counts(state, repository).images;
    let mut tagged: BTreeSet<&Digest> = repo.tags().values().collect();
    let mut held = held(repo);
    held.insert(digest);
    if !tags.is_empty() {
        tagged.insert(digest);
    }
    let after = images_among(state, &held, &tagged);
    let stored = stored_blobs(state);
    let mut pushed = BTreeMap::new();
    gather(state, digest, 0, &mut pushed);
    let new_blob_bytes = pushed
        .iter()
        .filter(|(blob, _)| !stored.contains_key(*blob))
        .fold(0u64, |sum, (_, size)| sum.saturating_add(*size));
    PushDelta {
        new_repository: repo.tags().is_empty() && !tags.is_empty(),
        new_image: after > before,
        new_tags: new_tags.len() as u64,
        new_blob_bytes,
    }
}

/// Numbers of repositories, tags and distinct digests held.
pub fn size(state: &NamespaceState) -> (u64, u64, u64) {
    let tags = state
        .repositories()
        .values()
        .map(|r| r.tags().len())
        .sum::<usize>();
    let digests: BTreeSet<&Digest> = state.repositories().values().flat_map(held).collect();
    (
        state.repositories().len() as u64,
        tags as u64,
        digests.len() as u64,
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::inventory::{Change, ManifestFacts};

    const MANIFESTS: usize = 10;
    const BLOBS: usize = 8;
    const REPOSITORIES: u8 = 4;
    const TAGS: u8 = 4;

    fn manifest(i: usize) -> Digest {
        Digest::sha256(format!("manifest-{i}").as_bytes())
    }

    fn repository(r: u8) -> String {
        format!("team/r{r}")
    }

    fn tags(t: &[u8]) -> Vec<String> {
        t.iter().map(|t| format!("t{t}")).collect()
    }

    /// Manifest `i` is an image of some of the blobs (a blob's size depends on its digest
    /// only), or an index of manifests numbered below it (as content addressing orders them),
    /// attached to another manifest or not.
    fn facts() -> impl Strategy<Value = Vec<ManifestFacts>> {
        let one = (
            any::<bool>(),
            proptest::collection::btree_set(0..BLOBS, 0..4),
            proptest::collection::vec(0..MANIFESTS, 0..4),
            proptest::bool::weighted(0.2),
        );
        proptest::collection::vec(one, MANIFESTS).prop_map(|all| {
            all.into_iter()
                .enumerate()
                .map(|(i, (is_index, blobs, children, attached))| {
                    let children: Vec<Digest> = children
                        .into_iter()
                        .filter(|c| *c < i)
                        .map(manifest)
                        .collect();
                    if is_index && !children.is_empty() {
                        ManifestFacts {
                            blobs: BTreeMap::new(),
                            children,
                            attached,
                        }
                    } else {
                        ManifestFacts {
                            blobs: blobs
                                .into_iter()
                                .map(|b| (Digest::sha256(format!("blob-{b}").as_bytes()), 1 << b))
                                .collect(),
                            children: Vec::new(),
                            attached,
                        }
                    }
                })
                .collect()
        })
    }

    #[derive(Debug, Clone)]
    enum Op {
        Learn(usize),
        /// Facts that differ from the manifest's own (indexes may then form cycles).
        Relearn(usize, usize),
        Push(u8, usize, Vec<u8>),
        DigestDeleted(u8, usize),
        TagDeleted(u8, u8),
        RepositoryDeleted(u8),
        SetTags(u8, Vec<(u8, usize)>),
        Prune,
        Delta(u8, usize, Vec<u8>),
    }

    fn op() -> impl Strategy<Value = Op> {
        let r = 0..REPOSITORIES;
        let m = 0..MANIFESTS;
        let t = proptest::collection::vec(0..TAGS, 0..3);
        prop_oneof![
            4 => m.clone().prop_map(Op::Learn),
            1 => (m.clone(), m.clone()).prop_map(|(m, other)| Op::Relearn(m, other)),
            6 => (r.clone(), m.clone(), t.clone()).prop_map(|(r, m, t)| Op::Push(r, m, t)),
            1 => (r.clone(), m.clone()).prop_map(|(r, m)| Op::DigestDeleted(r, m)),
            1 => (r.clone(), 0..TAGS).prop_map(|(r, t)| Op::TagDeleted(r, t)),
            1 => r.clone().prop_map(Op::RepositoryDeleted),
            1 => (r.clone(), proptest::collection::vec((0..TAGS, m.clone()), 0..3))
                .prop_map(|(r, tags)| Op::SetTags(r, tags)),
            1 => Just(Op::Prune),
            4 => (r, m, t).prop_map(|(r, m, t)| Op::Delta(r, m, t)),
        ]
    }

    /// Checks the delta of a push against the oracle's, and, when the push moves no tag away
    /// from another digest, that applying it adds the delta to the usage.
    fn check_delta(state: &NamespaceState, repository: &str, digest: &Digest, tags: &[String]) {
        let delta = state.delta(repository, digest, tags);
        assert_eq!(delta, super::delta(state, repository, digest, tags));
        let moves = state.repositories().get(repository).is_some_and(|repo| {
            tags.iter()
                .any(|t| repo.tags().get(t).is_some_and(|d| d != digest))
        });
        if moves {
            return;
        }
        let before = state.usage();
        let mut after = state.clone();
        after.apply(&Change::Pushed {
            repository: repository.to_owned(),
            digest: digest.clone(),
            tags: tags.to_vec(),
        });
        let after = after.usage();
        assert_eq!(
            after.repositories,
            before.repositories + u64::from(delta.new_repository)
        );
        assert_eq!(after.tags, before.tags + delta.new_tags);
        assert_eq!(
            after.storage_bytes,
            before.storage_bytes + delta.new_blob_bytes
        );
        // One image more, or none; fewer when an index takes in images the repository held.
        if delta.new_image {
            assert_eq!(after.images, before.images + 1);
        } else {
            assert!(after.images <= before.images, "{after:?} {before:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn incremental_counts_match_a_recount(
            facts in facts(),
            ops in proptest::collection::vec(op(), 1..60),
        ) {
            let mut state = NamespaceState::default();
            for op in ops {
                match op {
                    Op::Learn(m) => state.learn(manifest(m), facts[m].clone()),
                    Op::Relearn(m, other) => state.learn(manifest(m), facts[other].clone()),
                    Op::Push(r, m, t) => {
                        state.apply(&Change::Pushed { repository: repository(r), digest: manifest(m), tags: tags(&t) });
                    }
                    Op::DigestDeleted(r, m) => {
                        state.apply(&Change::DigestDeleted { repository: repository(r), digest: manifest(m) });
                    }
                    Op::TagDeleted(r, t) => {
                        state.apply(&Change::TagDeleted { repository: repository(r), tag: format!("t{t}") });
                    }
                    Op::RepositoryDeleted(r) => {
                        state.apply(&Change::RepositoryDeleted { repository: repository(r) });
                    }
                    Op::SetTags(r, listed) => {
                        let listed = listed.into_iter().map(|(t, m)| (format!("t{t}"), manifest(m))).collect();
                        state.set_tags(&repository(r), listed);
                    }
                    Op::Prune => state.prune(),
                    Op::Delta(r, m, t) => check_delta(&state, &repository(r), &manifest(m), &tags(&t)),
                }
                prop_assert_eq!(state.usage(), usage(&state));
                prop_assert_eq!(state.size(), size(&state));
                for r in 0..REPOSITORIES {
                    let name = repository(r);
                    prop_assert_eq!(state.repository_counts(&name), repository_counts(&state, &name));
                }
            }
        }
    }
}
