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
    let store = SqliteStore::open_with_clock(dir.path().join("meta.db"), clock.clone())
        .await
        .unwrap();
    Fixture {
        store,
        clock,
        _dir: dir,
    }
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let f = fixture().await;
            scenarios::$name(&f.store, &f.clock).await;
        }
    )*};
}

scenarios!(
    topic_lifecycle,
    grow_partitions,
    delete_topic_removes_partition_data,
    lease_acquire_bumps_epoch_and_excludes_others,
    concurrent_acquire_has_one_winner,
    renew_and_release,
    fenced_commit_leaves_no_trace_while_others_commit,
    expired_lease_is_fenced,
    density_check,
    malformed_commit_writes_nothing,
    producer_state_round_trip,
    producer_ids_are_unique,
    epoch_history_records_start_offsets,
    segment_ranges,
    timestamp_lookups,
    cluster_id_is_kafka_shaped,
    group_lease_bumps_epoch_and_expires,
    concurrent_group_acquire_has_one_winner,
    fenced_group_writes_after_takeover,
    offsets_round_trip,
    save_and_load_group,
    list_groups_includes_offset_only_groups,
    delete_group_removes_state_and_offsets,
    expire_offsets_only_in_memberless_groups,
    renew_and_release_cover_group_leases,
    agent_registration_and_expiry,
    live_agents_are_ordered_by_id,
    referenced_objects_follow_the_segment_index,
    release_lease_gives_up_one_partition,
    all_partition_states_cover_every_topic,
);

#[tokio::test]
async fn data_and_cluster_id_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // Through the URL, as the broker opens it, and into a directory that does not exist yet.
    let url = format!(
        "sqlite://{}",
        dir.path().join("nested/dir/meta.db").display()
    );
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
    let store = SqliteStore::open_with_clock(":memory:", clock.clone())
        .await
        .unwrap();
    scenarios::fenced_commit_leaves_no_trace_while_others_commit(&store, &clock).await;
    let store: Arc<dyn MetadataStore> = streamhouse_metadata::open("sqlite://:memory:")
        .await
        .unwrap();
    scenarios::topic_lifecycle(&*store, &clock).await;
}

#[tokio::test]
async fn bad_urls_are_invalid() {
    for url in [
        "mysql://localhost/x",
        "metadata.db",
        "sqlite://",
        "sqlite://x.db?mode=rwc",
    ] {
        let err = streamhouse_metadata::open(url).await.err().unwrap();
        assert_eq!(err.kind(), MetadataErrorKind::Invalid, "{url}: {err}");
    }
}
