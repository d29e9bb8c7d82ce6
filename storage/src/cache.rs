//! [`CachedStore`]: a byte-range LRU in front of another [`ObjectStore`], itself an [`ObjectStore`] so it stacks
//! with the other wrappers.
//!
//! Segment objects are immutable, so a cached range never goes stale while its object exists. Entries are keyed
//! by the exact `(key, start, end)` asked for: the broker reads whole runs at positions taken from the segment
//! index, so the same ranges recur and sub-range matching would buy little.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{ObjectMeta, ObjectStore, StorageError};

/// Caches `get_range` results, bounded by the total bytes held; `put`, `delete` and `list` pass through.
pub struct CachedStore {
    inner: Arc<dyn ObjectStore>,
    // A std Mutex: it is never held across `.await`, and every critical section is a few map operations.
    lru: Mutex<Lru>,
}

impl CachedStore {
    /// Wraps `inner`, holding at most `capacity_bytes` of cached ranges. A range larger than the capacity is
    /// served but not cached; a capacity of 0 disables caching.
    pub fn new(inner: Arc<dyn ObjectStore>, capacity_bytes: u64) -> Self {
        Self { inner, lru: Mutex::new(Lru::new(capacity_bytes)) }
    }

    /// Bytes currently cached.
    pub fn cached_bytes(&self) -> u64 {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        // Nothing under the lock can panic midway through an update, so a poisoned cache is still consistent.
        self.lru.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl ObjectStore for CachedStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError> {
        self.inner.put(key, body).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let cache_key = (key.to_owned(), range.start, range.end);
        if let Some(hit) = self.lock().get(&cache_key) {
            return Ok(hit);
        }
        // Two concurrent misses on one range both fetch; deduplicating them is not worth the complexity.
        let bytes = self.inner.get_range(key, range).await?;
        self.lock().insert(cache_key, bytes.clone());
        Ok(bytes)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        // Evict after the delete: a read racing it may re-insert a range of the deleted object, which is
        // harmless because keys are never reused, and the entry ages out.
        let result = self.inner.delete(key).await;
        self.lock().remove_object(key);
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        self.inner.list(prefix).await
    }
}

/// Object key, range start, range end.
type CacheKey = (String, u64, u64);

struct Entry {
    bytes: Bytes,
    /// This entry's position in `Lru::order`.
    tick: u64,
}

/// Least-recently-used map bounded by bytes: `order` maps an ever-increasing use tick to the key, so the oldest
/// entry is the first one in `order`.
struct Lru {
    capacity: u64,
    bytes: u64,
    next_tick: u64,
    entries: HashMap<CacheKey, Entry>,
    order: BTreeMap<u64, CacheKey>,
}

impl Lru {
    fn new(capacity: u64) -> Self {
        Self { capacity, bytes: 0, next_tick: 0, entries: HashMap::new(), order: BTreeMap::new() }
    }

    fn tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }

    fn get(&mut self, key: &CacheKey) -> Option<Bytes> {
        let tick = self.tick();
        let entry = self.entries.get_mut(key)?;
        if let Some(k) = self.order.remove(&entry.tick) {
            self.order.insert(tick, k);
        }
        entry.tick = tick;
        Some(entry.bytes.clone())
    }

