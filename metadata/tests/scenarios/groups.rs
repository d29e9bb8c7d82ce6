//! Consumer-group scenarios: coordinator leases, fencing, group state and committed offsets.

use std::time::Duration;

use streamhouse_metadata::{CommittedOffset, GroupMember, GroupState, ManualClock, MetadataErrorKind, MetadataStore};

use super::{START_MS, TTL, create, futures_join_all, pid};

async fn acquire_group(store: &dyn MetadataStore, agent: i32, group: &str) -> i32 {
    store.acquire_group_lease(agent, group, TTL).await.unwrap().expect("group lease should be free")
}

pub fn offset(topic: &str, partition: i32, offset: i64, metadata: Option<&str>) -> CommittedOffset {
    CommittedOffset {
        topic: topic.into(),
        partition,
        offset,
        leader_epoch: -1,
        metadata: metadata.map(Into::into),
        commit_timestamp_ms: START_MS,
    }
}

pub fn member(id: &str, instance: Option<&str>) -> GroupMember {
    GroupMember {
        member_id: id.into(),
        group_instance_id: instance.map(Into::into),
        client_id: format!("client-{id}"),
        client_host: "/10.0.0.7".into(),
        session_timeout_ms: 45_000,
        rebalance_timeout_ms: 300_000,
        protocols: vec![("cooperative-sticky".into(), vec![0, 3, 0, 0, 0, 1, b't']), ("range".into(), vec![])],
        assignment: vec![0, 3, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0],
    }
}

pub fn group(id: &str, generation: i32, members: Vec<GroupMember>) -> GroupState {
    GroupState {
        group_id: id.into(),
        protocol_type: "consumer".into(),
        protocol: Some("cooperative-sticky".into()),
        generation,
        leader: members.first().map(|m| m.member_id.clone()),
        members,
    }
}

fn assert_fenced<T: std::fmt::Debug>(result: streamhouse_metadata::Result<T>, what: &str) {
    let err = result.expect_err(what);
    assert_eq!(err.kind(), MetadataErrorKind::Fenced, "{what}: {err}");
}

pub async fn group_lease_bumps_epoch_and_expires(store: &dyn MetadataStore, clock: &ManualClock) {
    assert_eq!(store.group_coordinator("g").await.unwrap(), None);
    assert_eq!(acquire_group(store, 1, "g").await, 1);
    assert_eq!(store.group_coordinator("g").await.unwrap(), Some(1));
    assert_eq!(store.acquire_group_lease(2, "g", TTL).await.unwrap(), None, "a live lease excludes others");
    assert_eq!(acquire_group(store, 1, "g").await, 2, "re-acquiring one's own lease starts a new epoch");
    assert_eq!(acquire_group(store, 2, "other").await, 1, "groups are independent");

    clock.advance(TTL - Duration::from_millis(1));
    assert_eq!(store.acquire_group_lease(2, "g", TTL).await.unwrap(), None);
    assert_eq!(store.group_coordinator("g").await.unwrap(), Some(1));
    clock.advance(Duration::from_millis(1));
    assert_eq!(store.group_coordinator("g").await.unwrap(), None, "an expired lease has no coordinator");
    assert_eq!(acquire_group(store, 2, "g").await, 3);
    assert_eq!(store.group_coordinator("g").await.unwrap(), Some(2));
    assert_eq!(store.acquire_group_lease(1, "g", TTL).await.unwrap(), None);
}

pub async fn concurrent_group_acquire_has_one_winner(store: &dyn MetadataStore, _clock: &ManualClock) {
    // Twice: racing on a group nobody ever held (INSERT) and on an existing, released one (UPDATE).
    for expected_epoch in [1, 2] {
        let attempts = (1..=6).map(|agent| store.acquire_group_lease(agent, "race", TTL));
        let winners: Vec<_> = futures_join_all(attempts).await.into_iter().filter_map(Result::unwrap).collect();
        assert_eq!(winners, [expected_epoch]);
        let holder = store.group_coordinator("race").await.unwrap().unwrap();
        store.release_leases(holder).await.unwrap();
    }
}

