//! Backend-independent scenarios: each takes a fresh, empty store and the clock it reads, so the same
//! functions run against SQLite (`tests/sqlite.rs`) and PostgreSQL (`tests/postgres.rs`), each
//! runner expanding [`scenario_tests!`] into one test a scenario.

#![allow(dead_code)] // each backend's runner may use a subset

mod agents;
mod groups;
pub use agents::*;
pub use groups::*;

use std::collections::BTreeMap;
use std::time::Duration;

use streamhouse_metadata::{
    CommitOutcome, ManualClock, MetadataErrorKind, MetadataStore, NewTopic, PartitionCommit, PartitionId, ProducerBatch, ProducerState,
    SegmentRef, Topic,
};
use uuid::Uuid;

pub const TTL: Duration = Duration::from_secs(10);
pub const START_MS: i64 = 1_700_000_000_000;

/// One `#[tokio::test]` a scenario, each handing the scenario to `$run`, the runner's
/// `async fn(impl AsyncFnOnce(&dyn MetadataStore, &ManualClock))` that gives it a fresh store (or
/// skips it). A new scenario goes in this list, and so runs on every backend.
macro_rules! scenario_tests {
    (@each $run:path: $($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            $run($crate::scenarios::$name).await;
        }
    )*};
    ($run:path) => {
        $crate::scenarios::scenario_tests!(@each $run:
            topic_lifecycle,
            grow_partitions,
            delete_topic_removes_partition_data,
            lease_acquire_bumps_epoch_and_excludes_others,
            concurrent_acquire_has_one_winner,
            renew_and_release,
            fenced_commit_leaves_no_trace_while_others_commit,
            expired_lease_is_fenced,
            density_check,
            malformed_commit_writes_nothing,
            producer_state_round_trip,
            idle_producers_expire_in_a_fenced_commit,
            producer_ids_are_unique,
            epoch_history_records_start_offsets,
            segment_ranges,
            timestamp_lookups,
            cluster_id_is_kafka_shaped,
            group_lease_bumps_epoch_and_expires,
            concurrent_group_acquire_has_one_winner,
            fenced_group_writes_after_takeover,
            offsets_round_trip,
            save_and_load_group,
            list_groups_includes_offset_only_groups,
            delete_group_removes_state_and_offsets,
            expire_offsets_only_in_memberless_groups,
            renew_and_release_cover_group_leases,
            agent_registration_and_expiry,
            live_agents_are_ordered_by_id,
            referenced_objects_follow_the_segment_index,
            release_lease_gives_up_one_partition,
            all_partition_states_cover_every_topic,
            partition_overview_adds_lease_expiry_and_stored_bytes,
            group_coordinators_lists_live_group_leases,
        );
    };
}
pub(crate) use scenario_tests;

pub async fn create(store: &dyn MetadataStore, name: &str, partitions: i32) -> Topic {
    let topic = NewTopic { name: name.into(), partitions, configs: BTreeMap::new() };
    store.create_topic(topic).await.unwrap()
}

pub fn pid(topic: &Topic, partition: i32) -> PartitionId {
    PartitionId { topic_id: topic.id, partition }
}

pub fn run(base: i64, last: i64, max_timestamp: i64) -> SegmentRef {
    SegmentRef {
        base_offset: base,
        last_offset: last,
        object_key: format!("segments/{base:020}.seg"),
        position: 4096 * base.max(0) as u64,
        length: 100 * (last - base + 1) as u64,
        max_timestamp,
    }
}

pub fn commit(id: PartitionId, epoch: i32, base: i64, last: i64) -> PartitionCommit {
    PartitionCommit { id, leader_epoch: epoch, segment: run(base, last, 1000 + last), producers: vec![], expire_idle_producers: None }
}

/// A producer's state as a commit carries it (the store stamps the last write).
pub fn producer(producer_id: i64, producer_epoch: i16, batches: Vec<ProducerBatch>) -> ProducerState {
    ProducerState { producer_id, producer_epoch, batches, last_write_ms: 0 }
}

