//! The `sqlite://PATH` backend: one file, embedded, for a single agent.
//!
//! Durability: WAL with `synchronous=FULL`, because the flush commit is what acknowledges a produce
//! and must survive power loss. Concurrency: SQLite has one writer at a time, so every multi-statement
//! write begins with `BEGIN IMMEDIATE`, taking the write lock up front; a deferred transaction that
//! reads and then writes could fail to upgrade its lock (SQLITE_BUSY) instead of waiting for it.
//! Readers never block in WAL mode. The SQL itself lives in `queries`, shared with other backends.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

use crate::clock::{Clock, SystemClock, duration_ms};
use crate::queries::{Queries, new_cluster_id};
use crate::{
    AgentId, AgentInfo, AgentStore, ClusterStore, CommitOutcome, CommittedOffset, GroupState,
    GroupStore, Lease, LeaseStore, MetadataError, NewTopic, PartitionCommit, PartitionId,
    PartitionState, ProducerState, ProducerStore, Result, SegmentRef, SegmentStore, Topic,
    TopicStore,
};

type Q = Queries<Sqlite>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock before giving up as `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a pooled connection before giving up as `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Enough for concurrent readers; writers queue on SQLite's lock anyway.
const MAX_CONNECTIONS: u32 = 4;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// "Now" for lease expiry; the system clock unless a test injects one.
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    /// Opens the database at `path` (creating it and its directory if missing) and migrates it.
    /// `:memory:` gives a private in-memory database, for tests.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_clock(path, Arc::new(SystemClock)).await
    }

    /// Like [`open`](Self::open), reading lease time from `clock`.
    pub async fn open_with_clock(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Self> {
        let path = path.as_ref();
        let pool = if path == Path::new(":memory:") {
            open_memory().await?
        } else {
            open_file(path).await?
        };
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| MetadataError::from(sqlx::Error::from(e)))?;
        let mut conn = pool.acquire().await?;
        Q::ensure_cluster_id(&mut conn, &new_cluster_id()).await?;
        drop(conn);
        Ok(Self { pool, clock })
    }

    /// Closes the pool, waiting for connections to finish (and SQLite to checkpoint the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A deferred transaction: a consistent snapshot for reads of more than one statement.
    async fn read(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin().await?)
    }

    async fn conn(&self) -> Result<PoolConnection<Sqlite>> {
        Ok(self.pool.acquire().await?)
    }
}

async fn open_file(path: &Path) -> Result<SqlitePool> {
    let text = path.to_string_lossy();
    if text.is_empty() || text.contains('?') {
        return Err(MetadataError::invalid(format!(
            "bad SQLite path '{text}': give a file path, without URL parameters"
        )));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(|e| {
            MetadataError::unavailable(format!("cannot create directory {}", dir.display()))
                .with_source(e)
        })?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// One connection that never idles out: each SQLite connection to `:memory:` is its own database,
/// which vanishes when the connection closes.
async fn open_memory() -> Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    Ok(pool)
}

#[async_trait]
impl TopicStore for SqliteStore {
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
impl LeaseStore for SqliteStore {
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

    /// Partition and group leases, one statement each, in one transaction (one fsync, not two).
    async fn renew_leases(&self, agent: AgentId, ttl: Duration) -> Result<u64> {
        let mut tx = self.write().await?;
        let (now_ms, ttl_ms) = (self.clock.now_ms(), duration_ms(ttl));
        let partitions = Q::renew_leases(&mut tx, agent, now_ms, ttl_ms).await?;
        let groups = Q::renew_group_leases(&mut tx, agent, now_ms, ttl_ms).await?;
        tx.commit().await?;
        Ok(partitions + groups)
    }

    async fn release_leases(&self, agent: AgentId) -> Result<()> {
        let mut tx = self.write().await?;
        Q::release_leases(&mut tx, agent).await?;
        Q::release_group_leases(&mut tx, agent).await?;
        tx.commit().await?;
        Ok(())
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
impl SegmentStore for SqliteStore {
    async fn commit_flush(
        &self,
        agent: AgentId,
        commits: &[PartitionCommit],
    ) -> Result<Vec<CommitOutcome>> {
        let mut tx = self.write().await?;
        // Read the clock once the write lock is held, so time spent queueing for it counts.
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
impl ProducerStore for SqliteStore {
    async fn allocate_producer_id(&self) -> Result<i64> {
        Q::allocate_producer_id(&mut *self.conn().await?).await
    }

    async fn producer_states(&self, id: PartitionId) -> Result<Vec<ProducerState>> {
        Q::producer_states(&mut *self.conn().await?, id).await
    }
}

#[async_trait]
impl ClusterStore for SqliteStore {
    async fn cluster_id(&self) -> Result<String> {
        Q::cluster_id(&mut *self.conn().await?).await
    }
}

#[async_trait]
impl GroupStore for SqliteStore {
    async fn acquire_group_lease(
        &self,
        agent: AgentId,
        group: &str,
        ttl: Duration,
    ) -> Result<Option<i32>> {
        let mut tx = self.write().await?;
        let epoch =
            Q::acquire_group_lease(&mut tx, agent, group, self.clock.now_ms(), duration_ms(ttl))
                .await?;
        tx.commit().await?;
        Ok(epoch)
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
impl AgentStore for SqliteStore {
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

    /// The durability settings are the point of this backend: check each pooled connection has them.
    #[tokio::test]
    async fn connections_use_wal_full_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("m.db")).await.unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        let text = |sql: &'static str| sqlx::query_scalar::<_, String>(sql);
        let int = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
        assert_eq!(
            text("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .unwrap(),
            "wal"
        );
        // synchronous: 2 is FULL.
        assert_eq!(
            int("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            int("PRAGMA foreign_keys")
                .fetch_one(&mut *conn)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            int("PRAGMA busy_timeout")
                .fetch_one(&mut *conn)
                .await
                .unwrap(),
            5000
        );
    }
}
