//! The produce side of the write path: validated batches are queued for the flusher, and the
//! caller gets a receiver that resolves once the flush holding them is committed (or failed).
//!
//! The queue is bounded: once it holds --write-buffer-bytes, `has_room` turns false and connections
//! stop reading requests until flushes take some (TCP back-pressure reaches the producers). A flush
//! takes appends in arrival order until it holds --flush-bytes, so no object is larger than that
//! plus one append.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use streamhouse_protocol::batch::RecordBatch;
use tokio::sync::{Notify, oneshot};

use super::Partition;
use crate::error::BrokerError;

/// Where an append landed: the base offset of its first batch (the original one for a duplicate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub log_start_offset: i64,
}

pub type AppendResult = Result<Appended, BrokerError>;

/// What an append hands back: its answer to come, and the claim its producer abandons at its deadline.
pub type Queued = (oneshot::Receiver<AppendResult>, Arc<Claim>);

/// Who decides an append's fate first: the flusher, claiming it just before the commit that makes
/// it visible, or the produce handler, abandoning it when its wait ran out and it answers
/// REQUEST_TIMED_OUT. An abandoned append is never committed. The producer was told its batch
/// failed, and librdkafka may then re-send those records under a bumped producer epoch (KIP-360),
/// which no sequence check can match to the original: had the original been committed later (its
/// flush was only slow, say an S3 PUT that hung), the records would be in the log twice.
#[derive(Debug, Default)]
pub struct Claim(AtomicU8);

const PENDING: u8 = 0;
const COMMITTING: u8 = 1;
const ABANDONED: u8 = 2;

impl Claim {
    /// The flusher's claim before committing; false if the producer was already answered.
    pub fn commit(&self) -> bool {
        self.0.compare_exchange(PENDING, COMMITTING, Ordering::AcqRel, Ordering::Acquire).map_or_else(|now| now == COMMITTING, |_| true)
    }

    /// The produce handler's claim when its wait ran out; false if the commit is under way, whose
    /// outcome the handler must wait for instead.
    pub fn abandon(&self) -> bool {
        self.0.compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire).map_or_else(|now| now == ABANDONED, |_| true)
    }
}

/// One partition's batches from one Produce request.
pub struct Append {
    pub partition: Arc<Partition>,
    pub batches: Vec<RecordBatch>,
    pub reply: oneshot::Sender<AppendResult>,
    pub claim: Arc<Claim>,
    /// The batches' size, as counted in the queue.
    bytes: usize,
}

/// The agent's pending buffer: every partition's appends since the last flush, in arrival order.
pub struct WriteQueue {
    pending: Mutex<Pending>,
    wake: Notify,
    flush_bytes: usize,
    flush_interval: Duration,
    max_pending: usize,
}

#[derive(Default)]
struct Pending {
    appends: Vec<Append>,
    bytes: usize,
    oldest: Option<Instant>,
}

/// What the flusher should do next.
pub enum Due {
    Nothing,
    At(Instant),
    Now,
}

impl WriteQueue {
    pub fn new(flush_bytes: usize, flush_interval: Duration, max_pending: usize) -> Self {
        WriteQueue { pending: Mutex::new(Pending::default()), wake: Notify::new(), flush_bytes, flush_interval, max_pending }
    }

    /// Whether more appends may be queued; false while the queue is full.
    pub fn has_room(&self) -> bool {
        self.lock().bytes < self.max_pending
    }

    /// Bytes queued and not yet taken by a flush.
    pub fn pending_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Queues batches for `partition`. No `.await` happens between a request's decoding and this
    /// call, so appends keep the order requests arrived in on a connection. Returns the answer to
    /// wait for and the append's [`Claim`].
    pub fn append(&self, partition: Arc<Partition>, batches: Vec<RecordBatch>) -> Queued {
        let (reply, rx) = oneshot::channel();
        let claim = Arc::new(Claim::default());
        let size: usize = batches.iter().map(|b| b.bytes.len()).sum();
        let mut p = self.lock();
        let was_empty = p.appends.is_empty();
        p.appends.push(Append { partition, batches, reply, claim: Arc::clone(&claim), bytes: size });
        p.bytes += size;
        p.oldest.get_or_insert_with(Instant::now);
        let full = p.bytes >= self.flush_bytes;
        drop(p);
        if was_empty || full {
            self.wake.notify_one();
        }
        (rx, claim)
    }

    pub fn due(&self) -> Due {
        let p = self.lock();
        match p.oldest {
            None => Due::Nothing,
            Some(_) if p.bytes >= self.flush_bytes => Due::Now,
            Some(t) => {
                let at = t + self.flush_interval;
                if at <= Instant::now() { Due::Now } else { Due::At(at) }
            }
        }
    }

    /// The next flush's appends: the oldest ones, until they hold --flush-bytes. What is left stays
    /// due as soon as it was (it is at least as old as what was taken).
    pub fn take(&self) -> Vec<Append> {
        let mut p = self.lock();
        let mut size = 0;
        let count = p
            .appends
            .iter()
            .take_while(|a| {
                let before = size;
                size += a.bytes;
                before < self.flush_bytes
            })
            .count();
        let rest = p.appends.split_off(count);
        let taken = std::mem::replace(&mut p.appends, rest);
        p.bytes -= taken.iter().map(|a| a.bytes).sum::<usize>();
        if p.appends.is_empty() {
            p.oldest = None;
        }
        taken
    }

    pub async fn wait(&self) {
        self.wake.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use streamhouse_metadata::PartitionId;
    use streamhouse_protocol::batch::RecordBatch;

    use super::*;

    /// A batch of `size` bytes; only the size matters to the queue.
    fn batch(size: usize) -> Vec<RecordBatch> {
        let bytes = Bytes::from(vec![0u8; size.max(61)]);
        let header = streamhouse_protocol::batch::BatchHeader::parse(&bytes).expect("61 bytes hold a header");
        vec![RecordBatch { header, bytes: bytes.slice(..size) }]
    }

    #[test]
    fn a_flush_takes_up_to_flush_bytes_and_a_full_queue_has_no_room() {
        let q = WriteQueue::new(100, Duration::from_millis(1), 250);
        let p = Arc::new(super::super::Partition::new(
            PartitionId { topic_id: uuid::Uuid::nil(), partition: 0 },
            "t".into(),
            0,
            0,
            0,
            vec![],
            super::super::tail::TailCache::new(0, super::super::tail::TailBudget::new(0)),
        ));
        for _ in 0..3 {
            let _answer = q.append(Arc::clone(&p), batch(60));
        }
        assert!(q.has_room(), "180 of 250 bytes");
        let _answer = q.append(Arc::clone(&p), batch(80));
        assert!(!q.has_room(), "260 of 250 bytes");
        assert_eq!(q.take().len(), 2, "60 + 60 reach the 100-byte flush size");
        assert_eq!(q.pending_bytes(), 140);
        assert!(q.has_room());
        assert!(matches!(q.due(), Due::Now), "the rest is over flush-bytes: due at once");
        assert_eq!(q.take().len(), 2);
        assert!(matches!(q.due(), Due::Nothing));
    }

    #[test]
    fn an_append_is_either_committed_or_abandoned_never_both() {
        let c = Claim::default();
        assert!(c.abandon() && c.abandon(), "abandoned, and stays so");
        assert!(!c.commit(), "an abandoned append is not committed");
        let c = Claim::default();
        assert!(c.commit() && c.commit(), "claimed for a commit, and stays so");
        assert!(!c.abandon(), "the handler waits for a commit under way");
    }
}
