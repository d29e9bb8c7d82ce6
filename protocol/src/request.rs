//! Request decoding and response encoding, as kafka-protocol's authors intend: every frame is frozen
//! into `Bytes` first, so decoded byte fields (record batches above all) are slices of the frame,
//! not copies.
//!
//! The header is read in two steps. [`peek`] reads the fixed prefix (key, version, correlation id)
//! with bounds checks and no trust in the key, so even an unknown key or version can be answered or
//! logged with its correlation id; [`decode_header`] then decodes the full header once the API is
//! known to be routed.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::ProtocolError;

/// The fixed first eight bytes of every request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

pub fn peek(frame: &Bytes) -> Result<Prefix, ProtocolError> {
    let mut head = frame.get(..8).ok_or(ProtocolError::Truncated { what: "request header" })?;
    Ok(Prefix { api_key: head.get_i16(), api_version: head.get_i16(), correlation_id: head.get_i32() })
}

/// Decodes the request header for a known API, leaving `frame` at the start of the body.
pub fn decode_header(frame: &mut Bytes, api_key: ApiKey, api_version: i16) -> Result<RequestHeader, ProtocolError> {
    let header_version = api_key.request_header_version(api_version);
    RequestHeader::decode(frame, header_version).map_err(|source| ProtocolError::Decode { what: "request header", source })
}

pub fn decode_body<R: Decodable>(body: &mut Bytes, api_version: i16) -> Result<R, ProtocolError> {
    R::decode(body, api_version).map_err(|source| ProtocolError::Decode { what: "request body", source })
}

/// Encodes a whole response frame: length prefix, response header in the version `api_key` needs at
/// `api_version` (ApiVersions always v0, flexible versions v1 with tagged fields), then the body.
pub fn encode_response<R: Encodable>(api_key: ApiKey, api_version: i16, correlation_id: i32, body: &R) -> Result<Bytes, ProtocolError> {
    let header_version = api_key.response_header_version(api_version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encode_err = |what| move |source| ProtocolError::Encode { what, source };
    let size = header.compute_size(header_version).map_err(encode_err("response header"))?
        + body.compute_size(api_version).map_err(encode_err("response body"))?;
    let mut buf = BytesMut::with_capacity(4 + size);
    let len = i32::try_from(size)
        .map_err(|_| ProtocolError::Encode { what: "response", source: anyhow::anyhow!("{size} bytes do not fit a Kafka frame") })?;
    buf.put_i32(len);
    header.encode(&mut buf, header_version).map_err(encode_err("response header"))?;
    body.encode(&mut buf, api_version).map_err(encode_err("response body"))?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{ApiVersionsResponse, MetadataRequest};

    use super::*;

    #[test]
    fn peek_refuses_short_frames() {
        assert!(peek(&Bytes::from_static(&[0, 18, 0])).is_err());
        let p = peek(&Bytes::from_static(&[0, 18, 0, 3, 0, 0, 0, 7])).ok();
        assert_eq!(p, Some(Prefix { api_key: 18, api_version: 3, correlation_id: 7 }));
    }

    #[test]
    fn api_versions_response_header_has_no_tagged_fields() {
        // v3 is a flexible version, yet its response header stays v0: 4 length + 4 correlation.
        let frame = encode_response(ApiKey::ApiVersions, 3, 42, &ApiVersionsResponse::default()).ok();
        let frame = frame.unwrap_or_default();
        assert_eq!(&frame[4..8], &42i32.to_be_bytes());
        let body = ApiVersionsResponse::decode(&mut frame.slice(8..), 3).ok();
        assert_eq!(body, Some(ApiVersionsResponse::default()));
    }

    #[test]
    fn truncated_bodies_are_errors_not_panics() {
        let mut body = Bytes::from_static(&[0, 0, 0, 5, 0, 3, b'a']);
        assert!(decode_body::<MetadataRequest>(&mut body, 4).is_err());
    }
}
