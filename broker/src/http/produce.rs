//! `POST /api/v1/produce`: one message, acknowledged like acks=all. The partition is the one asked
//! for, else the key's murmur2 hash as Kafka's default partitioner picks it (so a key lands where a
//! Java producer would put it), else round robin. The message is a Produce request to the
//! partition's leader, from whichever agent the call reached; a leader that moves mid-call is
//! looked up again, as a Kafka producer would.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::extract::Body;
use super::{Shared, kafka, lookup, topic_name};

const PRODUCE_VERSION: i16 = 9;
/// Tries per message while leadership moves; each waits a little longer.
const ATTEMPTS: u32 = 5;
/// Answers that say the message was not written, so sending it again cannot duplicate it. A timeout
/// is not one: that message may be in the log, and the caller must decide.
const NOT_WRITTEN: [ResponseError; 3] =
    [ResponseError::NotLeaderOrFollower, ResponseError::LeaderNotAvailable, ResponseError::BrokerNotAvailable];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    topic: String,
    /// A string is sent as its UTF-8 text; any other JSON value as its JSON text; null as a tombstone.
    value: Value,
    key: Option<String>,
    partition: Option<i32>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Serialize)]
pub struct Produced {
    topic: String,
    partition: i32,
    offset: i64,
    timestamp: i64,
}

pub async fn produce(State(state): State<Shared>, Body(msg): Body<NewMessage>) -> ApiResult<Json<Produced>> {
    let ctx = &state.ctx;
    let topic = lookup::topic(ctx, &msg.topic).await?;
    let partition = match (msg.partition, &msg.key) {
        (Some(p), _) => p,
        (None, Some(key)) => by_key(key.as_bytes(), topic.partitions),
        (None, None) => {
            let n = state.next_partition.fetch_add(1, Ordering::Relaxed);
            i32::try_from(n % u32::try_from(topic.partitions.max(1)).unwrap_or(1)).unwrap_or(0)
        }
    };
    lookup::check_partition(&topic, partition)?;
    let timestamp = ctx.metadata.now_ms();
    let batch = encode(&msg, timestamp)?;
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(i32::try_from(ctx.config.request_deadline_ms).unwrap_or(i32::MAX))
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name(&topic.name))
                .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(batch))]),
        ]);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = async {
            let leader = lookup::leader(ctx, &topic, partition).await?;
            let answer = kafka::call(ctx, leader, PRODUCE_VERSION, &request).await?;
            let p = answer
                .responses
                .first()
                .and_then(|t| t.partition_responses.first())
                .ok_or_else(|| ApiError::invalid("Produce answered no partition"))?;
            match ResponseError::try_from_code(p.error_code) {
                None => Ok((p.base_offset, p.log_append_time_ms)),
                Some(e) => Err(ApiError::kafka(e, p.error_message.as_deref().map_or_else(|| super::error::kafka_name(e), str::to_string))),
            }
        }
        .await;
        match outcome {
            Ok((offset, append_time)) => {
                let timestamp = if append_time >= 0 { append_time } else { timestamp };
                return Ok(Json(Produced { topic: topic.name, partition, offset, timestamp }));
            }
            Err(e) if attempt < ATTEMPTS && NOT_WRITTEN.iter().any(|n| e.code == super::error::kafka_name(*n)) => {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One uncompressed v2 batch holding the message, with no producer id: like a producer with
/// idempotence off, a retry after a lost answer may write it twice.
fn encode(msg: &NewMessage, timestamp: i64) -> ApiResult<Bytes> {
    let value = match &msg.value {
        Value::Null => None,
        Value::String(s) => Some(Bytes::from(s.clone().into_bytes())),
        other => Some(Bytes::from(other.to_string().into_bytes())),
    };
    let headers: IndexMap<StrBytes, Option<Bytes>> =
        msg.headers.iter().map(|(k, v)| (StrBytes::from_string(k.clone()), Some(Bytes::from(v.clone().into_bytes())))).collect();
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: msg.key.as_ref().map(|k| Bytes::from(k.clone().into_bytes())),
        value,
        headers,
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, [&record], &options)
        .map_err(|e| ApiError::invalid(format!("the message does not encode: {e}")))?;
    Ok(buf.freeze())
}

/// Kafka's default partitioner for keyed records: murmur2 of the key bytes, sign bit cleared.
fn by_key(key: &[u8], partitions: i32) -> i32 {
    let positive = murmur2(key) & 0x7fff_ffff;
    positive.rem_euclid(partitions.max(1))
}

/// Kafka's `Utils.murmur2` (MurmurHash2, seed 0x9747b28c), which every client's default
/// partitioner shares; none of the crates this workspace uses carries it.
fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_own_test_vectors() {
        // Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58_897_971);
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }

    #[test]
    fn keys_spread_and_stay_put() {
        let p = by_key(b"user-42", 8);
        assert!((0..8).contains(&p));
        assert_eq!(by_key(b"user-42", 8), p, "a key always lands on the same partition");
        let used: std::collections::HashSet<_> = (0..100).map(|i| by_key(format!("k{i}").as_bytes(), 8)).collect();
        assert_eq!(used.len(), 8);
    }

    #[test]
    fn values_are_text_json_or_tombstones() -> Result<(), String> {
        let msg = |value: Value| NewMessage { topic: "t".into(), value, key: Some("k".into()), partition: None, headers: BTreeMap::new() };
        for (value, expected) in [
            (Value::String("plain".into()), Some(&b"plain"[..])),
            (serde_json::json!({"id": 1}), Some(&br#"{"id":1}"#[..])),
            (Value::Null, None),
        ] {
            let mut batch = encode(&msg(value), 7).map_err(|e| e.message)?;
            let records = streamhouse_protocol::decompress::decode_records(&mut batch, 1 << 20).map_err(|e| e.to_string())?;
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].value.as_deref(), expected);
            assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
            assert_eq!(records[0].timestamp, 7);
        }
        Ok(())
    }
}
