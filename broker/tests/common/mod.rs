//! Test helpers: an agent on 127.0.0.1:0 with a temporary data dir, and a raw Kafka client that
//! speaks through kafka-protocol's client side (the real clients live in compat-tests/).

#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use clap::Parser;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use streamhouse::agent::Agent;
use streamhouse::config::Config;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct TestAgent {
    pub addr: SocketAddr,
    pub dir: TempDir,
    agent: Option<Agent>,
}

impl TestAgent {
    pub async fn start(extra: &[&str]) -> TestAgent {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, extra).await
    }

    /// Starts on an existing data dir (a restart).
    pub async fn start_in(dir: TempDir, extra: &[&str]) -> TestAgent {
        let agent = Self::launch(dir.path(), extra).await;
        TestAgent { addr: agent.local_addr(), dir, agent: Some(agent) }
    }

    /// Another agent of the same cluster: same metadata database and object directory as `self`.
    pub async fn join(&self, extra: &[&str]) -> TestAgent {
        let dir = tempfile::tempdir().expect("temp dir");
        let meta = format!("sqlite://{}", self.dir.path().join("metadata.db").display());
        let objects = format!("file://{}", self.dir.path().join("objects").display());
        let mut args = vec!["--metadata-url", &meta, "--object-store-url", &objects];
        args.extend_from_slice(extra);
        let agent = Self::launch(dir.path(), &args).await;
        TestAgent { addr: agent.local_addr(), dir, agent: Some(agent) }
    }

    async fn launch(data_dir: &std::path::Path, extra: &[&str]) -> Agent {
        let data = data_dir.to_string_lossy().to_string();
        let mut args = vec!["streamhouse", "--data-dir", &data, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let config = Config::parse_from(args);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Agent::start(config, listener).await.expect("agent starts")
    }

    pub fn agent(&self) -> &Agent {
        self.agent.as_ref().expect("running")
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
