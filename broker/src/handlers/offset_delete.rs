//! OffsetDelete: v0 (KIP-496). Deletes committed offsets of some partitions; a partition of a topic
//! the group's live consumers subscribe to gets GROUP_SUBSCRIBED_TO_TOPIC (read from their
//! `consumer` protocol subscriptions), the rest are deleted.

use std::collections::HashSet;

use bytes::Buf;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse, RequestHeader};
use kafka_protocol::protocol::Decodable;
use streamhouse_metadata::MetadataErrorKind;

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::{BrokerError, Result};
use crate::groups::{self, group::Group};

pub async fn handle(ctx: &AgentContext, _: &RequestHeader, req: OffsetDeleteRequest) -> Result<OffsetDeleteResponse> {
    let group_id = req.group_id.0.as_str();
    let handle = match groups::existing(ctx, group_id, ResponseError::GroupIdNotFound).await {
        Ok(h) => h,
        Err(e) => return Ok(OffsetDeleteResponse::default().with_error_code(e.code())),
    };
    let subscribed = handle.with(subscribed_topics);
    let mut doomed = Vec::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let busy = subscribed.contains(t.name.0.as_str());
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                if !busy {
                    doomed.push((t.name.0.to_string(), p.partition_index));
                }
                let code = if busy { ResponseError::GroupSubscribedToTopic.code() } else { 0 };
                OffsetDeleteResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
            })
            .collect();
        topics.push(OffsetDeleteResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions));
    }
    let error = match ctx.metadata.delete_offsets(ctx.agent_id, handle.epoch, group_id, &doomed).await {
        Ok(()) => 0,
        Err(e) => {
            if e.kind() == MetadataErrorKind::Fenced {
                ctx.groups.forget(group_id);
            }
            BrokerError::from(e).code()
        }
    };
    Ok(OffsetDeleteResponse::default().with_error_code(error).with_topics(topics))
}

/// Topics named in the live members' consumer subscriptions (a version i16, then the body).
fn subscribed_topics(g: &mut Group) -> HashSet<String> {
    if g.protocol_type.as_deref() != Some("consumer") {
        return HashSet::new();
    }
    let protocol = g.protocol.clone().unwrap_or_default();
    let mut topics = HashSet::new();
    for m in g.members.values() {
        let mut meta = m.metadata_for(&protocol);
        if meta.remaining() < 2 {
            continue;
        }
        let version = meta.get_i16();
        if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut meta, version) {
            topics.extend(sub.topics.iter().map(|t| t.to_string()));
        }
    }
    topics
}

impl Fallback for OffsetDeleteRequest {
    type Response = OffsetDeleteResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<OffsetDeleteResponse> {
        Some(OffsetDeleteResponse::default().with_error_code(code.code()))
    }
}
