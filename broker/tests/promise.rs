//! The promise under faults (issue 8): an acknowledged record is never lost or made invisible, and a
//! fenced agent never acknowledges a write. Each test here failed before the fix it guards.

mod common;

use std::time::Duration;

use common::{Backend, RawClient, TestAgent, batch, create, name};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use streamhouse_metadata::PartitionId;
use streamhouse_storage::faults::Fault;

/// An agent on `backend` whose object store puts take `put_delay`.
async fn agent_with_slow_puts(backend: Backend, put_delay: Duration, extra: &[&str]) -> Option<TestAgent> {
    let agent = TestAgent::start_on(backend, extra).await?;
    agent.objects.set_put(Fault::Delay(put_delay));
    Some(agent)
}

/// (error code, base offset) of one produce of one record to partition 0.
async fn produce_one(c: &mut RawClient, topic: &str, value: &str, producer: Option<(i64, i16, i32)>) -> (i16, i64) {
    common::produce(c, topic, 0, batch(&[value.as_bytes()], producer)).await
}

/// Hole 1: a retried idempotent batch that arrives while its original's flush is in flight is a
/// duplicate of that flush. When the original's commit is fenced, the retry must not be answered as
/// written at an offset that will never exist.
async fn a_duplicate_of_a_fenced_flush_is_not_acknowledged(backend: Backend) {
    // Long leases: no lease round notices the takeover before the flush commits.
    let Some(agent) = agent_with_slow_puts(backend, Duration::from_millis(800), &["--lease-ttl-ms", "60000"]).await else { return };
    let addr = agent.addr;
    let mut admin = RawClient::connect(addr).await;
    create(&mut admin, "fence", 1).await;
    let init = admin.send(4, &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000)).await;
    assert_eq!(init.error_code, 0);
    let producer = Some((init.producer_id.0, init.producer_epoch, 0));

    let original = tokio::spawn(async move { produce_one(&mut RawClient::connect(addr).await, "fence", "once", producer).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Another agent takes the partition while the original's object is being written.
    let ctx = agent.agent().context();
    let topic = ctx.partitions.topic("fence").expect("topic known");
    let id = PartitionId { topic_id: topic.id, partition: 0 };
    ctx.metadata.release_lease(ctx.agent_id, id).await.expect("release");
    let stolen = ctx.metadata.acquire_lease(99, id, Duration::from_secs(30)).await.expect("acquire");
    assert!(stolen.is_some(), "agent 99 takes the lease");
    let retry = tokio::spawn(async move { produce_one(&mut RawClient::connect(addr).await, "fence", "once", producer).await });

    let not_leader = ResponseError::NotLeaderOrFollower.code();
    assert_eq!(original.await.expect("original").0, not_leader, "the original's commit is fenced");
    let (code, offset) = retry.await.expect("retry");
    assert_eq!(code, not_leader, "the retry was acknowledged at offset {offset}, which does not exist");
    let state = ctx.metadata.partition_state(id).await.expect("state").expect("partition");
    assert_eq!(state.high_watermark, 0, "nothing was written");
    agent.stop().await;
}

/// Hole 5: shutdown keeps renewing the leases until its last flush has committed, so a flush slower
/// than the lease's safety margin is still acknowledged, not refused by the agent's own deadline.
async fn a_slow_last_flush_at_shutdown_still_commits(backend: Backend) {
    let Some(agent) = agent_with_slow_puts(backend, Duration::from_millis(10), &["--lease-ttl-ms", "1500"]).await else { return };
    let addr = agent.addr;
    let mut admin = RawClient::connect(addr).await;
    create(&mut admin, "drain", 1).await;
    assert_eq!(produce_one(&mut admin, "drain", "warm-up", None).await, (0, 0));

    agent.objects.set_put(Fault::Delay(Duration::from_millis(2_500)));
    let last = tokio::spawn(async move { produce_one(&mut RawClient::connect(addr).await, "drain", "last", None).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    agent.stop().await;
    assert_eq!(last.await.expect("producer"), (0, 1), "the last produce before shutdown is acknowledged");
}

/// Hole 3: a coordinator whose group lease lapsed and was taken by another agent stops answering
/// the group's members from memory: a heartbeat gets NOT_COORDINATOR, so the member finds the new
/// coordinator instead of living in a group nobody else sees.
async fn a_coordinator_that_lost_its_group_lease_stops_serving_it(backend: Backend) {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    let Some(agent) = TestAgent::start_on(backend, &["--lease-ttl-ms", "600", "--group-initial-rebalance-delay-ms", "0"]).await else {
        return;
    };
    let mut c = agent.client().await;
    let group = GroupId(StrBytes::from_static_str("split"));
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(group.clone())
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(StrBytes::from_string(member.to_string()))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(StrBytes::from_static_str("range"))])
    };
    let first = c.send(5, &join("")).await;
    let joined = c.send(5, &join(first.member_id.as_str())).await;
    assert_eq!(joined.error_code, 0);
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(group.clone())
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone());
    let sync = SyncGroupRequest::default()
        .with_group_id(group.clone())
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone());
    assert_eq!(c.send(3, &sync).await.error_code, 0);
    assert_eq!(c.send(3, &heartbeat).await.error_code, 0);

    // Agent 7 takes the group over, as if this agent had been paused past its lease.
    let ctx = agent.agent().context();
    ctx.metadata.release_leases(ctx.agent_id).await.expect("release");
    assert!(ctx.metadata.acquire_group_lease(7, "split", Duration::from_secs(60)).await.expect("acquire").is_some());
    tokio::time::sleep(Duration::from_millis(600)).await; // a renewal round or two
    assert_eq!(c.send(3, &heartbeat).await.error_code, ResponseError::NotCoordinator.code());
}

