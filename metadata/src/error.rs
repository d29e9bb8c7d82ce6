//! [`MetadataError`]: what went wrong, coarse enough for the broker to decide what to do.
//!
//! The kind is the contract (the broker maps it to a Kafka error code); the message and source are
//! for logs. Following slatedb's error RFC, kinds are prescriptive: only `Unavailable` is worth a
//! retry, and `Fenced` never is.

use std::error::Error as StdError;
use std::fmt;

/// What the caller should make of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataErrorKind {
    /// Another agent holds a newer leader epoch (or our lease lapsed): stop writing, do not retry.
    Fenced,
    /// The topic or partition does not exist.
    NotFound,
    /// The change clashes with existing state (a topic name already taken).
    Conflict,
    /// The store cannot answer right now (pool exhausted, database busy, I/O): retry later.
    Unavailable,
    /// The store holds, or returned, something that breaks an invariant. Not retriable.
    Corrupt,
    /// The request itself is wrong (bad argument, bad URL). Not retriable.
    Invalid,
}

impl fmt::Display for MetadataErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fenced => "fenced",
            Self::NotFound => "not found",
            Self::Conflict => "conflict",
            Self::Unavailable => "unavailable",
            Self::Corrupt => "corrupt",
            Self::Invalid => "invalid",
        })
    }
}

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
#[error("metadata {kind}: {message}")]
pub struct MetadataError {
    kind: MetadataErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl MetadataError {
    pub fn new(kind: MetadataErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None }
    }

    pub fn fenced(message: impl Into<String>) -> Self {
        Self::new(MetadataErrorKind::Fenced, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(MetadataErrorKind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(MetadataErrorKind::Conflict, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(MetadataErrorKind::Unavailable, message)
    }

    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(MetadataErrorKind::Corrupt, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(MetadataErrorKind::Invalid, message)
    }

    /// Attaches the underlying cause, kept for logs (`{:#}` / `source()` chains).
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn kind(&self) -> MetadataErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when the same call may succeed later unchanged.
    pub fn is_retriable(&self) -> bool {
        self.kind == MetadataErrorKind::Unavailable
    }
}

impl From<sqlx::Error> for MetadataError {
    fn from(err: sqlx::Error) -> Self {
        use sqlx::Error as E;
        let kind = match &err {
            E::Database(db) => database_error_kind(db.as_ref()),
            E::RowNotFound => MetadataErrorKind::NotFound,
            E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::BeginFailed => MetadataErrorKind::Unavailable,
            E::Configuration(_) | E::InvalidArgument(_) | E::Encode(_) => MetadataErrorKind::Invalid,
            E::Migrate(m) => match m.as_ref() {
                sqlx::migrate::MigrateError::Execute(inner) | sqlx::migrate::MigrateError::ExecuteMigration(inner, _) => {
                    return Self::new(database_or_corrupt(inner), "running migrations failed").with_source(err);
                }
                // The database was migrated by a different build of this crate: not ours to fix.
                _ => MetadataErrorKind::Corrupt,
            },
            // Decoding failures, unknown types and columns, protocol violations: the store returned
            // something this code does not expect, which retrying will not change.
            _ => MetadataErrorKind::Corrupt,
        };
        Self::new(kind, "database error").with_source(err)
    }
}

fn database_or_corrupt(err: &sqlx::Error) -> MetadataErrorKind {
    match err {
        sqlx::Error::Database(db) => database_error_kind(db.as_ref()),
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => MetadataErrorKind::Unavailable,
        _ => MetadataErrorKind::Corrupt,
    }
}

/// Classifies an error the database itself returned, for both SQLite and PostgreSQL.
fn database_error_kind(err: &dyn sqlx::error::DatabaseError) -> MetadataErrorKind {
    use sqlx::error::ErrorKind as K;
    match err.kind() {
        K::UniqueViolation => return MetadataErrorKind::Conflict,
        // The schema refused the write: the request (or the code building it) is wrong.
        K::ForeignKeyViolation | K::NotNullViolation | K::CheckViolation | K::ExclusionViolation => {
            return MetadataErrorKind::Invalid;
        }
        _ => {}
    }
    let Some(code) = err.code() else {
        return MetadataErrorKind::Corrupt;
    };
    match code.parse::<i32>() {
        // SQLite reports its extended result code; the low byte is the primary code.
        Ok(extended) => match extended & 0xff {
            // BUSY, LOCKED: another connection holds the lock past busy_timeout.
            // IOERR, FULL, CANTOPEN, PROTOCOL: the file system, not the data.
            5 | 6 | 10 | 13 | 14 | 15 => MetadataErrorKind::Unavailable,
            _ => MetadataErrorKind::Corrupt,
        },
        // PostgreSQL reports a SQLSTATE.
        Err(_) => match code.as_ref() {
            // serialization failure, deadlock, lock not available: the transaction may be retried.
            "40001" | "40P01" | "55P03" => MetadataErrorKind::Unavailable,
            // connection exceptions, insufficient resources, operator intervention (shutdown).
            c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57") => MetadataErrorKind::Unavailable,
            // bad credentials, unknown database: the URL is wrong, retrying will not help.
            c if c.starts_with("28") || c == "3D000" => MetadataErrorKind::Invalid,
            // Anything else (syntax, undefined column, data corrupted) will fail again the same way.
            _ => MetadataErrorKind::Corrupt,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeout_is_retriable_and_row_not_found_is_not() {
        let e = MetadataError::from(sqlx::Error::PoolTimedOut);
        assert_eq!(e.kind(), MetadataErrorKind::Unavailable);
        assert!(e.is_retriable());
        let e = MetadataError::from(sqlx::Error::RowNotFound);
        assert_eq!(e.kind(), MetadataErrorKind::NotFound);
        assert!(!e.is_retriable());
    }

    #[test]
    fn display_names_kind_and_message() {
        let e = MetadataError::invalid("partitions must be >= 1");
        assert_eq!(e.to_string(), "metadata invalid: partitions must be >= 1");
        assert!(!MetadataError::fenced("x").is_retriable());
    }
}
