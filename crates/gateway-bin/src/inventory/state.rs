//! One namespace's inventory as plain data: its repositories' tags, the digests pushed to them
//! without a tag, and what each manifest stores. The counts limits-core's quota arithmetic takes
//! ([`NamespaceUsage`], [`PushDelta`]) are worked out here; no I/O.
//!
//! The counts are kept up to date by each change ([`counts`](super::counts)), so that
//! [`NamespaceState::usage`] reads them and [`NamespaceState::delta`] looks only at the pushed
//! manifest, its children and the tags asked for: their cost does not grow with the namespace.
//! A blob's size is taken as a function of its digest (content addressing).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use limits_core::{NamespaceUsage, PushDelta};
use oci_manifest::Digest;

use super::change::{Change, Correction};
use super::counts::{self, Edit, Manifests, Totals};
use super::facts::{MAX_INDEX_DEPTH, ManifestFacts};

pub use super::counts::RepositoryState;

/// One namespace's inventory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespaceState {
    repositories: BTreeMap<String, RepositoryState>,
    manifests: Manifests,
    /// Each digest a known index names as a child -> those indexes.
    parents: HashMap<Digest, Vec<Digest>>,
    totals: Totals,
}

/// Per-repository counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct RepositoryCounts {
    /// Images, as `image_count_limit` counts them.
    pub images: u64,
    /// Tags.
    pub tags: u64,
}

impl NamespaceState {
    /// The repositories, by name.
    pub fn repositories(&self) -> &BTreeMap<String, RepositoryState> {
        &self.repositories
    }

    /// The facts of a manifest, when known.
    pub fn facts(&self, digest: &Digest) -> Option<&ManifestFacts> {
        self.manifests.get(digest)
    }

    /// Every manifest's facts known, by digest.
    pub fn manifests(&self) -> &HashMap<Digest, ManifestFacts> {
        &self.manifests
    }

    /// Adds to `known` the facts of `digest` and of its children (to [`MAX_INDEX_DEPTH`]) that
    /// `known` lacks and the namespace knows.
    pub fn known_tree(&self, digest: &Digest, known: &mut HashMap<Digest, ManifestFacts>) {
        let mut pending = vec![(digest.clone(), 0usize)];
        while let Some((digest, depth)) = pending.pop() {
            let facts = match known.get(&digest) {
                Some(facts) => facts,
                None => match self.manifests.get(&digest) {
                    Some(facts) => known.entry(digest).or_insert_with(|| facts.clone()),
                    None => continue,
                },
            };
            if depth < MAX_INDEX_DEPTH {
                pending.extend(facts.children.iter().map(|c| (c.clone(), depth + 1)));
            }
        }
    }

    /// Remembers what a manifest stores. The counts of the manifests it changes are redone:
    /// the held ones whose blobs include its own (itself, the indexes above it), and, when a
    /// repository holds it, its image count there (each repository is looked at; this happens
    /// only when a manifest is held before its facts are known).
    pub fn learn(&mut self, digest: Digest, facts: ManifestFacts) {
        if self.manifests.get(&digest) == Some(&facts) {
            return;
        }
        let roots: Vec<Digest> = self
            .ancestors(&digest)
            .into_iter()
            .filter(|root| self.totals.held(root))
            .collect();
        let holding: Vec<String> = if self.totals.held(&digest) {
            self.repositories
                .iter()
                .filter(|(_, repo)| repo.holds(&digest))
                .map(|(name, _)| name.clone())
                .collect()
        } else {
            Vec::new()
        };
        let old_children = counts::children(&self.manifests, &digest);
        let new_children = counts::distinct(&facts.children);
        let affected: BTreeSet<Digest> = old_children
            .iter()
            .chain(&new_children)
            .chain([&digest])
            .cloned()
            .collect();
        let before: Vec<u64> = holding
            .iter()
            .map(|name| {
                self.repositories.get(name).map_or(0, |repo| {
                    counts::images_among(repo, &self.manifests, &affected)
                })
            })
            .collect();
        for root in &roots {
            self.totals.store(&self.manifests, root, false);
        }
        for child in &old_children {
            if let Some(parents) = self.parents.get_mut(child) {
                parents.retain(|p| *p != digest);
                if parents.is_empty() {
                    self.parents.remove(child);
                }
            }
        }
        for child in &new_children {
            self.parents
                .entry(child.clone())
                .or_default()
                .push(digest.clone());
        }
        self.manifests.insert(digest, facts);
        for root in &roots {
            self.totals.store(&self.manifests, root, true);
        }
        for (name, before) in holding.iter().zip(before) {
            if let Some(repo) = self.repositories.get_mut(name) {
                repo.name_children(&old_children, false);
                repo.name_children(&new_children, true);
                let after = counts::images_among(repo, &self.manifests, &affected);
                repo.recount(before, after);
                self.totals.images = self.totals.images + after - before;
            }
        }
    }

