//! Finding who owns what, and the log's ends: the lookups several endpoints share.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{FindCoordinatorRequest, ListOffsetsRequest};
use kafka_protocol::protocol::StrBytes;
use streamhouse_metadata::{AgentId, PartitionId, PartitionOverview, Topic};

use super::error::{ApiError, ApiResult};
use super::kafka;
use crate::context::AgentContext;

pub async fn topic(ctx: &AgentContext, name: &str) -> ApiResult<Topic> {
    ctx.metadata.topic(name).await?.ok_or_else(|| ApiError::unknown_topic(name))
}

pub fn check_partition(topic: &Topic, partition: i32) -> ApiResult<()> {
    if (0..topic.partitions).contains(&partition) {
        return Ok(());
    }
    Err(ApiError::kafka(
        ResponseError::UnknownTopicOrPartition,
        format!("topic '{}' has partitions 0 to {}, not {partition}", topic.name, topic.partitions - 1),
    ))
}

/// The agent leading `partition` now, from the store: every agent sees the same answer.
pub async fn leader(ctx: &AgentContext, topic: &Topic, partition: i32) -> ApiResult<AgentId> {
    let id = PartitionId { topic_id: topic.id, partition };
    if ctx.partitions.is_led(&id) {
        return Ok(ctx.agent_id);
    }
    let state = ctx.metadata.partition_state(id).await?;
    state.and_then(|s| s.leader).ok_or_else(|| {
        ApiError::kafka(ResponseError::LeaderNotAvailable, format!("{}-{partition} has no leader right now; retry in a moment", topic.name))
    })
}

/// The group's coordinator, as FindCoordinator answers it to clients (it may take the lease).
pub async fn coordinator(ctx: &AgentContext, group: &str) -> ApiResult<AgentId> {
    let request = FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string())).with_key_type(0);
    let answer = kafka::call(ctx, ctx.agent_id, 3, &request).await?;
    match ResponseError::try_from_code(answer.error_code) {
        None => Ok(answer.node_id.0),
        Some(e) => Err(ApiError::kafka(e, format!("no coordinator for group '{group}': {}", super::error::kafka_name(e)))),
    }
}

/// The first offset whose record is at or after `timestamp` (ListOffsets at the leader); the high
/// watermark when every record is older.
pub async fn offset_for_timestamp(ctx: &AgentContext, topic: &Topic, partition: i32, timestamp: i64) -> ApiResult<i64> {
    let leader = leader(ctx, topic, partition).await?;
    let request = ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(vec![
        ListOffsetsTopic::default().with_name(super::topic_name(&topic.name)).with_partitions(vec![
            ListOffsetsPartition::default().with_partition_index(partition).with_current_leader_epoch(-1).with_timestamp(timestamp),
        ]),
    ]);
    let answer = kafka::call(ctx, leader, 7, &request).await?;
    let p =
        answer.topics.first().and_then(|t| t.partitions.first()).ok_or_else(|| ApiError::invalid("ListOffsets answered no partition"))?;
    if let Some(e) = ResponseError::try_from_code(p.error_code) {
        return Err(e.into());
    }
    if p.offset >= 0 {
        return Ok(p.offset);
    }
    let state = ctx.metadata.partition_state(PartitionId { topic_id: topic.id, partition }).await?;
    Ok(state.map_or(0, |s| s.high_watermark))
}

/// Every partition's overview by (topic id, partition).
pub async fn overview(ctx: &AgentContext) -> ApiResult<HashMap<PartitionId, PartitionOverview>> {
    Ok(ctx.metadata.partition_overview().await?.into_iter().map(|p| (p.state.id, p)).collect())
}
