//! Fetch: v4-17 (topic ids from v13, rack_id from v11).
//!
//! Reads committed data only (offset < high watermark), whole batches as stored, trimmed to the
//! fetch offset, partition_max_bytes and the response's max_bytes, itself capped by
//! --fetch-max-bytes (the first batch of a response may exceed both, KIP-74). Any agent serves any
//! partition: the leader from its tail cache and the objects, any other agent from the objects and
//! the stored high watermark. Waits up to max_wait_ms until min_bytes are available (long poll),
//! woken by our own flush commits, and re-reading the stored state of partitions led elsewhere
//! every 100 ms. A consumer that sets client.rack to a zone
//! other than ours, where a live agent of the topic's group runs, is pointed there with
//! preferred_read_replica (KIP-392). Checks current_leader_epoch (FENCED_LEADER_EPOCH /
//! UNKNOWN_LEADER_EPOCH). read_committed equals read_uncommitted: there are no transactions.
//! Skipped: fetch sessions (KIP-227: we answer session id 0, so clients send full requests).

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, RequestHeader};
use streamhouse_metadata::{PartitionId, Topic};
use streamhouse_protocol::batch;

use super::fallback::{Fallback, own_wait_plus_margin};
use super::leader_epoch::check_current_epoch;
use super::topic_configs::agent_group_of;
use crate::context::AgentContext;
use crate::error::{BrokerError, Result};
use crate::partition::reader::{self, Source};
use crate::partition::table::REMOTE_STATE_TTL;

/// Caps a client's max_wait_ms so a bad value cannot park a request forever.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);
/// How long a fetch may spend reading, at least, before it answers with what it has (it reads for
/// up to max_wait_ms when that is longer).
const MIN_READ_TIME: Duration = Duration::from_millis(500);

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: FetchRequest) -> Result<FetchResponse> {
    let version = header.request_api_version;
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = tokio::time::Instant::now() + wait;
    let read_until = tokio::time::Instant::now() + wait.max(MIN_READ_TIME);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let mut commits = ctx.commits.subscribe();
    loop {
        commits.borrow_and_update();
        let pass = read_all(ctx, &req, version, read_until).await?;
        let waited_enough = tokio::time::Instant::now() >= deadline || ctx.shutdown.is_cancelled();
        if pass.bytes >= min_bytes.max(1) || pass.answered || waited_enough {
            count(ctx, &pass);
            return Ok(pass.response);
        }
        let next = if pass.remote { deadline.min(tokio::time::Instant::now() + REMOTE_STATE_TTL) } else { deadline };
        let _ = tokio::time::timeout_at(next, commits.changed()).await;
    }
}

struct Pass {
    response: FetchResponse,
    bytes: usize,
    /// Some partition has an answer that must not wait (an error, a redirect).
    answered: bool,
    /// Some partition is read from the store's state, which no local commit signals.
    remote: bool,
    /// Per topic that sent records: the topic, its bytes and records; counted only for the pass
    /// that answers. The `Topic` was cloned for the read anyway: no allocation of its own.
    sent: Vec<(Topic, u64, u64)>,
}

/// Counts what the answering pass sends, and its partitions' errors, in the metrics.
fn count(ctx: &AgentContext, pass: &Pass) {
    for (topic, bytes, records) in &pass.sent {
        ctx.metrics.topics.fetched(&topic.name, *bytes, *records);
    }
    for p in pass.response.responses.iter().flat_map(|t| &t.partitions) {
        ctx.metrics.requests.failed_code(ApiKey::Fetch, p.error_code);
    }
}

/// Records at or past `fetch_offset` in a run of whole batches, from the batch headers alone: the
/// records a consumer gets new (a first batch starting before its offset is skipped by clients).
fn records_from(run: &[u8], fetch_offset: i64) -> u64 {
    batch::headers(run).map(|(_, h)| u64::try_from(h.last_offset() + 1 - h.base_offset.max(fetch_offset)).unwrap_or(0)).sum()
}

