//! `BrokerError`: what a handler can fail with, and the only mapping to Kafka error codes.
//!
//! Store errors are mapped by kind, in the dialect of the API being served (the route glue records
//! it in a task-local): fencing is NOT_COORDINATOR for a group coordinator's APIs and
//! NOT_LEADER_OR_FOLLOWER elsewhere; an unavailable store is COORDINATOR_NOT_AVAILABLE for the
//! former (clients look the coordinator up again) and REQUEST_TIMED_OUT for the rest; a name taken is
//! TOPIC_ALREADY_EXISTS only for CreateTopics. Anything unexpected becomes UNKNOWN_SERVER_ERROR and is
//! logged with its detail. No handler maps a store error by hand.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use streamhouse_metadata::{MetadataError, MetadataErrorKind};
use streamhouse_storage::StorageError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BrokerError {
    /// A Kafka error a client knows how to handle (per topic or partition).
    #[error("{0:?}")]
    Kafka(ResponseError),
    #[error("metadata store: {0}")]
    Metadata(#[from] MetadataError),
    #[error("object store: {0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Protocol(#[from] streamhouse_protocol::ProtocolError),
}

tokio::task_local! {
    /// The API whose request this task serves, for the error dialect.
    static SERVING: ApiKey;
}

/// Runs `f` as the handling of an `api` request: errors inside map to that API's codes.
pub async fn serving<F: std::future::Future>(api: ApiKey, f: F) -> F::Output {
    SERVING.scope(api, f).await
}

/// The APIs served by a group's coordinator.
pub fn is_coordinator_api(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::OffsetCommit
            | ApiKey::OffsetFetch
            | ApiKey::DescribeGroups
            | ApiKey::DeleteGroups
            | ApiKey::OffsetDelete
    )
}

impl BrokerError {
    pub fn code(&self) -> i16 {
        self.response_error().code()
    }

    /// The Kafka error for this failure, in the dialect of the API being served.
    pub fn response_error(&self) -> ResponseError {
        let api = SERVING.try_with(|a| *a).ok();
        let coordinator = api.is_some_and(is_coordinator_api);
        match self {
            BrokerError::Kafka(e) => *e,
            BrokerError::Metadata(e) => match e.kind() {
                MetadataErrorKind::Fenced if coordinator => ResponseError::NotCoordinator,
                MetadataErrorKind::Fenced => ResponseError::NotLeaderOrFollower,
                MetadataErrorKind::NotFound if api == Some(ApiKey::DeleteGroups) => ResponseError::GroupIdNotFound,
                MetadataErrorKind::NotFound => ResponseError::UnknownTopicOrPartition,
                MetadataErrorKind::Conflict if api == Some(ApiKey::CreateTopics) => ResponseError::TopicAlreadyExists,
                MetadataErrorKind::Invalid => ResponseError::InvalidRequest,
                MetadataErrorKind::Unavailable => timed_out(api),
                MetadataErrorKind::Conflict | MetadataErrorKind::Corrupt => self.unexpected(),
            },
            BrokerError::Storage(e) if e.is_retriable() => ResponseError::KafkaStorageError,
            BrokerError::Storage(_) | BrokerError::Protocol(_) => self.unexpected(),
        }
    }

    fn unexpected(&self) -> ResponseError {
        tracing::error!(error = %self, "unexpected error answered as UNKNOWN_SERVER_ERROR");
        ResponseError::UnknownServerError
    }
}

/// What a request of `api` that could not finish in time is answered with: a code every client
/// retries on.
pub fn timed_out(api: Option<ApiKey>) -> ResponseError {
    match api {
        Some(a) if is_coordinator_api(a) || a == ApiKey::FindCoordinator => ResponseError::CoordinatorNotAvailable,
        // What every client retries a partition's fetch on (Java fails on REQUEST_TIMED_OUT there).
        Some(ApiKey::Fetch) => ResponseError::KafkaStorageError,
        _ => ResponseError::RequestTimedOut,
    }
}

impl From<ResponseError> for BrokerError {
    fn from(e: ResponseError) -> Self {
        BrokerError::Kafka(e)
    }
}

pub type Result<T> = std::result::Result<T, BrokerError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn fenced() -> BrokerError {
        BrokerError::Metadata(MetadataError::new(MetadataErrorKind::Fenced, "epoch moved on"))
    }

    #[tokio::test]
    async fn fencing_speaks_the_dialect_of_the_api() {
        assert_eq!(serving(ApiKey::OffsetCommit, async { fenced().response_error() }).await, ResponseError::NotCoordinator);
        assert_eq!(serving(ApiKey::Produce, async { fenced().response_error() }).await, ResponseError::NotLeaderOrFollower);
        let unavailable = || BrokerError::Metadata(MetadataError::new(MetadataErrorKind::Unavailable, "down"));
        assert_eq!(serving(ApiKey::Heartbeat, async { unavailable().response_error() }).await, ResponseError::CoordinatorNotAvailable);
        assert_eq!(serving(ApiKey::Metadata, async { unavailable().response_error() }).await, ResponseError::RequestTimedOut);
    }

    #[tokio::test]
    async fn a_taken_name_is_topic_already_exists_only_for_create_topics() {
        let conflict = || BrokerError::Metadata(MetadataError::new(MetadataErrorKind::Conflict, "taken"));
        assert_eq!(serving(ApiKey::CreateTopics, async { conflict().response_error() }).await, ResponseError::TopicAlreadyExists);
        assert_eq!(serving(ApiKey::CreatePartitions, async { conflict().response_error() }).await, ResponseError::UnknownServerError);
    }
}
