-- StreamHouse metadata schema, version 4: idempotent-producer state expires (Kafka's
-- producer.id.expiration.ms).
--
-- migrations/postgres/0004_producer_expiry.sql is this file with the same statements; the queries in
-- src/queries/producers.rs are the same for both.

-- When the producer last wrote to the partition, in ms by the store's clock: every flush commit that
-- carries the producer's state stamps it, and a commit that prunes the partition deletes the rows
-- whose stamp is older than the expiry. Rows written before this column existed read 0, "unknown":
-- the first prune stamps them with its own time instead of deleting them at once, so a producer
-- retrying across the upgrade keeps its state for one full expiry period.
-- No index on it: a prune runs once per check interval per partition and reads that partition's
-- rows through the primary key, while an index would cost every commit's upserts an index write.
ALTER TABLE producer_state ADD COLUMN last_write_ms BIGINT NOT NULL DEFAULT 0;
