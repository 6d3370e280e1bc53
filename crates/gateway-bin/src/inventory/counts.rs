//! The counts a namespace's inventory keeps up to date on each change, so that its usage and
//! what a push would add are read without walking the namespace: per repository, how many of
//! its tags point at each digest, how many of the manifests it holds name each digest as a
//! child, and its images; per namespace, how many repositories hold each digest, how many
//! distinct held manifests store each blob, and the totals.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use oci_manifest::Digest;

use super::facts::{MAX_INDEX_DEPTH, ManifestFacts};

/// The facts of every manifest known, by digest.
pub(super) type Manifests = HashMap<Digest, ManifestFacts>;

/// How one repository refers to a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Refs {
    /// Its tags pointing at the digest.
    tags: u32,
    /// The distinct digests it holds that name the digest as a child.
    parents: u32,
}

/// What one repository holds, with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepositoryState {
    /// Tag -> the digest it points to.
    tags: BTreeMap<String, Digest>,
    /// Manifests pushed by digest (no tag), kept until the registry answers 404 for them.
    untagged: BTreeSet<Digest>,
    /// Every digest tagged here or named as a child by a digest held here.
    refs: HashMap<Digest, Refs>,
    /// Its images, as `image_count_limit` counts them.
    images: u64,
}

impl RepositoryState {
    /// Tag -> the digest it points to.
    pub fn tags(&self) -> &BTreeMap<String, Digest> {
        &self.tags
    }

    /// Manifests pushed by digest (no tag), kept until the registry answers 404 for them.
    pub fn untagged(&self) -> &BTreeSet<Digest> {
        &self.untagged
    }

    /// Its images, as `image_count_limit` counts them.
    pub(super) fn images(&self) -> u64 {
        self.images
    }

    fn refs(&self, digest: &Digest) -> Refs {
        self.refs.get(digest).copied().unwrap_or_default()
    }

    /// Whether a tag points at `digest`.
    pub(super) fn is_tagged(&self, digest: &Digest) -> bool {
        self.refs(digest).tags > 0
    }

    /// Whether it holds `digest`: tagged, or pushed by digest.
    pub(super) fn holds(&self, digest: &Digest) -> bool {
        self.is_tagged(digest) || self.untagged.contains(digest)
    }

    /// How many of the digests it holds name `digest` as a child.
    pub(super) fn parents(&self, digest: &Digest) -> u32 {
        self.refs(digest).parents
    }

    /// Its tags pointing at `digest` (none looked for when no tag does).
    pub(super) fn tags_of(&self, digest: &Digest) -> Vec<String> {
        if !self.is_tagged(digest) {
            return Vec::new();
        }
        self.tags
            .iter()
            .filter(|(_, d)| *d == digest)
            .map(|(tag, _)| tag.clone())
            .collect()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.untagged.is_empty()
    }

    /// Counts `children` as named (`add`) or no longer named by one more digest it holds.
    pub(super) fn name_children(&mut self, children: &[Digest], add: bool) {
        for child in children {
            let refs = self.refs.entry(child.clone()).or_default();
            if add {
                refs.parents += 1;
            } else {
                refs.parents -= 1;
            }
            self.tidy(child);
        }
    }

    /// Moves its image count from `before` to `after`.
    pub(super) fn recount(&mut self, before: u64, after: u64) {
        self.images = self.images + after - before;
    }

    /// Forgets `digest`'s references once none is left.
    fn tidy(&mut self, digest: &Digest) {
        if self.refs.get(digest) == Some(&Refs::default()) {
            self.refs.remove(digest);
        }
    }
}

/// Whether `digest` is an image of `repo`: held, named as a child by no digest it holds, and
/// tagged or not attached to another manifest.
pub(super) fn is_image(repo: &RepositoryState, manifests: &Manifests, digest: &Digest) -> bool {
    let refs = repo.refs(digest);
    (refs.tags > 0 || repo.untagged.contains(digest))
        && refs.parents == 0
        && (refs.tags > 0 || !manifests.get(digest).is_some_and(|f| f.attached))
}

/// How many of `digests` are images of `repo`.
pub(super) fn images_among<'a>(
    repo: &RepositoryState,
    manifests: &Manifests,
    digests: impl IntoIterator<Item = &'a Digest>,
) -> u64 {
    digests
        .into_iter()
        .filter(|d| is_image(repo, manifests, d))
        .count() as u64
}

/// An index's distinct children; none for an image or a manifest whose facts are unknown.
pub(super) fn children(manifests: &Manifests, digest: &Digest) -> Vec<Digest> {
    manifests
        .get(digest)
        .map_or_else(Vec::new, |facts| distinct(&facts.children))
}

/// `digests` without repeats, in order.
pub(super) fn distinct(digests: &[Digest]) -> Vec<Digest> {
    let mut seen = BTreeSet::new();
    digests
        .iter()
        .filter(|d| seen.insert(*d))
        .cloned()
        .collect()
}

/// The blobs `digest` stores with their sizes, its children's for an index (each once).
pub(super) fn gather(
    manifests: &Manifests,
    digest: &Digest,
    depth: usize,
    out: &mut BTreeMap<Digest, u64>,
) {
    let Some(facts) = manifests.get(digest) else {
        return;
    };
    out.extend(facts.blobs.iter().map(|(d, size)| (d.clone(), *size)));
    if depth < MAX_INDEX_DEPTH {
        for child in &facts.children {
            gather(manifests, child, depth + 1, out);
        }
    }
}

