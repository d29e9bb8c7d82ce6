//! The `sqlite://PATH` backend: one file, embedded, for a single agent.
//!
//! Durability: WAL with `synchronous=FULL`, because the flush commit is what acknowledges a produce
//! and must survive power loss. Concurrency: SQLite has one writer at a time, so every multi-statement
//! write begins with `BEGIN IMMEDIATE`, taking the write lock up front; a deferred transaction that
//! reads and then writes could fail to upgrade its lock (SQLITE_BUSY) instead of waiting for it.
//! Readers never block in WAL mode.
//!
//! The store itself is [`SqlStore`], shared with other backends (the SQL in `queries`); this file
//! holds only what SQLite does its own way: the pool, its pragmas and the `:memory:` case, the
//! migrations, and how transactions begin.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};

use crate::clock::{Clock, SystemClock};
use crate::store::{Backend, SqlStore, Statements};
use crate::{MetadataError, Result};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock before giving up as `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a pooled connection before giving up as `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Enough for concurrent readers; writers queue on SQLite's lock anyway.
const MAX_CONNECTIONS: u32 = 4;

/// The metadata store in a SQLite file.
pub type SqliteStore = SqlStore<Sqlite>;

impl SqliteStore {
    /// Opens the database at `path` (creating it and its directory if missing) and migrates it.
    /// `:memory:` gives a private in-memory database, for tests.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_clock(path, Arc::new(SystemClock::default())).await
    }

    /// Like [`open`](Self::open), reading lease time from `clock`.
    pub async fn open_with_clock(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Self> {
        let path = path.as_ref();
        let pool = if path == Path::new(":memory:") { open_memory().await? } else { open_file(path).await? };
        Self::new(pool, clock).await
    }
}

impl Backend for Sqlite {
    const MIGRATOR: &'static Migrator = &MIGRATOR;
    const ROW_LOCKS: bool = false;

    /// `BEGIN IMMEDIATE`: the write lock up front (see the module docs).
    async fn write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>> {
        Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A deferred transaction: a consistent snapshot for reads of more than one statement.
    async fn read(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>> {
        Ok(pool.begin().await?)
    }

    /// One write transaction for them all: one fsync, not one a statement.
    async fn standalone_writes(pool: &SqlitePool) -> Result<Statements<Sqlite>> {
        Ok(Statements::Transaction(Self::write(pool).await?))
    }
}

async fn open_file(path: &Path) -> Result<SqlitePool> {
    let text = path.to_string_lossy();
    if text.is_empty() || text.contains('?') {
        return Err(MetadataError::invalid(format!("bad SQLite path '{text}': give a file path, without URL parameters")));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| MetadataError::unavailable(format!("cannot create directory {}", dir.display())).with_source(e))?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS).acquire_timeout(ACQUIRE_TIMEOUT).connect_with(options).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The durability settings are the point of this backend: check each pooled connection has them.
    #[tokio::test]
    async fn connections_use_wal_full_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("m.db")).await.unwrap();
        let mut conn = store.conn().await.unwrap();
        let text = |sql: &'static str| sqlx::query_scalar::<_, String>(sql);
        let int = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
        assert_eq!(text("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap(), "wal");
        // synchronous: 2 is FULL.
        assert_eq!(int("PRAGMA synchronous").fetch_one(&mut *conn).await.unwrap(), 2);
        assert_eq!(int("PRAGMA foreign_keys").fetch_one(&mut *conn).await.unwrap(), 1);
        assert_eq!(int("PRAGMA busy_timeout").fetch_one(&mut *conn).await.unwrap(), 5000);
    }
}
