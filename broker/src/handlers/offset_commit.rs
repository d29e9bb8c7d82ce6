//! OffsetCommit: v2-8.
//!
//! Commits (with leader epoch, v6+, and metadata) go to the metadata store in one transaction fenced
//! by the coordinator epoch. Members must be current: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
//! REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID as Kafka; generation -1 with no member id is the
//! assign() consumer's commit, accepted while the group has no members. Metadata over 4096 bytes
//! gets OFFSET_METADATA_TOO_LARGE. Skipped: retention_time_ms (v2-4; the broker-wide retention
//! applies), KIP-848 member epochs (v9).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, RequestHeader};
use streamhouse_metadata::{CommittedOffset, MetadataErrorKind};

use crate::context::AgentContext;
use crate::error::Result;
use crate::groups;

/// Kafka's offset.metadata.max.bytes.
const MAX_METADATA_BYTES: usize = 4096;

pub async fn handle(ctx: &AgentContext, _: &RequestHeader, req: OffsetCommitRequest) -> Result<OffsetCommitResponse> {
    let group_error = commit(ctx, &req).await.err();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let too_large = p.committed_metadata.as_ref().is_some_and(|m| m.len() > MAX_METADATA_BYTES);
                    let error = group_error.or(too_large.then_some(ResponseError::OffsetMetadataTooLarge));
                    OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    Ok(OffsetCommitResponse::default().with_topics(topics))
}

async fn commit(ctx: &AgentContext, req: &OffsetCommitRequest) -> std::result::Result<(), ResponseError> {
    let group_id = req.group_id.0.as_str();
    let handle = groups::group(ctx, group_id).await?;
    let instance = req.group_instance_id.as_ref().map(|i| i.as_str());
    handle.with(|g| g.check_commit(req.member_id.as_str(), instance, req.generation_id_or_member_epoch))?;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let offsets: Vec<CommittedOffset> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .filter(|(_, p)| p.committed_metadata.as_ref().is_none_or(|m| m.len() <= MAX_METADATA_BYTES))
        .map(|(t, p)| CommittedOffset {
            topic: t.name.0.to_string(),
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: p.committed_leader_epoch,
            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            commit_timestamp_ms: now_ms,
        })
        .collect();
    match ctx.metadata.commit_offsets(ctx.agent_id, handle.epoch, group_id, &offsets).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == MetadataErrorKind::Fenced => {
            ctx.groups.forget(group_id);
            Err(ResponseError::NotCoordinator)
        }
        Err(e) => {
            tracing::warn!(group = group_id, error = %e, "offset commit failed");
            Err(ResponseError::CoordinatorNotAvailable)
        }
    }
}
