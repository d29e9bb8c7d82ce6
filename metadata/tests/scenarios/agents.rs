//! Agent membership, single-partition lease release, cluster-wide partition states and the object
//! keys the segment index references.

use std::time::Duration;

use streamhouse_metadata::{AgentInfo, Clock, CommitOutcome, ManualClock, MetadataStore, PartitionCommit, PartitionState};
use uuid::Uuid;

use super::{TTL, acquire, commit, create, pid, run};

pub fn agent(id: i32, host: &str, zone: Option<&str>, group: &str) -> AgentInfo {
    AgentInfo { id, host: host.into(), port: 9092, zone: zone.map(Into::into), group: group.into() }
}

async fn live_ids(store: &dyn MetadataStore) -> Vec<i32> {
    store.live_agents().await.unwrap().into_iter().map(|a| a.id).collect()
}

pub async fn agent_registration_and_expiry(store: &dyn MetadataStore, clock: &ManualClock) {
    assert!(store.live_agents().await.unwrap().is_empty());
    let first = agent(1, "10.0.0.1", Some("us-east-1a"), "default");
    store.register_agent(&first, TTL).await.unwrap();
    assert_eq!(store.live_agents().await.unwrap(), std::slice::from_ref(&first));

    // Live while the registration has not expired, like a lease.
    clock.advance(TTL - Duration::from_millis(1));
    assert_eq!(live_ids(store).await, [1]);
    clock.advance(Duration::from_millis(1));
    assert!(store.live_agents().await.unwrap().is_empty(), "expired at now + ttl");

    // Registering again is the heartbeat: it revives the agent and pushes its expiry on.
    store.register_agent(&first, TTL).await.unwrap();
    let expiry = store.registration_expiry(1).await.unwrap();
    assert!(expiry.is_some());
    clock.advance(TTL * 8 / 10);
    store.register_agent(&first, TTL).await.unwrap();
    assert!(store.registration_expiry(1).await.unwrap() > expiry, "a heartbeat moves the expiry on");
    assert_eq!(store.registration_expiry(2).await.unwrap(), None);
    clock.advance(TTL * 8 / 10);
    assert_eq!(store.live_agents().await.unwrap(), std::slice::from_ref(&first));

    // Re-registering an id replaces its address, zone and group (and its expiry: a shorter ttl wins).
    let moved = AgentInfo { port: 19092, ..agent(1, "10.0.0.99", None, "analytics") };
    store.register_agent(&moved, Duration::from_secs(1)).await.unwrap();
    assert_eq!(store.live_agents().await.unwrap(), std::slice::from_ref(&moved));
    clock.advance(Duration::from_secs(1));
    assert!(store.live_agents().await.unwrap().is_empty());

    // Deregistering removes a live agent at once; unknown ids are a no-op.
    store.register_agent(&moved, TTL).await.unwrap();
    store.register_agent(&agent(2, "h2", None, "default"), TTL).await.unwrap();
    store.deregister_agent(1).await.unwrap();
    assert_eq!(live_ids(store).await, [2]);
    store.deregister_agent(1).await.unwrap();
    store.deregister_agent(42).await.unwrap();
    assert_eq!(live_ids(store).await, [2]);
    store.register_agent(&first, TTL).await.unwrap();
    assert_eq!(store.live_agents().await.unwrap()[0], first, "a deregistered id can register again");
}

pub async fn live_agents_are_ordered_by_id(store: &dyn MetadataStore, clock: &ManualClock) {
    for id in [7, 3, 11, 5, 0] {
        let zone = (id % 2 == 1).then(|| format!("zone-{id}"));
        store.register_agent(&agent(id, &format!("h{id}"), zone.as_deref(), "g"), TTL).await.unwrap();
    }
    // One registered with a short ttl lapses while the others stay.
    store.register_agent(&agent(4, "h4", None, "g"), Duration::from_secs(1)).await.unwrap();
    assert_eq!(live_ids(store).await, [0, 3, 4, 5, 7, 11]);
    clock.advance(Duration::from_secs(1));
    let live = store.live_agents().await.unwrap();
    assert_eq!(live.iter().map(|a| a.id).collect::<Vec<_>>(), [0, 3, 5, 7, 11]);
    assert_eq!(live[0], agent(0, "h0", None, "g"));
    assert_eq!(live[1], agent(3, "h3", Some("zone-3"), "g"));
}

