//! Topics, their explicit configs, and the partition rows created and removed with them.

use std::collections::BTreeMap;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};
use uuid::Uuid;

use super::{Queries, parse_uuid, uuid_text};
use crate::{MetadataError, NewTopic, Result, Topic};

const SELECT_BY_NAME: &str = "SELECT id, name, partitions FROM topics WHERE name = $1";
const SELECT_BY_ID: &str = "SELECT id, name, partitions FROM topics WHERE id = $1";
const SELECT_ALL: &str = "SELECT id, name, partitions FROM topics ORDER BY name";
const SELECT_CONFIGS: &str = "SELECT key, value FROM topic_configs WHERE topic_id = $1";
const SELECT_ALL_CONFIGS: &str = "SELECT topic_id, key, value FROM topic_configs";
const INSERT_TOPIC: &str = "INSERT INTO topics (id, name, partitions, created_at_ms) VALUES ($1, $2, $3, $4)";
const INSERT_CONFIG: &str = "INSERT INTO topic_configs (topic_id, key, value) VALUES ($1, $2, $3)";
const INSERT_PARTITION: &str = "INSERT INTO partitions (topic_id, partition_index) VALUES ($1, $2)";
const UPDATE_PARTITION_COUNT: &str = "UPDATE topics SET partitions = $2 WHERE id = $1";
/// Children first: the foreign keys do not cascade.
/// Committed offsets go with the topic (they are keyed by its name), so a topic created again under
/// the same name starts without the old topic's positions.
const DELETE_TOPIC: [&str; 7] = [
    "DELETE FROM group_offsets WHERE topic = (SELECT name FROM topics WHERE id = $1)",
    "DELETE FROM producer_state WHERE topic_id = $1",
    "DELETE FROM segments WHERE topic_id = $1",
    "DELETE FROM leader_epochs WHERE topic_id = $1",
    "DELETE FROM partitions WHERE topic_id = $1",
    "DELETE FROM topic_configs WHERE topic_id = $1",
    "DELETE FROM topics WHERE id = $1",
];

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
    /// Run inside a write transaction: the name check and the inserts must not interleave with
    /// another creation (the UNIQUE constraint backs this up as `Conflict`).
    pub(crate) async fn create_topic(conn: &mut DB::Connection, topic: NewTopic, now_ms: i64) -> Result<Topic> {
        if topic.name.is_empty() {
            return Err(MetadataError::invalid("topic name must not be empty"));
        }
        if topic.partitions < 1 {
            return Err(MetadataError::invalid(format!("topic '{}' needs at least 1 partition, got {}", topic.name, topic.partitions)));
        }
        if Self::topic_row(conn, SELECT_BY_NAME, &topic.name).await?.is_some() {
            return Err(MetadataError::conflict(format!("topic '{}' already exists", topic.name)));
        }
        let id = Uuid::new_v4();
        let id_text = uuid_text(id);
        sqlx::query(INSERT_TOPIC)
            .bind(id_text.as_str())
            .bind(topic.name.as_str())
            .bind(topic.partitions)
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
        for (key, value) in &topic.configs {
            sqlx::query(INSERT_CONFIG).bind(id_text.as_str()).bind(key.as_str()).bind(value.as_str()).execute(&mut *conn).await?;
        }
        Self::insert_partitions(conn, &id_text, 0, topic.partitions).await?;
        Ok(Topic { id, name: topic.name, partitions: topic.partitions, configs: topic.configs })
    }

    /// Run inside a write transaction, so the topic disappears whole or not at all.
    pub(crate) async fn delete_topic(conn: &mut DB::Connection, name: &str) -> Result<Topic> {
        let topic = Self::topic(conn, name).await?.ok_or_else(|| MetadataError::not_found(format!("topic '{name}' does not exist")))?;
        let id_text = uuid_text(topic.id);
        for statement in DELETE_TOPIC {
            sqlx::query(statement).bind(id_text.as_str()).execute(&mut *conn).await?;
        }
        Ok(topic)
    }

    pub(crate) async fn topic(conn: &mut DB::Connection, name: &str) -> Result<Option<Topic>> {
        Self::topic_with_configs(conn, SELECT_BY_NAME, name).await
    }

    pub(crate) async fn topic_by_id(conn: &mut DB::Connection, id: Uuid) -> Result<Option<Topic>> {
        Self::topic_with_configs(conn, SELECT_BY_ID, &uuid_text(id)).await
    }

    /// All topics by name. Two statements: run in a transaction for a consistent view.
    pub(crate) async fn topics(conn: &mut DB::Connection) -> Result<Vec<Topic>> {
        let mut configs: BTreeMap<Uuid, BTreeMap<String, String>> = BTreeMap::new();
        for row in sqlx::query(SELECT_ALL_CONFIGS).fetch_all(&mut *conn).await? {
            let topic_id = parse_uuid(&row.try_get::<String, _>(0)?)?;
            configs.entry(topic_id).or_default().insert(row.try_get(1)?, row.try_get(2)?);
        }
        let rows = sqlx::query(SELECT_ALL).fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                let (id, name, partitions) = decode_topic(row)?;
                let configs = configs.remove(&id).unwrap_or_default();
                Ok(Topic { id, name, partitions, configs })
            })
            .collect()
    }

    /// Run inside a write transaction: reads the count, then grows it.
    pub(crate) async fn create_partitions(conn: &mut DB::Connection, name: &str, total: i32) -> Result<Topic> {
        let mut topic = Self::topic(conn, name).await?.ok_or_else(|| MetadataError::not_found(format!("topic '{name}' does not exist")))?;
        if total <= topic.partitions {
            return Err(MetadataError::invalid(format!(
                "topic '{name}' already has {} partitions; the count can only grow, asked for {total}",
                topic.partitions
            )));
        }
        let id_text = uuid_text(topic.id);
        Self::insert_partitions(conn, &id_text, topic.partitions, total).await?;
        sqlx::query(UPDATE_PARTITION_COUNT).bind(id_text.as_str()).bind(total).execute(&mut *conn).await?;
        topic.partitions = total;
        Ok(topic)
    }

    /// Partition rows `from..to`, with the schema defaults: no leader, epoch 0, offsets 0.
    async fn insert_partitions(conn: &mut DB::Connection, topic_id: &str, from: i32, to: i32) -> Result<()> {
        for partition in from..to {
            sqlx::query(INSERT_PARTITION).bind(topic_id).bind(partition).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn topic_with_configs(conn: &mut DB::Connection, select: &'static str, key: &str) -> Result<Option<Topic>> {
        let Some((id, name, partitions)) = Self::topic_row(conn, select, key).await? else {
            return Ok(None);
        };
        let mut configs = BTreeMap::new();
        for row in sqlx::query(SELECT_CONFIGS).bind(uuid_text(id)).fetch_all(&mut *conn).await? {
            configs.insert(row.try_get(0)?, row.try_get(1)?);
        }
        Ok(Some(Topic { id, name, partitions, configs }))
    }

    async fn topic_row(conn: &mut DB::Connection, select: &'static str, key: &str) -> Result<Option<(Uuid, String, i32)>> {
        let row = sqlx::query(select).bind(key).fetch_optional(&mut *conn).await?;
        row.as_ref().map(decode_topic::<DB>).transpose()
    }
}

fn decode_topic<DB>(row: &DB::Row) -> Result<(Uuid, String, i32)>
where
    DB: Database,
    for<'q> i32: Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let id = parse_uuid(&row.try_get::<String, _>(0)?)?;
    Ok((id, row.try_get(1)?, row.try_get(2)?))
}
