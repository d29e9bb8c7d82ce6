//! Object storage for StreamHouse.
//!
//! Segment objects are immutable: written once by a flush, read by ranged GETs, deleted only by the
//! sweeper. Nothing here knows the Kafka protocol; callers hand in opaque record-batch bytes.
//!
//! - [`ObjectStore`]: the trait every backend implements (`put`, `get_range`, `delete`, `list`).
//! - [`open`]: builds the store a URL names, with its wrappers.
//! - `local`: the `file://DIR` backend, the embedded default.
//! - `s3`: the `s3://BUCKET/PREFIX` backend, for AWS S3 and S3 API servers (MinIO, moto) via `aws-sdk-s3`.
//! - `retry`: a wrapper that retries [`StorageErrorKind::Unavailable`] failures with jittered backoff; it, not
//!   the SDK, owns the retry policy of remote backends.
//! - `cache`: a byte-range LRU wrapper, itself an [`ObjectStore`].
//! - `paths`: the only code that knows the object key layout.
//! - `segment`: one object holding many partitions' batches plus an index footer (format in `FORMAT.md`).
//! - `error`: [`StorageError`] with a kind that tells the caller whether to retry.
//!
//! Wrappers stack, each implementing [`ObjectStore`] (as slatedb does): the broker builds
//! `CachedStore(RetryingStore(S3Store))` for `s3://` and `CachedStore(LocalStore)` for `file://`.

pub mod cache;
pub mod error;
pub mod faults;
pub mod local;
pub mod paths;
pub mod retry;
pub mod s3;
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
///
/// Every backend checks keys the same way: non-empty `/`-separated components, none empty or starting with
/// `.`; anything else is an error of kind `Invalid`.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Writes a whole object. Durable when this returns `Ok`. A key is never written twice: a put to a key that
    /// exists fails with [`StorageError::already_exists`] and leaves the object as it was.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError>;
    /// Reads `range` (end exclusive) of an object; a range past the end is an error of kind `Corrupt`.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError>;
    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Lists the objects whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError>;
}

/// Opens the backend named by the URL scheme:
///
/// - `file://DIR`: a [`local::LocalStore`] (no retry wrapper: local I/O errors are not worth retrying blindly).
/// - `s3://BUCKET` or `s3://BUCKET/PREFIX`: an [`s3::S3Store`] inside a [`retry::RetryingStore`]. Endpoint,
///   region and credentials come from the usual AWS environment; see [`s3::S3Settings::from_env`].
///
/// Async because loading the AWS configuration is. It makes no network call: a wrong bucket or bad
/// credentials surface on the first request, as errors of kind `Invalid` that say what to check.
pub async fn open(url: &str) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match url.split_once("://") {
        Some(("file", dir)) => Ok(Arc::new(local::LocalStore::new(dir)?)),
        Some(("s3", _)) => {
            let store: Arc<dyn ObjectStore> = Arc::new(s3::S3Store::new(url).await?);
            Ok(Arc::new(retry::RetryingStore::new(store)))
        }
        _ => Err(StorageError::invalid(format!("unsupported object store URL '{url}': use file://DIR or s3://BUCKET/PREFIX"))),
    }
}

/// Rejects keys that could escape a local root or collide with its temp files: empty, absolute, `..`, empty
/// components (`a//b`, trailing `/`), or any component starting with `.`. Applied by every backend, so a key
/// that works on one works on all.
pub(crate) fn validate_key(key: &str) -> Result<(), StorageError> {
    let bad = key.is_empty() || key.contains('\0') || key.split('/').any(|c| c.is_empty() || c.starts_with('.'));
    if bad {
        return Err(StorageError::invalid(format!(
            "bad object key '{key}': use non-empty '/'-separated components, none starting with '.'"
        )));
    }
    Ok(())
}

/// Rejects a range whose start is past its end.
pub(crate) fn validate_range(key: &str, range: &Range<u64>) -> Result<(), StorageError> {
    if range.start > range.end {
        return Err(StorageError::invalid(format!(
            "inverted range {}..{} for object '{key}': start must not exceed end",
            range.start, range.end
        )));
    }
    Ok(())
}

/// Checks the directory part of a `list` prefix: everything up to its last `/` must be a valid key (a prefix
/// may end mid-component, so the part after it may be anything, even empty).
pub(crate) fn validate_list_prefix(prefix: &str) -> Result<(), StorageError> {
    match prefix.rsplit_once('/') {
        Some((dir, _partial)) => validate_key(dir),
        None => Ok(()),
    }
}
