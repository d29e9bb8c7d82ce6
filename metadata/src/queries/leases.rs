//! Partition leases and leader epochs.
//!
//! A lease is live while `lease_expires_at_ms > now`; `now` is passed in from the agent's clock.
//! Taking a lease is one conditional UPDATE, so two agents racing for a partition cannot both win:
//! on SQLite the write lock serializes them, on PostgreSQL the row lock does and the loser's WHERE
//! is re-evaluated against the winner's row.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};
use uuid::Uuid;

use super::{Queries, parse_uuid, uuid_text};
use crate::{AgentId, Lease, MetadataError, PartitionId, PartitionOverview, PartitionState, Result};

/// `$1` agent, `$2` new expiry, `$3`/`$4` partition, `$5` now. Re-acquiring one's own lease also
/// bumps the epoch: the caller is starting a new leadership and must fence its older self.
const ACQUIRE: &str = "UPDATE partitions \
     SET leader_agent = $1, leader_epoch = leader_epoch + 1, lease_expires_at_ms = $2 \
     WHERE topic_id = $3 AND partition_index = $4 \
       AND (leader_agent IS NULL OR leader_agent = $1 OR lease_expires_at_ms <= $5) \
     RETURNING leader_epoch, high_watermark, log_start_offset";
const EXISTS: &str = "SELECT partition_index FROM partitions WHERE topic_id = $1 AND partition_index = $2";
const INSERT_EPOCH: &str = "INSERT INTO leader_epochs (topic_id, partition_index, epoch, start_offset) VALUES ($1, $2, $3, $4)";
/// Also renews a lease that lapsed but that nobody took: the epoch is unchanged, so the agent's
/// commits stay valid, and had anyone taken it, `leader_agent` would no longer be this agent.
const RENEW: &str = "UPDATE partitions SET lease_expires_at_ms = $2 WHERE leader_agent = $1 RETURNING partition_index";
/// RENEW for backends with row locks: the rows are locked in (topic, partition) order, the order
/// flush commits lock them in, so a renewal and a flush of the same agent cannot deadlock.
const RENEW_IN_LOCK_ORDER: &str = "UPDATE partitions SET lease_expires_at_ms = $2 WHERE (topic_id, partition_index) IN \
     (SELECT topic_id, partition_index FROM partitions WHERE leader_agent = $1 \
     ORDER BY topic_id, partition_index FOR UPDATE) RETURNING partition_index";
/// The epoch stays: the next acquisition bumps it, which fences anything still in flight.
const RELEASE: &str = "UPDATE partitions SET leader_agent = NULL, lease_expires_at_ms = 0 WHERE leader_agent = $1";
/// `$1` agent, `$2`/`$3` partition: like RELEASE, for one partition; matches nothing unless `$1`
/// holds it.
const RELEASE_ONE: &str = "UPDATE partitions SET leader_agent = NULL, lease_expires_at_ms = 0 \
     WHERE topic_id = $2 AND partition_index = $3 AND leader_agent = $1";
/// `$1` is now: an expired lease reports no leader.
const STATES_OF_TOPIC: &str = "SELECT partition_index, \
     CASE WHEN lease_expires_at_ms > $1 THEN leader_agent ELSE NULL END, \
     leader_epoch, high_watermark, log_start_offset FROM partitions \
     WHERE topic_id = $2 ORDER BY partition_index";
/// Like STATES_OF_TOPIC for every topic, with the topic id last (column 5).
const STATES_OF_ALL: &str = "SELECT partition_index, \
     CASE WHEN lease_expires_at_ms > $1 THEN leader_agent ELSE NULL END, \
     leader_epoch, high_watermark, log_start_offset, topic_id FROM partitions \
     ORDER BY topic_id, partition_index";
/// STATES_OF_ALL with the lease expiry (column 6) and the bytes indexed (column 7). PostgreSQL's SUM
/// of a BIGINT is a NUMERIC, hence the cast.
const OVERVIEW: &str = "SELECT p.partition_index, \
     CASE WHEN p.lease_expires_at_ms > $1 THEN p.leader_agent ELSE NULL END, \
     p.leader_epoch, p.high_watermark, p.log_start_offset, p.topic_id, p.lease_expires_at_ms, \
     CAST(COALESCE((SELECT SUM(s.length) FROM segments s \
       WHERE s.topic_id = p.topic_id AND s.partition_index = p.partition_index), 0) AS BIGINT) \
     FROM partitions p ORDER BY p.topic_id, p.partition_index";
const STATE_OF_PARTITION: &str = "SELECT partition_index, \
     CASE WHEN lease_expires_at_ms > $1 THEN leader_agent ELSE NULL END, \
     leader_epoch, high_watermark, log_start_offset FROM partitions \
     WHERE topic_id = $2 AND partition_index = $3";
const EPOCHS: &str = "SELECT epoch, start_offset FROM leader_epochs \
     WHERE topic_id = $1 AND partition_index = $2 ORDER BY epoch";

