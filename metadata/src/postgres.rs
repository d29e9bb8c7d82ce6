//! The `postgres://` backend: one database shared by every agent of a cluster.
//!
//! The SQL is the same as SQLite's (`queries`); what differs is concurrency. Writes run in
//! PostgreSQL's default READ COMMITTED transactions, which is enough because every check-then-write
//! that must not interleave with another agent is ONE conditional statement that locks the row it
//! checks, and a waiting statement re-checks its WHERE against the row the winner committed:
//! - lease acquisition (partition and group) and the fenced flush commit: conditional UPDATE /
//!   `INSERT ... ON CONFLICT DO UPDATE ... WHERE`, so racing agents get exactly one winner;
//! - group writes: a no-op conditional UPDATE of the lease row first (see `queries/groups.rs`),
//!   holding it locked so a takeover waits for the fenced write to commit;
//! - producer ids: one `UPDATE ... RETURNING` of the counter row;
//! - agent registration: one `INSERT ... ON CONFLICT (id) DO UPDATE`, so two registrations of one
//!   id racing each other cannot fail on the primary key;
//! - the cluster id: `INSERT ... ON CONFLICT DO NOTHING`, then read back, so concurrent first opens
//!   agree; migrations run under sqlx's advisory lock, so concurrent opens migrate once.
//!
//! Topic creation reads then inserts; two racing creations of one name are caught by the UNIQUE
//! constraint and reported as `Conflict`. Reads of more than one statement run in a REPEATABLE READ,
//! READ ONLY transaction: one snapshot, and read-only transactions never fail to serialize.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::clock::{Clock, SystemClock, duration_ms};
use crate::queries::{Queries, new_cluster_id};
use crate::{
    AgentId, AgentInfo, AgentStore, ClusterStore, CommitOutcome, CommittedOffset, GroupState,
    GroupStore, Lease, LeaseStore, MetadataError, NewTopic, PartitionCommit, PartitionId,
    PartitionState, ProducerState, ProducerStore, Result, SegmentRef, SegmentStore, Topic,
    TopicStore,
};

type Q = Queries<Postgres>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a caller waits for a pooled connection before giving up as `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Per agent. Statements are short; a flush, renewals, group writes and reads can overlap.
const MAX_CONNECTIONS: u32 = 8;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// "Now" for lease expiry; the system clock unless a test injects one.
    clock: Arc<dyn Clock>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]`, also
    /// `postgresql://`) and migrates the database, which must exist.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with_clock(url, Arc::new(SystemClock)).await
    }

    /// Like [`open`](Self::open), reading lease time from `clock`.
    pub async fn open_with_clock(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            MetadataError::invalid(format!("bad PostgreSQL URL '{}'", redact(url))).with_source(e)
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| {
                let err = MetadataError::from(e);
                MetadataError::new(err.kind(), format!("cannot connect to {}", redact(url)))
                    .with_source(err)
            })?;
        // sqlx holds an advisory lock while migrating: concurrent first opens migrate once.
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| MetadataError::from(sqlx::Error::from(e)))?;
        let mut conn = pool.acquire().await?;
        Q::ensure_cluster_id(&mut conn, &new_cluster_id()).await?;
        drop(conn);
        Ok(Self { pool, clock })
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// READ COMMITTED: see the module docs for why that is enough.
    async fn write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// One snapshot for reads of more than one statement.
    async fn read(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?)
    }

    async fn conn(&self) -> Result<PoolConnection<Postgres>> {
        Ok(self.pool.acquire().await?)
    }
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
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

