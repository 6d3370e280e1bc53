//! Each repository's tags, for the tag count of a manifest push: read by one tag listing the
//! first time a repository is counted (with or without a namespace), then kept true by the
//! pushes the gateway forwards ([`TagSets::record`]), the deletes it forwards and the
//! registry's notifications ([`TagSets::apply`]: a pushed tag is added, any delete drops the
//! repository's set so that the next push lists again), and the periodic refresh
//! ([`refresh`]: a set used since the last refresh is listed again, an idle one dropped).
//!
//! At most `--tag-inventory-repositories` repositories are kept; past that, the least recently
//! used are dropped (and listed again when next counted). Each set carries the version it is
//! exact at: with `--coordination redis://`, the repository's change counter in Redis
//! (`RepositoryLease::changes`), which every reservation of new tags moves; a set whose version
//! is not the counter the lease returned is listed again before it is counted.
//!
//! The set only ever says what the gateway knows: a count it would refuse, or one that lands at
//! or within one of the limit, is confirmed by a listing first (`tag_count.rs`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use limits_core::{RepositoryName, SignatureTag, TagTally};
use registry_api::Notification;
use upstream_client::{Auth, Upstream};

use super::{Change, Inventory, InventoryMetrics};

#[cfg(test)]
mod scale;

/// The default of `--tag-inventory-repositories`.
pub const DEFAULT_REPOSITORIES: usize = 2_000;

/// One repository's tags.
#[derive(Debug, Default)]
struct RepositoryTags {
    /// Tags that cannot be exempt signature tags (most), by name.
    plain: HashSet<Box<str>>,
    /// Tags shaped like signature tags (`sha256-<hex>.sig`, `.att`, `.sbom`), which count
    /// unless what they name makes them exempt.
    shaped: BTreeSet<String>,
    /// The coordination's change counter the set is exact at (with Redis).
    version: Option<u64>,
    /// Changes made to the set, so that a listing read without the lease replaces it only
    /// when nothing changed meanwhile.
    changes: u64,
    /// When it was last used, on the sets' clock.
    used: u64,
    /// Whether a push counted from it since the last refresh.
    active: bool,
}

impl RepositoryTags {
    fn from_listing<'a>(listed: impl IntoIterator<Item = &'a String>) -> Self {
        let mut tags = RepositoryTags::default();
        for tag in listed {
            tags.insert(tag);
        }
        tags
    }

    fn insert(&mut self, tag: &str) -> bool {
        if SignatureTag::parse(tag).is_some() {
            self.shaped.insert(tag.to_owned())
        } else {
            self.plain.insert(tag.into())
        }
    }

    fn contains(&self, tag: &str) -> bool {
        self.plain.contains(tag) || self.shaped.contains(tag)
    }

    fn len(&self) -> usize {
        self.plain.len() + self.shaped.len()
    }
}

#[derive(Debug, Default)]
struct State {
    repositories: HashMap<RepositoryName, RepositoryTags>,
    clock: u64,
}

/// The tags of the repositories counted most recently.
#[derive(Debug)]
pub struct TagSets {
    state: Mutex<State>,
    capacity: usize,
    metrics: Arc<InventoryMetrics>,
}

impl<U> Inventory<U> {
    /// The same inventory, keeping the tags of at most `repositories` repositories.
    pub fn with_tag_capacity(mut self, repositories: usize) -> Self {
        self.tag_sets = Arc::new(TagSets::new(repositories, Arc::clone(&self.metrics)));
        self
    }

    /// Each counted repository's tags, for the tag count.
    pub fn tag_sets(&self) -> &Arc<TagSets> {
        &self.tag_sets
    }
}

impl<U: Upstream> Inventory<U> {
    /// Refreshes the tag sets every `every` ([`refresh`]), forever.
    pub async fn refresh_tag_sets_every(self: Arc<Self>, every: std::time::Duration) {
        let start = tokio::time::Instant::now() + every;
        let mut ticks = tokio::time::interval_at(start, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            refresh(&self.tag_sets, self.reader.as_ref()).await;
        }
    }
}

impl TagSets {
    /// The sets of an inventory counting in `metrics`, of the default capacity.
    pub fn for_inventory(metrics: &Arc<InventoryMetrics>) -> Arc<Self> {
        Arc::new(TagSets::new(DEFAULT_REPOSITORIES, Arc::clone(metrics)))
    }

