-- StreamHouse metadata schema, version 4, PostgreSQL: idempotent-producer state expires.
--
-- The same statements as migrations/sqlite/0004_producer_expiry.sql (see its comments). Keep the two
-- in step; the queries in src/queries/producers.rs are the same for both.

ALTER TABLE producer_state ADD COLUMN last_write_ms BIGINT NOT NULL DEFAULT 0;
