//! The object store contract (`contract/mod.rs`) and S3-specific behaviour, against a real S3 API server.
//!
//! Needs `STREAMHOUSE_TEST_S3_ENDPOINT` (e.g. `http://127.0.0.1:9000`); without it every test here fails
//! saying how to start moto, unless `STREAMHOUSE_SKIP_S3=1`, which skips them. Each test creates its own
//! bucket, named uniquely, and leaves it behind: the server is meant to be a throwaway (moto keeps data in
//! memory).

mod contract;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use streamhouse_storage::s3::{S3Settings, S3Store};
use streamhouse_storage::{ObjectStore, StorageErrorKind};

const HOW_TO_START: &str = "\
the S3 tests need an S3 API server: set STREAMHOUSE_TEST_S3_ENDPOINT, for example with moto:
    source scripts/lib/s3.sh && start_s3 9000 /tmp/s3-venv    # exports STREAMHOUSE_TEST_S3_ENDPOINT
or by hand:
    pip install 'moto[server]==5.2.1' && moto_server -H 127.0.0.1 -p 9000 &
    export STREAMHOUSE_TEST_S3_ENDPOINT=http://127.0.0.1:9000
or skip them with STREAMHOUSE_SKIP_S3=1";

/// The test endpoint, or `None` when the S3 tests are skipped. Panics (failing the test) when neither is set.
///
/// On first use it also sets, for this process, the AWS variables the store reads: dummy credentials and
/// region when unset (moto accepts any), and `AWS_ENDPOINT_URL_S3` to the test endpoint so that
/// `streamhouse_storage::open` finds it too.
fn endpoint(test: &str) -> Option<String> {
    static ENDPOINT: OnceLock<Option<String>> = OnceLock::new();
    let endpoint = ENDPOINT.get_or_init(|| {
        let skip = std::env::var("STREAMHOUSE_SKIP_S3").is_ok_and(|v| v == "1");
        match std::env::var("STREAMHOUSE_TEST_S3_ENDPOINT") {
            Ok(url) if !url.trim().is_empty() => {
                let url = url.trim().to_owned();
                for (name, value) in [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")] {
                    if std::env::var_os(name).is_none() {
                        set_env(name, value);
                    }
                }
                set_env("AWS_ENDPOINT_URL_S3", &url);
                Some(url)
            }
            _ if skip => None,
            _ => panic!("{HOW_TO_START}"),
        }
    });
    if endpoint.is_none() {
        eprintln!("skipping S3 test {test}: STREAMHOUSE_SKIP_S3=1");
    }
    endpoint.clone()
}

fn set_env(name: &str, value: &str) {
    // SAFETY: called only inside `endpoint`'s OnceLock initialisation, which every test in this binary runs
    // (and waits on) before doing anything else, so no other thread of this process is reading the
    // environment meanwhile.
    unsafe { std::env::set_var(name, value) };
}

fn settings(endpoint: &str) -> S3Settings {
    S3Settings { endpoint_url: Some(endpoint.to_owned()), force_path_style: true, ..S3Settings::default() }
}

/// A fresh bucket, created through a store's client; returns its name.
async fn new_bucket(endpoint: &str) -> String {
    let bucket = format!("streamhouse-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let store = S3Store::with_settings(&format!("s3://{bucket}"), settings(endpoint)).await.unwrap();
    let client = store.client();
    let mut create = client.create_bucket().bucket(&bucket);
    let region = client.config().region().map(|r| r.to_string()).unwrap_or_default();
    if region != "us-east-1" {
        use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region.as_str())).build(),
        );
    }
    create.send().await.unwrap_or_else(|e| {
        panic!(
            "cannot create bucket {bucket} at {endpoint}: {}; is the S3 server up?\n{HOW_TO_START}",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        )
    });
    bucket
}

/// A store on a fresh bucket, under a prefix.
async fn store(endpoint: &str) -> S3Store {
    let bucket = new_bucket(endpoint).await;
    S3Store::with_settings(&format!("s3://{bucket}/cluster-a"), settings(endpoint)).await.unwrap()
}

macro_rules! contract_test {
    ($name:ident $(, $arg:expr)*) => {
        #[tokio::test]
        async fn $name() {
            let Some(endpoint) = endpoint(stringify!($name)) else { return };
            let store = store(&endpoint).await;
            contract::$name(&store $(, $arg)*).await;
        }
    };
}

contract_test!(put_then_get_ranges);
contract_test!(missing_object_is_not_found);
contract_test!(range_past_end_is_corrupt);
contract_test!(delete_is_idempotent);
contract_test!(put_never_overwrites);
contract_test!(list_filters_by_prefix);
contract_test!(bad_keys_are_invalid);

#[tokio::test]
async fn list_follows_pages() {
    let Some(endpoint) = endpoint("list_follows_pages") else {
        return;
    };
    // 7 objects, 2 keys a page: 4 pages.
    let store = store(&endpoint).await.with_list_page_size(2);
    contract::list_returns_every_object(&store, 7).await;
}

