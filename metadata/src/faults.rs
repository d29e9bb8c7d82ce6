//! [`FaultyMetadata`]: injects failures, latency and hangs into another [`MetadataStore`], itself a
//! `MetadataStore` so it stacks under an agent like the real one. Tests use it to see what the
//! broker does when the store misbehaves: a database that goes away for a while, a commit whose
//! reply is lost after it went in, a renewal that hangs while the lease runs out.
//!
//! A fault is set per kind of operation ([`Op`]) at run time, so a test can turn one on in the
//! middle of a load and off again. [`Op::Every`] is an outage: it applies to every call that has no
//! fault of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::{
    AgentId, AgentInfo, AgentStore, ClusterStore, CommitOutcome, CommittedOffset, GroupState, GroupStore, Lease, LeaseStore, MetadataError,
    MetadataStore, NewTopic, PartitionCommit, PartitionId, PartitionOverview, PartitionState, ProducerState, ProducerStore, Renewed,
    Result, SegmentRef, SegmentStore, Topic, TopicStore,
};

/// What a call does instead of (or besides) its work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Fails at once, as an unreachable database does (`Unavailable`, retriable).
    Fail,
    /// Waits this long, then does the work.
    Delay(Duration),
    /// Never completes.
    Hang,
    /// Does the work, then reports `Unavailable` anyway: the reply was lost, the write went in.
    SucceedThenFail,
}

/// The kinds of call a fault can be set for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Committing a flush (`commit_flush`).
    Commit,
    /// Renewing this agent's leases (`renew_leases`).
    Renew,
    /// Writing a group's state or offsets (`save_group`, `commit_offsets`).
    GroupWrite,
    /// Taking a partition's or a group's lease (`acquire_lease`, `acquire_group_lease`): where an
    /// agent waits on the row locks of another agent frozen mid-transaction.
    Acquire,
    /// Every other call, and the ones above while they have no fault of their own.
    Every,
}

const OPS: usize = 5;

pub struct FaultyMetadata {
    inner: Arc<dyn MetadataStore>,
    faults: Mutex<[Fault; OPS]>,
    injected: AtomicUsize,
}

impl FaultyMetadata {
    pub fn new(inner: Arc<dyn MetadataStore>) -> Self {
        Self { inner, faults: Mutex::default(), injected: AtomicUsize::new(0) }
    }

    pub fn set(&self, op: Op, fault: Fault) {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)[op as usize] = fault;
    }

    /// Calls that a fault changed so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    fn fault(&self, op: Op) -> Fault {
        let faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        match faults[op as usize] {
            Fault::None => faults[Op::Every as usize],
            own => own,
        }
    }

    /// Runs `work` under the fault set for `op`.
    async fn apply<T>(&self, op: Op, work: impl Future<Output = Result<T>>) -> Result<T> {
        let fault = self.fault(op);
        if fault != Fault::None {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        match fault {
            Fault::None => work.await,
            Fault::Fail => Err(injected()),
            Fault::Delay(d) => {
                tokio::time::sleep(d).await;
                work.await
            }
            Fault::Hang => std::future::pending().await,
            Fault::SucceedThenFail => {
                work.await?;
                Err(injected())
            }
        }
    }
}

fn injected() -> MetadataError {
    MetadataError::unavailable("injected fault (FaultyMetadata)")
}

#[async_trait]
impl TopicStore for FaultyMetadata {
    async fn create_topic(&self, topic: NewTopic) -> Result<Topic> {
        self.apply(Op::Every, self.inner.create_topic(topic)).await
    }
    async fn delete_topic(&self, name: &str) -> Result<Topic> {
        self.apply(Op::Every, self.inner.delete_topic(name)).await
    }
    async fn topic(&self, name: &str) -> Result<Option<Topic>> {
        self.apply(Op::Every, self.inner.topic(name)).await
    }
    async fn topic_by_id(&self, id: Uuid) -> Result<Option<Topic>> {
        self.apply(Op::Every, self.inner.topic_by_id(id)).await
    }
    async fn topics(&self) -> Result<Vec<Topic>> {
        self.apply(Op::Every, self.inner.topics()).await
    }
    async fn create_partitions(&self, name: &str, total: i32) -> Result<Topic> {
        self.apply(Op::Every, self.inner.create_partitions(name, total)).await
    }
}

