//! The flusher: the one task that turns pending appends into durable, visible data.
//!
//! Each flush (architecture.md, write path steps 2-5): per partition, check idempotent sequences and
//! assign offsets from the committed high watermark; lay out ONE segment object for every partition;
//! PUT it; then ONE metadata transaction that, per partition, checks our lease epoch, indexes the run
//! and advances the high watermark. Only then are producers answered and fetchers woken.
//!
//! Offsets are assigned here rather than on arrival, so a failed PUT or commit leaves nothing to
//! undo: the next flush starts again from the committed high watermark and no offset is ever skipped.
//! Flushes run one at a time, which keeps each partition's commits in offset order; while one is in
//! flight the next accumulates, so load turns into bigger flushes rather than more of them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use streamhouse_metadata::{CommitOutcome, PartitionCommit, SegmentRef};
use streamhouse_protocol::batch::REWRITTEN_PREFIX_LEN;
use streamhouse_storage::segment::{RunLocation, SegmentBuilder};
use streamhouse_storage::paths;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Partition;
use super::producers::{Check, ProducerTable};
use super::tail::TailRun;
use super::writer::{Append, AppendResult, Appended, Due};
use crate::context::AgentContext;
use crate::error::BrokerError;

/// Runs until `stop`, then flushes what is pending so every waiting producer gets its answer.
/// `stop` is cancelled only after connections have drained, so nothing is appended after the end.
pub async fn run(ctx: AgentContext, stop: CancellationToken) {
    loop {
        match ctx.writes.due() {
            Due::Now => flush(&ctx, ctx.writes.take()).await,
            Due::At(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = ctx.writes.wait() => {}
                }
            }
            Due::Nothing if stop.is_cancelled() => break,
            Due::Nothing => {
                tokio::select! {
                    _ = ctx.writes.wait() => {}
                    _ = stop.cancelled() => {}
                }
            }
        }
    }
    debug!("flusher stopped");
}

/// One partition's share of a flush.
struct Plan {
    partition: Arc<Partition>,
    leader_epoch: i32,
    base_offset: i64,
    next_offset: i64,
    max_timestamp: i64,
    chunks: Vec<Bytes>,
    producers: ProducerTable,
    touched: HashSet<i64>,
    location: RunLocation,
    replies: Vec<(oneshot::Sender<AppendResult>, Result<i64, ResponseError>)>,
}

async fn flush(ctx: &AgentContext, appends: Vec<Append>) {
    let mut plans = plan(appends);
    let mut builder = SegmentBuilder::with_capacity(plans.iter().flat_map(|p| &p.chunks).map(Bytes::len).sum());
    for p in plans.iter_mut().filter(|p| p.next_offset > p.base_offset) {
        p.location = builder.append_run(
            p.partition.id.topic_id,
            p.partition.id.partition,
            p.base_offset,
            p.next_offset - 1,
            p.max_timestamp,
            &p.chunks,
        );
    }
    let (writing, settled): (Vec<Plan>, Vec<Plan>) = plans.into_iter().partition(|p| p.next_offset > p.base_offset);
    // Plans with nothing new hold only refusals and duplicates of committed data: answer them now.
    for p in settled {
        let log_start = p.partition.snapshot().log_start_offset;
        answer(p.replies, log_start, None);
    }
    if writing.is_empty() {
        return;
    }
    if !ctx.cluster.lease_valid() {
        warn!("leases not renewed in time: refusing to write; producers retry on the new leader");
        for p in writing {
            answer(p.replies, 0, Some(ResponseError::NotLeaderOrFollower));
        }
        return;
    }
    let (object, _) = builder.finish();
    let key = paths::segment_key(ctx.agent_id);
    let started = std::time::Instant::now();
    // Retries, where worth it, are the store's own (a RetryingStore wraps s3://).
    if let Err(e) = ctx.objects.put(&key, object.clone()).await {
        warn!(key, error = %e, "segment PUT failed; producers get a retriable error");
        for p in writing {
            answer(p.replies, 0, Some(ResponseError::KafkaStorageError));
        }
        return;
    }
    let commits: Vec<PartitionCommit> = writing
        .iter()
        .map(|p| PartitionCommit {
            id: p.partition.id,
            leader_epoch: p.leader_epoch,
            segment: SegmentRef {
                base_offset: p.base_offset,
                last_offset: p.next_offset - 1,
                object_key: key.clone(),
                position: p.location.position,
                length: p.location.length,
                max_timestamp: p.max_timestamp,
            },
            producers: p.touched.iter().filter_map(|id| p.producers.get(*id).cloned()).collect(),
        })
        .collect();
    let put_done = started.elapsed();
    let outcomes = match ctx.metadata.commit_flush(ctx.agent_id, &commits).await {
        Ok(o) => o,
        Err(e) => {
            let code = BrokerError::from(e).response_error();
            warn!(key, ?code, "flush commit failed; producers get a retriable error");
            for p in writing {
                answer(p.replies, 0, Some(retriable(code)));
            }
            return;
        }
    };
    for (p, outcome) in writing.into_iter().zip(outcomes) {
        match outcome {
            CommitOutcome::Committed { high_watermark } => {
                let run = object.slice(p.location.position as usize..(p.location.position + p.location.length) as usize);
                let log_start = p.partition.with_state(|s| {
                    s.high_watermark = high_watermark;
                    s.producers = p.producers;
                    s.tail.push(TailRun { base_offset: p.base_offset, last_offset: high_watermark - 1, bytes: run });
                    s.log_start_offset
                });
                answer(p.replies, log_start, None);
            }
            CommitOutcome::Fenced => {
                warn!(topic = p.partition.topic, partition = p.partition.id.partition, "fenced: another agent leads this partition now");
                p.partition.with_state(|s| s.fenced = true);
                ctx.partitions.remove_led(&p.partition);
                answer(p.replies, 0, Some(ResponseError::NotLeaderOrFollower));
            }
        }
    }
    ctx.commits.send_modify(|generation| *generation += 1);
    debug!(key, bytes = object.len(), partitions = commits.len(), ?put_done, total = ?started.elapsed(), "flushed");
}