impl<DB> Queries<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Run inside a write transaction: the epoch bump and its history row commit together.
    pub(crate) async fn acquire_lease(
        conn: &mut DB::Connection,
        agent: AgentId,
        id: PartitionId,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<Lease>> {
        let topic_id = uuid_text(id.topic_id);
        let row = sqlx::query(ACQUIRE)
            .bind(agent)
            .bind(now_ms.saturating_add(ttl_ms))
            .bind(topic_id.as_str())
            .bind(id.partition)
            .bind(now_ms)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else {
            let exists = sqlx::query(EXISTS).bind(topic_id.as_str()).bind(id.partition).fetch_optional(&mut *conn).await?;
            return match exists {
                Some(_) => Ok(None),
                None => Err(MetadataError::not_found(format!("partition {id:?} does not exist"))),
            };
        };
        let lease = Lease { id, leader_epoch: row.try_get(0)?, high_watermark: row.try_get(1)?, log_start_offset: row.try_get(2)? };
        // The new epoch starts at the high watermark: that is the first offset it will write.
        sqlx::query(INSERT_EPOCH)
            .bind(topic_id.as_str())
            .bind(id.partition)
            .bind(lease.leader_epoch)
            .bind(lease.high_watermark)
            .execute(&mut *conn)
            .await?;
        Ok(Some(lease))
    }

    pub(crate) async fn renew_leases(conn: &mut DB::Connection, agent: AgentId, now_ms: i64, ttl_ms: i64, row_locks: bool) -> Result<u64> {
        let rows = sqlx::query(if row_locks { RENEW_IN_LOCK_ORDER } else { RENEW })
            .bind(agent)
            .bind(now_ms.saturating_add(ttl_ms))
            .fetch_all(&mut *conn)
            .await?;
        Ok(rows.len() as u64)
    }

    pub(crate) async fn release_leases(conn: &mut DB::Connection, agent: AgentId) -> Result<()> {
        sqlx::query(RELEASE).bind(agent).execute(&mut *conn).await?;
        Ok(())
    }

    /// One statement; no transaction needed.
    pub(crate) async fn release_lease(conn: &mut DB::Connection, agent: AgentId, id: PartitionId) -> Result<()> {
        sqlx::query(RELEASE_ONE).bind(agent).bind(uuid_text(id.topic_id)).bind(id.partition).execute(&mut *conn).await?;
        Ok(())
    }

    /// Ordered by partition id. The SQL orders by the uuid text, which is the uuid's byte order in
    /// SQLite; the sort makes that hold under any PostgreSQL collation too (it is cheap on sorted input).
    pub(crate) async fn all_partition_states(conn: &mut DB::Connection, now_ms: i64) -> Result<Vec<PartitionState>> {
        let rows = sqlx::query(STATES_OF_ALL).bind(now_ms).fetch_all(&mut *conn).await?;
        let mut states = rows
            .iter()
            .map(|row| {
                let topic_id = parse_uuid(&row.try_get::<String, _>(5)?)?;
                decode_state::<DB>(row, topic_id)
            })
            .collect::<Result<Vec<_>>>()?;
        states.sort_by_key(|state| state.id);
        Ok(states)
    }

    pub(crate) async fn partition_overview(conn: &mut DB::Connection, now_ms: i64) -> Result<Vec<PartitionOverview>> {
        let rows = sqlx::query(OVERVIEW).bind(now_ms).fetch_all(&mut *conn).await?;
        let mut all = rows
            .iter()
            .map(|row| {
                let topic_id = parse_uuid(&row.try_get::<String, _>(5)?)?;
                Ok(PartitionOverview {
                    state: decode_state::<DB>(row, topic_id)?,
                    lease_expires_ms: row.try_get(6)?,
                    stored_bytes: row.try_get(7)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        all.sort_by_key(|p| p.state.id);
        Ok(all)
    }

    pub(crate) async fn partition_states(conn: &mut DB::Connection, topic_id: Uuid, now_ms: i64) -> Result<Vec<PartitionState>> {
        let rows = sqlx::query(STATES_OF_TOPIC).bind(now_ms).bind(uuid_text(topic_id)).fetch_all(&mut *conn).await?;
        rows.iter().map(|row| decode_state::<DB>(row, topic_id)).collect()
    }

    pub(crate) async fn partition_state(conn: &mut DB::Connection, id: PartitionId, now_ms: i64) -> Result<Option<PartitionState>> {
        let row =
            sqlx::query(STATE_OF_PARTITION).bind(now_ms).bind(uuid_text(id.topic_id)).bind(id.partition).fetch_optional(&mut *conn).await?;
        row.as_ref().map(|row| decode_state::<DB>(row, id.topic_id)).transpose()
    }

    pub(crate) async fn epoch_history(conn: &mut DB::Connection, id: PartitionId) -> Result<Vec<(i32, i64)>> {
        let rows = sqlx::query(EPOCHS).bind(uuid_text(id.topic_id)).bind(id.partition).fetch_all(&mut *conn).await?;
        rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
    }
}

fn decode_state<DB>(row: &DB::Row, topic_id: Uuid) -> Result<PartitionState>
where
    DB: Database,
    for<'q> i32: Decode<'q, DB> + Type<DB>,
    for<'q> i64: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    Ok(PartitionState {
        id: PartitionId { topic_id, partition: row.try_get(0)? },
        leader: row.try_get(1)?,
        leader_epoch: row.try_get(2)?,
        high_watermark: row.try_get(3)?,
        log_start_offset: row.try_get(4)?,
    })
}
