//! DescribeGroups: v0-5.
//!
//! State, protocol type and chosen protocol, and every member with its client id and host, its
//! metadata for the chosen protocol and its assignment. A group that does not exist (no members, no
//! generation, no committed offsets) is reported in state "Dead" with no error, as Kafka does
//! before v6. Skipped: authorized operations (unknown).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::Result;
use crate::groups;

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: DescribeGroupsRequest) -> Result<DescribeGroupsResponse> {
    let mut out = Vec::with_capacity(req.groups.len());
    for id in &req.groups {
        let described = DescribedGroup::default().with_group_id(id.clone()).with_authorized_operations(i32::MIN);
        if !groups::known(ctx, id.0.as_str()).await? {
            out.push(described.with_group_state(StrBytes::from_static_str("Dead")));
            continue;
        }
        let handle = match groups::group(ctx, id.0.as_str()).await {
            Ok(h) => h,
            Err(e) => {
                out.push(described.with_error_code(e.code()));
                continue;
            }
        };
        let version = header.request_api_version;
        out.push(handle.with(|g| {
            let protocol = g.protocol.clone().unwrap_or_default();
            let members = g
                .members
                .values()
                .map(|m| {
                    let d = DescribedGroupMember::default()
                        .with_member_id(StrBytes::from_string(m.id.clone()))
                        .with_client_id(StrBytes::from_string(m.client_id.clone()))
                        .with_client_host(StrBytes::from_string(m.client_host.clone()))
                        .with_member_metadata(m.metadata_for(&protocol))
                        .with_member_assignment(m.assignment.clone());
                    if version >= 4 { d.with_group_instance_id(m.instance_id.clone().map(StrBytes::from_string)) } else { d }
                })
                .collect();
            described
                .with_group_state(StrBytes::from_static_str(g.state.name()))
                .with_protocol_type(StrBytes::from_string(g.protocol_type.clone().unwrap_or_default()))
                .with_protocol_data(StrBytes::from_string(protocol))
                .with_members(members)
        }));
    }
    Ok(DescribeGroupsResponse::default().with_groups(out))
}

impl Fallback for DescribeGroupsRequest {
    type Response = DescribeGroupsResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<DescribeGroupsResponse> {
        let groups = self.groups.iter().map(|g| DescribedGroup::default().with_group_id(g.clone()).with_error_code(code.code())).collect();
        Some(DescribeGroupsResponse::default().with_groups(groups))
    }
}
