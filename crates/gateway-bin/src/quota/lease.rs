//! The namespace leases: a per-namespace async mutex in this process, and with
//! `--coordination redis://` the namespace's lease in Redis as well (taken after the local one,
//! so one process has at most one push polling Redis per namespace). Always taken before the
//! repository's lease, so two pushes never wait on each other crosswise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::OwnedMutexGuard;

use crate::coordination::{CoordinationError, RedisNamespaceLease, RedisNamespaces};

/// Leases per namespace.
#[derive(Debug, Default)]
pub struct NamespaceLeases {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    shared: Option<SharedLog>,
}

/// The namespaces' logs in Redis, and how far this process applied each.
#[derive(Debug)]
struct SharedLog {
    redis: RedisNamespaces,
    applied: Arc<Mutex<HashMap<String, u64>>>,
}

/// A namespace's lease: held until dropped.
#[derive(Debug)]
pub struct NamespaceLease {
    _guard: OwnedMutexGuard<()>,
    /// The lease in Redis, when the namespace is shared with other replicas.
    pub shared: Option<SharedLease>,
}

/// A namespace's lease in Redis, with the log of the pushes admitted in the namespace.
#[derive(Debug)]
pub struct SharedLease {
    /// The lease and the log.
    pub redis: RedisNamespaceLease,
    namespace: String,
    applied: Arc<Mutex<HashMap<String, u64>>>,
}

impl SharedLease {
    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Every entry of the log up to the lease's is applied.
    pub fn caught_up(&self) {
        lock(&self.applied).insert(self.namespace.clone(), self.redis.seq());
    }

    /// This process appended entry `seq` (and applied it already).
    pub fn appended(&self, seq: u64) {
        let mut applied = lock(&self.applied);
        if let Some(last) = applied.get_mut(&self.namespace) {
            if last.checked_add(1) == Some(seq) {
                *last = seq;
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NamespaceLeases {
    /// Leases in this process, and with `shared` in Redis too.
    pub fn new(shared: Option<RedisNamespaces>) -> Self {
        NamespaceLeases {
            locks: Mutex::default(),
            shared: shared.map(|redis| SharedLog {
                redis,
                applied: Arc::default(),
            }),
        }
    }

    /// Waits for `namespace`'s lease.
    pub async fn lease(&self, namespace: &str) -> Result<NamespaceLease, CoordinationError> {
        let namespace_lock = {
            let mut locks = lock(&self.locks);
            if locks.len() >= 1024 {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            match locks.get(namespace).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(namespace.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        let guard = namespace_lock.lock_owned().await;
        let shared = match &self.shared {
            None => None,
            Some(log) => {
                let applied = lock(&log.applied).get(namespace).copied();
                Some(SharedLease {
                    redis: log.redis.lease(namespace, applied).await?,
                    namespace: namespace.to_owned(),
                    applied: Arc::clone(&log.applied),
                })
            }
        };
        Ok(NamespaceLease {
            _guard: guard,
            shared,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn leases_are_per_namespace() {
        let leases = NamespaceLeases::default();
        let wait = Duration::from_millis(50);
        let held = leases.lease("team").await.expect("local");
        let other = tokio::time::timeout(wait, leases.lease("b"));
        assert!(other.await.is_ok(), "another namespace is free");
        let same = tokio::time::timeout(wait, leases.lease("team"));
        assert!(same.await.is_err(), "the same namespace waits");
        drop(held);
        let again = tokio::time::timeout(wait, leases.lease("team"));
        assert!(again.await.is_ok());
    }
}
