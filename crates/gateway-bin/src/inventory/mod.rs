//! An inventory of the registry, per namespace: each repository's tags and the digests they
//! point to, the manifests pushed by digest, and the blobs each manifest stores, so that
//! namespace usage ([`NamespaceUsage`]) and what a push adds ([`PushDelta`]) are worked out
//! without listing the registry on every push.
//!
//! A namespace is read from the registry ([`read`]) the first time it is asked about, with the
//! account the gateway reads the registry with (Harbor mode's robot account, else none), at most
//! `--inventory-concurrency` requests at once. It is then kept true by the pushes the gateway
//! records ([`Inventory::record_push`]), by the registry's notifications
//! ([`notifications`], `POST /v1/registry-notifications` on the admin listener) and by a
//! reconciliation every `--inventory-refresh`, which reads each known namespace again, asks the
//! registry about every digest pushed without a tag (dropped once it answers 404), and logs and
//! counts each correction.
//!
//! Each process keeps its own; with `--coordination redis://` the replicas share the pushes
//! they admit through a log per namespace in Redis (`quota::shared`). Push decisions consult it
//! ([`Inventory::push_view`], `quota`) when an `image_count_limit` or a namespace quota
//! applies.

mod args;
mod change;
mod counts;
mod error;
mod facts;
mod metrics;
mod namespace_metrics;
pub mod notifications;
#[cfg(test)]
mod oracle;
mod presence;
mod read;
#[cfg(test)]
mod scale;
mod scope;
mod state;
pub mod tags;
pub mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use limits_core::{NamespaceUsage, PushDelta};
use oci_manifest::Digest;
use registry_api::Notification;
use tokio::sync::{OnceCell, Semaphore};
use upstream_client::{Inventory as Catalog, ReqwestUpstream};

pub use args::InventoryArgs;
pub use change::Change;
pub use error::InventoryError;
pub use facts::ManifestFacts;
pub use metrics::InventoryMetrics;
pub use namespace_metrics::{NamespaceMetrics, namespace_usages};
pub use scope::{lone_repository, scope_of};
pub use state::{NamespaceState, RepositoryCounts};

/// One namespace: its state, and the changes made while it is being read from the registry.
#[derive(Debug, Default)]
struct Slot {
    state: NamespaceState,
    /// `Some` while the namespace is read (first build or reconciliation): the changes made
    /// meanwhile, replayed over what was read.
    journal: Option<Vec<Change>>,
}

#[derive(Debug)]
struct Entry {
    built: OnceCell<()>,
    slot: Mutex<Slot>,
    /// Held while the namespace is reconciled: one journal at a time.
    reconciling: tokio::sync::Mutex<()>,
}

