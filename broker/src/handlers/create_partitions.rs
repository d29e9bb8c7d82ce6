//! CreatePartitions: v0-3.
//!
//! Grows a topic to `count` partitions (INVALID_PARTITIONS if not more than now or more than
//! --max-partitions-per-topic, POLICY_VIOLATION past the cluster's --max-partitions), validate_only
//! checks without growing; the new partitions are leased at once.
//! Skipped: manual assignments (INVALID_REPLICA_ASSIGNMENT).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use tracing::info;

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::Result;
use crate::leases;

pub async fn handle(ctx: &AgentContext, _: &RequestHeader, req: CreatePartitionsRequest) -> Result<CreatePartitionsResponse> {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        results.push(match grow(ctx, t, req.validate_only).await {
            Ok(()) => r,
            Err((code, message)) => r.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    Ok(CreatePartitionsResponse::default().with_results(results))
}

async fn grow(ctx: &AgentContext, t: &CreatePartitionsTopic, validate_only: bool) -> std::result::Result<(), (ResponseError, String)> {
    let name = t.name.0.as_str();
    let refusal = |e: crate::error::BrokerError| (e.response_error(), e.to_string());
    let topic = ctx.metadata.topic(name).await.map_err(|e| refusal(e.into()))?;
    let topic = topic.ok_or((ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist")))?;
    if t.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err((ResponseError::InvalidReplicaAssignment, "manual replica assignment is not supported".into()));
    }
    if t.count <= topic.partitions {
        return Err((
            ResponseError::InvalidPartitions,
            format!("topic '{name}' has {} partitions; the new count must be greater", topic.partitions),
        ));
    }
    super::topic_configs::check_partition_limits(ctx, t.count, t.count - topic.partitions).await?;
    if validate_only {
        return Ok(());
    }
    let grown = ctx.metadata.create_partitions(name, t.count).await.map_err(|e| refusal(e.into()))?;
    info!(topic = name, partitions = grown.partitions, "grew topic");
    leases::acquire_topic(ctx, &grown).await.map_err(refusal)
}

impl Fallback for CreatePartitionsRequest {
    type Response = CreatePartitionsResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<CreatePartitionsResponse> {
        let results = self
            .topics
            .iter()
            .map(|t| CreatePartitionsTopicResult::default().with_name(t.name.clone()).with_error_code(code.code()))
            .collect();
        Some(CreatePartitionsResponse::default().with_results(results))
    }
}
