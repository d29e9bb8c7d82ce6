//! One consumer group's state machine (Kafka's classic group protocol), protocol-type agnostic:
//! `consumer` groups and Kafka Connect's `connect` groups go through the same states.
//!
//! Empty -> PreparingRebalance (members join; waits for every known member, the rebalance timeout,
//! and for a new group a short initial delay) -> CompletingRebalance (the leader's SyncGroup carries
//! the assignment) -> Stable. A member that misses its session timeout, leaves, or joins with new
//! metadata sends the group back to PreparingRebalance.
//!
//! Everything here is synchronous and runs under the group's `std::sync::Mutex`; requests that must
//! wait for the rebalance get a oneshot receiver and await it after the lock is dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use streamhouse_metadata::{GroupMember, GroupState};
use tokio::sync::oneshot;

/// Kafka's group.min.session.timeout.ms and group.max.session.timeout.ms defaults.
pub const MIN_SESSION_TIMEOUT_MS: i32 = 6_000;
pub const MAX_SESSION_TIMEOUT_MS: i32 = 1_800_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// What a JoinGroup answers.
#[derive(Debug, Clone, Default)]
pub struct Joined {
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, instance id, metadata): for the leader only.
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// A static leader rejoining a stable group keeps the current assignment (KIP-814).
    pub skip_assignment: bool,
}

impl Joined {
    fn error(e: ResponseError, member_id: &str) -> Self {
        Joined { error: Some(e), generation: -1, member_id: member_id.to_string(), ..Default::default() }
    }
}

/// What a SyncGroup answers.
#[derive(Debug, Clone, Default)]
pub struct Synced {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl Synced {
    fn error(e: ResponseError) -> Self {
        Synced { error: Some(e), ..Default::default() }
    }
}

/// An answer now, or one that comes when the rebalance moves on.
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat: Instant,
    /// Join order: the earliest member still present leads.
    joined_seq: u64,
    join_waiter: Option<oneshot::Sender<Joined>>,
    sync_waiter: Option<oneshot::Sender<Synced>>,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

/// A JoinGroup request, decoded into what the state machine needs.
pub struct Join {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+ clients expect MEMBER_ID_REQUIRED before their first real join (KIP-394).
    pub require_known_member_id: bool,
}

#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: State,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet used, with when they expire.
    pending: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    join_not_before: Option<Instant>,
    initial_delay: Duration,
    next_seq: u64,
    /// Set when durable state changed and should be saved.
    pub dirty: bool,
}

impl Group {
    pub fn new(id: &str, initial_delay: Duration) -> Group {
        Group {
            id: id.to_string(),
            state: State::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            join_not_before: None,
            initial_delay,
            next_seq: 0,
            dirty: false,
        }
    }

