//! DeleteGroups: v0-2. Deletes an empty group's state and committed offsets; NON_EMPTY_GROUP while
//! it has members, GROUP_ID_NOT_FOUND when there is nothing to delete (found out without taking the
//! group's coordinator lease, so made-up names leave no trace).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, RequestHeader};
use streamhouse_metadata::MetadataErrorKind;

use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::{BrokerError, Result};
use crate::groups;

pub async fn handle(ctx: &AgentContext, _: &RequestHeader, req: DeleteGroupsRequest) -> Result<DeleteGroupsResponse> {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in &req.groups_names {
        let outcome = delete(ctx, id.0.as_str()).await;
        results.push(DeletableGroupResult::default().with_group_id(id.clone()).with_error_code(outcome.err().map_or(0, |e| e.code())));
    }
    Ok(DeleteGroupsResponse::default().with_results(results))
}

async fn delete(ctx: &AgentContext, id: &str) -> std::result::Result<(), ResponseError> {
    let handle = groups::existing(ctx, id, ResponseError::GroupIdNotFound).await?;
    if handle.with(|g| !g.members.is_empty()) {
        return Err(ResponseError::NonEmptyGroup);
    }
    match ctx.metadata.delete_group(ctx.agent_id, handle.epoch, id).await {
        Ok(()) => {
            ctx.groups.forget(id);
            Ok(())
        }
        Err(e) => {
            if matches!(e.kind(), MetadataErrorKind::NotFound | MetadataErrorKind::Fenced) {
                ctx.groups.forget(id);
            }
            Err(BrokerError::from(e).response_error())
        }
    }
}

impl Fallback for DeleteGroupsRequest {
    type Response = DeleteGroupsResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<DeleteGroupsResponse> {
        let results = self
            .groups_names
            .iter()
            .map(|g| DeletableGroupResult::default().with_group_id(g.clone()).with_error_code(code.code()))
            .collect();
        Some(DeleteGroupsResponse::default().with_results(results))
    }
}
