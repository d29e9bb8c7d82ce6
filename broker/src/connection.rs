//! One client connection: read frames, dispatch each to its handler, write answers in request order.
//!
//! Requests pipelined on a connection run concurrently (a Produce waiting for its flush does not
//! stop the next request from being read), but answers leave in the order requests came, as Kafka
//! requires. Handlers are polled before the next frame is read, so a Produce queues its batches
//! before any later request on the same connection is even decoded.
//!
//! A frame that cannot be parsed, an unknown API key or an unsupported version (other than of
//! ApiVersions, which is answered so the client can retry lower) closes this connection only. Every
//! other failure, and every request that misses its deadline, is answered with a Kafka error code
//! by the route glue (`handlers::fallback`), so each request in flight here ends within its bound.

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use streamhouse_protocol::{ProtocolError, frame, request};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;
use tracing::{debug, info};

use std::time::Duration;

use tokio::time::Instant;

use crate::context::AgentContext;
use crate::error::BrokerError;
use crate::handlers::{self, Reply, api_versions};
use crate::server::ConnectionSlot;

/// Requests a connection may have in flight before we stop reading from it (backpressure).
const MAX_IN_FLIGHT: usize = 32;
/// How often a connection held back by a full write queue looks again.
const FULL_QUEUE_POLL: Duration = Duration::from_millis(2);

tokio::task_local! {
    /// The client's address, for handlers that report it (DescribeGroups' client_host).
    static PEER: String;
}

/// The address of the client whose request is being handled ("" outside a connection).
pub fn peer() -> String {
    PEER.try_with(Clone::clone).unwrap_or_default()
}

/// Serves one connection until the client closes it, a frame cannot be parsed, it stays idle for
/// --connections-max-idle-ms, or the agent shuts down. `_slot` holds its place in the connection
/// limits until then.
pub async fn run(ctx: AgentContext, socket: TcpStream, _slot: ConnectionSlot) {
    let peer = socket.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let _ = socket.set_nodelay(true);
    let (reader, mut writer) = socket.into_split();
    let mut frames = FramedRead::new(reader, frame::codec(ctx.config.max_request_bytes));
    let mut in_flight: FuturesOrdered<Reply> = FuturesOrdered::new();
    let mut reading = true;
    let max_idle = Duration::from_millis(ctx.config.connections_max_idle_ms.max(1));
    let mut last_request = Instant::now();
    loop {
        tokio::select! {
            biased;
            Some(done) = in_flight.next() => match done {
                Ok(Some(response)) => {
                    if let Err(e) = writer.write_all(&response).await {
                        debug!(peer, error = %e, "client went away while we answered");
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    // The client's fault, and a hostile one could flood the log: debug level.
                    debug!(peer, error = %e, "closing connection: request could not be parsed");
                    return;
                }
            },
            // A full write queue stops reading (back-pressure); it is looked at again shortly.
            _ = tokio::time::sleep(FULL_QUEUE_POLL), if reading && !ctx.writes.has_room() => {}
            next = frames.next(), if reading && in_flight.len() < MAX_IN_FLIGHT && ctx.writes.has_room() => match next {
                Some(Ok(frame)) => {
                    last_request = Instant::now();
                    in_flight.push_back(dispatch(&ctx, frame.freeze(), &peer));
                }
                Some(Err(e)) => {
                    debug!(peer, error = %e, "closing connection: bad frame");
                    return;
                }
                None => reading = false,
            },
            _ = ctx.shutdown.cancelled(), if reading => reading = false,
            _ = tokio::time::sleep_until(last_request + max_idle), if in_flight.is_empty() => {
                debug!(peer, ?max_idle, "closing idle connection");
                return;
            }
            else => break,
        }
        if !reading && in_flight.is_empty() {
            break;
        }
    }
    debug!(peer, "connection closed");
}

/// Finds the route for a frame and starts its handler; refusals become failed replies so they
/// are reported in order with everything else on the connection.
fn dispatch(ctx: &AgentContext, mut frame: Bytes, peer: &str) -> Reply {
    let refused = |e: ProtocolError| -> Reply { Box::pin(async move { Err(BrokerError::Protocol(e)) }) };
    let prefix = match request::peek(&frame) {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    let Ok(key) = ApiKey::try_from(prefix.api_key) else {
        return refused(ProtocolError::UnknownApiKey(prefix.api_key));
    };
    let Some(route) = handlers::route(key) else {
        return refused(ProtocolError::UnknownApiKey(prefix.api_key));
    };
    if prefix.api_version < route.min || prefix.api_version > route.max {
        ctx.metrics.requests.failed(key, ResponseError::UnsupportedVersion);
        if key == ApiKey::ApiVersions {
            info!(peer, version = prefix.api_version, "ApiVersions version unsupported; answering with v0 so the client retries lower");
            let answer = api_versions::unsupported_version(prefix.correlation_id);
            return Box::pin(async move { answer.map(Some).map_err(BrokerError::from) });
        }
        return refused(ProtocolError::UnsupportedVersion { api_key: prefix.api_key, version: prefix.api_version });
    }
    match request::decode_header(&mut frame, key, prefix.api_version) {
        Ok(header) => Box::pin(PEER.scope(peer.to_string(), (route.call)(ctx.clone(), header, frame))),
        Err(e) => refused(e),
    }
}
