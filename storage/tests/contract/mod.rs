//! The [`ObjectStore`] contract: what every backend must do, written once as functions over `&dyn ObjectStore`
//! and run against each backend (`tests/local.rs`, `tests/s3.rs`). Each function uses its own keys, so they
//! may share a store, but each test gives them an empty one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use streamhouse_storage::retry::RetryingStore;
use streamhouse_storage::{ObjectMeta, ObjectStore, StorageError, StorageErrorKind};

fn keys(metas: &[ObjectMeta]) -> Vec<&str> {
    metas.iter().map(|m| m.key.as_str()).collect()
}

pub async fn put_then_get_ranges(store: &dyn ObjectStore) {
    let body = Bytes::from_static(b"hello world");
    store.put("segments/1/a.seg", body).await.unwrap();
    assert_eq!(store.get_range("segments/1/a.seg", 0..5).await.unwrap(), "hello");
    assert_eq!(store.get_range("segments/1/a.seg", 6..11).await.unwrap(), "world");
    assert_eq!(store.get_range("segments/1/a.seg", 0..11).await.unwrap(), "hello world");
    assert_eq!(store.get_range("segments/1/a.seg", 4..5).await.unwrap(), "o");
    // Empty ranges, at the end included.
    assert_eq!(store.get_range("segments/1/a.seg", 11..11).await.unwrap(), "");
    assert_eq!(store.get_range("segments/1/a.seg", 3..3).await.unwrap(), "");

    // A larger object with every byte value, read back in pieces.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    store.put("segments/1/big.seg", Bytes::from(big.clone())).await.unwrap();
    for range in [0..1, 1000..70_000, 299_999..300_000, 0..300_000] {
        let got = store.get_range("segments/1/big.seg", range.clone()).await.unwrap();
        assert_eq!(got, big[range.start as usize..range.end as usize], "range {range:?}");
    }
}

pub async fn missing_object_is_not_found(store: &dyn ObjectStore) {
    for range in [0..1, 0..0] {
        let err = store.get_range("segments/9/nope.seg", range).await.unwrap_err();
        assert_eq!(err.kind(), StorageErrorKind::NotFound, "{err}");
        assert!(!err.is_retriable());
    }
}

pub async fn range_past_end_is_corrupt(store: &dyn ObjectStore) {
    store.put("past/end", Bytes::from_static(b"abc")).await.unwrap();
    // Overrunning the end (S3 would silently shorten it), starting at or past the end (S3 answers 416), and an
    // empty range past the end.
    for range in [1..4, 0..100, 3..4, 10..20, 4..4] {
        let err = store.get_range("past/end", range.clone()).await.unwrap_err();
        assert_eq!(err.kind(), StorageErrorKind::Corrupt, "range {range:?}: {err}");
        assert!(!err.is_retriable());
    }
    #[allow(clippy::reversed_empty_ranges)]
    let err = store.get_range("past/end", 2..1).await.unwrap_err();
    assert_eq!(err.kind(), StorageErrorKind::Invalid, "{err}");
}

pub async fn delete_is_idempotent(store: &dyn ObjectStore) {
    store.put("del/a", Bytes::from_static(b"x")).await.unwrap();
    store.delete("del/a").await.unwrap();
    store.delete("del/a").await.unwrap();
    store.delete("del/never-written").await.unwrap();
    let err = store.get_range("del/a", 0..1).await.unwrap_err();
    assert_eq!(err.kind(), StorageErrorKind::NotFound, "{err}");
    assert!(store.list("del/").await.unwrap().is_empty());
}

