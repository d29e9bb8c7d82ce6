//! The route table: one line per API, holding the versions each handler really implements (and is
//! tested with), never wider than what the codec parses. ApiVersions answers from this table, so
//! what is advertised cannot drift from what is routed.
//!
//! A handler is `async fn handle(ctx, header, request) -> Result<Response>`; the `route!` macro
//! writes the decode/encode glue around it, runs it within its request's bound and answers a failure
//! or a missed bound through the request's `Fallback` (`fallback.rs`); it also counts and times each
//! request and its failure for the metrics. Each handler file opens with
//! what it implements and what it skips, and ends with its `Fallback`.

pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod fallback;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
mod leader_epoch;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;
pub mod topic_configs;

use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::messages::*;
use streamhouse_protocol::request::{decode_body, encode_response};

use crate::context::AgentContext;
use crate::error::Result;

/// What a request turns into: an encoded response frame, or nothing (Produce with acks=0).
pub type Reply = BoxFuture<'static, Result<Option<Bytes>>>;

pub struct Route {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
    pub call: fn(AgentContext, RequestHeader, Bytes) -> Reply,
    /// The route's failure answer to a default request of `version`, encoded: every advertised
    /// version of every failure answer must encode.
    #[cfg(test)]
    pub fail_default: fn(&AgentContext, i16) -> Result<Option<Bytes>>,
}

/// `route!(Key, Request, min, max, module)` for handlers that always answer; `route!(Key, Request,
/// min, max, module, optional)` for one whose `handle` returns `Option<Response>`. The glue decodes the body (a body
/// that does not decode fails the connection: the frame cannot be parsed), runs the handler within
/// its request's bound, and answers failures and missed deadlines through `Fallback`.
macro_rules! route {
    ($key:ident, $request:ident, $min:expr, $max:expr, $module:ident $(, $optional:ident)?) => {
        Route {
            key: ApiKey::$key,
            min: $min,
            max: $max,
            call: |ctx, header, body| {
                let started = std::time::Instant::now();
                let metrics = std::sync::Arc::clone(&ctx.metrics);
                let answer = crate::error::serving(ApiKey::$key, async move {
                    let version = header.request_api_version;
                    let request: $request = decode_body(&mut body.clone(), version).inspect_err(|_| {
                        ctx.metrics.requests.failed(ApiKey::$key, kafka_protocol::error::ResponseError::InvalidRequest)
                    })?;
                    let bound = fallback::Fallback::bound(&request, &ctx, version);
                    let code = match tokio::time::timeout(bound, $module::handle(&ctx, &header, request)).await {
                        Ok(Ok(response)) => return route!(@encode $key, version, header, response $(, $optional)?),
                        Ok(Err(crate::error::BrokerError::Kafka(code))) => code,
                        Ok(Err(e)) => {
                            let code = e.response_error();
                            tracing::warn!(api = ?ApiKey::$key, error = %e, ?code, "request failed; answering with an error code");
                            code
                        }
                        Err(_) => {
                            let code = crate::error::timed_out(Some(ApiKey::$key));
                            tracing::warn!(api = ?ApiKey::$key, ?bound, ?code, "request missed its deadline; answering with a retriable error");
                            code
                        }
                    };
                    ctx.metrics.requests.failed(ApiKey::$key, code);
                    fallback::answer_failed::<$request>(&ctx, ApiKey::$key, &header, body, code)
                });
                Box::pin(async move {
                    let answered = answer.await;
                    metrics.requests.done(ApiKey::$key, started);
                    answered
                })
            },
            #[cfg(test)]
            fail_default: |ctx, version| {
                let failed = fallback::Fallback::failed(&$request::default(), ctx, version, kafka_protocol::error::ResponseError::RequestTimedOut);
                Ok(failed.map(|r| encode_response(ApiKey::$key, version, 0, &r)).transpose()?)
            },
        }
    };
    (@encode $key:ident, $version:ident, $header:ident, $response:ident) => {
        Ok(Some(encode_response(ApiKey::$key, $version, $header.correlation_id, &$response)?))
    };
    (@encode $key:ident, $version:ident, $header:ident, $response:ident, optional) => {
        match $response {
            Some(r) => Ok(Some(encode_response(ApiKey::$key, $version, $header.correlation_id, &r)?)),
            None => Ok(None),
        }
    };
}

pub static ROUTES: &[Route] = &[
    route!(Produce, ProduceRequest, 3, 11, produce, optional),
    route!(Fetch, FetchRequest, 4, 17, fetch),
    route!(ListOffsets, ListOffsetsRequest, 1, 8, list_offsets),
    route!(Metadata, MetadataRequest, 0, 12, metadata),
    route!(ApiVersions, ApiVersionsRequest, 0, 4, api_versions),
    route!(CreateTopics, CreateTopicsRequest, 2, 7, create_topics),
    route!(DeleteTopics, DeleteTopicsRequest, 1, 6, delete_topics),
    route!(InitProducerId, InitProducerIdRequest, 0, 4, init_producer_id),
    route!(OffsetForLeaderEpoch, OffsetForLeaderEpochRequest, 2, 4, offset_for_leader_epoch),
    route!(DescribeConfigs, DescribeConfigsRequest, 1, 4, describe_configs),
    route!(CreatePartitions, CreatePartitionsRequest, 0, 3, create_partitions),
    route!(DescribeCluster, DescribeClusterRequest, 0, 1, describe_cluster),
    route!(FindCoordinator, FindCoordinatorRequest, 0, 4, find_coordinator),
    route!(JoinGroup, JoinGroupRequest, 0, 9, join_group),
    route!(SyncGroup, SyncGroupRequest, 0, 5, sync_group),
    route!(Heartbeat, HeartbeatRequest, 0, 4, heartbeat),
    route!(LeaveGroup, LeaveGroupRequest, 0, 5, leave_group),
    route!(OffsetCommit, OffsetCommitRequest, 2, 8, offset_commit),
    route!(OffsetFetch, OffsetFetchRequest, 1, 8, offset_fetch),
    route!(DescribeGroups, DescribeGroupsRequest, 0, 5, describe_groups),
    route!(ListGroups, ListGroupsRequest, 0, 5, list_groups),
    route!(DeleteGroups, DeleteGroupsRequest, 0, 2, delete_groups),
    route!(OffsetDelete, OffsetDeleteRequest, 0, 0, offset_delete),
];

pub fn route(key: ApiKey) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.key == key)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn each_key_once_and_within_the_codec() {
        let mut seen = HashSet::new();
        for r in ROUTES {
            assert!(seen.insert(r.key), "{:?} routed twice", r.key);
            let codec = r.key.valid_versions();
            assert!(r.min <= r.max, "{:?} has an inverted range", r.key);
            assert!(r.min >= codec.min && r.max <= codec.max, "{:?} {}..{} is wider than the codec's {codec}", r.key, r.min, r.max);
        }
    }
}