impl Entry {
    fn new() -> Self {
        Entry {
            built: OnceCell::new(),
            slot: Mutex::new(Slot {
                state: NamespaceState::default(),
                journal: Some(Vec::new()),
            }),
            reconciling: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a push decision reads of the inventory, at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushView {
    /// What the namespace holds.
    pub usage: NamespaceUsage,
    /// What the push adds to it.
    pub delta: PushDelta,
    /// What the repository holds.
    pub repository: RepositoryCounts,
    /// The repository's images among the pushed index's children (see
    /// [`NamespaceState::platform_images`]).
    pub platform_images: u64,
}

/// The inventory of every namespace asked about so far.
#[derive(Debug)]
pub struct Inventory<U = ReqwestUpstream> {
    reader: Arc<U>,
    permits: Semaphore,
    concurrency: usize,
    namespaces: Mutex<HashMap<String, Arc<Entry>>>,
    metrics: Arc<InventoryMetrics>,
    tag_sets: Arc<tags::TagSets>,
}

impl<U: Catalog> Inventory<U> {
    /// An inventory reading the registry through `reader`, at most `concurrency` requests at
    /// once.
    pub fn new(reader: Arc<U>, concurrency: usize, metrics: Arc<InventoryMetrics>) -> Self {
        let concurrency = concurrency.max(1);
        Inventory {
            reader,
            permits: Semaphore::new(concurrency),
            concurrency,
            namespaces: Mutex::new(HashMap::new()),
            tag_sets: tags::TagSets::for_inventory(&metrics),
            metrics,
        }
    }

    /// The metrics it updates.
    pub fn metrics(&self) -> &InventoryMetrics {
        &self.metrics
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn entry(&self, namespace: &str) -> Arc<Entry> {
        Arc::clone(
            self.entries()
                .entry(namespace.to_owned())
                .or_insert_with(|| Arc::new(Entry::new())),
        )
    }

    fn known(&self, namespace: &str) -> Option<Arc<Entry>> {
        self.entries().get(namespace).cloned()
    }

    /// The namespace's entry, read from the registry first if this is its first use.
    async fn built(&self, namespace: &str) -> Result<Arc<Entry>, InventoryError> {
        let entry = self.entry(namespace);
        entry
            .built
            .get_or_try_init(|| async {
                let read = self.read_namespace(namespace, &entry).await?;
                let mut slot = entry.lock();
                let journal = slot.journal.take().unwrap_or_default();
                let mut fresh = read;
                for change in &journal {
                    fresh.apply(change);
                }
                learn_all(&mut fresh, &slot.state);
                slot.state = fresh;
                let (repositories, tags, digests) = slot.state.size();
                tracing::info!(
                    namespace,
                    repositories,
                    tags,
                    digests,
                    "inventory of a namespace read from the registry"
                );
                Ok::<_, InventoryError>(())
            })
            .await?;
        Ok(entry)
    }

    async fn read_namespace(
        &self,
        namespace: &str,
        entry: &Entry,
    ) -> Result<NamespaceState, InventoryError> {
        let known = entry.lock().state.manifests().clone();
        read::namespace(
            self.reader.as_ref(),
            &self.permits,
            self.concurrency,
            namespace,
            known,
        )
        .await
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the push path reads push_view; the tests read this"
        )
    )]
    /// What the namespace holds.
    pub async fn usage(&self, namespace: &str) -> Result<NamespaceUsage, InventoryError> {
        let entry = self.built(namespace).await?;
        let usage = entry.lock().state.usage();
        Ok(usage)
    }

    /// What the namespace holds, with each repository's counts.
    pub async fn snapshot(
        &self,
        namespace: &str,
    ) -> Result<(NamespaceUsage, Vec<(String, RepositoryCounts)>), InventoryError> {
        let entry = self.built(namespace).await?;
        let slot = entry.lock();
        let repositories = slot
            .state
            .repositories()
            .keys()
            .map(|name| (name.clone(), slot.state.repository_counts(name)))
            .collect();
        Ok((slot.state.usage(), repositories))
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the push path reads push_view; the tests read this"
        )
    )]
    /// A repository's image and tag counts.
    pub async fn repository_counts(
        &self,
        repository: &str,
    ) -> Result<RepositoryCounts, InventoryError> {
        let entry = self.built(&scope_of(repository)).await?;
        let counts = entry.lock().state.repository_counts(repository);
        Ok(counts)
    }

    /// What pushing `digest` to `repository` under `tags` (none: by digest) would add to its
    /// scope (its namespace, or the repository alone: [`scope_of`]), with what the scope and the
    /// repository hold, read at once. `facts` are those of the pushed manifest and, for an
    /// index, of its children (the ones the inventory does not know are fetched from the
    /// registry).
    pub async fn push_view(
        &self,
        repository: &str,
        digest: &Digest,
        tags: &[String],
        facts: Vec<(Digest, ManifestFacts)>,
    ) -> Result<PushView, InventoryError> {
        let entry = self.built(&scope_of(repository)).await?;
        let mut facts = facts;
        self.fetch_missing(&entry, repository, digest, &mut facts)
            .await?;
        let mut slot = entry.lock();
        for (digest, facts) in facts {
            slot.state.learn(digest, facts);
        }
        Ok(PushView {
            usage: slot.state.usage(),
            delta: slot.state.delta(repository, digest, tags),
            repository: slot.state.repository_counts(repository),
            platform_images: slot.state.platform_images(repository, digest),
        })
    }

    /// Reads `namespace` from the registry now and corrects the inventory (before a push
    /// decision is taken on a count close to a limit); the corrections made.
    pub async fn reconcile_now(&self, namespace: &str) -> Result<usize, InventoryError> {
        let entry = self.built(namespace).await?;
        let result = self.reconcile(namespace, &entry).await;
        self.metrics.refreshed(result.is_ok());
        result
    }

    /// Records a push the registry accepted (`tags` empty: by digest), with the facts of the
    /// manifest and of its children when known.
    pub fn record_push(
        &self,
        repository: &str,
        digest: &Digest,
        tags: &[String],
        facts: Vec<(Digest, ManifestFacts)>,
    ) {
        let entry = self.entry(&scope_of(repository));
        let mut slot = entry.lock();
        for (digest, facts) in facts {
            slot.state.learn(digest, facts);
        }
        record(
            &mut slot,
            Change::Pushed {
                repository: repository.to_owned(),
                digest: digest.clone(),
                tags: tags.to_vec(),
            },
        );
    }