pub async fn put_never_overwrites(store: &dyn ObjectStore) {
    store.put("once/k", Bytes::from_static(b"first")).await.unwrap();
    let err = store.put("once/k", Bytes::from_static(b"second!")).await.unwrap_err();
    assert!(err.is_already_exists(), "{err}");
    assert_eq!(err.kind(), StorageErrorKind::Invalid);
    assert_eq!(store.get_range("once/k", 0..5).await.unwrap(), "first");
    let listed = store.list("once/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, 5);
}

pub async fn list_filters_by_prefix(store: &dyn ObjectStore) {
    for key in ["segments/1/b.seg", "segments/1/a.seg", "segments/10/c.seg", "segments/2/d.seg", "other"] {
        store.put(key, Bytes::from(key.to_owned())).await.unwrap();
    }
    assert_eq!(keys(&store.list("segments/1/").await.unwrap()), ["segments/1/a.seg", "segments/1/b.seg"]);
    // A prefix may end mid-component.
    assert_eq!(keys(&store.list("segments/1").await.unwrap()), ["segments/1/a.seg", "segments/1/b.seg", "segments/10/c.seg"]);
    assert_eq!(
        keys(&store.list("").await.unwrap()),
        ["other", "segments/1/a.seg", "segments/1/b.seg", "segments/10/c.seg", "segments/2/d.seg"]
    );
    assert!(store.list("nothing/here/").await.unwrap().is_empty());

    let listed = store.list("segments/2/").await.unwrap();
    assert_eq!(listed[0].size, "segments/2/d.seg".len() as u64);
    // Written within the last hour, by a clock that agrees with ours.
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!((now_ms - listed[0].last_modified_ms).abs() < 3_600_000, "last_modified_ms {} vs now {now_ms}", listed[0].last_modified_ms);
}

/// Enough objects for several list pages when the store uses a small page size.
pub async fn list_returns_every_object(store: &dyn ObjectStore, count: usize) {
    for i in 0..count {
        store.put(&format!("many/{i:04}"), Bytes::from(vec![1; i])).await.unwrap();
    }
    store.put("manyx/not-this", Bytes::from_static(b"x")).await.unwrap();
    let listed = store.list("many/").await.unwrap();
    let expected: Vec<String> = (0..count).map(|i| format!("many/{i:04}")).collect();
    assert_eq!(keys(&listed), expected);
    for (i, meta) in listed.iter().enumerate() {
        assert_eq!(meta.size, i as u64);
    }
}

pub async fn bad_keys_are_invalid(store: &dyn ObjectStore) {
    for key in ["", "/abs", "a/../b", "..", "a//b", "a/", "./a", "a/.tmp", "a\0b"] {
        let err = store.put(key, Bytes::from_static(b"x")).await.unwrap_err();
        assert_eq!(err.kind(), StorageErrorKind::Invalid, "key {key:?}");
        let err = store.get_range(key, 0..1).await.unwrap_err();
        assert_eq!(err.kind(), StorageErrorKind::Invalid, "key {key:?}");
        let err = store.delete(key).await.unwrap_err();
        assert_eq!(err.kind(), StorageErrorKind::Invalid, "key {key:?}");
    }
    let err = store.list("../").await.unwrap_err();
    assert_eq!(err.kind(), StorageErrorKind::Invalid);
}

/// Passes calls through, but reports the first `put` as failed (retriable) after it has landed: a timeout
/// that fired after the store had the object.
struct LandsThenFails {
    inner: Arc<dyn ObjectStore>,
    puts: AtomicUsize,
}

#[async_trait]
impl ObjectStore for LandsThenFails {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError> {
        self.inner.put(key, body).await?;
        if self.puts.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(StorageError::unavailable(
                "simulated timeout after the put landed",
                std::io::Error::from(std::io::ErrorKind::TimedOut),
            ));
        }
        Ok(())
    }
    async fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Bytes, StorageError> {
        self.inner.get_range(key, range).await
    }
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        self.inner.list(prefix).await
    }
}

/// The retry layer turns "already exists" on a retried put into success: the earlier attempt wrote it.
pub async fn retried_put_that_landed_succeeds(store: Arc<dyn ObjectStore>) {
    let flaky = Arc::new(LandsThenFails { inner: store.clone(), puts: AtomicUsize::new(0) });
    let retrying = RetryingStore::new(flaky.clone());
    retrying.put("retried/k", Bytes::from_static(b"payload")).await.unwrap();
    assert_eq!(flaky.puts.load(Ordering::SeqCst), 1, "the second attempt found the object");
    assert_eq!(store.get_range("retried/k", 0..7).await.unwrap(), "payload");
    // A first attempt that finds the key taken is still an error.
    let err = retrying.put("retried/k", Bytes::from_static(b"other")).await.unwrap_err();
    assert!(err.is_already_exists(), "{err}");
}
