//! Bad input never takes the agent down: each hostile frame gets the Kafka answer a client expects
//! or a closed connection, and other clients keep being served.

mod common;

use bytes::{BufMut, BytesMut};
use common::{RawClient, TestAgent, batch};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tokio::io::AsyncWriteExt;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_i32(body.len() as i32);
    out.put_slice(body);
    out.to_vec()
}

/// Sends raw bytes on a new connection and says whether the agent closed it without answering.
async fn closes_without_answer(agent: &TestAgent, bytes: &[u8]) -> bool {
    let mut c = RawClient::connect(agent.addr).await;
    c.stream.write_all(bytes).await.ok();
    c.stream.shutdown().await.ok();
    c.read_frame().await.is_none()
}

async fn produce_works(agent: &TestAgent, topic: &str) -> i16 {
    let mut c = agent.client().await;
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(&[b"ok"], None)))]),
    ]);
    c.send(
        3,
        &MetadataRequest::default().with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(topic.to_string())))),
        ])),
    )
    .await;
    c.send(7, &req).await.responses[0].partition_responses[0].error_code
}

#[tokio::test]
async fn hostile_frames_close_only_their_connection() {
    let agent = TestAgent::start(&["--max-request-bytes", "1048576"]).await;
    // A connection that stays open across all the abuse must still work at the end.
    let mut bystander = agent.client().await;

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("length over the cap", 2_000_000_000i32.to_be_bytes().to_vec()),
        ("negative length", (-5i32).to_be_bytes().to_vec()),
        ("truncated frame", {
            let mut f = frame(&[0, 3, 0, 9, 0, 0, 0, 1, 0, 0]);
            f.truncate(8);
            f
        }),
        ("header shorter than its prefix", frame(&[0, 3, 0])),
        ("unknown api key", frame(&[0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0xff, 0xff])),
        ("unsupported Produce version", frame(&[0, 0, 0, 99, 0, 0, 0, 1, 0xff, 0xff])),
        ("metadata body cut short", frame(&[0, 3, 0, 4, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 5, 0, 3])),
        // Produce v3 claiming i32::MAX topics: the codec would size a Vec from it.
        (
            "huge array count",
            frame(&[0, 0, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 10, 0x7f, 0xff, 0xff, 0xff, 0, 1, b'a']),
        ),
        // Metadata v9 (flexible) with a compact array count of u32::MAX - 1.
        ("huge compact array count", frame(&[0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xff, 0x0f])),
    ];
    for (what, bytes) in &cases {
        assert!(closes_without_answer(&agent, bytes).await, "{what}: connection should close");
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..200 {
        let len = (seed % 300) as usize;
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let mut c = RawClient::connect(agent.addr).await;
        c.stream.write_all(&frame(&junk)).await.ok();
        c.stream.write_all(&junk).await.ok();
    }

    let r = bystander.send(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(r.brokers.len(), 1, "the bystander connection still works");
    assert_eq!(produce_works(&agent, "after-garbage").await, 0, "a new client can still produce");
    agent.stop().await;
}

#[tokio::test]
async fn unknown_api_versions_version_gets_v0_with_unsupported_version() {
    let agent = TestAgent::start(&[]).await;
    let mut c = agent.client().await;
    // ApiVersions v99, correlation id 7, client id null, then bytes of a future body.
    c.stream.write_all(&frame(&[0, 18, 0, 99, 0, 0, 0, 7, 0xff, 0xff, 0, 1, 2, 3])).await.ok();
    let mut answer = c.read_frame().await.expect("an answer, not a closed connection");
    use bytes::Buf;
    assert_eq!(answer.get_i32(), 7, "correlation id echoed");
    let body = <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut answer, 0).expect("v0 body");
    assert_eq!(body.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(body.api_keys.iter().any(|k| k.api_key == 18 && k.max_version == 4), "our versions, so the client can retry lower");
    agent.stop().await;
}

#[tokio::test]
async fn bad_batches_get_partition_errors() {
    let agent = TestAgent::start(&[]).await;
    assert_eq!(produce_works(&agent, "t").await, 0);
    let mut c = agent.client().await;
    let good = batch(&[b"x", b"y"], None);
    let mut bad_crc = BytesMut::from(&good[..]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    let mut bad_magic = BytesMut::from(&good[..]);
    bad_magic[16] = 1;
    let cases = [
        (bad_crc.freeze(), 2i16, 0), // CORRUPT_MESSAGE
        (good.slice(..30), 2, 0),    // truncated: CORRUPT_MESSAGE
        (bad_magic.freeze(), 43, 0), // UNSUPPORTED_FOR_MESSAGE_FORMAT
        (good.clone(), 3, 7),        // unknown partition: UNKNOWN_TOPIC_OR_PARTITION
        (good.clone(), 3, -1),       // negative partition
    ];
    for (records, code, partition) in cases {
        let req = ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(records))]),
        ]);
        let r = c.send(9, &req).await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, code, "partition {partition}");
    }
    let req = ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("bad name!")))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(good.clone()))]),
    ]);
    assert_eq!(c.send(9, &req).await.responses[0].partition_responses[0].error_code, 3);
    let req = ProduceRequest::default().with_acks(5).with_timeout_ms(5000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(good))]),
    ]);
    assert_eq!(c.send(9, &req).await.responses[0].partition_responses[0].error_code, 21, "INVALID_REQUIRED_ACKS");
    agent.stop().await;
}

