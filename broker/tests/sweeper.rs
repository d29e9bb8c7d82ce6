//! The sweeper deletes objects nothing references (here: a deleted topic's) and keeps the rest.

mod common;

use common::{TestAgent, batch};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use streamhouse::sweeper;
use streamhouse_storage::paths::SEGMENTS_PREFIX;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

#[tokio::test]
async fn unreferenced_objects_are_swept_referenced_ones_kept() {
    // The shortest grace there is: flushes here commit well within half of it.
    let agent = TestAgent::start(&["--sweep-grace-secs", "1", "--sweep-interval-secs", "0"]).await;
    let mut c = agent.client().await;
    for topic in ["kept", "doomed"] {
        c.send(
            7,
            &CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default().with_name(name(topic)).with_num_partitions(1).with_replication_factor(-1)]),
        )
        .await;
        let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(&[b"x"], None)))]),
        ]);
        assert_eq!(c.send(9, &req).await.responses[0].partition_responses[0].error_code, 0);
    }
    let ctx = agent.agent().context().clone();
    assert_eq!(ctx.objects.list(SEGMENTS_PREFIX).await.expect("list").len(), 2, "one object per flush");
    assert_eq!(sweeper::sweep(&ctx).await.expect("sweep"), 0, "everything is referenced");

    let r = c
        .send(
            6,
            &DeleteTopicsRequest::default().with_topics(vec![
                kafka_protocol::messages::delete_topics_request::DeleteTopicState::default().with_name(Some(name("doomed"))),
            ]),
        )
        .await;
    assert_eq!(r.responses[0].error_code, 0);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(sweeper::sweep(&ctx).await.expect("sweep"), 1, "the deleted topic's object goes once it is a grace period old");
    let left = ctx.objects.list(SEGMENTS_PREFIX).await.expect("list");
    assert_eq!(left.len(), 1);
    assert_eq!(ctx.metadata.referenced_objects().await.expect("index"), vec![left[0].key.clone()], "the kept topic's object stays");
    agent.stop().await;
}
