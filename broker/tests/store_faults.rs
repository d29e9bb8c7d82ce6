//! The metadata store misbehaving under an agent (issue 8), on SQLite + a local directory and on
//! PostgreSQL + S3: a commit whose reply is lost after it went in, an outage of the whole store, a
//! renewal that hangs while the lease runs out, group writes that fail. Whatever the store does,
//! every request is answered with a Kafka error code a client retries on, the agent recovers by
//! itself once the store is back, and every acknowledged record is read back once, at its offset.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Backend, RawClient, TestAgent, batch, create, name, produce, read_all};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use streamhouse_metadata::faults::{Fault, Op};

/// Sends `records` until they are acknowledged, as a client retries: only retriable errors are
/// accepted on the way. Returns the acknowledged offset.
async fn produce_until_acked(c: &mut RawClient, topic: &str, records: Bytes, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let (code, offset) = produce(c, topic, 0, records.clone()).await;
        if code == 0 {
            return offset;
        }
        let error = ResponseError::try_from_code(code).unwrap_or_else(|| panic!("unknown error code {code}"));
        assert!(error.is_retriable(), "a client would give up on {error:?}");
        assert!(Instant::now() < deadline, "still {error:?} after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn values(read: &[(i64, Bytes)]) -> Vec<(i64, &[u8])> {
    read.iter().map(|(o, v)| (*o, v.as_ref())).collect()
}

/// The commit went in but its reply was lost: the producer is told to retry, and its idempotent
/// retry is recognised as the record already written, not written twice.
async fn a_commit_whose_reply_was_lost_is_written_once(backend: Backend) {
    let Some(agent) = TestAgent::start_on(backend, &["--lease-ttl-ms", "1500"]).await else { return };
    let mut c = agent.client().await;
    create(&mut c, "lost-reply", 1).await;
    let init = c.send(4, &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000)).await;
    let (id, epoch) = (init.producer_id.0, init.producer_epoch);

    agent.metadata.set(Op::Commit, Fault::SucceedThenFail);
    let (code, _) = produce(&mut c, "lost-reply", 0, batch(&[b"once"], Some((id, epoch, 0)))).await;
    let error = ResponseError::try_from_code(code);
    assert!(error.is_some_and(|e| e.is_retriable()), "the producer must retry, not give up: {error:?}");
    agent.metadata.set(Op::Commit, Fault::None);

    let retried = produce_until_acked(&mut c, "lost-reply", batch(&[b"once"], Some((id, epoch, 0))), Duration::from_secs(15)).await;
    assert_eq!(retried, 0, "the retry is answered with the offset the lost commit wrote");
    let next = produce_until_acked(&mut c, "lost-reply", batch(&[b"next"], Some((id, epoch, 1))), Duration::from_secs(5)).await;
    assert_eq!(next, 1);
    assert_eq!(values(&read_all(&mut c, "lost-reply", 0).await), vec![(0, &b"once"[..]), (1, &b"next"[..])]);
    agent.stop().await;
}

