//! Consumer groups: list (paginated), describe (members with assignments, per-partition offsets and
//! lag), delete an empty group, reset an empty group's offsets (a dry run unless `execute`).
//!
//! Membership and state live with the group's coordinator, so they come from DescribeGroups sent
//! to it; committed offsets and log ends come from the shared store. Deletes and resets are
//! DeleteGroups and OffsetCommit (generation -1, as `kafka-consumer-groups --reset-offsets` sends)
//! at the coordinator, which refuses them for a group with members.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use bytes::{Buf, Bytes};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::{DeleteGroupsRequest, DescribeGroupsRequest, GroupId, OffsetCommitRequest};
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use streamhouse_metadata::{AgentId, CommittedOffset, PartitionId};

use super::error::{ApiError, ApiResult};
use super::extract::{Body, Path, Query};
use super::{Shared, kafka, lookup, topic_name};
use crate::context::AgentContext;

const DESCRIBE_VERSION: i16 = 5;
const DELETE_VERSION: i16 = 2;
const COMMIT_VERSION: i16 = 8;
pub const MAX_PAGE: usize = 500;

/// Records a group is behind on one partition; a committed offset past the end (the log was
/// truncated under it) is no lag, as Kafka's tools show it.
pub fn lag(committed: i64, log_end: i64) -> i64 {
    (log_end - committed).max(0)
}

/// Every group's committed offsets, by group id.
pub async fn committed_offsets(ctx: &AgentContext) -> ApiResult<Vec<(String, Vec<CommittedOffset>)>> {
    let mut out = Vec::new();
    for g in ctx.metadata.list_groups().await? {
        let offsets = ctx.metadata.fetch_offsets(&g.group_id).await?;
        out.push((g.group_id, offsets));
    }
    Ok(out)
}

/// Log end (high watermark) of every partition, by (topic name, partition).
async fn log_ends(ctx: &AgentContext) -> ApiResult<HashMap<(String, i32), i64>> {
    let (topics, states) = tokio::try_join!(ctx.metadata.topics(), ctx.metadata.all_partition_states())?;
    let names: HashMap<_, _> = topics.into_iter().map(|t| (t.id, t.name)).collect();
    Ok(states.into_iter().filter_map(|s| Some(((names.get(&s.id.topic_id)?.clone(), s.id.partition), s.high_watermark))).collect())
}

fn total_lag(offsets: &[CommittedOffset], ends: &HashMap<(String, i32), i64>) -> i64 {
    offsets.iter().map(|o| lag(o.offset, ends.get(&(o.topic.clone(), o.partition)).copied().unwrap_or(0))).sum()
}

async fn describe_at(ctx: &AgentContext, coordinator: AgentId, groups: &[String]) -> ApiResult<Vec<DescribedGroup>> {
    let request = DescribeGroupsRequest::default().with_groups(groups.iter().map(|g| GroupId(StrBytes::from_string(g.clone()))).collect());
    Ok(kafka::call(ctx, coordinator, DESCRIBE_VERSION, &request).await?.groups)
}

async fn describe_one(ctx: &AgentContext, group: &str) -> ApiResult<(AgentId, DescribedGroup)> {
    let coordinator = lookup::coordinator(ctx, group).await?;
    let described = describe_at(ctx, coordinator, &[group.to_string()]).await?;
    let g = described.into_iter().next().ok_or_else(|| ApiError::invalid("DescribeGroups answered no group"))?;
    if let Some(e) = ResponseError::try_from_code(g.error_code) {
        return Err(ApiError::kafka(e, format!("group '{group}': {}", super::error::kafka_name(e))));
    }
    Ok((coordinator, g))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    offset: Option<usize>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct GroupSummary {
    group: String,
    state: String,
    protocol_type: String,
    members: usize,
    coordinator: Option<AgentId>,
    lag: i64,
}

pub async fn list(State(state): State<Shared>, Query(page): Query<PageQuery>) -> ApiResult<Json<Value>> {
    let ctx = &state.ctx;
    let (offset, limit) = (page.offset.unwrap_or(0), page.limit.unwrap_or(100));
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::invalid(format!("limit must be 1 to {MAX_PAGE}, not {limit}")));
    }
    let mut all = ctx.metadata.list_groups().await?;
    all.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let total = all.len();
    let page: Vec<_> = all.into_iter().skip(offset).take(limit).collect();
    let ends = log_ends(ctx).await?;
    let coordinators: HashMap<String, AgentId> = ctx.metadata.group_coordinators().await?.into_iter().collect();
    // One DescribeGroups per coordinator for the groups it holds; groups nobody coordinates right
    // now are described from the store.
    let mut by_coordinator: BTreeMap<AgentId, Vec<String>> = BTreeMap::new();
    for g in &page {
        if let Some(c) = coordinators.get(&g.group_id) {
            by_coordinator.entry(*c).or_default().push(g.group_id.clone());
        }
    }
    let mut described: HashMap<String, DescribedGroup> = HashMap::new();
    for (coordinator, ids) in by_coordinator {
        // A coordinator that cannot answer leaves its groups described from the store.
        if let Ok(groups) = describe_at(ctx, coordinator, &ids).await {
            described.extend(groups.into_iter().filter(|g| g.error_code == 0).map(|g| (g.group_id.to_string(), g)));
        }
    }
    let mut groups = Vec::with_capacity(page.len());
    for g in page {
        let offsets = ctx.metadata.fetch_offsets(&g.group_id).await?;
        let (state, protocol_type, members) = match described.get(&g.group_id) {
            Some(d) => (d.group_state.to_string(), d.protocol_type.to_string(), d.members.len()),
            None => (if g.members.is_empty() { "Empty" } else { "Unknown" }.to_string(), g.protocol_type.clone(), g.members.len()),
        };
        groups.push(GroupSummary {
            lag: total_lag(&offsets, &ends),
            coordinator: coordinators.get(&g.group_id).copied(),
            group: g.group_id,
            state,
            protocol_type,
            members,
        });
    }
    Ok(Json(json!({"total": total, "offset": offset, "limit": limit, "groups": groups})))
}

