//! The read path: committed batches of one partition from `offset`, within a byte budget. Data comes
//! from the tail cache when this agent leads the partition and the cache reaches back far enough,
//! else from ranged reads of segment objects (through the read cache), which any agent can do for
//! any partition. Runs are returned as slices of what was stored, never re-encoded.
//!
//! A catch-up read may span many small runs: their GETs go out several at a time (never more bytes
//! than the budget left), and once `deadline` has passed a read that holds something stops, so a
//! Fetch answers in about its max_wait whatever the object store's latency.

use std::sync::Arc;

use futures::StreamExt;
use tokio::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use streamhouse_protocol::batch;

use streamhouse_metadata::PartitionId;

use super::{Partition, Snapshot};
use crate::context::AgentContext;
use crate::error::Result;

/// Segment index rows looked up per store round trip.
const SEGMENTS_PER_LOOKUP: u32 = 16;
/// Ranged GETs of one read in flight at once.
const PARALLEL_GETS: usize = 8;

pub struct Read {
    pub snapshot: Snapshot,
    pub records: Bytes,
}

/// Where a partition's committed state comes from.
pub enum Source {
    /// We lead it: in-memory state and tail cache.
    Led(Arc<Partition>),
    /// Another agent leads it (or nobody does): its state as read from the metadata store.
    Store(PartitionId, Snapshot),
}

impl Source {
    pub fn snapshot(&self) -> Snapshot {
        match self {
            Source::Led(p) => p.snapshot(),
            Source::Store(_, s) => *s,
        }
    }

    fn id(&self) -> PartitionId {
        match self {
            Source::Led(p) => p.id,
            Source::Store(id, _) => *id,
        }
    }
}

/// The source for reading `id`: our own state if we lead it, else the stored state (cached briefly,
/// unless `fresh`).
pub async fn source(ctx: &AgentContext, id: PartitionId, fresh: bool) -> Result<Option<Source>> {
    if let Some(p) = ctx.partitions.led(&id) {
        return Ok(Some(Source::Led(p)));
    }
    let cached = if fresh { None } else { ctx.partitions.remote_state(&id) };
    let state = match cached {
        Some(s) => s,
        None => match ctx.metadata.partition_state(id).await? {
            Some(s) => {
                ctx.partitions.put_remote_state(s);
                s
            }
            None => return Ok(None),
        },
    };
    let snapshot =
        Snapshot { leader_epoch: state.leader_epoch, high_watermark: state.high_watermark, log_start_offset: state.log_start_offset };
    Ok(Some(Source::Store(id, snapshot)))
}

/// Reads from `offset`. `max_bytes` may be exceeded by the first batch only, and only when
/// `allow_oversized` (KIP-74: a consumer must always be able to make progress). After `deadline`
/// no further GET starts once something was read.
pub async fn read(
    ctx: &AgentContext,
    source: &Source,
    offset: i64,
    max_bytes: usize,
    allow_oversized: bool,
    deadline: Instant,
) -> Result<Read> {
    let snapshot = source.snapshot();
    if offset < snapshot.log_start_offset || offset > snapshot.high_watermark {
        return Err(ResponseError::OffsetOutOfRange.into());
    }
    let mut out = Collected::new(offset, max_bytes, allow_oversized);
    if offset == snapshot.high_watermark || (max_bytes == 0 && !allow_oversized) {
        return Ok(Read { snapshot, records: out.finish() });
    }
    let tail = match source {
        Source::Led(p) => p.with_state(|s| s.tail.from_offset(offset)),
        Source::Store(..) => None,
    };
    if let Some(runs) = tail {
        for run in runs {
            if !out.add(&run.bytes) {
                break;
            }
        }
        return Ok(Read { snapshot, records: out.finish() });
    }
    let mut from = offset;
    'lookup: while from < snapshot.high_watermark {
        let mut segments = ctx.metadata.segments(source.id(), from, SEGMENTS_PER_LOOKUP).await?;
        segments.retain(|s| s.base_offset < snapshot.high_watermark);
        // GET no more than the budget left can take (but always the next run).
        let mut planned = 0u64;
        let room = out.room() as u64;
        segments = segments
            .into_iter()
            .take_while(|s| {
                let first = planned == 0;
                planned += s.length;
                first || planned <= room
            })
            .collect();
        if segments.is_empty() {
            break;
        }
        let objects = Arc::clone(&ctx.objects);
        let mut runs = futures::stream::iter(segments.into_iter().map(|s| {
            let objects = Arc::clone(&objects);
            async move {
                let run = objects.get_range(&s.object_key, s.position..s.position + s.length).await;
                (s.last_offset, run)
            }
        }))
        .buffered(PARALLEL_GETS);
        while let Some((last_offset, run)) = runs.next().await {
            if !out.add(&run?) {
                break 'lookup;
            }
            from = last_offset + 1;
            if out.size > 0 && Instant::now() >= deadline {
                break 'lookup;
            }
        }
    }
    Ok(Read { snapshot, records: out.finish() })
}

