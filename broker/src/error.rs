//! `BrokerError`: what a handler can fail with, and the only mapping to Kafka error codes.
//! Store errors are mapped by kind: fencing is never retried here, unavailability is retriable for
//! the client, anything unexpected becomes UNKNOWN_SERVER_ERROR and is logged with its detail.

use kafka_protocol::error::ResponseError;
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

impl BrokerError {
    pub fn code(&self) -> i16 {
        self.response_error().code()
    }

    pub fn response_error(&self) -> ResponseError {
        match self {
            BrokerError::Kafka(e) => *e,
            BrokerError::Metadata(e) => match e.kind() {
                MetadataErrorKind::Fenced => ResponseError::NotLeaderOrFollower,
                MetadataErrorKind::NotFound => ResponseError::UnknownTopicOrPartition,
                MetadataErrorKind::Conflict => ResponseError::TopicAlreadyExists,
                MetadataErrorKind::Invalid => ResponseError::InvalidRequest,
                MetadataErrorKind::Unavailable => ResponseError::RequestTimedOut,
                MetadataErrorKind::Corrupt => self.unexpected(),
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

impl From<ResponseError> for BrokerError {
    fn from(e: ResponseError) -> Self {
        BrokerError::Kafka(e)
    }
}

pub type Result<T> = std::result::Result<T, BrokerError>;
