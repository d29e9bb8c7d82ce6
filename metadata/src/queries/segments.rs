//! The flush commit (fenced, dense) and the segment index reads behind Fetch and ListOffsets.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};
use tracing::{info, warn};

use super::{Queries, i64_to_u64, u64_to_i64, uuid_text};
use crate::clock::duration_ms;
use crate::{AgentId, CommitOutcome, MetadataError, PartitionCommit, PartitionId, Result, SegmentRef};

/// The fence and the density check in one conditional UPDATE: `$1` new high watermark, `$2`/`$3`
/// partition, `$4` agent, `$5` epoch, `$6` now, `$7` the run's base offset. Being a single statement
/// that re-checks the row it locks, it holds on PostgreSQL's READ COMMITTED too, where a SELECT
/// followed by an UPDATE could interleave with a concurrent lease acquisition.
const ADVANCE: &str = "UPDATE partitions SET high_watermark = $1 \
     WHERE topic_id = $2 AND partition_index = $3 \
       AND leader_agent = $4 AND leader_epoch = $5 AND lease_expires_at_ms > $6 \
       AND high_watermark = $7 \
     RETURNING high_watermark";
/// Read only when ADVANCE refused, to say why in the log.
const FENCE_STATE: &str = "SELECT leader_agent, leader_epoch, lease_expires_at_ms, high_watermark \
     FROM partitions WHERE topic_id = $1 AND partition_index = $2";
const INSERT_SEGMENT: &str = "INSERT INTO segments \
     (topic_id, partition_index, base_offset, last_offset, object_key, position, length, max_timestamp) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// Runs never overlap, so the runs ending at or after `$3` are the one holding `$3` (the last run
/// starting at or before it) and everything after. The lower bound on base_offset lets both
/// backends seek the primary key instead of scanning the partition from offset 0 on every fetch.
const FROM_OFFSET: &str = "SELECT base_offset, last_offset, object_key, position, length, max_timestamp \
     FROM segments WHERE topic_id = $1 AND partition_index = $2 AND last_offset >= $3 \
       AND base_offset >= COALESCE((SELECT base_offset FROM segments \
           WHERE topic_id = $1 AND partition_index = $2 AND base_offset <= $3 \
           ORDER BY base_offset DESC LIMIT 1), $3) \
     ORDER BY base_offset LIMIT $4";
const FOR_TIMESTAMP: &str = "SELECT base_offset, last_offset, object_key, position, length, max_timestamp \
     FROM segments WHERE topic_id = $1 AND partition_index = $2 AND max_timestamp >= $3 \
     ORDER BY base_offset LIMIT 1";
