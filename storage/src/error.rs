//! [`StorageError`]: one error type for every backend, whose [`StorageErrorKind`] tells the caller what to do
//! (retry, give up on this object, or fix the configuration) without exposing backend internals.

use std::error::Error as StdError;
use std::fmt;

/// What a caller should do about a [`StorageError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageErrorKind {
    /// The object does not exist. Not retriable: it was never written or the sweeper deleted it.
    NotFound,
    /// A transient failure (I/O error, throttling, timeout). Retry with backoff.
    Unavailable,
    /// The bytes are not what the format or the segment index promised (bad magic, CRC mismatch, a range past
    /// the end). Retrying reads the same bytes: report it and stop using this object.
    Corrupt,
    /// The request or configuration is wrong (bad URL, bad key). Retrying cannot help: fix the caller.
    Invalid,
}

impl StorageErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::NotFound => "object not found",
            Self::Unavailable => "object store unavailable (retriable)",
            Self::Corrupt => "corrupt object",
            Self::Invalid => "invalid object store request",
        }
    }
}

impl fmt::Display for StorageErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

type Source = Box<dyn StdError + Send + Sync + 'static>;

/// An object store failure. The message names the object and says what to check or do next.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct StorageError {
    /// Public so callers can `match` on it; [`StorageError::kind`] is the same value.
    pub kind: StorageErrorKind,
    message: String,
    #[source]
    source: Option<Source>,
    /// Set only by [`StorageError::already_exists`], so a retry layer can recognise it.
    already_exists: bool,
}

impl StorageError {
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None, already_exists: false }
    }

    /// A `put` found the key already taken (S3 answered 412 to `If-None-Match: *`; a local file exists).
    ///
    /// Kind [`StorageErrorKind::Invalid`]: keys are unique per write (see `paths`), so on a first attempt this
    /// means two writers chose one key, which retrying cannot fix. The one benign case is a retry of the same
    /// put whose earlier attempt landed without our hearing of it; [`crate::retry::RetryingStore`] recognises
    /// that case with [`StorageError::is_already_exists`] and reports success, since the bytes are the same.
    pub fn already_exists(key: &str) -> Self {
        let mut err = Self::invalid(format!(
            "object '{key}' already exists and objects are never overwritten: either an earlier attempt of this \
             put landed (then the object is already written) or two writers chose the same key (a bug)"
        ));
        err.already_exists = true;
        err
    }

    pub fn not_found(key: &str) -> Self {
        Self::new(StorageErrorKind::NotFound, format!("object '{key}' does not exist; it was never written or has been deleted"))
    }

    pub fn unavailable(message: impl Into<String>, source: impl Into<Source>) -> Self {
        Self::new(StorageErrorKind::Unavailable, message).with_source(source)
    }

    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(StorageErrorKind::Corrupt, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StorageErrorKind::Invalid, message)
    }

    /// Attaches the underlying cause, kept for logs (`{:#}` chains or `Error::source`).
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn kind(&self) -> StorageErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// True for the error of [`StorageError::already_exists`]: a `put` found its key already written.
    pub fn is_already_exists(&self) -> bool {
        self.already_exists
    }

    /// True when the same call may succeed later (only [`StorageErrorKind::Unavailable`]).
    pub fn is_retriable(&self) -> bool {
        self.kind == StorageErrorKind::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_and_message_and_keeps_source() {
        let io = std::io::Error::other("disk on fire");
        let err = StorageError::unavailable("writing 'a/b'", io);
        assert!(err.is_retriable());
        assert_eq!(err.to_string(), "object store unavailable (retriable): writing 'a/b'");
        assert_eq!(err.source().map(|s| s.to_string()).as_deref(), Some("disk on fire"));
    }

    #[test]
    fn only_unavailable_is_retriable() {
        assert!(!StorageError::not_found("k").is_retriable());
        assert!(!StorageError::corrupt("bad crc").is_retriable());
        assert!(!StorageError::invalid("bad url").is_retriable());
        assert_eq!(StorageError::not_found("k").kind(), StorageErrorKind::NotFound);
    }

    #[test]
    fn already_exists_is_an_invalid_put_that_a_retry_layer_can_recognise() {
        let err = StorageError::already_exists("segments/1/x.seg");
        assert_eq!(err.kind(), StorageErrorKind::Invalid);
        assert!(!err.is_retriable());
        assert!(err.is_already_exists());
        assert!(!StorageError::invalid("bad url").is_already_exists());
    }
}
