//! Heartbeat: v0-4. Keeps a member's session alive and tells it when to rejoin
//! (REBALANCE_IN_PROGRESS) or that it is out of date (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
//! FENCED_INSTANCE_ID).

use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, RequestHeader};

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::Result;
use crate::groups;

pub async fn handle(ctx: &AgentContext, _: &RequestHeader, req: HeartbeatRequest) -> Result<HeartbeatResponse> {
    let outcome = match groups::existing(ctx, req.group_id.0.as_str(), ResponseError::UnknownMemberId).await {
        Ok(handle) => {
            let instance = req.group_instance_id.as_ref().map(|i| i.as_str());
            handle.with(|g| g.heartbeat(req.member_id.as_str(), instance, req.generation_id, Instant::now()))
        }
        Err(e) => Err(e),
    };
    Ok(HeartbeatResponse::default().with_error_code(outcome.err().map_or(0, |e| e.code())))
}

impl Fallback for HeartbeatRequest {
    type Response = HeartbeatResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<HeartbeatResponse> {
        Some(HeartbeatResponse::default().with_error_code(code.code()))
    }
}