async fn hwm(store: &dyn MetadataStore, id: PartitionId) -> i64 {
    store.partition_state(id).await.unwrap().unwrap().high_watermark
}

async fn all_segments(store: &dyn MetadataStore, id: PartitionId) -> Vec<SegmentRef> {
    store.segments(id, 0, u32::MAX).await.unwrap()
}

async fn acquire(store: &dyn MetadataStore, agent: i32, id: PartitionId) -> i32 {
    store.acquire_lease(agent, id, TTL).await.unwrap().expect("lease should be free").leader_epoch
}

pub async fn topic_lifecycle(store: &dyn MetadataStore, _clock: &ManualClock) {
    let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
    let created = store.create_topic(NewTopic { name: "orders".into(), partitions: 2, configs: configs.clone() }).await.unwrap();
    assert!(!created.id.is_nil());
    assert_eq!((created.name.as_str(), created.partitions, &created.configs), ("orders", 2, &configs));
    assert_eq!(store.topic("orders").await.unwrap(), Some(created.clone()));
    assert_eq!(store.topic_by_id(created.id).await.unwrap(), Some(created.clone()));
    assert_eq!(store.topic("nope").await.unwrap(), None);
    assert_eq!(store.topic_by_id(Uuid::new_v4()).await.unwrap(), None);

    let again = store.create_topic(NewTopic { name: "orders".into(), partitions: 5, configs: BTreeMap::new() }).await;
    assert_eq!(again.unwrap_err().kind(), MetadataErrorKind::Conflict);
    for bad in [0, -1] {
        let err = store.create_topic(NewTopic { name: "bad".into(), partitions: bad, configs: BTreeMap::new() }).await;
        assert_eq!(err.unwrap_err().kind(), MetadataErrorKind::Invalid);
    }
    assert_eq!(store.topic("bad").await.unwrap(), None, "a refused topic leaves nothing behind");

    let states = store.partition_states(created.id).await.unwrap();
    assert_eq!(states.len(), 2);
    for (i, s) in states.iter().enumerate() {
        assert_eq!(s.id, pid(&created, i as i32));
        assert_eq!((s.leader, s.leader_epoch, s.high_watermark, s.log_start_offset), (None, 0, 0, 0));
    }

    let other = create(store, "audit", 1).await;
    let names: Vec<_> = store.topics().await.unwrap().into_iter().map(|t| (t.name, t.configs.len())).collect();
    assert_eq!(names, [("audit".to_string(), 0), ("orders".to_string(), 1)]);

    let deleted = store.delete_topic("orders").await.unwrap();
    assert_eq!(deleted, created);
    assert_eq!(store.topic("orders").await.unwrap(), None);
    assert!(store.partition_states(created.id).await.unwrap().is_empty());
    assert_eq!(store.delete_topic("orders").await.unwrap_err().kind(), MetadataErrorKind::NotFound);
    assert_eq!(store.topics().await.unwrap(), vec![other]);

    let recreated = create(store, "orders", 1).await;
    assert_ne!(recreated.id, created.id, "a re-created topic never shares an id with the old one");
}