    /// `digest` and the indexes above it whose blobs include its own (to [`MAX_INDEX_DEPTH`]).
    fn ancestors(&self, digest: &Digest) -> Vec<Digest> {
        let mut seen = BTreeSet::from([digest.clone()]);
        let mut level = vec![digest.clone()];
        for _ in 0..MAX_INDEX_DEPTH {
            let mut next = Vec::new();
            for parent in level.iter().filter_map(|d| self.parents.get(d)).flatten() {
                if seen.insert(parent.clone()) {
                    next.push(parent.clone());
                }
            }
            level = next;
        }
        seen.into_iter().collect()
    }

    /// Runs `f` on `repository` (created first when `create`, else `None` when absent), then
    /// updates the namespace's tag and repository counts and drops the repository if empty.
    fn edit<R>(
        &mut self,
        repository: &str,
        create: bool,
        f: impl FnOnce(&mut Edit<'_>) -> R,
    ) -> Option<R> {
        let NamespaceState {
            repositories,
            manifests,
            totals,
            ..
        } = self;
        if create && !repositories.contains_key(repository) {
            repositories.insert(repository.to_owned(), RepositoryState::default());
        }
        let repo = repositories.get_mut(repository)?;
        let before = repo.tags().len() as u64;
        let out = f(&mut Edit {
            repo: &mut *repo,
            manifests,
            totals: &mut *totals,
        });
        let after = repo.tags().len() as u64;
        totals.tags = totals.tags + after - before;
        totals.tagged_repositories =
            totals.tagged_repositories + u64::from(after > 0) - u64::from(before > 0);
        if repo.is_empty() {
            repositories.remove(repository);
        }
        Some(out)
    }

    /// Sets a repository's tags as the registry listed them (a repository without tags is left
    /// out unless digests were pushed to it).
    pub fn set_tags(&mut self, repository: &str, tags: BTreeMap<String, Digest>) {
        self.edit(repository, !tags.is_empty(), |edit| {
            let gone: Vec<String> = edit
                .repo
                .tags()
                .iter()
                .filter(|(tag, digest)| tags.get(*tag) != Some(*digest))
                .map(|(tag, _)| tag.clone())
                .collect();
            for tag in gone {
                edit.remove_tag(&tag);
            }
            for (tag, digest) in &tags {
                edit.set_tag(tag, digest);
            }
        });
    }

    /// Applies a change; the number of tags and untagged digests it added or removed.
    pub fn apply(&mut self, change: &Change) -> usize {
        let changed = match change {
            Change::Pushed {
                repository,
                digest,
                tags,
            } => self.edit(repository, true, |edit| {
                if tags.is_empty() {
                    usize::from(edit.set_untagged(digest, true))
                } else {
                    tags.iter().filter(|tag| edit.set_tag(tag, digest)).count()
                }
            }),
            Change::DigestDeleted { repository, digest } => self.edit(repository, false, |edit| {
                let tags = edit.repo.tags_of(digest);
                let removed = tags.iter().filter(|tag| edit.remove_tag(tag)).count();
                removed + usize::from(edit.set_untagged(digest, false))
            }),
            Change::TagDeleted { repository, tag } => {
                self.edit(repository, false, |edit| usize::from(edit.remove_tag(tag)))
            }
            Change::RepositoryDeleted { repository } => self.edit(repository, false, |edit| {
                let tags: Vec<String> = edit.repo.tags().keys().cloned().collect();
                let untagged: Vec<Digest> = edit.repo.untagged().iter().cloned().collect();
                let removed = tags.iter().filter(|tag| edit.remove_tag(tag)).count();
                removed
                    + untagged
                        .iter()
                        .filter(|digest| edit.set_untagged(digest, false))
                        .count()
            }),
        };
        changed.unwrap_or(0)
    }

    /// A repository's image and tag counts.
    pub fn repository_counts(&self, repository: &str) -> RepositoryCounts {
        self.repositories
            .get(repository)
            .map_or_else(RepositoryCounts::default, |repo| RepositoryCounts {
                images: repo.images(),
                tags: repo.tags().len() as u64,
            })
    }

    /// What the namespace holds, as the quotas count it.
    pub fn usage(&self) -> NamespaceUsage {
        NamespaceUsage {
            repositories: self.totals.tagged_repositories,
            images: self.totals.images,
            tags: self.totals.tags,
            storage_bytes: self.totals.storage_bytes(),
        }
    }

    /// What pushing `digest` to `repository` under `tags` (none: by digest) would add. The
    /// facts of `digest` and of its children must be known ([`learn`](Self::learn)) for its
    /// blobs to count. Tags moved away from other digests are not taken off.
    pub fn delta(&self, repository: &str, digest: &Digest, tags: &[String]) -> PushDelta {
        let empty = RepositoryState::default();
        let repo = self.repositories.get(repository).unwrap_or(&empty);
        let new_tags: BTreeSet<&String> = tags
            .iter()
            .filter(|tag| !repo.tags().contains_key(*tag))
            .collect();
        let new_image = if repo.holds(digest) {
            // Tagging a held digest makes it an image when it was only an untagged attached one.
            !tags.is_empty()
                && repo.parents(digest) == 0
                && !counts::is_image(repo, &self.manifests, digest)
        } else {
            // It is an image unless a held index names it (or it names itself), and it is one
            // more only if it names no held image as a child (an index over its own platforms).
            let children = counts::children(&self.manifests, digest);
            let attached = self.manifests.get(digest).is_some_and(|f| f.attached);
            repo.parents(digest) == 0
                && !children.contains(digest)
                && (!tags.is_empty() || !attached)
                && counts::images_among(repo, &self.manifests, &children) == 0
        };
        let mut pushed = BTreeMap::new();
        counts::gather(&self.manifests, digest, 0, &mut pushed);
        let new_blob_bytes = pushed
            .iter()
            .filter(|(blob, _)| !self.totals.stores(blob))
            .fold(0u64, |sum, (_, size)| sum.saturating_add(*size));
        PushDelta {
            new_repository: repo.tags().is_empty() && !tags.is_empty(),
            new_image,
            new_tags: new_tags.len() as u64,
            new_blob_bytes,
        }
    }

    /// The images of `repository` among the children of `digest` when the repository does not
    /// hold `digest` yet: platform manifests pushed by digest before their index, which the
    /// index makes one image with it.
    pub fn platform_images(&self, repository: &str, digest: &Digest) -> u64 {
        match self.repositories.get(repository) {
            Some(repo) if !repo.holds(digest) => {
                let children = counts::children(&self.manifests, digest);
                counts::images_among(repo, &self.manifests, &children)
            }
            _ => 0,
        }
    }

    /// Drops the facts of manifests no repository holds any more (directly or as a child).
    pub fn prune(&mut self) {
        let mut keep = BTreeSet::new();
        let mut stack: Vec<Digest> = self
            .repositories
            .values()
            .flat_map(|r| r.tags().values().chain(r.untagged()))
            .cloned()
            .collect();
        while let Some(digest) = stack.pop() {
            if keep.insert(digest.clone()) {
                if let Some(facts) = self.manifests.get(&digest) {
                    stack.extend(facts.children.iter().cloned());
                }
            }
        }
        self.manifests.retain(|digest, _| keep.contains(digest));
        self.parents.clear();
        for (digest, facts) in &self.manifests {
            for child in counts::distinct(&facts.children) {
                self.parents.entry(child).or_default().push(digest.clone());
            }
        }
    }

    /// The corrections that turn `self` into `fresh`, tag by tag and untagged digest by digest.
    pub fn corrections(&self, fresh: &NamespaceState) -> Vec<Correction> {
        let empty = RepositoryState::default();
        let names: BTreeSet<&String> = self
            .repositories
            .keys()
            .chain(fresh.repositories.keys())
            .collect();
        let mut out = Vec::new();
        for name in names {
            let old = self.repositories.get(name).unwrap_or(&empty);
            let new = fresh.repositories.get(name).unwrap_or(&empty);
            let mut push = |kind, reference: &str| {
                out.push(Correction {
                    repository: name.clone(),
                    kind,
                    reference: reference.to_owned(),
                });
            };
            for (tag, digest) in old.tags() {
                match new.tags().get(tag) {
                    None => push("tag_removed", tag),
                    Some(d) if d != digest => push("tag_moved", tag),
                    Some(_) => {}
                }
            }
            for tag in new.tags().keys().filter(|t| !old.tags().contains_key(*t)) {
                push("tag_added", tag);
            }
            for digest in old.untagged().difference(new.untagged()) {
                push("untagged_removed", digest.as_str());
            }
        }
        out
    }

    /// Numbers of repositories, tags and distinct digests held, for the size gauges.
    pub fn size(&self) -> (u64, u64, u64) {
        (
            self.repositories.len() as u64,
            self.totals.tags,
            self.totals.digests(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(name: &str) -> Digest {
        Digest::sha256(name.as_bytes())
    }

    fn image(blobs: &[(&str, u64)]) -> ManifestFacts {
        ManifestFacts {
            blobs: blobs.iter().map(|(b, size)| (digest(b), *size)).collect(),
            ..ManifestFacts::default()
        }
    }

    fn index(children: &[&str]) -> ManifestFacts {
        ManifestFacts {
            children: children.iter().map(|c| digest(c)).collect(),
            ..ManifestFacts::default()
        }
    }

    fn push(state: &mut NamespaceState, repository: &str, manifest: &str, tags: &[&str]) {
        state.apply(&Change::Pushed {
            repository: repository.to_owned(),
            digest: digest(manifest),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        });
    }

    fn usage(repositories: u64, images: u64, tags: u64, storage_bytes: u64) -> NamespaceUsage {
        NamespaceUsage {
            repositories,
            images,
            tags,
            storage_bytes,
        }
    }

    /// A namespace with two platforms of one image behind an index, a plain image, and an
    /// attached signature; layer `shared` is in both platforms and in the plain image.
    fn namespace() -> NamespaceState {
        let mut state = NamespaceState::default();
        state.learn(
            digest("amd64"),
            image(&[("cfg-amd64", 1), ("shared", 100), ("amd64-layer", 10)]),
        );
        state.learn(
            digest("arm64"),
            image(&[("cfg-arm64", 2), ("shared", 100), ("arm64-layer", 20)]),
        );
        state.learn(digest("multi"), index(&["amd64", "arm64"]));
        state.learn(digest("plain"), image(&[("cfg-plain", 4), ("shared", 100)]));
        let mut signature = image(&[("cfg-sig", 8), ("sig-layer", 16)]);
        signature.attached = true;
        state.learn(digest("sig"), signature);
        state
    }

    #[test]
    fn usage_cases() {
        type Setup = fn(&mut NamespaceState);
        #[rustfmt::skip]
        let cases: &[(&str, Setup, NamespaceUsage)] = &[
            ("empty", |_| {}, usage(0, 0, 0, 0)),
            ("an index counts its children's blobs, and is one image with them", |s| {
                push(s, "team/app", "amd64", &[]);
                push(s, "team/app", "arm64", &[]);
                push(s, "team/app", "multi", &["v1"]);
            }, usage(1, 1, 1, 1 + 2 + 100 + 10 + 20)),
            ("an index alone still counts the children it names (read from the registry)", |s| {
                push(s, "team/app", "multi", &["v1"]);
            }, usage(1, 1, 1, 133)),
            ("a layer shared by two repositories is stored once", |s| {
                push(s, "team/app", "amd64", &["v1"]);
                push(s, "team/tools/app", "plain", &["v1"]);
            }, usage(2, 2, 2, 1 + 100 + 10 + 4)),
            ("a new tag on a held digest adds a tag, no image", |s| {
                push(s, "team/app", "plain", &["v1"]);
                push(s, "team/app", "plain", &["v2", "latest"]);
            }, usage(1, 1, 3, 104)),
            ("a digest pushed without a tag is an image and stores its blobs, the repository holds no tag", |s| {
                push(s, "team/app", "plain", &[]);
            }, usage(0, 1, 0, 104)),
            ("an attached artifact without a tag stores blobs and is no image", |s| {
                push(s, "team/app", "plain", &["v1"]);
                push(s, "team/app", "sig", &[]);
            }, usage(1, 1, 1, 104 + 24)),
            ("the same digest in two repositories is an image of each", |s| {
                push(s, "team/a", "plain", &["v1"]);
                push(s, "team/b", "plain", &["v1"]);
            }, usage(2, 2, 2, 104)),
            ("a delete by digest removes its tags", |s| {
                push(s, "team/app", "plain", &["v1", "v2"]);
                push(s, "team/app", "amd64", &["v3"]);
                s.apply(&Change::DigestDeleted { repository: "team/app".into(), digest: digest("plain") });
            }, usage(1, 1, 1, 111)),
            ("a tag delete leaves its digest to the other tags", |s| {
                push(s, "team/app", "plain", &["v1", "v2"]);
                s.apply(&Change::TagDeleted { repository: "team/app".into(), tag: "v1".into() });
            }, usage(1, 1, 1, 104)),
            ("a repository delete", |s| {
                push(s, "team/app", "plain", &["v1"]);
                push(s, "team/other", "amd64", &["v1"]);
                s.apply(&Change::RepositoryDeleted { repository: "team/app".into() });
            }, usage(1, 1, 1, 111)),
            ("a moved tag leaves the old digest out", |s| {
                push(s, "team/app", "plain", &["v1"]);
                push(s, "team/app", "amd64", &["v1"]);
            }, usage(1, 1, 1, 111)),
        ];
        for (name, setup, want) in cases {
            let mut state = namespace();
            setup(&mut state);
            assert_eq!(state.usage(), *want, "{name}");
        }
    }

    #[test]
    fn deltas() {
        let tags = |t: &[&str]| t.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
        let mut state = namespace();
        push(&mut state, "team/app", "plain", &["v1"]);
        push(&mut state, "team/app", "sig", &[]);
        #[rustfmt::skip]
        let cases: &[(&str, &str, &[&str], PushDelta)] = &[
            ("team/app", "plain", &["v1"], PushDelta { new_repository: false, new_image: false, new_tags: 0, new_blob_bytes: 0 }),
            ("team/app", "plain", &["v2"], PushDelta { new_repository: false, new_image: false, new_tags: 1, new_blob_bytes: 0 }),
            ("team/app", "amd64", &["v1"], PushDelta { new_repository: false, new_image: true, new_tags: 0, new_blob_bytes: 11 }),
            ("team/app", "amd64", &[], PushDelta { new_repository: false, new_image: true, new_tags: 0, new_blob_bytes: 11 }),
            ("team/new", "plain", &["v1"], PushDelta { new_repository: true, new_image: true, new_tags: 1, new_blob_bytes: 0 }),
            ("team/new", "plain", &[], PushDelta { new_repository: false, new_image: true, new_tags: 0, new_blob_bytes: 0 }),
            ("team/new", "multi", &["v1", "latest"], PushDelta { new_repository: true, new_image: true, new_tags: 2, new_blob_bytes: 2 + 10 + 20 + 1 }),
            // An untagged attached artifact given a tag becomes an image.
            ("team/app", "sig", &["sha256-x.sig"], PushDelta { new_repository: false, new_image: true, new_tags: 1, new_blob_bytes: 0 }),
            ("team/other", "sig", &[], PushDelta { new_repository: false, new_image: false, new_tags: 0, new_blob_bytes: 0 }),
        ];
        for (repository, manifest, pushed, want) in cases {
            assert_eq!(
                state.delta(repository, &digest(manifest), &tags(pushed)),
                *want,
                "{repository} {manifest} {pushed:?}"
            );
        }
        // The index over children pushed by digest: one image instead of two.
        push(&mut state, "team/multi", "amd64", &[]);
        push(&mut state, "team/multi", "arm64", &[]);
        assert_eq!(state.repository_counts("team/multi").images, 2);
        let delta = state.delta("team/multi", &digest("multi"), &tags(&["v1"]));
        assert!(!delta.new_image && delta.new_repository, "{delta:?}");
        push(&mut state, "team/multi", "multi", &["v1"]);
        assert_eq!(
            state.repository_counts("team/multi"),
            RepositoryCounts { images: 1, tags: 1 }
        );
    }

    #[test]
    fn corrections_and_pruning() {
        let mut old = namespace();
        push(&mut old, "team/app", "plain", &["v1", "v2"]);
        push(&mut old, "team/app", "amd64", &["moved", "gone"]);
        push(&mut old, "team/app", "arm64", &[]);
        let mut fresh = NamespaceState::default();
        push(
            &mut fresh,
            "team/app",
            "plain",
            &["v1", "v2", "moved", "new"],
        );
        let got: Vec<(String, &str, String)> = old
            .corrections(&fresh)
            .into_iter()
            .map(|c| (c.repository, c.kind, c.reference))
            .collect();
        let want = [
            ("team/app", "tag_removed", "gone".to_owned()),
            ("team/app", "tag_moved", "moved".to_owned()),
            ("team/app", "tag_added", "new".to_owned()),
            ("team/app", "untagged_removed", digest("arm64").to_string()),
        ];
        let want: Vec<(String, &str, String)> = want
            .into_iter()
            .map(|(r, k, t)| (r.to_owned(), k, t))
            .collect();
        assert_eq!(got, want);
        assert!(fresh.corrections(&fresh.clone()).is_empty());
        old.prune();
        assert!(old.facts(&digest("sig")).is_none());
        assert!(old.facts(&digest("multi")).is_none());
        assert!(old.facts(&digest("arm64")).is_some());
        assert_eq!(old.size(), (1, 4, 3));
    }
}