/// Partition counts are bounded per topic and per cluster: a request for two billion partitions is
/// refused before anything is written, and the cluster's total stays within --max-partitions, for
/// topics created by CreateTopics and by Metadata's auto-creation alike.
#[tokio::test]
async fn partition_counts_are_bounded() {
    use kafka_protocol::error::ResponseError;
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::create_topics_request::CreatableTopic;

    let agent = TestAgent::start(&["--max-partitions-per-topic", "100", "--max-partitions", "150", "--default-partitions", "60"]).await;
    let mut c = agent.client().await;
    let name = |s: &str| TopicName(StrBytes::from_string(s.to_string()));
    let create = |topic: &str, n: i32| {
        CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default().with_name(name(topic)).with_num_partitions(n).with_replication_factor(-1)])
    };
    let r = c.send(7, &create("huge", 2_000_000_000)).await;
    assert_eq!(r.topics[0].error_code, ResponseError::InvalidPartitions.code());
    assert_eq!(c.send(7, &create("big", 100)).await.topics[0].error_code, 0);
    let r = c.send(7, &create("more", 60)).await;
    assert_eq!(r.topics[0].error_code, ResponseError::PolicyViolation.code(), "160 partitions in a cluster capped at 150");
    let grow = |topic: &str, n: i32| {
        CreatePartitionsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![CreatePartitionsTopic::default().with_name(name(topic)).with_count(n)])
    };
    assert_eq!(c.send(3, &grow("big", 101)).await.results[0].error_code, ResponseError::InvalidPartitions.code());
    let auto = MetadataRequest::default()
        .with_topics(Some(vec![kafka_protocol::messages::metadata_request::MetadataRequestTopic::default().with_name(Some(name("auto")))]))
        .with_allow_auto_topic_creation(true);
    let r = c.send(12, &auto).await;
    assert_eq!(r.topics[0].error_code, ResponseError::PolicyViolation.code(), "auto-creation is held to the same limits");
    let md = c.send(12, &MetadataRequest::default().with_topics(None)).await;
    let names: Vec<_> = md.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
    assert_eq!(names, vec!["big".to_string()], "nothing refused was created");
}

/// A decompression bomb (a few kilobytes of zstd that inflate to 64 MiB) is accepted as a batch, as
/// Kafka accepts it, but a timestamp lookup that would have to inflate it answers CORRUPT_MESSAGE
/// instead of claiming the memory; the agent keeps serving.
#[tokio::test]
async fn a_decompression_bomb_is_not_inflated() {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::error::ResponseError;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    let agent = TestAgent::start(&[]).await;
    let mut c = agent.client().await;
    let record = Record {
        transactional: false,
        control: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::from(vec![0u8; 64 << 20])),
        headers: Default::default(),
        delete_horizon: false,
    };
    let mut bomb = BytesMut::new();
    RecordBatchEncoder::encode(&mut bomb, [&record], &RecordEncodeOptions { version: 2, compression: Compression::Zstd }).expect("encodes");
    assert!(bomb.len() < 64 << 10, "the bomb is small on the wire: {} bytes", bomb.len());
    let topic = TopicName(StrBytes::from_static_str("bombs"));
    c.send(
        3,
        &MetadataRequest::default().with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default().with_name(Some(topic.clone())),
        ])),
    )
    .await;
    let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(topic.clone())
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(bomb.freeze()))]),
    ]);
    assert_eq!(c.send(9, &produce).await.responses[0].partition_responses[0].error_code, 0);
    let lookup = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        ListOffsetsTopic::default()
            .with_name(topic)
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(0)]),
    ]);
    let r = c.send(7, &lookup).await;
    assert_eq!(r.topics[0].partitions[0].error_code, ResponseError::CorruptMessage.code());
    assert_eq!(produce_works(&agent, "after-the-bomb").await, 0, "the agent keeps serving");
}

