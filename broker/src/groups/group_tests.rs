use super::*;

fn join_req(member_id: &str, instance: Option<&str>, meta: &'static [u8]) -> Join {
    Join {
        member_id: member_id.to_string(),
        instance_id: instance.map(str::to_string),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(meta))],
        require_known_member_id: false,
    }
}

fn now_joined(r: Reply<Joined>) -> Joined {
    match r {
        Reply::Now(j) => j,
        Reply::Later(mut rx) => rx.try_recv().unwrap_or_else(|_| panic!("join still waiting")),
    }
}

fn later<T>(r: Reply<T>) -> oneshot::Receiver<T> {
    match r {
        Reply::Later(rx) => rx,
        Reply::Now(_) => panic!("expected to wait"),
    }
}

/// Two members joined and synced: returns (group, leader id, follower id).
fn stable_pair(t: Instant) -> (Group, String, String) {
    let mut g = Group::new("g", Duration::from_millis(10));
    let mut ids = ["a", "b"].into_iter();
    let mut next = || ids.next().unwrap_or("z").to_string();
    let mut a = later(g.join(join_req("", None, b"m1"), &mut next, t));
    let b = g.join(join_req("", None, b"m2"), &mut next, t);
    g.tick(t + Duration::from_millis(20));
    let jb = now_joined(b);
    let ja = a.try_recv().expect("first member answered once the second joined");
    assert_eq!(ja.generation, 1);
    assert_eq!(ja.leader, "a");
    assert_eq!(ja.members.len(), 2, "the leader sees every member");
    assert!(jb.members.is_empty(), "followers do not");
    let mut follower = later(g.sync("b", None, 1, (None, None), vec![], t));
    let leader =
        later(g.sync("a", None, 1, (None, None), vec![("a".into(), Bytes::from_static(b"A")), ("b".into(), Bytes::from_static(b"B"))], t));
    assert_eq!(g.state, State::Stable);
    assert_eq!(follower.try_recv().map(|s| s.assignment).ok(), Some(Bytes::from_static(b"B")));
    drop(leader);
    (g, "a".into(), "b".into())
}

#[test]
fn join_sync_reach_stable_with_assignments() {
    let (g, _, _) = stable_pair(Instant::now());
    assert_eq!(g.generation, 1);
    assert!(g.dirty);
}

#[test]
fn member_id_required_first() {
    let mut g = Group::new("g", Duration::ZERO);
    let mut req = join_req("", None, b"m");
    req.require_known_member_id = true;
    let first = now_joined(g.join(req, || "given".into(), Instant::now()));
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    assert_eq!(first.member_id, "given");
    let second = now_joined(g.join(join_req("given", None, b"m"), || unreachable!(), Instant::now()));
    assert_eq!((second.error, second.generation), (None, 1));
    let unknown = now_joined(g.join(join_req("never-given", None, b"m"), || unreachable!(), Instant::now()));
    assert_eq!(unknown.error, Some(ResponseError::UnknownMemberId));
}

#[test]
fn heartbeats_report_rebalances_and_generations() {
    let t = Instant::now();
    let (mut g, a, b) = stable_pair(t);
    assert_eq!(g.heartbeat(&b, None, 1, t), Ok(()));
    assert_eq!(g.heartbeat(&b, None, 0, t), Err(ResponseError::IllegalGeneration));
    assert_eq!(g.heartbeat("nobody", None, 1, t), Err(ResponseError::UnknownMemberId));
    // The leader rejoining starts a rebalance the follower learns of by heartbeat.
    let _wait = later(g.join(join_req(&a, None, b"m1"), || unreachable!(), t));
    assert_eq!(g.heartbeat(&b, None, 1, t), Err(ResponseError::RebalanceInProgress));
    assert_eq!(g.check_commit(&b, None, 1), Ok(()), "members commit their progress before rejoining");
    assert_eq!(g.check_commit(&b, None, 0), Err(ResponseError::IllegalGeneration));
}

#[test]
fn expired_sessions_are_expelled() {
    let t = Instant::now();
    let (mut g, a, b) = stable_pair(t);
    g.heartbeat(&a, None, 1, t + Duration::from_secs(8)).ok();
    g.tick(t + Duration::from_secs(11));
    assert!(!g.members.contains_key(&b), "b missed its 10 s session");
    assert_eq!(g.state, State::PreparingRebalance);
    let joined = now_joined(g.join(join_req(&a, None, b"m1"), || unreachable!(), t + Duration::from_secs(12)));
    assert_eq!((joined.generation, joined.members.len()), (2, 1));
}

#[test]
fn static_member_restart_keeps_its_assignment_without_rebalance() {
    let t = Instant::now();
    let mut g = Group::new("g", Duration::from_millis(10));
    let mut ids = ["s1", "s2", "s1-again"].into_iter();
    let mut next = || ids.next().unwrap_or("z").to_string();
    let _a = later(g.join(join_req("", Some("i1"), b"m"), &mut next, t));
    let second = g.join(join_req("", Some("i2"), b"m"), &mut next, t);
    g.tick(t + Duration::from_millis(20));
    now_joined(second);
    let _ = g.sync("s2", Some("i2"), 1, (None, None), vec![], t);
    let _ = g.sync(
        "s1",
        Some("i1"),
        1,
        (None, None),
        vec![("s1".into(), Bytes::from_static(b"A")), ("s2".into(), Bytes::from_static(b"B"))],
        t,
    );
    assert_eq!(g.state, State::Stable);
    let back = now_joined(g.join(join_req("", Some("i2"), b"m"), &mut next, t));
    assert_eq!((back.error, back.generation, back.member_id.as_str()), (None, 1, "s1-again"));
    assert_eq!(g.state, State::Stable, "no rebalance");
    assert_eq!(g.heartbeat("s2", Some("i2"), 1, t), Err(ResponseError::UnknownMemberId), "old id is gone");
    match g.sync("s1-again", Some("i2"), 1, (None, None), vec![], t) {
        Reply::Now(s) => assert_eq!(s.assignment, Bytes::from_static(b"B")),
        Reply::Later(_) => panic!("stable group answers at once"),
    }
    assert_eq!(g.heartbeat("s1", Some("i2"), 1, t), Err(ResponseError::FencedInstanceId));
}

