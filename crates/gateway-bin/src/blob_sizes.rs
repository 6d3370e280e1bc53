//! Real blob sizes learned from the upstream, by digest. Content-addressed, so an entry never
//! goes stale; bounded, oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use oci_manifest::Digest;

/// A bounded map from digest to size in bytes.
#[derive(Debug)]
pub struct BlobSizes {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sizes: HashMap<Digest, u64>,
    order: VecDeque<Digest>,
}

impl BlobSizes {
    /// A cache holding at most `capacity` digests.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(inner) => inner,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The size of `digest`, when known.
    pub fn get(&self, digest: &Digest) -> Option<u64> {
        self.inner().sizes.get(digest).copied()
    }

    /// Remembers the size of `digest`.
    pub fn insert(&self, digest: Digest, size: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner();
        if inner.sizes.insert(digest.clone(), size).is_none() {
            inner.order.push_back(digest);
            while inner.order.len() > self.capacity {
                if let Some(oldest) = inner.order.pop_front() {
                    inner.sizes.remove(&oldest);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .expect("valid digest")
    }

    #[test]
    fn bounded_fifo() {
        let cache = BlobSizes::new(2);
        cache.insert(digest(1), 10);
        cache.insert(digest(2), 20);
        cache.insert(digest(1), 10);
        cache.insert(digest(3), 30);
        assert_eq!(cache.get(&digest(1)), None);
        assert_eq!(cache.get(&digest(2)), Some(20));
        assert_eq!(cache.get(&digest(3)), Some(30));
        let off = BlobSizes::new(0);
        off.insert(digest(1), 1);
        assert_eq!(off.get(&digest(1)), None);
    }
}
