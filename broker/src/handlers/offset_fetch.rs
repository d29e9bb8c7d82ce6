//! OffsetFetch: v1-8 (several groups per request from v8, KIP-709).
//!
//! Committed offsets from the metadata store: the asked-for partitions (offset -1 where nothing is
//! committed) or, with topics null, everything the group committed. require_stable is satisfied
//! trivially: there are no pending transactional offsets. Skipped: KIP-848 member epochs (v9).

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::StrBytes;
use streamhouse_metadata::CommittedOffset;

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::Result;
use crate::groups;

/// One partition's answer: (partition, offset, leader epoch, metadata).
type Answer = (i32, i64, i32, Option<String>);

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: OffsetFetchRequest) -> Result<OffsetFetchResponse> {
    if header.request_api_version >= 8 {
        let mut groups_out = Vec::with_capacity(req.groups.len());
        for g in &req.groups {
            let wanted = g.topics.as_ref().map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect());
            let (answers, error) = fetch(ctx, g.group_id.0.as_str(), wanted).await;
            let topics = answers
                .into_iter()
                .map(|(topic, parts)| {
                    OffsetFetchResponseTopics::default().with_name(TopicName(StrBytes::from_string(topic))).with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, o, e, m)| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(o)
                                    .with_committed_leader_epoch(e)
                                    .with_metadata(Some(StrBytes::from_string(m.unwrap_or_default())))
                            })
                            .collect(),
                    )
                })
                .collect();
            groups_out
                .push(OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone()).with_topics(topics).with_error_code(error));
        }
        return Ok(OffsetFetchResponse::default().with_groups(groups_out));
    }
    let wanted = req.topics.as_ref().map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect());
    let (answers, error) = fetch(ctx, req.group_id.0.as_str(), wanted).await;
    let version = header.request_api_version;
    let topics = answers
        .into_iter()
        .map(|(topic, parts)| {
            OffsetFetchResponseTopic::default().with_name(TopicName(StrBytes::from_string(topic))).with_partitions(
                parts
                    .into_iter()
                    .map(|(p, o, e, m)| {
                        let r = OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(o)
                            .with_metadata(Some(StrBytes::from_string(m.unwrap_or_default())));
                        if version >= 5 { r.with_committed_leader_epoch(e) } else { r }
                    })
                    .collect(),
            )
        })
        .collect();
    let r = OffsetFetchResponse::default().with_topics(topics);
    Ok(if version >= 2 { r.with_error_code(error) } else { r })
}

/// The answers per topic, in request order (or committed order for "all"), and a group error code.
async fn fetch(ctx: &AgentContext, group: &str, wanted: Option<Vec<(String, Vec<i32>)>>) -> (Vec<(String, Vec<Answer>)>, i16) {
    // Every partition asked for, as never committed.
    let uncommitted = |wanted: Option<Vec<(String, Vec<i32>)>>| {
        wanted.unwrap_or_default().into_iter().map(|(t, ps)| (t, ps.into_iter().map(|p| (p, -1, -1, None)).collect())).collect()
    };
    let failed = |e: ResponseError, wanted| (uncommitted(wanted), e.code());
    match groups::existing(ctx, group, ResponseError::GroupIdNotFound).await {
        Ok(_) => {}
        // A group nobody uses has no offsets to read.
        Err(ResponseError::GroupIdNotFound) => return (uncommitted(wanted), 0),
        Err(e) => return failed(e, wanted),
    }
    let committed = match ctx.metadata.fetch_offsets(group).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(group, error = %e, "cannot read committed offsets");
            return failed(ResponseError::CoordinatorLoadInProgress, wanted);
        }
    };
    let by_key: HashMap<(&str, i32), &CommittedOffset> = committed.iter().map(|c| ((c.topic.as_str(), c.partition), c)).collect();
    let answers = match wanted {
        Some(wanted) => wanted
            .into_iter()
            .map(|(topic, partitions)| {
                let parts = partitions
                    .into_iter()
                    .map(|p| match by_key.get(&(topic.as_str(), p)) {
                        Some(c) => (p, c.offset, c.leader_epoch, c.metadata.clone()),
                        None => (p, -1, -1, None),
                    })
                    .collect();
                (topic, parts)
            })
            .collect(),
        None => {
            let mut all: Vec<(String, Vec<Answer>)> = Vec::new();
            for c in &committed {
                let entry = (c.partition, c.offset, c.leader_epoch, c.metadata.clone());
                match all.iter_mut().find(|(t, _)| *t == c.topic) {
                    Some((_, parts)) => parts.push(entry),
                    None => all.push((c.topic.clone(), vec![entry])),
                }
            }
            all
        }
    };
    (answers, 0)
}

impl Fallback for OffsetFetchRequest {
    type Response = OffsetFetchResponse;

    /// The whole request failed: the group-level error code (v2+, per group from v8), and below v2,
    /// where only partitions carry codes, each partition asked for.
    fn failed(&self, _: &AgentContext, version: i16, code: ResponseError) -> Option<OffsetFetchResponse> {
        if version >= 8 {
            let groups = self
                .groups
                .iter()
                .map(|g| OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone()).with_error_code(code.code()))
                .collect();
            return Some(OffsetFetchResponse::default().with_groups(groups));
        }
        if version >= 2 {
            return Some(OffsetFetchResponse::default().with_error_code(code.code()));
        }
        let topics = self
            .topics
            .iter()
            .flatten()
            .map(|t| {
                let partitions = t
                    .partition_indexes
                    .iter()
                    .map(|p| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(-1)
                            .with_error_code(code.code())
                    })
                    .collect();
                OffsetFetchResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
            })
            .collect();
        Some(OffsetFetchResponse::default().with_topics(topics))
    }
}
