//! One namespace's inventory as plain data: its repositories' tags, the digests pushed to them
//! without a tag, and what each manifest stores. The counts limits-core's quota arithmetic takes
//! ([`NamespaceUsage`], [`PushDelta`]) are worked out here; no I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use limits_core::{NamespaceUsage, PushDelta};
use oci_manifest::{Digest, Manifest};
use registry_api::EventKind;

/// How deep indexes may nest when their blobs are gathered (an index of indexes is 2).
pub const MAX_INDEX_DEPTH: usize = 4;

/// What one manifest stores, read once from its content (content-addressed: never stale).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManifestFacts {
    /// An image's config and layers with their sizes, foreign layers left out; empty for an
    /// index, whose blobs are its children's.
    pub blobs: BTreeMap<Digest, u64>,
    /// An index's children.
    pub children: Vec<Digest>,
    /// Whether it is attached to another manifest (it has a `subject`).
    pub attached: bool,
}

impl ManifestFacts {
    /// The facts of a parsed manifest.
    pub fn of(manifest: &Manifest) -> Self {
        match manifest {
            Manifest::Image(image) => {
                let mut blobs = BTreeMap::new();
                blobs.insert(image.config().digest().clone(), image.config().size());
                for layer in image.layers().iter().filter(|l| !l.is_foreign()) {
                    blobs.insert(layer.digest().clone(), layer.size());
                }
                ManifestFacts {
                    blobs,
                    children: Vec::new(),
                    attached: image.subject().is_some(),
                }
            }
            Manifest::Index(index) => ManifestFacts {
                blobs: BTreeMap::new(),
                children: index
                    .manifests()
                    .iter()
                    .map(|d| d.digest().clone())
                    .collect(),
                attached: index.subject().is_some(),
            },
        }
    }
}

/// What one repository holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepositoryState {
    /// Tag -> the digest it points to.
    pub tags: BTreeMap<String, Digest>,
    /// Manifests pushed by digest (no tag), kept until the registry answers 404 for them.
    pub untagged: BTreeSet<Digest>,
}

impl RepositoryState {
    /// Every digest the repository holds: tagged or pushed by digest.
    fn held(&self) -> BTreeSet<&Digest> {
        self.tags.values().chain(self.untagged.iter()).collect()
    }

    fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.untagged.is_empty()
    }
}

/// One change to what a namespace holds: an admitted push, or a registry event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A manifest was stored in `repository`, under `tags` (none: by digest).
    Pushed {
        /// The repository, whole name.
        repository: String,
        /// The manifest's digest.
        digest: Digest,
        /// The tags it was pushed by.
        tags: Vec<String>,
    },
    /// Every tag of `repository` pointing at `digest` was removed, and the digest itself.
    DigestDeleted {
        /// The repository.
        repository: String,
        /// The digest (a manifest's; a blob's matches nothing).
        digest: Digest,
    },
    /// One tag was removed.
    TagDeleted {
        /// The repository.
        repository: String,
        /// The tag.
        tag: String,
    },
    /// The whole repository was removed.
    RepositoryDeleted {
        /// The repository.
        repository: String,
    },
}

impl Change {
    /// The change a registry event makes; `None` for an event that changes no manifest or tag
    /// (a blob stored: blobs count through the manifests that reference them).
    pub fn from_event(kind: &EventKind) -> Option<Change> {
        match kind {
            EventKind::ManifestPushed {
                repository,
                digest,
                tag,
                ..
            } => Some(Change::Pushed {
                repository: repository.to_string(),
                digest: digest.clone(),
                tags: tag.iter().cloned().collect(),
            }),
            EventKind::DigestDeleted { repository, digest } => Some(Change::DigestDeleted {
                repository: repository.to_string(),
                digest: digest.clone(),
            }),
            EventKind::TagDeleted { repository, tag } => Some(Change::TagDeleted {
                repository: repository.to_string(),
                tag: tag.clone(),
            }),
            EventKind::RepositoryDeleted { repository } => Some(Change::RepositoryDeleted {
                repository: repository.to_string(),
            }),
            _ => None,
        }
    }

