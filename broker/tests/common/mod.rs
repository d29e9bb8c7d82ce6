//! Test helpers: an agent on 127.0.0.1:0 with a temporary data dir, and a raw Kafka client that
//! speaks through kafka-protocol's client side (the real clients live in compat-tests/).

#![allow(dead_code)]

mod cloud;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use clap::Parser;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, FetchRequest, ProduceRequest, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;
use streamhouse::agent::Agent;
use streamhouse::config::Config;
use streamhouse_metadata::SystemClock;
use streamhouse_metadata::faults::FaultyMetadata;
use streamhouse_storage::faults::FaultyStore;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where a test agent keeps its metadata and objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite and a local directory inside the agent's temporary data dir: the embedded default.
    Local,
    /// A fresh PostgreSQL database and a fresh S3 bucket (see `cloud.rs` for the environment).
    Cloud,
}

/// The two URLs an agent is started with; agents started with the same ones form one cluster.
#[derive(Debug, Clone)]
pub struct StoreUrls {
    pub metadata: String,
    pub objects: String,
}

/// An agent on 127.0.0.1:0 whose stores sit under fault-injecting wrappers (no faults until a test
/// sets some through `objects` and `metadata`).
pub struct TestAgent {
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub urls: StoreUrls,
    pub objects: Arc<FaultyStore>,
    pub metadata: Arc<FaultyMetadata>,
    agent: Option<Agent>,
}

impl TestAgent {
    pub async fn start(extra: &[&str]) -> TestAgent {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, extra).await
    }

    /// An agent on `backend`, or `None` when the environment says to skip cloud tests.
    pub async fn start_on(backend: Backend, extra: &[&str]) -> Option<TestAgent> {
        match backend {
            Backend::Local => Some(Self::start(extra).await),
            Backend::Cloud => {
                let urls = cloud::fresh_stores().await?;
                let dir = tempfile::tempdir().expect("temp dir");
                Some(Self::launch(dir, urls, extra).await)
            }
        }
    }

    /// Starts on an existing data dir (a restart) with the embedded default stores inside it.
    pub async fn start_in(dir: TempDir, extra: &[&str]) -> TestAgent {
        let urls = StoreUrls {
            metadata: format!("sqlite://{}", dir.path().join("metadata.db").display()),
            objects: format!("file://{}", dir.path().join("objects").display()),
        };
        Self::launch(dir, urls, extra).await
    }

    /// Another agent of the same cluster: the same metadata store and objects as `self`.
    pub async fn join(&self, extra: &[&str]) -> TestAgent {
        Self::launch(tempfile::tempdir().expect("temp dir"), self.urls.clone(), extra).await
    }

    async fn launch(dir: TempDir, urls: StoreUrls, extra: &[&str]) -> TestAgent {
        let data = dir.path().to_string_lossy().to_string();
        let mut args = vec![
            "streamhouse",
            "--data-dir",
            &data,
            "--listen",
            "127.0.0.1:0",
            "--metadata-url",
            &urls.metadata,
            "--object-store-url",
            &urls.objects,
            "--http-listen",
            "127.0.0.1:0",
            "--console-listen",
            "off",
        ];
        args.extend_from_slice(extra);
        let config = Config::parse_from(args);
        let objects = Arc::new(FaultyStore::new(streamhouse_storage::open(&urls.objects).await.expect("object store opens")));
        let clock = SystemClock { offset_ms: config.clock_offset_ms };
        let metadata = streamhouse_metadata::open_with_local_clock(&urls.metadata, clock).await.expect("metadata store opens");
        let metadata = Arc::new(FaultyMetadata::new(metadata));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let agent = Agent::start_with_stores(config, listener, objects.clone(), metadata.clone()).await.expect("agent starts");
        TestAgent { addr: agent.local_addr(), dir, urls, objects, metadata, agent: Some(agent) }
    }

    pub fn agent(&self) -> &Agent {
        self.agent.as_ref().expect("running")
    }

    /// The base URL of the agent's HTTP API, e.g. `http://127.0.0.1:40123`.
    pub fn http(&self) -> String {
        format!("http://{}", self.agent().http_addr().expect("the HTTP API is on"))
    }

    pub async fn client(&self) -> RawClient {
        RawClient::connect(self.addr).await
    }

    /// Graceful stop; hands the data dir back for a restart.
    pub async fn stop(mut self) -> TempDir {
        if let Some(agent) = self.agent.take() {
            agent.shutdown().await;
        }
        self.dir
    }
}