#[test]
fn last_member_leaving_empties_the_group() {
    let t = Instant::now();
    let (mut g, a, b) = stable_pair(t);
    assert_eq!(g.leave(&[(b.clone(), None)], t), vec![Ok(())]);
    assert_eq!(g.state, State::PreparingRebalance);
    assert_eq!(g.leave(&[(a.clone(), None), ("ghost".into(), None)], t), vec![Ok(()), Err(ResponseError::UnknownMemberId)]);
    assert_eq!(g.state, State::Empty);
    assert_eq!(g.check_commit("", None, -1), Ok(()), "assign()-style commits are fine once empty");
}

#[test]
fn a_dead_member_does_not_hold_a_rebalance_past_its_session() {
    let t = Instant::now();
    let (mut g, a, b) = stable_pair(t);
    // a rejoins (starting a rebalance, 10 s rebalance timeout); b is dead and never does.
    let mut rx = later(g.join(join_req(&a, None, b"m1"), || unreachable!(), t));
    g.tick(t + Duration::from_secs(5));
    assert!(rx.try_recv().is_err(), "b's session (10 s) has not run out");
    g.tick(t + Duration::from_millis(10_500));
    assert!(!g.members.contains_key(&b));
    let joined = rx.try_recv().expect("the join completes when b's session expires");
    assert_eq!((joined.generation, joined.members.len()), (2, 1));
}

#[test]
fn initial_delay_holds_a_new_group() {
    let t = Instant::now();
    let mut g = Group::new("g", Duration::from_millis(100));
    let mut rx = later(g.join(join_req("", None, b"m"), || "a".into(), t));
    assert!(rx.try_recv().is_err(), "held by the initial delay");
    g.tick(t + Duration::from_millis(150));
    assert_eq!(rx.try_recv().map(|j| j.generation).ok(), Some(1));
}

#[test]
fn inconsistent_protocols_are_refused() {
    let t = Instant::now();
    let (mut g, _, _) = stable_pair(t);
    let mut other = join_req("", None, b"x");
    other.protocols = vec![("roundrobin".into(), Bytes::new())];
    let j = now_joined(g.join(other, || "c".into(), t));
    assert_eq!(j.error, Some(ResponseError::InconsistentGroupProtocol));
}

#[test]
fn restore_resumes_stable() {
    let t = Instant::now();
    let (g, _, b) = stable_pair(t);
    let mut again = Group::restore(g.saved(), Duration::ZERO, t);
    assert_eq!(again.state, State::Stable);
    assert_eq!(again.heartbeat(&b, None, 1, t), Ok(()));
}

#[test]
fn static_leader_restart_skips_assignment_without_rebalance() {
    let t = Instant::now();
    let mut g = Group::new("g", Duration::from_millis(10));
    let mut ids = ["s1", "s2", "s1-again"].into_iter();
    let mut next = || ids.next().unwrap_or("z").to_string();
    let _a = later(g.join(join_req("", Some("i1"), b"m"), &mut next, t));
    let second = g.join(join_req("", Some("i2"), b"m"), &mut next, t);
    g.tick(t + Duration::from_millis(20));
    now_joined(second);
    let _ = g.sync("s2", Some("i2"), 1, (None, None), vec![], t);
    let _ = g.sync(
        "s1",
        Some("i1"),
        1,
        (None, None),
        vec![("s1".into(), Bytes::from_static(b"A")), ("s2".into(), Bytes::from_static(b"B"))],
        t,
    );
    // The leader comes back with new metadata for the same protocol.
    let back = now_joined(g.join(join_req("", Some("i1"), b"owned-partitions-changed"), &mut next, t));
    assert_eq!((back.error, back.generation, back.leader.as_str()), (None, 1, "s1-again"));
    assert!(back.skip_assignment, "the leader keeps the current assignment");
    assert_eq!(g.state, State::Stable, "no rebalance");
}

#[test]
fn sync_checks_member_before_protocol() {
    let t = Instant::now();
    let (mut g, _, b) = stable_pair(t);
    match g.sync("stranger", None, 1, (Some("consumer"), Some("other")), vec![], t) {
        Reply::Now(s) => assert_eq!(s.error, Some(ResponseError::UnknownMemberId)),
        Reply::Later(_) => panic!("answered at once"),
    }
    match g.sync(&b, None, 1, (Some("consumer"), Some("other")), vec![], t) {
        Reply::Now(s) => assert_eq!(s.error, Some(ResponseError::InconsistentGroupProtocol)),
        Reply::Later(_) => panic!("answered at once"),
    }
}

#[test]
fn abandoning_answers_parked_joins() {
    let t = Instant::now();
    let mut g = Group::new("g", Duration::from_secs(10));
    let mut rx = later(g.join(join_req("", None, b"m"), || "a".into(), t));
    g.abandon();
    assert_eq!(rx.try_recv().ok().and_then(|j| j.error), Some(ResponseError::NotCoordinator));
}
