//! Real requests of every routed API, encoded at every version the agent advertises: the material
//! the mutations start from. Each names the same few topics and groups, so mutated requests reach
//! real state (a partition with data, a group with members) and not only the "unknown" paths.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics};
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use tokio::net::TcpStream;

use crate::exchange;
use crate::mutate::Rng;

const TOPIC: &str = "fuzz";

/// A request without its size prefix; its body starts at `body_at`.
pub struct Seed {
    pub message: Bytes,
    pub body_at: usize,
    /// Its answer may rightly wait (a JoinGroup or SyncGroup parks until the group settles, acks=0
    /// gets none) and hold back every answer after it on the connection.
    pub parks: bool,
}

/// `rounds` sets of the requests below with random field values, each at every version in the
/// agent's range that can carry it.
pub fn all(versions: &[(ApiKey, i16, i16)], rng: &mut Rng, rounds: usize) -> anyhow::Result<Vec<Seed>> {
    let mut seeds = Vec::new();
    for (key, request) in (0..rounds).map(|_| requests(rng)).collect::<anyhow::Result<Vec<_>>>()?.into_iter().flatten() {
        let Some((_, min, max)) = versions.iter().find(|(k, _, _)| *k == key) else { continue };
        for version in *min..=*max {
            let header = RequestHeader::default()
                .with_request_api_key(key as i16)
                .with_request_api_version(version)
                .with_correlation_id(7)
                .with_client_id(Some(StrBytes::from_static_str("fuzz")));
            let mut message = BytesMut::new();
            header.encode(&mut message, key.request_header_version(version))?;
            let body_at = message.len();
            // A request this version cannot carry (a field it lacks is set) is simply left out.
            if request(&mut message, version).is_ok() {
                let parks = matches!(key, ApiKey::JoinGroup | ApiKey::SyncGroup)
                    || (key == ApiKey::Produce && acks_zero(&message, body_at, version));
                seeds.push(Seed { message: message.freeze(), body_at, parks });
            }
        }
    }
    anyhow::ensure!(!seeds.is_empty(), "no seed encodes at the versions the agent advertises");
    Ok(seeds)
}

/// Whether an encoded Produce request says acks=0 (it follows the transactional id, an i16 length or,
/// in flexible versions from v9, a varint length).
fn acks_zero(message: &[u8], body_at: usize, version: i16) -> bool {
    let at = if version >= 9 {
        let len = usize::from(message.get(body_at).copied().unwrap_or(0)).saturating_sub(1);
        body_at + 1 + len
    } else {
        let len = i16::from_be_bytes([message.get(body_at).copied().unwrap_or(0), message.get(body_at + 1).copied().unwrap_or(0)]);
        body_at + 2 + usize::try_from(len).unwrap_or(0)
    };
    message.get(at..at + 2) == Some(&[0, 0])
}

/// A topic: mostly the fuzzed one, sometimes another, an illegal or an over-long name.
fn topic(rng: &mut Rng) -> TopicName {
    match rng.below(8) {
        0 => name("fuzz-made"),
        1 => name(""),
        2 => name(&"x".repeat(250 + rng.below(100))),
        3 => name(&format!("fuzz-{}", rng.below(50))),
        _ => name(TOPIC),
    }
}

/// A partition index: mostly 0, sometimes out of range either way.
fn partition(rng: &mut Rng) -> i32 {
    [0, 0, 0, 1, -1, i32::MAX, i32::MIN, 7][rng.below(8)]
}

/// Any i32 that matters: small, zero, negative, huge.
fn int(rng: &mut Rng) -> i32 {
    [0, 1, -1, 100, 1000, 1 << 20, i32::MAX, i32::MIN, rng.next() as i32][rng.below(9)]
}

fn long(rng: &mut Rng) -> i64 {
    [0, 1, -1, -2, -3, -4, 1_700_000_000_001, i64::MAX, i64::MIN, rng.next() as i64][rng.below(10)]
}

