//! Fetch: v4-17 (topic ids from v13).
//!
//! Reads committed data only (offset < high watermark) of partitions we lead, whole batches as
//! stored, trimmed to the fetch offset, partition_max_bytes and the response's max_bytes (the first
//! batch of a response may exceed both, KIP-74). Waits up to max_wait_ms until min_bytes are
//! available (long poll), waking on every flush commit. Checks current_leader_epoch
//! (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH). read_committed equals read_uncommitted since
//! there are no transactions (last stable offset = high watermark).
//! Skipped: fetch sessions (KIP-227: we answer session id 0, so clients send full requests),
//! preferred read replicas, follower fetching.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, RequestHeader};
use streamhouse_metadata::{PartitionId, Topic};

use super::leader_epoch::check_current_epoch;
use crate::context::AgentContext;
use crate::error::{BrokerError, Result};
use crate::partition::reader;

/// Caps a client's max_wait_ms so a bad value cannot park a request forever.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: FetchRequest) -> Result<FetchResponse> {
    let version = header.request_api_version;
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = tokio::time::Instant::now() + wait;
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let mut commits = ctx.commits.subscribe();
    loop {
        commits.borrow_and_update();
        let (response, bytes, errors) = read_all(ctx, &req, version).await?;
        let waited_enough = tokio::time::Instant::now() >= deadline || ctx.shutdown.is_cancelled();
        if bytes >= min_bytes.max(1) || errors || waited_enough {
            return Ok(response);
        }
        if tokio::time::timeout_at(deadline, commits.changed()).await.is_err() {
            return Ok(response);
        }
    }
}

/// One pass over the requested partitions: the response, its record bytes, and whether any
/// partition failed (errors are returned at once rather than long-polled).
async fn read_all(ctx: &AgentContext, req: &FetchRequest, version: i16) -> Result<(FetchResponse, usize, bool)> {
    let mut budget = usize::try_from(req.max_bytes).unwrap_or(0);
    let mut total = 0usize;
    let mut errors = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let topic = if version >= 13 { ctx.partitions.topic_by_id(t.topic_id) } else { ctx.partitions.topic(t.topic.0.as_str()) };
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let data = match read_partition(ctx, topic.as_ref(), p, budget, total == 0, version).await {
                Ok(data) => data,
                Err(e) => {
                    errors = true;
                    PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_error_code(e.code())
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1)
                        .with_preferred_read_replica(BrokerId(-1))
                }
            };
            let n = data.records.as_ref().map_or(0, |r| r.len());
            total += n;
            budget = budget.saturating_sub(n);
            partitions.push(data);
        }
        topics.push(FetchableTopicResponse::default().with_topic(t.topic.clone()).with_topic_id(t.topic_id).with_partitions(partitions));
    }
    Ok((FetchResponse::default().with_responses(topics), total, errors))
}

async fn read_partition(
    ctx: &AgentContext,
    topic: Option<&Topic>,
    p: &FetchPartition,
    budget: usize,
    first: bool,
    version: i16,
) -> Result<PartitionData> {
    let unknown = if version >= 13 { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
    let topic = topic.ok_or(unknown)?;
    if p.partition < 0 || p.partition >= topic.partitions {
        return Err(ResponseError::UnknownTopicOrPartition.into());
    }
    let partition = ctx
        .partitions
        .led(&PartitionId { topic_id: topic.id, partition: p.partition })
        .ok_or(ResponseError::NotLeaderOrFollower)?;
    check_current_epoch(p.current_leader_epoch, partition.snapshot().leader_epoch)?;
    let max = usize::try_from(p.partition_max_bytes).unwrap_or(0).min(budget);
    let read = match reader::read(ctx, &partition, p.fetch_offset, max, first).await {
        Ok(r) => r,
        Err(BrokerError::Kafka(ResponseError::OffsetOutOfRange)) => {
            let s = partition.snapshot();
            return Ok(PartitionData::default()
                .with_partition_index(p.partition)
                .with_error_code(ResponseError::OffsetOutOfRange.code())
                .with_high_watermark(s.high_watermark)
                .with_last_stable_offset(s.high_watermark)
                .with_log_start_offset(if version >= 5 { s.log_start_offset } else { -1 })
                .with_preferred_read_replica(BrokerId(-1)));
        }
        Err(e) => return Err(e),
    };
    let s = read.snapshot;
    Ok(PartitionData::default()
        .with_partition_index(p.partition)
        .with_high_watermark(s.high_watermark)
        .with_last_stable_offset(s.high_watermark)
        .with_log_start_offset(if version >= 5 { s.log_start_offset } else { -1 })
        .with_preferred_read_replica(BrokerId(-1))
        .with_records(Some(read.records)))
}
