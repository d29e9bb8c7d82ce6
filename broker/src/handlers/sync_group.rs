//! SyncGroup: v0-5.
//!
//! The leader's request carries every member's assignment and completes the rebalance; the other
//! members' requests wait for it. UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS and
//! FENCED_INSTANCE_ID where Kafka returns them; v5 echoes protocol type and name.

use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{RequestHeader, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::Result;

/// How long a follower's SyncGroup may wait for the leader's assignment before it is answered
/// REBALANCE_IN_PROGRESS-style with a retriable error (below Java's 30 s request timeout).
const SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(25);
use crate::groups::{
    self,
    group::{Reply, Synced},
};

/// A follower waits for the leader's assignment at most this long.
const WAIT: Duration = Duration::from_secs(60);

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: SyncGroupRequest) -> Result<SyncGroupResponse> {
    let synced = match groups::existing(ctx, req.group_id.0.as_str(), ResponseError::UnknownMemberId).await {
        Err(e) => Synced { error: Some(e), ..Default::default() },
        Ok(handle) => {
            let assignments = req.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.clone())).collect();
            let instance = req.group_instance_id.as_ref().map(|i| i.as_str());
            let protocol = (req.protocol_type.as_ref().map(|t| t.as_str()), req.protocol_name.as_ref().map(|n| n.as_str()));
            let reply = handle.with(|g| g.sync(req.member_id.as_str(), instance, req.generation_id, protocol, assignments, Instant::now()));
            let synced = match reply {
                Reply::Now(s) => s,
                Reply::Later(rx) => match tokio::time::timeout(WAIT, rx).await {
                    Ok(Ok(s)) => s,
                    _ => Synced { error: Some(ResponseError::RebalanceInProgress), ..Default::default() },
                },
            };
            match groups::save(ctx, &handle).await {
                Err(e) if synced.error.is_none() => Synced { error: Some(e), ..Default::default() },
                _ => synced,
            }
        }
    };
    let r = SyncGroupResponse::default().with_error_code(synced.error.map_or(0, |e| e.code())).with_assignment(synced.assignment);
    Ok(if header.request_api_version >= 5 {
        r.with_protocol_type(synced.protocol_type.map(StrBytes::from_string)).with_protocol_name(synced.protocol.map(StrBytes::from_string))
    } else {
        r
    })
}

impl Fallback for SyncGroupRequest {
    type Response = SyncGroupResponse;

    /// A follower's sync waits for the leader's; clients give it their request timeout (30 s in
    /// Java), so it is answered before that.
    fn bound(&self, _: &AgentContext, _: i16) -> Duration {
        SYNC_WAIT
    }

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<SyncGroupResponse> {
        Some(SyncGroupResponse::default().with_error_code(code.code()))
    }
}
