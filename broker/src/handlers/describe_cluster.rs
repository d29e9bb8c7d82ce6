//! DescribeCluster: v0-1. The cluster id, this agent as controller and as the only broker.
//! Skipped: authorized operations (reported as unknown).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use crate::context::AgentContext;
use crate::error::Result;

pub async fn handle(ctx: &AgentContext, _: &RequestHeader, _: DescribeClusterRequest) -> Result<DescribeClusterResponse> {
    let (host, port) = &ctx.advertised;
    Ok(DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(ctx.cluster_id.clone()))
        .with_controller_id(BrokerId(ctx.agent_id))
        .with_cluster_authorized_operations(i32::MIN)
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(ctx.agent_id))
                .with_host(StrBytes::from_string(host.clone()))
                .with_port(*port),
        ]))
}
