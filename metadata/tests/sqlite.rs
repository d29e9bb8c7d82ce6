//! Runs the backend-independent scenarios against SQLite files in temporary directories.

mod scenarios;

use std::sync::Arc;

use streamhouse_metadata::sqlite::SqliteStore;
use streamhouse_metadata::{ManualClock, MetadataErrorKind, MetadataStore};
use tempfile::TempDir;

struct Fixture {
    store: SqliteStore,
    clock: Arc<ManualClock>,
    // Dropped last: removes the database file.
    _dir: TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(scenarios::START_MS));
    let store = SqliteStore::open_with_clock(dir.path().join("meta.db"), clock.clone()).await.unwrap();
    Fixture { store, clock, _dir: dir }
}

/// Runs `scenario` on a fresh store in a temporary directory.
async fn run(scenario: impl AsyncFnOnce(&dyn MetadataStore, &ManualClock)) {
    let f = fixture().await;
    scenario(&f.store, &f.clock).await;
}

scenarios::scenario_tests!(run);

#[tokio::test]
async fn data_and_cluster_id_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // Through the URL, as the broker opens it, and into a directory that does not exist yet.
    let url = format!("sqlite://{}", dir.path().join("nested/dir/meta.db").display());
    let store = streamhouse_metadata::open(&url).await.unwrap();
    let sample = scenarios::write_sample(&*store).await;
    drop(store);
    let store = streamhouse_metadata::open(&url).await.unwrap();
    scenarios::check_sample(&*store, &sample).await;
    drop(store);
    // Twice: the second open must not re-run migrations or regenerate the cluster id.
    let store = streamhouse_metadata::open(&url).await.unwrap();
    scenarios::check_sample(&*store, &sample).await;
}

#[tokio::test]
async fn in_memory_store_works() {
    let clock = Arc::new(ManualClock::new(scenarios::START_MS));
    let store = SqliteStore::open_with_clock(":memory:", clock.clone()).await.unwrap();
    scenarios::fenced_commit_leaves_no_trace_while_others_commit(&store, &clock).await;
    let store: Arc<dyn MetadataStore> = streamhouse_metadata::open("sqlite://:memory:").await.unwrap();
    scenarios::topic_lifecycle(&*store, &clock).await;
}

#[tokio::test]
async fn bad_urls_are_invalid() {
    for url in ["mysql://localhost/x", "metadata.db", "sqlite://", "sqlite://x.db?mode=rwc"] {
        let err = streamhouse_metadata::open(url).await.err().unwrap();
        assert_eq!(err.kind(), MetadataErrorKind::Invalid, "{url}: {err}");
    }
}