/// Groups appends by partition (keeping arrival order within each) and decides, batch by batch,
/// what gets written and at which offset.
fn plan(appends: Vec<Append>) -> Vec<Plan> {
    let mut plans: Vec<Plan> = Vec::new();
    let mut index: HashMap<_, usize> = HashMap::new();
    for append in appends {
        let i = *index.entry(append.partition.id).or_insert_with(|| {
            let (leader_epoch, hwm, producers, fenced) =
                append.partition.with_state(|s| (s.leader_epoch, s.high_watermark, s.producers.clone(), s.fenced));
            plans.push(Plan {
                partition: Arc::clone(&append.partition),
                leader_epoch: if fenced { -1 } else { leader_epoch },
                base_offset: hwm,
                next_offset: hwm,
                max_timestamp: -1,
                chunks: Vec::new(),
                producers,
                touched: HashSet::new(),
                location: RunLocation { position: 0, length: 0 },
                replies: Vec::new(),
            });
            plans.len() - 1
        });
        let p = &mut plans[i];
        let outcome = if p.leader_epoch < 0 { Err(ResponseError::NotLeaderOrFollower) } else { place(p, &append) };
        p.replies.push((append.reply, outcome));
    }
    plans
}

/// Places one append's batches, all or nothing: a refused batch leaves the plan as it was.
fn place(p: &mut Plan, append: &Append) -> Result<i64, ResponseError> {
    let mut producers = p.producers.clone();
    let mut next = p.next_offset;
    let mut chunks = Vec::with_capacity(append.batches.len() * 2);
    let mut max_timestamp = p.max_timestamp;
    let mut first = None;
    for batch in &append.batches {
        match producers.check(&batch.header)? {
            Check::Duplicate { base_offset } => {
                first.get_or_insert(base_offset);
            }
            Check::Append => {
                chunks.push(batch.rewritten_prefix(next, p.leader_epoch));
                chunks.push(batch.bytes.slice(REWRITTEN_PREFIX_LEN..));
                producers.record(&batch.header, next);
                max_timestamp = max_timestamp.max(batch.header.max_timestamp);
                first.get_or_insert(next);
                next += i64::from(batch.header.last_offset_delta) + 1;
            }
        }
    }
    for batch in &append.batches {
        if batch.header.is_idempotent() {
            p.touched.insert(batch.header.producer_id);
        }
    }
    p.producers = producers;
    p.next_offset = next;
    p.chunks.extend(chunks);
    p.max_timestamp = max_timestamp;
    Ok(first.unwrap_or(next))
}

fn answer(
    replies: Vec<(oneshot::Sender<AppendResult>, Result<i64, ResponseError>)>,
    log_start_offset: i64,
    failure: Option<ResponseError>,
) {
    for (reply, outcome) in replies {
        let result = match (failure, outcome) {
            (Some(e), _) | (None, Err(e)) => Err(BrokerError::Kafka(e)),
            (None, Ok(base_offset)) => Ok(Appended { base_offset, log_start_offset }),
        };
        // The producer may have gone away; its answer is simply not needed then.
        let _ = reply.send(result);
    }
}

/// A commit that failed for a reason other than fencing is worth retrying for the client.
fn retriable(code: ResponseError) -> ResponseError {
    if code.is_retriable() { code } else { ResponseError::KafkaStorageError }
}
