//! Consumer groups: the coordinator lease, durable group state and committed offsets.
//!
//! Every write is fenced by the coordinator epoch with [`FENCE`], a no-op conditional UPDATE of the
//! group's lease row run first in the write transaction. Being an UPDATE, it locks that row until the
//! transaction ends: on PostgreSQL a concurrent [`ACQUIRE`] (another agent taking over) waits for the
//! fenced write to commit and only then bumps the epoch, so a write never lands after a takeover. A
//! SELECT would take no lock under READ COMMITTED. On SQLite `BEGIN IMMEDIATE` serializes anyway.
//!
//! A member's `protocols`, a list of (name, metadata), is stored as one binary column: per entry, the
//! name's UTF-8 length as a big-endian u32, the name, the metadata's length as a big-endian u32, the
//! metadata; entries in order, nothing else (the empty list is zero bytes). Example: `[("range",
//! [1, 2])]` is `00 00 00 05 'r' 'a' 'n' 'g' 'e' 00 00 00 02 01 02`.

use std::collections::BTreeMap;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::Queries;
use crate::{AgentId, CommittedOffset, GroupMember, GroupState, MetadataError, Result};

/// `$1` group, `$2` agent, `$3` new expiry, `$4` now. Inserts the first lease (epoch 1) or takes a
/// free, expired or own one, bumping the epoch; returns nothing while another agent holds it live.
/// One statement: on PostgreSQL racing inserts meet on the primary key and the losers re-check the
/// winner's row under its lock, so exactly one agent gets an epoch.
const ACQUIRE: &str = "INSERT INTO group_leases \
     (group_id, coordinator_agent, coordinator_epoch, lease_expires_at_ms) VALUES ($1, $2, 1, $3) \
     ON CONFLICT (group_id) DO UPDATE SET coordinator_agent = excluded.coordinator_agent, \
       coordinator_epoch = group_leases.coordinator_epoch + 1, \
       lease_expires_at_ms = excluded.lease_expires_at_ms \
     WHERE group_leases.coordinator_agent IS NULL OR group_leases.coordinator_agent = $2 \
       OR group_leases.lease_expires_at_ms <= $4 \
     RETURNING coordinator_epoch";
/// `$1` group, `$2` now.
const COORDINATOR: &str = "SELECT coordinator_agent FROM group_leases \
     WHERE group_id = $1 AND coordinator_agent IS NOT NULL AND lease_expires_at_ms > $2";
/// `$1` now.
const COORDINATORS: &str = "SELECT group_id, coordinator_agent FROM group_leases \
     WHERE coordinator_agent IS NOT NULL AND lease_expires_at_ms > $1";
/// `$1` group, `$2` agent, `$3` epoch, `$4` now. Changes nothing but locks the lease row (see above).
const FENCE: &str = "UPDATE group_leases SET coordinator_epoch = coordinator_epoch \
     WHERE group_id = $1 AND coordinator_agent = $2 AND coordinator_epoch = $3 \
       AND lease_expires_at_ms > $4 \
     RETURNING coordinator_epoch";
/// Read only when FENCE refused, to say why.
const LEASE_STATE: &str = "SELECT coordinator_agent, coordinator_epoch, lease_expires_at_ms \
     FROM group_leases WHERE group_id = $1";
/// Like partition leases: also renews a lapsed lease nobody took (its epoch is unchanged).
const RENEW: &str = "UPDATE group_leases SET lease_expires_at_ms = $2 WHERE coordinator_agent = $1 \
     RETURNING group_id";
/// The epoch stays: the next acquisition bumps it.
const RELEASE: &str = "UPDATE group_leases SET coordinator_agent = NULL, lease_expires_at_ms = 0 \
     WHERE coordinator_agent = $1";

const UPSERT_GROUP: &str = "INSERT INTO groups (group_id, protocol_type, protocol, generation, leader) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (group_id) DO UPDATE SET protocol_type = excluded.protocol_type, \
       protocol = excluded.protocol, generation = excluded.generation, leader = excluded.leader";
const DELETE_MEMBERS: &str = "DELETE FROM group_members WHERE group_id = $1";
const INSERT_MEMBER: &str = "INSERT INTO group_members (group_id, member_id, member_index, \
     group_instance_id, client_id, client_host, session_timeout_ms, rebalance_timeout_ms, protocols, \
     assignment) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const SELECT_GROUP: &str = "SELECT group_id, protocol_type, protocol, generation, leader \
     FROM groups WHERE group_id = $1";
const SELECT_ALL_GROUPS: &str = "SELECT group_id, protocol_type, protocol, generation, leader \
     FROM groups ORDER BY group_id";
