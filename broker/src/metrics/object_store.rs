//! [`InstrumentedStore`]: an [`ObjectStore`] that counts and times every call of the store beneath it,
//! after slatedb's `instrumented_object_store`. The agent stacks it under the read cache, so only
//! requests that reach the store are counted (cache hits are not), and over the retry wrapper of
//! `s3://`, so a request retried inside counts once, with its final outcome and total time.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use prometheus::{Histogram, IntCounter, IntCounterVec};
use streamhouse_storage::{ObjectMeta, ObjectStore, StorageError, StorageErrorKind};

use super::Registrar;

/// The store operations, each the `operation` label of its series.
#[derive(Debug, Clone, Copy)]
enum Op {
    Put,
    GetRange,
    Delete,
    List,
}

impl Op {
    const ALL: [Op; 4] = [Op::Put, Op::GetRange, Op::Delete, Op::List];

    fn label(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::GetRange => "get_range",
            Op::Delete => "delete",
            Op::List => "list",
        }
    }
}

/// `outcome` label values: `ok`, or the kind of the error, which says what a caller does about it.
const OUTCOMES: [&str; 5] = ["ok", "not_found", "unavailable", "corrupt", "invalid"];

fn outcome_index(result: &Result<impl Sized, StorageError>) -> usize {
    match result {
        Ok(_) => 0,
        Err(e) => match e.kind() {
            StorageErrorKind::NotFound => 1,
            StorageErrorKind::Unavailable => 2,
            StorageErrorKind::Corrupt => 3,
            StorageErrorKind::Invalid => 4,
        },
    }
}

/// One operation's handles: a counter per outcome and its duration.
#[derive(Clone)]
struct OpHandles {
    outcomes: [IntCounter; OUTCOMES.len()],
    duration: Histogram,
}

/// Handles for every (operation, outcome), made once: a store call costs no label lookup.
#[derive(Clone)]
pub struct ObjectStoreMetrics {
    ops: Arc<[OpHandles; Op::ALL.len()]>,
}

impl ObjectStoreMetrics {
    pub(super) fn new(reg: &Registrar) -> ObjectStoreMetrics {
        let requests = reg.int_counter_vec(
            "streamhouse_object_store_requests_total",
            "Object-store requests, by operation and outcome (ok, or the error's kind: not_found, unavailable, corrupt, invalid).",
            &["operation", "outcome"],
        );
        let duration = reg.histogram_vec(
            "streamhouse_object_store_request_duration_seconds",
            "Duration of object-store requests (retries included), by operation.",
            &["operation"],
        );
        let handles = |op: Op| OpHandles {
            outcomes: OUTCOMES.map(|o| counter(&requests, op, o)),
            duration: duration.with_label_values(&[op.label()]),
        };
        ObjectStoreMetrics { ops: Arc::new(Op::ALL.map(handles)) }
    }

    fn observe<T>(&self, op: Op, started: Instant, result: &Result<T, StorageError>) {
        let h = &self.ops[op as usize];
        h.outcomes[outcome_index(result)].inc();
        h.duration.observe(started.elapsed().as_secs_f64());
    }
}

fn counter(requests: &IntCounterVec, op: Op, outcome: &str) -> IntCounter {
    requests.with_label_values(&[op.label(), outcome])
}

pub struct InstrumentedStore {
    inner: Arc<dyn ObjectStore>,
    metrics: ObjectStoreMetrics,
}

impl InstrumentedStore {
    pub fn new(inner: Arc<dyn ObjectStore>, metrics: ObjectStoreMetrics) -> Self {
        InstrumentedStore { inner, metrics }
    }

    async fn timed<T>(&self, op: Op, call: impl Future<Output = Result<T, StorageError>>) -> Result<T, StorageError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics.observe(op, started, &result);
        result
    }
}

#[async_trait]
impl ObjectStore for InstrumentedStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError> {
        self.timed(Op::Put, self.inner.put(key, body)).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        self.timed(Op::GetRange, self.inner.get_range(key, range)).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.timed(Op::Delete, self.inner.delete(key)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        self.timed(Op::List, self.inner.list(prefix)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[tokio::test]
    async fn counts_each_call_by_operation_and_outcome() {
        let dir = tempfile::tempdir().expect("temp dir");
        let local = streamhouse_storage::open(&format!("file://{}", dir.path().display())).await.expect("local store");
        let m = Metrics::new();
        let store = InstrumentedStore::new(local, m.object_store.clone());
        store.put("a/b", Bytes::from_static(b"hello")).await.expect("put");
        assert!(store.put("a/b", Bytes::from_static(b"again")).await.is_err(), "a key is written once");
        assert_eq!(store.get_range("a/b", 0..5).await.expect("get"), Bytes::from_static(b"hello"));
        assert!(store.get_range("a/missing", 0..1).await.is_err());
        let put = &m.object_store.ops[Op::Put as usize];
        let get = &m.object_store.ops[Op::GetRange as usize];
        assert_eq!(put.outcomes[0].get(), 1);
        assert_eq!(put.outcomes.iter().map(IntCounter::get).sum::<u64>(), 2, "the refused second put counts as a failure");
        assert_eq!((get.outcomes[0].get(), get.outcomes[1].get()), (1, 1), "one ok, one not_found");
        assert_eq!(put.duration.get_sample_count(), 2);
    }
}
