//! Idempotent-producer state expires as Kafka's does (producer.id.expiration.ms): a producer that has
//! not written to a partition for the expiry is forgotten there, in memory and in the store, and its
//! next batch starts it over whatever its sequence (Kafka 2.5+, KIP-360); a producer that keeps
//! writing keeps its state however long it runs.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{RawClient, TestAgent, batch};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use streamhouse_metadata::PartitionId;

/// Short enough for a test; the check runs several times within one expiry.
const EXPIRY: &[&str] = &["--producer-id-expiration-ms", "300", "--producer-id-expiration-check-interval-ms", "50"];
/// Well past the expiry plus a check interval.
const IDLE: Duration = Duration::from_millis(800);
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const UNKNOWN_PRODUCER_ID: i16 = 59;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

async fn create(c: &mut RawClient, topic: &str) {
    let r = c
        .send(
            7,
            &CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default().with_name(name(topic)).with_num_partitions(1).with_replication_factor(-1)]),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0);
}

async fn init_producer_id(c: &mut RawClient) -> i64 {
    c.send(4, &InitProducerIdRequest::default().with_transactional_id(None)).await.producer_id.0
}

/// Produces to partition 0; (error code, base offset).
async fn produce(c: &mut RawClient, topic: &str, records: Bytes) -> (i16, i64) {
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))]),
    ]);
    let r = c.send(9, &req).await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// The producer ids the store holds state for on the topic's partition 0.
async fn stored_producers(agent: &TestAgent, topic: &str) -> Vec<i64> {
    let ctx = agent.agent().context();
    let topic_id = ctx.partitions.topic(topic).expect("topic known").id;
    let states = ctx.metadata.producer_states(PartitionId { topic_id, partition: 0 }).await.expect("store answers");
    states.iter().map(|s| s.producer_id).collect()
}

#[tokio::test]
async fn an_idle_producer_is_forgotten_and_starts_over() {
    let agent = TestAgent::start(EXPIRY).await;
    let mut c = agent.client().await;
    create(&mut c, "idle").await;
    let (gappy, retrying, gone) = (init_producer_id(&mut c).await, init_producer_id(&mut c).await, init_producer_id(&mut c).await);
    assert_eq!(produce(&mut c, "idle", batch(&[b"a", b"b"], Some((gappy, 0, 0)))).await, (0, 0));
    let first = batch(&[b"c"], Some((retrying, 0, 0)));
    assert_eq!(produce(&mut c, "idle", first.clone()).await, (0, 2));
    assert_eq!(produce(&mut c, "idle", batch(&[b"d"], Some((gone, 0, 0)))).await, (0, 3));
    // Known: a gap is refused and a retry is a duplicate.
    assert_eq!(produce(&mut c, "idle", batch(&[b"x"], Some((gappy, 0, 5)))).await.0, OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_eq!(produce(&mut c, "idle", first.clone()).await, (0, 2));

    tokio::time::sleep(IDLE).await;
    // Forgotten: only sequence 0 starts the producer over (UNKNOWN_PRODUCER_ID otherwise, which
    // clients answer by bumping their epoch), and then its sequence is checked again.
    assert_eq!(produce(&mut c, "idle", batch(&[b"e"], Some((gappy, 0, 5)))).await.0, UNKNOWN_PRODUCER_ID);
    assert_eq!(produce(&mut c, "idle", batch(&[b"e"], Some((gappy, 0, 0)))).await, (0, 4));
    assert_eq!(produce(&mut c, "idle", batch(&[b"f"], Some((gappy, 0, 1)))).await, (0, 5));
    assert_eq!(produce(&mut c, "idle", batch(&[b"y"], Some((gappy, 0, 9)))).await.0, OUT_OF_ORDER_SEQUENCE_NUMBER);
    // A sequence-0 batch from before the expiry is no longer known as a retry: it is written again.
    assert_eq!(produce(&mut c, "idle", first).await, (0, 6));

    // Those commits pruned the store: only the producers that wrote since are left.
    let mut left = stored_producers(&agent, "idle").await;
    left.sort();
    assert_eq!(left, [gappy, retrying], "producer {gone} expired in the store too");
    agent.stop().await;
}

#[tokio::test]
async fn a_producer_that_keeps_writing_keeps_its_state() {
    let agent = TestAgent::start(EXPIRY).await;
    let mut c = agent.client().await;
    create(&mut c, "busy").await;
    let pid = init_producer_id(&mut c).await;
    let started = tokio::time::Instant::now();
    let mut sequence = 0;
    // Three expiries, writing more often than the expiry.
    while started.elapsed() < IDLE + Duration::from_millis(200) {
        let (code, offset) = produce(&mut c, "busy", batch(&[b"v"], Some((pid, 0, sequence)))).await;
        assert_eq!((code, offset), (0, i64::from(sequence)));
        sequence += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = batch(&[b"v"], Some((pid, 0, sequence - 1)));
    assert_eq!(produce(&mut c, "busy", last).await, (0, i64::from(sequence - 1)), "the last batch is still a duplicate");
    let gap = batch(&[b"w"], Some((pid, 0, sequence + 1)));
    assert_eq!(produce(&mut c, "busy", gap).await.0, OUT_OF_ORDER_SEQUENCE_NUMBER, "a gap is still refused");
    assert_eq!(stored_producers(&agent, "busy").await, [pid]);
    agent.stop().await;
}

/// A new leader does not load a producer that expired while nobody led its partition, even before
/// its first expiry check.
#[tokio::test]
async fn an_expired_producer_is_not_loaded_by_the_next_leader() {
    let agent = TestAgent::start(EXPIRY).await;
    let mut c = agent.client().await;
    create(&mut c, "restart").await;
    let pid = init_producer_id(&mut c).await;
    assert_eq!(produce(&mut c, "restart", batch(&[b"a"], Some((pid, 0, 0)))).await, (0, 0));
    drop(c);
    let dir = agent.stop().await;

    tokio::time::sleep(IDLE).await;
    let no_checks = ["--producer-id-expiration-ms", "300", "--producer-id-expiration-check-interval-ms", "600000"];
    let agent = TestAgent::start_in(dir, &no_checks).await;
    let mut c = agent.client().await;
    // Remembered, sequence 1 would be next; forgotten, only 0 starts it over.
    assert_eq!(produce(&mut c, "restart", batch(&[b"b"], Some((pid, 0, 1)))).await.0, UNKNOWN_PRODUCER_ID, "forgotten");
    assert_eq!(produce(&mut c, "restart", batch(&[b"b"], Some((pid, 0, 0)))).await, (0, 1));
    assert_eq!(produce(&mut c, "restart", batch(&[b"c"], Some((pid, 0, 9)))).await.0, OUT_OF_ORDER_SEQUENCE_NUMBER);
    agent.stop().await;
}
