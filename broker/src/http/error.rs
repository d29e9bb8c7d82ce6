//! The HTTP API's one error shape, `{"error": {"code": "UNKNOWN_TOPIC_OR_PARTITION", "message": ...}}`,
//! in Kafka's own error names: a failure reached through a Kafka handler keeps the code the handler
//! chose (`BrokerError::response_error`, the agent's one mapping), and the HTTP status is derived
//! from that code here, in one place.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kafka_protocol::error::ResponseError;
use serde_json::json;

use crate::error::BrokerError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Kafka's name for the error (upper snake case), or NOT_FOUND for a path no route serves.
    pub code: String,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn kafka(error: ResponseError, message: impl Into<String>) -> Self {
        ApiError { status: status_of(error), code: kafka_name(error), message: message.into() }
    }

    /// A request the API cannot act on: bad JSON, a missing field, a limit out of range.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::kafka(ResponseError::InvalidRequest, message)
    }

    pub fn unknown_topic(topic: &str) -> Self {
        Self::kafka(ResponseError::UnknownTopicOrPartition, format!("topic '{topic}' does not exist"))
    }

    pub fn read_only() -> Self {
        Self::kafka(
            ResponseError::ClusterAuthorizationFailed,
            "this agent's HTTP API is read-only (--http-read-only); use an agent started without it",
        )
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        let code = e.response_error();
        ApiError::kafka(code, e.to_string())
    }
}

impl From<ResponseError> for ApiError {
    fn from(code: ResponseError) -> Self {
        ApiError::kafka(code, describe(code))
    }
}

impl From<streamhouse_metadata::MetadataError> for ApiError {
    fn from(e: streamhouse_metadata::MetadataError) -> Self {
        BrokerError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = %self.code, message = %self.message, "HTTP API request failed");
        }
        (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response()
    }
}

/// HTTP status for a Kafka error: the caller's mistakes are 4xx, what a retry may fix is 503.
fn status_of(e: ResponseError) -> StatusCode {
    use ResponseError::*;
    match e {
        UnknownTopicOrPartition | GroupIdNotFound | UnknownTopicId => StatusCode::NOT_FOUND,
        TopicAlreadyExists | NonEmptyGroup => StatusCode::CONFLICT,
        ClusterAuthorizationFailed | TopicAuthorizationFailed | GroupAuthorizationFailed => StatusCode::FORBIDDEN,
        MessageTooLarge | RecordListTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        UnknownServerError => StatusCode::INTERNAL_SERVER_ERROR,
        e if e.is_retriable() => StatusCode::SERVICE_UNAVAILABLE,
        KafkaStorageError | BrokerNotAvailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `UnknownTopicOrPartition` → `UNKNOWN_TOPIC_OR_PARTITION`, the name Kafka's docs and tools use; a
/// code the codec does not know keeps its number.
pub fn kafka_name(e: ResponseError) -> String {
    match e {
        ResponseError::Unknown(code) => format!("UNKNOWN_ERROR_{code}"),
        known => crate::metrics::kafka_error_name(known),
    }
}

/// A sentence for a code that came back from a Kafka handler without one.
fn describe(code: ResponseError) -> String {
    match code {
        ResponseError::NotLeaderOrFollower | ResponseError::LeaderNotAvailable => {
            "the partition's leader is moving; retry in a moment".to_string()
        }
        ResponseError::CoordinatorNotAvailable | ResponseError::NotCoordinator => {
            "the group's coordinator is moving; retry in a moment".to_string()
        }
        ResponseError::RequestTimedOut => "the cluster did not answer in time; retry".to_string(),
        other => format!("the cluster answered {}", kafka_name(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kafkas() {
        assert_eq!(kafka_name(ResponseError::UnknownTopicOrPartition), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(kafka_name(ResponseError::InvalidTopicException), "INVALID_TOPIC_EXCEPTION");
        assert_eq!(kafka_name(ResponseError::NotLeaderOrFollower), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(kafka_name(ResponseError::Unknown(999)), "UNKNOWN_ERROR_999");
    }

    #[test]
    fn statuses_separate_mistakes_from_retries() {
        assert_eq!(status_of(ResponseError::UnknownTopicOrPartition), StatusCode::NOT_FOUND);
        assert_eq!(status_of(ResponseError::TopicAlreadyExists), StatusCode::CONFLICT);
        assert_eq!(status_of(ResponseError::NonEmptyGroup), StatusCode::CONFLICT);
        assert_eq!(status_of(ResponseError::InvalidPartitions), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(ResponseError::NotLeaderOrFollower), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of(ResponseError::ClusterAuthorizationFailed), StatusCode::FORBIDDEN);
        assert_eq!(status_of(ResponseError::UnknownServerError), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
