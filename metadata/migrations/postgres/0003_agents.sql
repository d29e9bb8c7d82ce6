-- StreamHouse metadata schema, version 3, PostgreSQL: agent membership.
--
-- The same statements as migrations/sqlite/0003_agents.sql (see its comments). Keep the two in step;
-- the queries in src/queries/agents.rs are the same for both.

CREATE TABLE agents (
    id            INTEGER NOT NULL PRIMARY KEY,
    host          TEXT    NOT NULL,
    port          INTEGER NOT NULL,
    zone          TEXT    NULL,
    agent_group   TEXT    NOT NULL,
    expires_at_ms BIGINT  NOT NULL
);
