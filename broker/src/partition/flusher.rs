//! The flusher: the one task that turns pending appends into durable, visible data.
//!
//! Each flush (architecture.md, write path steps 2-5): per partition, check idempotent sequences and
//! assign offsets; lay out ONE segment object for every partition; PUT it; then ONE metadata
//! transaction that, per partition, checks our lease epoch, indexes the run and advances the high
//! watermark. Only then are producers answered and fetchers woken.
//!
//! Flushes form a pipeline: up to --max-flushes-in-flight objects are being PUT at once (object
//! stores have high latency but scale with concurrency), while their commits happen strictly one
//! after the other in flush order, so a partition's runs are committed in offset order. Offsets and
//! producer state are assigned against a working view ("committed + in flight"). If a PUT or a
//! commit fails, that flush and every later one still in flight fail together and the working view
//! falls back to what is committed: offsets are never skipped and nothing is undone in the store.
//! A flush whose only content is refusals or duplicates goes through the same queue, so a retried
//! batch is acknowledged only once its original is committed.
//!
//! Producer expiry (--producer-id-expiration-ms) runs here too, every check interval, because this
//! task owns both copies of producer state: it drops idle producers from the committed state and
//! from the working view, keeping any with a batch in flight, and flags each partition so that its
//! next commit deletes the expired rows under that commit's fence.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use kafka_protocol::error::ResponseError;
use streamhouse_metadata::{CommitOutcome, PartitionCommit, PartitionId, SegmentRef};
use streamhouse_protocol::batch::REWRITTEN_PREFIX_LEN;
use streamhouse_storage::segment::{RunLocation, SegmentBuilder};
use streamhouse_storage::{StorageError, paths};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Partition;
use super::producers::{self, Check, ProducerTable};
use super::tail::{self, TailRun};
use super::writer::{Append, AppendResult, Appended, Claim, Due};
use crate::context::AgentContext;
use crate::error::BrokerError;
use crate::metrics::LeaseLoss;

/// Where each partition stands once every in-flight flush commits: the next offset to assign and
/// the producer state to check against. Keyed by leadership (partition and leader epoch), so a
/// partition re-acquired while flushes of its old epoch are in flight plans from what is committed.
/// Empty when nothing is in flight.
type Working = HashMap<Leadership, (i64, ProducerTable)>;

/// One leadership of one partition: its id and our lease epoch.
type Leadership = (PartitionId, i32);

/// The pipeline's view of flushes not yet committed: the working state, and the leaderships whose
/// commit was fenced, whose later flushes in the pipeline must fail whatever they hold (a retried
/// batch matched as a duplicate of a fenced run must not be acknowledged).
#[derive(Default)]
struct InFlight {
    working: Working,
    fenced: HashSet<Leadership>,
}

/// A flush whose object is being written: its plans, the object, and the PUT's outcome.
struct Stage {
    plans: Vec<Plan>,
    key: String,
    object: Bytes,
    started: std::time::Instant,
}

type Put = BoxFuture<'static, (Stage, Result<(), StorageError>)>;

/// Runs until `stop`, then flushes what is pending so every waiting producer gets its answer.
/// `stop` is cancelled only after connections have drained, so nothing is appended after the end.
pub async fn run(ctx: AgentContext, stop: CancellationToken) {
    let mut in_flight: FuturesOrdered<Put> = FuturesOrdered::new();
    let mut view = InFlight::default();
    let max_in_flight = ctx.config.max_flushes_in_flight.max(1);
    // Not at once: a partition just led loaded only the producers that had not expired.
    let check_every = ctx.config.producer_id_expiration_check_interval();
    let mut expiry = tokio::time::interval_at(tokio::time::Instant::now() + check_every, check_every);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let room = in_flight.len() < max_in_flight;
        let due = if room { ctx.writes.due() } else { Due::Nothing };
        if room && matches!(due, Due::Now) {
            in_flight.push_back(start(&ctx, ctx.writes.take(), &mut view.working));
            continue;
        }
        if in_flight.is_empty() && matches!(due, Due::Nothing) && stop.is_cancelled() {
            break;
        }
        tokio::select! {
            Some((stage, put)) = in_flight.next() => {
                if !finish(&ctx, stage, put, &mut view).await {
                    // Later flushes assigned offsets after this one: they cannot commit either.
                    while let Some((stage, _)) = in_flight.next().await {
                        fail(stage, ResponseError::KafkaStorageError);
                    }
                }
                if in_flight.is_empty() {
                    view = InFlight::default();
                }
            }
            _ = sleep_until_due(&due) => {}
            _ = expiry.tick() => expire_producers(&ctx, &mut view.working),
            _ = ctx.writes.wait(), if room => {}
            _ = stop.cancelled(), if !stop.is_cancelled() => {}
        }
    }
    debug!("flusher stopped");
}

async fn sleep_until_due(due: &Due) {
    match due {
        Due::At(at) => tokio::time::sleep_until((*at).into()).await,
        _ => std::future::pending().await,
    }
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
    /// The appends placed here, claimed just before the commit (see [`Claim`]).
    claims: Vec<Arc<Claim>>,
    /// Counts this plan among the partition's flushes in flight until the plan is dropped.
    _in_flight: super::InFlightFlush,
}

