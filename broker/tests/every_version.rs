//! Every advertised version of every API gets a response that decodes, with the right header
//! version and nothing left over, for requests that touch a real topic. A field set that a version
//! cannot carry fails encoding and closes the connection, so it shows up here.

mod common;

use common::{TestAgent, batch};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use streamhouse::handlers::ROUTES;

fn versions(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let r = ROUTES.iter().find(|r| r.key == key).expect("routed");
    r.min..=r.max
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

#[tokio::test]
async fn every_api_answers_every_advertised_version() {
    let agent = TestAgent::start(&[]).await;
    let mut c = agent.client().await;

    for v in versions(ApiKey::CreateTopics) {
        let t = format!("created-v{v}");
        let req = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default().with_name(name(&t)).with_num_partitions(2).with_replication_factor(1)])
            .with_timeout_ms(5000);
        let r = c.send(v, &req).await;
        assert_eq!(r.topics[0].error_code, 0, "CreateTopics v{v}");
    }
    let topic = "created-v7";
    let topic_id = c
        .send(12, &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(topic)))])))
        .await
        .topics[0]
        .topic_id;

    for v in versions(ApiKey::ApiVersions) {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("tests"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let r = c.send(v, &req).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.api_keys.len(), ROUTES.len());
    }
    for v in versions(ApiKey::Metadata) {
        let r = c.send(v, &MetadataRequest::default().with_topics(None).with_allow_auto_topic_creation(v < 4)).await;
        assert!(r.topics.iter().any(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic)), "Metadata v{v}");
        assert_eq!(r.brokers.len(), 1);
    }
    let mut next_offset = 0;
    for v in versions(ApiKey::Produce) {
        let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(&[b"a", b"b"], None)))]),
        ]);
        let r = c.send(v, &req).await;
        let p = &r.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, next_offset), "Produce v{v}");
        next_offset += 2;
    }
    for v in versions(ApiKey::Fetch) {
        let req = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
            FetchTopic::default()
                .with_topic(if v < 13 { name(topic) } else { TopicName::default() })
                .with_topic_id(if v >= 13 { topic_id } else { uuid::Uuid::nil() })
                .with_partitions(vec![FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(1 << 20)]),
        ]);
        let r = c.send(v, &req).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "Fetch v{v}");
        assert_eq!(p.high_watermark, next_offset);
        assert!(p.records.as_ref().is_some_and(|r| !r.is_empty()), "Fetch v{v} returns data");
    }
    for v in versions(ApiKey::ListOffsets) {
        let req = ListOffsetsRequest::default().with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)]),
        ]);
        let r = c.send(v, &req).await;
        assert_eq!(r.topics[0].partitions[0].offset, next_offset, "ListOffsets v{v}");
    }
    for v in versions(ApiKey::OffsetForLeaderEpoch) {
        let req = OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default().with_topic(name(topic)).with_partitions(vec![
                OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(1).with_current_leader_epoch(-1),
            ]),
        ]);
        let r = c.send(v, &req).await;
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, 1, next_offset), "OffsetForLeaderEpoch v{v}");
    }
    for v in versions(ApiKey::DescribeConfigs) {
        let req = DescribeConfigsRequest::default().with_include_synonyms(v >= 1).with_resources(vec![
            DescribeConfigsResource::default().with_resource_type(2).with_resource_name(StrBytes::from_static_str("created-v7")),
            DescribeConfigsResource::default().with_resource_type(4).with_resource_name(StrBytes::from_static_str("0")),
        ]);
        let r = c.send(v, &req).await;
        assert!(r.results.iter().all(|x| x.error_code == 0 && !x.configs.is_empty()), "DescribeConfigs v{v}: {r:?}");
    }
    for v in versions(ApiKey::DescribeCluster) {
        let r = c.send(v, &DescribeClusterRequest::default()).await;
        assert_eq!(r.brokers.len(), 1, "DescribeCluster v{v}");
        assert!(!r.cluster_id.is_empty());
    }
    for v in versions(ApiKey::InitProducerId) {
        let r = c.send(v, &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60000)).await;
        assert_eq!(r.error_code, 0, "InitProducerId v{v}");
        assert!(r.producer_id.0 >= 0);
    }
    for v in versions(ApiKey::CreatePartitions) {
        let req = CreatePartitionsRequest::default().with_timeout_ms(5000).with_topics(vec![
            kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name(topic))
                .with_count(3 + i32::from(v)),
        ]);
        let r = c.send(v, &req).await;
        assert_eq!(r.results[0].error_code, 0, "CreatePartitions v{v}");
    }
    groups_at_every_version(&mut c, topic).await;
    for v in versions(ApiKey::DeleteTopics) {
        let t = format!("created-v{}", v + 1);
        let req = if v >= 6 {
            DeleteTopicsRequest::default()
                .with_topics(vec![kafka_protocol::messages::delete_topics_request::DeleteTopicState::default().with_name(Some(name(&t)))])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name(&t)])
        };
        let r = c.send(v, &req.with_timeout_ms(5000)).await;
        assert_eq!(r.responses[0].error_code, 0, "DeleteTopics v{v}");
    }
    agent.stop().await;
}

