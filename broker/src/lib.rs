//! The StreamHouse agent: a stateless Kafka-compatible broker whose data lives in object storage.
//!
//! - `config`: flags and `STREAMHOUSE_*` variables.
//! - `agent`: builds the stores and context, starts every task, shuts down in order.
//! - `server`: the accept loop. `connection`: one client, requests answered in order.
//! - `handlers/`: the route table and one file per Kafka API.
//! - `partition/`: the write path (writer, flusher), the read path (tail cache, reader),
//!   idempotent-producer state, and the table of partitions this agent leads.
//! - `groups/`: consumer-group coordination (the join/sync state machine, coordinator leases).
//! - `http/`: the operator surface: JSON API, health checks, the web console.
//! - `leases`: taking, renewing, balancing and handing off partition leases.
//! - `cluster`: this agent's registration, the live agents, the local lease deadline.
//! - `sweeper`: deletes objects no segment-index row references.
//! - `context`: the cheap-clone `AgentContext` handed to every task.
//! - `error`: `BrokerError`, the one mapping to Kafka error codes.

pub mod agent;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod context;
pub mod error;
pub mod groups;
pub mod handlers;
pub mod http;
pub mod leases;
pub mod partition;
pub mod server;
pub mod sweeper;
