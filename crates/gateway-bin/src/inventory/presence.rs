//! What a replica asks of its inventory when it catches up with the others (`quota::shared`):
//! whether a namespace was read already, and whether a repository still holds a manifest.

use std::collections::HashMap;

use oci_manifest::Digest;
use upstream_client::Inventory as Catalog;

use super::{Inventory, ManifestFacts, scope_of};

impl<U: Catalog> Inventory<U> {
    /// Whether `namespace` was read from the registry already.
    pub fn is_built(&self, namespace: &str) -> bool {
        self.known(namespace)
            .is_some_and(|entry| entry.built.get().is_some())
    }

    /// Whether `repository` holds `digest`, tagged or not, as far as the inventory knows.
    pub fn holds(&self, repository: &str, digest: &Digest) -> bool {
        let Some(entry) = self.known(&scope_of(repository)) else {
            return false;
        };
        let slot = entry.lock();
        slot.state
            .repositories()
            .get(repository)
            .is_some_and(|repo| {
                repo.untagged().contains(digest) || repo.tags().values().any(|d| d == digest)
            })
    }

    /// The facts of `digest` and of its children, as far as the inventory knows them.
    pub fn tree(&self, repository: &str, digest: &Digest) -> Vec<(Digest, ManifestFacts)> {
        let mut known = HashMap::new();
        if let Some(entry) = self.known(&scope_of(repository)) {
            entry.lock().state.known_tree(digest, &mut known);
        }
        known.into_iter().collect()
    }
}