    /// Applies a notification's events to the namespaces already known (a namespace read later
    /// is read with them). The facts of pushed manifests are fetched from the registry first.
    /// The number of tags and untagged digests changed.
    pub async fn apply(&self, notification: &Notification) -> usize {
        let mut changed = 0;
        for event in &notification.events {
            let Some(change) = Change::from_event(&event.kind) else {
                continue;
            };
            let Some(entry) = self.known(&scope_of(change.repository())) else {
                continue;
            };
            if let Some(digest) = change.pushed_digest() {
                let mut facts = Vec::new();
                if let Err(err) = self
                    .fetch_missing(&entry, change.repository(), digest, &mut facts)
                    .await
                {
                    tracing::warn!(repository = change.repository(), digest = %digest, error = %err, "inventory: cannot read a notified manifest; the reconciliation will");
                }
                let mut slot = entry.lock();
                for (digest, facts) in facts {
                    slot.state.learn(digest, facts);
                }
            }
            changed += record(&mut entry.lock(), change);
        }
        changed
    }

    /// Fetches the facts of `digest` and of its children that neither `facts` nor the
    /// namespace knows.
    async fn fetch_missing(
        &self,
        entry: &Entry,
        repository: &str,
        digest: &Digest,
        facts: &mut Vec<(Digest, ManifestFacts)>,
    ) -> Result<(), InventoryError> {
        let mut known: HashMap<Digest, ManifestFacts> = facts.iter().cloned().collect();
        entry.lock().state.known_tree(digest, &mut known);
        let fetched = read::facts_of(
            self.reader.as_ref(),
            &self.permits,
            repository,
            digest,
            &mut known,
        )
        .await?;
        facts.extend(fetched);
        Ok(())
    }

    /// Reads every known namespace again and corrects the inventory; the corrections made.
    pub async fn refresh(&self) -> usize {
        let namespaces: Vec<(String, Arc<Entry>)> = self
            .entries()
            .iter()
            .map(|(name, entry)| (name.clone(), Arc::clone(entry)))
            .collect();
        let mut corrected = 0;
        for (namespace, entry) in namespaces {
            if entry.built.get().is_none() {
                // Its first read is under way or failed; the next use reads it.
                continue;
            }
            match self.reconcile(&namespace, &entry).await {
                Ok(count) => {
                    self.metrics.refreshed(true);
                    corrected += count;
                }
                Err(err) => {
                    self.metrics.refreshed(false);
                    tracing::warn!(namespace, error = %err, "inventory reconciliation failed; the namespace is kept as it was");
                }
            }
        }
        corrected
    }

    /// Reconciles one namespace; on failure it is kept as it was. The periodic refresh and a
    /// push's confirmation may both ask: one at a time, each with its own journal.
    async fn reconcile(&self, namespace: &str, entry: &Entry) -> Result<usize, InventoryError> {
        let _one = entry.reconciling.lock().await;
        let result = self.reread(namespace, entry).await;
        if result.is_err() {
            drop(entry.lock().journal.take());
        }
        result
    }

    async fn reread(&self, namespace: &str, entry: &Entry) -> Result<usize, InventoryError> {
        let untagged: Vec<(String, Digest)> = {
            let mut slot = entry.lock();
            slot.journal = Some(Vec::new());
            slot.state
                .repositories()
                .iter()
                .flat_map(|(name, repo)| repo.untagged().iter().map(|d| (name.clone(), d.clone())))
                .collect()
        };
        let mut fresh = self.read_namespace(namespace, entry).await?;
        let mut known = entry.lock().state.manifests().clone();
        for (repository, digest) in untagged {
            if read::exists(self.reader.as_ref(), &self.permits, &repository, &digest).await? {
                // Facts a notification could not read when it arrived.
                let fetched = read::facts_of(
                    self.reader.as_ref(),
                    &self.permits,
                    &repository,
                    &digest,
                    &mut known,
                )
                .await?;
                for (digest, facts) in fetched {
                    fresh.learn(digest, facts);
                }
                fresh.apply(&Change::Pushed {
                    repository,
                    digest,
                    tags: Vec::new(),
                });
            }
        }
        let mut slot = entry.lock();
        for change in slot.journal.take().unwrap_or_default() {
            fresh.apply(&change);
        }
        learn_all(&mut fresh, &slot.state);
        fresh.prune();
        let corrections = slot.state.corrections(&fresh);
        for correction in &corrections {
            tracing::warn!(
                namespace,
                repository = %correction.repository,
                correction = correction.kind,
                reference = %correction.reference,
                "inventory corrected by reconciliation with the registry"
            );
            self.metrics.corrected(correction.kind);
        }
        slot.state = fresh;
        Ok(corrections.len())
    }

