//! [`InstrumentedMetadata`]: a [`MetadataStore`] that times every call of the store beneath it, by
//! operation (the method's name). Each call is one transaction or statement against SQLite or
//! PostgreSQL, so a round trip dwarfs the label lookup done here per call (never per record).
//! `now_ms` reads a clock, no transaction, and is not timed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus::HistogramVec;
use streamhouse_metadata::{
    AgentId, AgentInfo, AgentStore, ClusterStore, CommitOutcome, CommittedOffset, GroupState, GroupStore, Lease, LeaseStore, MetadataStore,
    NewTopic, PartitionCommit, PartitionId, PartitionOverview, PartitionState, ProducerState, ProducerStore, Renewed, Result, SegmentRef,
    SegmentStore, Topic, TopicStore,
};
use uuid::Uuid;

pub struct InstrumentedMetadata {
    inner: Arc<dyn MetadataStore>,
    duration: HistogramVec,
}

impl InstrumentedMetadata {
    pub fn new(inner: Arc<dyn MetadataStore>, duration: HistogramVec) -> Self {
        InstrumentedMetadata { inner, duration }
    }

    /// Times `call`, failed or not: a store that fails slowly is what the histogram is for.
    async fn timed<T>(&self, operation: &'static str, call: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let result = call.await;
        self.duration.with_label_values(&[operation]).observe(started.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl TopicStore for InstrumentedMetadata {
    async fn create_topic(&self, topic: NewTopic) -> Result<Topic> {
        self.timed("create_topic", self.inner.create_topic(topic)).await
    }
    async fn delete_topic(&self, name: &str) -> Result<Topic> {
        self.timed("delete_topic", self.inner.delete_topic(name)).await
    }
    async fn topic(&self, name: &str) -> Result<Option<Topic>> {
        self.timed("topic", self.inner.topic(name)).await
    }
    async fn topic_by_id(&self, id: Uuid) -> Result<Option<Topic>> {
        self.timed("topic_by_id", self.inner.topic_by_id(id)).await
    }
    async fn topics(&self) -> Result<Vec<Topic>> {
        self.timed("topics", self.inner.topics()).await
    }
    async fn create_partitions(&self, name: &str, total: i32) -> Result<Topic> {
        self.timed("create_partitions", self.inner.create_partitions(name, total)).await
    }
}

#[async_trait]
impl LeaseStore for InstrumentedMetadata {
    async fn acquire_lease(&self, agent: AgentId, id: PartitionId, ttl: Duration) -> Result<Option<Lease>> {
        self.timed("acquire_lease", self.inner.acquire_lease(agent, id, ttl)).await
    }
    async fn renew_leases(&self, agent: AgentId, ttl: Duration) -> Result<Renewed> {
        self.timed("renew_leases", self.inner.renew_leases(agent, ttl)).await
    }
    async fn release_leases(&self, agent: AgentId) -> Result<()> {
        self.timed("release_leases", self.inner.release_leases(agent)).await
    }
    async fn release_lease(&self, agent: AgentId, id: PartitionId) -> Result<()> {
        self.timed("release_lease", self.inner.release_lease(agent, id)).await
    }
    async fn all_partition_states(&self) -> Result<Vec<PartitionState>> {
        self.timed("all_partition_states", self.inner.all_partition_states()).await
    }
    async fn partition_overview(&self) -> Result<Vec<PartitionOverview>> {
        self.timed("partition_overview", self.inner.partition_overview()).await
    }
    async fn partition_states(&self, topic_id: Uuid) -> Result<Vec<PartitionState>> {
        self.timed("partition_states", self.inner.partition_states(topic_id)).await
    }
    async fn partition_state(&self, id: PartitionId) -> Result<Option<PartitionState>> {
        self.timed("partition_state", self.inner.partition_state(id)).await
    }
    async fn epoch_history(&self, id: PartitionId) -> Result<Vec<(i32, i64)>> {
        self.timed("epoch_history", self.inner.epoch_history(id)).await
    }
}

#[async_trait]
impl SegmentStore for InstrumentedMetadata {
    async fn commit_flush(&self, agent: AgentId, commits: &[PartitionCommit]) -> Result<Vec<CommitOutcome>> {
        self.timed("commit_flush", self.inner.commit_flush(agent, commits)).await
    }
    async fn segments(&self, id: PartitionId, from_offset: i64, limit: u32) -> Result<Vec<SegmentRef>> {
        self.timed("segments", self.inner.segments(id, from_offset, limit)).await
    }
    async fn segment_for_timestamp(&self, id: PartitionId, timestamp: i64) -> Result<Option<SegmentRef>> {
        self.timed("segment_for_timestamp", self.inner.segment_for_timestamp(id, timestamp)).await
    }
    async fn segment_with_max_timestamp(&self, id: PartitionId) -> Result<Option<SegmentRef>> {
        self.timed("segment_with_max_timestamp", self.inner.segment_with_max_timestamp(id)).await
    }
}

#[async_trait]
impl ProducerStore for InstrumentedMetadata {
    async fn allocate_producer_id(&self) -> Result<i64> {
        self.timed("allocate_producer_id", self.inner.allocate_producer_id()).await
    }
    async fn producer_states(&self, id: PartitionId) -> Result<Vec<ProducerState>> {
        self.timed("producer_states", self.inner.producer_states(id)).await
    }
}

#[async_trait]
impl ClusterStore for InstrumentedMetadata {
    async fn cluster_id(&self) -> Result<String> {
        self.timed("cluster_id", self.inner.cluster_id()).await
    }
    fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }
}

#[async_trait]
impl GroupStore for InstrumentedMetadata {
    async fn acquire_group_lease(&self, agent: AgentId, group: &str, ttl: Duration) -> Result<Option<i32>> {
        self.timed("acquire_group_lease", self.inner.acquire_group_lease(agent, group, ttl)).await
    }
    async fn group_coordinator(&self, group: &str) -> Result<Option<AgentId>> {
        self.timed("group_coordinator", self.inner.group_coordinator(group)).await
    }
    async fn group_coordinators(&self) -> Result<Vec<(String, AgentId)>> {
        self.timed("group_coordinators", self.inner.group_coordinators()).await
    }
    async fn save_group(&self, agent: AgentId, epoch: i32, state: &GroupState) -> Result<()> {
        self.timed("save_group", self.inner.save_group(agent, epoch, state)).await
    }
    async fn load_group(&self, group: &str) -> Result<Option<GroupState>> {
        self.timed("load_group", self.inner.load_group(group)).await
    }
    async fn list_groups(&self) -> Result<Vec<GroupState>> {
        self.timed("list_groups", self.inner.list_groups()).await
    }
    async fn delete_group(&self, agent: AgentId, epoch: i32, group: &str) -> Result<()> {
        self.timed("delete_group", self.inner.delete_group(agent, epoch, group)).await
    }
    async fn commit_offsets(&self, agent: AgentId, epoch: i32, group: &str, offsets: &[CommittedOffset]) -> Result<()> {
        self.timed("commit_offsets", self.inner.commit_offsets(agent, epoch, group, offsets)).await
    }
    async fn fetch_offsets(&self, group: &str) -> Result<Vec<CommittedOffset>> {
        self.timed("fetch_offsets", self.inner.fetch_offsets(group)).await
    }
    async fn delete_offsets(&self, agent: AgentId, epoch: i32, group: &str, partitions: &[(String, i32)]) -> Result<()> {
        self.timed("delete_offsets", self.inner.delete_offsets(agent, epoch, group, partitions)).await
    }
    async fn expire_offsets(&self, cutoff_ms: i64) -> Result<u64> {
        self.timed("expire_offsets", self.inner.expire_offsets(cutoff_ms)).await
    }
}

#[async_trait]
impl AgentStore for InstrumentedMetadata {
    async fn register_agent(&self, agent: &AgentInfo, ttl: Duration) -> Result<()> {
        self.timed("register_agent", self.inner.register_agent(agent, ttl)).await
    }
    async fn deregister_agent(&self, id: AgentId) -> Result<()> {
        self.timed("deregister_agent", self.inner.deregister_agent(id)).await
    }
    async fn live_agents(&self) -> Result<Vec<AgentInfo>> {
        self.timed("live_agents", self.inner.live_agents()).await
    }
    async fn registration_expiry(&self, id: AgentId) -> Result<Option<i64>> {
        self.timed("registration_expiry", self.inner.registration_expiry(id)).await
    }
    async fn referenced_objects(&self) -> Result<Vec<String>> {
        self.timed("referenced_objects", self.inner.referenced_objects()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[tokio::test]
    async fn times_each_call_by_operation() {
        let m = Metrics::new();
        let inner = streamhouse_metadata::open("sqlite://:memory:").await.expect("store");
        let store = InstrumentedMetadata::new(inner, m.metadata_duration.clone());
        store.create_topic(NewTopic { name: "t".into(), partitions: 1, configs: Default::default() }).await.expect("create");
        assert!(store.create_topic(NewTopic { name: "t".into(), partitions: 1, configs: Default::default() }).await.is_err());
        store.topics().await.expect("list");
        assert_eq!(m.metadata_duration.with_label_values(&["create_topic"]).get_sample_count(), 2, "failed calls are timed too");
        assert_eq!(m.metadata_duration.with_label_values(&["topics"]).get_sample_count(), 1);
    }
}