#[async_trait]
impl TopicStore for PostgresStore {
    async fn create_topic(&self, topic: NewTopic) -> Result<Topic> {
        let mut tx = self.write().await?;
        let topic = Q::create_topic(&mut tx, topic, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(topic)
    }

    async fn delete_topic(&self, name: &str) -> Result<Topic> {
        let mut tx = self.write().await?;
        let topic = Q::delete_topic(&mut tx, name).await?;
        tx.commit().await?;
        Ok(topic)
    }

    async fn topic(&self, name: &str) -> Result<Option<Topic>> {
        let mut tx = self.read().await?;
        let topic = Q::topic(&mut tx, name).await?;
        tx.commit().await?;
        Ok(topic)
    }

    async fn topic_by_id(&self, id: Uuid) -> Result<Option<Topic>> {
        let mut tx = self.read().await?;
        let topic = Q::topic_by_id(&mut tx, id).await?;
        tx.commit().await?;
        Ok(topic)
    }

    async fn topics(&self) -> Result<Vec<Topic>> {
        let mut tx = self.read().await?;
        let topics = Q::topics(&mut tx).await?;
        tx.commit().await?;
        Ok(topics)
    }

    async fn create_partitions(&self, name: &str, total: i32) -> Result<Topic> {
        let mut tx = self.write().await?;
        let topic = Q::create_partitions(&mut tx, name, total).await?;
        tx.commit().await?;
        Ok(topic)
    }
}

#[async_trait]
impl LeaseStore for PostgresStore {
    async fn acquire_lease(
        &self,
        agent: AgentId,
        id: PartitionId,
        ttl: Duration,
    ) -> Result<Option<Lease>> {
        let mut tx = self.write().await?;
        let lease =
            Q::acquire_lease(&mut tx, agent, id, self.clock.now_ms(), duration_ms(ttl)).await?;
        tx.commit().await?;
        Ok(lease)
    }

    /// Two autocommit statements (partitions, then groups), not one transaction: each is complete
    /// on its own, and committing the first at once releases its row locks, which a flush of the
    /// same agent may be waiting for.
    async fn renew_leases(&self, agent: AgentId, ttl: Duration) -> Result<u64> {
        let mut conn = self.conn().await?;
        let (now_ms, ttl_ms) = (self.clock.now_ms(), duration_ms(ttl));
        let partitions = Q::renew_leases(&mut conn, agent, now_ms, ttl_ms).await?;
        let groups = Q::renew_group_leases(&mut conn, agent, now_ms, ttl_ms).await?;
        Ok(partitions + groups)
    }

    async fn release_leases(&self, agent: AgentId) -> Result<()> {
        let mut conn = self.conn().await?;
        Q::release_leases(&mut conn, agent).await?;
        Q::release_group_leases(&mut conn, agent).await
    }

    async fn release_lease(&self, agent: AgentId, id: PartitionId) -> Result<()> {
        Q::release_lease(&mut *self.conn().await?, agent, id).await
    }

    async fn all_partition_states(&self) -> Result<Vec<PartitionState>> {
        Q::all_partition_states(&mut *self.conn().await?, self.clock.now_ms()).await
    }

    async fn partition_states(&self, topic_id: Uuid) -> Result<Vec<PartitionState>> {
        Q::partition_states(&mut *self.conn().await?, topic_id, self.clock.now_ms()).await
    }

    async fn partition_state(&self, id: PartitionId) -> Result<Option<PartitionState>> {
        Q::partition_state(&mut *self.conn().await?, id, self.clock.now_ms()).await
    }