/// A blob stored in the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Blob {
    size: u64,
    /// The distinct held manifests storing it.
    refs: u32,
}

/// The namespace's counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Totals {
    /// How many repositories hold each digest.
    holders: HashMap<Digest, u32>,
    /// Each blob a held manifest stores.
    blobs: HashMap<Digest, Blob>,
    /// The sizes of `blobs`, each once.
    storage: u128,
    /// Images of all repositories.
    pub images: u64,
    /// Tags of all repositories.
    pub tags: u64,
    /// Repositories holding at least one tag.
    pub tagged_repositories: u64,
}

impl Totals {
    /// The bytes of the distinct blobs stored.
    pub fn storage_bytes(&self) -> u64 {
        u64::try_from(self.storage).unwrap_or(u64::MAX)
    }

    /// Whether a held manifest stores `blob`.
    pub fn stores(&self, blob: &Digest) -> bool {
        self.blobs.contains_key(blob)
    }

    /// Whether a repository holds `digest`.
    pub fn held(&self, digest: &Digest) -> bool {
        self.holders.contains_key(digest)
    }

    /// The number of distinct digests held.
    pub fn digests(&self) -> u64 {
        self.holders.len() as u64
    }

    /// Counts one more (`add`) or one fewer repository holding `digest`.
    fn hold(&mut self, manifests: &Manifests, digest: &Digest, add: bool) {
        if add {
            let holders = self.holders.entry(digest.clone()).or_insert(0);
            *holders += 1;
            if *holders == 1 {
                self.store(manifests, digest, true);
            }
        } else if let Some(holders) = self.holders.get_mut(digest) {
            *holders -= 1;
            if *holders == 0 {
                self.holders.remove(digest);
                self.store(manifests, digest, false);
            }
        }
    }

    /// Counts (`add`) or uncounts the blobs the held manifest `root` stores.
    pub fn store(&mut self, manifests: &Manifests, root: &Digest, add: bool) {
        let mut blobs = BTreeMap::new();
        gather(manifests, root, 0, &mut blobs);
        for (blob, size) in blobs {
            if add {
                let entry = self.blobs.entry(blob).or_insert(Blob { size, refs: 0 });
                entry.refs += 1;
                if entry.refs == 1 {
                    self.storage += u128::from(entry.size);
                }
            } else if let Some(entry) = self.blobs.get_mut(&blob) {
                entry.refs -= 1;
                if entry.refs == 0 {
                    self.storage -= u128::from(entry.size);
                    self.blobs.remove(&blob);
                }
            }
        }
    }
}

/// A change to one repository, with the facts it reads and the namespace counts it updates.
pub(super) struct Edit<'a> {
    /// The repository.
    pub repo: &'a mut RepositoryState,
    /// The facts known.
    pub manifests: &'a Manifests,
    /// The namespace's counts.
    pub totals: &'a mut Totals,
}

impl Edit<'_> {
    /// Points `tag` at `digest`; whether that changed anything.
    pub fn set_tag(&mut self, tag: &str, digest: &Digest) -> bool {
        if self.repo.tags.get(tag) == Some(digest) {
            return false;
        }
        let old = self.repo.tags.insert(tag.to_owned(), digest.clone());
        self.hold(digest, |repo| {
            repo.refs.entry(digest.clone()).or_default().tags += 1;
        });
        if let Some(old) = old {
            self.untag(&old);
        }
        true
    }

    /// Removes `tag`; whether it was there.
    pub fn remove_tag(&mut self, tag: &str) -> bool {
        match self.repo.tags.remove(tag) {
            Some(old) => {
                self.untag(&old);
                true
            }
            None => false,
        }
    }

    /// Adds (`held`) or removes `digest` from the digests pushed without a tag; whether that
    /// changed anything.
    pub fn set_untagged(&mut self, digest: &Digest, held: bool) -> bool {
        if self.repo.untagged.contains(digest) == held {
            return false;
        }
        self.hold(digest, |repo| {
            if held {
                repo.untagged.insert(digest.clone());
            } else {
                repo.untagged.remove(digest);
            }
        });
        true
    }

    /// One tag fewer points at `digest`.
    fn untag(&mut self, digest: &Digest) {
        self.hold(digest, |repo| {
            if let Some(refs) = repo.refs.get_mut(digest) {
                refs.tags -= 1;
            }
        });
    }

    /// Applies `edit` to how the repository holds `digest`, and updates the counts: the
    /// images among `digest` and its children, the digest's children named, and the blobs it
    /// stores when the namespace starts or stops holding it.
    fn hold(&mut self, digest: &Digest, edit: impl FnOnce(&mut RepositoryState)) {
        let children = children(self.manifests, digest);
        let own = (!children.contains(digest)).then_some(digest);
        let affected = || children.iter().chain(own);
        let before = images_among(self.repo, self.manifests, affected());
        let was = self.repo.holds(digest);
        edit(self.repo);
        let now = self.repo.holds(digest);
        if was != now {
            self.repo.name_children(&children, now);
            self.totals.hold(self.manifests, digest, now);
        }
        let after = images_among(self.repo, self.manifests, affected());
        self.repo.recount(before, after);
        self.totals.images = self.totals.images + after - before;
        self.repo.tidy(digest);
    }
}