    /// The repository it changes.
    pub fn repository(&self) -> &str {
        match self {
            Change::Pushed { repository, .. }
            | Change::DigestDeleted { repository, .. }
            | Change::TagDeleted { repository, .. }
            | Change::RepositoryDeleted { repository } => repository,
        }
    }

    /// The digest whose facts the change needs, if any.
    pub fn pushed_digest(&self) -> Option<&Digest> {
        match self {
            Change::Pushed { digest, .. } => Some(digest),
            _ => None,
        }
    }
}

/// One difference a reconciliation found between the inventory and the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// The repository.
    pub repository: String,
    /// What was wrong: `tag_added`, `tag_removed`, `tag_moved` or `untagged_removed`.
    pub kind: &'static str,
    /// The tag, or the digest for `untagged_removed`.
    pub reference: String,
}

/// One namespace's inventory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespaceState {
    repositories: BTreeMap<String, RepositoryState>,
    manifests: HashMap<Digest, ManifestFacts>,
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

    /// Remembers what a manifest stores.
    pub fn learn(&mut self, digest: Digest, facts: ManifestFacts) {
        self.manifests.insert(digest, facts);
    }

    /// Sets a repository's tags as the registry listed them (a repository without tags is left
    /// out unless digests were pushed to it).
    pub fn set_tags(&mut self, repository: &str, tags: BTreeMap<String, Digest>) {
        if tags.is_empty() {
            if let Some(repo) = self.repositories.get_mut(repository) {
                repo.tags.clear();
            }
        } else {
            self.repositories
                .entry(repository.to_owned())
                .or_default()
                .tags = tags;
        }
        self.repositories.retain(|_, repo| !repo.is_empty());
    }

    /// Applies a change; the number of tags and untagged digests it added or removed.
    pub fn apply(&mut self, change: &Change) -> usize {
        let changed = match change {
            Change::Pushed {
                repository,
                digest,
                tags,
            } => {
                let repo = self.repositories.entry(repository.clone()).or_default();
                if tags.is_empty() {
                    usize::from(repo.untagged.insert(digest.clone()))
                } else {
                    tags.iter()
                        .filter(|tag| {
                            repo.tags.insert((*tag).clone(), digest.clone()).as_ref()
                                != Some(digest)
                        })
                        .count()
                }
            }
            Change::DigestDeleted { repository, digest } => {
                let Some(repo) = self.repositories.get_mut(repository) else {
                    return 0;
                };
                let before = repo.tags.len() + repo.untagged.len();
                repo.tags.retain(|_, d| d != digest);
                repo.untagged.remove(digest);
                before - repo.tags.len() - repo.untagged.len()
            }
            Change::TagDeleted { repository, tag } => self
                .repositories
                .get_mut(repository)
                .map_or(0, |repo| usize::from(repo.tags.remove(tag).is_some())),
            Change::RepositoryDeleted { repository } => self
                .repositories
                .remove(repository)
                .map_or(0, |repo| repo.tags.len() + repo.untagged.len()),
        };
        self.repositories.retain(|_, repo| !repo.is_empty());
        changed
    }

    /// The blobs `digest` stores with their sizes, its children's for an index (each once).
    fn gather(&self, digest: &Digest, depth: usize, out: &mut BTreeMap<Digest, u64>) {
        let Some(facts) = self.manifests.get(digest) else {
            return;
        };
        out.extend(facts.blobs.iter().map(|(d, size)| (d.clone(), *size)));
        if depth < MAX_INDEX_DEPTH {
            for child in &facts.children {
                self.gather(child, depth + 1, out);
            }
        }
    }

    /// The images among `held`: every held digest but the children of a held index, and but
    /// the attached artifacts no tag points to.
    fn images_among(&self, held: &BTreeSet<&Digest>, tagged: &BTreeSet<&Digest>) -> u64 {
        let children: BTreeSet<&Digest> = held
            .iter()
            .filter_map(|d| self.manifests.get(*d))
            .flat_map(|facts| facts.children.iter())
            .collect();
        held.iter()
            .filter(|d| !children.contains(*d))
            .filter(|d| tagged.contains(*d) || !self.manifests.get(**d).is_some_and(|f| f.attached))
            .count() as u64
    }

    /// A repository's image and tag counts.
    pub fn repository_counts(&self, repository: &str) -> RepositoryCounts {
        let Some(repo) = self.repositories.get(repository) else {
            return RepositoryCounts::default();
        };
        let tagged: BTreeSet<&Digest> = repo.tags.values().collect();
        RepositoryCounts {
            images: self.images_among(&repo.held(), &tagged),
            tags: repo.tags.len() as u64,
        }
    }

    /// The distinct blobs of every manifest the namespace holds, with their sizes.
    fn stored_blobs(&self) -> BTreeMap<Digest, u64> {
        let held: BTreeSet<&Digest> = self.repositories.values().flat_map(|r| r.held()).collect();
        let mut blobs = BTreeMap::new();
        for digest in held {
            self.gather(digest, 0, &mut blobs);
        }
        blobs
    }

    /// What the namespace holds, as the quotas count it.
    pub fn usage(&self) -> NamespaceUsage {
        let mut usage = NamespaceUsage {
            storage_bytes: self
                .stored_blobs()
                .values()
                .fold(0u64, |sum, size| sum.saturating_add(*size)),
            ..NamespaceUsage::default()
        };
        for (name, repo) in &self.repositories {
            let counts = self.repository_counts(name);
            usage.repositories += u64::from(!repo.tags.is_empty());
            usage.images += counts.images;
            usage.tags += counts.tags;
        }
        usage
    }

    /// What pushing `digest` to `repository` under `tags` (none: by digest) would add. The
    /// facts of `digest` and of its children must be known ([`learn`](Self::learn)) for its
    /// blobs to count.
    pub fn delta(&self, repository: &str, digest: &Digest, tags: &[String]) -> PushDelta {
        let empty = RepositoryState::default();
        let repo = self.repositories.get(repository).unwrap_or(&empty);
        let new_tags: BTreeSet<&String> = tags
            .iter()
            .filter(|tag| !repo.tags.contains_key(*tag))
            .collect();
        let before = self.repository_counts(repository).images;
        let mut tagged: BTreeSet<&Digest> = repo.tags.values().collect();
        let mut held = repo.held();
        held.insert(digest);
        if !tags.is_empty() {
            tagged.insert(digest);
        }
        let after = self.images_among(&held, &tagged);
        let stored = self.stored_blobs();
        let mut pushed = BTreeMap::new();
        self.gather(digest, 0, &mut pushed);
        let new_blob_bytes = pushed
            .iter()
            .filter(|(blob, _)| !stored.contains_key(*blob))
            .fold(0u64, |sum, (_, size)| sum.saturating_add(*size));
        PushDelta {
            new_repository: repo.tags.is_empty() && !tags.is_empty(),
            new_image: after > before,
            new_tags: new_tags.len() as u64,
            new_blob_bytes,
        }
    }

    /// Drops the facts of manifests no repository holds any more (directly or as a child).
    pub fn prune(&mut self) {
        let mut keep = BTreeSet::new();
        let mut stack: Vec<Digest> = self
            .repositories
            .values()
            .flat_map(|r| r.held())
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
            for (tag, digest) in &old.tags {
                match new.tags.get(tag) {
                    None => push("tag_removed", tag),
                    Some(d) if d != digest => push("tag_moved", tag),
                    Some(_) => {}
                }
            }
            for tag in new.tags.keys().filter(|t| !old.tags.contains_key(*t)) {
                push("tag_added", tag);
            }
            for digest in old.untagged.difference(&new.untagged) {
                push("untagged_removed", digest.as_str());
            }
        }
        out
    }

    /// Numbers of repositories, tags and distinct digests held, for the size gauges.
    pub fn size(&self) -> (u64, u64, u64) {
        let tags = self
            .repositories
            .values()
            .map(|r| r.tags.len())
            .sum::<usize>();
        let digests: BTreeSet<&Digest> =
            self.repositories.values().flat_map(|r| r.held()).collect();
        (
            self.repositories.len() as u64,
            tags as u64,
            digests.len() as u64,
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