pub async fn grow_partitions(store: &dyn MetadataStore, _clock: &ManualClock) {
    let topic = create(store, "grow", 2).await;
    acquire(store, 1, pid(&topic, 0)).await;
    let grown = store.create_partitions("grow", 4).await.unwrap();
    assert_eq!((grown.id, grown.partitions), (topic.id, 4));
    assert_eq!(store.topic("grow").await.unwrap().unwrap().partitions, 4);
    let states = store.partition_states(topic.id).await.unwrap();
    assert_eq!(states.iter().map(|s| s.id.partition).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(states[0].leader, Some(1), "growing leaves existing partitions alone");
    assert_eq!((states[3].leader, states[3].leader_epoch, states[3].high_watermark), (None, 0, 0));

    for same_or_fewer in [4, 3, 0] {
        let err = store.create_partitions("grow", same_or_fewer).await.unwrap_err();
        assert_eq!(err.kind(), MetadataErrorKind::Invalid);
        assert!(err.message().contains("already has 4 partitions"), "{err}");
    }
    assert_eq!(store.create_partitions("nope", 9).await.unwrap_err().kind(), MetadataErrorKind::NotFound);
}

pub async fn delete_topic_removes_partition_data(store: &dyn MetadataStore, _clock: &ManualClock) {
    let topic = create(store, "doomed", 1).await;
    let id = pid(&topic, 0);
    let epoch = acquire(store, 1, id).await;
    let mut c = commit(id, epoch, 0, 9);
    c.producers = vec![producer(1000, 0, vec![])];
    assert_eq!(store.commit_flush(1, &[c]).await.unwrap(), [CommitOutcome::Committed { high_watermark: 10 }]);

    let group_epoch = store.acquire_group_lease(1, "reader", TTL).await.unwrap().unwrap();
    let kept = groups::offset("kept", 0, 5, None);
    store.commit_offsets(1, group_epoch, "reader", &[groups::offset("doomed", 0, 7, None), kept.clone()]).await.unwrap();

    store.delete_topic("doomed").await.unwrap();
    assert_eq!(store.fetch_offsets("reader").await.unwrap(), [kept], "the deleted topic's committed offsets went with it");
    assert_eq!(store.partition_state(id).await.unwrap(), None);
    assert!(all_segments(store, id).await.is_empty());
    assert!(store.producer_states(id).await.unwrap().is_empty());
    assert!(store.epoch_history(id).await.unwrap().is_empty());
    assert_eq!(store.acquire_lease(1, id, TTL).await.unwrap_err().kind(), MetadataErrorKind::NotFound);
    assert_eq!(store.commit_flush(1, &[commit(id, epoch, 10, 19)]).await.unwrap(), [CommitOutcome::Fenced]);
}

pub async fn lease_acquire_bumps_epoch_and_excludes_others(store: &dyn MetadataStore, clock: &ManualClock) {
    let topic = create(store, "leases", 1).await;
    let id = pid(&topic, 0);
    let lease = store.acquire_lease(1, id, TTL).await.unwrap().unwrap();
    assert_eq!((lease.id, lease.leader_epoch, lease.high_watermark, lease.log_start_offset), (id, 1, 0, 0));
    assert_eq!(store.acquire_lease(2, id, TTL).await.unwrap(), None, "a live lease excludes others");
    assert_eq!(store.partition_state(id).await.unwrap().unwrap().leader, Some(1));
    assert_eq!(acquire(store, 1, id).await, 2, "re-acquiring one's own lease starts a new epoch");

    clock.advance(TTL - Duration::from_millis(1));
    assert_eq!(store.acquire_lease(2, id, TTL).await.unwrap(), None);
    clock.advance(Duration::from_millis(1));
    let state = store.partition_state(id).await.unwrap().unwrap();
    assert_eq!((state.leader, state.leader_epoch), (None, 2), "an expired lease has no leader");
    assert_eq!(acquire(store, 2, id).await, 3);
    assert_eq!(store.acquire_lease(1, id, TTL).await.unwrap(), None);
    assert_eq!(store.epoch_history(id).await.unwrap(), [(1, 0), (2, 0), (3, 0)]);

    let missing = PartitionId { topic_id: topic.id, partition: 1 };
    assert_eq!(store.acquire_lease(1, missing, TTL).await.unwrap_err().kind(), MetadataErrorKind::NotFound);
    let unknown = PartitionId { topic_id: Uuid::new_v4(), partition: 0 };
    assert_eq!(store.acquire_lease(1, unknown, TTL).await.unwrap_err().kind(), MetadataErrorKind::NotFound);
    assert_eq!(store.partition_state(unknown).await.unwrap(), None);
}

pub async fn concurrent_acquire_has_one_winner(store: &dyn MetadataStore, _clock: &ManualClock) {
    let topic = create(store, "race", 1).await;
    let id = pid(&topic, 0);
    let attempts = (1..=6).map(|agent| store.acquire_lease(agent, id, TTL));
    let results = futures_join_all(attempts).await;
    let winners: Vec<_> = results.into_iter().filter_map(Result::unwrap).collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(winners[0].leader_epoch, 1);
    assert_eq!(store.epoch_history(id).await.unwrap(), [(1, 0)]);
}

pub async fn renew_and_release(store: &dyn MetadataStore, clock: &ManualClock) {
    let a = create(store, "a", 2).await;
    let b = create(store, "b", 1).await;
    acquire(store, 1, pid(&a, 0)).await;
    acquire(store, 1, pid(&a, 1)).await;
    acquire(store, 2, pid(&b, 0)).await;
    assert_eq!(store.renew_leases(1, TTL).await.unwrap().count(), 2);
    assert_eq!(store.renew_leases(3, TTL).await.unwrap().count(), 0);

    // Renewing keeps agent 1's leases alive past the first expiry; agent 2's lapses.
    clock.advance(TTL * 8 / 10);
    assert_eq!(store.renew_leases(1, TTL).await.unwrap().count(), 2);
    clock.advance(TTL * 8 / 10);
    assert_eq!(store.partition_state(pid(&a, 0)).await.unwrap().unwrap().leader, Some(1));
    assert_eq!(store.partition_state(pid(&b, 0)).await.unwrap().unwrap().leader, None);
    assert_eq!(store.acquire_lease(2, pid(&a, 1), TTL).await.unwrap(), None);

    store.release_leases(1).await.unwrap();
    let state = store.partition_state(pid(&a, 1)).await.unwrap().unwrap();
    assert_eq!((state.leader, state.leader_epoch), (None, 1), "release keeps the epoch");
    assert_eq!(acquire(store, 2, pid(&a, 1)).await, 2, "a released lease is free at once");
    assert_eq!(store.renew_leases(1, TTL).await.unwrap().count(), 0);
    assert_eq!(store.renew_leases(2, TTL).await.unwrap().count(), 2, "b/0 lapsed but nobody took it");
}

pub async fn fenced_commit_leaves_no_trace_while_others_commit(store: &dyn MetadataStore, clock: &ManualClock) {
    let topic = create(store, "fence", 2).await;
    let (p0, p1) = (pid(&topic, 0), pid(&topic, 1));
    let e0 = acquire(store, 1, p0).await;
    let e1 = acquire(store, 1, p1).await;
    let mut first = commit(p0, e0, 0, 9);
    first.producers = vec![producer(7, 0, vec![])];
    assert_eq!(store.commit_flush(1, &[first]).await.unwrap(), [CommitOutcome::Committed { high_watermark: 10 }]);

    // Agent 1 stops renewing p0; agent 2 takes it over.
    clock.advance(TTL);
    let takeover = store.acquire_lease(2, p0, TTL).await.unwrap().unwrap();
    assert_eq!((takeover.leader_epoch, takeover.high_watermark), (e0 + 1, 10));
    // p1's lease lapsed too; nobody took it, and agent 1 renews it in time for its flush.
    assert_eq!(store.renew_leases(1, TTL).await.unwrap().count(), 1);

    let mut stale = commit(p0, e0, 10, 19);
    stale.producers = vec![producer(7, 1, vec![])];
    let outcomes = store.commit_flush(1, &[stale, commit(p1, e1, 0, 4)]).await.unwrap();
    assert_eq!(outcomes, [CommitOutcome::Fenced, CommitOutcome::Committed { high_watermark: 5 }]);
    assert_eq!(hwm(store, p0).await, 10);
    assert_eq!(all_segments(store, p0).await, [run(0, 9, 1009)]);
    assert_eq!(store.producer_states(p0).await.unwrap()[0].producer_epoch, 0);
    assert_eq!(all_segments(store, p1).await, [run(0, 4, 1004)]);

    // The new leader continues densely from the high watermark it was given.
    let outcomes = store.commit_flush(2, &[commit(p0, takeover.leader_epoch, 10, 19)]).await.unwrap();
    assert_eq!(outcomes, [CommitOutcome::Committed { high_watermark: 20 }]);
    // The right epoch from the wrong agent, and the right agent after release, are both fenced.
    assert_eq!(store.commit_flush(1, &[commit(p0, takeover.leader_epoch, 20, 29)]).await.unwrap(), [CommitOutcome::Fenced]);
    store.release_leases(2).await.unwrap();
    assert_eq!(store.commit_flush(2, &[commit(p0, takeover.leader_epoch, 20, 29)]).await.unwrap(), [CommitOutcome::Fenced]);
    assert_eq!(hwm(store, p0).await, 20);
}

pub async fn expired_lease_is_fenced(store: &dyn MetadataStore, clock: &ManualClock) {
    let topic = create(store, "lapse", 1).await;
    let id = pid(&topic, 0);
    let epoch = acquire(store, 1, id).await;
    clock.advance(TTL);
    assert_eq!(store.commit_flush(1, &[commit(id, epoch, 0, 0)]).await.unwrap(), [CommitOutcome::Fenced]);
    assert_eq!(hwm(store, id).await, 0);
}

pub async fn density_check(store: &dyn MetadataStore, _clock: &ManualClock) {
    let topic = create(store, "dense", 1).await;
    let id = pid(&topic, 0);
    let epoch = acquire(store, 1, id).await;
    assert_eq!(store.commit_flush(1, &[commit(id, epoch, 1, 5)]).await.unwrap(), [CommitOutcome::Fenced], "gap");
    assert_eq!(hwm(store, id).await, 0);
    assert!(all_segments(store, id).await.is_empty());

    // Two runs of one partition in one flush apply in order.
    let both = [commit(id, epoch, 0, 4), commit(id, epoch, 5, 9)];
    let outcomes = store.commit_flush(1, &both).await.unwrap();
    assert_eq!(outcomes, [CommitOutcome::Committed { high_watermark: 5 }, CommitOutcome::Committed { high_watermark: 10 }]);
    for (base, last) in [(5, 12), (9, 9), (11, 11)] {
        let outcome = store.commit_flush(1, &[commit(id, epoch, base, last)]).await.unwrap();
        assert_eq!(outcome, [CommitOutcome::Fenced], "overlap or gap at {base}");
    }
    let outcomes = store.commit_flush(1, &[commit(id, epoch, 10, 10), commit(id, epoch, 12, 12)]).await.unwrap();
    assert_eq!(outcomes, [CommitOutcome::Committed { high_watermark: 11 }, CommitOutcome::Fenced]);
    assert_eq!(hwm(store, id).await, 11);
    let bases: Vec<_> = all_segments(store, id).await.iter().map(|s| (s.base_offset, s.last_offset)).collect();
    assert_eq!(bases, [(0, 4), (5, 9), (10, 10)]);
}

pub async fn malformed_commit_writes_nothing(store: &dyn MetadataStore, _clock: &ManualClock) {
    let topic = create(store, "malformed", 2).await;
    let (p0, p1) = (pid(&topic, 0), pid(&topic, 1));
    let (e0, e1) = (acquire(store, 1, p0).await, acquire(store, 1, p1).await);
    let mut huge = commit(p1, e1, 0, 0);
    huge.segment.length = u64::MAX;
    for bad in [commit(p1, e1, 5, 4), commit(p1, e1, -1, 0), huge] {
        let err = store.commit_flush(1, &[commit(p0, e0, 0, 9), bad]).await.unwrap_err();
        assert_eq!(err.kind(), MetadataErrorKind::Invalid);
    }
    assert_eq!(hwm(store, p0).await, 0);
    assert!(all_segments(store, p0).await.is_empty());
    assert_eq!(store.commit_flush(1, &[]).await.unwrap(), []);
}

pub async fn producer_state_round_trip(store: &dyn MetadataStore, clock: &ManualClock) {
    let topic = create(store, "idempotent", 1).await;
    let id = pid(&topic, 0);
    let epoch = acquire(store, 1, id).await;
    let batch =
        |seq: i32, offset: i64| ProducerBatch { first_sequence: seq, last_sequence: seq + 1, base_offset: offset, last_offset: offset + 1 };
    // What a commit says of the last write is ignored: the store stamps its own time.
    let p2000 = ProducerState { last_write_ms: 5, ..producer(2000, 3, vec![batch(0, 0)]) };
    let p1000 = producer(1000, i16::MAX, (0..5).map(|i| batch(i * 2, 2 + i64::from(i) * 2)).collect());
    let mut c = commit(id, epoch, 0, 11);
    c.producers = vec![p2000.clone(), p1000.clone()];
    store.commit_flush(1, &[c]).await.unwrap();
    let at = |state: &ProducerState, ms: i64| ProducerState { last_write_ms: ms, ..state.clone() };
    assert_eq!(store.producer_states(id).await.unwrap(), [at(&p1000, START_MS), at(&p2000, START_MS)]);

    // A later commit replaces a producer's row whole and leaves the others.
    clock.advance(Duration::from_millis(250));
    let p2000b = producer(2000, 4, vec![]);
    let mut c = commit(id, epoch, 12, 12);
    c.producers = vec![p2000b.clone()];
    store.commit_flush(1, &[c]).await.unwrap();
    assert_eq!(store.producer_states(id).await.unwrap(), [at(&p1000, START_MS), at(&p2000b, START_MS + 250)]);
    assert!(store.producer_states(PartitionId { topic_id: topic.id, partition: 5 }).await.unwrap().is_empty());
}

/// Kafka's producer.id.expiration.ms: a commit asked to expire deletes the partition's producers
/// idle for the expiry or longer (by the store's clock), never those it writes itself, and a fenced
/// commit deletes nothing.
pub async fn idle_producers_expire_in_a_fenced_commit(store: &dyn MetadataStore, clock: &ManualClock) {
    const EXPIRY: Duration = Duration::from_millis(1000);
    let topic = create(store, "expiry", 2).await;
    let (id, other) = (pid(&topic, 0), pid(&topic, 1));
    let (epoch, other_epoch) = (acquire(store, 1, id).await, acquire(store, 1, other).await);
    let mut c = commit(id, epoch, 0, 0);
    c.producers = vec![producer(1, 0, vec![]), producer(2, 0, vec![]), producer(3, 0, vec![])];
    let mut o = commit(other, other_epoch, 0, 0);
    o.producers = vec![producer(1, 0, vec![])];
    store.commit_flush(1, &[c, o]).await.unwrap();

    clock.advance(Duration::from_millis(400));
    let mut c = commit(id, epoch, 1, 1);
    c.producers = vec![producer(2, 0, vec![])];
    store.commit_flush(1, &[c]).await.unwrap();

    // Producer 1 was idle exactly the expiry (Kafka's `>=`), 2 for less; 3 is idle too, but this
    // commit writes it.
    clock.advance(Duration::from_millis(600));
    let mut c = commit(id, epoch, 2, 2);
    c.producers = vec![producer(3, 0, vec![])];
    c.expire_idle_producers = Some(EXPIRY);
    store.commit_flush(1, &[c]).await.unwrap();
    let left: Vec<_> = store.producer_states(id).await.unwrap().iter().map(|p| (p.producer_id, p.last_write_ms)).collect();
    assert_eq!(left, [(2, START_MS + 400), (3, START_MS + 1000)]);
    assert_eq!(store.producer_states(other).await.unwrap().len(), 1, "only the committed partition is pruned");

    // Everything is idle now, but a commit fenced by a newer epoch writes nothing and deletes nothing.
    clock.advance(TTL);
    let takeover = acquire(store, 2, id).await;
    let mut stale = commit(id, epoch, 3, 3);
    stale.expire_idle_producers = Some(EXPIRY);
    assert_eq!(store.commit_flush(1, &[stale]).await.unwrap(), [CommitOutcome::Fenced]);
    assert_eq!(store.producer_states(id).await.unwrap().len(), 2);
    let mut c = commit(id, takeover, 3, 3);
    c.expire_idle_producers = Some(EXPIRY);
    store.commit_flush(2, &[c]).await.unwrap();
    assert!(store.producer_states(id).await.unwrap().is_empty(), "the new leader's commit expires them");
}

pub async fn producer_ids_are_unique(store: &dyn MetadataStore, _clock: &ManualClock) {
    let first = store.allocate_producer_id().await.unwrap();
    assert!(first >= 1000);
    let mut ids = futures_join_all((0..8).map(|_| store.allocate_producer_id())).await.into_iter().map(Result::unwrap).collect::<Vec<_>>();
    ids.sort();
    assert_eq!(ids, (first + 1..=first + 8).collect::<Vec<_>>());
}

pub async fn epoch_history_records_start_offsets(store: &dyn MetadataStore, clock: &ManualClock) {
    let topic = create(store, "epochs", 1).await;
    let id = pid(&topic, 0);
    assert!(store.epoch_history(id).await.unwrap().is_empty());
    let e1 = acquire(store, 1, id).await;
    store.commit_flush(1, &[commit(id, e1, 0, 9)]).await.unwrap();
    clock.advance(TTL);
    let e2 = acquire(store, 2, id).await;
    store.commit_flush(2, &[commit(id, e2, 10, 24)]).await.unwrap();
    store.release_leases(2).await.unwrap();
    let e3 = acquire(store, 1, id).await;
    assert_eq!(store.epoch_history(id).await.unwrap(), [(e1, 0), (e2, 10), (e3, 25)]);
    assert_eq!((e1, e2, e3), (1, 2, 3));
}

pub async fn segment_ranges(store: &dyn MetadataStore, _clock: &ManualClock) {
    let topic = create(store, "ranges", 2).await;
    let id = pid(&topic, 0);
    let epoch = acquire(store, 1, id).await;
    let runs = [commit(id, epoch, 0, 9), commit(id, epoch, 10, 19), commit(id, epoch, 20, 29)];
    store.commit_flush(1, &runs).await.unwrap();
    let bases = |segments: Vec<SegmentRef>| segments.iter().map(|s| s.base_offset).collect::<Vec<_>>();
    for (from, limit, expected) in [
        (0, 10, vec![0, 10, 20]),
        (-5, 10, vec![0, 10, 20]),
        (9, 10, vec![0, 10, 20]),
        (10, 10, vec![10, 20]),
        (15, 10, vec![10, 20]),
        (19, 10, vec![10, 20]),
        (29, 10, vec![20]),
        (30, 10, vec![]),
        (5, 1, vec![0]),
        (15, 1, vec![10]),
        (0, 0, vec![]),
    ] {
        assert_eq!(bases(store.segments(id, from, limit).await.unwrap()), expected, "from {from} limit {limit}");
    }
    assert_eq!(store.segments(id, 15, 1).await.unwrap(), [runs[1].segment.clone()]);
    assert!(store.segments(pid(&topic, 1), 0, 10).await.unwrap().is_empty());
}

pub async fn timestamp_lookups(store: &dyn MetadataStore, _clock: &ManualClock) {
    let topic = create(store, "times", 2).await;
    let id = pid(&topic, 0);
    let epoch = acquire(store, 1, id).await;
    let commits: Vec<_> = [100, 300, 200, 300]
        .into_iter()
        .enumerate()
        .map(|(i, ts)| {
            let base = i as i64 * 10;
            PartitionCommit { id, leader_epoch: epoch, segment: run(base, base + 9, ts), producers: vec![], expire_idle_producers: None }
        })
        .collect();
    store.commit_flush(1, &commits).await.unwrap();
    let at = |ts| async move { store.segment_for_timestamp(id, ts).await.unwrap().map(|s| s.base_offset) };
    assert_eq!(at(i64::MIN).await, Some(0));
    assert_eq!(at(100).await, Some(0));
    assert_eq!(at(101).await, Some(10));
    assert_eq!(at(250).await, Some(10), "first in offset order, not the closest timestamp");
    assert_eq!(at(300).await, Some(10));
    assert_eq!(at(301).await, None);
    let max = store.segment_with_max_timestamp(id).await.unwrap().unwrap();
    assert_eq!(max, commits[1].segment, "the earliest run on ties");
    let empty = pid(&topic, 1);
    assert_eq!(store.segment_for_timestamp(empty, 0).await.unwrap(), None);
    assert_eq!(store.segment_with_max_timestamp(empty).await.unwrap(), None);
}

pub async fn cluster_id_is_kafka_shaped(store: &dyn MetadataStore, _clock: &ManualClock) {
    let id = store.cluster_id().await.unwrap();
    assert_eq!(id.len(), 22);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{id}");
    assert_eq!(store.cluster_id().await.unwrap(), id);
}

/// What [`write_sample`] left, for [`check_sample`] to find after the store is reopened.
pub struct Sample {
    topic: Topic,
    epoch: i32,
    producer_id: i64,
    cluster_id: String,
    group: streamhouse_metadata::GroupState,
    group_epoch: i32,
    offsets: Vec<streamhouse_metadata::CommittedOffset>,
}

pub async fn write_sample(store: &dyn MetadataStore) -> Sample {
    let topic = store
        .create_topic(NewTopic { name: "durable".into(), partitions: 2, configs: BTreeMap::from([("k".into(), "v".into())]) })
        .await
        .unwrap();
    let id = pid(&topic, 1);
    let epoch = store.acquire_lease(1, id, Duration::from_secs(3600)).await.unwrap().unwrap().leader_epoch;
    let producer_id = store.allocate_producer_id().await.unwrap();
    let mut c = commit(id, epoch, 0, 41);
    c.producers =
        vec![producer(producer_id, 0, vec![ProducerBatch { first_sequence: 0, last_sequence: 41, base_offset: 0, last_offset: 41 }])];
    assert_eq!(store.commit_flush(1, &[c]).await.unwrap(), [CommitOutcome::Committed { high_watermark: 42 }]);
    let group_epoch = store.acquire_group_lease(1, "durable-group", Duration::from_secs(3600)).await.unwrap().unwrap();
    let group = groups::group("durable-group", 7, vec![groups::member("m1", Some("static-1")), groups::member("m0", None)]);
    store.save_group(1, group_epoch, &group).await.unwrap();
    let offsets = vec![groups::offset("durable", 0, 12, Some("meta")), groups::offset("durable", 1, 41, None)];
    store.commit_offsets(1, group_epoch, "durable-group", &offsets).await.unwrap();
    Sample { topic, epoch, producer_id, cluster_id: store.cluster_id().await.unwrap(), group, group_epoch, offsets }
}

pub async fn check_sample(store: &dyn MetadataStore, sample: &Sample) {
    let id = pid(&sample.topic, 1);
    assert_eq!(store.topic("durable").await.unwrap().as_ref(), Some(&sample.topic));
    let state = store.partition_state(id).await.unwrap().unwrap();
    assert_eq!((state.high_watermark, state.leader_epoch), (42, sample.epoch));
    assert_eq!(store.segments(id, 0, 10).await.unwrap(), [run(0, 41, 1041)]);
    assert_eq!(store.epoch_history(id).await.unwrap(), [(sample.epoch, 0)]);
    assert_eq!(store.producer_states(id).await.unwrap()[0].producer_id, sample.producer_id);
    assert!(store.allocate_producer_id().await.unwrap() > sample.producer_id, "ids are never reissued");
    assert_eq!(store.cluster_id().await.unwrap(), sample.cluster_id, "the cluster id is stable");
    assert_eq!(store.load_group("durable-group").await.unwrap().as_ref(), Some(&sample.group));
    assert_eq!(store.fetch_offsets("durable-group").await.unwrap(), sample.offsets);
    assert_eq!(store.group_coordinator("durable-group").await.unwrap(), Some(1));
    // Re-acquiring after a reopen continues the epoch sequence.
    let epoch = store.acquire_group_lease(1, "durable-group", Duration::from_secs(3600)).await.unwrap().unwrap();
    assert!(epoch > sample.group_epoch);
}

/// `join_all` without a dependency on the `futures` crate: polls the futures concurrently.
pub async fn futures_join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in set.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future completed")).collect()
}