/// Both member reads share their columns, decoded by [`decode_member`].
const SELECT_MEMBERS: &str = "SELECT group_id, member_id, group_instance_id, client_id, client_host, \
     session_timeout_ms, rebalance_timeout_ms, protocols, assignment FROM group_members \
     WHERE group_id = $1 ORDER BY member_index";
const SELECT_ALL_MEMBERS: &str = "SELECT group_id, member_id, group_instance_id, client_id, \
     client_host, session_timeout_ms, rebalance_timeout_ms, protocols, assignment FROM group_members \
     ORDER BY group_id, member_index";
const OFFSET_GROUPS: &str = "SELECT DISTINCT group_id FROM group_offsets";
/// Children first; each returns a row per deleted row so the caller can tell "nothing there".
const DELETE_GROUP_ROWS: [&str; 3] = [
    "DELETE FROM group_members WHERE group_id = $1 RETURNING group_id",
    "DELETE FROM groups WHERE group_id = $1 RETURNING group_id",
    "DELETE FROM group_offsets WHERE group_id = $1 RETURNING group_id",
];
const UPSERT_OFFSET: &str = "INSERT INTO group_offsets (group_id, topic, partition_index, \
     committed_offset, leader_epoch, metadata, commit_timestamp_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (group_id, topic, partition_index) DO UPDATE SET \
       committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch, \
       metadata = excluded.metadata, commit_timestamp_ms = excluded.commit_timestamp_ms";
const SELECT_OFFSETS: &str = "SELECT topic, partition_index, committed_offset, leader_epoch, metadata, \
     commit_timestamp_ms FROM group_offsets WHERE group_id = $1 ORDER BY topic, partition_index";
