//! ListGroups: v0-5 (state filter from v4, type filter from v5: every group here is "classic").
//!
//! Every group with saved state or committed offsets; the state comes from the live state machine
//! when this agent coordinates the group, else from what was saved.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::Result;

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: ListGroupsRequest) -> Result<ListGroupsResponse> {
    let version = header.request_api_version;
    let mut groups = Vec::new();
    for saved in ctx.metadata.list_groups().await? {
        let (state, protocol_type) = match ctx.groups.loaded_group(&saved.group_id) {
            Some(h) => h.with(|g| (g.state.name(), g.protocol_type.clone().unwrap_or_default())),
            None => (if saved.members.is_empty() { "Empty" } else { "Stable" }, saved.protocol_type.clone()),
        };
        let state_ok = req.states_filter.is_empty() || req.states_filter.iter().any(|s| s.as_str().eq_ignore_ascii_case(state));
        let type_ok =
            version < 5 || req.types_filter.is_empty() || req.types_filter.iter().any(|t| t.as_str().eq_ignore_ascii_case("classic"));
        if !(state_ok && type_ok) {
            continue;
        }
        let listed = ListedGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(saved.group_id)))
            .with_protocol_type(StrBytes::from_string(protocol_type));
        let listed = if version >= 4 { listed.with_group_state(StrBytes::from_static_str(state)) } else { listed };
        groups.push(if version >= 5 { listed.with_group_type(StrBytes::from_static_str("classic")) } else { listed });
    }
    Ok(ListGroupsResponse::default().with_groups(groups))
}

impl Fallback for ListGroupsRequest {
    type Response = ListGroupsResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<ListGroupsResponse> {
        Some(ListGroupsResponse::default().with_error_code(code.code()))
    }
}