/// Whole batches gathered across runs, trimmed to the fetch offset and the byte budget.
struct Collected {
    offset: i64,
    budget: usize,
    allow_oversized: bool,
    parts: Vec<Bytes>,
    size: usize,
}

impl Collected {
    fn new(offset: i64, budget: usize, allow_oversized: bool) -> Self {
        Collected { offset, budget, allow_oversized, parts: Vec::new(), size: 0 }
    }

    /// Bytes the budget still takes.
    fn room(&self) -> usize {
        self.budget.saturating_sub(self.size)
    }

    /// Takes the batches of `run` that end at or after the offset while they fit; false once full.
    fn add(&mut self, run: &Bytes) -> bool {
        let mut start = None;
        let mut end = 0;
        let mut full = false;
        for (at, h) in batch::headers(run) {
            if h.last_offset() < self.offset {
                continue;
            }
            let len = h.total_len();
            let first_ever = self.size == 0 && start.is_none();
            let taken = start.map_or(0, |s| end - s);
            if self.size + taken + len > self.budget && !(first_ever && self.allow_oversized) {
                full = true;
                break;
            }
            start.get_or_insert(at);
            end = at + len;
        }
        if let Some(start) = start {
            self.size += end - start;
            self.parts.push(run.slice(start..end));
        }
        !full
    }

    fn finish(mut self) -> Bytes {
        match self.parts.len() {
            0 => Bytes::new(),
            1 => self.parts.remove(0),
            _ => {
                let mut all = BytesMut::with_capacity(self.size);
                for p in &self.parts {
                    all.extend_from_slice(p);
                }
                all.freeze()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;

    use super::*;

    /// A stored run of `n` single-record batches from `base`, each `size` bytes long.
    fn run(base: i64, n: i64, size: usize) -> Bytes {
        let mut out = BytesMut::new();
        for i in 0..n {
            out.put_i64(base + i);
            out.put_i32((size - 12) as i32);
            out.put_i32(0);
            out.put_i8(2);
            out.put_bytes(0, size - 17);
        }
        out.freeze()
    }

    #[test]
    fn trims_to_offset_and_budget() {
        let mut c = Collected::new(3, 200, true);
        assert!(!c.add(&run(0, 10, 100)));
        let got = c.finish();
        assert_eq!(got.len(), 200);
        assert_eq!(batch::headers(&got).next().map(|(_, h)| h.base_offset), Some(3));
    }

    #[test]
    fn oversized_first_batch_only_when_allowed() {
        let mut c = Collected::new(0, 50, true);
        c.add(&run(0, 2, 100));
        assert_eq!(c.finish().len(), 100);
        let mut c = Collected::new(0, 50, false);
        c.add(&run(0, 2, 100));
        assert!(c.finish().is_empty());
    }

    #[test]
    fn spans_runs() {
        let mut c = Collected::new(0, 1000, true);
        assert!(c.add(&run(0, 2, 100)));
        assert!(c.add(&run(2, 2, 100)));
        let all = c.finish();
        assert_eq!(batch::headers(&all).map(|(_, h)| h.base_offset).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    }
}
