//! FindCoordinator: v0-4 (batched keys from v4, KIP-699).
//!
//! A group's coordinator is the agent holding its coordinator lease. When nobody holds it, the
//! group goes to the live agent it ranks highest by rendezvous hashing (groups spread evenly and
//! move little when agents come and go); that agent takes the lease when the first group request
//! reaches it: FindCoordinator itself writes nothing, so made-up group names leave no trace. Errors
//! (COORDINATOR_NOT_AVAILABLE while a dead agent's lease runs out) are retried by clients.
//! Transaction coordinators (key type 1) are not available: transactions are not supported.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use streamhouse_metadata::AgentInfo;

use super::fallback::Fallback;
use crate::cluster;
use crate::context::AgentContext;
use crate::error::{BrokerError, Result};

/// The live holder of the group's lease, or else its preferred agent. Nothing is written: the lease
/// is taken by the first group request that needs it, so asking about any number of made-up groups
/// leaves no trace in the store.
async fn coordinator_of(ctx: &AgentContext, group: &str) -> std::result::Result<AgentInfo, ResponseError> {
    if group.is_empty() {
        return Err(ResponseError::InvalidGroupId);
    }
    let live = ctx.cluster.live();
    let holder = ctx.metadata.group_coordinator(group).await.map_err(|e| BrokerError::from(e).response_error())?;
    let chosen = match holder {
        Some(h) => h,
        None => cluster::preferred(group.as_bytes(), &live).unwrap_or(ctx.agent_id),
    };
    if chosen == ctx.agent_id {
        return Ok(ctx.cluster.me.clone());
    }
    if let Some(agent) = live.into_iter().find(|a| a.id == chosen) {
        return Ok(agent);
    }
    // Our list of live agents is refreshed once a lease round: an agent that registered (and took
    // the group's lease) since then is already in the store.
    let fresh = ctx.metadata.live_agents().await.map_err(|e| BrokerError::from(e).response_error())?;
    fresh.into_iter().find(|a| a.id == chosen).ok_or(ResponseError::CoordinatorNotAvailable)
}

const KEY_GROUP: i8 = 0;

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: FindCoordinatorRequest) -> Result<FindCoordinatorResponse> {
    if header.request_api_version < 4 {
        let c = find(ctx, req.key_type, req.key.as_str()).await;
        let r =
            FindCoordinatorResponse::default().with_error_code(c.error_code).with_node_id(c.node_id).with_host(c.host).with_port(c.port);
        return Ok(if header.request_api_version >= 1 { r.with_error_message(c.error_message) } else { r });
    }
    let mut coordinators = Vec::with_capacity(req.coordinator_keys.len());
    for key in &req.coordinator_keys {
        coordinators.push(find(ctx, req.key_type, key.as_str()).await.with_key(key.clone()));
    }
    Ok(FindCoordinatorResponse::default().with_coordinators(coordinators))
}

async fn find(ctx: &AgentContext, key_type: i8, key: &str) -> Coordinator {
    let outcome = if key_type == KEY_GROUP { coordinator_of(ctx, key).await } else { Err(ResponseError::CoordinatorNotAvailable) };
    match outcome {
        Ok(agent) => {
            Coordinator::default().with_node_id(BrokerId(agent.id)).with_host(StrBytes::from_string(agent.host)).with_port(agent.port)
        }
        Err(e) => Coordinator::default()
            .with_error_code(e.code())
            .with_error_message(Some(StrBytes::from_static_str(if key_type == KEY_GROUP {
                "coordinator is moving; retry"
            } else {
                "transactions are not supported by StreamHouse"
            })))
            .with_node_id(BrokerId(-1))
            .with_port(-1),
    }
}

impl Fallback for FindCoordinatorRequest {
    type Response = FindCoordinatorResponse;

    fn failed(&self, _: &AgentContext, version: i16, code: ResponseError) -> Option<FindCoordinatorResponse> {
        Some(if version >= 4 {
            FindCoordinatorResponse::default().with_coordinators(
                self.coordinator_keys
                    .iter()
                    .map(|k| {
                        Coordinator::default().with_key(k.clone()).with_node_id(BrokerId(-1)).with_port(-1).with_error_code(code.code())
                    })
                    .collect(),
            )
        } else {
            FindCoordinatorResponse::default().with_node_id(BrokerId(-1)).with_port(-1).with_error_code(code.code())
        })
    }
}