fn run_in(object_key: &str, base: i64, last: i64) -> streamhouse_metadata::SegmentRef {
    streamhouse_metadata::SegmentRef { object_key: object_key.into(), ..run(base, last, 1000 + last) }
}

pub async fn referenced_objects_follow_the_segment_index(store: &dyn MetadataStore, _clock: &ManualClock) {
    assert!(store.referenced_objects().await.unwrap().is_empty());
    let keep = create(store, "keep", 1).await;
    let drop = create(store, "drop", 2).await;
    let (k0, d0, d1) = (pid(&keep, 0), pid(&drop, 0), pid(&drop, 1));
    let (ek, ed0, ed1) = (acquire(store, 1, k0).await, acquire(store, 1, d0).await, acquire(store, 1, d1).await);
    let c = |id, epoch, key: &str, base, last| PartitionCommit {
        id,
        leader_epoch: epoch,
        segment: run_in(key, base, last),
        producers: vec![],
        expire_idle_producers: None,
    };
    // One flush object holds runs of several partitions and topics; "b" is only "drop"'s.
    let outcomes =
        store.commit_flush(1, &[c(k0, ek, "objects/a", 0, 9), c(d0, ed0, "objects/a", 0, 4), c(d1, ed1, "objects/b", 0, 4)]).await.unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, CommitOutcome::Committed { .. })));
    store.commit_flush(1, &[c(d0, ed0, "objects/c", 5, 9), c(k0, ek, "objects/c", 10, 19)]).await.unwrap();
    // A fenced run leaves no row, so it references nothing.
    assert_eq!(store.commit_flush(2, &[c(d1, ed1, "objects/fenced", 5, 9)]).await.unwrap(), [CommitOutcome::Fenced]);
    assert_eq!(store.referenced_objects().await.unwrap(), ["objects/a", "objects/b", "objects/c"], "distinct and sorted");

    // Deleting a topic removes its rows: keys only it referenced disappear, shared ones stay.
    store.delete_topic("drop").await.unwrap();
    assert_eq!(store.referenced_objects().await.unwrap(), ["objects/a", "objects/c"]);
    store.delete_topic("keep").await.unwrap();
    assert!(store.referenced_objects().await.unwrap().is_empty());
}

pub async fn release_lease_gives_up_one_partition(store: &dyn MetadataStore, _clock: &ManualClock) {
    let topic = create(store, "handoff", 2).await;
    let (p0, p1) = (pid(&topic, 0), pid(&topic, 1));
    let e0 = acquire(store, 1, p0).await;
    acquire(store, 1, p1).await;
    store.commit_flush(1, &[commit(p0, e0, 0, 9)]).await.unwrap();

    // Only the holder can release.
    store.release_lease(2, p0).await.unwrap();
    let state = store.partition_state(p0).await.unwrap().unwrap();
    assert_eq!((state.leader, state.leader_epoch), (Some(1), e0));
    assert_eq!(store.acquire_lease(2, p0, TTL).await.unwrap(), None);

    store.release_lease(1, p0).await.unwrap();
    let state = store.partition_state(p0).await.unwrap().unwrap();
    assert_eq!((state.leader, state.leader_epoch, state.high_watermark), (None, e0, 10), "release keeps the epoch and the log");
    assert_eq!(store.partition_state(p1).await.unwrap().unwrap().leader, Some(1), "the other partition stays held");
    assert_eq!(store.renew_leases(1, TTL).await.unwrap().count(), 1);

    // Another agent takes it at once, under the next epoch; the old leader is fenced.
    let lease = store.acquire_lease(2, p0, TTL).await.unwrap().unwrap();
    assert_eq!((lease.leader_epoch, lease.high_watermark), (e0 + 1, 10));
    assert_eq!(store.commit_flush(1, &[commit(p0, e0, 10, 19)]).await.unwrap(), [CommitOutcome::Fenced]);
    // The former holder releasing again is a no-op now that agent 2 holds it.
    store.release_lease(1, p0).await.unwrap();
    assert_eq!(store.partition_state(p0).await.unwrap().unwrap().leader, Some(2));
    assert_eq!(store.epoch_history(p0).await.unwrap(), [(e0, 0), (e0 + 1, 10)]);

    // Unknown partitions are a no-op too.
    store.release_lease(1, pid(&topic, 5)).await.unwrap();
    let unknown = streamhouse_metadata::PartitionId { topic_id: Uuid::new_v4(), partition: 0 };
    store.release_lease(1, unknown).await.unwrap();
}

