//! Object-store failures in the middle of a pipelined flush: producers of the failed flush and of
//! every flush after it get a retriable error, nothing acknowledged is lost, and offsets stay dense.

mod common;

use std::time::Duration;

use common::{RawClient, TestAgent, batch};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use streamhouse_storage::faults::Fault;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

async fn produce(c: &mut RawClient, value: String) -> (i16, i64, String) {
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(name("flaky"))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(&[value.as_bytes()], None)))]),
    ]);
    let r = c.send(9, &req).await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_puts_fail_later_flushes_and_leave_no_gap() {
    let agent = TestAgent::start(&["--flush-interval-ms", "2", "--max-flushes-in-flight", "4"]).await;
    let flaky = &agent.objects;
    // Slow puts, so several flushes are in flight when the failures start.
    let slow = Fault::Delay(Duration::from_millis(20));
    flaky.set_put(slow);
    let addr = agent.addr;
    let mut admin = RawClient::connect(addr).await;
    admin
        .send(
            7,
            &CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default().with_name(name("flaky")).with_num_partitions(1).with_replication_factor(-1)]),
        )
        .await;

    // Eight producers, each sending its own sequence; the store fails for a while in the middle.
    let mut tasks = Vec::new();
    for w in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mut c = RawClient::connect(addr).await;
            let mut out = Vec::new();
            for i in 0..40 {
                out.push(produce(&mut c, format!("w{w}-{i}")).await);
            }
            out
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    flaky.set_put(Fault::Fail);
    tokio::time::sleep(Duration::from_millis(150)).await;
    flaky.set_put(slow);
    let mut acked = Vec::new();
    let mut refused = 0;
    for t in tasks {
        for (code, offset, value) in t.await.expect("producer task") {
            match code {
                0 => acked.push((offset, value)),
                56 => refused += 1, // KAFKA_STORAGE_ERROR: retriable
                other => panic!("unexpected error code {other}"),
            }
        }
    }
    assert!(refused > 0, "some producers saw the failure");
    acked.sort();
    let offsets: Vec<i64> = acked.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (0..acked.len() as i64).collect::<Vec<_>>(), "acknowledged offsets are dense: no gap, no duplicate");

    let fetch = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(16 << 20).with_topics(vec![
        FetchTopic::default()
            .with_topic(name("flaky"))
            .with_partitions(vec![FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(16 << 20)]),
    ]);
    let r = admin.send(11, &fetch).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.high_watermark, acked.len() as i64, "only acknowledged records are visible");
    let mut records = p.records.clone().unwrap_or_default();
    let stored: Vec<(i64, String)> = RecordBatchDecoder::decode_all(&mut records)
        .expect("decodes")
        .into_iter()
        .flat_map(|s| s.records)
        .map(|r| (r.offset, String::from_utf8_lossy(&r.value.unwrap_or_default()).to_string()))
        .collect();
    assert_eq!(stored, acked, "each acknowledged record is stored at its acknowledged offset");
    agent.stop().await;
}