    /// Rebuilds a group from its saved state; members get a fresh session from `now`, so a
    /// coordinator restart or failover costs no rebalance.
    pub fn restore(saved: GroupState, initial_delay: Duration, now: Instant) -> Group {
        let mut g = Group::new(&saved.group_id, initial_delay);
        g.protocol_type = (!saved.protocol_type.is_empty()).then_some(saved.protocol_type);
        g.protocol = saved.protocol;
        g.generation = saved.generation;
        g.leader = saved.leader;
        for m in saved.members {
            let seq = g.next_seq();
            g.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id,
                    instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: Duration::from_millis(u64::try_from(m.session_timeout_ms).unwrap_or(0)),
                    rebalance_timeout: Duration::from_millis(u64::try_from(m.rebalance_timeout_ms).unwrap_or(0)),
                    protocols: m.protocols.into_iter().map(|(n, v)| (n, Bytes::from(v))).collect(),
                    assignment: Bytes::from(m.assignment),
                    last_heartbeat: now,
                    joined_seq: seq,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        g.state = if g.members.is_empty() { State::Empty } else { State::Stable };
        g
    }

    pub fn saved(&self) -> GroupState {
        GroupState {
            group_id: self.id.clone(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: self.protocol.clone(),
            generation: self.generation,
            leader: self.leader.clone(),
            members: self
                .members
                .values()
                .map(|m| GroupMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: i32::try_from(m.session_timeout.as_millis()).unwrap_or(i32::MAX),
                    rebalance_timeout_ms: i32::try_from(m.rebalance_timeout.as_millis()).unwrap_or(i32::MAX),
                    protocols: m.protocols.iter().map(|(n, v)| (n.clone(), v.to_vec())).collect(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn member_by_instance(&self, instance: &str) -> Option<&str> {
        self.members.values().find(|m| m.instance_id.as_deref() == Some(instance)).map(|m| m.id.as_str())
    }

    /// Fails with FENCED_INSTANCE_ID when `instance` now belongs to another member id.
    fn check_instance(&self, member_id: &str, instance: Option<&str>) -> Result<(), ResponseError> {
        match instance.and_then(|i| self.member_by_instance(i)) {
            Some(owner) if owner != member_id => Err(ResponseError::FencedInstanceId),
            _ => Ok(()),
        }
    }

    pub fn join(&mut self, req: Join, new_member_id: impl FnOnce() -> String, now: Instant) -> Reply<Joined> {
        if req.session_timeout_ms < MIN_SESSION_TIMEOUT_MS || req.session_timeout_ms > MAX_SESSION_TIMEOUT_MS {
            return Reply::Now(Joined::error(ResponseError::InvalidSessionTimeout, &req.member_id));
        }
        if req.protocols.is_empty() || req.protocol_type.is_empty() {
            return Reply::Now(Joined::error(ResponseError::InconsistentGroupProtocol, &req.member_id));
        }
        if !self.members.is_empty() {
            let type_differs = self.protocol_type.as_deref().is_some_and(|t| t != req.protocol_type);
            let others = self.members.values().filter(|m| m.id != req.member_id);
            let mut common: HashSet<&str> = req.protocols.iter().map(|(n, _)| n.as_str()).collect();
            for m in others {
                let theirs: HashSet<&str> = m.protocols.iter().map(|(n, _)| n.as_str()).collect();
                common.retain(|n| theirs.contains(n));
            }
            if type_differs || common.is_empty() {
                return Reply::Now(Joined::error(ResponseError::InconsistentGroupProtocol, &req.member_id));
            }
        }
        let member_id = if req.member_id.is_empty() {
            if let Some(instance) = req.instance_id.as_deref()
                && let Some(old) = self.member_by_instance(instance).map(str::to_string)
            {
                return self.rejoin_static(req, &old, new_member_id(), now);
            }
            let id = new_member_id();
            if req.instance_id.is_none() && req.require_known_member_id {
                self.pending.insert(id.clone(), now + Duration::from_millis(u64::try_from(req.session_timeout_ms).unwrap_or(0)));
                return Reply::Now(Joined::error(ResponseError::MemberIdRequired, &id));
            }
            id
        } else {
            let known = self.members.contains_key(&req.member_id) || self.pending.remove(&req.member_id).is_some();
            if !known {
                return Reply::Now(Joined::error(ResponseError::UnknownMemberId, &req.member_id));
            }
            if let Err(e) = self.check_instance(&req.member_id, req.instance_id.as_deref()) {
                return Reply::Now(Joined::error(e, &req.member_id));
            }
            req.member_id.clone()
        };
        let (tx, rx) = oneshot::channel();
        let changed = self.upsert_member(&member_id, req, now, Some(tx));
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            State::Stable | State::CompletingRebalance if !changed && !is_leader => {
                // Same metadata as this generation: hand back the current generation, no rebalance.
                let joined = self.joined_for(&member_id);
                if let Some(m) = self.members.get_mut(&member_id) {
                    m.join_waiter = None;
                }
                return Reply::Now(joined);
            }
            State::PreparingRebalance => {}
            _ => self.prepare_rebalance(now),
        }
        self.maybe_complete_join(now);
        Reply::Later(rx)
    }

    /// A static member restarting (empty member id, known instance id): it takes the old member's
    /// place and assignment; the old member id is fenced.
    fn rejoin_static(&mut self, req: Join, old: &str, new_id: String, now: Instant) -> Reply<Joined> {
        let Some(mut member) = self.members.remove(old) else {
            return Reply::Now(Joined::error(ResponseError::UnknownMemberId, &req.member_id));
        };
        if let Some(w) = member.join_waiter.take() {
            let _ = w.send(Joined::error(ResponseError::FencedInstanceId, old));
        }
        if let Some(w) = member.sync_waiter.take() {
            let _ = w.send(Synced::error(ResponseError::FencedInstanceId));
        }
        member.id = new_id.clone();
        // Only a change of the group's protocol matters, not new metadata (Kafka's selectProtocol check).
        let unchanged = self.protocol.as_ref().is_some_and(|p| req.protocols.iter().any(|(n, _)| n == p));
        self.members.insert(new_id.clone(), member);
        if self.leader.as_deref() == Some(old) {
            self.leader = Some(new_id.clone());
        }
        self.dirty = true;
        let (tx, rx) = oneshot::channel();
        self.upsert_member(&new_id, req, now, Some(tx));
        if self.state == State::Stable && unchanged {
            let mut joined = self.joined_for(&new_id);
            joined.skip_assignment = self.leader.as_deref() == Some(new_id.as_str());
            if let Some(m) = self.members.get_mut(&new_id) {
                m.join_waiter = None;
            }
            return Reply::Now(joined);
        }
        if self.state != State::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.maybe_complete_join(now);
        Reply::Later(rx)
    }

    /// Adds or updates a member from a join; true when its protocols changed.
    fn upsert_member(&mut self, id: &str, req: Join, now: Instant, waiter: Option<oneshot::Sender<Joined>>) -> bool {
        let seq = self.next_seq();
        let member = self.members.entry(id.to_string()).or_insert_with(|| Member {
            id: id.to_string(),
            instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            session_timeout: Duration::ZERO,
            rebalance_timeout: Duration::ZERO,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            last_heartbeat: now,
            joined_seq: seq,
            join_waiter: None,
            sync_waiter: None,
        });
        let changed = member.protocols != req.protocols;
        member.instance_id = req.instance_id;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.session_timeout = Duration::from_millis(u64::try_from(req.session_timeout_ms).unwrap_or(0));
        let rebalance_ms = if req.rebalance_timeout_ms > 0 { req.rebalance_timeout_ms } else { req.session_timeout_ms };
        member.rebalance_timeout = Duration::from_millis(u64::try_from(rebalance_ms).unwrap_or(0));
        member.protocols = req.protocols;
        member.last_heartbeat = now;
        if let Some(old) = std::mem::replace(&mut member.join_waiter, waiter) {
            let _ = old.send(Joined::error(ResponseError::RebalanceInProgress, id));
        }
        self.protocol_type = Some(req.protocol_type);
        changed
    }

    fn joined_for(&self, member_id: &str) -> Joined {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members.values().map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata_for(&protocol))).collect()
        } else {
            Vec::new()
        };
        Joined {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == State::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(Synced::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        let timeout = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
        self.join_not_before = (self.state == State::Empty).then(|| now + self.initial_delay);
        self.rebalance_deadline = Some(now + timeout);
        self.state = State::PreparingRebalance;
    }

    /// Completes the join phase once every member has rejoined (after the initial delay of a new
    /// group), or once the rebalance timeout drops those that did not.
    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != State::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some());
        let delayed = self.join_not_before.is_some_and(|t| now < t);
        let timed_out = self.rebalance_deadline.is_some_and(|t| now >= t);
        if !(timed_out || (all_joined && !delayed)) {
            return;
        }
        self.members.retain(|_, m| m.join_waiter.is_some());
        self.generation += 1;
        self.dirty = true;
        self.rebalance_deadline = None;
        self.join_not_before = None;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.leader = None;
            return;
        }
        self.protocol = self.select_protocol();
        if !self.leader.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader = self.members.values().min_by_key(|m| m.joined_seq).map(|m| m.id.clone());
        }
        self.state = State::CompletingRebalance;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let joined = self.joined_for(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.assignment = Bytes::new();
                m.last_heartbeat = now;
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(joined);
                }
            }
        }
    }

    /// The protocol every member supports with the most first-choice votes (Kafka's rule).
    fn select_protocol(&self) -> Option<String> {
        let mut common: Option<Vec<&str>> = None;
        for m in self.members.values() {
            let names: Vec<&str> = m.protocols.iter().map(|(n, _)| n.as_str()).collect();
            common = Some(match common {
                None => names,
                Some(c) => c.into_iter().filter(|n| names.contains(n)).collect(),
            });
        }
        let common = common?;
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| common.contains(&n.as_str())) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        votes.into_iter().max_by_key(|(_, v)| *v).map(|(n, _)| n.to_string())
    }

    /// `protocol` is the (type, name) a v5+ client states, checked after member and generation as
    /// Kafka's validateSyncGroup does.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<Synced> {
        if !self.members.contains_key(member_id) {
            return Reply::Now(Synced::error(ResponseError::UnknownMemberId));
        }
        if let Err(e) = self.check_instance(member_id, instance) {
            return Reply::Now(Synced::error(e));
        }
        let wrong_type = protocol.0.is_some_and(|t| Some(t) != self.protocol_type.as_deref());
        let wrong_name = protocol.1.is_some_and(|n| Some(n) != self.protocol.as_deref());
        match self.state {
            State::Empty => Reply::Now(Synced::error(ResponseError::UnknownMemberId)),
            _ if generation != self.generation => Reply::Now(Synced::error(ResponseError::IllegalGeneration)),
            _ if wrong_type || wrong_name => Reply::Now(Synced::error(ResponseError::InconsistentGroupProtocol)),
            State::PreparingRebalance => Reply::Now(Synced::error(ResponseError::RebalanceInProgress)),
            State::Stable => Reply::Now(self.synced_for(member_id)),
            State::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.last_heartbeat = now;
                    m.sync_waiter = Some(tx);
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.state = State::Stable;
                    self.dirty = true;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let synced = self.synced_for(&id);
                        if let Some(w) = self.members.get_mut(&id).and_then(|m| m.sync_waiter.take()) {
                            let _ = w.send(synced);
                        }
                    }
                }
                Reply::Later(rx)
            }
        }
    }

    fn synced_for(&self, member_id: &str) -> Synced {
        Synced {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment: self.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default(),
        }
    }

    pub fn heartbeat(&mut self, member_id: &str, instance: Option<&str>, generation: i32, now: Instant) -> Result<(), ResponseError> {
        let Some(member) = self.members.get_mut(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        member.last_heartbeat = now;
        self.check_instance(member_id, instance)?;
        match self.state {
            State::Empty => Err(ResponseError::UnknownMemberId),
            State::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ if generation != self.generation => Err(ResponseError::IllegalGeneration),
            _ => Ok(()),
        }
    }

    /// Removes members; each gets its own outcome (LeaveGroup v3+ answers per member).
    pub fn leave(&mut self, leaving: &[(String, Option<String>)], now: Instant) -> Vec<Result<(), ResponseError>> {
        let mut outcomes = Vec::with_capacity(leaving.len());
        let mut removed = false;
        for (member_id, instance) in leaving {
            let id = match (member_id.is_empty(), instance.as_deref()) {
                (true, Some(i)) => self.member_by_instance(i).map(str::to_string),
                _ => Some(member_id.clone()),
            };
            let outcome = match id {
                Some(id) if self.members.contains_key(&id) => match self.check_instance(&id, instance.as_deref()) {
                    Ok(()) => {
                        self.remove_member(&id);
                        removed = true;
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                _ => Err(ResponseError::UnknownMemberId),
            };
            outcomes.push(outcome);
        }
        if removed {
            self.dirty = true;
            if self.state != State::PreparingRebalance {
                self.prepare_rebalance(now);
                self.join_not_before = None;
            }
            self.maybe_complete_join(now);
        }
        outcomes
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.remove(id) {
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(Joined::error(ResponseError::UnknownMemberId, id));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(Synced::error(ResponseError::UnknownMemberId));
            }
        }
    }

    /// Timers: expired sessions, the rebalance deadline, the initial delay, stale pending ids.
    /// A session expires in every state, but not while its member waits in a JoinGroup or
    /// SyncGroup (Kafka's shouldKeepAlive): a dead member must not hold a rebalance until the
    /// rebalance timeout.
    pub fn tick(&mut self, now: Instant) {
        self.pending.retain(|_, expires| *expires > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.sync_waiter.is_none())
            .filter(|m| now.duration_since(m.last_heartbeat) > m.session_timeout)
            .map(|m| m.id.clone())
            .collect();
        if !expired.is_empty() {
            tracing::info!(group = self.id, members = ?expired, "session timeout: removing members");
            for id in &expired {
                self.remove_member(id);
            }
            self.dirty = true;
            if self.state != State::PreparingRebalance {
                self.prepare_rebalance(now);
                self.join_not_before = None;
            }
        }
        self.maybe_complete_join(now);
    }

    /// Whether an offset commit from this member at this generation may be written now.
    pub fn check_commit(&self, member_id: &str, instance: Option<&str>, generation: i32) -> Result<(), ResponseError> {
        if generation < 0 && member_id.is_empty() {
            // A consumer using assign() commits outside any generation; fine while nobody is subscribed.
            return if self.members.is_empty() { Ok(()) } else { Err(ResponseError::UnknownMemberId) };
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        self.check_instance(member_id, instance)?;
        // A current member may commit while the group prepares a rebalance: that is when consumers
        // commit what they processed before rejoining (Kafka's validateOffsetCommit).
        match self.state {
            _ if generation != self.generation => Err(ResponseError::IllegalGeneration),
            State::CompletingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Whether the group is more than a name: members, a generation, or a protocol.
    pub fn exists(&self) -> bool {
        self.generation > 0 || !self.members.is_empty() || self.protocol_type.is_some()
    }

    /// Answers every parked JoinGroup and SyncGroup with NOT_COORDINATOR (this agent is giving the
    /// group up), so clients go to the next coordinator at once.
    pub fn abandon(&mut self) {
        for m in self.members.values_mut() {
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(Joined::error(ResponseError::NotCoordinator, &m.id));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(Synced::error(ResponseError::NotCoordinator));
            }
        }
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
