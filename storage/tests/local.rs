//! The object store contract (`contract/mod.rs`) against `LocalStore` (`file://`).

mod contract;

use std::sync::Arc;

use streamhouse_storage::ObjectStore;
use streamhouse_storage::local::LocalStore;

fn store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("objects")).unwrap();
    (dir, Arc::new(store))
}

#[tokio::test]
async fn put_then_get_ranges() {
    let (_dir, store) = store();
    contract::put_then_get_ranges(store.as_ref()).await;
}

#[tokio::test]
async fn missing_object_is_not_found() {
    let (_dir, store) = store();
    contract::missing_object_is_not_found(store.as_ref()).await;
}

#[tokio::test]
async fn range_past_end_is_corrupt() {
    let (_dir, store) = store();
    contract::range_past_end_is_corrupt(store.as_ref()).await;
}

#[tokio::test]
async fn delete_is_idempotent() {
    let (_dir, store) = store();
    contract::delete_is_idempotent(store.as_ref()).await;
}

#[tokio::test]
async fn put_never_overwrites() {
    let (_dir, store) = store();
    contract::put_never_overwrites(store.as_ref()).await;
}

#[tokio::test]
async fn list_filters_by_prefix() {
    let (_dir, store) = store();
    contract::list_filters_by_prefix(store.as_ref()).await;
}

#[tokio::test]
async fn list_returns_every_object() {
    let (_dir, store) = store();
    contract::list_returns_every_object(store.as_ref(), 7).await;
}

#[tokio::test]
async fn bad_keys_are_invalid() {
    let (_dir, store) = store();
    contract::bad_keys_are_invalid(store.as_ref()).await;
}

#[tokio::test]
async fn retried_put_that_landed_succeeds() {
    let (_dir, store) = store();
    contract::retried_put_that_landed_succeeds(store).await;
}
