//! [`RetryingStore`]: retries transient failures of another [`ObjectStore`], itself an [`ObjectStore`] so it
//! stacks with the other wrappers.
//!
//! Only errors of kind `Unavailable` are retried (`StorageError::is_retriable`); `NotFound`, `Corrupt` and
//! `Invalid` return at once, since the same call would fail the same way. Waits grow exponentially with full
//! jitter (a uniform draw in `0..=min(cap, base * 2^n)`), which spreads out many agents retrying against a
//! throttling store. After the last attempt the last error is returned as it is, still `Unavailable`, so the
//! broker answers with a retriable Kafka error.
//!
//! This wrapper owns the retry policy of remote backends: `S3Store` turns the SDK's own retries off, so a
//! failure is never retried twice over (SDK attempts times ours).
//!
//! A retried `put` that finds its key taken ([`StorageError::is_already_exists`]) succeeds: keys are unique
//! per write (`paths`), so the object there is an earlier attempt of this same put that landed although we saw
//! it fail (say, a timeout after S3 stored it), and its bytes are ours. A first attempt that finds its key
//! taken still fails: that is two writers on one key, a bug.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{ObjectMeta, ObjectStore, StorageError};

/// How [`RetryingStore`] retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; 1 means never retry.
    pub max_attempts: u32,
    /// The cap of the first wait; each later cap doubles.
    pub base_delay: Duration,
    /// No wait is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, waits capped at 50, 100, 200, 400 and 800 ms: at most about 1.5 s of waiting (0.8 s on
    /// average) on top of the attempts themselves, short enough for a producer's request timeout.
    fn default() -> Self {
        Self { max_attempts: 6, base_delay: Duration::from_millis(50), max_delay: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    /// The largest wait after the `failures`-th failed attempt (1-based): `min(max_delay, base * 2^(n-1))`.
    fn cap(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Retries the `Unavailable` failures of an inner store; see the module doc.
pub struct RetryingStore {
    inner: Arc<dyn ObjectStore>,
    policy: RetryPolicy,
    jitter: Jitter,
}

impl RetryingStore {
    /// Wraps `inner` with the default [`RetryPolicy`].
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self::with_policy(inner, RetryPolicy::default())
    }

    pub fn with_policy(inner: Arc<dyn ObjectStore>, policy: RetryPolicy) -> Self {
        Self { inner, policy, jitter: Jitter::new() }
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Runs `call` until it succeeds, fails with a non-retriable error, or has used every attempt.
    /// `accept` may turn an error into a success; it is told whether an earlier attempt failed.
    async fn retry<T, F, Fut>(
        &self,
        op: &'static str,
        key: &str,
        mut call: F,
        accept: impl Fn(&StorageError, bool) -> Option<T>,
    ) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StorageError>>,
    {
        let max_attempts = self.policy.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let err = match call().await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if let Some(value) = accept(&err, attempt > 1) {
                return Ok(value);
            }
            if !err.is_retriable() || attempt >= max_attempts {
                return Err(err);
            }
            let delay = self.jitter.below(self.policy.cap(attempt));
            tracing::warn!(
                op,
                key,
                attempt,
                max_attempts,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %err,
                "object store call failed, retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

fn never<T>(_: &StorageError, _: bool) -> Option<T> {
    None
}

#[async_trait]
impl ObjectStore for RetryingStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError> {
        self.retry(
            "put",
            key,
            || self.inner.put(key, body.clone()),
            |err, retried| {
                if retried && err.is_already_exists() {
                    tracing::info!(key, "retried put found its object already written: an earlier attempt landed");
                    return Some(());
                }
                None
            },
        )
        .await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        self.retry("get_range", key, || self.inner.get_range(key, range.clone()), never).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.retry("delete", key, || self.inner.delete(key), never).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        self.retry("list", prefix, || self.inner.list(prefix), never).await
    }
}

/// Lock-free random draws for jitter: a SplitMix64 sequence on an atomic counter. Statistical quality is
/// ample for spreading retries and it needs no dependency; it is not for anything secret.
struct Jitter {
    state: AtomicU64,
}

impl Jitter {
    fn new() -> Self {
        // Distinct seeds per store and per process, so agents that fail together do not retry in step.
        static STORES: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let seed = nanos ^ u64::from(std::process::id()).rotate_left(32) ^ STORES.fetch_add(1, Ordering::Relaxed).wrapping_mul(GAMMA);
        Self { state: AtomicU64::new(seed) }
    }

    fn next_u64(&self) -> u64 {
        let mut z = self.state.fetch_add(GAMMA, Ordering::Relaxed).wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform draw in `0..=cap`, at microsecond resolution.
    fn below(&self, cap: Duration) -> Duration {
        let cap_us = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        if cap_us == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.next_u64() % cap_us.saturating_add(1))
    }
}

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio::time::Instant;

    use super::*;
    use crate::StorageErrorKind;

    /// Fails the first `failures` calls of every operation with `error()`, then succeeds; counts calls.
    struct Flaky {
        failures: usize,
        error: fn() -> StorageError,
        calls: AtomicUsize,
    }

    impl Flaky {
        fn new(failures: usize, error: fn() -> StorageError) -> Arc<Self> {
            Arc::new(Self { failures, error, calls: AtomicUsize::new(0) })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        fn call(&self) -> Result<(), StorageError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.failures { Err((self.error)()) } else { Ok(()) }
        }
    }

    #[async_trait]
    impl ObjectStore for Flaky {
        async fn put(&self, _key: &str, _body: Bytes) -> Result<(), StorageError> {
            self.call()
        }
        async fn get_range(&self, _key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
            self.call()?;
            Ok(Bytes::from(vec![7; (range.end - range.start) as usize]))
        }
        async fn delete(&self, _key: &str) -> Result<(), StorageError> {
            self.call()
        }
        async fn list(&self, _prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
            self.call()?;
            Ok(vec![])
        }
    }

    fn unavailable() -> StorageError {
        StorageError::unavailable("503 SlowDown", std::io::Error::other("throttled"))
    }

    fn not_found() -> StorageError {
        StorageError::not_found("k")
    }

    fn retrying(inner: Arc<Flaky>) -> RetryingStore {
        RetryingStore::new(inner)
    }

    #[tokio::test(start_paused = true)]
    async fn retries_unavailable_until_success() {
        let inner = Flaky::new(3, unavailable);
        let store = retrying(inner.clone());
        let started = Instant::now();
        assert_eq!(store.get_range("k", 0..2).await.unwrap(), vec![7, 7]);
        assert_eq!(inner.calls(), 4);
        // Three waits, capped at 50 + 100 + 200 ms.
        assert!(started.elapsed() <= Duration::from_millis(350));
    }

    #[tokio::test(start_paused = true)]
    async fn every_operation_retries() {
        let inner = Flaky::new(1, unavailable);
        let store = retrying(inner.clone());
        store.put("k", Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(inner.calls(), 2);
        let inner = Flaky::new(1, unavailable);
        let store = retrying(inner.clone());
        store.delete("k").await.unwrap();
        assert_eq!(inner.calls(), 2);
        let inner = Flaky::new(1, unavailable);
        let store = retrying(inner.clone());
        store.list("p/").await.unwrap();
        assert_eq!(inner.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn never_retries_a_non_retriable_error() {
        let inner = Flaky::new(1, not_found);
        let store = retrying(inner.clone());
        let err = store.get_range("k", 0..1).await.unwrap_err();
        assert_eq!(err.kind(), StorageErrorKind::NotFound);
        assert_eq!(inner.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts_with_the_last_error() {
        let inner = Flaky::new(usize::MAX, unavailable);
        let store = retrying(inner.clone());
        let started = Instant::now();
        let err = store.delete("k").await.unwrap_err();
        assert_eq!(err.kind(), StorageErrorKind::Unavailable);
        assert_eq!(inner.calls(), 6);
        assert!(started.elapsed() <= Duration::from_millis(50 + 100 + 200 + 400 + 800));
    }

    #[tokio::test(start_paused = true)]
    async fn one_attempt_means_no_retry() {
        let inner = Flaky::new(usize::MAX, unavailable);
        let policy = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
        let store = RetryingStore::with_policy(inner.clone(), policy);
        store.list("").await.unwrap_err();
        assert_eq!(inner.calls(), 1);
    }

    /// Fails the first put as if it timed out after the object landed; later puts find the key taken.
    struct LandedButTimedOut {
        calls: AtomicUsize,
    }

    #[async_trait]
    impl ObjectStore for LandedButTimedOut {
        async fn put(&self, key: &str, _body: Bytes) -> Result<(), StorageError> {
            match self.calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(unavailable()),
                _ => Err(StorageError::already_exists(key)),
            }
        }
        async fn get_range(&self, key: &str, _: Range<u64>) -> Result<Bytes, StorageError> {
            Err(StorageError::not_found(key))
        }
        async fn delete(&self, _key: &str) -> Result<(), StorageError> {
            Ok(())
        }
        async fn list(&self, _prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
            Ok(vec![])
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_retried_put_that_finds_its_key_taken_succeeds() {
        let inner = Arc::new(LandedButTimedOut { calls: AtomicUsize::new(0) });
        let store = RetryingStore::new(inner.clone());
        store.put("k", Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_put_that_finds_its_key_taken_fails_at_once() {
        let inner = Flaky::new(1, || StorageError::already_exists("k"));
        let store = retrying(inner.clone());
        let err = store.put("k", Bytes::from_static(b"x")).await.unwrap_err();
        assert!(err.is_already_exists());
        assert_eq!(inner.calls(), 1);
    }

    #[test]
    fn caps_double_up_to_the_maximum() {
        let policy = RetryPolicy::default();
        let caps: Vec<_> = (1..=8).map(|n| policy.cap(n).as_millis()).collect();
        assert_eq!(caps, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(policy.cap(200), Duration::from_secs(2));
    }

    #[test]
    fn jitter_stays_within_the_cap_and_varies() {
        let jitter = Jitter::new();
        let cap = Duration::from_millis(100);
        let draws: Vec<_> = (0..1000).map(|_| jitter.below(cap)).collect();
        assert!(draws.iter().all(|d| *d <= cap));
        assert!(draws.iter().any(|d| *d < cap / 4));
        assert!(draws.iter().any(|d| *d > cap * 3 / 4));
        assert_eq!(jitter.below(Duration::ZERO), Duration::ZERO);
    }
}
