//! The write and read paths end to end through the wire protocol: offsets, idempotent retries,
//! long polls, and what survives a restart.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{TestAgent, batch, create, fetch_request, name, produce, read_all};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;

#[tokio::test]
async fn offsets_are_dense_across_partitions_and_batches() {
    let agent = TestAgent::start(&[]).await;
    let mut c = agent.client().await;
    create(&mut c, "dense", 2).await;
    assert_eq!(produce(&mut c, "dense", 0, batch(&[b"a", b"b", b"c"], None)).await, (0, 0));
    assert_eq!(produce(&mut c, "dense", 1, batch(&[b"x"], None)).await, (0, 0));
    assert_eq!(produce(&mut c, "dense", 0, batch(&[b"d"], None)).await, (0, 3));
    let got = read_all(&mut c, "dense", 0).await;
    let values: Vec<_> = got.iter().map(|(o, v)| (*o, v.clone())).collect();
    assert_eq!(values, vec![(0, "a".into()), (1, "b".into()), (2, "c".into()), (3, "d".into())]);
    let r = c.send(11, &fetch_request("dense", 0, 5, 0, 1 << 20)).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 1, "OFFSET_OUT_OF_RANGE past the high watermark");
    agent.stop().await;
}

#[tokio::test]
async fn idempotent_retries_are_written_once_even_across_restarts() {
    let agent = TestAgent::start(&[]).await;
    let mut c = agent.client().await;
    create(&mut c, "idem", 1).await;
    let pid = c.send(4, &InitProducerIdRequest::default().with_transactional_id(None)).await.producer_id.0;
    let first = batch(&[b"0", b"1"], Some((pid, 0, 0)));
    let second = batch(&[b"2"], Some((pid, 0, 2)));
    assert_eq!(produce(&mut c, "idem", 0, first.clone()).await, (0, 0));
    assert_eq!(produce(&mut c, "idem", 0, first.clone()).await, (0, 0), "a retry gets the original offset");
    assert_eq!(produce(&mut c, "idem", 0, batch(&[b"9"], Some((pid, 0, 5)))).await.0, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    assert_eq!(produce(&mut c, "idem", 0, second.clone()).await, (0, 2));
    drop(c);

    let agent = TestAgent::start_in(agent.stop().await, &[]).await;
    let mut c = agent.client().await;
    assert_eq!(produce(&mut c, "idem", 0, second).await, (0, 2), "producer state survived the restart");
    assert_eq!(produce(&mut c, "idem", 0, batch(&[b"3"], Some((pid, 0, 3)))).await, (0, 3));
    let values: Vec<_> = read_all(&mut c, "idem", 0).await.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, vec![Bytes::from("0"), "1".into(), "2".into(), "3".into()], "nothing written twice");
    agent.stop().await;
}

#[tokio::test]
async fn a_waiting_fetch_wakes_on_the_next_commit() {
    let agent = TestAgent::start(&[]).await;
    let mut c = agent.client().await;
    create(&mut c, "poll", 1).await;
    let mut consumer = agent.client().await;
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let r = consumer.send(11, &fetch_request("poll", 0, 0, 10_000, 1 << 20)).await;
        (started.elapsed(), r.responses[0].partitions[0].records.clone().unwrap_or_default().len())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(produce(&mut c, "poll", 0, batch(&[b"wake up"], None)).await, (0, 0));
    let (elapsed, bytes) = waiting.await.expect("fetch task");
    assert!(bytes > 0, "the long poll returned the new batch");
    assert!(elapsed < Duration::from_secs(5), "woken by the commit, not by max_wait_ms ({elapsed:?})");

    let empty = Instant::now();
    let r = c.send(11, &fetch_request("poll", 0, 1, 300, 1 << 20)).await;
    assert!(r.responses[0].partitions[0].records.as_ref().is_none_or(|r| r.is_empty()));
    assert!(empty.elapsed() >= Duration::from_millis(250), "an empty fetch waits max_wait_ms");
    agent.stop().await;
}

#[tokio::test]
async fn list_offsets_finds_timestamps_and_ends() {
    let agent = TestAgent::start(&[]).await;
    let mut c = agent.client().await;
    create(&mut c, "times", 1).await;
    // Record timestamps are 1_700_000_000_000 + index within each batch.
    produce(&mut c, "times", 0, batch(&[b"a", b"b", b"c"], None)).await;
    produce(&mut c, "times", 0, batch(&[b"d", b"e"], None)).await;
    let lookup = |ts: i64| {
        ListOffsetsRequest::default().with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name("times"))
                .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(ts)]),
        ])
    };
    let mut answers = Vec::new();
    for ts in [-2, -1, -3, 1_700_000_000_001, 1_700_000_000_002, 1_800_000_000_000] {
        let p = c.send(7, &lookup(ts)).await.topics[0].partitions[0].clone();
        answers.push((p.error_code, p.offset));
    }
    assert_eq!(answers, vec![(0, 0), (0, 5), (0, 2), (0, 1), (0, 2), (0, -1)]);
    agent.stop().await;
}
