//! InitProducerId: v0-4, for idempotent producers.
//!
//! A new producer gets a fresh id from the metadata store (unique across agents) at epoch 0. A
//! producer that names its current id and epoch (KIP-360, v3+) gets the same id at the next epoch,
//! so it can reset its sequences after an error; past the last epoch it gets a new id.
//! Skipped: transactions (a transactional.id gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader};

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::Result;

pub async fn handle(ctx: &AgentContext, _: &RequestHeader, req: InitProducerIdRequest) -> Result<InitProducerIdResponse> {
    let refused = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        return Ok(refused.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()));
    }
    let (id, epoch) = if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        (req.producer_id.0, req.producer_epoch + 1)
    } else {
        match ctx.metadata.allocate_producer_id().await {
            Ok(id) => (id, 0),
            Err(e) => {
                tracing::warn!(error = %e, "cannot allocate a producer id");
                return Ok(refused.with_error_code(ResponseError::CoordinatorLoadInProgress.code()));
            }
        }
    };
    Ok(InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(epoch))
}

impl Fallback for InitProducerIdRequest {
    type Response = InitProducerIdResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<InitProducerIdResponse> {
        Some(InitProducerIdResponse::default().with_error_code(code.code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1))
    }
}
