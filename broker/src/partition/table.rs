//! The agent's view of topics and of the partitions it leads. Guards of these maps are never held
//! across an `.await`: callers clone the `Arc` out and drop the guard.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use streamhouse_metadata::{PartitionId, PartitionState, Topic};
use uuid::Uuid;

use super::Partition;

/// How long the stored state of a partition led elsewhere is reused: reads of it may lag the
/// leader's commits by this much (it is also the long-poll granularity for such partitions).
pub const REMOTE_STATE_TTL: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
pub struct PartitionTable {
    topics: DashMap<String, Topic>,
    led: DashMap<PartitionId, Arc<Partition>>,
    /// Stored states of partitions other agents lead, read for follower fetches.
    remote: DashMap<PartitionId, (Instant, PartitionState)>,
}

impl PartitionTable {
    pub fn topic(&self, name: &str) -> Option<Topic> {
        self.topics.get(name).map(|t| t.clone())
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Topic> {
        self.topics.iter().find(|t| t.id == id).map(|t| t.clone())
    }

    pub fn topics(&self) -> Vec<Topic> {
        self.topics.iter().map(|t| t.clone()).collect()
    }

    pub fn put_topic(&self, topic: Topic) {
        self.topics.insert(topic.name.clone(), topic);
    }

    /// Forgets a topic and drops leadership of its partitions.
    pub fn remove_topic(&self, name: &str) {
        if let Some((_, topic)) = self.topics.remove(name) {
            self.led.retain(|id, _| id.topic_id != topic.id);
        }
    }

    pub fn led(&self, id: &PartitionId) -> Option<Arc<Partition>> {
        self.led.get(id).map(|p| Arc::clone(&p))
    }

    pub fn is_led(&self, id: &PartitionId) -> bool {
        self.led.contains_key(id)
    }

    pub fn insert_led(&self, partition: Arc<Partition>) {
        self.led.insert(partition.id, partition);
    }

    /// Drops a partition we were fenced out of, unless it was already replaced by a newer lease.
    pub fn remove_led(&self, partition: &Arc<Partition>) {
        self.led.remove_if(&partition.id, |_, p| Arc::ptr_eq(p, partition));
    }

    pub fn remote_state(&self, id: &PartitionId) -> Option<PartitionState> {
        self.remote.get(id).filter(|e| e.0.elapsed() < REMOTE_STATE_TTL).map(|e| e.1)
    }

    pub fn put_remote_state(&self, state: PartitionState) {
        self.remote.insert(state.id, (Instant::now(), state));
    }

    pub fn led_partitions(&self) -> Vec<Arc<Partition>> {
        self.led.iter().map(|p| Arc::clone(&p)).collect()
    }
}
