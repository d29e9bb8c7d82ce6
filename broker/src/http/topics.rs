//! Topics: list, describe (partitions, and the groups reading it with their lag), create, delete,
//! add partitions. Writes are CreateTopics, DeleteTopics and CreatePartitions requests handled by
//! this agent's own Kafka handlers, so names, limits and configs are checked exactly as for clients.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest};
use kafka_protocol::protocol::StrBytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use streamhouse_metadata::AgentId;

use super::error::{ApiError, ApiResult};
use super::extract::{Body, Path};
use super::{Shared, groups, kafka, lookup, topic_name};

/// The Kafka versions the API speaks to its own handlers: the newest each route serves.
const CREATE_TOPICS_VERSION: i16 = 7;
const DELETE_TOPICS_VERSION: i16 = 6;
const CREATE_PARTITIONS_VERSION: i16 = 3;

#[derive(Serialize)]
pub struct TopicSummary {
    name: String,
    id: String,
    partitions: i32,
    messages: i64,
    bytes: i64,
    /// Groups with offsets committed on the topic, and their lag summed.
    groups: usize,
    lag: i64,
    config: BTreeMap<String, String>,
}

pub async fn list(State(state): State<Shared>) -> ApiResult<Json<Vec<TopicSummary>>> {
    let md = &state.ctx.metadata;
    let (topics, partitions) = tokio::try_join!(md.topics(), md.partition_overview())?;
    let mut totals: HashMap<_, (i64, i64)> = HashMap::new();
    let names: HashMap<_, _> = topics.iter().map(|t| (t.id, t.name.as_str())).collect();
    let mut ends: HashMap<(&str, i32), i64> = HashMap::new();
    for p in &partitions {
        let t = totals.entry(p.state.id.topic_id).or_default();
        t.0 += p.state.high_watermark - p.state.log_start_offset;
        t.1 += p.stored_bytes;
        if let Some(name) = names.get(&p.state.id.topic_id) {
            ends.insert((name, p.state.id.partition), p.state.high_watermark);
        }
    }
    let mut readers: HashMap<String, (usize, i64)> = HashMap::new();
    for (_, offsets) in groups::committed_offsets(&state.ctx).await? {
        let mut lag_by_topic: HashMap<&str, i64> = HashMap::new();
        for o in &offsets {
            *lag_by_topic.entry(o.topic.as_str()).or_default() +=
                groups::lag(o.offset, ends.get(&(o.topic.as_str(), o.partition)).copied().unwrap_or(0));
        }
        for (topic, lag) in lag_by_topic {
            let r = readers.entry(topic.to_string()).or_default();
            r.0 += 1;
            r.1 += lag;
        }
    }
    let mut out: Vec<TopicSummary> = topics
        .iter()
        .map(|t| {
            let (messages, bytes) = totals.get(&t.id).copied().unwrap_or_default();
            let (groups, lag) = readers.get(&t.name).copied().unwrap_or_default();
            TopicSummary {
                id: t.id.to_string(),
                partitions: t.partitions,
                messages,
                bytes,
                groups,
                lag,
                config: t.configs.clone(),
                name: t.name.clone(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(out))
}

#[derive(Serialize)]
pub struct TopicDetail {
    name: String,
    id: String,
    config: BTreeMap<String, String>,
    messages: i64,
    bytes: i64,
    partitions: Vec<PartitionDetail>,
    groups: Vec<GroupLag>,
}

#[derive(Serialize)]
struct PartitionDetail {
    partition: i32,
    leader: Option<AgentId>,
    epoch: i32,
    log_start_offset: i64,
    high_watermark: i64,
    messages: i64,
    bytes: i64,
}

#[derive(Serialize)]
struct GroupLag {
    group: String,
    lag: i64,
}

pub async fn describe(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<Json<TopicDetail>> {
    let ctx = &state.ctx;
    let topic = lookup::topic(ctx, &name).await?;
    let overview = lookup::overview(ctx).await?;
    let mut partitions: Vec<PartitionDetail> = overview
        .values()
        .filter(|p| p.state.id.topic_id == topic.id)
        .map(|p| PartitionDetail {
            partition: p.state.id.partition,
            leader: p.state.leader,
            epoch: p.state.leader_epoch,
            log_start_offset: p.state.log_start_offset,
            high_watermark: p.state.high_watermark,
            messages: p.state.high_watermark - p.state.log_start_offset,
            bytes: p.stored_bytes,
        })
        .collect();
    partitions.sort_by_key(|p| p.partition);
    let ends: HashMap<i32, i64> = partitions.iter().map(|p| (p.partition, p.high_watermark)).collect();
    let mut readers = Vec::new();
    for (group, offsets) in groups::committed_offsets(ctx).await? {
        let mine: Vec<_> = offsets.iter().filter(|o| o.topic == topic.name).collect();
        if mine.is_empty() {
            continue;
        }
        let lag = mine.iter().map(|o| groups::lag(o.offset, ends.get(&o.partition).copied().unwrap_or(0))).sum();
        readers.push(GroupLag { group, lag });
    }
    Ok(Json(TopicDetail {
        messages: partitions.iter().map(|p| p.messages).sum(),
        bytes: partitions.iter().map(|p| p.bytes).sum(),
        name: topic.name,
        id: topic.id.to_string(),
        config: topic.configs,
        partitions,
        groups: readers,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTopic {
    name: String,
    /// The agent's --default-partitions when absent.
    partitions: Option<i32>,
    #[serde(default)]
    config: BTreeMap<String, String>,
}

pub async fn create(State(state): State<Shared>, Body(body): Body<NewTopic>) -> ApiResult<(StatusCode, Json<TopicDetail>)> {
    let ctx = &state.ctx;
    let configs = body
        .config
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default().with_name(StrBytes::from_string(k.clone())).with_value(Some(StrBytes::from_string(v.clone())))
        })
        .collect();
    let request = CreateTopicsRequest::default().with_timeout_ms(timeout_ms(&state)).with_topics(vec![
        CreatableTopic::default()
            .with_name(topic_name(&body.name))
            .with_num_partitions(body.partitions.unwrap_or(-1))
            .with_replication_factor(-1)
            .with_configs(configs),
    ]);
    let answer = kafka::call(ctx, ctx.agent_id, CREATE_TOPICS_VERSION, &request).await?;
    let t = answer.topics.first().ok_or_else(|| ApiError::invalid("CreateTopics answered no topic"))?;
    check(t.error_code, t.error_message.as_deref(), &body.name)?;
    let detail = describe(State(state.clone()), Path(body.name)).await?;
    Ok((StatusCode::CREATED, detail))
}

pub async fn delete(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let ctx = &state.ctx;
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(timeout_ms(&state))
        .with_topics(vec![DeleteTopicState::default().with_name(Some(topic_name(&name)))]);
    let answer = kafka::call(ctx, ctx.agent_id, DELETE_TOPICS_VERSION, &request).await?;
    let r = answer.responses.first().ok_or_else(|| ApiError::invalid("DeleteTopics answered no topic"))?;
    check(r.error_code, r.error_message.as_deref(), &name)?;
    Ok(Json(json!({"deleted": name})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPartitions {
    /// The new total, as in Kafka's CreatePartitions.
    count: i32,
}

pub async fn add_partitions(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Body(body): Body<NewPartitions>,
) -> ApiResult<Json<TopicDetail>> {
    let ctx = &state.ctx;
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(timeout_ms(&state))
        .with_topics(vec![CreatePartitionsTopic::default().with_name(topic_name(&name)).with_count(body.count)]);
    let answer = kafka::call(ctx, ctx.agent_id, CREATE_PARTITIONS_VERSION, &request).await?;
    let r = answer.results.first().ok_or_else(|| ApiError::invalid("CreatePartitions answered no topic"))?;
    check(r.error_code, r.error_message.as_deref(), &name)?;
    describe(State(state.clone()), Path(name)).await
}

fn timeout_ms(state: &Shared) -> i32 {
    i32::try_from(state.ctx.config.request_deadline_ms).unwrap_or(i32::MAX)
}

/// A topic-level answer from a Kafka handler: its message when it gave one.
fn check(code: i16, message: Option<&str>, topic: &str) -> ApiResult<()> {
    let Some(e) = ResponseError::try_from_code(code) else { return Ok(()) };
    let message = match message {
        Some(m) if !m.is_empty() => m.to_string(),
        _ if e == ResponseError::UnknownTopicOrPartition => return Err(ApiError::unknown_topic(topic)),
        _ if e == ResponseError::TopicAlreadyExists => format!("topic '{topic}' already exists"),
        _ => format!("topic '{topic}': {}", super::error::kafka_name(e)),
    };
    Err(ApiError::kafka(e, message))
}
