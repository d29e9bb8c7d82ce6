//! Fresh PostgreSQL + S3 stores for a test agent: a database and a bucket of its own on the servers
//! `scripts/test.sh` starts. Left behind after the test: the servers are throwaways.
//!
//! Environment: `STREAMHOUSE_TEST_POSTGRES_URL` (a database to connect to for CREATE DATABASE) and
//! `STREAMHOUSE_TEST_S3_ENDPOINT` (with `AWS_ENDPOINT_URL`, region and credentials, as
//! `scripts/lib/s3.sh` exports them). Without them these tests fail with how to start the servers,
//! unless `STREAMHOUSE_SKIP_CLOUD=1` says to skip them.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use streamhouse_storage::s3::{S3Settings, S3Store};

use super::StoreUrls;

const PG_VAR: &str = "STREAMHOUSE_TEST_POSTGRES_URL";
const S3_VAR: &str = "STREAMHOUSE_TEST_S3_ENDPOINT";
const SKIP_VAR: &str = "STREAMHOUSE_SKIP_CLOUD";

/// A new database and bucket, or `None` (after saying so) when cloud tests are to be skipped.
pub async fn fresh_stores() -> Option<StoreUrls> {
    let (Some(server), Some(endpoint)) = (var(PG_VAR), var(S3_VAR)) else {
        if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
            eprintln!("cloud test skipped: {PG_VAR} or {S3_VAR} is not set and {SKIP_VAR}=1");
            return None;
        }
        panic!(
            "{PG_VAR} and {S3_VAR} must be set: these tests run an agent on PostgreSQL + S3. Start throwaway \
             servers with\n\n    source scripts/lib/postgres.sh && start_postgres 55432\n    \
             source scripts/lib/s3.sh && start_s3 9000 /tmp/s3-venv\n\n(they export both), or set {SKIP_VAR}=1 to skip them."
        );
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let metadata = create_database(&server, &format!("sh_agent_{id}")).await;
    let bucket = format!("streamhouse-agent-{}", &id[..16]);
    create_bucket(&endpoint, &bucket).await;
    Some(StoreUrls { metadata, objects: format!("s3://{bucket}/cluster") })
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Creates `name` on the server and returns its URL.
async fn create_database(server: &str, name: &str) -> String {
    let mut admin = PgConnection::connect(server).await.unwrap_or_else(|e| panic!("cannot connect to {PG_VAR}={server}: {e}"));
    admin.execute(AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
    admin.close().await.expect("close");
    let (base, params) = server.split_once('?').map_or((server, String::new()), |(b, p)| (b, format!("?{p}")));
    let (scheme, rest) = base.split_once("://").expect("a URL with a scheme");
    let authority = rest.split_once('/').map_or(rest, |(authority, _)| authority);
    format!("{scheme}://{authority}/{name}{params}")
}

async fn create_bucket(endpoint: &str, bucket: &str) {
    let settings = S3Settings { endpoint_url: Some(endpoint.to_owned()), force_path_style: true, ..S3Settings::default() };
    let store = S3Store::with_settings(&format!("s3://{bucket}"), settings).await.expect("S3 client");
    store
        .client()
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot create bucket {bucket} at {endpoint}: {e:?}"));
}