    fn insert(&mut self, key: CacheKey, bytes: Bytes) {
        let size = bytes.len() as u64;
        if size > self.capacity {
            return;
        }
        let tick = self.tick();
        if let Some(old) = self.entries.insert(key.clone(), Entry { bytes, tick }) {
            self.order.remove(&old.tick);
            self.bytes -= old.bytes.len() as u64;
        }
        self.order.insert(tick, key);
        self.bytes += size;
        while self.bytes > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(evicted) = self.entries.remove(&oldest) {
                self.bytes -= evicted.bytes.len() as u64;
            }
        }
    }

    /// Drops every cached range of one object. A scan of all entries, which is fine because only the sweeper
    /// deletes, and rarely.
    fn remove_object(&mut self, object: &str) {
        let order = &mut self.order;
        let mut freed = 0;
        self.entries.retain(|(key, _, _), entry| {
            let keep = key != object;
            if !keep {
                order.remove(&entry.tick);
                freed += entry.bytes.len() as u64;
            }
            keep
        });
        self.bytes -= freed;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::StorageErrorKind;

    /// An in-memory store that counts `get_range` calls.
    #[derive(Default)]
    struct Counting {
        objects: Mutex<HashMap<String, Bytes>>,
        gets: AtomicUsize,
    }

    #[async_trait]
    impl ObjectStore for Counting {
        async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError> {
            self.objects.lock().unwrap().insert(key.to_owned(), body);
            Ok(())
        }

        async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            let objects = self.objects.lock().unwrap();
            let object = objects.get(key).ok_or_else(|| StorageError::not_found(key))?;
            Ok(object.slice(range.start as usize..range.end as usize))
        }

        async fn delete(&self, key: &str) -> Result<(), StorageError> {
            self.objects.lock().unwrap().remove(key);
            Ok(())
        }

        async fn list(&self, _prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
            Ok(vec![])
        }
    }

    async fn setup(capacity: u64) -> (Arc<Counting>, CachedStore) {
        let inner = Arc::new(Counting::default());
        let cached = CachedStore::new(inner.clone(), capacity);
        cached.put("a", Bytes::from_static(b"0123456789")).await.unwrap();
        cached.put("b", Bytes::from_static(b"abcdefghij")).await.unwrap();
        (inner, cached)
    }

    fn gets(inner: &Counting) -> usize {
        inner.gets.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn hits_do_not_reach_the_inner_store() {
        let (inner, cached) = setup(100).await;
        assert_eq!(cached.get_range("a", 2..5).await.unwrap(), "234");
        assert_eq!(cached.get_range("a", 2..5).await.unwrap(), "234");
        assert_eq!(gets(&inner), 1);
        // A different range of the same object is a different entry.
        assert_eq!(cached.get_range("a", 2..6).await.unwrap(), "2345");
        assert_eq!(gets(&inner), 2);
        assert_eq!(cached.cached_bytes(), 7);
    }

    #[tokio::test]
    async fn evicts_least_recently_used_by_bytes() {
        let (inner, cached) = setup(10).await;
        cached.get_range("a", 0..4).await.unwrap();
        cached.get_range("b", 0..4).await.unwrap();
        cached.get_range("a", 0..4).await.unwrap(); // hit: "a" is now the most recent
        assert_eq!(gets(&inner), 2);

        cached.get_range("a", 4..8).await.unwrap(); // 12 bytes > 10: evicts b's range
        assert_eq!(gets(&inner), 3);
        assert_eq!(cached.cached_bytes(), 8);

        cached.get_range("a", 0..4).await.unwrap();
        assert_eq!(gets(&inner), 3);
        cached.get_range("b", 0..4).await.unwrap();
        assert_eq!(gets(&inner), 4);
        assert!(cached.cached_bytes() <= 10);
    }

    #[tokio::test]
    async fn ranges_larger_than_capacity_are_not_cached() {
        let (inner, cached) = setup(4).await;
        cached.get_range("a", 0..5).await.unwrap();
        cached.get_range("a", 0..5).await.unwrap();
        assert_eq!(gets(&inner), 2);
        assert_eq!(cached.cached_bytes(), 0);
    }

    #[tokio::test]
    async fn delete_evicts_that_object_only() {
        let (inner, cached) = setup(100).await;
        cached.get_range("a", 0..2).await.unwrap();
        cached.get_range("a", 2..4).await.unwrap();
        cached.get_range("b", 0..2).await.unwrap();
        cached.delete("a").await.unwrap();
        assert_eq!(cached.cached_bytes(), 2);

        let err = cached.get_range("a", 0..2).await.unwrap_err();
        assert_eq!(err.kind(), StorageErrorKind::NotFound);
        cached.get_range("b", 0..2).await.unwrap();
        assert_eq!(gets(&inner), 4);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let (inner, cached) = setup(100).await;
        assert!(cached.get_range("missing", 0..1).await.is_err());
        assert!(cached.get_range("missing", 0..1).await.is_err());
        assert_eq!(gets(&inner), 2);
    }

    #[tokio::test]
    async fn zero_capacity_disables_caching() {
        let (inner, cached) = setup(0).await;
        cached.get_range("a", 0..1).await.unwrap();
        cached.get_range("a", 0..1).await.unwrap();
        assert_eq!(gets(&inner), 2);
    }
}
