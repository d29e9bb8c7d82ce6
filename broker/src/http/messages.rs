//! Reading a partition's messages from an offset or a timestamp: Fetch requests to its leader
//! (ListOffsets first for a timestamp), decoded with the same capped decompression the agent uses
//! for client batches. Control records (transaction markers) are skipped, as consumers skip them.

use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf, Bytes};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use serde::{Deserialize, Serialize};
use streamhouse_protocol::decompress;

use super::error::{ApiError, ApiResult};
use super::extract::{Path, Query};
use super::{Shared, kafka, lookup, topic_name};

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 500;
const FETCH_VERSION: i16 = 12;
/// Bytes asked per Fetch; a few rounds fill the largest page of small messages.
const FETCH_BYTES: i32 = 1024 * 1024;
/// Fetch rounds per page: a page of huge messages ends early rather than pulling megabytes.
const MAX_ROUNDS: usize = 8;
/// The most one batch may inflate to when decoded here.
const DECODE_CAP: usize = 64 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    offset: Option<i64>,
    timestamp: Option<i64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct Page {
    topic: String,
    partition: i32,
    log_start_offset: i64,
    high_watermark: i64,
    /// Where the next page starts.
    next_offset: i64,
    messages: Vec<Message>,
}

#[derive(Serialize)]
pub struct Message {
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    key_encoding: Encoding,
    value: Option<String>,
    value_encoding: Encoding,
    headers: Vec<Header>,
}

#[derive(Serialize)]
struct Header {
    key: String,
    value: Option<String>,
    value_encoding: Encoding,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    Utf8,
    Base64,
}

/// UTF-8 text as it is; anything else as base64, said so next to it.
fn text(bytes: Option<&Bytes>) -> (Option<String>, Encoding) {
    match bytes.map(|b| std::str::from_utf8(b)) {
        None => (None, Encoding::Utf8),
        Some(Ok(s)) => (Some(s.to_string()), Encoding::Utf8),
        Some(Err(_)) => (bytes.map(|b| STANDARD.encode(b)), Encoding::Base64),
    }
}

pub async fn read(
    State(state): State<Shared>,
    Path((name, partition)): Path<(String, i32)>,
    Query(at): Query<Position>,
) -> ApiResult<Json<Page>> {
    let ctx = &state.ctx;
    let limit = at.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid(format!("limit must be 1 to {MAX_LIMIT}, not {limit}")));
    }
    if at.offset.is_some() && at.timestamp.is_some() {
        return Err(ApiError::invalid("give offset or timestamp, not both"));
    }
    let topic = lookup::topic(ctx, &name).await?;
    lookup::check_partition(&topic, partition)?;
    let mut next = match (at.offset, at.timestamp) {
        (_, Some(ts)) => lookup::offset_for_timestamp(ctx, &topic, partition, ts).await?,
        (Some(offset), None) => offset.max(0),
        (None, None) => 0,
    };
    let leader = lookup::leader(ctx, &topic, partition).await?;
    let mut page = Page { topic: name, partition, log_start_offset: 0, high_watermark: 0, next_offset: next, messages: Vec::new() };
    for _ in 0..MAX_ROUNDS {
        let request =
            FetchRequest::default().with_replica_id((-1).into()).with_max_wait_ms(0).with_max_bytes(FETCH_BYTES).with_topics(vec![
                FetchTopic::default().with_topic(topic_name(&page.topic)).with_partitions(vec![
                    FetchPartition::default().with_partition(partition).with_fetch_offset(next).with_partition_max_bytes(FETCH_BYTES),
                ]),
            ]);
        let answer = kafka::call(ctx, leader, FETCH_VERSION, &request).await?;
        let p =
            answer.responses.first().and_then(|t| t.partitions.first()).ok_or_else(|| ApiError::invalid("Fetch answered no partition"))?;
        page.log_start_offset = p.log_start_offset;
        page.high_watermark = p.high_watermark;
        match ResponseError::try_from_code(p.error_code) {
            None => {}
            // Below the log start: start at it, as a consumer with auto.offset.reset=earliest would.
            Some(ResponseError::OffsetOutOfRange) if next < p.log_start_offset => {
                next = p.log_start_offset;
                continue;
            }
            Some(ResponseError::OffsetOutOfRange) => break,
            Some(e) => return Err(e.into()),
        }
        let mut records = p.records.clone().unwrap_or_default();
        let round_start = next;
        while records.remaining() > 0 && page.messages.len() < limit {
            // A Fetch may end with a partial batch; what it holds comes whole in the next round.
            let Ok(batch) = decompress::decode_records(&mut records, DECODE_CAP) else { break };
            for r in batch {
                if r.offset < next {
                    continue;
                }
                if page.messages.len() == limit {
                    break;
                }
                if r.control {
                    next = r.offset + 1;
                    continue;
                }
                let (key, key_encoding) = text(r.key.as_ref());
                let (value, value_encoding) = text(r.value.as_ref());
                let headers = r
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        let (value, value_encoding) = text(v.as_ref());
                        Header { key: k.to_string(), value, value_encoding }
                    })
                    .collect();
                page.messages.push(Message { offset: r.offset, timestamp: r.timestamp, key, key_encoding, value, value_encoding, headers });
                next = r.offset + 1;
            }
        }
        if page.messages.len() == limit || next == round_start || next >= page.high_watermark {
            break;
        }
    }
    page.next_offset = next;
    Ok(Json(page))
}