pub async fn fenced_group_writes_after_takeover(store: &dyn MetadataStore, clock: &ManualClock) {
    let e1 = acquire_group(store, 1, "g").await;
    let committed = vec![offset("t", 0, 10, None)];
    store.commit_offsets(1, e1, "g", &committed).await.unwrap();
    store.save_group(1, e1, &group("g", 1, vec![member("m1", None)])).await.unwrap();

    // Agent 1 stops renewing; its lease lapses: even before anyone takes over, it is fenced.
    clock.advance(TTL);
    assert_fenced(store.commit_offsets(1, e1, "g", &[offset("t", 0, 11, None)]).await, "expired lease");
    let e2 = acquire_group(store, 2, "g").await;
    assert_eq!(e2, e1 + 1);
    let stale = [offset("t", 0, 99, Some("stale")), offset("t", 1, 5, None)];
    assert_fenced(store.commit_offsets(1, e1, "g", &stale).await, "old agent");
    assert_fenced(store.commit_offsets(1, e2, "g", &stale).await, "new epoch, wrong agent");
    assert_fenced(store.commit_offsets(2, e1, "g", &stale).await, "right agent, old epoch");
    assert_fenced(store.save_group(1, e1, &group("g", 2, vec![])).await, "save by old agent");
    assert_fenced(store.delete_group(1, e1, "g").await, "delete by old agent");
    assert_fenced(store.delete_offsets(1, e1, "g", &[("t".into(), 0)]).await, "delete offsets by old agent");
    assert_fenced(store.commit_offsets(1, 1, "never-held", &stale).await, "a group nobody holds");
    // Nothing the fenced calls tried is visible.
    assert_eq!(store.fetch_offsets("g").await.unwrap(), committed);
    assert_eq!(store.fetch_offsets("never-held").await.unwrap(), []);
    let state = store.load_group("g").await.unwrap().unwrap();
    assert_eq!((state.generation, state.members.len()), (1, 1));

    // The new coordinator writes; once it releases, it is fenced too.
    let newer = [offset("t", 0, 20, None)];
    store.commit_offsets(2, e2, "g", &newer).await.unwrap();
    assert_eq!(store.fetch_offsets("g").await.unwrap(), newer);
    store.release_leases(2).await.unwrap();
    assert_fenced(store.commit_offsets(2, e2, "g", &[offset("t", 0, 30, None)]).await, "after release");
    assert_eq!(store.fetch_offsets("g").await.unwrap(), newer);
}

pub async fn offsets_round_trip(store: &dyn MetadataStore, _clock: &ManualClock) {
    let epoch = acquire_group(store, 1, "g").await;
    assert_eq!(store.fetch_offsets("g").await.unwrap(), []);
    store.commit_offsets(1, epoch, "g", &[]).await.unwrap();

    let mut b0 = offset("b", 0, 0, Some(""));
    b0.leader_epoch = 7;
    let mut a2 = offset("a", 2, i64::MAX, Some("checkpoint ✓"));
    a2.commit_timestamp_ms = START_MS + 5;
    let a10 = offset("a", 10, 42, None);
    store.commit_offsets(1, epoch, "g", &[b0.clone(), a10.clone(), a2.clone()]).await.unwrap();
    assert_eq!(
        store.fetch_offsets("g").await.unwrap(),
        [a2.clone(), a10.clone(), b0.clone()],
        "ordered by topic, then partition; metadata None, empty and Some kept apart"
    );

    // Upsert: a later commit replaces the row whole (including metadata back to None).
    let mut b0_again = offset("b", 0, 100, None);
    b0_again.commit_timestamp_ms = START_MS + 9;
    store.commit_offsets(1, epoch, "g", &[b0_again.clone()]).await.unwrap();
    assert_eq!(store.fetch_offsets("g").await.unwrap(), [a2.clone(), a10.clone(), b0_again.clone()]);

    // Another group's offsets are its own.
    let other = acquire_group(store, 2, "h").await;
    store.commit_offsets(2, other, "h", &[offset("a", 2, 1, None)]).await.unwrap();
    assert_eq!(store.fetch_offsets("g").await.unwrap().len(), 3);

    store.delete_offsets(1, epoch, "g", &[("a".into(), 2), ("b".into(), 0), ("zz".into(), 3)]).await.unwrap();
    assert_eq!(store.fetch_offsets("g").await.unwrap(), [a10]);
    assert_eq!(store.fetch_offsets("h").await.unwrap(), [offset("a", 2, 1, None)]);
    assert_eq!(store.fetch_offsets("unknown").await.unwrap(), []);
}