#[async_trait]
impl LeaseStore for FaultyMetadata {
    async fn acquire_lease(&self, agent: AgentId, id: PartitionId, ttl: Duration) -> Result<Option<Lease>> {
        self.apply(Op::Acquire, self.inner.acquire_lease(agent, id, ttl)).await
    }
    async fn renew_leases(&self, agent: AgentId, ttl: Duration) -> Result<Renewed> {
        self.apply(Op::Renew, self.inner.renew_leases(agent, ttl)).await
    }
    async fn release_leases(&self, agent: AgentId) -> Result<()> {
        self.apply(Op::Every, self.inner.release_leases(agent)).await
    }
    async fn release_lease(&self, agent: AgentId, id: PartitionId) -> Result<()> {
        self.apply(Op::Every, self.inner.release_lease(agent, id)).await
    }
    async fn all_partition_states(&self) -> Result<Vec<PartitionState>> {
        self.apply(Op::Every, self.inner.all_partition_states()).await
    }
    async fn partition_overview(&self) -> Result<Vec<PartitionOverview>> {
        self.apply(Op::Every, self.inner.partition_overview()).await
    }
    async fn partition_states(&self, topic_id: Uuid) -> Result<Vec<PartitionState>> {
        self.apply(Op::Every, self.inner.partition_states(topic_id)).await
    }
    async fn partition_state(&self, id: PartitionId) -> Result<Option<PartitionState>> {
        self.apply(Op::Every, self.inner.partition_state(id)).await
    }
    async fn epoch_history(&self, id: PartitionId) -> Result<Vec<(i32, i64)>> {
        self.apply(Op::Every, self.inner.epoch_history(id)).await
    }
}

#[async_trait]
impl SegmentStore for FaultyMetadata {
    async fn commit_flush(&self, agent: AgentId, commits: &[PartitionCommit]) -> Result<Vec<CommitOutcome>> {
        self.apply(Op::Commit, self.inner.commit_flush(agent, commits)).await
    }
    async fn segments(&self, id: PartitionId, from_offset: i64, limit: u32) -> Result<Vec<SegmentRef>> {
        self.apply(Op::Every, self.inner.segments(id, from_offset, limit)).await
    }
    async fn segment_for_timestamp(&self, id: PartitionId, timestamp: i64) -> Result<Option<SegmentRef>> {
        self.apply(Op::Every, self.inner.segment_for_timestamp(id, timestamp)).await
    }
    async fn segment_with_max_timestamp(&self, id: PartitionId) -> Result<Option<SegmentRef>> {
        self.apply(Op::Every, self.inner.segment_with_max_timestamp(id)).await
    }
}

#[async_trait]
impl ProducerStore for FaultyMetadata {
    async fn allocate_producer_id(&self) -> Result<i64> {
        self.apply(Op::Every, self.inner.allocate_producer_id()).await
    }
    async fn producer_states(&self, id: PartitionId) -> Result<Vec<ProducerState>> {
        self.apply(Op::Every, self.inner.producer_states(id)).await
    }
}

#[async_trait]
impl ClusterStore for FaultyMetadata {
    async fn cluster_id(&self) -> Result<String> {
        self.apply(Op::Every, self.inner.cluster_id()).await
    }
    /// Not faulted: reading the clock needs no round trip to the database.
    fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }
}