    /// Reconciles every `every`, forever.
    pub async fn refresh_every(self: Arc<Self>, every: Duration) {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.refresh().await;
        }
    }

    /// Sets the size gauges from every namespace's state (called before the metrics are read).
    pub fn update_gauges(&self) {
        let entries: Vec<Arc<Entry>> = self.entries().values().cloned().collect();
        let mut total = (0, 0, 0);
        for entry in entries {
            let (repositories, tags, digests) = entry.lock().state.size();
            total = (total.0 + repositories, total.1 + tags, total.2 + digests);
        }
        self.metrics.set_size(total.0, total.1, total.2);
    }
}

/// Applies `change` to the slot's state, and journals it while the namespace is being read.
fn record(slot: &mut Slot, change: Change) -> usize {
    let changed = slot.state.apply(&change);
    if let Some(journal) = &mut slot.journal {
        journal.push(change);
    }
    changed
}

/// Copies into `fresh` the facts `old` knows and `fresh` does not (pushes recorded meanwhile).
fn learn_all(fresh: &mut NamespaceState, old: &NamespaceState) {
    for (digest, facts) in old.manifests() {
        if fresh.facts(digest).is_none() {
            fresh.learn(digest.clone(), facts.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use limits_core::RepositoryName;
    use upstream_client::{Auth, FetchedManifest, Upstream, UpstreamError};

    use super::*;

    const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

    /// A registry in memory: tags, and manifests each repository holds by digest.
    #[derive(Debug, Default)]
    struct Fake {
        tags: Mutex<BTreeMap<String, BTreeMap<String, Digest>>>,
        held: Mutex<BTreeSet<(String, Digest)>>,
        bodies: Mutex<HashMap<Digest, Vec<u8>>>,
    }

    impl Fake {
        fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
            m.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Stores an image manifest of blobs of `sizes` (the first the config); its digest.
        fn store(&self, repository: &str, seed: &str, sizes: &[u64], tag: Option<&str>) -> Digest {
            let blob = |i: usize| Digest::sha256(format!("{seed}-{i}").as_bytes());
            let layers: Vec<String> = sizes[1..]
                .iter()
                .enumerate()
                .map(|(i, size)| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{size}}}"#, blob(i + 1)))
                .collect();
            let body = format!(
                r#"{{"schemaVersion":2,"mediaType":"{IMAGE}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
                blob(0),
                sizes[0],
                layers.join(",")
            );
            let digest = Digest::sha256(body.as_bytes());
            Self::lock(&self.bodies).insert(digest.clone(), body.into_bytes());
            Self::lock(&self.held).insert((repository.to_owned(), digest.clone()));
            if let Some(tag) = tag {
                Self::lock(&self.tags)
                    .entry(repository.to_owned())
                    .or_default()
                    .insert(tag.to_owned(), digest.clone());
            }
            digest
        }

        /// Deletes a manifest by digest, with its tags, as distribution does.
        fn delete(&self, repository: &str, digest: &Digest) {
            Self::lock(&self.held).remove(&(repository.to_owned(), digest.clone()));
            if let Some(tags) = Self::lock(&self.tags).get_mut(repository) {
                tags.retain(|_, d| d != digest);
            }
        }

        fn resolve(&self, repo: &RepositoryName, reference: &str) -> Option<Digest> {
            let repository = repo.to_string();
            match reference.parse::<Digest>() {
                Ok(digest) => Self::lock(&self.held)
                    .contains(&(repository, digest.clone()))
                    .then_some(digest),
                Err(_) => Self::lock(&self.tags)
                    .get(&repository)
                    .and_then(|tags| tags.get(reference).cloned()),
            }
        }
    }

    impl Upstream for Fake {
        async fn tags(
            &self,
            repo: &RepositoryName,
            _: Auth<'_>,
        ) -> Result<Vec<String>, UpstreamError> {
            Ok(Self::lock(&self.tags)
                .get(&repo.to_string())
                .map(|tags| tags.keys().cloned().collect())
                .unwrap_or_default())
        }
        async fn blob_size(
            &self,
            _: &RepositoryName,
            _: &Digest,
            _: Auth<'_>,
        ) -> Result<Option<u64>, UpstreamError> {
            Ok(None)
        }
        async fn manifest_digest(
            &self,
            repo: &RepositoryName,
            reference: &str,
            _: Auth<'_>,
        ) -> Result<Option<Digest>, UpstreamError> {
            Ok(self.resolve(repo, reference))
        }
        async fn manifest(
            &self,
            repo: &RepositoryName,
            reference: &str,
            _: Auth<'_>,
        ) -> Result<Option<FetchedManifest>, UpstreamError> {
            Ok(self.resolve(repo, reference).and_then(|digest| {
                Self::lock(&self.bodies)
                    .get(&digest)
                    .map(|body| FetchedManifest {
                        media_type: Some(IMAGE.to_owned()),
                        body: body.clone(),
                    })
            }))
        }
    }

    impl Catalog for Fake {
        async fn catalog(&self, _: Auth<'_>) -> Result<Vec<String>, UpstreamError> {
            let mut names: BTreeSet<String> = Self::lock(&self.tags).keys().cloned().collect();
            names.extend(Self::lock(&self.held).iter().map(|(r, _)| r.clone()));
            names.insert("other/app".to_owned());
            Ok(names.into_iter().collect())
        }
    }

    fn usage(repositories: u64, images: u64, tags: u64, storage_bytes: u64) -> NamespaceUsage {
        NamespaceUsage {
            repositories,
            images,
            tags,
            storage_bytes,
        }
    }

    #[tokio::test]
    async fn built_recorded_notified_and_reconciled() {
        let fake = Arc::new(Fake::default());
        let first = fake.store("team/app", "first", &[10, 100], Some("v1"));
        fake.store("other/app", "other", &[1, 1], Some("v1"));
        let inventory = Inventory::new(Arc::clone(&fake), 2, Arc::new(InventoryMetrics::new()));
        assert_eq!(
            inventory.usage("team").await.ok(),
            Some(usage(1, 1, 1, 110))
        );

        // A push by digest admitted by the gateway counts from then on.
        let second = fake.store("team/app", "second", &[20, 200], None);
        let facts = inventory.snapshot("team").await.map(|_| ());
        assert!(facts.is_ok());
        let delta = inventory
            .push_view("team/app", &second, &[], Vec::new())
            .await
            .ok()
            .map(|view| view.delta);
        assert_eq!(
            delta,
            Some(PushDelta {
                new_image: true,
                new_blob_bytes: 220,
                ..PushDelta::default()
            })
        );
        inventory.record_push("team/app", &second, &[], Vec::new());
        assert_eq!(
            inventory.usage("team").await.ok(),
            Some(usage(1, 2, 1, 330))
        );
        let counts = inventory.repository_counts("team/app").await.ok();
        assert_eq!(counts, Some(RepositoryCounts { images: 2, tags: 1 }));

        // A notification of a tag pushed elsewhere; its manifest is read from the registry.
        fake.store("team/app", "first", &[10, 100], Some("v2"));
        let third = fake.store("team/tools", "third", &[5, 5], Some("latest"));
        let body = format!(
            r#"{{"events":[{{"action":"push","target":{{"mediaType":"{IMAGE}","digest":"{third}","repository":"team/tools","tag":"latest"}}}},{{"action":"push","target":{{"mediaType":"{IMAGE}","digest":"{first}","repository":"team/app","tag":"v2"}}}}]}}"#
        );
        let notification = Notification::parse(body.as_bytes()).expect("a notification");
        assert_eq!(inventory.apply(&notification).await, 2);
        assert_eq!(
            inventory.usage("team").await.ok(),
            Some(usage(2, 3, 3, 340))
        );

        // Deleted at the registry without a notification: the reconciliation corrects it.
        fake.delete("team/app", &first);
        fake.delete("team/app", &second);
        assert_eq!(inventory.refresh().await, 3);
        assert_eq!(inventory.usage("team").await.ok(), Some(usage(1, 1, 1, 10)));
        assert_eq!(inventory.refresh().await, 0);
        inventory.update_gauges();
        let mut text = String::new();
        inventory.metrics().encode_into(&mut text);
        for line in [
            "registry_gateway_inventory_repositories 1",
            "registry_gateway_inventory_tags 1",
            "registry_gateway_inventory_corrections_total{kind=\"tag_removed\"} 2",
            "registry_gateway_inventory_corrections_total{kind=\"untagged_removed\"} 1",
            "registry_gateway_inventory_refreshes_total{result=\"ok\"} 2",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