/// Hole 2: the sweeper deletes unreferenced objects once they are --sweep-grace-secs old, judged by
/// the store's clock. A flush whose object took too long to write must not be committed: the object
/// it would reference may already be gone. Such a flush fails with a retriable error instead.
async fn an_object_the_sweeper_may_have_deleted_is_never_committed(backend: Backend) {
    let Some(agent) = agent_with_slow_puts(backend, Duration::from_millis(1_200), &["--sweep-grace-secs", "2"]).await else { return };
    let mut c = RawClient::connect(agent.addr).await;
    create(&mut c, "late", 1).await;
    assert_eq!(
        produce_one(&mut c, "late", "too late", None).await.0,
        ResponseError::KafkaStorageError.code(),
        "a 1.2 s old object is past half the 2 s grace"
    );
    agent.objects.set_put(Fault::None);
    assert_eq!(produce_one(&mut c, "late", "in time", None).await, (0, 0), "nothing was committed before");
    agent.stop().await;
}

/// Hostile clients: the write queue is bounded. Producers faster than the object store are held back
/// (the agent stops reading their requests) instead of growing the agent's memory without end; every
/// produce is still acknowledged, in order.
async fn a_full_write_queue_holds_producers_back(backend: Backend) {
    const CAP: usize = 1 << 20;
    let args = ["--write-buffer-bytes", "1048576", "--flush-bytes", "262144", "--max-flushes-in-flight", "1"];
    let Some(agent) = agent_with_slow_puts(backend, Duration::from_millis(150), &args).await else { return };
    let addr = agent.addr;
    let mut admin = RawClient::connect(addr).await;
    create(&mut admin, "flood", 1).await;
    let value = vec![b'x'; 250 << 10];
    let mut c = RawClient::connect(addr).await;
    let mut frames = Vec::new();
    for _ in 0..16 {
        let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name("flood"))
                .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(&[&value], None)))]),
        ]);
        frames.extend_from_slice(&c.frame(9, &req));
    }
    let writer = tokio::spawn(async move {
        tokio::io::AsyncWriteExt::write_all(&mut c.stream, &frames).await.expect("write");
        let mut answered = 0;
        while answered < 16 {
            c.read_frame().await.expect("an answer");
            answered += 1;
        }
    });
    let mut most = 0;
    while !writer.is_finished() {
        most = most.max(agent.agent().context().writes.pending_bytes());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    writer.await.expect("producer");
    // A connection checks for room before it reads a frame and queues the frame a moment later, so
    // the bound can be passed by the request being read and the one just read.
    assert!(most <= CAP + 2 * (260 << 10), "the queue held {most} bytes, over its {CAP}-byte bound by more than two requests");
    assert!(most >= 256 << 10, "the queue was never even used: {most}");
    let state = agent
        .agent()
        .context()
        .metadata
        .partition_state(PartitionId { topic_id: agent.agent().context().partitions.topic("flood").expect("topic").id, partition: 0 })
        .await;
    assert_eq!(state.expect("store").expect("partition").high_watermark, 16, "every produce was written");
    agent.stop().await;
}

/// Hole 4: on PostgreSQL lease time is the server's clock, so agents whose own clocks disagree by
/// far more than the lease ttl do not see each other's healthy leases as expired and steal them.
/// (SQLite, one machine's store, keeps the local clock: no cloud, no test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_whose_clocks_disagree_leave_each_others_leases_alone() {
    let ahead = ["--agent-id", "1", "--lease-ttl-ms", "1000", "--clock-offset-ms", "15000"];
    let Some(a) = TestAgent::start_on(Backend::Cloud, &ahead).await else { return };
    let b = a.join(&["--agent-id", "2", "--lease-ttl-ms", "1000", "--clock-offset-ms", "-15000"]).await;
    let mut c = a.client().await;
    create(&mut c, "skew", 4).await;
    let ctx = a.agent().context();
    let topic = ctx.partitions.topic("skew").expect("topic known").id;
    let leadership = async || {
        let states = ctx.metadata.partition_states(topic).await.expect("states");
        states.iter().map(|s| (s.leader, s.leader_epoch)).collect::<Vec<_>>()
    };
    // Settled: both agents lead some partitions, and a second look a lease ttl later agrees.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let settled = loop {
        let first = leadership().await;
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let second = leadership().await;
        let both_lead = [1, 2].iter().all(|id| second.iter().any(|(l, _)| *l == Some(*id)));
        if first == second && both_lead {
            break second;
        }
        assert!(std::time::Instant::now() < deadline, "leases never settled: {second:?}");
    };
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert_eq!(leadership().await, settled, "a lease changed hands between two healthy agents");
    b.stop().await;
    a.stop().await;
}

on_every_backend!(
    a_duplicate_of_a_fenced_flush_is_not_acknowledged,
    a_slow_last_flush_at_shutdown_still_commits,
    a_coordinator_that_lost_its_group_lease_stops_serving_it,
    an_object_the_sweeper_may_have_deleted_is_never_committed,
    a_full_write_queue_holds_producers_back
);
