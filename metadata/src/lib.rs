//! The metadata store: the single source of truth for topics, partition leases and leader epochs,
//! high watermarks, the segment index, idempotent-producer state, consumer groups and their offsets.
//!
//! Nothing here knows the Kafka codec: the broker converts requests into these domain types at its
//! handler edge. The store is split by concern into small traits; [`MetadataStore`] is their sum and
//! is what the broker holds (`Arc<dyn MetadataStore>`), picked by URL scheme in [`open`].
//!
//! - `clock`: [`Clock`], the source of "now" for lease expiry ([`ManualClock`] for tests).
//! - `error`: [`MetadataError`] with a kind (Fenced, NotFound, Conflict, Unavailable, Corrupt, Invalid).
//! - `faults`: [`faults::FaultyMetadata`], a wrapper that injects failures, latency and hangs, for tests.
//! - `store`: [`SqlStore`], every store trait implemented once over a SQL backend: how each
//!   operation runs (autocommit, read or write transaction) around the shared SQL.
//! - `sqlite`: the `sqlite://PATH` backend, the embedded default (migrations in `migrations/sqlite`).
//! - `postgres`: the `postgres://` backend, shared by the agents of a cluster (migrations in
//!   `migrations/postgres`, the same schema in PostgreSQL's types).
//! - `queries/`: SQL the backends share, one file per concern.

pub mod clock;
pub mod error;
pub mod faults;
pub mod postgres;
mod queries;
pub mod sqlite;
mod store;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{MetadataError, MetadataErrorKind};
pub use store::SqlStore;

pub type Result<T> = std::result::Result<T, MetadataError>;

/// An agent (broker) id, the Kafka `node_id`.
pub type AgentId = i32;

/// A partition, named by its topic's id so a re-created topic of the same name never sees old data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId {
    pub topic_id: Uuid,
    pub partition: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub id: Uuid,
    pub name: String,
    pub partitions: i32,
    /// Only the configs set explicitly at creation; defaults are the broker's business.
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

/// What the store knows of one partition right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionState {
    pub id: PartitionId,
    /// The lease holder, if the lease has not expired.
    pub leader: Option<AgentId>,
    /// The Kafka leader epoch: bumped on every lease acquisition.
    pub leader_epoch: i32,
    /// One past the last committed offset.
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// A partition as an operator sees it: its state, when its lease runs out, what it stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOverview {
    pub state: PartitionState,
    /// When the current lease expires (store clock, ms); 0 when it was released.
    pub lease_expires_ms: i64,
    /// Bytes of the segment runs the index holds for it.
    pub stored_bytes: i64,
}

/// A lease just acquired: the new epoch and where the log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: PartitionId,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// A contiguous run of one partition's batches inside a segment object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRef {
    pub base_offset: i64,
    /// Offset of the last record in the run (inclusive).
    pub last_offset: i64,
    pub object_key: String,
    /// Byte position of the run inside the object.
    pub position: u64,
    pub length: u64,
    /// Greatest record timestamp in the run (ms).
    pub max_timestamp: i64,
}

/// The recent batches of one idempotent producer on one partition, kept to answer retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerState {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Oldest first; at most five, as Kafka keeps (max.in.flight.requests.per.connection <= 5).
    pub batches: Vec<ProducerBatch>,
    /// When the producer last wrote to the partition (ms, by the store's clock), which
    /// producer.id.expiration.ms is judged against. The store stamps it when it commits the state,
    /// whatever a commit carries here, so every agent's states age by the one clock.
    pub last_write_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// One partition's part of a flush: the run it wrote and the producer state it leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionCommit {
    pub id: PartitionId,
    /// The epoch under which the leader wrote; the commit is fenced against it.
    pub leader_epoch: i32,
    pub segment: SegmentRef,
    pub producers: Vec<ProducerState>,
    /// Also delete the partition's producers that have not written for this long (Kafka's
    /// producer.id.expiration.ms), under the same fence as the rest of the commit. `None` on most
    /// commits: the leader asks once per check interval.
    pub expire_idle_producers: Option<Duration>,
}

/// How one partition of a flush ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed {
        high_watermark: i64,
    },
    /// Another agent holds a newer epoch (or the lease lapsed): nothing of this partition was written.
    Fenced,
}