fn group(rng: &mut Rng) -> GroupId {
    GroupId(s(["fuzz-group", "fuzz-group", "", "other-group"][rng.below(4)]))
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A record batch of `n` small records.
pub fn batch(n: usize, compression: Compression) -> anyhow::Result<Bytes> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("value {i}"))),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression })?;
    Ok(buf.freeze())
}

fn produce(topic: TopicName, partition: i32, records: Bytes, acks: i16, timeout_ms: i32) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(timeout_ms).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(topic)
            .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(records))]),
    ])
}

fn fetch(topic: TopicName, partition: i32, offset: i64, max_wait_ms: i32, max_bytes: i32) -> FetchRequest {
    FetchRequest::default().with_max_wait_ms(max_wait_ms).with_max_bytes(max_bytes).with_topics(vec![
        FetchTopic::default().with_topic(topic).with_partitions(vec![
            FetchPartition::default().with_partition(partition).with_fetch_offset(offset).with_partition_max_bytes(max_bytes),
        ]),
    ])
}

/// A request of some API, ready to encode at any version.
type Encoder = Box<dyn Fn(&mut BytesMut, i16) -> anyhow::Result<()>>;

fn req<R: Request + 'static>(request: R) -> (ApiKey, Encoder) {
    let key = ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions);
    (key, Box::new(move |buf, version| request.encode(buf, version)))
}

/// One of each request, with random field values.
fn requests(rng: &mut Rng) -> anyhow::Result<Vec<(ApiKey, Encoder)>> {
    let compression = [Compression::None, Compression::Gzip, Compression::Zstd][rng.below(3)];
    let records = batch(1 + rng.below(20), compression)?;
    // acks 0 gets no answer; the sender paces on answers, so it is rare here.
    let acks = [-1, -1, 1, 1, 1, 2, -2, 0][rng.below(8)];
    let g = group(rng);
    let member = s(["", "m", "fuzz-member"][rng.below(3)]);
    Ok(vec![
        req(produce(topic(rng), partition(rng), records, acks, [1000, 0, -1, 100][rng.below(4)])),
        req(fetch(topic(rng), partition(rng), long(rng), [0, 0, 10][rng.below(3)], int(rng))),
        req(ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic(rng))
                .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(partition(rng)).with_timestamp(long(rng))]),
        ])),
        req(MetadataRequest::default().with_allow_auto_topic_creation(rng.below(4) == 0).with_topics(if rng.below(4) == 0 {
            None
        } else {
            Some(vec![MetadataRequestTopic::default().with_name(Some(topic(rng)))])
        })),
        req(CreateTopicsRequest::default()
            .with_timeout_ms(1000)
            .with_validate_only(rng.below(2) == 0)
            .with_topics(vec![CreatableTopic::default().with_name(topic(rng)).with_num_partitions(int(rng)).with_replication_factor(-1)])),
        req(DeleteTopicsRequest::default().with_timeout_ms(1000).with_topic_names(vec![name("fuzz-made")])),
        req(DeleteTopicsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![DeleteTopicState::default().with_name(Some(name("fuzz-made")))])),
        req(InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(int(rng))),
        req(OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(topic(rng))
                .with_partitions(vec![OffsetForLeaderPartition::default().with_partition(partition(rng)).with_leader_epoch(int(rng))]),
        ])),
        req(DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default().with_resource_type([2, 4, 0, -1][rng.below(4)]).with_resource_name(s(TOPIC)),
        ])),
        req(CreatePartitionsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![CreatePartitionsTopic::default().with_name(topic(rng)).with_count(int(rng))])),
        req(DescribeClusterRequest::default()),
        req(FindCoordinatorRequest::default().with_key(g.0.clone()).with_key_type([0, 1, 5][rng.below(3)])),
        req(FindCoordinatorRequest::default().with_coordinator_keys(vec![g.0.clone()])),
        req(JoinGroupRequest::default()
            .with_group_id(g.clone())
            .with_session_timeout_ms([6000, 0, -1, 100][rng.below(4)])
            .with_rebalance_timeout_ms([300, 0, -1, 1000][rng.below(4)])
            .with_member_id(member.clone())
            .with_protocol_type(s(["consumer", "connect", ""][rng.below(3)]))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 4, b'f', b'u', b'z', b'z'])),
            ])),
        req(SyncGroupRequest::default().with_group_id(g.clone()).with_generation_id(int(rng)).with_member_id(member.clone())),
        req(HeartbeatRequest::default().with_group_id(g.clone()).with_generation_id(int(rng)).with_member_id(member.clone())),
        req(LeaveGroupRequest::default().with_group_id(g.clone()).with_member_id(member.clone())),
        req(LeaveGroupRequest::default()
            .with_group_id(g.clone())
            .with_members(vec![MemberIdentity::default().with_member_id(member.clone())])),
        req(OffsetCommitRequest::default()
            .with_group_id(g.clone())
            .with_generation_id_or_member_epoch([-1, 1, int(rng)][rng.below(3)])
            .with_topics(vec![OffsetCommitRequestTopic::default().with_name(topic(rng)).with_partitions(vec![
                OffsetCommitRequestPartition::default().with_partition_index(partition(rng)).with_committed_offset(long(rng)),
            ])])),
        req(OffsetFetchRequest::default().with_group_id(g.clone()).with_topics(Some(vec![
            OffsetFetchRequestTopic::default().with_name(topic(rng)).with_partition_indexes(vec![partition(rng)]),
        ]))),
        req(OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default().with_group_id(g.clone()).with_topics(
            Some(vec![OffsetFetchRequestTopics::default().with_name(topic(rng)).with_partition_indexes(vec![partition(rng)])]),
        )])),
        req(DescribeGroupsRequest::default().with_groups(vec![g.clone()])),
        req(ListGroupsRequest::default()),
        req(DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("fuzz-gone"))])),
        req(OffsetDeleteRequest::default().with_group_id(g).with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(topic(rng))
                .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(partition(rng))]),
        ])),
        req(ApiVersionsRequest::default()),
    ])
}

