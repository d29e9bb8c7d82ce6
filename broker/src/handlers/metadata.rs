//! Metadata: v0-12.
//!
//! Brokers: every live agent, with its zone as rack. Topics: all, or those asked for by name (or by
//! id, v10+); an unknown name is created when auto-creation is on and the client allows it (always
//! below v4), with --default-partitions partitions. Each partition reports its lease holder as
//! leader with the lease's epoch (the Kafka leader epoch), and the live agents of the topic's agent
//! group as replicas (any of them can serve reads from the object store); a partition without a
//! live lease is LEADER_NOT_AVAILABLE. Skipped: authorized operations (reported as unknown).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::StrBytes;
use streamhouse_metadata::{MetadataErrorKind, NewTopic, Topic};
use tracing::{info, warn};
use uuid::Uuid;

use super::fallback::Fallback;
use super::topic_configs::{agent_group_of, check_partition_limits, validate_topic_name};
use crate::context::AgentContext;
use crate::error::{BrokerError, Result};
use crate::leases;

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: MetadataRequest) -> Result<MetadataResponse> {
    let version = header.request_api_version;
    let allow_create = ctx.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let mut topics = Vec::new();
    match req.topics {
        None => {
            for topic in ctx.metadata.topics().await? {
                topics.push(describe(ctx, &topic, version).await?);
            }
        }
        Some(wanted) => {
            for w in wanted {
                topics.push(match w.name {
                    Some(name) => by_name(ctx, name.0.as_str(), allow_create, version).await?,
                    None => by_id(ctx, w.topic_id, version).await?,
                });
            }
        }
    }
    Ok(response(ctx, version, topics))
}

fn response(ctx: &AgentContext, version: i16, topics: Vec<MetadataResponseTopic>) -> MetadataResponse {
    let brokers = ctx
        .cluster
        .live()
        .into_iter()
        .map(|a| {
            let b =
                MetadataResponseBroker::default().with_node_id(BrokerId(a.id)).with_host(StrBytes::from_string(a.host)).with_port(a.port);
            if version >= 1 { b.with_rack(a.zone.map(StrBytes::from_string)) } else { b }
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id((version >= 2).then(|| StrBytes::from_string(ctx.cluster_id.clone())))
        .with_controller_id(BrokerId(if version >= 1 { ctx.agent_id } else { -1 }))
        .with_topics(topics)
}

async fn by_name(ctx: &AgentContext, name: &str, allow_create: bool, version: i16) -> Result<MetadataResponseTopic> {
    if let Err(code) = validate_topic_name(name) {
        return Ok(failed(Some(name), Uuid::nil(), code));
    }
    if let Some(topic) = ctx.metadata.topic(name).await? {
        return describe(ctx, &topic, version).await;
    }
    if !allow_create {
        return Ok(failed(Some(name), Uuid::nil(), ResponseError::UnknownTopicOrPartition));
    }
    let partitions = ctx.config.default_partitions;
    // Auto-creation is creation: the same limits as CreateTopics, or any client could pass them.
    if let Err((code, why)) = check_partition_limits(ctx, partitions, partitions).await {
        warn!(topic = name, "not auto-creating the topic: {why}");
        return Ok(failed(Some(name), Uuid::nil(), code));
    }
    let new = NewTopic { name: name.to_string(), partitions, configs: Default::default() };
    let topic = match ctx.metadata.create_topic(new).await {
        Ok(t) => {
            info!(topic = name, partitions = t.partitions, "auto-created topic");
            t
        }
        // Another request created it first: use theirs.
        Err(e) if e.kind() == MetadataErrorKind::Conflict => match ctx.metadata.topic(name).await? {
            Some(t) => t,
            None => return Ok(failed(Some(name), Uuid::nil(), ResponseError::UnknownTopicOrPartition)),
        },
        Err(e) => return Err(BrokerError::from(e)),
    };
    leases::acquire_topic(ctx, &topic).await?;
    describe(ctx, &topic, version).await
}

async fn by_id(ctx: &AgentContext, id: Uuid, version: i16) -> Result<MetadataResponseTopic> {
    match ctx.metadata.topic_by_id(id).await? {
        Some(topic) => describe(ctx, &topic, version).await,
        None => Ok(failed(None, id, ResponseError::UnknownTopicId)),
    }
}

async fn describe(ctx: &AgentContext, topic: &Topic, version: i16) -> Result<MetadataResponseTopic> {
    let mut states = ctx.metadata.partition_states(topic.id).await?;
    states.sort_by_key(|s| s.id.partition);
    let group = agent_group_of(topic);
    let mut live = ctx.cluster.live();
    if states.iter().any(|s| s.leader.is_some_and(|l| !live.iter().any(|a| a.id == l))) {
        // A leader newer than our view of the cluster (it joined since our last lease round):
        // refresh, so every leader we name is also in the broker list clients connect through.
        ctx.cluster.set_live(ctx.metadata.live_agents().await?);
        live = ctx.cluster.live();
    }
    let group_agents: Vec<i32> = live.iter().filter(|a| a.group == group).map(|a| a.id).collect();
    let partitions = states
        .into_iter()
        .map(|s| {
            let epoch = if version >= 7 { s.leader_epoch } else { -1 };
            let p = MetadataResponsePartition::default().with_partition_index(s.id.partition).with_leader_epoch(epoch);
            match s.leader.filter(|l| live.iter().any(|a| a.id == *l)) {
                Some(leader) => {
                    let mut replicas = vec![BrokerId(leader)];
                    replicas.extend(group_agents.iter().filter(|a| **a != leader).map(|a| BrokerId(*a)));
                    p.with_leader_id(BrokerId(leader)).with_isr_nodes(replicas.clone()).with_replica_nodes(replicas)
                }
                None => p.with_error_code(ResponseError::LeaderNotAvailable.code()).with_leader_id(BrokerId(-1)),
            }
        })
        .collect();
    Ok(MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(if version >= 10 { topic.id } else { Uuid::nil() })
        .with_partitions(partitions)
        .with_topic_authorized_operations(i32::MIN))
}

fn failed(name: Option<&str>, id: Uuid, code: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_string()))))
        .with_topic_id(id)
        .with_error_code(code.code())
        .with_topic_authorized_operations(i32::MIN)
}

impl Fallback for MetadataRequest {
    type Response = MetadataResponse;

    /// Every topic asked for (all we know of, when all were asked for) as LEADER_NOT_AVAILABLE,
    /// which every client retries shortly: an empty list would read as "deleted".
    fn failed(&self, ctx: &AgentContext, version: i16, _: ResponseError) -> Option<MetadataResponse> {
        let topics = match &self.topics {
            Some(wanted) => wanted
                .iter()
                .map(|w| failed(w.name.as_ref().map(|n| n.0.as_str()), w.topic_id, ResponseError::LeaderNotAvailable))
                .collect(),
            None => ctx.partitions.topics().iter().map(|t| failed(Some(&t.name), Uuid::nil(), ResponseError::LeaderNotAvailable)).collect(),
        };
        Some(response(ctx, version, topics))
    }
}
