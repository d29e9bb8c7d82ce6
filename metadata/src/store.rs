//! [`SqlStore`]: every store trait, implemented once over any SQL [`Backend`].
//!
//! Each method picks where its statements run (a pooled connection, each statement committing on
//! its own; a read or a write transaction; or, for writes whose statements each stand alone, what
//! the backend prefers), reads the clock once that is held, and calls the shared SQL in `queries`.
//! What differs between backends (pool setup, URL handling, migrations, how transactions begin) is
//! theirs, in `sqlite.rs` and `postgres.rs`.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Transaction, Type};
use uuid::Uuid;

use crate::clock::{Clock, duration_ms};
use crate::queries::{Queries as Q, new_cluster_id};
use crate::{
    AgentId, AgentInfo, AgentStore, ClusterStore, CommitOutcome, CommittedOffset, GroupState, GroupStore, Lease, LeaseStore, MetadataError,
    NewTopic, PartitionCommit, PartitionId, PartitionOverview, PartitionState, ProducerState, ProducerStore, Renewed, Result, SegmentRef,
    SegmentStore, Topic, TopicStore,
};

/// What a SQL backend does its own way, implemented by sqlx's database type (`Sqlite`,
/// `Postgres`). Public only in name: this module is private, so no other crate can implement it.
pub trait Backend: Database<Connection: Migrate> {
    /// The backend's migrations, run by [`SqlStore::new`].
    const MIGRATOR: &'static Migrator;

    /// Whether writes lock rows (PostgreSQL), so statements that update many rows must take their
    /// locks in a fixed order to avoid deadlocks; SQLite locks the whole database instead.
    const ROW_LOCKS: bool;

    /// Begins the transaction of a write of more than one statement.
    fn write(pool: &Pool<Self>) -> impl Future<Output = Result<Transaction<'static, Self>>> + Send;

    /// Begins the transaction of a read of more than one statement: one consistent snapshot.
    fn read(pool: &Pool<Self>) -> impl Future<Output = Result<Transaction<'static, Self>>> + Send;

    /// Where writes run whose every statement is complete on its own (renewing and releasing all of
    /// an agent's leases, taking a group lease): in one transaction, or each statement on its own.
    fn standalone_writes(pool: &Pool<Self>) -> impl Future<Output = Result<Statements<Self>>> + Send;
}

/// Where the statements of one store operation run. Derefs to their connection.
pub enum Statements<DB: Database> {
    /// In one transaction, committed when they have all succeeded.
    Transaction(Transaction<'static, DB>),
    /// Each statement commits as it runs.
    Autocommit(PoolConnection<DB>),
}

impl<DB: Database> Statements<DB> {
    /// Runs `f` on the connection, then commits the transaction if there is one. On an error the
    /// transaction is dropped, which rolls it back.
    async fn run<T>(mut self, f: impl AsyncFnOnce(&mut DB::Connection) -> Result<T>) -> Result<T> {
        let out = f(&mut self).await?;
        if let Self::Transaction(tx) = self {
            tx.commit().await?;
        }
        Ok(out)
    }
}

impl<DB: Database> Deref for Statements<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match self {
            Self::Transaction(tx) => tx,
            Self::Autocommit(conn) => conn,
        }
    }
}

impl<DB: Database> DerefMut for Statements<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            Self::Transaction(tx) => tx,
            Self::Autocommit(conn) => conn,
        }
    }
}

/// The metadata store over a SQL backend: [`SqliteStore`](crate::sqlite::SqliteStore) or
/// [`PostgresStore`](crate::postgres::PostgresStore).
#[derive(Debug)]
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
    /// "Now" for lease expiry; the system clock unless a test injects one.
    clock: Arc<dyn Clock>,
}

