//! The HTTP API's way into the cluster: it sends the same Kafka requests a client would, to the
//! agent that owns the work (a partition's leader, a group's coordinator). When that agent is this
//! one the request goes through the route table in-process; otherwise over a TCP connection to the
//! agent's advertised address. Either way the Kafka handlers do the validation, the fencing and the
//! error codes, so the HTTP API cannot drift from what Kafka clients see.
//!
//! One connection per call: the API is for operators, not a data path, and a pool would have to
//! follow agents coming and going.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use streamhouse_metadata::AgentId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::{ApiError, ApiResult};
use crate::context::AgentContext;
use crate::handlers;

/// Largest answer read from another agent: a Fetch is bounded by what the API asks for.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
const CLIENT_ID: &str = "streamhouse-http";

/// Sends `request` at `version` to agent `target` and decodes its answer.
pub async fn call<R: Request>(ctx: &AgentContext, target: AgentId, version: i16, request: &R) -> ApiResult<R::Response> {
    let key = ApiKey::try_from(R::KEY).map_err(|_| ApiError::invalid("unknown API key"))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    // The handlers bound themselves by the request deadline; a little more covers the trip.
    let bound = ctx.config.request_deadline() + Duration::from_secs(2);
    let frame = if target == ctx.agent_id {
        tokio::time::timeout(bound, in_process(ctx, key, header, version, request)).await
    } else {
        tokio::time::timeout(bound, over_tcp(ctx, target, key, header, version, request)).await
    }
    .map_err(|_| {
        ApiError::kafka(
            kafka_protocol::error::ResponseError::RequestTimedOut,
            format!("agent {target} did not answer {key:?} in {bound:?}; retry"),
        )
    })??;
    decode_response::<R>(frame, key, version)
}

async fn in_process<R: Request>(ctx: &AgentContext, key: ApiKey, header: RequestHeader, version: i16, request: &R) -> ApiResult<Bytes> {
    let route = handlers::route(key).ok_or_else(|| ApiError::invalid(format!("{key:?} is not served")))?;
    let mut body = BytesMut::new();
    request.encode(&mut body, version).map_err(|e| ApiError::invalid(format!("{key:?} v{version} does not encode: {e}")))?;
    let answer = (route.call)(ctx.clone(), header, body.freeze()).await?;
    let frame = answer.ok_or_else(|| ApiError::invalid(format!("{key:?} was not answered")))?;
    // Route answers carry their length prefix, as they go to a socket.
    Ok(frame.slice(4.min(frame.len())..))
}

async fn over_tcp<R: Request>(
    ctx: &AgentContext,
    target: AgentId,
    key: ApiKey,
    header: RequestHeader,
    version: i16,
    request: &R,
) -> ApiResult<Bytes> {
    // The cached list lags a lease round behind the store: an agent that just joined is read there.
    let agent = match ctx.cluster.agent(target) {
        Some(a) => Some(a),
        None => ctx.metadata.live_agents().await?.into_iter().find(|a| a.id == target),
    };
    let agent = agent.ok_or_else(|| {
        ApiError::kafka(
            kafka_protocol::error::ResponseError::BrokerNotAvailable,
            format!("agent {target} is not live; retry once the cluster settles"),
        )
    })?;
    let address = format!("{}:{}", agent.host, agent.port);
    let unreachable = |e: std::io::Error| {
        ApiError::kafka(kafka_protocol::error::ResponseError::NetworkException, format!("agent {target} at {address}: {e}"))
    };
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    header.encode(&mut frame, key.request_header_version(version)).map_err(|e| ApiError::invalid(format!("header: {e}")))?;
    request.encode(&mut frame, version).map_err(|e| ApiError::invalid(format!("{key:?} v{version} does not encode: {e}")))?;
    let len = i32::try_from(frame.len() - 4).map_err(|_| ApiError::invalid("request too large"))?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    let mut stream = TcpStream::connect(&address).await.map_err(unreachable)?;
    stream.write_all(&frame).await.map_err(unreachable)?;
    let len = stream.read_i32().await.map_err(unreachable)?;
    let len = usize::try_from(len).ok().filter(|l| *l <= MAX_RESPONSE_BYTES).ok_or_else(|| {
        ApiError::kafka(kafka_protocol::error::ResponseError::CorruptMessage, format!("agent {target} answered a frame of {len} bytes"))
    })?;
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.map_err(unreachable)?;
    Ok(Bytes::from(buf))
}

fn decode_response<R: Request>(mut frame: Bytes, key: ApiKey, version: i16) -> ApiResult<R::Response> {
    let corrupt = |e: String| {
        ApiError::kafka(kafka_protocol::error::ResponseError::CorruptMessage, format!("{key:?} v{version} answer does not decode: {e}"))
    };
    ResponseHeader::decode(&mut frame, key.response_header_version(version)).map_err(|e| corrupt(e.to_string()))?;
    R::Response::decode(&mut frame, version).map_err(|e| corrupt(e.to_string()))
}