/// No client can hold every socket: connections past --max-connections-per-ip are closed at once, a
/// closed one frees its place, and a connection idle past --connections-max-idle-ms is closed.
#[tokio::test]
async fn connections_are_limited_and_idle_ones_closed() {
    use std::time::Duration;

    let agent = TestAgent::start(&["--max-connections-per-ip", "2", "--connections-max-idle-ms", "400"]).await;
    let mut first = agent.client().await;
    let mut second = agent.client().await;
    first.send(3, &ApiVersionsRequest::default()).await;
    second.send(3, &ApiVersionsRequest::default()).await;
    let mut third = agent.client().await;
    assert!(third.read_frame().await.is_none(), "a third connection from one address is closed");
    drop(second);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut again = agent.client().await;
    again.send(3, &ApiVersionsRequest::default()).await;

    // `first` stays busy, `again` goes quiet: only the quiet one is closed.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        first.send(3, &ApiVersionsRequest::default()).await;
    }
    assert!(again.read_frame().await.is_none(), "an idle connection is closed");
    first.send(3, &ApiVersionsRequest::default()).await;
}

/// Requests about made-up groups write nothing: no lease row per name a client invents, until a
/// member really joins. Each is answered as Kafka answers for a group it does not have.
#[tokio::test]
async fn requests_about_unknown_groups_write_nothing() {
    let agent = TestAgent::start(&[]).await;
    let mut c = agent.client().await;
    for i in 0..20 {
        let id = StrBytes::from_string(format!("ghost-{i}"));
        let r = c.send(3, &FindCoordinatorRequest::default().with_key(id.clone())).await;
        assert_eq!(r.error_code, 0);
        let r = c.send(2, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(id.clone())])).await;
        assert_eq!(r.results[0].error_code, kafka_protocol::error::ResponseError::GroupIdNotFound.code());
        let r = c.send(5, &DescribeGroupsRequest::default().with_groups(vec![GroupId(id.clone())])).await;
        assert_eq!(r.groups[0].group_state.as_str(), "Dead");
        let group = GroupId(id.clone());
        let member = StrBytes::from_static_str("nobody");
        let unknown_member = kafka_protocol::error::ResponseError::UnknownMemberId.code();
        let r = c.send(4, &HeartbeatRequest::default().with_group_id(group.clone()).with_member_id(member.clone())).await;
        assert_eq!(r.error_code, unknown_member);
        let r = c.send(5, &SyncGroupRequest::default().with_group_id(group.clone()).with_member_id(member.clone())).await;
        assert_eq!(r.error_code, unknown_member);
        let leave = LeaveGroupRequest::default()
            .with_group_id(group.clone())
            .with_members(vec![kafka_protocol::messages::leave_group_request::MemberIdentity::default().with_member_id(member)]);
        let r = c.send(5, &leave).await;
        assert_eq!((r.error_code, r.members[0].error_code), (0, unknown_member));
        let r = c.send(7, &OffsetFetchRequest::default().with_group_id(group.clone()).with_topics(None)).await;
        assert_eq!((r.error_code, r.topics.len()), (0, 0), "no offsets");
        let r = c.send(0, &OffsetDeleteRequest::default().with_group_id(group)).await;
        assert_eq!(r.error_code, kafka_protocol::error::ResponseError::GroupIdNotFound.code());
    }
    let store = &agent.agent().context().metadata;
    for i in 0..20 {
        assert_eq!(store.group_coordinator(&format!("ghost-{i}")).await.expect("store"), None, "ghost-{i} got a lease");
    }
}
