//! Serialising tag-creating pushes per repository, and remembering the tags this process
//! reserved (created, or possibly created) until the upstream's listing shows them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use limits_core::RepositoryName;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Tags reserved through this process, with when: each was about to be created by a push
/// whose manifest was then forwarded, so the registry holds it or may still come to.
#[derive(Debug, Default)]
pub struct RecentTags {
    tags: Vec<(String, Instant)>,
}

impl RecentTags {
    /// Tags reserved within `window`, dropping older ones.
    pub fn current(&mut self, window: Duration) -> impl Iterator<Item = &str> {
        let now = Instant::now();
        self.tags.retain(|(_, at)| now.duration_since(*at) < window);
        self.tags.iter().map(|(tag, _)| tag.as_str())
    }

    /// Reserves tags a push is about to create, before its manifest is forwarded.
    pub fn record(&mut self, tags: impl IntoIterator<Item = String>) {
        let now = Instant::now();
        for tag in tags {
            self.tags.retain(|(t, _)| *t != tag);
            self.tags.push((tag, now));
        }
    }

    /// Drops the reservations of tags the registry did not create (it refused the push).
    pub fn forget(&mut self, tags: &[String]) {
        self.tags.retain(|(t, _)| !tags.contains(t));
    }
}

/// One lock per repository. Holding a repository's guard serialises pushes that create tags
/// in it, from the count to the upstream's answer; other repositories never wait.
#[derive(Debug, Default)]
pub struct TagLedger {
    repositories: Mutex<HashMap<RepositoryName, Arc<AsyncMutex<RecentTags>>>>,
}

/// Entries kept before idle repositories are dropped from the ledger.
const PRUNE_ABOVE: usize = 4096;

impl TagLedger {
    /// Waits for the repository's lock.
    pub async fn lock(
        &self,
        repository: &RepositoryName,
        window: Duration,
    ) -> OwnedMutexGuard<RecentTags> {
        let entry = {
            let mut map = match self.repositories.lock() {
                Ok(map) => map,
                Err(poisoned) => poisoned.into_inner(),
            };
            if map.len() > PRUNE_ABOVE {
                map.retain(|_, state| {
                    // Keep repositories someone holds or that still remember recent tags.
                    Arc::strong_count(state) > 1
                        || state
                            .try_lock()
                            .map_or(true, |mut recent| recent.current(window).next().is_some())
                });
            }
            Arc::clone(map.entry(repository.clone()).or_default())
        };
        entry.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_repository_waits_other_does_not() {
        let ledger = Arc::new(TagLedger::default());
        let a: RepositoryName = "a".parse().expect("valid");
        let b: RepositoryName = "b".parse().expect("valid");
        let window = Duration::from_secs(60);
        let mut guard = ledger.lock(&a, window).await;
        guard.record(["v1".to_owned()]);
        let other = tokio::time::timeout(Duration::from_millis(100), ledger.lock(&b, window)).await;
        assert!(other.is_ok(), "another repository must not wait");
        let same = tokio::time::timeout(Duration::from_millis(100), ledger.lock(&a, window)).await;
        assert!(same.is_err(), "the same repository must wait");
        drop(guard);
        let mut again = ledger.lock(&a, window).await;
        assert_eq!(again.current(window).collect::<Vec<_>>(), ["v1"]);
        assert_eq!(again.current(Duration::ZERO).count(), 0);
    }
}
