//! Agent membership (registration as heartbeat) and the object keys the segment index references.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::Queries;
use crate::{AgentId, AgentInfo, Result};

/// `$1` id, `$2` host, `$3` port, `$4` zone, `$5` group, `$6` expiry. One statement: a first
/// registration inserts, a later one (the heartbeat, or a restart with a new address) replaces
/// every field, the expiry included, so a shorter ttl takes effect at once.
const REGISTER: &str = "INSERT INTO agents (id, host, port, zone, agent_group, expires_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (id) DO UPDATE SET host = excluded.host, port = excluded.port, \
       zone = excluded.zone, agent_group = excluded.agent_group, \
       expires_at_ms = excluded.expires_at_ms";
const DEREGISTER: &str = "DELETE FROM agents WHERE id = $1";
/// `$1` now: live while the registration has not expired, as leases are.
const LIVE: &str = "SELECT id, host, port, zone, agent_group FROM agents \
     WHERE expires_at_ms > $1 ORDER BY id";
const EXPIRY: &str = "SELECT expires_at_ms FROM agents WHERE id = $1";
const REFERENCED_OBJECTS: &str = "SELECT DISTINCT object_key FROM segments";

impl<DB> Queries<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// One statement; no transaction needed.
    pub(crate) async fn register_agent(conn: &mut DB::Connection, agent: &AgentInfo, now_ms: i64, ttl_ms: i64) -> Result<()> {
        sqlx::query(REGISTER)
            .bind(agent.id)
            .bind(agent.host.as_str())
            .bind(agent.port)
            .bind(agent.zone.as_deref())
            .bind(agent.group.as_str())
            .bind(now_ms.saturating_add(ttl_ms))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    pub(crate) async fn deregister_agent(conn: &mut DB::Connection, id: AgentId) -> Result<()> {
        sqlx::query(DEREGISTER).bind(id).execute(&mut *conn).await?;
        Ok(())
    }

    pub(crate) async fn live_agents(conn: &mut DB::Connection, now_ms: i64) -> Result<Vec<AgentInfo>> {
        let rows = sqlx::query(LIVE).bind(now_ms).fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                Ok(AgentInfo {
                    id: row.try_get(0)?,
                    host: row.try_get(1)?,
                    port: row.try_get(2)?,
                    zone: row.try_get(3)?,
                    group: row.try_get(4)?,
                })
            })
            .collect()
    }

    pub(crate) async fn registration_expiry(conn: &mut DB::Connection, id: AgentId) -> Result<Option<i64>> {
        let row = sqlx::query(EXPIRY).bind(id).fetch_optional(&mut *conn).await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Sorted in Rust, not by ORDER BY, so both backends agree on the order whatever PostgreSQL's
    /// collation. A full scan of the segment index: meant for the sweeper, which runs rarely.
    pub(crate) async fn referenced_objects(conn: &mut DB::Connection) -> Result<Vec<String>> {
        let rows = sqlx::query(REFERENCED_OBJECTS).fetch_all(&mut *conn).await?;
        let mut keys = rows.iter().map(|row| Ok(row.try_get(0)?)).collect::<Result<Vec<String>>>()?;
        keys.sort_unstable();
        Ok(keys)
    }
}
