//! The produce side of the write path: validated batches are queued for the flusher, and the
//! caller gets a receiver that resolves once the flush holding them is committed (or failed).

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

/// One partition's batches from one Produce request.
pub struct Append {
    pub partition: Arc<Partition>,
    pub batches: Vec<RecordBatch>,
    pub reply: oneshot::Sender<AppendResult>,
}

/// The agent's pending buffer: every partition's appends since the last flush, in arrival order.
pub struct WriteQueue {
    pending: Mutex<Pending>,
    wake: Notify,
    flush_bytes: usize,
    flush_interval: Duration,
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
    pub fn new(flush_bytes: usize, flush_interval: Duration) -> Self {
        WriteQueue { pending: Mutex::new(Pending::default()), wake: Notify::new(), flush_bytes, flush_interval }
    }

    /// Queues batches for `partition`. No `.await` happens between a request's decoding and this
    /// call, so appends keep the order requests arrived in on a connection.
    pub fn append(&self, partition: Arc<Partition>, batches: Vec<RecordBatch>) -> oneshot::Receiver<AppendResult> {
        let (reply, rx) = oneshot::channel();
        let size: usize = batches.iter().map(|b| b.bytes.len()).sum();
        let mut p = self.lock();
        let was_empty = p.appends.is_empty();
        p.appends.push(Append { partition, batches, reply });
        p.bytes += size;
        p.oldest.get_or_insert_with(Instant::now);
        let full = p.bytes >= self.flush_bytes;
        drop(p);
        if was_empty || full {
            self.wake.notify_one();
        }
        rx
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

    pub fn take(&self) -> Vec<Append> {
        let mut p = self.lock();
        p.bytes = 0;
        p.oldest = None;
        std::mem::take(&mut p.appends)
    }

    pub async fn wait(&self) {
        self.wake.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