#[async_trait]
pub trait TopicStore: Send + Sync {
    /// Creates a topic and its partitions (log start 0, high watermark 0, epoch 0, no leader).
    /// A name already taken is `Conflict`.
    async fn create_topic(&self, topic: NewTopic) -> Result<Topic>;
    /// Removes the topic, its partitions, leases, segment index rows and producer state.
    /// Objects are left for the sweeper. Unknown name is `NotFound`.
    async fn delete_topic(&self, name: &str) -> Result<Topic>;
    async fn topic(&self, name: &str) -> Result<Option<Topic>>;
    async fn topic_by_id(&self, id: Uuid) -> Result<Option<Topic>>;
    async fn topics(&self) -> Result<Vec<Topic>>;
    /// Grows a topic to `total` partitions; fewer than now is `Invalid`.
    async fn create_partitions(&self, name: &str, total: i32) -> Result<Topic>;
}

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the partition's lease if it is free, expired or already `agent`'s: bumps the leader
    /// epoch, records (epoch, high watermark) in the epoch history, and returns where the log stands.
    /// `None` when another agent holds a live lease.
    async fn acquire_lease(&self, agent: AgentId, id: PartitionId, ttl: Duration) -> Result<Option<Lease>>;
    /// Extends every lease `agent` holds (partitions and groups), in one statement per table; returns
    /// what it holds: a group not named there is no longer this agent's to coordinate.
    async fn renew_leases(&self, agent: AgentId, ttl: Duration) -> Result<Renewed>;
    /// Gives up every lease `agent` holds (partitions and groups) so another agent can take them at once.
    async fn release_leases(&self, agent: AgentId) -> Result<()>;
    /// Gives up one partition's lease (a planned handoff after its last flush); a no-op unless
    /// `agent` holds it.
    async fn release_lease(&self, agent: AgentId, id: PartitionId) -> Result<()>;
    /// Every partition of every topic, for balancing leases across agents.
    async fn all_partition_states(&self) -> Result<Vec<PartitionState>>;
    /// Every partition with its lease expiry and stored bytes, ordered by id. Sums the segment
    /// index: for the operator surface, not for the request path.
    async fn partition_overview(&self) -> Result<Vec<PartitionOverview>>;
    async fn partition_states(&self, topic_id: Uuid) -> Result<Vec<PartitionState>>;
    async fn partition_state(&self, id: PartitionId) -> Result<Option<PartitionState>>;
    /// (epoch, start offset) pairs, oldest first, for OffsetForLeaderEpoch.
    async fn epoch_history(&self, id: PartitionId) -> Result<Vec<(i32, i64)>>;
}

#[async_trait]
pub trait SegmentStore: Send + Sync {
    /// Commits one flush in ONE transaction: per partition, if `agent` still holds the lease at
    /// `leader_epoch` and the run starts at the current high watermark, inserts the index row, advances
    /// the high watermark to `last_offset + 1`, upserts the producer states (stamped with the store's
    /// time) and deletes the expired ones if asked; otherwise that partition is `Fenced` and leaves
    /// no trace. Outcomes are in the order of `commits`.
    async fn commit_flush(&self, agent: AgentId, commits: &[PartitionCommit]) -> Result<Vec<CommitOutcome>>;
    /// Runs whose last offset is >= `from_offset`, in offset order, at most `limit`.
    async fn segments(&self, id: PartitionId, from_offset: i64, limit: u32) -> Result<Vec<SegmentRef>>;
    /// The first run (in offset order) whose max timestamp is >= `timestamp`.
    async fn segment_for_timestamp(&self, id: PartitionId, timestamp: i64) -> Result<Option<SegmentRef>>;
    /// The run holding the greatest timestamp (the earliest such run on ties).
    async fn segment_with_max_timestamp(&self, id: PartitionId) -> Result<Option<SegmentRef>>;
}

#[async_trait]
pub trait ProducerStore: Send + Sync {
    /// Allocates a new producer id, unique across the cluster.
    async fn allocate_producer_id(&self) -> Result<i64>;
    /// The committed producer states of a partition, loaded by a new leader. A state written before
    /// last writes were recorded reads as written now.
    async fn producer_states(&self, id: PartitionId) -> Result<Vec<ProducerState>>;
}

#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// The cluster id, created with the store and stable for its life.
    async fn cluster_id(&self) -> Result<String>;
    /// "Now" by the store's clock (ms since the Unix epoch): the clock every agent of the cluster
    /// judges lease expiry and object age by, whatever its own wall clock says.
    fn now_ms(&self) -> i64;
}

/// A consumer group's durable state: what a coordinator (this one after a restart, or another
/// agent after a failover) needs to carry on without forcing every member to rejoin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupState {
    pub group_id: String,
    /// "consumer", "connect", ... or "" for a group that only has committed offsets.
    pub protocol_type: String,
    /// The protocol (assignor) chosen for the current generation.
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: Vec<GroupMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMember {
    pub member_id: String,
    /// Static membership (KIP-345).
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (protocol name, member metadata) in the member's order of preference.
    pub protocols: Vec<(String, Vec<u8>)>,
    pub assignment: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// -1 when the client did not send one.
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp_ms: i64,
}

