//! OffsetCommit: v2-8.
//!
//! Commits (with leader epoch, v6+, and metadata) go to the metadata store in one transaction fenced
//! by the coordinator epoch. Members must be current: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
//! REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID as Kafka; generation -1 with no member id is the
//! assign() consumer's commit, accepted while the group has no members. Metadata over 4096 bytes
//! gets OFFSET_METADATA_TOO_LARGE, a partition of a topic that does not exist (or beyond its count)
//! UNKNOWN_TOPIC_OR_PARTITION; neither is committed. Skipped: retention_time_ms (v2-4; the broker-wide retention
//! applies), KIP-848 member epochs (v9).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, RequestHeader};
use streamhouse_metadata::{CommittedOffset, MetadataErrorKind};

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::{BrokerError, Result};
use crate::groups;

/// Kafka's offset.metadata.max.bytes.
const MAX_METADATA_BYTES: usize = 4096;

pub async fn handle(ctx: &AgentContext, _: &RequestHeader, req: OffsetCommitRequest) -> Result<OffsetCommitResponse> {
    // Per partition: None to commit it, or why not.
    let mut refusals: Vec<Vec<Option<ResponseError>>> = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let partitions = ctx.metadata.topic(t.name.0.as_str()).await?.map_or(0, |topic| topic.partitions);
        refusals.push(
            t.partitions
                .iter()
                .map(|p| {
                    if p.partition_index < 0 || p.partition_index >= partitions {
                        Some(ResponseError::UnknownTopicOrPartition)
                    } else if p.committed_metadata.as_ref().is_some_and(|m| m.len() > MAX_METADATA_BYTES) {
                        Some(ResponseError::OffsetMetadataTooLarge)
                    } else {
                        None
                    }
                })
                .collect(),
        );
    }
    let group_error = commit(ctx, &req, &refusals).await.err();
    let topics = req
        .topics
        .iter()
        .zip(&refusals)
        .map(|(t, refused)| {
            let partitions = t
                .partitions
                .iter()
                .zip(refused)
                .map(|(p, refusal)| {
                    let error = refusal.or(group_error);
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    Ok(OffsetCommitResponse::default().with_topics(topics))
}

/// Commits the partitions not refused, if the member may commit.
async fn commit(
    ctx: &AgentContext,
    req: &OffsetCommitRequest,
    refusals: &[Vec<Option<ResponseError>>],
) -> std::result::Result<(), ResponseError> {
    let group_id = req.group_id.0.as_str();
    let handle = groups::group(ctx, group_id).await?;
    let instance = req.group_instance_id.as_ref().map(|i| i.as_str());
    handle.with(|g| g.check_commit(req.member_id.as_str(), instance, req.generation_id_or_member_epoch))?;
    let now_ms = ctx.metadata.now_ms();
    let offsets: Vec<CommittedOffset> = req
        .topics
        .iter()
        .zip(refusals)
        .flat_map(|(t, refused)| t.partitions.iter().zip(refused).map(move |(p, refusal)| (t, p, refusal)))
        .filter(|(_, _, refusal)| refusal.is_none())
        .map(|(t, p, _)| CommittedOffset {
            topic: t.name.0.to_string(),
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: p.committed_leader_epoch,
            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            commit_timestamp_ms: now_ms,
        })
        .collect();
    if offsets.is_empty() {
        return Ok(());
    }
    match ctx.metadata.commit_offsets(ctx.agent_id, handle.epoch, group_id, &offsets).await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::warn!(group = group_id, error = %e, "offset commit failed");
            if e.kind() == MetadataErrorKind::Fenced {
                ctx.groups.forget(group_id);
            }
            Err(BrokerError::from(e).response_error())
        }
    }
}

impl Fallback for OffsetCommitRequest {
    type Response = OffsetCommitResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<OffsetCommitResponse> {
        let topics = self
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code.code()))
                    .collect();
                OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
            })
            .collect();
        Some(OffsetCommitResponse::default().with_topics(topics))
    }
}
