//! The upload sessions the gateway has seen, each with the bytes the registry said it holds.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use limits_core::RepositoryName;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// What the gateway knows of one upload session: the bytes the registry said it holds, or
/// nothing (never seen, or a request to it did not finish), in which case the registry is asked.
type Held = Option<u64>;

/// The sessions by key, and their keys oldest first.
type SessionMap = (HashMap<String, Arc<AsyncMutex<Held>>>, VecDeque<String>);

/// The upload sessions the gateway has seen, by repository and upload id (both decoded), each
/// behind a lock so that chunks of one session are counted one at a time. Bounded: the oldest
/// sessions no request is using are forgotten first, which costs only a status request to the
/// registry when they go on.
#[derive(Debug)]
pub struct UploadSessions {
    capacity: usize,
    inner: Mutex<SessionMap>,
}

impl UploadSessions {
    /// Remembers at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    fn key(repository: &RepositoryName, id: &str) -> String {
        format!("{repository}/blobs/uploads/{id}")
    }

    /// Waits for the session's lock.
    pub async fn lock(&self, repository: &RepositoryName, id: &str) -> OwnedMutexGuard<Held> {
        let key = Self::key(repository, id);
        let entry = {
            let mut inner = match self.inner.lock() {
                Ok(inner) => inner,
                Err(poisoned) => poisoned.into_inner(),
            };
            let (map, order) = &mut *inner;
            match map.get(&key) {
                Some(entry) => Arc::clone(entry),
                None => {
                    let entry = Arc::new(AsyncMutex::new(None));
                    map.insert(key.clone(), Arc::clone(&entry));
                    order.push_back(key);
                    // Forget the oldest sessions no request is using: a session whose lock is
                    // held stays, so that a second chunk cannot get a lock of its own.
                    let mut kept = 0;
                    while order.len() > self.capacity && kept < order.len() {
                        let Some(oldest) = order.pop_front() else {
                            break;
                        };
                        let in_use = map.get(&oldest).is_some_and(|e| Arc::strong_count(e) > 1);
                        if in_use {
                            order.push_back(oldest);
                            kept += 1;
                        } else {
                            map.remove(&oldest);
                        }
                    }
                    entry
                }
            }
        };
        entry.lock_owned().await
    }

    /// Forgets a finished session.
    pub fn remove(&self, repository: &RepositoryName, id: &str) {
        let key = Self::key(repository, id);
        let mut inner = match self.inner.lock() {
            Ok(inner) => inner,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (map, order) = &mut *inner;
        if map.remove(&key).is_some() {
            order.retain(|k| *k != key);
        }
    }

    /// Number of sessions remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |inner| inner.0.len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn sessions_are_bounded_and_locked_one_at_a_time() {
        let sessions = UploadSessions::new(2);
        let repository: RepositoryName = "a".parse().expect("name");
        *sessions.lock(&repository, "1").await = Some(5);
        *sessions.lock(&repository, "2").await = Some(7);
        {
            let _held = sessions.lock(&repository, "2").await;
            let again =
                tokio::time::timeout(Duration::from_millis(50), sessions.lock(&repository, "2"))
                    .await;
            assert!(again.is_err(), "one request per session at a time");
        }
        *sessions.lock(&repository, "3").await = Some(9);
        assert_eq!(sessions.len(), 2);
        // The oldest session is forgotten: unknown again.
        assert_eq!(*sessions.lock(&repository, "1").await, None);

        sessions.remove(&repository, "1");
        assert_eq!(*sessions.lock(&repository, "3").await, Some(9));
        // A session in use is never forgotten, however many others come.
        let busy = sessions.lock(&repository, "busy").await;
        for id in ["x", "y", "z"] {
            *sessions.lock(&repository, id).await = Some(1);
        }
        let again = tokio::time::timeout(
            Duration::from_millis(50),
            sessions.lock(&repository, "busy"),
        )
        .await;
        assert!(again.is_err(), "the busy session got a second lock");
        drop(busy);
    }
}
