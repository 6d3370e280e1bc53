//! Reading a namespace from the registry: the catalog from the namespace's prefix, each
//! repository's tags, the digest each tag points to, and each manifest not known yet (an
//! index's children too), with a bounded number of requests at once.

use std::collections::{BTreeMap, HashMap};

use futures_util::StreamExt as _;
use limits_core::RepositoryName;
use oci_manifest::Digest;
use tokio::sync::Semaphore;
use upstream_client::{Auth, Inventory as Catalog};

use super::error::InventoryError;
use super::facts::{MAX_INDEX_DEPTH, ManifestFacts};
use super::scope::lone_repository;
use super::state::NamespaceState;

/// A repository name the registry listed that is not a valid one: a registry error.
fn name(repository: &str) -> Result<RepositoryName, InventoryError> {
    repository.parse().map_err(|source| InventoryError::Name {
        name: repository.to_owned(),
        source,
    })
}

/// Reads `namespace`: every repository the catalog lists under `<namespace>/`, with its tags
/// (for the scope of a repository without a namespace, that repository alone). `known` holds
/// the facts already known; the manifests not in it are fetched.
pub(super) async fn namespace<U: Catalog>(
    reader: &U,
    permits: &Semaphore,
    concurrency: usize,
    namespace: &str,
    known: HashMap<Digest, ManifestFacts>,
) -> Result<NamespaceState, InventoryError> {
    let repositories = match lone_repository(namespace) {
        Some(repository) => vec![repository.to_owned()],
        None => {
            let _permit = permits.acquire().await;
            reader
                .catalog_namespace(namespace, Auth::Configured)
                .await?
        }
    };
    let listed: Vec<(String, BTreeMap<String, Digest>)> = futures_util::stream::iter(repositories)
        .map(|repository| async move {
            let tags = tags(reader, permits, concurrency, &repository).await?;
            Ok::<_, InventoryError>((repository, tags))
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    // Each manifest not known yet, fetched once (from the first repository listing it).
    let mut wanted: BTreeMap<Digest, String> = BTreeMap::new();
    for (repository, tags) in &listed {
        for digest in tags.values().filter(|d| !known.contains_key(*d)) {
            wanted
                .entry(digest.clone())
                .or_insert_with(|| repository.clone());
        }
    }
    let fetched: Vec<Vec<(Digest, ManifestFacts)>> = futures_util::stream::iter(wanted)
        .map(|(digest, repository)| async move {
            let mut local = HashMap::new();
            facts_of(reader, permits, &repository, &digest, &mut local).await
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut known = known;
    known.extend(fetched.into_iter().flatten());
    let mut state = NamespaceState::default();
    for (repository, tags) in listed {
        for digest in tags.values() {
            if let Some(facts) = known.get(digest) {
                learn_tree(&mut state, &known, digest, facts.clone(), 0);
            }
        }
        state.set_tags(&repository, tags);
    }
    Ok(state)
}

/// Copies the facts of `digest` and of its children from `known` into `state`.
fn learn_tree(
    state: &mut NamespaceState,
    known: &HashMap<Digest, ManifestFacts>,
    digest: &Digest,
    facts: ManifestFacts,
    depth: usize,
) {
    if depth < MAX_INDEX_DEPTH {
        for child in &facts.children {
            if let Some(child_facts) = known.get(child) {
                learn_tree(state, known, child, child_facts.clone(), depth + 1);
            }
        }
    }
    state.learn(digest.clone(), facts);
}

/// Each tag of `repository` with the digest it points to (a tag removed meanwhile is left out).
async fn tags<U: Catalog>(
    reader: &U,
    permits: &Semaphore,
    concurrency: usize,
    repository: &str,
) -> Result<BTreeMap<String, Digest>, InventoryError> {
    let repo = name(repository)?;
    let listed = {
        let _permit = permits.acquire().await;
        reader.tags(&repo, Auth::Configured).await?
    };
    let repo = &repo;
    let resolved: Vec<(String, Option<Digest>)> = futures_util::stream::iter(listed)
        .map(|tag| async move {
            let _permit = permits.acquire().await;
            let digest = reader.manifest_digest(repo, &tag, Auth::Configured).await?;
            Ok::<_, InventoryError>((tag, digest))
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(resolved
        .into_iter()
        .filter_map(|(tag, digest)| Some((tag, digest?)))
        .collect())
}

/// The facts of `digest` and of its children (for an index) that `known` does not hold,
/// fetched from `repository`; each fetched one is added to `known` too. A manifest the
/// registry does not have (any more) is left out.
pub(super) async fn facts_of<U: Catalog>(
    reader: &U,
    permits: &Semaphore,
    repository: &str,
    digest: &Digest,
    known: &mut HashMap<Digest, ManifestFacts>,
) -> Result<Vec<(Digest, ManifestFacts)>, InventoryError> {
    let repo = name(repository)?;
    let mut fetched = Vec::new();
    let mut pending = vec![(digest.clone(), 0usize)];
    while let Some((digest, depth)) = pending.pop() {
        let facts = match known.get(&digest) {
            Some(facts) => facts.clone(),
            None => {
                let manifest = {
                    let _permit = permits.acquire().await;
                    reader
                        .manifest(&repo, digest.as_str(), Auth::Configured)
                        .await?
                };
                let Some(manifest) = manifest else {
                    continue;
                };
                let parsed = oci_manifest::parse(manifest.media_type.as_deref(), &manifest.body)
                    .map_err(|source| InventoryError::Manifest {
                        repository: repository.to_owned(),
                        digest: digest.to_string(),
                        source,
                    })?;
                let facts = ManifestFacts::of(&parsed);
                known.insert(digest.clone(), facts.clone());
                fetched.push((digest.clone(), facts.clone()));
                facts
            }
        };
        if depth < MAX_INDEX_DEPTH {
            pending.extend(facts.children.iter().map(|c| (c.clone(), depth + 1)));
        }
    }
    Ok(fetched)
}

/// Whether the registry still holds the manifest `digest` in `repository`.
pub(super) async fn exists<U: Catalog>(
    reader: &U,
    permits: &Semaphore,
    repository: &str,
    digest: &Digest,
) -> Result<bool, InventoryError> {
    let repo = name(repository)?;
    let _permit = permits.acquire().await;
    Ok(reader
        .manifest_digest(&repo, digest.as_str(), Auth::Configured)
        .await?
        .is_some())
}