    /// Sets of at most `capacity` repositories (at least one).
    pub fn new(capacity: usize, metrics: Arc<InventoryMetrics>) -> Self {
        TagSets {
            state: Mutex::new(State::default()),
            capacity: capacity.max(1),
            metrics,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the repository's set is kept and exact at `version` (`None`: in process).
    pub fn usable(&self, repository: &RepositoryName, version: Option<u64>) -> bool {
        self.state()
            .repositories
            .get(repository)
            .is_some_and(|tags| version.is_none() || tags.version == version)
    }

    /// Whether pushing `requested` would create a tag the set does not hold; `None` when the
    /// repository is not kept.
    pub fn creates(&self, repository: &RepositoryName, requested: &[String]) -> Option<bool> {
        let state = self.state();
        let tags = state.repositories.get(repository)?;
        Some(requested.iter().any(|tag| !tags.contains(tag)))
    }

    /// The kept tags shaped like signature tags, whose exemption the caller works out; `None`
    /// when the set is not kept or not exact at `version`.
    pub fn signature_shaped(
        &self,
        repository: &RepositoryName,
        version: Option<u64>,
    ) -> Option<Vec<String>> {
        let state = self.state();
        let tags = state.repositories.get(repository)?;
        (version.is_none() || tags.version == version)
            .then(|| tags.shaped.iter().cloned().collect())
    }

    /// The repository's tags that count (all but `exempt`) with `reserved` (recent tags the
    /// set may not hold yet), against `requested`: what a listing would give, without one.
    /// `None` when the set is not kept or not exact at `version`.
    pub fn tally(
        &self,
        repository: &RepositoryName,
        version: Option<u64>,
        exempt: &HashSet<String>,
        reserved: &[String],
        requested: &[String],
    ) -> Option<TagTally> {
        let mut state = self.state();
        state.clock += 1;
        let now = state.clock;
        let tags = state.repositories.get_mut(repository)?;
        if version.is_some() && tags.version != version {
            return None;
        }
        tags.used = now;
        tags.active = true;
        let counted = |tag: &str| tags.contains(tag) && !exempt.contains(tag);
        let shaped_exempt = tags.shaped.iter().filter(|t| exempt.contains(*t)).count();
        let mut existing = (tags.len() - shaped_exempt) as u64;
        let mut extra: Vec<&str> = Vec::new();
        for tag in reserved {
            if !counted(tag) && !extra.contains(&tag.as_str()) {
                extra.push(tag);
                existing += 1;
            }
        }
        let mut created: Vec<String> = Vec::new();
        for tag in requested {
            if !counted(tag) && !extra.contains(&tag.as_str()) && !created.contains(tag) {
                created.push(tag.clone());
            }
        }
        Some(TagTally { existing, created })
    }

    /// Keeps `listed` (every tag a listing read under the repository's lease, exempt ones
    /// included) and `reserved` (tags reserved recently, which a lagging listing may not show)
    /// as the repository's set, exact at `version`.
    pub fn adopt(
        &self,
        repository: &RepositoryName,
        listed: &[String],
        reserved: &[String],
        version: Option<u64>,
    ) {
        let mut tags = RepositoryTags::from_listing(listed.iter().chain(reserved));
        tags.version = version;
        let mut state = self.state();
        state.clock += 1;
        tags.used = state.clock;
        tags.active = true;
        if let Some(old) = state.repositories.get(repository) {
            tags.changes = old.changes + 1;
        }
        state.repositories.insert(repository.clone(), tags);
        self.evict(&mut state);
    }

    /// Records a forwarded push under the repository's lease: `created` were (or may have
    /// been) created, and the set is exact at `version` (the counter the push's own
    /// reservation left). Nothing when the set is no longer kept.
    pub fn record(&self, repository: &RepositoryName, created: &[String], version: Option<u64>) {
        let mut state = self.state();
        if let Some(tags) = state.repositories.get_mut(repository) {
            for tag in created {
                tags.insert(tag);
            }
            if version.is_some() {
                tags.version = version;
            }
            tags.changes += 1;
        }
    }

    /// Drops the repository's set: it is listed again when next counted.
    pub fn forget(&self, repository: &RepositoryName) {
        self.state().repositories.remove(repository);
    }

    /// Applies a registry event: a pushed tag is added (at worst counted while it is gone, and
    /// a refusal lists first); a delete drops the repository's set, since the event may arrive
    /// after a push created the tag again.
    pub fn apply(&self, change: &Change) {
        let Ok(repository) = change.repository().parse::<RepositoryName>() else {
            return;
        };
        match change {
            Change::Pushed { tags, .. } => {
                let mut state = self.state();
                if let Some(set) = state.repositories.get_mut(&repository) {
                    for tag in tags {
                        set.insert(tag);
                    }
                    set.changes += 1;
                }
            }
            Change::DigestDeleted { .. }
            | Change::TagDeleted { .. }
            | Change::RepositoryDeleted { .. } => self.forget(&repository),
        }
    }

    /// Applies every event of a registry notification ([`TagSets::apply`]).
    pub fn apply_notification(&self, notification: &Notification) {
        for event in &notification.events {
            if let Some(change) = Change::from_event(&event.kind) {
                self.apply(&change);
            }
        }
    }

    /// Drops the least recently used sets past the capacity (an eighth more at once, so
    /// that the scan is rare).
    fn evict(&self, state: &mut State) {
        if state.repositories.len() <= self.capacity {
            return;
        }
        let keep = self.capacity - self.capacity / 8;
        let mut ages: Vec<u64> = state.repositories.values().map(|t| t.used).collect();
        ages.sort_unstable();
        let cutoff = ages[ages.len() - keep];
        let before = state.repositories.len();
        state.repositories.retain(|_, tags| tags.used >= cutoff);
        self.metrics
            .tag_sets_evicted((before - state.repositories.len()) as u64);
    }

    /// Sets the size gauges.
    pub fn update_gauges(&self) {
        let state = self.state();
        let tags: usize = state.repositories.values().map(RepositoryTags::len).sum();
        self.metrics
            .set_tag_sets(state.repositories.len() as u64, tags as u64);
    }

    /// Counts a listing read for the tag count, by why: `load`, `stale` (the change counter
    /// moved), `confirm` (a refusal or a count near the limit) or `refresh`.
    pub fn listed(&self, reason: &'static str) {
        self.metrics.tag_listing(reason);
    }

    /// The kept repositories: those a push counted from since the last call, and the others.
    fn take_activity(&self) -> (Vec<(RepositoryName, u64)>, Vec<RepositoryName>) {
        let mut state = self.state();
        let mut active = Vec::new();
        let mut idle = Vec::new();
        for (name, tags) in &mut state.repositories {
            if std::mem::take(&mut tags.active) {
                active.push((name.clone(), tags.changes));
            } else {
                idle.push(name.clone());
            }
        }
        (active, idle)
    }

    /// Replaces the set with `listed` when it did not change since `changes` was read.
    fn replace_if_unchanged(&self, repository: &RepositoryName, changes: u64, listed: &[String]) {
        let mut fresh = RepositoryTags::from_listing(listed);
        let mut state = self.state();
        if let Some(tags) = state.repositories.get_mut(repository) {
            if tags.changes == changes {
                fresh.version = tags.version;
                fresh.used = tags.used;
                fresh.changes = changes + 1;
                *tags = fresh;
            }
        }
    }
}

/// The periodic refresh: each set a push counted from since the last refresh is listed again
/// (with the account the inventory reads the registry with) and replaced when nothing changed
/// it meanwhile; idle sets, and those that cannot be listed, are dropped. The number of
/// repositories listed.
pub async fn refresh<U: Upstream>(sets: &TagSets, reader: &U) -> usize {
    let (active, idle) = sets.take_activity();
    for name in idle {
        sets.forget(&name);
    }
    let mut listed = 0;
    for (repository, changes) in active {
        sets.listed("refresh");
        match reader.tags(&repository, Auth::Configured).await {
            Ok(tags) => {
                listed += 1;
                sets.replace_if_unchanged(&repository, changes, &tags);
            }
            Err(err) => {
                tracing::debug!(repository = %repository, error = %err, "tag set not listed by the refresh; dropped until the next push counts it");
                sets.forget(&repository);
            }
        }
    }
    listed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> RepositoryName {
        s.parse().expect("a name")
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn sets(capacity: usize) -> TagSets {
        TagSets::new(capacity, Arc::new(InventoryMetrics::new()))
    }

    /// The set's tally is the listing's: same existing count and created tags, exempt
    /// signature tags left out, reserved tags counted once.
    #[test]
    fn tally_matches_the_listing() {
        let signature = format!("sha256-{}.sig", "a".repeat(64));
        let listed = strings(&["a", "b", &signature]);
        type Case<'a> = (&'a [&'a str], &'a [&'a str], bool, u64, &'a [&'a str]);
        let cases: &[Case] = &[
            // reserved, requested, signature exempt, existing, created
            (&[], &["c"], true, 2, &["c"]),
            (&[], &["c"], false, 3, &["c"]),
            (&["c"], &["c", "d", "d"], true, 3, &["d"]),
            (&["a"], &["a"], true, 2, &[]),
            (&[], &[signature.as_str()], true, 2, &[signature.as_str()]),
        ];
        let repository = name("team/app");
        for (reserved, requested, exempt_on, existing, created) in cases {
            let sets = sets(4);
            sets.adopt(&repository, &listed, &[], None);
            let exempt: HashSet<String> = if *exempt_on {
                HashSet::from([signature.clone()])
            } else {
                HashSet::new()
            };
            let mut listing = listed.clone();
            listing.retain(|t| !exempt.contains(t));
            let want = TagTally::new(&listing, &strings(reserved), &strings(requested));
            let got = sets
                .tally(
                    &repository,
                    None,
                    &exempt,
                    &strings(reserved),
                    &strings(requested),
                )
                .expect("kept");
            assert_eq!(got, want, "{reserved:?} {requested:?} {exempt_on}");
            assert_eq!(got.existing, *existing);
            assert_eq!(got.created, strings(created));
        }
    }

    #[test]
    fn versions_records_deletes_and_eviction() {
        let sets = sets(8);
        let app = name("app");
        sets.adopt(&app, &strings(&["v1"]), &strings(&["v2"]), Some(7));
        let none = HashSet::new();
        let tally = |version| sets.tally(&app, version, &none, &[], &strings(&["v3"]));
        assert_eq!(tally(Some(7)).map(|t| t.existing), Some(2));
        assert_eq!(tally(Some(8)), None, "the counter moved: listed again");
        sets.record(&app, &strings(&["v3"]), Some(8));
        assert_eq!(tally(Some(8)).map(|t| t.created.len()), Some(0));
        assert_eq!(sets.creates(&app, &strings(&["v3"])), Some(false));
        sets.apply(&Change::TagDeleted {
            repository: "app".to_owned(),
            tag: "v1".to_owned(),
        });
        assert_eq!(sets.creates(&app, &strings(&["v3"])), None);
        for i in 0..20 {
            sets.adopt(&name(&format!("r{i}")), &[], &[], None);
        }
        let kept = sets.state().repositories.len();
        assert!(kept <= 8, "{kept} kept");
        assert!(sets.usable(&name("r19"), None));
        assert!(!sets.usable(&name("r0"), None));
    }

    /// A listing read by the refresh does not replace a set a push changed meanwhile.
    #[test]
    fn refresh_replaces_only_unchanged_sets() {
        let sets = sets(4);
        let app = name("app");
        sets.adopt(&app, &strings(&["v1"]), &[], None);
        let (active, idle) = sets.take_activity();
        assert!(idle.is_empty());
        let changes = active[0].1;
        sets.record(&app, &strings(&["v2"]), None);
        sets.replace_if_unchanged(&app, changes, &strings(&["v1"]));
        assert_eq!(sets.creates(&app, &strings(&["v2"])), Some(false));
        let changes = changes + 1;
        sets.replace_if_unchanged(&app, changes, &strings(&["v9"]));
        assert_eq!(sets.creates(&app, &strings(&["v9"])), Some(false));
        assert_eq!(sets.creates(&app, &strings(&["v2"])), Some(true));
        // Not counted since: dropped by the next refresh.
        let (active, idle) = sets.take_activity();
        assert!(active.is_empty());
        assert_eq!(idle, vec![app]);
    }
}
