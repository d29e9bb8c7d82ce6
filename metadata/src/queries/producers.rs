//! Producer ids and idempotent-producer state.
//!
//! A producer's recent batches are stored as text in its `producer_state` row (see the migration
//! for why): `first_seq,last_seq,base_offset,last_offset` per batch, oldest first, joined by `;`,
//! and the empty string for none. Example: `0,4,100,104;5,9,105,109`.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{Queries, uuid_text};
use crate::{MetadataError, PartitionId, ProducerBatch, ProducerState, Result};

/// Returns the id handed out (the value before the increment). One statement, so concurrent
/// callers serialize on the row and never see the same id.
const ALLOCATE: &str = "UPDATE producer_ids SET next_id = next_id + 1 WHERE id = 1 RETURNING next_id - 1";
const SELECT_STATES: &str = "SELECT producer_id, producer_epoch, batches, last_write_ms FROM producer_state \
     WHERE topic_id = $1 AND partition_index = $2 ORDER BY producer_id";
/// Replaces the producer's row: the commit carries its whole current state. `$6` is the commit's now.
const UPSERT_STATE: &str = "INSERT INTO producer_state \
     (topic_id, partition_index, producer_id, producer_epoch, batches, last_write_ms) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (topic_id, partition_index, producer_id) \
     DO UPDATE SET producer_epoch = excluded.producer_epoch, batches = excluded.batches, last_write_ms = excluded.last_write_ms";
/// Rows from before last writes were recorded (0, see the migration) start their expiry now.
const STAMP_UNKNOWN: &str = "UPDATE producer_state SET last_write_ms = $3 \
     WHERE topic_id = $1 AND partition_index = $2 AND last_write_ms = 0";
/// `$3` is now minus the expiry: a producer idle for the expiry or longer goes, as in Kafka's
/// `ProducerStateManager.isProducerExpired` (`now - lastTimestamp >= producer.id.expiration.ms`).
const DELETE_EXPIRED: &str = "DELETE FROM producer_state \
     WHERE topic_id = $1 AND partition_index = $2 AND last_write_ms <= $3 RETURNING producer_id";

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
    pub(crate) async fn allocate_producer_id(conn: &mut DB::Connection) -> Result<i64> {
        let row = sqlx::query(ALLOCATE).fetch_optional(&mut *conn).await?;
        let row = row.ok_or_else(|| MetadataError::corrupt("producer_ids has no counter row"))?;
        Ok(row.try_get(0)?)
    }

    /// `now_ms` stands in for the unknown last write of a row older than the column (see the migration).
    pub(crate) async fn producer_states(conn: &mut DB::Connection, id: PartitionId, now_ms: i64) -> Result<Vec<ProducerState>> {
        let rows = sqlx::query(SELECT_STATES).bind(uuid_text(id.topic_id)).bind(id.partition).fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                let producer_id: i64 = row.try_get(0)?;
                let epoch: i32 = row.try_get(1)?;
                let producer_epoch = i16::try_from(epoch)
                    .map_err(|_| MetadataError::corrupt(format!("producer {producer_id}: epoch {epoch} is not an int16")))?;
                let batches = decode_batches(&row.try_get::<String, _>(2)?)?;
                let last_write_ms = match row.try_get(3)? {
                    0 => now_ms,
                    ms => ms,
                };
                Ok(ProducerState { producer_id, producer_epoch, batches, last_write_ms })
            })
            .collect()
    }

    /// Writes the producer's state as last written at `now_ms` (the state's own `last_write_ms` is
    /// not trusted: the store's clock is the one every agent ages states by).
    pub(super) async fn upsert_producer(
        conn: &mut DB::Connection,
        topic_id: &str,
        partition: i32,
        state: &ProducerState,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(UPSERT_STATE)
            .bind(topic_id)
            .bind(partition)
            .bind(state.producer_id)
            .bind(i32::from(state.producer_epoch))
            .bind(encode_batches(&state.batches))
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Deletes the partition's producers that have not written for `idle_ms` or longer; returns how
    /// many. Run inside the fenced flush commit, so only the partition's current leader prunes.
    pub(super) async fn expire_producers(
        conn: &mut DB::Connection,
        topic_id: &str,
        partition: i32,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<u64> {
        sqlx::query(STAMP_UNKNOWN).bind(topic_id).bind(partition).bind(now_ms).execute(&mut *conn).await?;
        let cutoff_ms = now_ms.saturating_sub(idle_ms);
        // Counted from RETURNING: generic sqlx code cannot read a backend's rows-affected count.
        let deleted = sqlx::query(DELETE_EXPIRED).bind(topic_id).bind(partition).bind(cutoff_ms).fetch_all(&mut *conn).await?;
        Ok(deleted.len() as u64)
    }
}

fn encode_batches(batches: &[ProducerBatch]) -> String {
    batches
        .iter()
        .map(|b| format!("{},{},{},{}", b.first_sequence, b.last_sequence, b.base_offset, b.last_offset))
        .collect::<Vec<_>>()
        .join(";")
}

/// Strict: anything but the exact format is a damaged row, not something to guess at.
fn decode_batches(text: &str) -> Result<Vec<ProducerBatch>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let corrupt = || MetadataError::corrupt(format!("bad producer batches '{text}' in store"));
    text.split(';')
        .map(|tuple| {
            let mut fields = tuple.split(',');
            let mut next = || fields.next().ok_or_else(corrupt);
            let batch = ProducerBatch {
                first_sequence: next()?.parse().map_err(|_| corrupt())?,
                last_sequence: next()?.parse().map_err(|_| corrupt())?,
                base_offset: next()?.parse().map_err(|_| corrupt())?,
                last_offset: next()?.parse().map_err(|_| corrupt())?,
            };
            match fields.next() {
                None => Ok(batch),
                Some(_) => Err(corrupt()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip() {
        let batches = vec![
            ProducerBatch { first_sequence: 0, last_sequence: 4, base_offset: 100, last_offset: 104 },
            ProducerBatch { first_sequence: 5, last_sequence: i32::MAX, base_offset: -1, last_offset: i64::MAX },
        ];
        let text = encode_batches(&batches);
        assert_eq!(text, format!("0,4,100,104;5,{},-1,{}", i32::MAX, i64::MAX));
        assert_eq!(decode_batches(&text).unwrap(), batches);
        assert_eq!(decode_batches("").unwrap(), vec![]);
        assert_eq!(encode_batches(&[]), "");
    }

    #[test]
    fn damaged_batches_are_corrupt() {
        for bad in ["1,2,3", "1,2,3,4,5", "1,2,3,x", "1,2,3,4;", ";", "1,2,3,4;;5,6,7,8", " 1,2,3,4"] {
            let err = decode_batches(bad).unwrap_err();
            assert_eq!(err.kind(), crate::MetadataErrorKind::Corrupt, "{bad}");
        }
    }
}
