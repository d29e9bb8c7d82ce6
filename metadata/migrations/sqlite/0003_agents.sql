-- StreamHouse metadata schema, version 3: agent membership.
--
-- migrations/postgres/0003_agents.sql is this file with the same statements (no type here is named
-- differently by the two dialects); the queries in src/queries/agents.rs are the same for both.

-- One row per agent that has registered. Registration doubles as the heartbeat: each one pushes
-- expires_at_ms to now + ttl (now comes from the agent, in ms), and the agent is live while
-- expires_at_ms > now. An expired row stays until the agent registers again or deregisters.
-- No index on expires_at_ms: the table holds one row per agent (a handful), every heartbeat rewrites
-- the column, and live_agents reads the whole table in primary-key order anyway.
CREATE TABLE agents (
    id            INTEGER NOT NULL PRIMARY KEY,
    host          TEXT    NOT NULL,
    port          INTEGER NOT NULL,
    zone          TEXT    NULL,
    agent_group   TEXT    NOT NULL,
    expires_at_ms BIGINT  NOT NULL
);
