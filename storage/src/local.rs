//! [`LocalStore`]: the `file://DIR` backend. Each key is a file under `DIR` (`a/b/c` is `DIR/a/b/c`).
//!
//! Every filesystem call runs inside `spawn_blocking`, one hop per operation, so async worker threads never wait
//! on the disk. Writes are atomic, durable and never overwrite: a temp file in the target directory, fsync, a
//! hard link to the final name (which fails if that name exists, like S3's `If-None-Match: *`), removal of the
//! temp name, fsync of the directory. Temp files are named `.{name}.{uuid}.tmp`; keys may not have components starting with `.`, so a
//! temp file can never be mistaken for an object, and `list` skips them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{ObjectMeta, ObjectStore, StorageError, validate_key, validate_list_prefix, validate_range};

/// Objects stored as files under one root directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Opens (creating if missing) the directory `dir`.
    ///
    /// This does blocking I/O: call it at startup, or from `spawn_blocking`, not from a hot async path.
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let root = dir.as_ref().to_path_buf();
        if root.as_os_str().is_empty() {
            return Err(StorageError::invalid("object store directory is empty: use file://DIR"));
        }
        fs::create_dir_all(&root).map_err(|e| {
            StorageError::invalid(format!("cannot create object store directory '{}': check the path and its permissions", root.display()))
                .with_source(e)
        })?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError> {
        validate_key(key)?;
        let root = self.root.clone();
        let key = key.to_owned();
        blocking(move || {
            write_atomically(&root, &key, &body).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    StorageError::already_exists(&key).with_source(e)
                } else {
                    unavailable(e, "writing", &key)
                }
            })
        })
        .await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        validate_key(key)?;
        validate_range(key, &range)?;
        let path = self.root.join(key);
        let key = key.to_owned();
        blocking(move || read_range(&path, &key, range)).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        let path = self.root.join(key);
        let key = key.to_owned();
        blocking(move || match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(unavailable(e, "deleting", &key)),
            _ => Ok(()),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        // A prefix may end mid-component ("segments/1" matches "segments/10/..."): walk the last whole directory
        // it names and filter by the full prefix.
        validate_list_prefix(prefix)?;
        let dir = prefix.rsplit_once('/').map_or("", |(dir, _partial)| dir);
        let root = self.root.clone();
        let start = if dir.is_empty() { root.clone() } else { root.join(dir) };
        let prefix = prefix.to_owned();
        blocking(move || {
            let mut out = Vec::new();
            walk(&root, &start, &prefix, &mut out).map_err(|e| unavailable(e, "listing prefix", &prefix))?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }
}

/// Runs filesystem work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, StorageError> + Send + 'static) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError::unavailable("a local object store task panicked or was cancelled; retry", e))?
}

fn unavailable(e: io::Error, doing: &str, key: &str) -> StorageError {
    StorageError::unavailable(format!("{doing} '{key}' on the local disk failed; check free space and permissions, then retry"), e)
}

/// Only a read may report `NotFound`: for a write or a listing a missing path means a broken store, not a
/// missing object.
fn read_error(e: io::Error, doing: &str, key: &str) -> StorageError {
    if e.kind() == io::ErrorKind::NotFound {
        return StorageError::not_found(key).with_source(e);
    }
    unavailable(e, doing, key)
}

fn write_atomically(root: &Path, key: &str, body: &[u8]) -> io::Result<()> {
    let path = root.join(key);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        // Unreachable for a validated key; an error beats a panic all the same.
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "key has no file name"));
    };
    create_dirs_durably(root, dir)?;

    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
        // Unlike rename, a hard link never replaces an existing name: it fails with AlreadyExists instead.
        fs::hard_link(&tmp, &path)
    })();
    // Best effort: a leftover temp file is hidden from `list` and harmless apart from the space it takes.
    let _ = fs::remove_file(&tmp);
    written?;
    // The rename is durable only once the directory entry is.
    sync_dir(dir)
}

