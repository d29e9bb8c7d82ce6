//! LeaveGroup: v0-5 (several members at once from v3, KIP-345).
//!
//! Removes the members and starts a rebalance for those who stay; the last member leaving empties
//! the group (its offsets stay). Per-member UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID from v3.

use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, RequestHeader};

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::Result;
use crate::groups;

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: LeaveGroupRequest) -> Result<LeaveGroupResponse> {
    let v3 = header.request_api_version >= 3;
    let leaving: Vec<(String, Option<String>)> = if v3 {
        req.members.iter().map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|i| i.to_string()))).collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let (outcomes, save) = match groups::existing(ctx, req.group_id.0.as_str(), ResponseError::UnknownMemberId).await {
        Ok(handle) => {
            let outcomes = handle.with(|g| g.leave(&leaving, Instant::now()));
            (outcomes, groups::save(ctx, &handle).await)
        }
        // As Kafka answers for a group it does not have: each leaving member is unknown.
        Err(ResponseError::UnknownMemberId) => (vec![Err(ResponseError::UnknownMemberId); leaving.len()], Ok(())),
        Err(e) => return Ok(LeaveGroupResponse::default().with_error_code(e.code())),
    };
    if !v3 {
        let code = outcomes.first().and_then(|o| o.err()).or(save.err()).map_or(0, |e| e.code());
        return Ok(LeaveGroupResponse::default().with_error_code(code));
    }
    let members = req
        .members
        .into_iter()
        .zip(outcomes)
        .map(|(m, outcome)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(outcome.err().map_or(0, |e| e.code()))
        })
        .collect();
    Ok(LeaveGroupResponse::default().with_error_code(save.err().map_or(0, |e| e.code())).with_members(members))
}

impl Fallback for LeaveGroupRequest {
    type Response = LeaveGroupResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<LeaveGroupResponse> {
        Some(LeaveGroupResponse::default().with_error_code(code.code()))
    }
}
