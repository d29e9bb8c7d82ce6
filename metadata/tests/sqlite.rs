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

/// A row written before last writes were recorded (0, as the migration leaves it) is not expired at
/// once: it reads as written now, and the first prune starts its expiry instead of deleting it.
#[tokio::test]
async fn producer_rows_from_before_the_migration_get_a_full_expiry() {
    use std::time::Duration;

    use sqlx::Connection;
    use streamhouse_metadata::{LeaseStore, ProducerStore, SegmentStore};

    let f = fixture().await;
    let topic = scenarios::create(&f.store, "legacy", 1).await;
    let id = scenarios::pid(&topic, 0);
    let epoch = f.store.acquire_lease(1, id, scenarios::TTL).await.unwrap().unwrap().leader_epoch;
    let mut c = scenarios::commit(id, epoch, 0, 0);
    c.producers = vec![scenarios::producer(7, 0, vec![])];
    f.store.commit_flush(1, &[c]).await.unwrap();
    let url = format!("sqlite://{}", f._dir.path().join("meta.db").display());
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE producer_state SET last_write_ms = 0").execute(&mut raw).await.unwrap();
    raw.close().await.unwrap();

    f.clock.advance(Duration::from_secs(5));
    assert_eq!(f.store.producer_states(id).await.unwrap()[0].last_write_ms, scenarios::START_MS + 5000);
    let mut c = scenarios::commit(id, epoch, 1, 1);
    c.expire_idle_producers = Some(Duration::from_secs(1));
    f.store.commit_flush(1, &[c]).await.unwrap();
    assert_eq!(f.store.producer_states(id).await.unwrap()[0].last_write_ms, scenarios::START_MS + 5000, "stamped, not deleted");

    f.clock.advance(Duration::from_secs(1));
    let mut c = scenarios::commit(id, epoch, 2, 2);
    c.expire_idle_producers = Some(Duration::from_secs(1));
    f.store.commit_flush(1, &[c]).await.unwrap();
    assert!(f.store.producer_states(id).await.unwrap().is_empty(), "expired one expiry after the stamp");
}