#[derive(Serialize)]
pub struct GroupDetail {
    group: String,
    state: String,
    protocol_type: String,
    protocol: String,
    coordinator: AgentId,
    lag: i64,
    members: Vec<Member>,
    offsets: Vec<PartitionOffset>,
}

#[derive(Serialize)]
struct Member {
    member_id: String,
    client_id: String,
    client_host: String,
    assignments: Vec<Assignment>,
}

#[derive(Serialize)]
struct Assignment {
    topic: String,
    partitions: Vec<i32>,
}

#[derive(Serialize)]
struct PartitionOffset {
    topic: String,
    partition: i32,
    committed_offset: Option<i64>,
    log_end_offset: i64,
    lag: Option<i64>,
    member_id: Option<String>,
}

/// A consumer's assignment as the consumer protocol writes it (a version, then the struct); other
/// protocols' assignments are opaque and shown as none.
fn assignments(protocol_type: &str, bytes: &Bytes) -> Vec<Assignment> {
    if protocol_type != "consumer" || bytes.len() < 2 {
        return Vec::new();
    }
    let mut buf = bytes.clone();
    let version = buf.get_i16().clamp(0, 3);
    let Ok(a) = ConsumerProtocolAssignment::decode(&mut buf, version) else { return Vec::new() };
    a.assigned_partitions.into_iter().map(|tp| Assignment { topic: tp.topic.to_string(), partitions: tp.partitions }).collect()
}

pub async fn describe(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<GroupDetail>> {
    let ctx = &state.ctx;
    let (coordinator, g) = describe_one(ctx, &id).await?;
    let offsets = ctx.metadata.fetch_offsets(&id).await?;
    if g.group_state.as_str() == "Dead" && offsets.is_empty() {
        return Err(ApiError::kafka(ResponseError::GroupIdNotFound, format!("group '{id}' does not exist")));
    }
    let protocol_type = g.protocol_type.to_string();
    let members: Vec<Member> = g
        .members
        .iter()
        .map(|m| Member {
            member_id: m.member_id.to_string(),
            client_id: m.client_id.to_string(),
            client_host: m.client_host.to_string(),
            assignments: assignments(&protocol_type, &m.member_assignment),
        })
        .collect();
    let mut owner: HashMap<(String, i32), String> = HashMap::new();
    for m in &members {
        for a in &m.assignments {
            for p in &a.partitions {
                owner.insert((a.topic.clone(), *p), m.member_id.clone());
            }
        }
    }
    let ends = log_ends(ctx).await?;
    let mut rows: BTreeMap<(String, i32), Option<i64>> = offsets.iter().map(|o| ((o.topic.clone(), o.partition), Some(o.offset))).collect();
    // Assigned partitions with no commit yet show too, as kafka-consumer-groups shows them.
    for key in owner.keys() {
        rows.entry(key.clone()).or_insert(None);
    }
    let offsets: Vec<PartitionOffset> = rows
        .into_iter()
        .map(|((topic, partition), committed)| {
            let end = ends.get(&(topic.clone(), partition)).copied().unwrap_or(0);
            PartitionOffset {
                member_id: owner.get(&(topic.clone(), partition)).cloned(),
                lag: committed.map(|c| lag(c, end)),
                committed_offset: committed,
                log_end_offset: end,
                topic,
                partition,
            }
        })
        .collect();
    Ok(Json(GroupDetail {
        lag: offsets.iter().filter_map(|o| o.lag).sum(),
        group: id,
        state: g.group_state.to_string(),
        protocol: g.protocol_data.to_string(),
        protocol_type,
        coordinator,
        members,
        offsets,
    }))
}

pub async fn delete(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let ctx = &state.ctx;
    let coordinator = lookup::coordinator(ctx, &id).await?;
    let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(StrBytes::from_string(id.clone()))]);
    let answer = kafka::call(ctx, coordinator, DELETE_VERSION, &request).await?;
    let r = answer.results.first().ok_or_else(|| ApiError::invalid("DeleteGroups answered no group"))?;
    match ResponseError::try_from_code(r.error_code) {
        None => Ok(Json(json!({"deleted": id}))),
        Some(ResponseError::NonEmptyGroup) => Err(not_empty(&id)),
        Some(ResponseError::GroupIdNotFound) => {
            Err(ApiError::kafka(ResponseError::GroupIdNotFound, format!("group '{id}' does not exist")))
        }
        Some(e) => Err(e.into()),
    }
}

