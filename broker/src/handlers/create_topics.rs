//! CreateTopics: v2-7.
//!
//! Validates the name (INVALID_TOPIC_EXCEPTION), the partition count (-1 means
//! --default-partitions; INVALID_PARTITIONS below 1 or above --max-partitions-per-topic,
//! POLICY_VIOLATION past the cluster's --max-partitions), the replication factor (-1 or any positive
//! value: durability comes from the object store, not from replicas) and each config
//! (INVALID_CONFIG). validate_only checks without creating. v5+ echoes the topic's configs with
//! their sources. The new partitions are leased at once so producers need not wait.
//! Skipped: manual replica assignments (INVALID_REPLICA_ASSIGNMENT).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use streamhouse_metadata::NewTopic;
use tracing::info;

use super::fallback::Fallback;
use super::topic_configs::{SOURCE_DEFAULT, SOURCE_TOPIC, TOPIC_DEFAULTS, check_partition_limits, validate, validate_topic_name};
use crate::context::AgentContext;
use crate::error::{BrokerError, Result};
use crate::leases;

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: CreateTopicsRequest) -> Result<CreateTopicsResponse> {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.clone();
        let result = match create(ctx, t, req.validate_only).await {
            Ok(r) => r,
            Err((code, message)) => CreatableTopicResult::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(message)))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        };
        results.push(for_version(result.with_name(name), header.request_api_version));
    }
    Ok(CreateTopicsResponse::default().with_topics(results))
}

type Refusal = (ResponseError, String);

/// Clears what older versions cannot carry: topic ids (v7) and the echoed details (v5).
fn for_version(r: CreatableTopicResult, version: i16) -> CreatableTopicResult {
    let r = if version >= 7 { r } else { r.with_topic_id(uuid::Uuid::nil()) };
    if version >= 5 { r } else { r.with_num_partitions(-1).with_replication_factor(-1).with_configs(None) }
}

async fn create(ctx: &AgentContext, t: CreatableTopic, validate_only: bool) -> std::result::Result<CreatableTopicResult, Refusal> {
    let name = t.name.0.to_string();
    validate_topic_name(&name).map_err(|c| (c, format!("'{name}' is not a legal topic name: use 1-249 of [a-zA-Z0-9._-]")))?;
    let partitions = if t.num_partitions == -1 { ctx.config.default_partitions } else { t.num_partitions };
    if partitions < 1 {
        return Err((ResponseError::InvalidPartitions, format!("{partitions} partitions: a topic needs at least 1")));
    }
    check_partition_limits(ctx, partitions, partitions).await?;
    if t.replication_factor == 0 || t.replication_factor < -1 {
        return Err((ResponseError::InvalidReplicationFactor, "replication factor must be -1 or positive".into()));
    }
    if !t.assignments.is_empty() {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            "manual replica assignment is not supported: leases place partitions".into(),
        ));
    }
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        let Some(value) = &c.value else { continue };
        validate(c.name.as_str(), value.as_str()).map_err(|m| (ResponseError::InvalidConfig, m))?;
        configs.insert(c.name.to_string(), value.to_string());
    }
    let echoed = echo_configs(&configs);
    if validate_only {
        if ctx.metadata.topic(&name).await.map_err(store_refusal)?.is_some() {
            return Err((ResponseError::TopicAlreadyExists, format!("topic '{name}' already exists")));
        }
        return Ok(CreatableTopicResult::default().with_num_partitions(partitions).with_replication_factor(1).with_configs(Some(echoed)));
    }
    let topic = ctx.metadata.create_topic(NewTopic { name: name.clone(), partitions, configs }).await.map_err(store_refusal)?;
    info!(topic = name, partitions, "created topic");
    leases::acquire_topic(ctx, &topic).await.map_err(|e| (e.response_error(), e.to_string()))?;
    Ok(CreatableTopicResult::default()
        .with_topic_id(topic.id)
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(Some(echoed)))
}

fn store_refusal(e: streamhouse_metadata::MetadataError) -> Refusal {
    let message = e.to_string();
    (BrokerError::from(e).response_error(), message)
}

fn echo_configs(set: &BTreeMap<String, String>) -> Vec<CreatableTopicConfigs> {
    TOPIC_DEFAULTS
        .iter()
        .map(|(name, default, _)| {
            let (value, source) = match set.get(*name) {
                Some(v) => (v.clone(), SOURCE_TOPIC),
                None => (default.to_string(), SOURCE_DEFAULT),
            };
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(name))
                .with_value(Some(StrBytes::from_string(value)))
                .with_config_source(source)
        })
        .collect()
}

impl Fallback for CreateTopicsRequest {
    type Response = CreateTopicsResponse;

    fn failed(&self, _: &AgentContext, version: i16, code: ResponseError) -> Option<CreateTopicsResponse> {
        let topics = self
            .topics
            .iter()
            .map(|t| {
                let r = CreatableTopicResult::default().with_name(t.name.clone()).with_error_code(code.code());
                if version >= 5 { r.with_num_partitions(-1).with_replication_factor(-1) } else { r }
            })
            .collect();
        Some(CreateTopicsResponse::default().with_topics(topics))
    }
}
