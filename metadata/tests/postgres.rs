//! Runs the backend-independent scenarios against a real PostgreSQL server, each test in a fresh
//! database of its own (`sh_test_<random>`, dropped when the test passes).
//!
//! The server comes from `STREAMHOUSE_TEST_POSTGRES_URL` (a database to connect to for CREATE
//! DATABASE, e.g. `postgres://postgres@127.0.0.1:55432/postgres`). Start a throwaway one with
//! `source scripts/lib/postgres.sh && start_postgres 55432`. Without the variable these tests fail,
//! unless `STREAMHOUSE_SKIP_POSTGRES=1` says to skip them.

mod scenarios;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use streamhouse_metadata::postgres::PostgresStore;
use streamhouse_metadata::{CommittedOffset, GroupStore, LeaseStore, ManualClock, MetadataErrorKind, MetadataStore, ProducerStore};

const URL_VAR: &str = "STREAMHOUSE_TEST_POSTGRES_URL";
const SKIP_VAR: &str = "STREAMHOUSE_SKIP_POSTGRES";

/// The server URL, or `None` (after saying so) when the tests are to be skipped.
fn server_url() -> Option<String> {
    if let Ok(url) = std::env::var(URL_VAR)
        && !url.is_empty()
    {
        return Some(url);
    }
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        // Straight to stderr, past the test harness's capture, so the skip is seen.
        let _ = writeln!(std::io::stderr(), "postgres test skipped: {URL_VAR} is not set and {SKIP_VAR}=1");
        return None;
    }
    panic!(
        "{URL_VAR} is not set: these tests need a PostgreSQL server. Start a throwaway one with\n\
         \n    source scripts/lib/postgres.sh && start_postgres 55432\n\n\
         (it exports {URL_VAR}=postgres://postgres@127.0.0.1:55432/postgres), or set {SKIP_VAR}=1 \
         to skip them."
    );
}

/// `url` with its database (the path) replaced by `database`, keeping any `?params`.
fn with_database(url: &str, database: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((base, params)) => (base, format!("?{params}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base.split_once("://").expect("a URL with a scheme");
    let authority = rest.split_once('/').map_or(rest, |(authority, _)| authority);
    format!("{scheme}://{authority}/{database}{params}")
}

/// A fresh database on the test server.
struct TestDb {
    server_url: String,
    name: String,
    url: String,
}

impl TestDb {
    async fn create() -> Option<Self> {
        let server_url = server_url()?;
        let name = format!("sh_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin =
            PgConnection::connect(&server_url).await.unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}={server_url}: {e}"));
        admin.execute(AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.unwrap();
        admin.close().await.unwrap();
        let url = with_database(&server_url, &name);
        Some(Self { server_url, name, url })
    }

    /// Drops the database; only reached when the test passed, so a failure leaves it to inspect.
    async fn drop_database(self) {
        let mut admin = PgConnection::connect(&self.server_url).await.unwrap();
        admin.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))).await.unwrap();
        admin.close().await.unwrap();
    }
}

struct Fixture {
    store: PostgresStore,
    clock: Arc<ManualClock>,
    db: TestDb,
}

impl Fixture {
    async fn new() -> Option<Self> {
        let db = TestDb::create().await?;
        let clock = Arc::new(ManualClock::new(scenarios::START_MS));
        let store = PostgresStore::open_with_clock(&db.url, clock.clone()).await.unwrap();
        Some(Self { store, clock, db })
    }

    async fn finish(self) {
        self.store.close().await;
        self.db.drop_database().await;
    }
}

/// Runs `scenario` on a fresh store in a database of its own (dropped if it passes), or skips it.
async fn run(scenario: impl AsyncFnOnce(&dyn MetadataStore, &ManualClock)) {
    let Some(f) = Fixture::new().await else {
        return;
    };
    scenario(&f.store, &f.clock).await;
    f.finish().await;
}

scenarios::scenario_tests!(run);

#[tokio::test]
async fn data_and_cluster_id_survive_reopen() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    // Through the URL, as the broker opens it, under both schemes.
    let store = streamhouse_metadata::open(&db.url).await.unwrap();
    let sample = scenarios::write_sample(&*store).await;
    drop(store);
    let store = streamhouse_metadata::open(&db.url).await.unwrap();
    scenarios::check_sample(&*store, &sample).await;
    drop(store);
    let other_scheme = db.url.replacen("postgres://", "postgresql://", 1);
    let store = streamhouse_metadata::open(&other_scheme).await.unwrap();
    scenarios::check_sample(&*store, &sample).await;
    drop(store);
    db.drop_database().await;
}

