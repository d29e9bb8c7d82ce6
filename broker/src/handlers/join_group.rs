//! JoinGroup: v0-9.
//!
//! Relays membership to the group state machine (`groups::group`), which decides when the join
//! phase completes; the response waits until then (bounded by the rebalance timeout). v4+ members
//! joining without an id first get MEMBER_ID_REQUIRED with one (KIP-394); static members
//! (group.instance.id, KIP-345) take their old place back without a rebalance when nothing
//! changed. The broker never looks inside protocol metadata: the assignor runs in the client.
//! A static leader that rejoins a stable group gets skip_assignment (v9, KIP-814).

use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::fallback::{Fallback, own_wait_plus_margin};
use crate::connection;
use crate::context::AgentContext;
use crate::error::Result;

use crate::groups::{
    self,
    group::{Join, Joined, Reply},
};

/// The longest rebalance timeout a join is held for (a client asking more is answered by then).
const MAX_REBALANCE_WAIT: Duration = Duration::from_secs(600);

/// Extra wait beyond the rebalance timeout before we give up on an answer from the state machine.
const GRACE: Duration = Duration::from_secs(5);

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: JoinGroupRequest) -> Result<JoinGroupResponse> {
    let version = header.request_api_version;
    let handle = match groups::group(ctx, req.group_id.0.as_str()).await {
        Ok(h) => h,
        Err(e) => {
            return Ok(respond(
                Joined { error: Some(e), generation: -1, member_id: req.member_id.to_string(), ..Default::default() },
                version,
            ));
        }
    };
    let client_id = header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default();
    let rebalance_ms = if version >= 1 { req.rebalance_timeout_ms } else { req.session_timeout_ms };
    let join = Join {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        client_host: format!("/{}", connection::peer().rsplit_once(':').map_or("", |(h, _)| h)),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: rebalance_ms,
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
        require_known_member_id: version >= 4,
        client_id: client_id.clone(),
    };
    let new_id = move || format!("{}-{}", if client_id.is_empty() { "member" } else { &client_id }, uuid::Uuid::new_v4());
    let reply = handle.with(|g| g.join(join, new_id, Instant::now()));
    let joined = match reply {
        Reply::Now(j) => j,
        Reply::Later(rx) => {
            let wait = Duration::from_millis(u64::try_from(rebalance_ms).unwrap_or(0)) + GRACE;
            match tokio::time::timeout(wait, rx).await {
                Ok(Ok(j)) => j,
                _ => Joined {
                    error: Some(ResponseError::RebalanceInProgress),
                    generation: -1,
                    member_id: req.member_id.to_string(),
                    ..Default::default()
                },
            }
        }
    };
    // A fenced save means another agent coordinates the group now: this answer must not stand. A
    // store that is briefly unavailable leaves the group dirty; the next tick saves it.
    let joined = match groups::save(ctx, &handle).await {
        Err(ResponseError::NotCoordinator) => Joined {
            error: Some(ResponseError::NotCoordinator),
            generation: -1,
            member_id: req.member_id.to_string(),
            ..Default::default()
        },
        _ => joined,
    };
    Ok(respond(joined, version))
}

fn respond(j: Joined, version: i16) -> JoinGroupResponse {
    let members = j
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let m = JoinGroupResponseMember::default().with_member_id(StrBytes::from_string(id)).with_metadata(metadata);
            if version >= 5 { m.with_group_instance_id(instance.map(StrBytes::from_string)) } else { m }
        })
        .collect();
    let r = JoinGroupResponse::default()
        .with_skip_assignment(version >= 9 && j.skip_assignment)
        .with_error_code(j.error.map_or(0, |e| e.code()))
        .with_generation_id(j.generation)
        .with_protocol_name(Some(StrBytes::from_string(j.protocol.unwrap_or_default())))
        .with_leader(StrBytes::from_string(j.leader))
        .with_member_id(StrBytes::from_string(j.member_id))
        .with_members(members);
    if version >= 7 { r.with_protocol_type(j.protocol_type.map(StrBytes::from_string)) } else { r.with_protocol_type(None) }
}

impl Fallback for JoinGroupRequest {
    type Response = JoinGroupResponse;

    /// A join waits for the rest of the group up to the rebalance timeout (the session timeout
    /// before v1), as clients expect.
    fn bound(&self, _: &AgentContext, version: i16) -> Duration {
        let wait = if version >= 1 { self.rebalance_timeout_ms } else { self.session_timeout_ms };
        own_wait_plus_margin(wait, MAX_REBALANCE_WAIT)
    }

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<JoinGroupResponse> {
        Some(JoinGroupResponse::default().with_error_code(code.code()).with_generation_id(-1).with_member_id(self.member_id.clone()))
    }
}
