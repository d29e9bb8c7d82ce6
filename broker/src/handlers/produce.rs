//! Produce: v3-11 (record batch v2 only).
//!
//! Per partition: the topic must exist and we must lead the partition (else
//! UNKNOWN_TOPIC_OR_PARTITION / NOT_LEADER_OR_FOLLOWER); the records must be whole v2 batches with a
//! valid CRC32C (CORRUPT_MESSAGE, UNSUPPORTED_FOR_MESSAGE_FORMAT, INVALID_RECORD) within the topic's
//! max.message.bytes (MESSAGE_TOO_LARGE). Valid batches are queued for the flusher before anything
//! awaits; acks=1/all are answered once the flush holding them is committed (or failed), within the
//! request's timeout (REQUEST_TIMED_OUT); acks=0 gets no answer. Idempotence is checked by the flusher.
//! Skipped: transactions (transactional batches are refused), LogAppendTime.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, RequestHeader};
use streamhouse_metadata::{PartitionId, Topic};
use streamhouse_protocol::batch::{BatchError, RecordBatch};
use tracing::debug;

use super::fallback::{ANSWER_MARGIN, Fallback};
use super::topic_configs::max_message_bytes;
use crate::context::AgentContext;
use crate::error::{BrokerError, Result};
use crate::partition::writer::Queued;

const VALID_ACKS: [i16; 3] = [-1, 0, 1];
/// The longest a producer is kept waiting for its commit, whatever timeout it sends.
const MAX_COMMIT_WAIT: Duration = Duration::from_secs(120);

pub async fn handle(ctx: &AgentContext, header: &RequestHeader, req: ProduceRequest) -> Result<Option<ProduceResponse>> {
    let acks_ok = VALID_ACKS.contains(&req.acks);
    let transactional = req.transactional_id.is_some();
    let mut pending: Vec<(usize, usize, Queued)> = Vec::new();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for (t, topic_data) in req.topic_data.into_iter().enumerate() {
        let topic = ctx.partitions.topic(topic_data.name.0.as_str());
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for (p, data) in topic_data.partition_data.into_iter().enumerate() {
            let response = unanswered(data.index);
            let refusal = if !acks_ok {
                Some(ResponseError::InvalidRequiredAcks)
            } else if transactional {
                Some(ResponseError::TransactionalIdAuthorizationFailed)
            } else {
                match queue(ctx, topic.as_ref(), data.index, data.records) {
                    Ok(rx) => {
                        pending.push((t, p, rx));
                        None
                    }
                    Err(code) => Some(code),
                }
            };
            partitions.push(match refusal {
                Some(code) => {
                    ctx.metrics.requests.failed(ApiKey::Produce, code);
                    response.with_error_code(code.code())
                }
                None => response,
            });
        }
        responses.push(TopicProduceResponse::default().with_name(topic_data.name).with_partition_responses(partitions));
    }
    if req.acks == 0 {
        return Ok(None);
    }
    let deadline = tokio::time::Instant::now() + commit_wait(ctx, req.timeout_ms);
    for (t, p, (mut rx, claim)) in pending {
        let answered = match tokio::time::timeout_at(deadline, &mut rx).await {
            Ok(answered) => Some(answered),
            // Out of time: REQUEST_TIMED_OUT, and the flusher will never commit the append; unless
            // its commit is already under way, whose outcome comes within the commit's own bound.
            Err(_) if claim.abandon() => None,
            Err(_) => Some(rx.await),
        };
        let outcome = match answered {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(BrokerError::Kafka(ResponseError::NotLeaderOrFollower)),
            None => Err(BrokerError::Kafka(ResponseError::RequestTimedOut)),
        };
        let slot = &mut responses[t].partition_responses[p];
        match outcome {
            Ok(appended) => {
                slot.base_offset = appended.base_offset;
                if header.request_api_version >= 5 {
                    slot.log_start_offset = appended.log_start_offset;
                }
            }
            Err(e) => {
                slot.error_code = e.code();
                ctx.metrics.requests.failed_code(ApiKey::Produce, slot.error_code);
            }
        }
    }
    Ok(Some(ProduceResponse::default().with_responses(responses)))
}

/// How long acks=1/all wait for the commit: the client's timeout, or the agent's request deadline
/// when the client sends none (0 or less), never a shorter wait than the commit needs.
fn commit_wait(ctx: &AgentContext, timeout_ms: i32) -> Duration {
    match u64::try_from(timeout_ms) {
        Ok(ms) if ms > 0 => Duration::from_millis(ms).min(MAX_COMMIT_WAIT),
        _ => ctx.config.request_deadline(),
    }
}

fn unanswered(index: i32) -> PartitionProduceResponse {
    PartitionProduceResponse::default().with_index(index).with_base_offset(-1).with_log_start_offset(-1)
}

/// Validates one partition's records and queues them; no `.await`, so arrival order is kept.
fn queue(
    ctx: &AgentContext,
    topic: Option<&Topic>,
    partition: i32,
    records: Option<bytes::Bytes>,
) -> std::result::Result<Queued, ResponseError> {
    let topic = topic.ok_or(ResponseError::UnknownTopicOrPartition)?;
    if partition < 0 || partition >= topic.partitions {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    let led = ctx
        .partitions
        .led(&PartitionId { topic_id: topic.id, partition })
        .filter(|_| ctx.cluster.lease_valid())
        .ok_or(ResponseError::NotLeaderOrFollower)?;
    let records = records.ok_or(ResponseError::InvalidRecord)?;
    if records.len() > max_message_bytes(topic) {
        return Err(ResponseError::MessageTooLarge);
    }
    let batches = RecordBatch::parse_all(records).map_err(|e| {
        debug!(topic = topic.name, partition, error = %e, "refusing records");
        match e {
            BatchError::Truncated | BatchError::Crc { .. } => ResponseError::CorruptMessage,
            BatchError::Magic(_) => ResponseError::UnsupportedForMessageFormat,
            BatchError::Invalid(_) => ResponseError::InvalidRecord,
        }
    })?;
    if batches.iter().any(|b| b.header.is_transactional() || b.header.is_control()) {
        return Err(ResponseError::InvalidRecord);
    }
    Ok(ctx.writes.append(led, batches))
}

impl Fallback for ProduceRequest {
    type Response = ProduceResponse;

    /// The client's own timeout (its request timeout; no timeout means the agent's deadline).
    fn bound(&self, ctx: &AgentContext, _: i16) -> Duration {
        commit_wait(ctx, self.timeout_ms) + ANSWER_MARGIN
    }

    fn failed(&self, _: &AgentContext, _: i16, code: ResponseError) -> Option<ProduceResponse> {
        (self.acks != 0).then(|| {
            ProduceResponse::default().with_responses(
                self.topic_data
                    .iter()
                    .map(|t| {
                        TopicProduceResponse::default().with_name(t.name.clone()).with_partition_responses(
                            t.partition_data.iter().map(|p| unanswered(p.index).with_error_code(code.code())).collect(),
                        )
                    })
                    .collect(),
            )
        })
    }
}