/// One pass over the request's partitions. Once `read_until` has passed and something was read, the
/// partitions left are answered with their state and no records.
async fn read_all(ctx: &AgentContext, req: &FetchRequest, version: i16, read_until: tokio::time::Instant) -> Result<Pass> {
    // Repeating a partition in the request gains nothing: each copy spends the same budget.
    let mut budget = usize::try_from(req.max_bytes).unwrap_or(0).min(ctx.config.fetch_max_bytes);
    let mut pass = Pass { response: FetchResponse::default(), bytes: 0, answered: false, remote: false, sent: Vec::new() };
    let rack = if version >= 11 { req.rack_id.as_str() } else { "" };
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let topic = if version >= 13 { ctx.partitions.topic_by_id(t.topic_id) } else { ctx.partitions.topic(t.topic.0.as_str()) };
        let mut partitions = Vec::with_capacity(t.partitions.len());
        let (mut topic_bytes, mut topic_records) = (0u64, 0u64);
        for p in &t.partitions {
            if pass.bytes > 0 && tokio::time::Instant::now() >= read_until {
                budget = 0;
            }
            let data = match read_partition(ctx, topic.as_ref(), p, budget, pass.bytes == 0, version, rack, read_until, &mut pass).await {
                Ok(data) => data,
                Err(e) => {
                    pass.answered = true;
                    empty(p.partition).with_error_code(e.code())
                }
            };
            let n = data.records.as_ref().map_or(0, |r| r.len());
            if let Some(records) = data.records.as_ref().filter(|r| !r.is_empty()) {
                topic_bytes += records.len() as u64;
                topic_records += records_from(records, p.fetch_offset);
            }
            pass.bytes += n;
            budget = budget.saturating_sub(n);
            partitions.push(data);
        }
        if let Some(topic) = topic.filter(|_| topic_bytes > 0) {
            pass.sent.push((topic, topic_bytes, topic_records));
        }
        topics.push(FetchableTopicResponse::default().with_topic(t.topic.clone()).with_topic_id(t.topic_id).with_partitions(partitions));
    }
    pass.response = FetchResponse::default().with_responses(topics);
    Ok(pass)
}

fn empty(partition: i32) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_preferred_read_replica(BrokerId(-1))
}

#[allow(clippy::too_many_arguments)]
async fn read_partition(
    ctx: &AgentContext,
    topic: Option<&Topic>,
    p: &FetchPartition,
    budget: usize,
    first: bool,
    version: i16,
    rack: &str,
    read_until: tokio::time::Instant,
    pass: &mut Pass,
) -> Result<PartitionData> {
    let unknown = if version >= 13 { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
    let topic = topic.ok_or(unknown)?;
    if p.partition < 0 || p.partition >= topic.partitions {
        return Err(ResponseError::UnknownTopicOrPartition.into());
    }
    let id = PartitionId { topic_id: topic.id, partition: p.partition };
    let mut source = reader::source(ctx, id, false).await?.ok_or(ResponseError::UnknownTopicOrPartition)?;
    if matches!(source, Source::Store(..)) && p.fetch_offset > source.snapshot().high_watermark {
        // Past the cached high watermark of a partition led elsewhere: the leader may have committed
        // it since. Never answer OFFSET_OUT_OF_RANGE (which resets consumers) from a stale view.
        source = reader::source(ctx, id, true).await?.ok_or(ResponseError::UnknownTopicOrPartition)?;
    }
    let s = source.snapshot();
    check_current_epoch(p.current_leader_epoch, s.leader_epoch)?;
    let log_start = if version >= 5 { s.log_start_offset } else { -1 };
    let answer = PartitionData::default()
        .with_partition_index(p.partition)
        .with_high_watermark(s.high_watermark)
        .with_last_stable_offset(s.high_watermark)
        .with_log_start_offset(log_start)
        .with_preferred_read_replica(BrokerId(-1));
    if matches!(source, Source::Store(..)) {
        pass.remote = true;
    } else if let Some(replica) = replica_in_zone(ctx, topic, rack) {
        pass.answered = true;
        return Ok(answer.with_preferred_read_replica(BrokerId(replica)));
    }
    let max = usize::try_from(p.partition_max_bytes).unwrap_or(0).min(budget);
    match reader::read(ctx, &source, p.fetch_offset, max, first, read_until).await {
        Ok(read) => Ok(answer.with_records(Some(read.records))),
        Err(BrokerError::Kafka(ResponseError::OffsetOutOfRange)) => {
            pass.answered = true;
            Ok(answer.with_error_code(ResponseError::OffsetOutOfRange.code()))
        }
        Err(e) => Err(e),
    }
}

/// A live agent of the topic's group in the consumer's zone, when that is not our zone (KIP-392).
fn replica_in_zone(ctx: &AgentContext, topic: &Topic, rack: &str) -> Option<i32> {
    if rack.is_empty() || ctx.cluster.me.zone.as_deref() == Some(rack) {
        return None;
    }
    let group = agent_group_of(topic);
    ctx.cluster.live().into_iter().find(|a| a.group == group && a.zone.as_deref() == Some(rack)).map(|a| a.id)
}

impl Fallback for FetchRequest {
    type Response = FetchResponse;

    fn bound(&self, _: &AgentContext, _: i16) -> Duration {
        own_wait_plus_margin(self.max_wait_ms, MAX_WAIT_CAP)
    }

    fn failed(&self, _: &AgentContext, version: i16, code: ResponseError) -> Option<FetchResponse> {
        let topics = self
            .topics
            .iter()
            .map(|t| {
                FetchableTopicResponse::default()
                    .with_topic(t.topic.clone())
                    .with_topic_id(t.topic_id)
                    .with_partitions(t.partitions.iter().map(|p| empty(p.partition).with_error_code(code.code())).collect())
            })
            .collect();
        let response = FetchResponse::default().with_responses(topics);
        Some(if version >= 7 { response.with_error_code(code.code()) } else { response })
    }
}
