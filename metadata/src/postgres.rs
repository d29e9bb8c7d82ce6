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
//!
//! The store itself is [`SqlStore`], shared with other backends (the SQL in `queries`); this file
//! holds only what PostgreSQL does its own way: connecting, the migrations, and how transactions
//! begin.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::clock::{Clock, ServerClock};
use crate::store::{Backend, SqlStore, Statements};
use crate::{MetadataError, Result};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How often the server's clock is read again (see [`ServerClock`]).
const CLOCK_READ_EVERY: Duration = Duration::from_secs(1);
/// A server clock reading whose round trip took longer is not used (see `follow_server_clock`).
const CLOCK_READ_MAX_RTT: Duration = Duration::from_millis(250);

/// The server's wall clock in ms since the Unix epoch.
async fn read_server_clock(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT").fetch_one(pool).await?)
}

/// How long a caller waits for a pooled connection before giving up as `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Per agent. Statements are short; a flush, renewals, group writes and reads can overlap.
const MAX_CONNECTIONS: u32 = 8;

/// The metadata store in a PostgreSQL database.
pub type PostgresStore = SqlStore<Postgres>;

impl PostgresStore {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]`, also
    /// `postgresql://`) and migrates the database, which must exist.
    pub async fn open(url: &str) -> Result<Self> {
        let pool = connect(url).await?;
        let clock = follow_server_clock(&pool).await?;
        Self::new(pool, clock).await
    }

    /// Like [`open`](Self::open), reading lease time from `clock`.
    pub async fn open_with_clock(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::new(connect(url).await?, clock).await
    }
}

/// A pool of connections to `url`.
async fn connect(url: &str) -> Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| MetadataError::invalid(format!("bad PostgreSQL URL '{}'", crate::redact_url(url))).with_source(e))?
        // Nothing may hold a connection, a lock or a transaction open for long: a statement
        // stuck behind a paused agent's row locks fails (Unavailable, retried) instead of
        // waiting, and the server ends a transaction whose client went quiet mid-way.
        .options([("statement_timeout", "30s"), ("lock_timeout", "10s"), ("idle_in_transaction_session_timeout", "30s")]);
    let pool = PgPoolOptions::new().max_connections(MAX_CONNECTIONS).acquire_timeout(ACQUIRE_TIMEOUT).connect_with(options).await.map_err(
        |e| {
            let err = MetadataError::from(e);
            MetadataError::new(err.kind(), format!("cannot connect to {}", crate::redact_url(url))).with_source(err)
        },
    )?;
    Ok(pool)
}

/// The server's clock, read now and again every [`CLOCK_READ_EVERY`] while a store holds it (the
/// task that reads it holds it weakly and ends with the store).
async fn follow_server_clock(pool: &PgPool) -> Result<Arc<dyn Clock>> {
    let clock = Arc::new(ServerClock::new(read_server_clock(pool).await?, Instant::now()));
    let weak = Arc::downgrade(&clock);
    let pool = pool.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CLOCK_READ_EVERY).await;
            let Some(clock) = weak.upgrade() else { break };
            if pool.is_closed() {
                break;
            }
            let sent = Instant::now();
            if let Ok(ms) = read_server_clock(&pool).await {
                // The reading was true about half way through the round trip, give or take half of
                // it. A long round trip is dropped: if this process was paused (GC, SIGSTOP, a VM
                // freeze) between `sent` and the query, the midpoint guess would put our clock ahead
                // by half the pause, and an agent whose clock runs ahead takes live leases.
                let rtt = sent.elapsed();
                if rtt <= CLOCK_READ_MAX_RTT {
                    clock.set(ms, sent + rtt / 2);
                }
            }
        }
    });
    Ok(clock)
}

impl Backend for Postgres {
    /// sqlx holds an advisory lock while migrating: concurrent first opens migrate once.
    const MIGRATOR: &'static Migrator = &MIGRATOR;
    const ROW_LOCKS: bool = true;

    /// READ COMMITTED: see the module docs for why that is enough.
    async fn write(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
        Ok(pool.begin().await?)
    }

    /// One snapshot for reads of more than one statement.
    async fn read(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
        Ok(pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?)
    }

    /// Autocommit statements, not one transaction: each is complete on its own, and committing
    /// one at once releases its row locks, which a flush of the same agent may be waiting for.
    async fn standalone_writes(pool: &PgPool) -> Result<Statements<Postgres>> {
        Ok(Statements::Autocommit(pool.acquire().await?))
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
            (include_str!("../migrations/sqlite/0001_initial.sql"), include_str!("../migrations/postgres/0001_initial.sql")),
            (include_str!("../migrations/sqlite/0002_groups.sql"), include_str!("../migrations/postgres/0002_groups.sql")),
            (include_str!("../migrations/sqlite/0003_agents.sql"), include_str!("../migrations/postgres/0003_agents.sql")),
            (
                include_str!("../migrations/sqlite/0004_producer_expiry.sql"),
                include_str!("../migrations/postgres/0004_producer_expiry.sql"),
            ),
        ];
        for (sqlite, postgres) in pairs {
            assert_eq!(statements(sqlite), statements(postgres));
        }
        assert_eq!(MIGRATOR.iter().count(), pairs.len());
    }
}