/// One member joins, syncs, heartbeats, commits, fetches offsets, is described and listed, and
/// leaves, at each version of each group API; then the empty group's offsets and the group go.
async fn groups_at_every_version(c: &mut common::RawClient, topic: &str) {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
    use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics};
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;

    for v in versions(ApiKey::FindCoordinator) {
        let req = if v >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![StrBytes::from_static_str("g")])
        } else {
            FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"))
        };
        let r = c.send(v, &req).await;
        let code = if v >= 4 { r.coordinators[0].error_code } else { r.error_code };
        assert_eq!(code, 0, "FindCoordinator v{v}");
    }
    for v in versions(ApiKey::JoinGroup) {
        let group = GroupId(StrBytes::from_string(format!("g-join-{v}")));
        let join = |member: &str| {
            JoinGroupRequest::default()
                .with_group_id(group.clone())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(StrBytes::from_string(member.to_string()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(StrBytes::from_static_str("range"))
                        .with_metadata(bytes::Bytes::from_static(b"m")),
                ])
        };
        let mut r = c.send(v, &join("")).await;
        if r.error_code == 79 {
            r = c.send(v, &join(r.member_id.as_str())).await; // MEMBER_ID_REQUIRED, v4+
        }
        assert_eq!((r.error_code, r.generation_id), (0, 1), "JoinGroup v{v}");
        assert_eq!(r.leader, r.member_id);
        let member = r.member_id.clone();
        let sync_v = v.min(*versions(ApiKey::SyncGroup).end());
        let sync =
            SyncGroupRequest::default().with_group_id(group.clone()).with_generation_id(1).with_member_id(member.clone()).with_assignments(
                vec![SyncGroupRequestAssignment::default().with_member_id(member.clone()).with_assignment(bytes::Bytes::from_static(b"a"))],
            );
        let s = c.send(sync_v, &sync).await;
        assert_eq!((s.error_code, s.assignment.as_ref()), (0, &b"a"[..]), "SyncGroup v{sync_v}");
        let hb_v = v.min(*versions(ApiKey::Heartbeat).end());
        let h = c
            .send(hb_v, &HeartbeatRequest::default().with_group_id(group.clone()).with_generation_id(1).with_member_id(member.clone()))
            .await;
        assert_eq!(h.error_code, 0, "Heartbeat v{hb_v}");
        let commit_v = (v.max(2)).min(*versions(ApiKey::OffsetCommit).end());
        let commit = OffsetCommitRequest::default()
            .with_group_id(group.clone())
            .with_generation_id_or_member_epoch(1)
            .with_member_id(member.clone())
            .with_topics(vec![OffsetCommitRequestTopic::default().with_name(name(topic)).with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(7)
                        .with_committed_metadata(Some(StrBytes::from_static_str("meta"))),
                ])]);
        let oc = c.send(commit_v, &commit).await;
        assert_eq!(oc.topics[0].partitions[0].error_code, 0, "OffsetCommit v{commit_v}");
        let fetch_v = v.clamp(1, *versions(ApiKey::OffsetFetch).end());
        let of = if fetch_v >= 8 {
            let r = c
                .send(
                    fetch_v,
                    &OffsetFetchRequest::default().with_groups(vec![
                        OffsetFetchRequestGroup::default().with_group_id(group.clone()).with_topics(Some(vec![
                            OffsetFetchRequestTopics::default().with_name(name(topic)).with_partition_indexes(vec![0, 1]),
                        ])),
                    ]),
                )
                .await;
            r.groups[0].topics[0].partitions.iter().map(|p| p.committed_offset).collect::<Vec<_>>()
        } else {
            let r = c
                .send(
                    fetch_v,
                    &OffsetFetchRequest::default().with_group_id(group.clone()).with_topics(Some(vec![
                        OffsetFetchRequestTopic::default().with_name(name(topic)).with_partition_indexes(vec![0, 1]),
                    ])),
                )
                .await;
            r.topics[0].partitions.iter().map(|p| p.committed_offset).collect::<Vec<_>>()
        };
        assert_eq!(of, vec![7, -1], "OffsetFetch v{fetch_v}");
        let dg_v = v.min(*versions(ApiKey::DescribeGroups).end());
        let d = c.send(dg_v, &DescribeGroupsRequest::default().with_groups(vec![group.clone()])).await;
        assert_eq!((d.groups[0].group_state.as_str(), d.groups[0].members.len()), ("Stable", 1), "DescribeGroups v{dg_v}");
        let lg_v = v.min(*versions(ApiKey::ListGroups).end());
        let l = c.send(lg_v, &ListGroupsRequest::default()).await;
        assert!(l.groups.iter().any(|g| g.group_id == group), "ListGroups v{lg_v}");
        let leave_v = v.min(*versions(ApiKey::LeaveGroup).end());
        let leave = if leave_v >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group.clone())
                .with_members(vec![MemberIdentity::default().with_member_id(member.clone())])
        } else {
            LeaveGroupRequest::default().with_group_id(group.clone()).with_member_id(member.clone())
        };
        assert_eq!(c.send(leave_v, &leave).await.error_code, 0, "LeaveGroup v{leave_v}");
    }
    for v in versions(ApiKey::OffsetDelete) {
        let req = OffsetDeleteRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g-join-0"))).with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)]),
        ]);
        let r = c.send(v, &req).await;
        assert_eq!((r.error_code, r.topics[0].partitions[0].error_code), (0, 0), "OffsetDelete v{v}");
    }
    for v in versions(ApiKey::DeleteGroups) {
        let r =
            c.send(v, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(StrBytes::from_string(format!("g-join-{v}")))])).await;
        assert_eq!(r.results[0].error_code, 0, "DeleteGroups v{v}");
    }
}
