//! The SQL both backends share, one file per concern, written once over any sqlx `Database`.
//!
//! Every statement uses `$N` placeholders (sqlx's SQLite driver reads `$N` as "parameter N", as
//! PostgreSQL does) and only syntax both dialects accept: `ON CONFLICT ... DO UPDATE`, `RETURNING`.
//! Functions take a `&mut DB::Connection`; `store` decides the transaction around them, begun the
//! backend's way (SQLite begins writes with `BEGIN IMMEDIATE`), so the invariants (fencing, dense
//! offsets, epoch bumps) live here once for every backend.
//!
//! Rust cannot name the needed sqlx bounds once as a trait alias (where-clauses on a trait are not
//! implied at use sites), so each file's `impl` repeats the same short where-clause (and `store`'s
//! `for_every_backend!` their union).
//!
//! - `topics`: topics, their configs and partition rows.
//! - `leases`: lease acquisition, renewal, release (all or one), partition state and the epoch history.
//! - `segments`: the fenced flush commit and the segment index reads.
//! - `producers`: producer ids and idempotent-producer state (with its text encoding and its expiry).
//! - `cluster`: the cluster id.
//! - `groups`: consumer-group coordinator leases, group state and committed offsets.
//! - `agents`: agent registration (the heartbeat), live agents, and the objects the index references.

mod agents;
mod cluster;
mod groups;
mod leases;
mod producers;
mod segments;
mod topics;

use std::marker::PhantomData;

use uuid::Uuid;

use crate::{MetadataError, Result};

pub(crate) use cluster::new_cluster_id;

/// The shared queries for database `DB`, as associated functions: `Queries::<Sqlite>::topic(..)`.
pub(crate) struct Queries<DB>(PhantomData<fn() -> DB>);

/// How a uuid is stored: lowercase hyphenated text, the form PostgreSQL's `uuid::text` also prints.
fn uuid_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| MetadataError::corrupt(format!("bad uuid '{text}' in store")).with_source(e))
}

/// A byte position or length on its way into a BIGINT column.
fn u64_to_i64(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value).map_err(|_| MetadataError::invalid(format!("{what} {value} does not fit a BIGINT")))
}

/// A BIGINT column read back as a byte position or length: negative means the row is damaged.
fn i64_to_u64(value: i64, what: &str) -> Result<u64> {
    u64::try_from(value).map_err(|_| MetadataError::corrupt(format!("negative {what} {value} in store")))
}
