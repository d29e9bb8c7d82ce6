-- StreamHouse metadata schema, version 2, PostgreSQL: consumer groups.
--
-- migrations/sqlite/0002_groups.sql with BLOB spelled BYTEA, the one type the two dialects name
-- differently; the queries in src/queries/groups.rs are the same for both.

-- The coordinator lease of each group, like a partition's lease: live while lease_expires_at_ms > now.
-- The row outlives the group (delete_group keeps it) so the epoch never goes backwards.
CREATE TABLE group_leases (
    group_id            TEXT    NOT NULL PRIMARY KEY,
    coordinator_agent   INTEGER NULL,
    coordinator_epoch   INTEGER NOT NULL DEFAULT 0,
    lease_expires_at_ms BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX group_leases_by_agent ON group_leases (coordinator_agent);

-- The durable part of a group: what a new coordinator needs to carry on the current generation.
CREATE TABLE groups (
    group_id      TEXT    NOT NULL PRIMARY KEY,
    protocol_type TEXT    NOT NULL,
    protocol      TEXT    NULL,
    generation    INTEGER NOT NULL,
    leader        TEXT    NULL
);

-- Members of the current generation. member_index keeps the order they were saved in, so a
-- coordinator reads back exactly what it wrote. `protocols` is the member's (name, metadata) list in
-- a length-prefixed binary encoding (see src/queries/groups.rs): like producer_state.batches it is only
-- ever read and replaced with its member row, so a child table would only add statements to every save.
CREATE TABLE group_members (
    group_id             TEXT    NOT NULL,
    member_id            TEXT    NOT NULL,
    member_index         INTEGER NOT NULL,
    group_instance_id    TEXT    NULL,
    client_id            TEXT    NOT NULL,
    client_host          TEXT    NOT NULL,
    session_timeout_ms   INTEGER NOT NULL,
    rebalance_timeout_ms INTEGER NOT NULL,
    protocols            BYTEA   NOT NULL,
    assignment           BYTEA   NOT NULL,
    PRIMARY KEY (group_id, member_id)
);

-- Committed offsets. leader_epoch is -1 when the client sent none.
CREATE TABLE group_offsets (
    group_id            TEXT    NOT NULL,
    topic               TEXT    NOT NULL,
    partition_index     INTEGER NOT NULL,
    committed_offset    BIGINT  NOT NULL,
    leader_epoch        INTEGER NOT NULL,
    metadata            TEXT    NULL,
    commit_timestamp_ms BIGINT  NOT NULL,
    PRIMARY KEY (group_id, topic, partition_index)
);
-- Serves expire_offsets without scanning every group's offsets.
CREATE INDEX group_offsets_by_timestamp ON group_offsets (commit_timestamp_ms);
