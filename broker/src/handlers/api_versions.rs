//! ApiVersions: v0-4.
//!
//! Advertises exactly the route table. An ApiVersions version we do not know is answered (before
//! any header decoding) with a v0 response carrying UNSUPPORTED_VERSION and our list, so the client
//! retries with a version we share (KIP-511). No supported or finalized features are reported.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use streamhouse_protocol::ProtocolError;
use streamhouse_protocol::request::encode_response;

use super::ROUTES;
use super::fallback::Fallback;
use crate::context::AgentContext;
use crate::error::Result;

pub async fn handle(_: &AgentContext, _: &RequestHeader, _: ApiVersionsRequest) -> Result<ApiVersionsResponse> {
    Ok(response())
}

fn response() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        ROUTES.iter().map(|r| ApiVersion::default().with_api_key(r.key as i16).with_min_version(r.min).with_max_version(r.max)).collect(),
    )
}

/// The v0 answer to an ApiVersions request of a version we do not support.
pub fn unsupported_version(correlation_id: i32) -> std::result::Result<Bytes, ProtocolError> {
    let body = response().with_error_code(ResponseError::UnsupportedVersion.code());
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
}

impl Fallback for ApiVersionsRequest {
    type Response = ApiVersionsResponse;

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<ApiVersionsResponse> {
        Some(response().with_error_code(code.code()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertises_every_route() {
        let r = response();
        assert_eq!(r.api_keys.len(), ROUTES.len());
        assert!(r.api_keys.iter().any(|k| k.api_key == ApiKey::Produce as i16 && k.min_version == 3));
    }
}