/// Writes, for each scenario `async fn NAME(backend: Backend)` of the test file, a test running it
/// on the embedded default (`local::NAME`) and one on PostgreSQL + S3 (`cloud::NAME`).
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Local).await
                }
            )*
        }
        mod cloud {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Cloud).await
                }
            )*
        }
    };
}

pub struct RawClient {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        RawClient { stream: TcpStream::connect(addr).await.expect("connect"), correlation_id: 0 }
    }

    /// Encodes a request frame at `version` with the right header version.
    pub fn frame<R: Request>(&mut self, version: i16, req: &R) -> Bytes {
        self.correlation_id += 1;
        let key = ApiKey::try_from(R::KEY).expect("known key");
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("streamhouse-tests")));
        let mut body = BytesMut::new();
        header.encode(&mut body, key.request_header_version(version)).expect("header encodes");
        req.encode(&mut body, version).expect("request encodes");
        let mut out = BytesMut::new();
        out.put_i32(body.len() as i32);
        out.put_slice(&body);
        out.freeze()
    }

    pub async fn send<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let frame = self.frame(version, req);
        self.stream.write_all(&frame).await.expect("write");
        let mut response = self.read_frame().await.expect("a response frame");
        let key = ApiKey::try_from(R::KEY).expect("known key");
        let header = ResponseHeader::decode(&mut response, key.response_header_version(version)).expect("response header");
        assert_eq!(header.correlation_id, self.correlation_id, "answers come in request order");
        let decoded =
            R::Response::decode(&mut response, version).unwrap_or_else(|e| panic!("{key:?} v{version} response does not decode: {e}"));
        assert_eq!(response.remaining(), 0, "{key:?} v{version} response has trailing bytes");
        decoded
    }

    /// Reads one frame; `None` if the agent closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let len = self.stream.read_i32().await.ok()?;
        let mut buf = vec![0u8; usize::try_from(len).ok()?];
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(Bytes::from(buf))
    }
}

// ---- requests most tests send ----------------------------------------------------------------

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub async fn create(c: &mut RawClient, topic: &str, partitions: i32) {
    let r = c
        .send(
            7,
            &CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default().with_name(name(topic)).with_num_partitions(partitions).with_replication_factor(-1),
            ]),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0);
}

pub async fn produce(c: &mut RawClient, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(15_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(records))]),
    ]);
    let r = c.send(9, &req).await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

pub fn fetch_request(topic: &str, partition: i32, offset: i64, wait_ms: i32, max_bytes: i32) -> FetchRequest {
    FetchRequest::default().with_max_wait_ms(wait_ms).with_min_bytes(1).with_max_bytes(max_bytes).with_topics(vec![
        FetchTopic::default().with_topic(name(topic)).with_partitions(vec![
            FetchPartition::default().with_partition(partition).with_fetch_offset(offset).with_partition_max_bytes(max_bytes),
        ]),
    ])
}

/// Every (offset, value) readable from `offset`, following the high watermark.
pub async fn read_all(c: &mut RawClient, topic: &str, partition: i32) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    loop {
        let next = out.last().map_or(0, |(o, _)| o + 1);
        let r = c.send(11, &fetch_request(topic, partition, next, 0, 1 << 20)).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        let mut records = p.records.clone().unwrap_or_default();
        if records.is_empty() {
            return out;
        }
        for set in RecordBatchDecoder::decode_all(&mut records).expect("batches decode") {
            for r in set.records {
                if r.offset >= next {
                    out.push((r.offset, r.value.unwrap_or_default()));
                }
            }
        }
    }
}

/// A valid v2 record batch of `count` records with the given values, uncompressed.
pub fn batch(values: &[&[u8]], producer: Option<(i64, i16, i32)>) -> Bytes {
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let (producer_id, producer_epoch, sequence) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if sequence < 0 { -1 } else { sequence + i as i32 },
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::copy_from_slice(v)),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .expect("batch encodes");
    buf.freeze()
}
