//! Object storage for StreamHouse.
//!
//! Segment objects are immutable: written once by a flush, read by ranged GETs, deleted only by the
//! sweeper. Nothing here knows the Kafka protocol; callers hand in opaque record-batch bytes.
//!
//! - [`ObjectStore`]: the trait every backend implements (`put`, `get_range`, `delete`, `list`).
//! - `local`: the `file://DIR` backend, the embedded default.
//! - `paths`: the only code that knows the object key layout.
//! - `segment`: one object holding many partitions' batches plus an index footer (format in `FORMAT.md`).
//! - `cache`: a byte-range LRU wrapper, itself an [`ObjectStore`].
//! - `error`: [`StorageError`] with a kind that tells the caller whether to retry.

pub mod cache;
pub mod error;
pub mod local;
pub mod paths;
pub mod segment;

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub use error::{StorageError, StorageErrorKind};

/// One object as listed by [`ObjectStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Last modification, in milliseconds since the Unix epoch (the sweeper's grace period uses it).
    pub last_modified_ms: i64,
}

/// A store of immutable objects addressed by `/`-separated keys.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Writes a whole object. Durable when this returns `Ok`; a key is never written twice.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError>;
    /// Reads `range` (end exclusive) of an object; a range past the end is an error of kind `Corrupt`.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError>;
    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Lists the objects whose key starts with `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError>;
}

/// Opens the backend named by the URL scheme: `file://DIR` today.
pub fn open(url: &str) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match url.split_once("://") {
        Some(("file", dir)) => Ok(Arc::new(local::LocalStore::new(dir)?)),
        _ => Err(StorageError::invalid(format!(
            "unsupported object store URL '{url}': use file://DIR"
        ))),
    }
}
