//! The HTTP API against running agents: every endpoint, its errors in the documented shape, and
//! that a refused request changes nothing. Groups with live members are driven by real consumers in
//! compat-tests/test_http_api.py.

mod common;

use common::{TestAgent, batch, create, name, produce};
use kafka_protocol::messages::GroupId;
use kafka_protocol::messages::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::protocol::StrBytes;
use serde_json::{Value, json};
use streamhouse_metadata::faults::{Fault, Op};

/// One HTTP call: (status, JSON body). Runs ureq off the async threads.
async fn call(method: &'static str, url: String, body: Option<Value>) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let response = match (method, body) {
            ("GET", _) => agent.get(&url).call(),
            ("DELETE", _) => agent.delete(&url).call(),
            ("POST", Some(b)) => agent.post(&url).header("content-type", "application/json").send(b.to_string()),
            ("POST", None) => agent.post(&url).send_empty(),
            (m, _) => panic!("no such method {m}"),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    })
    .await
    .expect("the call ran")
}

async fn get(a: &TestAgent, path: &str) -> (u16, Value) {
    call("GET", format!("{}{path}", a.http()), None).await
}

async fn post(a: &TestAgent, path: &str, body: Value) -> (u16, Value) {
    call("POST", format!("{}{path}", a.http()), Some(body)).await
}

async fn delete(a: &TestAgent, path: &str) -> (u16, Value) {
    call("DELETE", format!("{}{path}", a.http()), None).await
}

