//! Two agents sharing one metadata database and one object directory: leases balance and hand
//! off, clients are sent to leaders, any agent serves reads, and a leaving agent's partitions move.

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, TestAgent, batch};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const FAST: &[&str] = &["--lease-ttl-ms", "600"];

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Partition -> leader id, as an agent's Metadata reports it.
async fn leaders(c: &mut RawClient, topic: &str) -> Vec<i32> {
    let r = c
        .send(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                kafka_protocol::messages::metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic))),
            ])),
        )
        .await;
    let mut parts: Vec<_> = r.topics[0].partitions.iter().map(|p| (p.partition_index, p.leader_id.0)).collect();
    parts.sort();
    parts.into_iter().map(|(_, l)| l).collect()
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn produce(c: &mut RawClient, topic: &str, partition: i32, value: &[u8]) -> (i16, i64) {
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(batch(&[value], None)))]),
    ]);
    let r = c.send(9, &req).await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_balance_hand_off_and_move_back() {
    let a = TestAgent::start(&["--agent-id", "1", "--lease-ttl-ms", "600"]).await;
    let mut ca = a.client().await;
    let r = ca
        .send(
            7,
            &CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default().with_name(name("shared")).with_num_partitions(4).with_replication_factor(-1)]),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(leaders(&mut ca, "shared").await, vec![1, 1, 1, 1], "alone, agent 1 leads everything");

    let b = a.join(&[&["--agent-id", "2"][..], FAST].concat()).await;
    let mut cb = b.client().await;
    wait_for("a 2/2 split", async || {
        let l = leaders(&mut cb, "shared").await;
        l.iter().filter(|x| **x == 1).count() == 2 && l.iter().filter(|x| **x == 2).count() == 2
    })
    .await;
    let brokers = cb.send(12, &MetadataRequest::default().with_topics(None)).await.brokers;
    assert_eq!(brokers.len(), 2, "both agents are listed");

    let l = leaders(&mut ca, "shared").await;
    let on_b = l.iter().position(|x| *x == 2).expect("b leads one") as i32;
    assert_eq!(produce(&mut cb, "shared", on_b, b"via the leader").await, (0, 0));
    assert_eq!(produce(&mut ca, "shared", on_b, b"via another agent").await.0, 6, "NOT_LEADER_OR_FOLLOWER");

    // Agent 1 does not lead that partition but serves its committed data from the objects.
    let fetch = FetchRequest::default().with_max_wait_ms(1000).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
        FetchTopic::default()
            .with_topic(name("shared"))
            .with_partitions(vec![FetchPartition::default().with_partition(on_b).with_fetch_offset(0).with_partition_max_bytes(1 << 20)]),
    ]);
    let r = ca.send(11, &fetch).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 1));
    assert!(p.records.as_ref().is_some_and(|r| !r.is_empty()), "follower read returns the batch");

    drop(cb);
    b.stop().await;
    wait_for("agent 1 to lead everything again", async || leaders(&mut ca, "shared").await == vec![1, 1, 1, 1]).await;
    let (code, offset) = produce(&mut ca, "shared", on_b, b"after the handoff").await;
    assert_eq!((code, offset), (0, 1), "offsets continue where agent 2 left them");
    a.stop().await;
}

/// An agent serving a partition led elsewhere reads its state from the store, cached briefly. A fetch
/// past that cached high watermark (the consumer learned a newer position elsewhere) must not be
/// answered OFFSET_OUT_OF_RANGE, which makes consumers reset their position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_never_answers_out_of_range_from_a_stale_view() {
    let a = TestAgent::start(&["--agent-id", "1"]).await;
    let mut ca = a.client().await;
    let r = ca
        .send(
            7,
            &CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default().with_name(name("stale")).with_num_partitions(1).with_replication_factor(-1)]),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0);
    // Another agent group: agent 2 never takes the partition, it only serves reads of it.
    let b = a.join(&["--agent-id", "2", "--agent-group", "readers"]).await;
    let mut cb = b.client().await;
    let fetch_at = |offset: i64| {
        FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
            FetchTopic::default().with_topic(name("stale")).with_partitions(vec![
                FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(1 << 20),
            ]),
        ])
    };
    let r = cb.send(11, &fetch_at(0)).await;
    assert_eq!((r.responses[0].partitions[0].error_code, r.responses[0].partitions[0].high_watermark), (0, 0));
    assert_eq!(produce(&mut ca, "stale", 0, b"new").await, (0, 0));
    let r = cb.send(11, &fetch_at(1)).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 1), "offset 1 is the end of the log, not out of range");
    b.stop().await;
    a.stop().await;
}

/// Two agents under one --agent-id would renew each other's leases: the second one refuses to start
/// and says why. A registration left behind by an agent that died does not block a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_with_a_live_id_refuses_to_start() {
    use clap::Parser;
    let a = TestAgent::start(&["--agent-id", "5", "--lease-ttl-ms", "600"]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_string_lossy().to_string();
    let meta = format!("sqlite://{}", a.dir.path().join("metadata.db").display());
    let objects = format!("file://{}", a.dir.path().join("objects").display());
    let args = [
        "streamhouse",
        "--data-dir",
        &data,
        "--metadata-url",
        &meta,
        "--object-store-url",
        &objects,
        "--agent-id",
        "5",
        "--lease-ttl-ms",
        "600",
    ];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let refused = streamhouse::agent::Agent::start(streamhouse::config::Config::parse_from(args), listener).await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("agent id 5 is in use"), "the second agent started (or failed otherwise: {message:?})");

    // A dead agent's registration (never deregistered, no more heartbeats) lets a restart through.
    let me = a.agent().context().cluster.me.clone();
    let _dir = a.stop().await;
    let metadata = streamhouse_metadata::open(&meta).await.expect("store");
    metadata.register_agent(&me, Duration::from_secs(60)).await.expect("register");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let restarted = streamhouse::agent::Agent::start(streamhouse::config::Config::parse_from(args), listener).await;
    assert!(restarted.is_ok(), "a stale registration blocked the restart: {:?}", restarted.err().map(|e| e.to_string()));
}