/// The store is unreachable for longer than a lease: requests are answered with retriable errors
/// (the connection stays open), and the agent serves again once the store is back, no restart.
async fn the_agent_rides_out_a_store_outage(backend: Backend) {
    let Some(agent) = TestAgent::start_on(backend, &["--lease-ttl-ms", "1000"]).await else { return };
    let mut c = agent.client().await;
    create(&mut c, "outage", 1).await;
    assert_eq!(produce(&mut c, "outage", 0, batch(&[b"before"], None)).await, (0, 0));

    agent.metadata.set(Op::Every, Fault::Fail);
    let outage = Instant::now();
    let mut refused = 0;
    while outage.elapsed() < Duration::from_millis(3_000) {
        let (code, _) = produce(&mut c, "outage", 0, batch(&[b"during"], None)).await;
        assert_ne!(code, 0, "acknowledged while the store could commit nothing");
        let error = ResponseError::try_from_code(code);
        assert!(error.is_some_and(|e| e.is_retriable()), "a client would give up on {error:?}");
        let metadata = c.send(12, &MetadataRequest::default().with_topics(None)).await;
        assert!(metadata.brokers.len() <= 1, "Metadata is answered during the outage");
        refused += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(refused > 5);
    agent.metadata.set(Op::Every, Fault::None);

    let back = Instant::now();
    let after = produce_until_acked(&mut c, "outage", batch(&[b"after"], None), Duration::from_secs(15)).await;
    eprintln!("serving again {:?} after the store came back", back.elapsed());
    assert_eq!(after, 1, "nothing refused during the outage took an offset");
    assert_eq!(values(&read_all(&mut c, "outage", 0).await), vec![(0, &b"before"[..]), (1, &b"after"[..])]);
    agent.stop().await;
}

/// An agent whose renewals hang (its database connection stuck) stops acknowledging writes before
/// its lease can expire, and the agent that takes the partition over continues at the right offset.
async fn a_hung_renewal_stops_writes_before_another_agent_takes_over(backend: Backend) {
    let Some(a) = TestAgent::start_on(backend, &["--agent-id", "1", "--lease-ttl-ms", "1000"]).await else { return };
    let mut ca = a.client().await;
    create(&mut ca, "hung", 1).await;
    assert_eq!(produce(&mut ca, "hung", 0, batch(&[b"first"], None)).await, (0, 0));
    let b = a.join(&["--agent-id", "2", "--lease-ttl-ms", "1000"]).await;
    let mut cb = b.client().await;

    a.metadata.set(Op::Renew, Fault::Hang);
    let hung = Instant::now();
    let mut acked_by_a = Vec::new();
    while hung.elapsed() < Duration::from_millis(2_500) {
        let (code, offset) = produce(&mut ca, "hung", 0, batch(&[b"to a"], None)).await;
        if code == 0 {
            acked_by_a.push((offset, hung.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Renewals every third of the ttl: the last good one was at most 1/3 s before the hang, and the
    // agent stops writing before its lease (1 s after that renewal) could pass to another agent.
    assert!(acked_by_a.iter().all(|(_, at)| *at < Duration::from_millis(1_000)), "acknowledged too late: {acked_by_a:?}");

    let taken_over = produce_until_acked(&mut cb, "hung", batch(&[b"to b"], None), Duration::from_secs(15)).await;
    assert_eq!(taken_over, 1 + acked_by_a.len() as i64, "the new leader continues right after the last acknowledged record");
    let read = read_all(&mut cb, "hung", 0).await;
    assert_eq!(read.len() as i64, taken_over + 1, "every acknowledged record, nothing else: {:?}", values(&read));
    b.stop().await;
    // Its renewal still hangs: the shutdown must end all the same (it hung here before).
    assert!(tokio::time::timeout(Duration::from_secs(40), a.stop()).await.is_ok(), "the shutdown waited on the hung store");
}

/// A takeover that waits on row locks (another agent frozen in the middle of a transaction holds
/// them) for longer than a lease lives does not hold up this agent's renewals: the partitions it
/// already leads stay writable all along.
async fn a_stuck_takeover_does_not_hold_up_renewals(backend: Backend) {
    // A 2 s lease (renewed every 667 ms, writes refused 1.33 s after the last renewal): a busy CI
    // machine once stalled a 1 s lease's renewals past their shorter margin, which is not what this
    // test is about. The takeover still waits for more than two leases' lifetime.
    let Some(agent) = TestAgent::start_on(backend, &["--lease-ttl-ms", "2000"]).await else { return };
    let mut c = agent.client().await;
    create(&mut c, "steady", 1).await;
    assert_eq!(produce(&mut c, "steady", 0, batch(&[b"0"], None)).await, (0, 0));

    agent.metadata.set(Op::Acquire, Fault::Delay(Duration::from_secs(5)));
    // A topic made behind the agent's back: its next round tries to take the partition, and waits.
    let new = streamhouse_metadata::NewTopic { name: "blocked".into(), partitions: 1, configs: Default::default() };
    agent.agent().context().metadata.create_topic(new).await.expect("create");
    let started = Instant::now();
    let mut next = 1;
    while started.elapsed() < Duration::from_millis(4_500) {
        let (code, offset) = produce(&mut c, "steady", 0, batch(&[b"n"], None)).await;
        assert_eq!((code, offset), (0, next), "{:?} into the stuck takeover", started.elapsed());
        next += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(agent.metadata.injected() > 0, "the round did try the takeover");
    agent.metadata.set(Op::Acquire, Fault::None);
    agent.stop().await;
}

/// Group writes that fail are answered with a code the consumer retries on; the connection stays.
async fn a_failed_group_write_is_answered_not_dropped(backend: Backend) {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    let Some(agent) = TestAgent::start_on(backend, &["--group-initial-rebalance-delay-ms", "0"]).await else { return };
    let mut c = agent.client().await;
    create(&mut c, "offsets", 1).await;
    let group = GroupId(StrBytes::from_static_str("g"));
    let join = JoinGroupRequest::default()
        .with_group_id(group.clone())
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(StrBytes::from_static_str(""))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(StrBytes::from_static_str("range"))]);
    let first = c.send(5, &join).await;
    let joined = c.send(5, &join.clone().with_member_id(first.member_id.clone())).await;
    assert_eq!(joined.error_code, 0);
    let sync = SyncGroupRequest::default()
        .with_group_id(group.clone())
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone());
    assert_eq!(c.send(3, &sync).await.error_code, 0);

    agent.metadata.set(Op::GroupWrite, Fault::Fail);
    let commit = OffsetCommitRequest::default()
        .with_group_id(group.clone())
        .with_generation_id_or_member_epoch(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(name("offsets"))
                .with_partitions(vec![OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(7)]),
        ]);
    let refused = c.send(8, &commit).await.topics[0].partitions[0].error_code;
    let error = ResponseError::try_from_code(refused);
    assert!(error.is_some_and(|e| e.is_retriable()), "OffsetCommit answered {error:?}");

    agent.metadata.set(Op::GroupWrite, Fault::None);
    assert_eq!(c.send(8, &commit).await.topics[0].partitions[0].error_code, 0, "the same connection commits once the store is back");
    let fetched = c.send(7, &OffsetFetchRequest::default().with_group_id(group).with_topics(None)).await;
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, 7);
    agent.stop().await;
}

on_every_backend!(
    a_commit_whose_reply_was_lost_is_written_once,
    the_agent_rides_out_a_store_outage,
    a_hung_renewal_stops_writes_before_another_agent_takes_over,
    a_stuck_takeover_does_not_hold_up_renewals,
    a_failed_group_write_is_answered_not_dropped,
);
