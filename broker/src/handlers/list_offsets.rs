//! ListOffsets: v1-8.
//!
//! EARLIEST (-2) and EARLIEST_LOCAL (-4, all data is "local" here) give the log start offset;
//! LATEST (-1) the high watermark (also for read_committed: no transactions); MAX_TIMESTAMP (-3)
//! the record with the greatest timestamp; a timestamp T the first record with timestamp >= T, or
//! offset -1 when there is none. Timestamp lookups read one run and decode only the batch that holds
//! the answer, refusing (CORRUPT_MESSAGE) one that inflates past 32 times the topic's
//! max.message.bytes (at least 1 MiB): a decompression bomb. current_leader_epoch is checked (v4+).
//! Skipped: LATEST_TIERED (-5, v9).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, RequestHeader};
use streamhouse_metadata::{PartitionId, SegmentRef};
use streamhouse_protocol::{batch, decompress};

use super::topic_configs::max_message_bytes;

use super::fallback::Fallback;
use super::leader_epoch::check_current_epoch;
use crate::context::AgentContext;
use crate::error::{BrokerError, Result};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: ListOffsetsRequest) -> Result<ListOffsetsResponse> {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let answer = match lookup(ctx, t.name.0.as_str(), p).await {
                Ok(a) => a,
                Err(e) => not_found(e.response_error()),
            };
            let answer = if header.request_api_version >= 4 { answer } else { answer.with_leader_epoch(-1) };
            partitions.push(answer.with_partition_index(p.partition_index));
        }
        topics.push(ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions));
    }
    Ok(ListOffsetsResponse::default().with_topics(topics))
}

fn not_found(code: ResponseError) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse::default().with_error_code(code.code()).with_timestamp(-1).with_offset(-1).with_leader_epoch(-1)
}

async fn lookup(ctx: &AgentContext, topic: &str, p: &ListOffsetsPartition) -> Result<ListOffsetsPartitionResponse> {
    let topic = ctx.partitions.topic(topic).ok_or(ResponseError::UnknownTopicOrPartition)?;
    if p.partition_index < 0 || p.partition_index >= topic.partitions {
        return Err(ResponseError::UnknownTopicOrPartition.into());
    }
    let id = PartitionId { topic_id: topic.id, partition: p.partition_index };
    let partition = ctx.partitions.led(&id).ok_or(ResponseError::NotLeaderOrFollower)?;
    let s = partition.snapshot();
    check_current_epoch(p.current_leader_epoch, s.leader_epoch)?;
    let answer = ListOffsetsPartitionResponse::default().with_leader_epoch(s.leader_epoch).with_timestamp(-1);
    let found = match p.timestamp {
        LATEST => return Ok(answer.with_offset(s.high_watermark)),
        EARLIEST | EARLIEST_LOCAL => return Ok(answer.with_offset(s.log_start_offset)),
        MAX_TIMESTAMP => match ctx.metadata.segment_with_max_timestamp(id).await? {
            Some(run) => find(ctx, &run, Target::Max, inflate_cap(&topic)).await?,
            None => None,
        },
        ts if ts >= 0 => match ctx.metadata.segment_for_timestamp(id, ts).await? {
            Some(run) => find(ctx, &run, Target::AtOrAfter(ts), inflate_cap(&topic)).await?,
            None => None,
        },
        _ => return Err(ResponseError::InvalidRequest.into()),
    };
    Ok(match found {
        Some((offset, timestamp, epoch)) => answer.with_offset(offset).with_timestamp(timestamp).with_leader_epoch(epoch),
        None => answer.with_offset(-1),
    })
}

enum Target {
    Max,
    AtOrAfter(i64),
}

/// Finds (offset, timestamp, leader epoch) of the wanted record in one stored run.
/// The most one batch may decompress to in a timestamp lookup: a generous ratio over the largest
/// batch the topic accepts, so a decompression bomb is refused (CORRUPT_MESSAGE) instead of
/// claiming the agent's memory.
fn inflate_cap(topic: &streamhouse_metadata::Topic) -> usize {
    max_message_bytes(topic).max(1 << 20).saturating_mul(INFLATE_RATIO)
}

/// Text and JSON compress about 5-10x; a bomb compresses a thousandfold.
const INFLATE_RATIO: usize = 32;

async fn find(ctx: &AgentContext, run: &SegmentRef, target: Target, inflate_cap: usize) -> Result<Option<(i64, i64, i32)>> {
    let bytes = ctx.objects.get_range(&run.object_key, run.position..run.position + run.length).await?;
    let headers: Vec<_> = batch::headers(&bytes).collect();
    let chosen = match target {
        Target::Max => headers.iter().filter(|(_, h)| h.max_timestamp == run.max_timestamp).min_by_key(|(_, h)| h.base_offset),
        Target::AtOrAfter(ts) => headers.iter().find(|(_, h)| h.max_timestamp >= ts),
    };
    let Some((at, h)) = chosen else { return Ok(None) };
    let mut one = bytes.slice(*at..*at + h.total_len());
    let records = decode(&mut one, inflate_cap)?;
    let record = match target {
        Target::Max => records.iter().filter(|r| r.timestamp == h.max_timestamp).min_by_key(|r| r.offset),
        Target::AtOrAfter(ts) => records.iter().find(|r| r.timestamp >= ts),
    };
    Ok(record.map(|r| (r.offset, r.timestamp, h.partition_leader_epoch)))
}

fn decode(batch: &mut Bytes, cap: usize) -> Result<Vec<kafka_protocol::records::Record>> {
    decompress::decode_records(batch, cap).map_err(|e| {
        tracing::warn!(error = %e, "stored batch could not be decoded for a timestamp lookup");
        BrokerError::Kafka(ResponseError::CorruptMessage)
    })
}

impl Fallback for ListOffsetsRequest {
    type Response = ListOffsetsResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<ListOffsetsResponse> {
        let topics = self
            .topics
            .iter()
            .map(|t| {
                let partitions = t.partitions.iter().map(|p| not_found(code).with_partition_index(p.partition_index)).collect();
                ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions)
            })
            .collect();
        Some(ListOffsetsResponse::default().with_topics(topics))
    }
}