/// By hand: a derive would ask for `DB: Clone`, which sqlx's database types are not.
impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self { pool: self.pool.clone(), clock: self.clock.clone() }
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// Closes the pool, waiting for connections to finish (and SQLite to checkpoint the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A pooled connection, for single statements: each commits on its own.
    pub(crate) async fn conn(&self) -> Result<PoolConnection<DB>> {
        Ok(self.pool.acquire().await?)
    }

    /// Runs `f` in a write transaction ([`Backend::write`]).
    async fn write<T>(&self, f: impl AsyncFnOnce(&mut DB::Connection) -> Result<T>) -> Result<T> {
        Statements::Transaction(DB::write(&self.pool).await?).run(f).await
    }

    /// Runs `f` in a read transaction ([`Backend::read`]).
    async fn read<T>(&self, f: impl AsyncFnOnce(&mut DB::Connection) -> Result<T>) -> Result<T> {
        Statements::Transaction(DB::read(&self.pool).await?).run(f).await
    }

    /// Runs `f`, whose every statement is complete on its own, as the backend prefers
    /// ([`Backend::standalone_writes`]).
    async fn standalone_writes<T>(&self, f: impl AsyncFnOnce(&mut DB::Connection) -> Result<T>) -> Result<T> {
        DB::standalone_writes(&self.pool).await?.run(f).await
    }
}

