//! OffsetForLeaderEpoch: v2-4 (KIP-320: consumers detect log truncation after a leader change).
//!
//! For a requested epoch, answers the largest epoch <= it that this partition has had and its end
//! offset: the start offset of the next epoch, or the high watermark for the current one. An epoch
//! older than all we know answers UNDEFINED (-1, -1). current_leader_epoch is checked.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, RequestHeader};
use streamhouse_metadata::PartitionId;

use super::fallback::Fallback;
use super::leader_epoch::check_current_epoch;
use crate::context::AgentContext;
use crate::error::Result;

pub async fn handle(ctx: &AgentContext, _: &RequestHeader, req: OffsetForLeaderEpochRequest) -> Result<OffsetForLeaderEpochResponse> {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let answer = match end_offset(ctx, t.topic.0.as_str(), p).await {
                Ok((epoch, offset)) => EpochEndOffset::default().with_leader_epoch(epoch).with_end_offset(offset),
                Err(e) => EpochEndOffset::default().with_error_code(e.code()).with_leader_epoch(-1).with_end_offset(-1),
            };
            partitions.push(answer.with_partition(p.partition));
        }
        topics.push(OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions));
    }
    Ok(OffsetForLeaderEpochResponse::default().with_topics(topics))
}

async fn end_offset(ctx: &AgentContext, topic: &str, p: &OffsetForLeaderPartition) -> Result<(i32, i64)> {
    let topic = ctx.partitions.topic(topic).ok_or(ResponseError::UnknownTopicOrPartition)?;
    let id = PartitionId { topic_id: topic.id, partition: p.partition };
    let partition = ctx.partitions.led(&id).ok_or(ResponseError::NotLeaderOrFollower)?;
    let s = partition.snapshot();
    check_current_epoch(p.current_leader_epoch, s.leader_epoch)?;
    let history = ctx.metadata.epoch_history(id).await?;
    Ok(resolve(&history, p.leader_epoch, s.high_watermark))
}

/// `history` is (epoch, start offset), oldest first.
fn resolve(history: &[(i32, i64)], wanted: i32, high_watermark: i64) -> (i32, i64) {
    let Some(i) = history.iter().rposition(|(e, _)| *e <= wanted) else {
        return (-1, -1);
    };
    let end = history.get(i + 1).map_or(high_watermark, |(_, start)| *start);
    (history[i].0, end)
}

impl Fallback for OffsetForLeaderEpochRequest {
    type Response = OffsetForLeaderEpochResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<OffsetForLeaderEpochResponse> {
        let topics = self
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        EpochEndOffset::default()
                            .with_partition(p.partition)
                            .with_error_code(code.code())
                            .with_leader_epoch(-1)
                            .with_end_offset(-1)
                    })
                    .collect();
                OffsetForLeaderTopicResult::default().with_topic(t.topic.clone()).with_partitions(partitions)
            })
            .collect();
        Some(OffsetForLeaderEpochResponse::default().with_topics(topics))
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn epochs_resolve_to_the_next_epochs_start() {
        let h = [(1, 0), (2, 10), (4, 25)];
        assert_eq!(resolve(&h, 1, 40), (1, 10));
        assert_eq!(resolve(&h, 3, 40), (2, 25));
        assert_eq!(resolve(&h, 4, 40), (4, 40));
        assert_eq!(resolve(&h, 0, 40), (-1, -1));
    }
}