/// Agents starting together on an empty database: migrations run once, one cluster id wins.
#[tokio::test]
async fn concurrent_first_opens_agree() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let opens = (0..4).map(|_| PostgresStore::open(&db.url));
    let stores: Vec<_> = scenarios::futures_join_all(opens).await.into_iter().map(Result::unwrap).collect();
    let mut cluster_ids = Vec::new();
    for store in &stores {
        cluster_ids.push(streamhouse_metadata::ClusterStore::cluster_id(store).await.unwrap());
    }
    cluster_ids.dedup();
    assert_eq!(cluster_ids.len(), 1, "{cluster_ids:?}");

    // Producer ids stay unique across agents (separate pools), allocating concurrently.
    let allocations = stores.iter().flat_map(|store| (0..8).map(move |_| store.allocate_producer_id()));
    let mut ids: Vec<_> = scenarios::futures_join_all(allocations).await.into_iter().map(Result::unwrap).collect();
    ids.sort();
    let first = ids[0];
    assert_eq!(ids, (first..first + 32).collect::<Vec<_>>());
    for store in &stores {
        store.close().await;
    }
    db.drop_database().await;
}

/// Two agents (separate pools) race for partition and group leases: exactly one wins each round.
#[tokio::test]
async fn agents_race_for_leases() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let other = PostgresStore::open_with_clock(&f.db.url, f.clock.clone()).await.unwrap();
    let topic = scenarios::create(&f.store, "race", 1).await;
    let id = scenarios::pid(&topic, 0);
    for round in 1..=10 {
        let (a, b) = tokio::join!(f.store.acquire_lease(1, id, scenarios::TTL), other.acquire_lease(2, id, scenarios::TTL),);
        let winners: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(winners[0].leader_epoch, round);
        let (a, b) = tokio::join!(f.store.acquire_group_lease(1, "g", scenarios::TTL), other.acquire_group_lease(2, "g", scenarios::TTL),);
        let winners: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
        assert_eq!(winners, [round], "round {round}");
        f.store.release_leases(1).await.unwrap();
        other.release_leases(2).await.unwrap();
    }
    other.close().await;
    f.finish().await;
}

/// An old coordinator's commit is in flight while another agent takes the group over: the takeover
/// must wait for it (the fence locks the lease row until the commit ends) instead of interleaving.
/// The old commit is large and writes t/0 last; the new coordinator writes t/0 right after taking
/// over. Were the fence a plain read, the old commit would still be running, past its check, and
/// its t/0 would overwrite the new coordinator's.
#[tokio::test]
async fn takeover_waits_for_an_in_flight_fenced_commit() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let other = PostgresStore::open_with_clock(&f.db.url, f.clock.clone()).await.unwrap();
    let offset = |partition, offset| CommittedOffset {
        topic: "t".into(),
        partition,
        offset,
        leader_epoch: -1,
        metadata: None,
        commit_timestamp_ms: 0,
    };
    let old = f.store.acquire_group_lease(1, "g", scenarios::TTL).await.unwrap().unwrap();
    let mut big: Vec<_> = (1..3000).map(|p| offset(p, 7)).collect();
    big.push(offset(0, 7));
    let old_agent = f.store.commit_offsets(1, old, "g", &big);
    let new_agent = async {
        // Let the old commit get past its fence and into its upserts.
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A graceful handoff: the old agent releases, the new one takes the lease at once.
        f.store.release_leases(1).await.unwrap();
        let new = other.acquire_group_lease(2, "g", scenarios::TTL).await.unwrap().expect("released");
        assert_eq!(new, old + 1);
        other.commit_offsets(2, new, "g", &[offset(0, -1)]).await.unwrap();
    };
    let (old_result, ()) = tokio::join!(old_agent, new_agent);
    old_result.unwrap();
    let offsets = f.store.fetch_offsets("g").await.unwrap();
    assert_eq!(offsets.len(), 3000);
    assert_eq!(offsets[0], offset(0, -1), "the old coordinator's write landed after the takeover");
    other.close().await;
    f.finish().await;
}

#[tokio::test]
async fn bad_urls_are_invalid() {
    let Some(server) = server_url() else {
        return;
    };
    let missing_db = with_database(&server, "sh_test_does_not_exist");
    for url in [missing_db.as_str(), "postgres://127.0.0.1:notaport/x"] {
        let err = streamhouse_metadata::open(url).await.err().unwrap();
        assert_eq!(err.kind(), MetadataErrorKind::Invalid, "{url}: {err:?}");
    }
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(with_database("postgres://postgres@127.0.0.1:55432/postgres", "x"), "postgres://postgres@127.0.0.1:55432/x");
    assert_eq!(with_database("postgresql://u:p@h/db?sslmode=disable", "x"), "postgresql://u:p@h/x?sslmode=disable");
    assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
}