/// A well-behaved client still gets answers: ApiVersions, Metadata (creating the fuzz topic if it is
/// gone), Produce and Fetch of what it produced. Retried for ten seconds (leadership may settle).
pub async fn still_serves(addr: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match check(addr).await {
            Ok(()) => return Ok(()),
            Err(e) if std::time::Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}

async fn check(addr: &str) -> anyhow::Result<()> {
    let mut c = TcpStream::connect(addr).await?;
    exchange(&mut c, 3, &ApiVersionsRequest::default()).await?;
    let md = exchange(
        &mut c,
        12,
        &MetadataRequest::default()
            .with_allow_auto_topic_creation(true)
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(TOPIC)))])),
    )
    .await?;
    anyhow::ensure!(md.topics.first().is_some_and(|t| t.error_code == 0), "Metadata: {:?}", md.topics.first().map(|t| t.error_code));
    let produced = exchange(&mut c, 9, &produce(name(TOPIC), 0, batch(1, Compression::None)?, -1, 5000)).await?;
    let p =
        produced.responses.first().and_then(|t| t.partition_responses.first()).ok_or_else(|| anyhow::anyhow!("empty Produce answer"))?;
    anyhow::ensure!(p.error_code == 0, "Produce: error {}", p.error_code);
    let fetched = exchange(&mut c, 12, &fetch(name(TOPIC), 0, p.base_offset, 0, 1 << 20)).await?;
    let f = fetched.responses.first().and_then(|t| t.partitions.first()).ok_or_else(|| anyhow::anyhow!("empty Fetch answer"))?;
    anyhow::ensure!(f.error_code == 0 && f.records.as_ref().is_some_and(|r| !r.is_empty()), "Fetch: error {} or no records", f.error_code);
    Ok(())
}