#[tokio::test]
async fn retried_put_that_landed_succeeds() {
    let Some(endpoint) = endpoint("retried_put_that_landed_succeeds") else {
        return;
    };
    contract::retried_put_that_landed_succeeds(Arc::new(store(&endpoint).await)).await;
}

#[tokio::test]
async fn prefixes_isolate_stores_sharing_a_bucket() {
    let Some(endpoint) = endpoint("prefixes_isolate_stores_sharing_a_bucket") else {
        return;
    };
    let bucket = new_bucket(&endpoint).await;
    let open = async |prefix: &str| S3Store::with_settings(&format!("s3://{bucket}/{prefix}"), settings(&endpoint)).await.unwrap();
    let a = open("agents/a").await;
    let b = open("agents/b").await;
    let root = open("").await;

    a.put("segments/1/x.seg", Bytes::from_static(b"from a")).await.unwrap();
    b.put("segments/1/x.seg", Bytes::from_static(b"from b!")).await.unwrap();
    assert_eq!(a.get_range("segments/1/x.seg", 0..6).await.unwrap(), "from a");
    assert_eq!(b.get_range("segments/1/x.seg", 0..7).await.unwrap(), "from b!");

    // Keys come back without the prefix, and each store sees only its own.
    let listed = a.list("").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "segments/1/x.seg");
    assert_eq!(listed[0].size, 6);
    let keys: Vec<_> = root.list("").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, ["agents/a/segments/1/x.seg", "agents/b/segments/1/x.seg"]);

    a.delete("segments/1/x.seg").await.unwrap();
    assert!(a.list("").await.unwrap().is_empty());
    assert_eq!(b.get_range("segments/1/x.seg", 0..4).await.unwrap(), "from");
    assert_eq!(a.get_range("segments/1/x.seg", 0..1).await.unwrap_err().kind(), StorageErrorKind::NotFound);
}

#[tokio::test]
async fn open_builds_a_working_store_from_the_environment() {
    let Some(endpoint) = endpoint("open_builds_a_working_store_from_the_environment") else {
        return;
    };
    let bucket = new_bucket(&endpoint).await;
    let store = streamhouse_storage::open(&format!("s3://{bucket}/via-open")).await.unwrap();
    store.put("k", Bytes::from_static(b"v")).await.unwrap();
    assert_eq!(store.get_range("k", 0..1).await.unwrap(), "v");
    let raw = S3Store::with_settings(&format!("s3://{bucket}"), settings(&endpoint)).await.unwrap();
    assert_eq!(raw.list("").await.unwrap()[0].key, "via-open/k");
}

#[tokio::test]
async fn a_missing_bucket_is_invalid_and_says_what_to_check() {
    let Some(endpoint) = endpoint("a_missing_bucket_is_invalid_and_says_what_to_check") else {
        return;
    };
    let store = S3Store::with_settings("s3://streamhouse-no-such-bucket/p", settings(&endpoint)).await.unwrap();
    let err = store.put("k", Bytes::from_static(b"v")).await.unwrap_err();
    assert_eq!(err.kind(), StorageErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("bucket name"), "{err}");
    let err = store.list("").await.unwrap_err();
    assert_eq!(err.kind(), StorageErrorKind::Invalid, "{err}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    // Needs no server, but shares the environment set-up (credentials), so it is skipped with the others.
    let Some(_endpoint) = endpoint("an_unreachable_endpoint_is_unavailable") else {
        return;
    };
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let store = S3Store::with_settings("s3://bucket/p", settings("http://127.0.0.1:1")).await.unwrap();
    let err = store.get_range("k", 0..1).await.unwrap_err();
    assert_eq!(err.kind(), StorageErrorKind::Unavailable, "{err}");
    assert!(err.is_retriable());
    assert!(err.to_string().contains("could not reach the S3 endpoint"), "{err}");
}

#[tokio::test]
async fn put_stores_the_crc32c_of_the_body() {
    let Some(endpoint) = endpoint("put_stores_the_crc32c_of_the_body") else {
        return;
    };
    let store = store(&endpoint).await;
    let body = Bytes::from_static(b"checked in transit");
    store.put("crc/k", body.clone()).await.unwrap();
    let head = store
        .client()
        .head_object()
        .bucket(store.bucket())
        .key("cluster-a/crc/k")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let expected = aws_smithy_types::base64::encode(crc32c::crc32c(&body).to_be_bytes());
    assert_eq!(head.checksum_crc32_c(), Some(expected.as_str()));
}

#[tokio::test]
async fn a_silent_endpoint_times_out_as_unavailable() {
    let Some(_endpoint) = endpoint("a_silent_endpoint_times_out_as_unavailable") else {
        return;
    };
    // The kernel completes the TCP handshake into the backlog, but nothing ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let settings = S3Settings {
        attempt_timeout: std::time::Duration::from_millis(300),
        ..settings(&format!("http://{}", silent.local_addr().unwrap()))
    };
    let store = S3Store::with_settings("s3://bucket/p", settings).await.unwrap();
    let started = std::time::Instant::now();
    let err = store.get_range("k", 0..1).await.unwrap_err();
    assert_eq!(err.kind(), StorageErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