fn not_empty(id: &str) -> ApiError {
    ApiError::kafka(ResponseError::NonEmptyGroup, format!("group '{id}' has active members: stop its consumers first"))
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResetTo {
    Earliest,
    Latest,
    Offset,
    Timestamp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reset {
    topic: String,
    /// Every partition of the topic when absent.
    partitions: Option<Vec<i32>>,
    to: ResetTo,
    offset: Option<i64>,
    timestamp: Option<i64>,
    #[serde(default)]
    execute: bool,
}

#[derive(Serialize)]
struct ResetRow {
    topic: String,
    partition: i32,
    current_offset: Option<i64>,
    new_offset: i64,
}

pub async fn reset_offsets(State(state): State<Shared>, Path(id): Path<String>, Body(reset): Body<Reset>) -> ApiResult<Json<Value>> {
    let ctx = &state.ctx;
    let topic = lookup::topic(ctx, &reset.topic).await?;
    let partitions = reset.partitions.clone().unwrap_or_else(|| (0..topic.partitions).collect());
    for p in &partitions {
        lookup::check_partition(&topic, *p)?;
    }
    match (reset.to, reset.offset, reset.timestamp) {
        (ResetTo::Offset, None, _) => return Err(ApiError::invalid("to=offset needs an offset")),
        (ResetTo::Timestamp, _, None) => return Err(ApiError::invalid("to=timestamp needs a timestamp (Unix ms)")),
        _ => {}
    }
    let (coordinator, g) = describe_one(ctx, &id).await?;
    if !g.members.is_empty() {
        return Err(not_empty(&id));
    }
    let current: HashMap<i32, i64> =
        ctx.metadata.fetch_offsets(&id).await?.into_iter().filter(|o| o.topic == topic.name).map(|o| (o.partition, o.offset)).collect();
    let mut rows = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let state = ctx.metadata.partition_state(PartitionId { topic_id: topic.id, partition }).await?;
        let (start, end) = state.map_or((0, 0), |s| (s.log_start_offset, s.high_watermark));
        let new_offset = match reset.to {
            ResetTo::Earliest => start,
            ResetTo::Latest => end,
            // Out-of-range targets are clamped into the log, as kafka-consumer-groups does.
            ResetTo::Offset => reset.offset.unwrap_or(start).clamp(start, end),
            ResetTo::Timestamp => lookup::offset_for_timestamp(ctx, &topic, partition, reset.timestamp.unwrap_or(0)).await?,
        };
        rows.push(ResetRow { topic: topic.name.clone(), partition, current_offset: current.get(&partition).copied(), new_offset });
    }
    if reset.execute {
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(id.clone())))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                OffsetCommitRequestTopic::default().with_name(topic_name(&topic.name)).with_partitions(
                    rows.iter()
                        .map(|r| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(r.partition)
                                .with_committed_offset(r.new_offset)
                                .with_committed_leader_epoch(-1)
                        })
                        .collect(),
                ),
            ]);
        let answer = kafka::call(ctx, coordinator, COMMIT_VERSION, &request).await?;
        for p in answer.topics.iter().flat_map(|t| t.partitions.iter()) {
            match ResponseError::try_from_code(p.error_code) {
                None => {}
                // The group gained a member between the check and the commit.
                Some(ResponseError::UnknownMemberId | ResponseError::IllegalGeneration | ResponseError::RebalanceInProgress) => {
                    return Err(not_empty(&id));
                }
                Some(e) => return Err(e.into()),
            }
        }
    }
    Ok(Json(json!({"group": id, "executed": reset.execute, "offsets": rows})))
}