impl Plan {
    fn writes(&self) -> bool {
        self.next_offset > self.base_offset
    }

    fn leadership(&self) -> Leadership {
        (self.partition.id, self.leader_epoch)
    }
}

/// Plans a flush against the working view, lays out its object and starts the PUT.
fn start(ctx: &AgentContext, appends: Vec<Append>, working: &mut Working) -> Put {
    let mut plans = plan(appends, working);
    let mut builder = SegmentBuilder::with_capacity(plans.iter().flat_map(|p| &p.chunks).map(Bytes::len).sum());
    for p in plans.iter_mut().filter(|p| p.writes()) {
        p.location = builder.append_run(
            p.partition.id.topic_id,
            p.partition.id.partition,
            p.base_offset,
            p.next_offset - 1,
            p.max_timestamp,
            &p.chunks,
        );
        p.chunks = Vec::new();
        working.insert(p.leadership(), (p.next_offset, p.producers.clone()));
    }
    // Created by the store's clock, the one the sweeper judges age by.
    let key = paths::segment_key_at(ctx.agent_id, u64::try_from(ctx.metadata.now_ms()).unwrap_or(0));
    let writes = plans.iter().any(Plan::writes);
    let object = if writes { builder.finish().0 } else { Bytes::new() };
    let stage = Stage { plans, key, object, started: std::time::Instant::now() };
    let objects = Arc::clone(&ctx.objects);
    Box::pin(async move {
        // Retries, where worth it, are the store's own (a RetryingStore wraps s3://).
        let put = if writes { objects.put(&stage.key, stage.object.clone()).await } else { Ok(()) };
        (stage, put)
    })
}

/// Commits a flush whose PUT ended, and answers its producers. False if the flush failed as a
/// whole (PUT or commit), which dooms the flushes after it.
async fn finish(ctx: &AgentContext, stage: Stage, put: Result<(), StorageError>, view: &mut InFlight) -> bool {
    let Stage { plans, key, object, started } = stage;
    // Plans of a leadership fenced in an earlier flush: their offsets and duplicates build on runs
    // that will never exist.
    let (doomed, plans): (Vec<Plan>, Vec<Plan>) = plans.into_iter().partition(|p| view.fenced.contains(&p.leadership()));
    for p in doomed {
        answer(p.replies, 0, Some(ResponseError::NotLeaderOrFollower));
    }
    let (writing, settled): (Vec<Plan>, Vec<Plan>) = plans.into_iter().partition(Plan::writes);
    if let Err(e) = put {
        warn!(key, error = %e, "segment PUT failed; producers get a retriable error");
        fail(Stage { plans: writing.into_iter().chain(settled).collect(), key, object, started }, ResponseError::KafkaStorageError);
        return false;
    }
    if !writing.is_empty() && too_old_to_commit(ctx, &key) {
        warn!(
            key,
            "segment object older than half the sweep grace period: refusing to commit it (the sweeper may delete it); producers retry"
        );
        fail(Stage { plans: writing.into_iter().chain(settled).collect(), key, object, started }, ResponseError::KafkaStorageError);
        return false;
    }
    if !writing.is_empty() && !ctx.cluster.lease_valid() {
        warn!("leases not renewed in time: refusing to commit; producers retry on the new leader");
        fail(Stage { plans: writing.into_iter().chain(settled).collect(), key, object, started }, ResponseError::NotLeaderOrFollower);
        return false;
    }
    // A producer already answered REQUEST_TIMED_OUT was told its batch failed and may send the
    // records again under a new producer epoch: its append must never become visible, so neither
    // may this flush, nor (offsets build on it) any after it.
    if !writing.iter().flat_map(|p| &p.claims).all(|c| c.commit()) {
        warn!(key, "a producer in this flush was answered REQUEST_TIMED_OUT meanwhile: not committing it; producers retry");
        fail(Stage { plans: writing.into_iter().chain(settled).collect(), key, object, started }, ResponseError::KafkaStorageError);
        return false;
    }
    // Refusals and duplicates of committed data: everything before them is committed now.
    for p in settled {
        let log_start = p.partition.snapshot().log_start_offset;
        answer(p.replies, log_start, None);
    }
    if writing.is_empty() {
        return true;
    }
    let put_done = started.elapsed();
    let expiration = ctx.config.producer_id_expiration();
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
            // Taken even if this commit fails: the next check interval asks again.
            expire_idle_producers: p.partition.with_state(|s| std::mem::take(&mut s.prune_producers)).then_some(expiration),
        })
        .collect();
    let outcomes = match ctx.metadata.commit_flush(ctx.agent_id, &commits).await {
        Ok(o) => o,
        Err(e) => {
            let code = retriable(BrokerError::from(e).response_error());
            warn!(key, ?code, "flush commit failed; producers get a retriable error");
            for p in writing {
                answer(p.replies, 0, Some(code));
            }
            return false;
        }
    };
    // The store stamped the states it wrote at the start of the commit by this same clock; a little
    // later here only keeps them in memory a little longer.
    let committed_at_ms = ctx.metadata.now_ms();
    for ((p, outcome), commit) in writing.into_iter().zip(outcomes).zip(commits.iter()) {
        match outcome {
            CommitOutcome::Committed { high_watermark } => {
                let records = u64::try_from(p.next_offset - p.base_offset).unwrap_or(0);
                ctx.metrics.topics.produced(&p.partition.topic, p.location.length, records);
                let run = tail::run_bytes(&object, p.location.position as usize..(p.location.position + p.location.length) as usize);
                let log_start = p.partition.with_state(|s| {
                    s.high_watermark = high_watermark;
                    // Only the producers this commit wrote: the plan's copy of the others may hold
                    // some expired since it was made.
                    s.producers.committed(commit.producers.iter().cloned(), committed_at_ms);
                    s.tail.push(TailRun { base_offset: p.base_offset, last_offset: high_watermark - 1, bytes: run });
                    s.log_start_offset
                });
                answer(p.replies, log_start, None);
            }
            CommitOutcome::Fenced => {
                warn!(topic = p.partition.topic, partition = p.partition.id.partition, "fenced: another agent leads this partition now");
                view.fenced.insert(p.leadership());
                view.working.remove(&p.leadership());
                p.partition.with_state(|s| s.fenced = true);
                ctx.partitions.remove_led(&p.partition);
                ctx.metrics.lease_lost(LeaseLoss::Fenced, 1);
                answer(p.replies, 0, Some(ResponseError::NotLeaderOrFollower));
            }
        }
    }
    ctx.commits.send_modify(|generation| *generation += 1);
    ctx.metrics.flush_duration.observe(started.elapsed().as_secs_f64());
    ctx.metrics.flush_bytes.observe(object.len() as f64);
    debug!(key, bytes = object.len(), partitions = commits.len(), ?put_done, total = ?started.elapsed(), "flushed");
    true
}

