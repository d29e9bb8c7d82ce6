//! DescribeConfigs: v1-4.
//!
//! Topics (resource type 2): every known topic config with its value and source (TOPIC_CONFIG for
//! those set at creation, DEFAULT_CONFIG otherwise), filtered by configuration_keys; synonyms when
//! asked for; config types from v3. Brokers (type 4): the flags that matter to clients, as
//! STATIC_BROKER_CONFIG. Other resource types get INVALID_REQUEST.
//! Skipped: documentation strings (null).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::fallback::Fallback;
use super::topic_configs::{SOURCE_DEFAULT, SOURCE_TOPIC, TOPIC_DEFAULTS, TYPE_INT, TYPE_STRING};
use crate::context::AgentContext;
use crate::error::Result;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_STATIC_BROKER: i8 = 4;
const TYPE_BOOLEAN: i8 = 1;

/// One config as described: name, value, source, type.
struct Entry {
    name: String,
    value: String,
    source: i8,
    kind: i8,
}

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: DescribeConfigsRequest) -> Result<DescribeConfigsResponse> {
    let mut results = Vec::with_capacity(req.resources.len());
    for r in &req.resources {
        let base = DescribeConfigsResult::default().with_resource_type(r.resource_type).with_resource_name(r.resource_name.clone());
        let entries = match r.resource_type {
            RESOURCE_TOPIC => topic_entries(ctx, r.resource_name.as_str()).await?,
            RESOURCE_BROKER => Ok(broker_entries(ctx)),
            _ => Err(ResponseError::InvalidRequest),
        };
        results.push(match entries {
            Ok(entries) => base.with_configs(
                entries
                    .into_iter()
                    .filter(|e| wanted(r, &e.name))
                    .map(|e| describe(e, req.include_synonyms, header.request_api_version))
                    .collect(),
            ),
            Err(code) => base.with_error_code(code.code()),
        });
    }
    Ok(DescribeConfigsResponse::default().with_results(results))
}

async fn topic_entries(ctx: &AgentContext, name: &str) -> Result<std::result::Result<Vec<Entry>, ResponseError>> {
    let Some(topic) = ctx.metadata.topic(name).await? else {
        return Ok(Err(ResponseError::UnknownTopicOrPartition));
    };
    Ok(Ok(TOPIC_DEFAULTS
        .iter()
        .map(|(name, default, kind)| {
            let (value, source) = match topic.configs.get(*name) {
                Some(v) => (v.clone(), SOURCE_TOPIC),
                None => (default.to_string(), SOURCE_DEFAULT),
            };
            Entry { name: name.to_string(), value, source, kind: *kind }
        })
        .collect()))
}

fn broker_entries(ctx: &AgentContext) -> Vec<Entry> {
    let c = &ctx.config;
    let entry = |name: &str, value: String, kind| Entry { name: name.to_string(), value, source: SOURCE_STATIC_BROKER, kind };
    vec![
        entry("broker.id", ctx.agent_id.to_string(), TYPE_INT),
        entry("auto.create.topics.enable", c.auto_create_topics.to_string(), TYPE_BOOLEAN),
        entry("num.partitions", c.default_partitions.to_string(), TYPE_INT),
        entry("socket.request.max.bytes", c.max_request_bytes.to_string(), TYPE_INT),
        entry("advertised.listeners", format!("PLAINTEXT://{}:{}", ctx.cluster.me.host, ctx.cluster.me.port), TYPE_STRING),
    ]
}

/// No keys, null or empty, means every config (as Kafka's ConfigHelper reads it).
fn wanted(r: &DescribeConfigsResource, name: &str) -> bool {
    r.configuration_keys.as_ref().is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| k.as_str() == name))
}

fn describe(e: Entry, synonyms: bool, version: i16) -> DescribeConfigsResourceResult {
    let value = Some(StrBytes::from_string(e.value.clone()));
    let synonyms = if synonyms {
        vec![
            DescribeConfigsSynonym::default()
                .with_name(StrBytes::from_string(e.name.clone()))
                .with_value(value.clone())
                .with_source(e.source),
        ]
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(e.name))
        .with_value(value)
        .with_config_source(e.source)
        .with_read_only(e.source == SOURCE_STATIC_BROKER)
        .with_config_type(if version >= 3 { e.kind } else { 0 })
        .with_synonyms(synonyms)
}

impl Fallback for DescribeConfigsRequest {
    type Response = DescribeConfigsResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<DescribeConfigsResponse> {
        let results = self
            .resources
            .iter()
            .map(|r| {
                DescribeConfigsResult::default()
                    .with_error_code(code.code())
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
            })
            .collect();
        Some(DescribeConfigsResponse::default().with_results(results))
    }
}