#[async_trait]
impl GroupStore for FaultyMetadata {
    async fn acquire_group_lease(&self, agent: AgentId, group: &str, ttl: Duration) -> Result<Option<i32>> {
        self.apply(Op::Acquire, self.inner.acquire_group_lease(agent, group, ttl)).await
    }
    async fn group_coordinator(&self, group: &str) -> Result<Option<AgentId>> {
        self.apply(Op::Every, self.inner.group_coordinator(group)).await
    }
    async fn group_coordinators(&self) -> Result<Vec<(String, AgentId)>> {
        self.apply(Op::Every, self.inner.group_coordinators()).await
    }
    async fn save_group(&self, agent: AgentId, epoch: i32, state: &GroupState) -> Result<()> {
        self.apply(Op::GroupWrite, self.inner.save_group(agent, epoch, state)).await
    }
    async fn load_group(&self, group: &str) -> Result<Option<GroupState>> {
        self.apply(Op::Every, self.inner.load_group(group)).await
    }
    async fn list_groups(&self) -> Result<Vec<GroupState>> {
        self.apply(Op::Every, self.inner.list_groups()).await
    }
    async fn delete_group(&self, agent: AgentId, epoch: i32, group: &str) -> Result<()> {
        self.apply(Op::Every, self.inner.delete_group(agent, epoch, group)).await
    }
    async fn commit_offsets(&self, agent: AgentId, epoch: i32, group: &str, offsets: &[CommittedOffset]) -> Result<()> {
        self.apply(Op::GroupWrite, self.inner.commit_offsets(agent, epoch, group, offsets)).await
    }
    async fn fetch_offsets(&self, group: &str) -> Result<Vec<CommittedOffset>> {
        self.apply(Op::Every, self.inner.fetch_offsets(group)).await
    }
    async fn delete_offsets(&self, agent: AgentId, epoch: i32, group: &str, partitions: &[(String, i32)]) -> Result<()> {
        self.apply(Op::Every, self.inner.delete_offsets(agent, epoch, group, partitions)).await
    }
    async fn expire_offsets(&self, cutoff_ms: i64) -> Result<u64> {
        self.apply(Op::Every, self.inner.expire_offsets(cutoff_ms)).await
    }
}

#[async_trait]
impl AgentStore for FaultyMetadata {
    async fn register_agent(&self, agent: &AgentInfo, ttl: Duration) -> Result<()> {
        self.apply(Op::Every, self.inner.register_agent(agent, ttl)).await
    }
    async fn deregister_agent(&self, id: AgentId) -> Result<()> {
        self.apply(Op::Every, self.inner.deregister_agent(id)).await
    }
    async fn live_agents(&self) -> Result<Vec<AgentInfo>> {
        self.apply(Op::Every, self.inner.live_agents()).await
    }
    async fn registration_expiry(&self, id: AgentId) -> Result<Option<i64>> {
        self.apply(Op::Every, self.inner.registration_expiry(id)).await
    }
    async fn referenced_objects(&self) -> Result<Vec<String>> {
        self.apply(Op::Every, self.inner.referenced_objects()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn faults_apply_per_op_and_every_covers_the_rest() {
        let store = FaultyMetadata::new(crate::open("sqlite://:memory:").await.expect("store"));
        let topic = NewTopic { name: "t".into(), partitions: 1, configs: Default::default() };
        store.set(Op::Every, Fault::SucceedThenFail);
        assert!(store.create_topic(topic).await.is_err(), "the reply was lost");
        store.set(Op::Every, Fault::None);
        assert!(store.topic("t").await.expect("read").is_some(), "but the write went in");

        store.set(Op::Every, Fault::Fail);
        store.set(Op::Renew, Fault::Hang);
        assert!(store.topics().await.is_err());
        assert!(tokio::time::timeout(Duration::from_millis(50), store.renew_leases(1, Duration::from_secs(1))).await.is_err());
        store.set(Op::Every, Fault::None);
        assert!(store.topics().await.is_ok());
        assert_eq!(store.injected(), 3);
    }
}