/// Asserts the error shape and returns its code.
fn error_code(answer: &(u16, Value), status: u16) -> String {
    assert_eq!(answer.0, status, "status of {}", answer.1);
    let code = answer.1["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {}", answer.1));
    assert!(answer.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "a message in {}", answer.1);
    code.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_stores() {
    let a = TestAgent::start(&[]).await;
    assert_eq!(get(&a, "/health/live").await, (200, json!({"status": "live"})));
    let ready = get(&a, "/health/ready").await;
    assert_eq!(ready.0, 200, "{}", ready.1);
    assert_eq!(ready.1["checks"]["metadata_store"], true);
    a.metadata.set(Op::Every, Fault::Fail);
    // Past the one-second probe cache.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let ready = get(&a, "/health/ready").await;
    assert_eq!(ready.0, 503, "{}", ready.1);
    assert_eq!(ready.1["checks"]["metadata_store"], false);
    assert_eq!(get(&a, "/health/live").await.0, 200, "the process is still live");
    a.metadata.set(Op::Every, Fault::None);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(get(&a, "/health/ready").await.0, 200);
    // What SIGTERM does first: from then on the agent is not ready, while it still drains.
    a.agent().context().shutdown.cancel();
    let ready = get(&a, "/health/ready").await;
    assert_eq!((ready.0, &ready.1["checks"]["shutting_down"]), (503, &json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_described_grown_and_deleted() {
    let a = TestAgent::start(&[]).await;
    let (status, topic) =
        post(&a, "/api/v1/topics", json!({"name": "orders", "partitions": 3, "config": {"retention.ms": "3600000"}})).await;
    assert_eq!(status, 201, "{topic}");
    assert_eq!(topic["partitions"].as_array().map(Vec::len), Some(3));
    assert_eq!(topic["config"]["retention.ms"], "3600000");
    assert_eq!(error_code(&post(&a, "/api/v1/topics", json!({"name": "orders", "partitions": 1})).await, 409), "TOPIC_ALREADY_EXISTS");
    assert_eq!(error_code(&post(&a, "/api/v1/topics", json!({"name": "bad/name"})).await, 400), "INVALID_TOPIC_EXCEPTION");
    assert_eq!(error_code(&post(&a, "/api/v1/topics", json!({"name": "zero", "partitions": 0})).await, 400), "INVALID_PARTITIONS");
    assert_eq!(error_code(&post(&a, "/api/v1/topics", json!({"nme": "typo"})).await, 400), "INVALID_REQUEST");
    let bad_json = call("POST", format!("{}/api/v1/topics", a.http()), Some(Value::String("{".into()))).await;
    assert_eq!(error_code(&bad_json, 400), "INVALID_REQUEST");

    let (status, list) = get(&a, "/api/v1/topics").await;
    assert_eq!(status, 200);
    let names: Vec<_> = list.as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["orders"], "the refused creations left nothing behind");

    let (status, grown) = post(&a, "/api/v1/topics/orders/partitions", json!({"count": 5})).await;
    assert_eq!(status, 200, "{grown}");
    assert_eq!(grown["partitions"].as_array().map(Vec::len), Some(5));
    assert_eq!(error_code(&post(&a, "/api/v1/topics/orders/partitions", json!({"count": 2})).await, 400), "INVALID_PARTITIONS");
    assert_eq!(error_code(&post(&a, "/api/v1/topics/nope/partitions", json!({"count": 2})).await, 404), "UNKNOWN_TOPIC_OR_PARTITION");

    assert_eq!(error_code(&get(&a, "/api/v1/topics/nope").await, 404), "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(delete(&a, "/api/v1/topics/orders").await, (200, json!({"deleted": "orders"})));
    assert_eq!(error_code(&delete(&a, "/api/v1/topics/orders").await, 404), "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(error_code(&get(&a, "/api/v1/nothing-here").await, 404), "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_messages_are_read_back_by_offset_and_time() {
    let a = TestAgent::start(&[]).await;
    post(&a, "/api/v1/topics", json!({"name": "events", "partitions": 4})).await;
    let mut offsets = Vec::new();
    for i in 0..5 {
        let (status, r) = post(
            &a,
            "/api/v1/produce",
            json!({"topic": "events", "partition": 2, "key": format!("k{i}"), "value": {"n": i}, "headers": {"h": "v"}}),
        )
        .await;
        assert_eq!(status, 200, "{r}");
        assert_eq!((r["topic"].as_str(), r["partition"].as_i64()), (Some("events"), Some(2)));
        assert!(r["timestamp"].as_i64().is_some_and(|t| t > 0));
        offsets.push(r["offset"].as_i64().expect("an offset"));
    }
    assert_eq!(offsets, [0, 1, 2, 3, 4]);
    // A key always goes where Kafka's default partitioner puts it.
    let keyed = post(&a, "/api/v1/produce", json!({"topic": "events", "key": "user-1", "value": "a"})).await.1;
    let again = post(&a, "/api/v1/produce", json!({"topic": "events", "key": "user-1", "value": "b"})).await.1;
    assert_eq!(keyed["partition"], again["partition"]);
    // Bytes that are not UTF-8 come back as base64, said so.
    let mut c = a.client().await;
    let (code, _) = produce(&mut c, "events", 3, batch(&[&[0xff, 0xfe]], None)).await;
    assert_eq!(code, 0);

    let (status, page) = get(&a, "/api/v1/topics/events/partitions/2/messages?offset=1&limit=2").await;
    assert_eq!(status, 200, "{page}");
    let got: Vec<_> = page["messages"].as_array().into_iter().flatten().map(|m| (m["offset"].as_i64(), m["value"].as_str())).collect();
    assert_eq!(got, [(Some(1), Some(r#"{"n":1}"#)), (Some(2), Some(r#"{"n":2}"#))]);
    assert_eq!(page["next_offset"], 3);
    assert_eq!(page["high_watermark"], 5);
    assert_eq!(page["messages"][0]["key"], "k1");
    assert_eq!(page["messages"][0]["headers"], json!([{"key": "h", "value": "v", "value_encoding": "utf8"}]));
    let first_ts = page["messages"][0]["timestamp"].as_i64().expect("a timestamp");
    let (_, by_time) = get(&a, &format!("/api/v1/topics/events/partitions/2/messages?timestamp={first_ts}")).await;
    assert!(by_time["messages"][0]["offset"].as_i64().is_some_and(|o| o <= 1), "{by_time}");
    let (_, raw) = get(&a, "/api/v1/topics/events/partitions/3/messages").await;
    let raw_values: Vec<_> =
        raw["messages"].as_array().into_iter().flatten().map(|m| (m["value"].clone(), m["value_encoding"].clone())).collect();
    assert!(raw_values.contains(&(json!("//4="), json!("base64"))), "{raw}");

    assert_eq!(error_code(&get(&a, "/api/v1/topics/events/partitions/2/messages?limit=100000").await, 400), "INVALID_REQUEST");
    assert_eq!(error_code(&get(&a, "/api/v1/topics/events/partitions/9/messages").await, 404), "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(error_code(&get(&a, "/api/v1/topics/events/partitions/x/messages").await, 400), "INVALID_REQUEST");
    assert_eq!(error_code(&post(&a, "/api/v1/produce", json!({"topic": "nope", "value": "x"})).await, 404), "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(
        error_code(&post(&a, "/api/v1/produce", json!({"topic": "events", "partition": 7, "value": "x"})).await, 404),
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    let (_, after) = get(&a, "/api/v1/topics/events").await;
    assert_eq!(after["messages"], 8, "only the accepted messages were written: {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_agent_produces_and_reads_for_the_leader() {
    let a = TestAgent::start(&["--default-partitions", "4"]).await;
    let b = a.join(&["--agent-id", "1"]).await;
    post(&a, "/api/v1/topics", json!({"name": "spread", "partitions": 4})).await;
    // Wait for leases to spread over both agents.
    let mut leaders = Vec::new();
    for _ in 0..100 {
        let (_, t) = get(&a, "/api/v1/topics/spread").await;
        leaders = t["partitions"].as_array().into_iter().flatten().map(|p| p["leader"].as_i64()).collect();
        if leaders.contains(&Some(0)) && leaders.contains(&Some(1)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(leaders.contains(&Some(0)) && leaders.contains(&Some(1)), "both agents lead something: {leaders:?}");
    for p in 0..4 {
        for (via, who) in [(&a, "a"), (&b, "b")] {
            let (status, r) = post(via, "/api/v1/produce", json!({"topic": "spread", "partition": p, "value": who})).await;
            assert_eq!(status, 200, "partition {p} via {who}: {r}");
        }
        let (_, page) = get(&b, &format!("/api/v1/topics/spread/partitions/{p}/messages")).await;
        let values: Vec<_> = page["messages"].as_array().into_iter().flatten().filter_map(|m| m["value"].as_str()).collect();
        assert_eq!(values, ["a", "b"], "partition {p}");
    }
    let (_, agents) = get(&b, "/api/v1/agents").await;
    let led: i64 = agents.as_array().into_iter().flatten().filter_map(|x| x["partitions_led"].as_i64()).sum();
    assert_eq!(led, 4, "{agents}");
    let (_, leases) = get(&a, "/api/v1/leases").await;
    assert_eq!(leases.as_array().map(Vec::len), Some(4), "{leases}");
    let (_, summary) = get(&a, "/api/v1/cluster").await;
    assert_eq!((summary["agents"].as_i64(), summary["partitions"].as_i64(), summary["messages"].as_i64()), (Some(2), Some(4), Some(8)));
    assert_eq!(summary["leaderless_partitions"], 0);
    assert!(summary["bytes"].as_i64().is_some_and(|b| b > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_groups_are_listed_reset_and_deleted() {
    let a = TestAgent::start(&[]).await;
    let mut c = a.client().await;
    create(&mut c, "reads", 2).await;
    for p in 0..2 {
        produce(&mut c, "reads", p, batch(&[b"1", b"2", b"3", b"4"], None)).await;
    }
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g1")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(name("reads")).with_partitions(vec![
            OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(1),
            OffsetCommitRequestPartition::default().with_partition_index(1).with_committed_offset(4),
        ])]);
    let r = c.send(8, &commit).await;
    assert!(r.topics[0].partitions.iter().all(|p| p.error_code == 0));

    let (status, list) = get(&a, "/api/v1/groups").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 1);
    assert_eq!((list["groups"][0]["group"].as_str(), list["groups"][0]["lag"].as_i64()), (Some("g1"), Some(3)));
    assert_eq!(list["groups"][0]["state"], "Empty");
    assert_eq!(error_code(&get(&a, "/api/v1/groups?limit=100000").await, 400), "INVALID_REQUEST");

    let (status, g) = get(&a, "/api/v1/groups/g1").await;
    assert_eq!(status, 200, "{g}");
    assert_eq!(g["lag"], 3);
    assert_eq!(
        g["offsets"][0],
        json!({"topic": "reads", "partition": 0, "committed_offset": 1, "log_end_offset": 4, "lag": 3, "member_id": null})
    );
    let (_, t) = get(&a, "/api/v1/topics/reads").await;
    assert_eq!(t["groups"], json!([{"group": "g1", "lag": 3}]));
    let (_, all) = get(&a, "/api/v1/topics").await;
    assert_eq!((&all[0]["groups"], &all[0]["lag"]), (&json!(1), &json!(3)), "{all}");

    // A dry run by default: shows the plan, changes nothing.
    let (status, plan) = post(&a, "/api/v1/groups/g1/reset-offsets", json!({"topic": "reads", "to": "earliest"})).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["executed"], false);
    assert_eq!(plan["offsets"][1], json!({"topic": "reads", "partition": 1, "current_offset": 4, "new_offset": 0}));
    assert_eq!(get(&a, "/api/v1/groups/g1").await.1["lag"], 3);
    let (status, done) =
        post(&a, "/api/v1/groups/g1/reset-offsets", json!({"topic": "reads", "to": "offset", "offset": 2, "execute": true})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(get(&a, "/api/v1/groups/g1").await.1["lag"], 4);
    let (_, latest) =
        post(&a, "/api/v1/groups/g1/reset-offsets", json!({"topic": "reads", "partitions": [0], "to": "latest", "execute": true})).await;
    assert_eq!(latest["offsets"], json!([{"topic": "reads", "partition": 0, "current_offset": 2, "new_offset": 4}]));
    assert_eq!(
        error_code(&post(&a, "/api/v1/groups/g1/reset-offsets", json!({"topic": "reads", "to": "offset"})).await, 400),
        "INVALID_REQUEST"
    );
    assert_eq!(
        error_code(&post(&a, "/api/v1/groups/g1/reset-offsets", json!({"topic": "reads", "to": "sideways"})).await, 400),
        "INVALID_REQUEST"
    );

    assert_eq!(delete(&a, "/api/v1/groups/g1").await, (200, json!({"deleted": "g1"})));
    assert_eq!(error_code(&get(&a, "/api/v1/groups/g1").await, 404), "GROUP_ID_NOT_FOUND");
    assert_eq!(error_code(&delete(&a, "/api/v1/groups/g1").await, 404), "GROUP_ID_NOT_FOUND");
    assert_eq!(get(&a, "/api/v1/groups").await.1["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_every_write_and_changes_nothing() {
    let a = TestAgent::start(&["--http-read-only"]).await;
    let mut c = a.client().await;
    create(&mut c, "kept", 1).await;
    assert_eq!(get(&a, "/api/v1/cluster").await.1["read_only"], true);
    for answer in [
        post(&a, "/api/v1/topics", json!({"name": "new"})).await,
        post(&a, "/api/v1/produce", json!({"topic": "kept", "value": "x"})).await,
        delete(&a, "/api/v1/topics/kept").await,
        post(&a, "/api/v1/topics/kept/partitions", json!({"count": 3})).await,
        delete(&a, "/api/v1/groups/g").await,
    ] {
        assert_eq!(error_code(&answer, 403), "CLUSTER_AUTHORIZATION_FAILED");
    }
    let (_, t) = get(&a, "/api/v1/topics/kept").await;
    assert_eq!((t["messages"].as_i64(), t["partitions"].as_array().map(Vec::len)), (Some(0), Some(1)));
    assert_eq!(get(&a, "/api/v1/topics").await.1.as_array().map(Vec::len), Some(1));
}
