//! `AgentContext`: the cheap-clone handle every task and handler holds.

use std::sync::Arc;

use streamhouse_metadata::MetadataStore;
use streamhouse_storage::ObjectStore;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::config::Config;
use crate::groups::Coordinator;
use crate::metrics::Metrics;
use crate::partition::table::PartitionTable;
use crate::partition::tail::TailBudget;
use crate::partition::writer::WriteQueue;

#[derive(Clone)]
pub struct AgentContext(Arc<Shared>);

pub struct Shared {
    pub config: Config,
    pub agent_id: i32,
    pub cluster_id: String,
    pub metadata: Arc<dyn MetadataStore>,
    /// The object store behind the read cache.
    pub objects: Arc<dyn ObjectStore>,
    pub partitions: PartitionTable,
    /// This agent's registration, the live agents and the lease deadline.
    pub cluster: Cluster,
    pub writes: WriteQueue,
    /// The consumer groups this agent coordinates.
    pub groups: Coordinator,
    /// The memory every partition's tail cache draws on.
    pub tail_budget: Arc<TailBudget>,
    /// Bumped after every flush commit; long-polling fetches wait on it.
    pub commits: watch::Sender<u64>,
    /// Cancelled when the agent starts to shut down.
    pub shutdown: CancellationToken,
    /// An `Arc` of its own: the route glue keeps it past the request's borrow of the context.
    pub metrics: Arc<Metrics>,
}

impl AgentContext {
    pub fn new(shared: Shared) -> Self {
        AgentContext(Arc::new(shared))
    }
}

impl std::ops::Deref for AgentContext {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
