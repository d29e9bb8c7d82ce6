//! FindCoordinator: v0-4 (batched keys from v4, KIP-699).
//!
//! For a group key, this agent takes the group's coordinator lease (or finds it taken) and answers
//! with itself; NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE are retried by clients. Transaction
//! coordinators (key type 1) are not available: transactions are not supported.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use crate::context::AgentContext;
use crate::error::Result;
use crate::groups;

const KEY_GROUP: i8 = 0;

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: FindCoordinatorRequest) -> Result<FindCoordinatorResponse> {
    if header.request_api_version < 4 {
        let c = find(ctx, req.key_type, req.key.as_str()).await;
        let r = FindCoordinatorResponse::default().with_error_code(c.error_code).with_node_id(c.node_id).with_host(c.host).with_port(c.port);
        return Ok(if header.request_api_version >= 1 { r.with_error_message(c.error_message) } else { r });
    }
    let mut coordinators = Vec::with_capacity(req.coordinator_keys.len());
    for key in &req.coordinator_keys {
        coordinators.push(find(ctx, req.key_type, key.as_str()).await.with_key(key.clone()));
    }
    Ok(FindCoordinatorResponse::default().with_coordinators(coordinators))
}

async fn find(ctx: &AgentContext, key_type: i8, key: &str) -> Coordinator {
    let outcome = if key_type == KEY_GROUP { groups::group(ctx, key).await.map(|_| ()) } else { Err(ResponseError::CoordinatorNotAvailable) };
    match outcome {
        Ok(()) => {
            let (host, port) = &ctx.advertised;
            Coordinator::default().with_node_id(BrokerId(ctx.agent_id)).with_host(StrBytes::from_string(host.clone())).with_port(*port)
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