    async fn epoch_history(&self, id: PartitionId) -> Result<Vec<(i32, i64)>> {
        Q::epoch_history(&mut *self.conn().await?, id).await
    }
}

#[async_trait]
impl SegmentStore for PostgresStore {
    async fn commit_flush(
        &self,
        agent: AgentId,
        commits: &[PartitionCommit],
    ) -> Result<Vec<CommitOutcome>> {
        let mut tx = self.write().await?;
        let outcomes = Q::commit_flush(&mut tx, agent, commits, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn segments(
        &self,
        id: PartitionId,
        from_offset: i64,
        limit: u32,
    ) -> Result<Vec<SegmentRef>> {
        Q::segments(&mut *self.conn().await?, id, from_offset, limit).await
    }

    async fn segment_for_timestamp(
        &self,
        id: PartitionId,
        timestamp: i64,
    ) -> Result<Option<SegmentRef>> {
        Q::segment_for_timestamp(&mut *self.conn().await?, id, timestamp).await
    }

    async fn segment_with_max_timestamp(&self, id: PartitionId) -> Result<Option<SegmentRef>> {
        Q::segment_with_max_timestamp(&mut *self.conn().await?, id).await
    }
}

#[async_trait]
impl ProducerStore for PostgresStore {
    async fn allocate_producer_id(&self) -> Result<i64> {
        Q::allocate_producer_id(&mut *self.conn().await?).await
    }

    async fn producer_states(&self, id: PartitionId) -> Result<Vec<ProducerState>> {
        Q::producer_states(&mut *self.conn().await?, id).await
    }
}

#[async_trait]
impl ClusterStore for PostgresStore {
    async fn cluster_id(&self) -> Result<String> {
        Q::cluster_id(&mut *self.conn().await?).await
    }
}

#[async_trait]
impl GroupStore for PostgresStore {
    async fn acquire_group_lease(
        &self,
        agent: AgentId,
        group: &str,
        ttl: Duration,
    ) -> Result<Option<i32>> {
        Q::acquire_group_lease(
            &mut *self.conn().await?,
            agent,
            group,
            self.clock.now_ms(),
            duration_ms(ttl),
        )
        .await
    }

    async fn group_coordinator(&self, group: &str) -> Result<Option<AgentId>> {
        Q::group_coordinator(&mut *self.conn().await?, group, self.clock.now_ms()).await
    }

    async fn save_group(&self, agent: AgentId, epoch: i32, state: &GroupState) -> Result<()> {
        let mut tx = self.write().await?;
        Q::save_group(&mut tx, agent, epoch, state, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn load_group(&self, group: &str) -> Result<Option<GroupState>> {
        let mut tx = self.read().await?;
        let state = Q::load_group(&mut tx, group).await?;
        tx.commit().await?;
        Ok(state)
    }

    async fn list_groups(&self) -> Result<Vec<GroupState>> {
        let mut tx = self.read().await?;
        let groups = Q::list_groups(&mut tx).await?;
        tx.commit().await?;
        Ok(groups)
    }

    async fn delete_group(&self, agent: AgentId, epoch: i32, group: &str) -> Result<()> {
        let mut tx = self.write().await?;
        Q::delete_group(&mut tx, agent, epoch, group, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn commit_offsets(
        &self,
        agent: AgentId,
        epoch: i32,
        group: &str,
        offsets: &[CommittedOffset],
    ) -> Result<()> {
        let mut tx = self.write().await?;
        Q::commit_offsets(&mut tx, agent, epoch, group, offsets, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn fetch_offsets(&self, group: &str) -> Result<Vec<CommittedOffset>> {
        Q::fetch_offsets(&mut *self.conn().await?, group).await
    }

    async fn delete_offsets(
        &self,
        agent: AgentId,
        epoch: i32,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<()> {
        let mut tx = self.write().await?;
        Q::delete_offsets(
            &mut tx,
            agent,
            epoch,
            group,
            partitions,
            self.clock.now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn expire_offsets(&self, cutoff_ms: i64) -> Result<u64> {
        Q::expire_offsets(&mut *self.conn().await?, cutoff_ms).await
    }
}

#[async_trait]
impl AgentStore for PostgresStore {
    async fn register_agent(&self, agent: &AgentInfo, ttl: Duration) -> Result<()> {
        Q::register_agent(
            &mut *self.conn().await?,
            agent,
            self.clock.now_ms(),
            duration_ms(ttl),
        )
        .await
    }

    async fn deregister_agent(&self, id: AgentId) -> Result<()> {
        Q::deregister_agent(&mut *self.conn().await?, id).await
    }

    async fn live_agents(&self) -> Result<Vec<AgentInfo>> {
        Q::live_agents(&mut *self.conn().await?, self.clock.now_ms()).await
    }

    async fn referenced_objects(&self) -> Result<Vec<String>> {
        Q::referenced_objects(&mut *self.conn().await?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PostgreSQL migrations are the SQLite ones with BLOB spelled BYTEA; only comments differ.
    #[test]
    fn migrations_match_sqlite() {
        let statements = |sql: &str| {
            sql.lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .map(|line| line.replace("BLOB ", "BYTEA"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let pairs = [
            (
                include_str!("../migrations/sqlite/0001_initial.sql"),
                include_str!("../migrations/postgres/0001_initial.sql"),
            ),
            (
                include_str!("../migrations/sqlite/0002_groups.sql"),
                include_str!("../migrations/postgres/0002_groups.sql"),
            ),
            (
                include_str!("../migrations/sqlite/0003_agents.sql"),
                include_str!("../migrations/postgres/0003_agents.sql"),
            ),
        ];
        for (sqlite, postgres) in pairs {
            assert_eq!(statements(sqlite), statements(postgres));
        }
        assert_eq!(MIGRATOR.iter().count(), pairs.len());
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://sh:secret@db:5432/meta?sslmode=require"),
            "postgres://sh:***@db:5432/meta?sslmode=require"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
