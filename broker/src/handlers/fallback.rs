//! Every request gets an answer. The route glue runs each handler under a deadline
//! ([`Fallback::bound`]); when the handler fails, or the deadline passes first, the request is answered
//! with one Kafka error code for every part of it ([`Fallback::failed`]) instead of closing the
//! connection, so one stuck partition or a store hiccup never silences a connection: answers leave in
//! request order, and a request that never finished would hold back every later answer. Only a frame
//! that cannot be parsed closes a connection.
//!
//! Each handler file implements `Fallback` for its request type, next to the handler.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use streamhouse_protocol::request::{decode_body, encode_response};

use crate::context::AgentContext;
use crate::error::Result;

pub trait Fallback: Decodable + Sized {
    type Response: Encodable;

    /// How long the handler may run before the request is answered without it.
    fn bound(&self, ctx: &AgentContext, _version: i16) -> Duration {
        ctx.config.request_deadline()
    }

    /// This request answered with `code` for every topic, partition or group in it; None when it
    /// gets no answer at all (Produce with acks=0).
    fn failed(&self, ctx: &AgentContext, version: i16, code: ResponseError) -> Option<Self::Response>;
}

/// Answers the request in `body` (already decoded once, so it decodes again) with `code`.
pub fn answer_failed<R: Fallback>(
    ctx: &AgentContext,
    key: ApiKey,
    header: &RequestHeader,
    mut body: Bytes,
    code: ResponseError,
) -> Result<Option<Bytes>> {
    let version = header.request_api_version;
    let request: R = decode_body(&mut body, version)?;
    match request.failed(ctx, version, code) {
        Some(response) => Ok(Some(encode_response(key, version, header.correlation_id, &response)?)),
        None => Ok(None),
    }
}

/// `bound` of requests that carry their own wait (`ms`, as sent by the client), plus room to answer.
pub fn own_wait_plus_margin(ms: i32, cap: Duration) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(cap) + ANSWER_MARGIN
}

/// Time left after a request's own wait ends, to gather and send its answer.
pub const ANSWER_MARGIN: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::ROUTES;
    use crate::agent::Agent;
    use crate::config::Config;

    #[tokio::test]
    async fn every_failure_answer_encodes_at_every_version() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().to_string_lossy().to_string();
        let config = Config::parse_from(["streamhouse", "--data-dir", &data]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let agent = Agent::start(config, listener).await.expect("agent");
        for route in ROUTES {
            for version in route.min..=route.max {
                let answer = (route.fail_default)(agent.context(), version);
                assert!(answer.is_ok(), "{:?} v{version}: {:?}", route.key, answer.err());
            }
        }
        agent.shutdown().await;
    }
}