pub async fn all_partition_states_cover_every_topic(store: &dyn MetadataStore, clock: &ManualClock) {
    assert!(store.all_partition_states().await.unwrap().is_empty());
    let a = create(store, "a", 2).await;
    let b = create(store, "b", 1).await;
    let ea = acquire(store, 1, pid(&a, 0)).await;
    store.commit_flush(1, &[commit(pid(&a, 0), ea, 0, 4)]).await.unwrap();
    clock.advance(TTL / 2);
    acquire(store, 2, pid(&b, 0)).await;

    let expected = |leaders: [Option<i32>; 3]| {
        let mut states = vec![
            PartitionState { id: pid(&a, 0), leader: leaders[0], leader_epoch: 1, high_watermark: 5, log_start_offset: 0 },
            PartitionState { id: pid(&a, 1), leader: leaders[1], leader_epoch: 0, high_watermark: 0, log_start_offset: 0 },
            PartitionState { id: pid(&b, 0), leader: leaders[2], leader_epoch: 1, high_watermark: 0, log_start_offset: 0 },
        ];
        states.sort_by_key(|s| s.id);
        states
    };
    let all = store.all_partition_states().await.unwrap();
    assert_eq!(all, expected([Some(1), None, Some(2)]));
    // The same as asking topic by topic.
    let mut by_topic = store.partition_states(a.id).await.unwrap();
    by_topic.extend(store.partition_states(b.id).await.unwrap());
    by_topic.sort_by_key(|s| s.id);
    assert_eq!(all, by_topic);

    // a/0's lease lapses first: its leader is no longer reported, its epoch stays.
    clock.advance(TTL / 2);
    assert_eq!(store.all_partition_states().await.unwrap(), expected([None, None, Some(2)]));
    clock.advance(TTL / 2);
    assert_eq!(store.all_partition_states().await.unwrap(), expected([None, None, None]));

    store.delete_topic("a").await.unwrap();
    let left = store.all_partition_states().await.unwrap();
    assert_eq!(left.iter().map(|s| s.id).collect::<Vec<_>>(), [pid(&b, 0)]);
}

pub async fn partition_overview_adds_lease_expiry_and_stored_bytes(store: &dyn MetadataStore, clock: &ManualClock) {
    let a = create(store, "a", 2).await;
    let epoch = acquire(store, 1, pid(&a, 0)).await;
    let lease_from = clock.now_ms();
    store.commit_flush(1, &[commit(pid(&a, 0), epoch, 0, 4)]).await.unwrap();
    store.commit_flush(1, &[commit(pid(&a, 0), epoch, 5, 6)]).await.unwrap();
    let overview = store.partition_overview().await.unwrap();
    assert_eq!(overview.len(), 2);
    let (led, idle) = (&overview[0], &overview[1]);
    assert_eq!(led.state, store.partition_state(pid(&a, 0)).await.unwrap().unwrap());
    assert_eq!(led.lease_expires_ms, lease_from + TTL.as_millis() as i64);
    assert_eq!(led.stored_bytes, (run(0, 4, 0).length + run(5, 6, 0).length) as i64);
    assert_eq!((idle.state.leader, idle.lease_expires_ms, idle.stored_bytes), (None, 0, 0));
}

pub async fn group_coordinators_lists_live_group_leases(store: &dyn MetadataStore, clock: &ManualClock) {
    assert!(store.group_coordinators().await.unwrap().is_empty());
    store.acquire_group_lease(2, "b", TTL).await.unwrap();
    store.acquire_group_lease(1, "a", TTL).await.unwrap();
    assert_eq!(store.group_coordinators().await.unwrap(), [("a".to_string(), 1), ("b".to_string(), 2)]);
    clock.advance(TTL);
    assert!(store.group_coordinators().await.unwrap().is_empty(), "expired leases coordinate nothing");
}
