//! DescribeCluster: v0-1. The cluster id, this agent as controller (there is no controller: any
//! agent answers for the cluster), and every live agent as a broker with its zone as rack.
//! Skipped: authorized operations (reported as unknown).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::Result;

pub async fn handle(ctx: &AgentContext, _: &RequestHeader, _: DescribeClusterRequest) -> Result<DescribeClusterResponse> {
    let brokers = ctx
        .cluster
        .live()
        .into_iter()
        .map(|a| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(a.id))
                .with_host(StrBytes::from_string(a.host))
                .with_port(a.port)
                .with_rack(a.zone.map(StrBytes::from_string))
        })
        .collect();
    Ok(DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(ctx.cluster_id.clone()))
        .with_controller_id(BrokerId(ctx.agent_id))
        .with_cluster_authorized_operations(i32::MIN)
        .with_brokers(brokers))
}

impl Fallback for DescribeClusterRequest {
    type Response = DescribeClusterResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<DescribeClusterResponse> {
        Some(DescribeClusterResponse::default().with_error_code(code.code()))
    }
}
