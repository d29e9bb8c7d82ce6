//! [`FaultyStore`]: injects failures, latency and hangs into another [`ObjectStore`], itself an
//! `ObjectStore` so it stacks with the other wrappers. Tests put it under an agent to see what the
//! broker does when the object store misbehaves: every producer still answered, nothing acknowledged
//! lost, no request left without an answer.
//!
//! Faults are set per operation at run time (`set_put`, `set_get`), so a test can turn one on in the
//! middle of a load and off again.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{ObjectMeta, ObjectStore, StorageError};

/// What one operation does instead of (or besides) its work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Fails at once with a retriable error.
    Fail,
    /// Waits this long, then does the work.
    Delay(Duration),
    /// Never completes.
    Hang,
    /// Does the work, then reports a retriable error anyway (the reply was lost): a put's object is
    /// there although the caller was told it failed.
    SucceedThenFail,
}

pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    put: Mutex<Fault>,
    get: Mutex<Fault>,
    injected: AtomicUsize,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner, put: Mutex::default(), get: Mutex::default(), injected: AtomicUsize::new(0) }
    }

    pub fn set_put(&self, fault: Fault) {
        *self.put.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    pub fn set_get(&self, fault: Fault) {
        *self.get.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// Operations that a fault changed so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    /// Runs `work` under `fault`.
    async fn apply<T>(&self, fault: Fault, work: impl Future<Output = Result<T, StorageError>>) -> Result<T, StorageError> {
        if fault != Fault::None {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        match fault {
            Fault::None => work.await,
            Fault::Fail => Err(injected()),
            Fault::Delay(d) => {
                tokio::time::sleep(d).await;
                work.await
            }
            Fault::Hang => std::future::pending().await,
            Fault::SucceedThenFail => {
                work.await?;
                Err(injected())
            }
        }
    }
}

fn injected() -> StorageError {
    StorageError::unavailable("injected fault", std::io::Error::other("FaultyStore"))
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError> {
        let fault = *self.put.lock().unwrap_or_else(PoisonError::into_inner);
        self.apply(fault, self.inner.put(key, body)).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let fault = *self.get.lock().unwrap_or_else(PoisonError::into_inner);
        self.apply(fault, self.inner.get_range(key, range)).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        self.inner.list(prefix).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalStore;

    #[tokio::test]
    async fn succeed_then_fail_leaves_the_object() {
        let dir = tempfile::tempdir().expect("temp dir");
        let local: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()).expect("local store"));
        let faulty = FaultyStore::new(Arc::clone(&local));
        faulty.set_put(Fault::SucceedThenFail);
        assert!(faulty.put("a", Bytes::from_static(b"x")).await.is_err());
        assert_eq!(local.get_range("a", 0..1).await.ok(), Some(Bytes::from_static(b"x")));
        faulty.set_get(Fault::Hang);
        assert!(tokio::time::timeout(Duration::from_millis(50), faulty.get_range("a", 0..1)).await.is_err());
        assert_eq!(faulty.injected(), 2);
    }
}
