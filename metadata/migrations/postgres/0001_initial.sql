-- StreamHouse metadata schema, version 1, PostgreSQL.
--
-- The same statements as migrations/sqlite/0001_initial.sql (see its comments): that file is written in
-- the SQL both dialects share. Keep the two in step; the queries in src/queries are the same for both.

-- One row: the cluster id, created at first open and never changed.
CREATE TABLE cluster (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    cluster_id TEXT    NOT NULL
);

CREATE TABLE topics (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    partitions    INTEGER NOT NULL CHECK (partitions >= 1),
    created_at_ms BIGINT  NOT NULL
);

-- Only configs set explicitly at creation; defaults belong to the broker.
CREATE TABLE topic_configs (
    topic_id TEXT NOT NULL REFERENCES topics (id),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (topic_id, key)
);

-- One row per partition: its lease, leader epoch and where its log stands.
-- The lease is live while lease_expires_at_ms > now (now comes from the agent, in ms).
CREATE TABLE partitions (
    topic_id            TEXT    NOT NULL REFERENCES topics (id),
    partition_index     INTEGER NOT NULL CHECK (partition_index >= 0),
    leader_agent        INTEGER NULL,
    leader_epoch        INTEGER NOT NULL DEFAULT 0,
    lease_expires_at_ms BIGINT  NOT NULL DEFAULT 0,
    high_watermark      BIGINT  NOT NULL DEFAULT 0,
    log_start_offset    BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition_index)
);

-- (epoch, first offset written under it), one row per lease acquisition, for OffsetForLeaderEpoch.
CREATE TABLE leader_epochs (
    topic_id        TEXT    NOT NULL,
    partition_index INTEGER NOT NULL,
    epoch           INTEGER NOT NULL,
    start_offset    BIGINT  NOT NULL,
    PRIMARY KEY (topic_id, partition_index, epoch),
    FOREIGN KEY (topic_id, partition_index) REFERENCES partitions (topic_id, partition_index)
);

-- The segment index: one row per contiguous run of a partition's batches inside an object.
-- Runs are dense: each base_offset is the previous run's last_offset + 1.
CREATE TABLE segments (
    topic_id        TEXT    NOT NULL,
    partition_index INTEGER NOT NULL,
    base_offset     BIGINT  NOT NULL,
    last_offset     BIGINT  NOT NULL,
    object_key      TEXT    NOT NULL,
    position        BIGINT  NOT NULL CHECK (position >= 0),
    length          BIGINT  NOT NULL CHECK (length >= 0),
    max_timestamp   BIGINT  NOT NULL,
    PRIMARY KEY (topic_id, partition_index, base_offset),
    FOREIGN KEY (topic_id, partition_index) REFERENCES partitions (topic_id, partition_index),
    CHECK (last_offset >= base_offset)
);

-- Serves ListOffsets by timestamp: "first run whose max timestamp >= T" and "run with the greatest
-- timestamp, earliest on ties"; base_offset is included so both find their run within the index.
CREATE INDEX segments_by_timestamp ON segments (topic_id, partition_index, max_timestamp, base_offset);

-- One row: the next producer id to hand out. Starts at 1000 so ids never look like sentinels (-1, 0).
CREATE TABLE producer_ids (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    next_id BIGINT  NOT NULL
);
INSERT INTO producer_ids (id, next_id) VALUES (1, 1000);

-- Idempotent-producer state per (partition, producer). `batches` holds the last (at most 5) batches,
-- oldest first, as "first_seq,last_seq,base_offset,last_offset" tuples joined by ';' ('' for none).
-- A text column rather than a child table: the batches are only ever read and replaced together with
-- their producer row, so one upsert per producer keeps a flush commit short, and plain text needs
-- neither arrays nor JSON, whose syntax differs between SQLite and PostgreSQL.
CREATE TABLE producer_state (
    topic_id        TEXT    NOT NULL,
    partition_index INTEGER NOT NULL,
    producer_id     BIGINT  NOT NULL,
    producer_epoch  INTEGER NOT NULL,
    batches         TEXT    NOT NULL,
    PRIMARY KEY (topic_id, partition_index, producer_id),
    FOREIGN KEY (topic_id, partition_index) REFERENCES partitions (topic_id, partition_index)
);