pub async fn save_and_load_group(store: &dyn MetadataStore, _clock: &ManualClock) {
    assert_eq!(store.load_group("g").await.unwrap(), None);
    let epoch = acquire_group(store, 1, "g").await;
    // Saved order is kept even though it is not member id order.
    let mut second = member("m-a", None);
    second.protocols = vec![];
    second.assignment = vec![];
    let state = group("g", 3, vec![member("m-b", Some("instance-1")), second, member("m-c", Some(""))]);
    store.save_group(1, epoch, &state).await.unwrap();
    assert_eq!(store.load_group("g").await.unwrap(), Some(state.clone()));

    // A save replaces the state whole: members not in it are gone.
    let next =
        GroupState { protocol: None, leader: None, generation: 4, members: vec![member("m-c", Some("instance-3"))], ..state.clone() };
    store.save_group(1, epoch, &next).await.unwrap();
    assert_eq!(store.load_group("g").await.unwrap(), Some(next));

    // An empty group (every member left) keeps its generation and protocol type.
    let empty = GroupState { generation: 5, members: vec![], ..state };
    store.save_group(1, epoch, &empty).await.unwrap();
    assert_eq!(store.load_group("g").await.unwrap(), Some(empty));
    assert_eq!(store.load_group("G").await.unwrap(), None, "ids are case-sensitive");
}

pub async fn list_groups_includes_offset_only_groups(store: &dyn MetadataStore, _clock: &ManualClock) {
    assert_eq!(store.list_groups().await.unwrap(), []);
    let e = acquire_group(store, 1, "b-stateful").await;
    let stateful = group("b-stateful", 2, vec![member("m1", None), member("m0", None)]);
    store.save_group(1, e, &stateful).await.unwrap();
    store.commit_offsets(1, e, "b-stateful", &[offset("t", 0, 1, None)]).await.unwrap();
    let e = acquire_group(store, 1, "a-offsets-only").await;
    store.commit_offsets(1, e, "a-offsets-only", &[offset("t", 0, 1, None), offset("t", 1, 1, None)]).await.unwrap();
    // A lease alone is not a group.
    acquire_group(store, 1, "c-lease-only").await;

    let offsets_only = GroupState { group_id: "a-offsets-only".into(), ..GroupState::default() };
    assert_eq!(store.list_groups().await.unwrap(), [offsets_only, stateful]);
}

pub async fn delete_group_removes_state_and_offsets(store: &dyn MetadataStore, _clock: &ManualClock) {
    let e = acquire_group(store, 1, "g").await;
    assert_eq!(store.delete_group(1, e, "g").await.unwrap_err().kind(), MetadataErrorKind::NotFound, "a lease alone is not a group");
    store.save_group(1, e, &group("g", 1, vec![member("m", None)])).await.unwrap();
    store.commit_offsets(1, e, "g", &[offset("t", 0, 5, None)]).await.unwrap();
    let other = acquire_group(store, 1, "keep").await;
    store.commit_offsets(1, other, "keep", &[offset("t", 0, 5, None)]).await.unwrap();

    store.delete_group(1, e, "g").await.unwrap();
    assert_eq!(store.load_group("g").await.unwrap(), None);
    assert_eq!(store.fetch_offsets("g").await.unwrap(), []);
    assert_eq!(store.list_groups().await.unwrap().into_iter().map(|g| g.group_id).collect::<Vec<_>>(), ["keep"]);
    assert_eq!(store.delete_group(1, e, "g").await.unwrap_err().kind(), MetadataErrorKind::NotFound);

    // Offsets alone are enough for a group to exist, and to be deleted.
    store.delete_group(1, other, "keep").await.unwrap();
    assert_eq!(store.list_groups().await.unwrap(), []);

    // The lease survives deletion, so epochs keep counting up and old epochs stay fenced.
    assert_eq!(acquire_group(store, 1, "g").await, e + 1);
    assert_fenced(store.commit_offsets(1, e, "g", &[offset("t", 0, 6, None)]).await, "epoch from before the deletion");
}