const DELETE_OFFSET: &str = "DELETE FROM group_offsets WHERE group_id = $1 AND topic = $2 AND partition_index = $3";
/// `$1` cutoff. A group with members is alive: its offsets stay however old they are.
const EXPIRE_OFFSETS: &str = "DELETE FROM group_offsets WHERE commit_timestamp_ms < $1 \
     AND NOT EXISTS (SELECT 1 FROM group_members WHERE group_members.group_id = group_offsets.group_id) \
     RETURNING group_id";

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
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// One statement; no transaction needed.
    pub(crate) async fn acquire_group_lease(
        conn: &mut DB::Connection,
        agent: AgentId,
        group: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<i32>> {
        let row = sqlx::query(ACQUIRE)
            .bind(group)
            .bind(agent)
            .bind(now_ms.saturating_add(ttl_ms))
            .bind(now_ms)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|row| Ok(row.try_get(0)?)).transpose()
    }

    pub(crate) async fn group_coordinator(conn: &mut DB::Connection, group: &str, now_ms: i64) -> Result<Option<AgentId>> {
        let row = sqlx::query(COORDINATOR).bind(group).bind(now_ms).fetch_optional(&mut *conn).await?;
        row.map(|row| Ok(row.try_get(0)?)).transpose()
    }

    /// Sorted in Rust so both backends agree whatever PostgreSQL's collation.
    pub(crate) async fn group_coordinators(conn: &mut DB::Connection, now_ms: i64) -> Result<Vec<(String, AgentId)>> {
        let rows = sqlx::query(COORDINATORS).bind(now_ms).fetch_all(&mut *conn).await?;
        let mut all = rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect::<Result<Vec<(String, AgentId)>>>()?;
        all.sort_unstable();
        Ok(all)
    }

    /// The groups renewed.
    pub(crate) async fn renew_group_leases(conn: &mut DB::Connection, agent: AgentId, now_ms: i64, ttl_ms: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(RENEW).bind(agent).bind(now_ms.saturating_add(ttl_ms)).fetch_all(&mut *conn).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    pub(crate) async fn release_group_leases(conn: &mut DB::Connection, agent: AgentId) -> Result<()> {
        sqlx::query(RELEASE).bind(agent).execute(&mut *conn).await?;
        Ok(())
    }

    /// Run first inside every fenced write transaction: `Fenced` unless `agent` holds the live
    /// lease of `group` at `epoch`, and then the lease row stays locked until the transaction ends.
    async fn fence_group(conn: &mut DB::Connection, agent: AgentId, epoch: i32, group: &str, now_ms: i64) -> Result<()> {
        let held = sqlx::query(FENCE).bind(group).bind(agent).bind(epoch).bind(now_ms).fetch_optional(&mut *conn).await?;
        if held.is_some() {
            return Ok(());
        }
        let row = sqlx::query(LEASE_STATE).bind(group).fetch_optional(&mut *conn).await?;
        let why = match row {
            None => "nobody ever held its lease".to_string(),
            Some(row) => {
                let holder: Option<i32> = row.try_get(0)?;
                let current: i32 = row.try_get(1)?;
                let expires_at_ms: i64 = row.try_get(2)?;
                format!("lease is held by {holder:?} at epoch {current}, expiring at {expires_at_ms} (now {now_ms})")
            }
        };
        Err(MetadataError::fenced(format!("agent {agent} at coordinator epoch {epoch} no longer coordinates group '{group}': {why}")))
    }

    /// Run inside ONE write transaction: the fence, the group row and its members commit together.
    pub(crate) async fn save_group(conn: &mut DB::Connection, agent: AgentId, epoch: i32, state: &GroupState, now_ms: i64) -> Result<()> {
        let group = state.group_id.as_str();
        if group.is_empty() {
            return Err(MetadataError::invalid("group id must not be empty"));
        }
        let mut members = Vec::with_capacity(state.members.len());
        for member in &state.members {
            members.push(encode_protocols(&member.protocols)?);
        }
        Self::fence_group(conn, agent, epoch, group, now_ms).await?;
        sqlx::query(UPSERT_GROUP)
            .bind(group)
            .bind(state.protocol_type.as_str())
            .bind(state.protocol.as_deref())
            .bind(state.generation)
            .bind(state.leader.as_deref())
            .execute(&mut *conn)
            .await?;
        sqlx::query(DELETE_MEMBERS).bind(group).execute(&mut *conn).await?;
        for (index, (member, protocols)) in state.members.iter().zip(members).enumerate() {
            let index = i32::try_from(index).map_err(|_| MetadataError::invalid(format!("group '{group}' has too many members")))?;
            sqlx::query(INSERT_MEMBER)
                .bind(group)
                .bind(member.member_id.as_str())
                .bind(index)
                .bind(member.group_instance_id.as_deref())
                .bind(member.client_id.as_str())
                .bind(member.client_host.as_str())
                .bind(member.session_timeout_ms)
                .bind(member.rebalance_timeout_ms)
                .bind(protocols)
                .bind(member.assignment.as_slice())
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Two statements: run in a transaction for a consistent view.
    pub(crate) async fn load_group(conn: &mut DB::Connection, group: &str) -> Result<Option<GroupState>> {
        let row = sqlx::query(SELECT_GROUP).bind(group).fetch_optional(&mut *conn).await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut state = decode_group::<DB>(&row)?;
        let rows = sqlx::query(SELECT_MEMBERS).bind(group).fetch_all(&mut *conn).await?;
        state.members = rows.iter().map(|row| decode_member::<DB>(row).map(|(_, member)| member)).collect::<Result<_>>()?;
        Ok(Some(state))
    }

    /// Three statements: run in a transaction for a consistent view. Ordered by group id.
    pub(crate) async fn list_groups(conn: &mut DB::Connection) -> Result<Vec<GroupState>> {
        let mut groups = BTreeMap::new();
        for row in sqlx::query(SELECT_ALL_GROUPS).fetch_all(&mut *conn).await? {
            let state = decode_group::<DB>(&row)?;
            groups.insert(state.group_id.clone(), state);
        }
        for row in sqlx::query(SELECT_ALL_MEMBERS).fetch_all(&mut *conn).await? {
            let (group, member) = decode_member::<DB>(&row)?;
            // Members of a group whose row is gone cannot happen inside one transaction; skip them
            // rather than invent a group.
            if let Some(state) = groups.get_mut(&group) {
                state.members.push(member);
            }
        }
        for row in sqlx::query(OFFSET_GROUPS).fetch_all(&mut *conn).await? {
            let group: String = row.try_get(0)?;
            groups.entry(group.clone()).or_insert_with(|| GroupState { group_id: group, ..GroupState::default() });
        }
        Ok(groups.into_values().collect())
    }

    /// Run inside ONE write transaction. The lease row stays, so the epoch keeps counting up.
    pub(crate) async fn delete_group(conn: &mut DB::Connection, agent: AgentId, epoch: i32, group: &str, now_ms: i64) -> Result<()> {
        Self::fence_group(conn, agent, epoch, group, now_ms).await?;
        let mut deleted = 0;
        for statement in DELETE_GROUP_ROWS {
            deleted += sqlx::query(statement).bind(group).fetch_all(&mut *conn).await?.len();
        }
        if deleted == 0 {
            return Err(MetadataError::not_found(format!("group '{group}' has neither state nor offsets")));
        }
        Ok(())
    }

    /// Run inside ONE write transaction: every offset commits, or none does.
    pub(crate) async fn commit_offsets(
        conn: &mut DB::Connection,
        agent: AgentId,
        epoch: i32,
        group: &str,
        offsets: &[CommittedOffset],
        now_ms: i64,
    ) -> Result<()> {
        Self::fence_group(conn, agent, epoch, group, now_ms).await?;
        for offset in offsets {
            sqlx::query(UPSERT_OFFSET)
                .bind(group)
                .bind(offset.topic.as_str())
                .bind(offset.partition)
                .bind(offset.offset)
                .bind(offset.leader_epoch)
                .bind(offset.metadata.as_deref())
                .bind(offset.commit_timestamp_ms)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Ordered by (topic, partition).
    pub(crate) async fn fetch_offsets(conn: &mut DB::Connection, group: &str) -> Result<Vec<CommittedOffset>> {
        let rows = sqlx::query(SELECT_OFFSETS).bind(group).fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                Ok(CommittedOffset {
                    topic: row.try_get(0)?,
                    partition: row.try_get(1)?,
                    offset: row.try_get(2)?,
                    leader_epoch: row.try_get(3)?,
                    metadata: row.try_get(4)?,
                    commit_timestamp_ms: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Run inside ONE write transaction.
    pub(crate) async fn delete_offsets(
        conn: &mut DB::Connection,
        agent: AgentId,
        epoch: i32,
        group: &str,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<()> {
        Self::fence_group(conn, agent, epoch, group, now_ms).await?;
        for (topic, partition) in partitions {
            sqlx::query(DELETE_OFFSET).bind(group).bind(topic.as_str()).bind(*partition).execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// One statement.
    pub(crate) async fn expire_offsets(conn: &mut DB::Connection, cutoff_ms: i64) -> Result<u64> {
        let rows = sqlx::query(EXPIRE_OFFSETS).bind(cutoff_ms).fetch_all(&mut *conn).await?;
        Ok(rows.len() as u64)
    }
}

fn decode_group<DB>(row: &DB::Row) -> Result<GroupState>
where
    DB: Database,
    for<'q> i32: Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    Ok(GroupState {
        group_id: row.try_get(0)?,
        protocol_type: row.try_get(1)?,
        protocol: row.try_get(2)?,
        generation: row.try_get(3)?,
        leader: row.try_get(4)?,
        members: Vec::new(),
    })
}

/// A row of [`SELECT_MEMBERS`]: (group id, member).
fn decode_member<DB>(row: &DB::Row) -> Result<(String, GroupMember)>
where
    DB: Database,
    for<'q> i32: Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let member = GroupMember {
        member_id: row.try_get(1)?,
        group_instance_id: row.try_get(2)?,
        client_id: row.try_get(3)?,
        client_host: row.try_get(4)?,
        session_timeout_ms: row.try_get(5)?,
        rebalance_timeout_ms: row.try_get(6)?,
        protocols: decode_protocols(&row.try_get::<Vec<u8>, _>(7)?)?,
        assignment: row.try_get(8)?,
    };
    Ok((row.try_get(0)?, member))
}

fn encode_protocols(protocols: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (name, metadata) in protocols {
        for field in [name.as_bytes(), metadata.as_slice()] {
            let len = u32::try_from(field.len()).map_err(|_| MetadataError::invalid(format!("protocol '{name}' is larger than 4 GiB")))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field);
        }
    }
    Ok(out)
}

/// Strict: anything but the exact format is a damaged row.
fn decode_protocols(mut bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let corrupt = || MetadataError::corrupt("bad group member protocols in store");
    let field = |bytes: &mut &[u8]| -> Result<Vec<u8>> {
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| corrupt())?;
        if rest.len() < len {
            return Err(corrupt());
        }
        let (value, rest) = rest.split_at(len);
        *bytes = rest;
        Ok(value.to_vec())
    };
    let mut protocols = Vec::new();
    while !bytes.is_empty() {
        let name = String::from_utf8(field(&mut bytes)?).map_err(|_| corrupt())?;
        let metadata = field(&mut bytes)?;
        protocols.push((name, metadata));
    }
    Ok(protocols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_round_trip() {
        let protocols = vec![("range".to_string(), vec![1, 2]), (String::new(), vec![]), ("cooperative-sticky".to_string(), vec![0; 300])];
        let bytes = encode_protocols(&protocols).unwrap();
        assert_eq!(&bytes[..15], b"\0\0\0\x05range\0\0\0\x02\x01\x02");
        assert_eq!(decode_protocols(&bytes).unwrap(), protocols);
        assert_eq!(encode_protocols(&[]).unwrap(), b"");
        assert_eq!(decode_protocols(b"").unwrap(), vec![]);
    }

    #[test]
    fn damaged_protocols_are_corrupt() {
        for bad in [
            &b"\0\0\0"[..],
            b"\0\0\0\x05rang",
            b"\0\0\0\x05range",
            b"\0\0\0\x05range\0\0\0\x02\x01",
            b"\0\0\0\x01\xff\0\0\0\0",
            b"\0\0\0\x00\0\0\0\x00\0",
        ] {
            let err = decode_protocols(bad).unwrap_err();
            assert_eq!(err.kind(), crate::MetadataErrorKind::Corrupt, "{bad:?}");
        }
    }
}