/// Consumer groups: the coordinator lease, durable group state and committed offsets. Writes are
/// fenced by the coordinator epoch exactly as partition commits are by the leader epoch.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Takes the coordinator lease of `group` if it is free, expired or already `agent`'s, bumping
    /// its epoch; `None` while another agent holds a live lease. The lease is renewed and released
    /// together with the partition leases (`renew_leases`, `release_leases`).
    async fn acquire_group_lease(&self, agent: AgentId, group: &str, ttl: Duration) -> Result<Option<i32>>;
    /// The agent holding a live coordinator lease on `group`, if any.
    async fn group_coordinator(&self, group: &str) -> Result<Option<AgentId>>;
    /// Every group with a live coordinator lease, and its coordinator.
    async fn group_coordinators(&self) -> Result<Vec<(String, AgentId)>>;
    /// Replaces the group's state. `Fenced` unless `agent` holds the lease at `epoch`.
    async fn save_group(&self, agent: AgentId, epoch: i32, state: &GroupState) -> Result<()>;
    async fn load_group(&self, group: &str) -> Result<Option<GroupState>>;
    /// Every group with saved state or committed offsets (the latter as a default `GroupState`
    /// with only `group_id` set).
    async fn list_groups(&self) -> Result<Vec<GroupState>>;
    /// Removes the group's state and offsets. `NotFound` if it has neither; `Fenced` as above.
    async fn delete_group(&self, agent: AgentId, epoch: i32, group: &str) -> Result<()>;
    /// Upserts offsets in one transaction. `Fenced` as above.
    async fn commit_offsets(&self, agent: AgentId, epoch: i32, group: &str, offsets: &[CommittedOffset]) -> Result<()>;
    async fn fetch_offsets(&self, group: &str) -> Result<Vec<CommittedOffset>>;
    /// Removes the offsets of the given (topic, partition)s. `Fenced` as above.
    async fn delete_offsets(&self, agent: AgentId, epoch: i32, group: &str, partitions: &[(String, i32)]) -> Result<()>;
    /// Deletes offsets committed before `cutoff_ms` in groups that have no members (Kafka's
    /// offsets.retention.minutes); returns how many were deleted.
    async fn expire_offsets(&self, cutoff_ms: i64) -> Result<u64>;
}

/// A live agent as other agents and clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    pub id: AgentId,
    /// Advertised host and port for Kafka clients.
    pub host: String,
    pub port: i32,
    /// Availability zone (Kafka's rack), if the agent knows it.
    pub zone: Option<String>,
    /// The agent group: topics pinned to a group are led only by its agents.
    pub group: String,
}

/// Agent membership: registration doubles as the heartbeat.
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Registers `agent` (or refreshes it: same call) as alive until now + `ttl`. Re-registering an
    /// id replaces its address, zone and group.
    async fn register_agent(&self, agent: &AgentInfo, ttl: Duration) -> Result<()>;
    /// Removes the agent at once (graceful shutdown).
    async fn deregister_agent(&self, id: AgentId) -> Result<()>;
    /// Agents whose registration has not expired, ordered by id.
    async fn live_agents(&self) -> Result<Vec<AgentInfo>>;
    /// When the registration of `id` expires (ms, as written by its last heartbeat), if there is one:
    /// a value that moves on is an agent still heartbeating under that id.
    async fn registration_expiry(&self, id: AgentId) -> Result<Option<i64>>;
    /// Every object key some segment-index row still references (the sweeper deletes the others).
    async fn referenced_objects(&self) -> Result<Vec<String>>;
}

/// Everything the broker needs from the metadata store.
pub trait MetadataStore: TopicStore + LeaseStore + SegmentStore + ProducerStore + ClusterStore + GroupStore + AgentStore {}
impl<T: TopicStore + LeaseStore + SegmentStore + ProducerStore + ClusterStore + GroupStore + AgentStore> MetadataStore for T {}

/// The URL without its password, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// What one renewal extended: how many partition leases, and which groups' coordinator leases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renewed {
    pub partitions: u64,
    pub groups: Vec<String>,
}

impl Renewed {
    /// Partition and group leases together.
    pub fn count(&self) -> u64 {
        self.partitions + self.groups.len() as u64
    }
}

/// Opens (creating and migrating if needed) the backend named by the URL scheme: `sqlite://PATH`,
/// or `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (also `postgresql://`; the database must
/// exist, its tables are created).
pub async fn open(url: &str) -> Result<Arc<dyn MetadataStore>> {
    open_with_local_clock(url, SystemClock::default()).await
}

/// [`open`] on a machine whose wall clock is `local`: SQLite, one machine's store, tells time by
/// it; PostgreSQL by its server's clock whatever `local` says.
pub async fn open_with_local_clock(url: &str, local: SystemClock) -> Result<Arc<dyn MetadataStore>> {
    match url.split_once("://") {
        Some(("sqlite", path)) => Ok(Arc::new(sqlite::SqliteStore::open_with_clock(path, Arc::new(local)).await?)),
        Some(("postgres" | "postgresql", _)) => Ok(Arc::new(postgres::PostgresStore::open(url).await?)),
        _ => Err(MetadataError::invalid(format!(
            "unsupported metadata URL '{url}': use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(redact_url("postgres://sh:secret@db:5432/meta?sslmode=require"), "postgres://sh:***@db:5432/meta?sslmode=require");
        assert_eq!(redact_url("postgres://postgres@127.0.0.1/x"), "postgres://postgres@127.0.0.1/x");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }
}