/// Whether the object under `key` is too old to be committed: the sweeper deletes unreferenced
/// objects once they are --sweep-grace-secs old, so a commit must land well before that. Half the
/// grace is the cut: the commit below takes at most PostgreSQL's statement timeout, and an agent
/// paused between this check and its commit for longer than its lease ttl is fenced anyway.
fn too_old_to_commit(ctx: &AgentContext, key: &str) -> bool {
    let grace_ms = ctx.config.sweep_grace_secs.saturating_mul(1000);
    let now_ms = u64::try_from(ctx.metadata.now_ms()).unwrap_or(0);
    paths::segment_created_ms(key).is_none_or(|created| now_ms.saturating_sub(created).saturating_mul(2) >= grace_ms)
}

/// Forgets producers idle for --producer-id-expiration-ms in every partition we lead and in the
/// working view, except those with a batch in flight (marked in the working view), and flags each
/// partition's next commit to delete their rows.
fn expire_producers(ctx: &AgentContext, working: &mut Working) {
    let cutoff_ms = producers::expiry_cutoff_ms(ctx.metadata.now_ms(), ctx.config.producer_id_expiration());
    for (_, producers) in working.values_mut() {
        producers.expire(cutoff_ms, |_| false);
    }
    for p in ctx.partitions.led_partitions() {
        let epoch = p.with_state(|s| s.leader_epoch);
        let in_flight = working.get(&(p.id, epoch)).map(|(_, w)| w);
        let expired = p.with_state(|s| {
            s.prune_producers = true;
            s.producers.expire(cutoff_ms, |id| in_flight.is_some_and(|w| w.in_flight(id)))
        });
        if expired > 0 {
            info!(topic = p.topic, partition = p.id.partition, expired, "forgot idle producers (producer.id.expiration.ms)");
        }
    }
}

/// Answers every producer of a flush that will not commit.
fn fail(stage: Stage, code: ResponseError) {
    for p in stage.plans {
        answer(p.replies, 0, Some(code));
    }
}

/// Groups appends by partition (keeping arrival order within each) and decides, batch by batch,
/// what gets written and at which offset.
fn plan(appends: Vec<Append>, working: &Working) -> Vec<Plan> {
    let mut plans: Vec<Plan> = Vec::new();
    let mut index: HashMap<_, usize> = HashMap::new();
    for append in appends {
        let i = *index.entry(append.partition.id).or_insert_with(|| {
            let (leader_epoch, committed, producers, fenced) =
                append.partition.with_state(|s| (s.leader_epoch, s.high_watermark, s.producers.clone(), s.fenced));
            let (hwm, producers) = working.get(&(append.partition.id, leader_epoch)).cloned().unwrap_or((committed, producers));
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
                claims: Vec::new(),
                _in_flight: super::InFlightFlush::new(&append.partition),
            });
            plans.len() - 1
        });
        let p = &mut plans[i];
        let outcome = if p.leader_epoch < 0 { Err(ResponseError::NotLeaderOrFollower) } else { place(p, &append) };
        if outcome.is_ok() {
            p.claims.push(append.claim);
        }
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
            producers.mark_in_flight(batch.header.producer_id);
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