pub async fn expire_offsets_only_in_memberless_groups(store: &dyn MetadataStore, _clock: &ManualClock) {
    let at = |topic: &str, partition: i32, ts: i64| CommittedOffset { commit_timestamp_ms: ts, ..offset(topic, partition, 1, None) };
    let e = acquire_group(store, 1, "empty").await;
    store.save_group(1, e, &group("empty", 3, vec![])).await.unwrap();
    store.commit_offsets(1, e, "empty", &[at("t", 0, 100), at("t", 1, 200), at("t", 2, 300)]).await.unwrap();
    let e = acquire_group(store, 1, "stateless").await;
    store.commit_offsets(1, e, "stateless", &[at("t", 0, 100)]).await.unwrap();
    let e = acquire_group(store, 1, "active").await;
    store.save_group(1, e, &group("active", 1, vec![member("m", None)])).await.unwrap();
    store.commit_offsets(1, e, "active", &[at("t", 0, 100)]).await.unwrap();

    assert_eq!(store.expire_offsets(100).await.unwrap(), 0, "strictly before the cutoff");
    assert_eq!(store.expire_offsets(201).await.unwrap(), 3);
    assert_eq!(store.fetch_offsets("empty").await.unwrap(), [at("t", 2, 300)]);
    assert_eq!(store.fetch_offsets("stateless").await.unwrap(), []);
    assert_eq!(store.fetch_offsets("active").await.unwrap(), [at("t", 0, 100)], "a group with members keeps its offsets");
    assert_eq!(store.expire_offsets(201).await.unwrap(), 0);
    // Expiring offsets leaves group state alone.
    assert_eq!(store.load_group("empty").await.unwrap().unwrap().generation, 3);
}

pub async fn renew_and_release_cover_group_leases(store: &dyn MetadataStore, clock: &ManualClock) {
    let topic = create(store, "t", 1).await;
    store.acquire_lease(1, pid(&topic, 0), TTL).await.unwrap().unwrap();
    let g = acquire_group(store, 1, "g").await;
    acquire_group(store, 1, "h").await;
    acquire_group(store, 2, "other").await;
    let mut renewed = store.renew_leases(1, TTL).await.unwrap();
    renewed.groups.sort();
    assert_eq!((renewed.partitions, renewed.groups), (1, vec!["g".to_string(), "h".to_string()]), "1 partition + 2 groups");

    clock.advance(TTL * 8 / 10);
    assert_eq!(store.renew_leases(1, TTL).await.unwrap().count(), 3);
    clock.advance(TTL * 8 / 10);
    assert_eq!(store.group_coordinator("g").await.unwrap(), Some(1));
    assert_eq!(store.group_coordinator("other").await.unwrap(), None, "agent 2 did not renew");
    store.commit_offsets(1, g, "g", &[offset("t", 0, 1, None)]).await.unwrap();

    store.release_leases(1).await.unwrap();
    assert_eq!(store.group_coordinator("g").await.unwrap(), None);
    assert_eq!(store.partition_state(pid(&topic, 0)).await.unwrap().unwrap().leader, None);
    assert_fenced(store.commit_offsets(1, g, "g", &[offset("t", 0, 2, None)]).await, "after release");
    assert_eq!(acquire_group(store, 2, "g").await, g + 1, "a released lease is free at once and keeps counting epochs");
    assert_eq!(store.renew_leases(1, TTL).await.unwrap().count(), 0);
    assert_eq!(store.renew_leases(2, TTL).await.unwrap().count(), 2, "'other' lapsed but nobody took it");
}