const MAX_TIMESTAMP: &str = "SELECT base_offset, last_offset, object_key, position, length, max_timestamp \
     FROM segments WHERE topic_id = $1 AND partition_index = $2 \
     ORDER BY max_timestamp DESC, base_offset LIMIT 1";

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
    /// Run inside ONE write transaction. A fenced partition writes nothing and does not stop the
    /// others; a malformed commit fails the whole call before anything is written.
    pub(crate) async fn commit_flush(
        conn: &mut DB::Connection,
        agent: AgentId,
        commits: &[PartitionCommit],
        now_ms: i64,
    ) -> Result<Vec<CommitOutcome>> {
        for commit in commits {
            validate(commit)?;
        }
        // Partition rows are locked in (topic, partition) order, the order lease renewals use, so the
        // two cannot deadlock. The sort is stable: a second run of one partition still follows the
        // first and sees the high watermark it set.
        let mut order: Vec<usize> = (0..commits.len()).collect();
        order.sort_by_key(|&i| (uuid_text(commits[i].id.topic_id), commits[i].id.partition));
        let mut outcomes = vec![CommitOutcome::Fenced; commits.len()];
        for i in order {
            outcomes[i] = Self::commit_partition(conn, agent, &commits[i], now_ms).await?;
        }
        Ok(outcomes)
    }

    async fn commit_partition(conn: &mut DB::Connection, agent: AgentId, commit: &PartitionCommit, now_ms: i64) -> Result<CommitOutcome> {
        let topic_id = uuid_text(commit.id.topic_id);
        let segment = &commit.segment;
        let high_watermark = segment.last_offset + 1; // validate() ruled out overflow
        let advanced = sqlx::query(ADVANCE)
            .bind(high_watermark)
            .bind(topic_id.as_str())
            .bind(commit.id.partition)
            .bind(agent)
            .bind(commit.leader_epoch)
            .bind(now_ms)
            .bind(segment.base_offset)
            .fetch_optional(&mut *conn)
            .await?;
        if advanced.is_none() {
            Self::log_fenced(conn, agent, commit, &topic_id, now_ms).await?;
            return Ok(CommitOutcome::Fenced);
        }
        sqlx::query(INSERT_SEGMENT)
            .bind(topic_id.as_str())
            .bind(commit.id.partition)
            .bind(segment.base_offset)
            .bind(segment.last_offset)
            .bind(segment.object_key.as_str())
            .bind(u64_to_i64(segment.position, "segment position")?)
            .bind(u64_to_i64(segment.length, "segment length")?)
            .bind(segment.max_timestamp)
            .execute(&mut *conn)
            .await?;
        // Pruned before the upserts, so the producers this commit writes stay whatever the expiry.
        if let Some(idle) = commit.expire_idle_producers {
            let expired = Self::expire_producers(conn, &topic_id, commit.id.partition, now_ms, duration_ms(idle)).await?;
            if expired > 0 {
                info!(?commit.id, expired, "expired idle producers (producer.id.expiration.ms)");
            }
        }
        for producer in &commit.producers {
            Self::upsert_producer(conn, &topic_id, commit.id.partition, producer, now_ms).await?;
        }
        Ok(CommitOutcome::Committed { high_watermark })
    }

    /// Says why a commit was refused. A lost lease is routine failover; a base offset that is not
    /// the high watermark while we still lead means the agent's offset bookkeeping is wrong.
    async fn log_fenced(conn: &mut DB::Connection, agent: AgentId, commit: &PartitionCommit, topic_id: &str, now_ms: i64) -> Result<()> {
        let row = sqlx::query(FENCE_STATE).bind(topic_id).bind(commit.id.partition).fetch_optional(&mut *conn).await?;
        let Some(row) = row else {
            info!(?commit.id, agent, "commit fenced: partition no longer exists");
            return Ok(());
        };
        let leader: Option<i32> = row.try_get(0)?;
        let epoch: i32 = row.try_get(1)?;
        let expires_at_ms: i64 = row.try_get(2)?;
        let high_watermark: i64 = row.try_get(3)?;
        let leads = leader == Some(agent) && epoch == commit.leader_epoch && expires_at_ms > now_ms;
        if leads {
            warn!(
                ?commit.id, agent, epoch, high_watermark, base_offset = commit.segment.base_offset,
                "commit fenced: run does not start at the high watermark"
            );
        } else {
            info!(
                ?commit.id, agent, commit_epoch = commit.leader_epoch, ?leader, epoch, expires_at_ms, now_ms,
                "commit fenced: lease lost or epoch moved on"
            );
        }
        Ok(())
    }

    pub(crate) async fn segments(conn: &mut DB::Connection, id: PartitionId, from_offset: i64, limit: u32) -> Result<Vec<SegmentRef>> {
        let rows = sqlx::query(FROM_OFFSET)
            .bind(uuid_text(id.topic_id))
            .bind(id.partition)
            .bind(from_offset)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(decode_segment::<DB>).collect()
    }

    pub(crate) async fn segment_for_timestamp(conn: &mut DB::Connection, id: PartitionId, timestamp: i64) -> Result<Option<SegmentRef>> {
        let row =
            sqlx::query(FOR_TIMESTAMP).bind(uuid_text(id.topic_id)).bind(id.partition).bind(timestamp).fetch_optional(&mut *conn).await?;
        row.as_ref().map(decode_segment::<DB>).transpose()
    }

    pub(crate) async fn segment_with_max_timestamp(conn: &mut DB::Connection, id: PartitionId) -> Result<Option<SegmentRef>> {
        let row = sqlx::query(MAX_TIMESTAMP).bind(uuid_text(id.topic_id)).bind(id.partition).fetch_optional(&mut *conn).await?;
        row.as_ref().map(decode_segment::<DB>).transpose()
    }
}

/// Rejects a commit no correct agent would send, before the transaction writes anything.
fn validate(commit: &PartitionCommit) -> Result<()> {
    let s = &commit.segment;
    if s.base_offset < 0 || s.last_offset < s.base_offset || s.last_offset == i64::MAX {
        return Err(MetadataError::invalid(format!("commit for {:?}: bad offset range {}..={}", commit.id, s.base_offset, s.last_offset)));
    }
    u64_to_i64(s.position, "segment position")?;
    u64_to_i64(s.length, "segment length")?;
    Ok(())
}

fn decode_segment<DB>(row: &DB::Row) -> Result<SegmentRef>
where
    DB: Database,
    for<'q> i64: Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    Ok(SegmentRef {
        base_offset: row.try_get(0)?,
        last_offset: row.try_get(1)?,
        object_key: row.try_get(2)?,
        position: i64_to_u64(row.try_get(3)?, "segment position")?,
        length: i64_to_u64(row.try_get(4)?, "segment length")?,
        max_timestamp: row.try_get(5)?,
    })
}
