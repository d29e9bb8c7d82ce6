//! Every request is answered within its bound: a Fetch whose partition data never arrives (the
//! object store hangs) is answered with a retriable error at its max_wait plus the answer margin, and
//! the request pipelined behind it on the same connection is answered right after, not held back.

mod common;

use std::time::{Duration, Instant};

use bytes::Buf;
use common::{TestAgent, batch};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use streamhouse_storage::faults::Fault;

const MAX_WAIT_MS: i32 = 200;
/// Fetch's bound: its max_wait plus handlers::fallback::ANSWER_MARGIN.
const FETCH_BOUND: Duration = Duration::from_millis(MAX_WAIT_MS as u64 + 5_000);

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_fetch_is_answered_at_its_deadline_and_does_not_hold_back_later_answers() {
    // A tail cache of one run: older data must come from the object store.
    let agent = TestAgent::start(&["--tail-cache-bytes", "1"]).await;
    let store = &agent.objects;
    let mut c = agent.client().await;
    c.send(
        7,
        &CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default().with_name(name("stuck")).with_num_partitions(1).with_replication_factor(-1)]),
    )
    .await;
    for value in ["first", "second"] {
        let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(5_000).with_topic_data(vec![
            TopicProduceData::default().with_name(name("stuck")).with_partition_data(vec![
                PartitionProduceData::default().with_index(0).with_records(Some(batch(&[value.as_bytes()], None))),
            ]),
        ]);
        let r = c.send(9, &produce).await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }

    store.set_get(Fault::Hang);
    let fetch = FetchRequest::default().with_max_wait_ms(MAX_WAIT_MS).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
        FetchTopic::default()
            .with_topic(name("stuck"))
            .with_partitions(vec![FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(1 << 20)]),
    ]);
    let t0 = Instant::now();
    let mut pipelined = c.frame(11, &fetch).to_vec();
    pipelined.extend_from_slice(&c.frame(12, &MetadataRequest::default().with_topics(None)));
    tokio::io::AsyncWriteExt::write_all(&mut c.stream, &pipelined).await.expect("write");

    // Meanwhile another connection is served at once.
    let mut other = agent.client().await;
    let quick = Instant::now();
    other.send(3, &ApiVersionsRequest::default()).await;
    assert!(quick.elapsed() < Duration::from_secs(1), "another connection waited {:?}", quick.elapsed());

    let answer_within = FETCH_BOUND + Duration::from_secs(5);
    let mut fetched =
        tokio::time::timeout(answer_within, c.read_frame()).await.expect("the fetch is answered in time").expect("an answer, not a close");
    let fetch_answered = t0.elapsed();
    let mut listed = tokio::time::timeout(answer_within, c.read_frame())
        .await
        .expect("the metadata request is answered in time")
        .expect("an answer, not a close");
    let metadata_answered = t0.elapsed();

    let header = ResponseHeader::decode(&mut fetched, ApiKey::Fetch.response_header_version(11)).expect("header");
    assert_eq!(header.correlation_id, 4, "the fetch's answer comes first");
    let r = FetchResponse::decode(&mut fetched, 11).expect("fetch response decodes");
    assert_eq!(fetched.remaining(), 0);
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, ResponseError::KafkaStorageError.code(), "a retriable error every client handles");
    assert!(store.injected() > 0, "the fetch did reach the hanging store");
    assert!(fetch_answered >= FETCH_BOUND - Duration::from_millis(100), "answered early: {fetch_answered:?}");
    assert!(fetch_answered < FETCH_BOUND + Duration::from_secs(2), "answered late: {fetch_answered:?} (bound {FETCH_BOUND:?})");

    let header = ResponseHeader::decode(&mut listed, ApiKey::Metadata.response_header_version(12)).expect("header");
    assert_eq!(header.correlation_id, 5);
    let md = MetadataResponse::decode(&mut listed, 12).expect("metadata response decodes");
    assert!(md.topics.iter().any(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("stuck")));
    assert!(
        metadata_answered - fetch_answered < Duration::from_secs(1),
        "the later request waited {:?} after the fetch",
        metadata_answered - fetch_answered
    );

    store.set_get(Fault::None);
    let r = c.send(11, &fetch).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0, "the connection still serves fetches");
    agent.stop().await;
}
