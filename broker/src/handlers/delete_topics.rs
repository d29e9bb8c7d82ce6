//! DeleteTopics: v1-6 (by name, or by topic id from v6).
//!
//! Removes the topic, its partitions, index rows and producer state in one metadata transaction
//! and drops our leadership of its partitions; its objects are left for the sweeper.
//! UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID by id) for a topic that does not exist.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::StrBytes;
use tracing::info;
use uuid::Uuid;

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::{BrokerError, Result};

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: DeleteTopicsRequest) -> Result<DeleteTopicsResponse> {
    let wanted: Vec<(Option<String>, Uuid)> = if header.request_api_version >= 6 {
        req.topics.into_iter().map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id)).collect()
    } else {
        req.topic_names.into_iter().map(|n| (Some(n.0.to_string()), Uuid::nil())).collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let result = delete(ctx, name.clone(), id).await;
        let r = DeletableTopicResult::default().with_name(name.map(|n| TopicName(StrBytes::from_string(n)))).with_topic_id(id);
        let version = header.request_api_version;
        let r = match result {
            Ok(deleted) => r.with_name(Some(TopicName(StrBytes::from_string(deleted)))),
            Err(e) if version >= 5 => r.with_error_code(e.code()).with_error_message(Some(StrBytes::from_string(e.to_string()))),
            Err(e) => r.with_error_code(e.code()),
        };
        responses.push(if version >= 6 { r } else { r.with_topic_id(Uuid::nil()) });
    }
    Ok(DeleteTopicsResponse::default().with_responses(responses))
}

async fn delete(ctx: &AgentContext, name: Option<String>, id: Uuid) -> Result<String> {
    let name = match name {
        Some(n) => n,
        None => match ctx.metadata.topic_by_id(id).await? {
            Some(t) => t.name,
            None => return Err(ResponseError::UnknownTopicId.into()),
        },
    };
    match ctx.metadata.delete_topic(&name).await {
        Ok(_) => {
            ctx.partitions.remove_topic(&name);
            ctx.metrics.topics.forget(&name);
            info!(topic = name, "deleted topic");
            Ok(name)
        }
        Err(e) => Err(BrokerError::from(e)),
    }
}

impl Fallback for DeleteTopicsRequest {
    type Response = DeleteTopicsResponse;

    fn failed(&self, _: &AgentContext, version: i16, code: ResponseError) -> Option<DeleteTopicsResponse> {
        let responses = if version >= 6 {
            self.topics
                .iter()
                .map(|t| DeletableTopicResult::default().with_name(t.name.clone()).with_topic_id(t.topic_id).with_error_code(code.code()))
                .collect()
        } else {
            self.topic_names
                .iter()
                .map(|n| DeletableTopicResult::default().with_name(Some(n.clone())).with_error_code(code.code()))
                .collect()
        };
        Some(DeleteTopicsResponse::default().with_responses(responses))
    }
}