/// Writes `impl` blocks for `SqlStore<DB>` over every [`Backend`] `DB`, under the sqlx bounds the
/// shared queries need (the union of the where-clauses in `queries/`). A macro because Rust cannot
/// name those bounds once: a trait's where-clauses are not implied where the trait is used, so each
/// generic `impl` has to spell them out. Takes `impl SqlStore { .. }` and
/// `impl SomeStore for SqlStore { .. }`, each with its attributes.
macro_rules! for_every_backend {
    (@bounded [$($header:tt)*] $body:tt) => {
        $($header)*
        where
            DB::Arguments: IntoArguments<DB>,
            for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
            for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
            for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
            for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
            for<'q> &'q str: Encode<'q, DB> + Type<DB>,
            for<'q> Option<&'q str>: Encode<'q, DB>,
            for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
            for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
            usize: ColumnIndex<DB::Row>,
        $body
    };
    () => {};
    ($(#[$attr:meta])* impl SqlStore $body:tt $($rest:tt)*) => {
        for_every_backend!(@bounded [$(#[$attr])* impl<DB: Backend> SqlStore<DB>] $body);
        for_every_backend!($($rest)*);
    };
    ($(#[$attr:meta])* impl $store:ident for SqlStore $body:tt $($rest:tt)*) => {
        for_every_backend!(@bounded [$(#[$attr])* impl<DB: Backend> $store for SqlStore<DB>] $body);
        for_every_backend!($($rest)*);
    };
}

for_every_backend! {
    impl SqlStore {
        /// Migrates the database behind `pool` and gives it a cluster id unless it has one.
        pub(crate) async fn new(pool: Pool<DB>, clock: Arc<dyn Clock>) -> Result<Self> {
            DB::MIGRATOR
                .run(&pool)
                .await
                .map_err(|e| MetadataError::from(sqlx::Error::from(e)))?;
            let mut conn = pool.acquire().await?;
            Q::<DB>::ensure_cluster_id(&mut conn, &new_cluster_id()).await?;
            drop(conn);
            Ok(Self { pool, clock })
        }
    }

    // In every method, the clock is read once the connection or transaction is held (with SQLite, a
    // write transaction holds the write lock), so time spent waiting for it counts.

    #[async_trait]
    impl TopicStore for SqlStore {
        async fn create_topic(&self, topic: NewTopic) -> Result<Topic> {
            self.write(async |tx| Q::<DB>::create_topic(tx, topic, self.clock.now_ms()).await)
                .await
        }

        async fn delete_topic(&self, name: &str) -> Result<Topic> {
            self.write(async |tx| Q::<DB>::delete_topic(tx, name).await)
                .await
        }

        async fn topic(&self, name: &str) -> Result<Option<Topic>> {
            self.read(async |tx| Q::<DB>::topic(tx, name).await).await
        }

        async fn topic_by_id(&self, id: Uuid) -> Result<Option<Topic>> {
            self.read(async |tx| Q::<DB>::topic_by_id(tx, id).await)
                .await
        }

        async fn topics(&self) -> Result<Vec<Topic>> {
            self.read(async |tx| Q::<DB>::topics(tx).await).await
        }

        async fn create_partitions(&self, name: &str, total: i32) -> Result<Topic> {
            self.write(async |tx| Q::<DB>::create_partitions(tx, name, total).await)
                .await
        }
    }

    #[async_trait]
    impl LeaseStore for SqlStore {
        async fn acquire_lease(
            &self,
            agent: AgentId,
            id: PartitionId,
            ttl: Duration,
        ) -> Result<Option<Lease>> {
            self.write(async |tx| {
                let (now_ms, ttl_ms) = (self.clock.now_ms(), duration_ms(ttl));
                Q::<DB>::acquire_lease(tx, agent, id, now_ms, ttl_ms).await
            })
            .await
        }

        /// Partition and group leases, one statement each.
        async fn renew_leases(&self, agent: AgentId, ttl: Duration) -> Result<Renewed> {
            self.standalone_writes(async |conn| {
                let (now_ms, ttl_ms) = (self.clock.now_ms(), duration_ms(ttl));
                let partitions = Q::<DB>::renew_leases(conn, agent, now_ms, ttl_ms, DB::ROW_LOCKS).await?;
                let groups = Q::<DB>::renew_group_leases(conn, agent, now_ms, ttl_ms).await?;
                Ok(Renewed { partitions, groups })
            })
            .await
        }

        async fn release_leases(&self, agent: AgentId) -> Result<()> {
            self.standalone_writes(async |conn| {
                Q::<DB>::release_leases(conn, agent).await?;
                Q::<DB>::release_group_leases(conn, agent).await
            })
            .await
        }

        async fn release_lease(&self, agent: AgentId, id: PartitionId) -> Result<()> {
            Q::<DB>::release_lease(&mut *self.conn().await?, agent, id).await
        }

        async fn all_partition_states(&self) -> Result<Vec<PartitionState>> {
            Q::<DB>::all_partition_states(&mut *self.conn().await?, self.clock.now_ms()).await
        }

        async fn partition_overview(&self) -> Result<Vec<PartitionOverview>> {
            Q::<DB>::partition_overview(&mut *self.conn().await?, self.clock.now_ms()).await
        }

        async fn partition_states(&self, topic_id: Uuid) -> Result<Vec<PartitionState>> {
            Q::<DB>::partition_states(&mut *self.conn().await?, topic_id, self.clock.now_ms()).await
        }

        async fn partition_state(&self, id: PartitionId) -> Result<Option<PartitionState>> {
            Q::<DB>::partition_state(&mut *self.conn().await?, id, self.clock.now_ms()).await
        }

        async fn epoch_history(&self, id: PartitionId) -> Result<Vec<(i32, i64)>> {
            Q::<DB>::epoch_history(&mut *self.conn().await?, id).await
        }
    }

    #[async_trait]
    impl SegmentStore for SqlStore {
        async fn commit_flush(
            &self,
            agent: AgentId,
            commits: &[PartitionCommit],
        ) -> Result<Vec<CommitOutcome>> {
            self.write(async |tx| {
                Q::<DB>::commit_flush(tx, agent, commits, self.clock.now_ms()).await
            })
            .await
        }

        async fn segments(
            &self,
            id: PartitionId,
            from_offset: i64,
            limit: u32,
        ) -> Result<Vec<SegmentRef>> {
            Q::<DB>::segments(&mut *self.conn().await?, id, from_offset, limit).await
        }

        async fn segment_for_timestamp(
            &self,
            id: PartitionId,
            timestamp: i64,
        ) -> Result<Option<SegmentRef>> {
            Q::<DB>::segment_for_timestamp(&mut *self.conn().await?, id, timestamp).await
        }

        async fn segment_with_max_timestamp(&self, id: PartitionId) -> Result<Option<SegmentRef>> {
            Q::<DB>::segment_with_max_timestamp(&mut *self.conn().await?, id).await
        }
    }

    #[async_trait]
    impl ProducerStore for SqlStore {
        async fn allocate_producer_id(&self) -> Result<i64> {
            Q::<DB>::allocate_producer_id(&mut *self.conn().await?).await
        }

        async fn producer_states(&self, id: PartitionId) -> Result<Vec<ProducerState>> {
            let mut conn = self.conn().await?;
            Q::<DB>::producer_states(&mut conn, id, self.clock.now_ms()).await
        }
    }

    #[async_trait]
    impl ClusterStore for SqlStore {
        async fn cluster_id(&self) -> Result<String> {
            Q::<DB>::cluster_id(&mut *self.conn().await?).await
        }

        fn now_ms(&self) -> i64 {
            self.clock.now_ms()
        }
    }

    #[async_trait]
    impl GroupStore for SqlStore {
        async fn acquire_group_lease(
            &self,
            agent: AgentId,
            group: &str,
            ttl: Duration,
        ) -> Result<Option<i32>> {
            self.standalone_writes(async |conn| {
                let (now_ms, ttl_ms) = (self.clock.now_ms(), duration_ms(ttl));
                Q::<DB>::acquire_group_lease(conn, agent, group, now_ms, ttl_ms).await
            })
            .await
        }

        async fn group_coordinator(&self, group: &str) -> Result<Option<AgentId>> {
            Q::<DB>::group_coordinator(&mut *self.conn().await?, group, self.clock.now_ms()).await
        }

        async fn group_coordinators(&self) -> Result<Vec<(String, AgentId)>> {
            Q::<DB>::group_coordinators(&mut *self.conn().await?, self.clock.now_ms()).await
        }

        async fn save_group(&self, agent: AgentId, epoch: i32, state: &GroupState) -> Result<()> {
            self.write(async |tx| {
                Q::<DB>::save_group(tx, agent, epoch, state, self.clock.now_ms()).await
            })
            .await
        }

        async fn load_group(&self, group: &str) -> Result<Option<GroupState>> {
            self.read(async |tx| Q::<DB>::load_group(tx, group).await)
                .await
        }

        async fn list_groups(&self) -> Result<Vec<GroupState>> {
            self.read(async |tx| Q::<DB>::list_groups(tx).await).await
        }

        async fn delete_group(&self, agent: AgentId, epoch: i32, group: &str) -> Result<()> {
            self.write(async |tx| {
                Q::<DB>::delete_group(tx, agent, epoch, group, self.clock.now_ms()).await
            })
            .await
        }

        async fn commit_offsets(
            &self,
            agent: AgentId,
            epoch: i32,
            group: &str,
            offsets: &[CommittedOffset],
        ) -> Result<()> {
            self.write(async |tx| {
                let now_ms = self.clock.now_ms();
                Q::<DB>::commit_offsets(tx, agent, epoch, group, offsets, now_ms).await
            })
            .await
        }

        async fn fetch_offsets(&self, group: &str) -> Result<Vec<CommittedOffset>> {
            Q::<DB>::fetch_offsets(&mut *self.conn().await?, group).await
        }

        async fn delete_offsets(
            &self,
            agent: AgentId,
            epoch: i32,
            group: &str,
            partitions: &[(String, i32)],
        ) -> Result<()> {
            self.write(async |tx| {
                let now_ms = self.clock.now_ms();
                Q::<DB>::delete_offsets(tx, agent, epoch, group, partitions, now_ms).await
            })
            .await
        }

        async fn expire_offsets(&self, cutoff_ms: i64) -> Result<u64> {
            Q::<DB>::expire_offsets(&mut *self.conn().await?, cutoff_ms).await
        }
    }

    #[async_trait]
    impl AgentStore for SqlStore {
        async fn register_agent(&self, agent: &AgentInfo, ttl: Duration) -> Result<()> {
            let mut conn = self.conn().await?;
            let (now_ms, ttl_ms) = (self.clock.now_ms(), duration_ms(ttl));
            Q::<DB>::register_agent(&mut conn, agent, now_ms, ttl_ms).await
        }

        async fn deregister_agent(&self, id: AgentId) -> Result<()> {
            Q::<DB>::deregister_agent(&mut *self.conn().await?, id).await
        }

        async fn live_agents(&self) -> Result<Vec<AgentInfo>> {
            Q::<DB>::live_agents(&mut *self.conn().await?, self.clock.now_ms()).await
        }

        async fn registration_expiry(&self, id: AgentId) -> Result<Option<i64>> {
            Q::<DB>::registration_expiry(&mut *self.conn().await?, id).await
        }

        async fn referenced_objects(&self) -> Result<Vec<String>> {
            Q::<DB>::referenced_objects(&mut *self.conn().await?).await
        }
    }
}