/// Creates the directories between `root` and `dir`, fsyncing each parent that gained an entry, so a durable
/// object is never left in a directory that itself vanishes after a crash.
fn create_dirs_durably(root: &Path, dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let relative =
        dir.strip_prefix(root).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "object directory lies outside the store root"))?;
    let mut current = root.to_path_buf();
    for component in relative.components() {
        let parent = current.clone();
        current.push(component);
        match fs::create_dir(&current) {
            Ok(()) => sync_dir(&parent)?,
            // Another put may have created it first; either way it exists now.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn read_range(path: &Path, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
    let mut file = File::open(path).map_err(|e| read_error(e, "opening", key))?;
    let size = file.metadata().map_err(|e| read_error(e, "reading the size of", key))?.len();
    // Checked against the real size before allocating, so a wrong index entry cannot make us allocate wildly.
    if range.end > size {
        return Err(StorageError::corrupt(format!(
            "range {}..{} is past the end of object '{key}' ({size} bytes): the segment index and the object \
             disagree; check the object was written completely",
            range.start, range.end
        )));
    }
    let len = usize::try_from(range.end - range.start)
        .map_err(|_| StorageError::invalid(format!("range {}..{} of '{key}' does not fit in memory", range.start, range.end)))?;
    let mut buf = vec![0; len];
    file.seek(SeekFrom::Start(range.start)).and_then(|_| file.read_exact(&mut buf)).map_err(|e| read_error(e, "reading", key))?;
    Ok(Bytes::from(buf))
}

fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<ObjectMeta>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // A missing directory (nothing written under this prefix yet, or removed mid-walk) holds no objects.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        // Temp files and anything else a key cannot name (non-UTF-8, leading '.') are not objects.
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            walk(root, &path, prefix, out)?;
            continue;
        }
        if !file_type.is_file() {
            continue;
        }
        let Some(key) = key_of(root, &path) else {
            continue;
        };
        if !key.starts_with(prefix) {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            // Deleted (by the sweeper, say) between read_dir and now.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let last_modified_ms = meta.modified()?.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        out.push(ObjectMeta { key, size: meta.len(), last_modified_ms });
    }
    Ok(())
}

fn key_of(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = relative.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

#[cfg(test)]
mod tests {
    //! What only the local backend does; the behaviour every backend shares is in tests/contract.
    use super::*;
    use crate::StorageErrorKind;

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("objects")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn inverted_range_is_invalid() {
        let (_dir, store) = store();
        store.put("k", Bytes::from_static(b"abc")).await.unwrap();
        #[allow(clippy::reversed_empty_ranges)]
        let err = store.get_range("k", 2..1).await.unwrap_err();
        assert_eq!(err.kind(), StorageErrorKind::Invalid);
    }

    #[tokio::test]
    async fn list_skips_temp_files() {
        let (_dir, store) = store();
        store.put("s/a", Bytes::from_static(b"x")).await.unwrap();
        fs::write(store.root().join("s/.a.0123.tmp"), b"partial").unwrap();
        let listed = store.list("s/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "s/a");
    }

    #[tokio::test]
    async fn put_leaves_no_temp_files() {
        let (_dir, store) = store();
        store.put("s/a", Bytes::from_static(b"x")).await.unwrap();
        let names: Vec<_> = fs::read_dir(store.root().join("s")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a"]);
    }

    #[test]
    fn empty_directory_is_invalid() {
        let err = LocalStore::new("").unwrap_err();
        assert_eq!(err.kind(), StorageErrorKind::Invalid);
    }

    #[tokio::test]
    async fn open_by_url_creates_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let store = crate::open(&format!("file://{}", root.display())).await.unwrap();
        store.put("k", Bytes::from_static(b"v")).await.unwrap();
        assert!(root.join("k").is_file());
        let err = crate::open("s4://bucket").await.err().unwrap();
        assert_eq!(err.kind(), StorageErrorKind::Invalid);
    }
}
