//! The partitions this agent leads, and the write and read paths through them.
//!
//! - `table`: which partitions we lead and the topic-name lookup, shared by every handler.
//! - `producers`: idempotent-producer sequence checks (duplicate, out of order, fenced epoch).
//! - `writer`: hands validated batches to the flusher and waits for the commit.
//! - `flusher`: ONE object and ONE fenced metadata transaction per flush, for every pending partition.
//! - `tail`: recently committed batches kept in memory for tailing consumers.
//! - `reader`: fetch reads: tail cache first, then ranged reads of segment objects.

pub mod flusher;
pub mod producers;
pub mod reader;
pub mod table;
pub mod tail;
pub mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use streamhouse_metadata::{PartitionId, ProducerState};

use producers::ProducerTable;
use tail::TailCache;

/// A partition this agent leads. Its mutable state sits behind a `std::sync::Mutex` that is never
/// held across an `.await`: every critical section is a few field updates.
#[derive(Debug)]
pub struct Partition {
    pub id: PartitionId,
    pub topic: String,
    state: Mutex<PartitionState>,
    /// Flushes holding this partition that have not finished: a handoff releases the lease only
    /// once this is zero, so its own last writes are not fenced.
    flushes_in_flight: AtomicUsize,
}

/// Counts one flush of a partition as in flight for as long as it lives.
#[derive(Debug)]
pub struct InFlightFlush(Arc<Partition>);

impl InFlightFlush {
    pub fn new(partition: &Arc<Partition>) -> Self {
        partition.flushes_in_flight.fetch_add(1, Ordering::SeqCst);
        InFlightFlush(Arc::clone(partition))
    }
}

impl Drop for InFlightFlush {
    fn drop(&mut self) {
        self.0.flushes_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
pub struct PartitionState {
    pub leader_epoch: i32,
    /// One past the last committed offset: what consumers may read up to.
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Committed producer state; the flusher works on a copy and takes the producers a commit wrote
    /// back into it.
    pub producers: ProducerTable,
    /// Whether the partition's next commit also deletes the rows of producers idle past
    /// --producer-id-expiration-ms: set every check interval, and from the start (the rows a new
    /// leader did not load because they had expired are still in the store).
    pub prune_producers: bool,
    pub tail: TailCache,
    /// Set when a commit found a newer epoch: this agent must never write the partition again.
    pub fenced: bool,
}

/// A consistent copy of the fields readers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

impl Partition {
    pub fn new(
        id: PartitionId,
        topic: String,
        leader_epoch: i32,
        high_watermark: i64,
        log_start_offset: i64,
        producers: Vec<ProducerState>,
        tail: TailCache,
    ) -> Self {
        let producers = producers.into_iter().map(|p| (p.producer_id, p)).collect::<HashMap<_, _>>();
        Partition {
            id,
            topic,
            state: Mutex::new(PartitionState {
                leader_epoch,
                high_watermark,
                log_start_offset,
                producers: ProducerTable::new(producers),
                prune_producers: true,
                tail,
                fenced: false,
            }),
            flushes_in_flight: AtomicUsize::new(0),
        }
    }

    /// Whether some flush holding this partition has not finished yet.
    pub fn flushing(&self) -> bool {
        self.flushes_in_flight.load(Ordering::SeqCst) > 0
    }

    /// Runs `f` with the state locked. A poisoned lock still holds consistent data (every update is
    /// a plain field write), so it is recovered rather than propagated as a panic.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut PartitionState) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    pub fn snapshot(&self) -> Snapshot {
        self.with_state(|s| Snapshot {
            leader_epoch: s.leader_epoch,
            high_watermark: s.high_watermark,
            log_start_offset: s.log_start_offset,
        })
    }
}
