//! The real streamctl binary against a real agent: each test starts an in-process agent (SQLite and
//! a local directory, Kafka and HTTP API on free ports) and runs streamctl commands at its API, in
//! both output formats. Consumer groups are made the way clients make them, with Kafka requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, GroupId, JoinGroupRequest, OffsetCommitRequest, RequestHeader, ResponseHeader, SyncGroupRequest,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use serde_json::Value;
use streamhouse::agent::Agent;
use streamhouse::config::Config;
use tempfile::TempDir;

/// An agent of its own for one test, stopped (gracefully) when the test ends.
struct Harness {
    api: String,
    kafka: SocketAddr,
    agent: Option<Agent>,
    runtime: tokio::runtime::Runtime,
    _dir: TempDir,
}

impl Harness {
    fn start() -> Harness {
        Self::start_with(&[])
    }

    /// An agent with `extra` agent flags.
    fn start_with(extra: &[&str]) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().to_string_lossy().to_string();
        let mut args =
            vec!["streamhouse", "--data-dir", &data, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--console-listen", "off"];
        args.extend_from_slice(extra);
        let config = Config::parse_from(args);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let agent = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            Agent::start(config, listener).await.expect("agent starts")
        });
        let api = format!("http://{}", agent.http_addr().expect("the HTTP API is on"));
        Harness { api, kafka: agent.local_addr(), agent: Some(agent), runtime, _dir: dir }
    }

    /// Runs streamctl with `args` against this agent.
    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = streamctl()
            .arg("--api")
            .arg(&self.api)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("streamctl runs");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin written");
        child.wait_with_output().expect("streamctl finishes")
    }

    /// Table output of a command that must succeed and say nothing on stderr.
    fn table(&self, args: &[&str]) -> String {
        success(&self.run(args), args)
    }

    /// JSON output (`-o json`) of a command that must succeed.
    fn json(&self, args: &[&str]) -> Value {
        let args: Vec<&str> = args.iter().copied().chain(["-o", "json"]).collect();
        let out = success(&self.run(&args), &args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("streamctl {args:?} printed no JSON ({e}):\n{out}"))
    }

    /// The one stderr line of a command that must fail.
    fn fails(&self, args: &[&str]) -> String {
        failure(&self.run(args), args)
    }

    fn kafka(&self) -> KafkaClient {
        KafkaClient { stream: TcpStream::connect(self.kafka).expect("Kafka port"), correlation_id: 0 }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(agent) = self.agent.take() {
            self.runtime.block_on(agent.shutdown());
        }
    }
}

fn streamctl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamctl"));
    // A developer's own setting must not point the tests elsewhere.
    cmd.env_remove("STREAMHOUSE_ADDR");
    cmd
}

fn success(out: &Output, args: &[&str]) -> String {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "streamctl {args:?} failed ({}):\n{stderr}{stdout}", out.status);
    stdout.into_owned()
}

fn failure(out: &Output, args: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "streamctl {args:?} should fail with 1:\n{stderr}");
    assert!(out.stdout.is_empty(), "a failed command prints nothing on stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr:?}");
    assert!(stderr.starts_with("streamctl: "), "{stderr}");
    stderr.trim_end().to_string()
}

/// A table's lines split into cells (no cell here holds two spaces in a row).
fn rows(table: &str) -> Vec<Vec<String>> {
    table.lines().map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect()).collect()
}

/// Asserts a table's columns line up: between each pair of columns a run of at least two
/// positions is blank on every line, and no line ends in spaces.
fn assert_aligned(table: &str) {
    let lines: Vec<Vec<char>> = table.lines().map(|l| l.chars().collect()).collect();
    assert!(lines.len() > 1, "no rows in\n{table}");
    for l in &lines {
        assert_ne!(l.last(), Some(&' '), "trailing spaces in\n{table}");
    }
    let width = lines.iter().map(Vec::len).max().unwrap_or(0);
    let blank = |p: usize| lines.iter().all(|l| l.get(p).is_none_or(|c| *c == ' '));
    let (mut gaps, mut run) = (0, 0);
    for p in 0..width {
        if blank(p) {
            run += 1;
        } else {
            gaps += usize::from(run >= 2);
            run = 0;
        }
    }
    let columns = rows(table)[0].len();
    assert!(gaps + 1 >= columns, "{columns} columns but {gaps} common gaps: not aligned\n{table}");
}

/// Polls `f` until it returns Some (leases and group states settle asynchronously).
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---- a blocking Kafka client for the few requests that make consumer groups -----------------------

struct KafkaClient {
    stream: TcpStream,
    correlation_id: i32,
}

impl KafkaClient {
    fn send<R: Request>(&mut self, version: i16, request: &R) -> R::Response {
        self.correlation_id += 1;
        let key = ApiKey::try_from(R::KEY).expect("known key");
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("streamctl-tests")));
        let mut body = BytesMut::new();
        header.encode(&mut body, key.request_header_version(version)).expect("header encodes");
        request.encode(&mut body, version).expect("request encodes");
        let mut frame = BytesMut::new();
        frame.put_i32(i32::try_from(body.len()).expect("small request"));
        frame.put_slice(&body);
        self.stream.write_all(&frame).expect("request sent");
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).expect("response length");
        let mut buf = vec![0u8; usize::try_from(i32::from_be_bytes(len)).expect("length")];
        self.stream.read_exact(&mut buf).expect("response");
        let mut buf = Bytes::from(buf);
        let header = ResponseHeader::decode(&mut buf, key.response_header_version(version)).expect("response header");
        assert_eq!(header.correlation_id, self.correlation_id);
        R::Response::decode(&mut buf, version).expect("response decodes")
    }

    /// Commits offsets as an admin tool does (no generation): the group exists, Empty, with them.
    fn commit(&mut self, group: &str, topic: &str, offsets: &[(i32, i64)]) {
        let partitions = offsets
            .iter()
            .map(|&(p, o)| OffsetCommitRequestPartition::default().with_partition_index(p).with_committed_offset(o))
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default().with_name(topic_name(topic)).with_partitions(partitions)]);
        let response = self.send(2, &request);
        for p in response.topics.iter().flat_map(|t| &t.partitions) {
            assert_eq!(p.error_code, 0, "offset commit of partition {}", p.partition_index);
        }
    }

    /// Joins `group` as its only consumer and takes `partitions` of `topic`; returns the member id.
    /// The session lasts a minute, longer than any test, so no heartbeats are needed.
    fn join(&mut self, group: &str, topic: &str, partitions: &[i32]) -> String {
        let group_id = GroupId(StrBytes::from_string(group.to_string()));
        let join = |member: &str| {
            JoinGroupRequest::default()
                .with_group_id(group_id.clone())
                .with_session_timeout_ms(60_000)
                .with_rebalance_timeout_ms(60_000)
                .with_member_id(StrBytes::from_string(member.to_string()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(StrBytes::from_static_str("range"))
                        .with_metadata(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
                ])
        };
        // Since JoinGroup v4 the first join only hands out a member id (MEMBER_ID_REQUIRED).
        let first = self.send(5, &join(""));
        assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
        let member = first.member_id.to_string();
        let joined = self.send(5, &join(&member));
        assert_eq!(joined.error_code, 0, "join");
        assert_eq!(joined.leader.as_str(), member, "the only member leads");
        let assignment = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(vec![TopicPartition::default().with_topic(topic_name(topic)).with_partitions(partitions.to_vec())]);
        let mut bytes = BytesMut::new();
        bytes.put_i16(0);
        assignment.encode(&mut bytes, 0).expect("assignment encodes");
        let sync = SyncGroupRequest::default()
            .with_group_id(group_id)
            .with_generation_id(joined.generation_id)
            .with_member_id(StrBytes::from_string(member.clone()))
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(Some(StrBytes::from_static_str("range")))
            .with_assignments(vec![
                SyncGroupRequestAssignment::default().with_member_id(StrBytes::from_string(member.clone())).with_assignment(bytes.freeze()),
            ]);
        assert_eq!(self.send(5, &sync).error_code, 0, "sync");
        member
    }
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

// ---- the tests ---------------------------------------------------------------------------------

#[test]
fn cluster_info_and_health() {
    let h = Harness::start();
    h.table(&["topic", "create", "counted", "--partitions", "3"]);
    let info = h.table(&["cluster", "info"]);
    let fields: Vec<Vec<String>> = rows(&info);
    let field = |name: &str| fields.iter().find(|r| r[0] == name).unwrap_or_else(|| panic!("no {name} in\n{info}"))[1].clone();
    assert_eq!(field("AGENT"), "0");
    assert_eq!(field("TOPICS"), "1");
    assert_eq!(field("PARTITIONS"), "3");
    assert_eq!(field("READ-ONLY"), "no");
    let json = h.json(&["cluster", "info"]);
    assert_eq!((json["topics"].as_i64(), json["partitions"].as_i64(), json["agents"].as_i64()), (Some(1), Some(3), Some(1)), "{json}");
    assert_eq!(json["cluster_id"].as_str(), Some(field("CLUSTER-ID").as_str()));

    let health = eventually("the agent to be ready", || {
        let out = h.run(&["cluster", "health"]);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert!(health.starts_with("STATUS  ready\n\nCHECK"), "{health}");
    assert!(rows(&health).iter().skip(3).all(|r| r[1] == "ok"), "{health}");
    let json = h.json(&["cluster", "health"]);
    assert_eq!(json["status"], "ready");
    assert_eq!(json["checks"]["metadata_store"], true);
}

#[test]
fn agents_and_leases() {
    let h = Harness::start();
    let agents = h.table(&["agent", "list"]);
    assert_aligned(&agents);
    let table = rows(&agents);
    assert_eq!(
        table[0],
        ["ID", "ADDRESS", "ZONE", "GROUP", "PARTITIONS-LED", "GROUPS-COORDINATED", "LAST-HEARTBEAT", "REGISTRATION-EXPIRES"]
    );
    assert_eq!(table.len(), 2, "{agents}");
    assert_eq!(
        (table[1][0].as_str(), table[1][1].as_str(), table[1][2].as_str(), table[1][3].as_str()),
        ("0", &*h.kafka.to_string(), "-", "default")
    );
    let json = h.json(&["agent", "list"]);
    assert_eq!(json[0]["address"].as_str(), Some(&*h.kafka.to_string()), "{json}");

    h.table(&["topic", "create", "leased", "--partitions", "2"]);
    h.table(&["produce", "leased", "--partition", "0", "--value", "x"]);
    h.table(&["produce", "leased", "--partition", "1", "--value", "y"]);
    let leases = eventually("both partitions leased", || {
        let out = h.table(&["lease", "list"]);
        (rows(&out).iter().filter(|r| r[0] == "leased").count() == 2).then_some(out)
    });
    assert_aligned(&leases);
    let table = rows(&leases);
    assert_eq!(table[0], ["TOPIC", "PARTITION", "AGENT", "EPOCH", "EXPIRES"]);
    assert_eq!(table[1][..3], ["leased", "0", "0"]);
    assert!(table[1][4].starts_with("in ") || table[1][4].ends_with(" ago"), "{leases}");
    let json = h.json(&["lease", "list"]);
    let mine: Vec<&Value> = json.as_array().expect("array").iter().filter(|l| l["topic"] == "leased").collect();
    assert_eq!(mine.len(), 2, "{json}");
    assert_eq!(mine[0]["agent_id"], 0);
}

#[test]
fn topic_lifecycle() {
    let h = Harness::start();
    // As the design documents write it.
    assert_eq!(h.table(&["topic", "create", "test", "--partitions", "4"]), "created topic test (4 partitions)\n");
    let created = h.json(&["topic", "create", "other", "--partitions", "1", "--config", "retention.ms=3600000"]);
    assert_eq!(created["name"], "other", "{created}");
    assert_eq!(created["config"]["retention.ms"], "3600000", "{created}");

    let list = h.table(&["topic", "list"]);
    assert_aligned(&list);
    assert_eq!(
        rows(&list),
        [vec!["NAME", "PARTITIONS", "MESSAGES", "BYTES"], vec!["other", "1", "0", "0 B"], vec!["test", "4", "0", "0 B"]]
    );
    let json = h.json(&["topic", "list"]);
    let names: Vec<&str> = json.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["other", "test"]);
    assert_eq!(json[1]["partitions"], 4);

    let described = h.table(&["topic", "describe", "test"]);
    assert!(described.starts_with("TOPIC       test\nID"), "{described}");
    assert!(described.contains("PARTITIONS  4\n"), "{described}");
    assert!(described.contains("CONFIG      "), "{described}");
    let partitions = described.split("\n\n").nth(1).expect("a partition table");
    assert_aligned(partitions);
    assert_eq!(rows(partitions)[0], ["PARTITION", "LEADER", "EPOCH", "LOG-START-OFFSET", "HIGH-WATERMARK", "MESSAGES", "BYTES"]);
    assert_eq!(rows(partitions).len(), 5);
    let json = h.json(&["topic", "describe", "other"]);
    assert_eq!(json["config"]["retention.ms"], "3600000");
    assert_eq!(json["partitions"].as_array().unwrap().len(), 1);

    assert_eq!(h.table(&["topic", "add-partitions", "test", "--partitions", "6"]), "updated topic test (6 partitions)\n");
    let json = h.json(&["topic", "add-partitions", "other", "--count", "2"]);
    assert_eq!(json["name"], "other");
    assert_eq!(h.json(&["topic", "describe", "other"])["partitions"].as_array().unwrap().len(), 2);
    let fewer = h.fails(&["topic", "add-partitions", "test", "--partitions", "2"]);
    assert!(fewer.starts_with("streamctl: INVALID_PARTITIONS: "), "{fewer}");

    let again = h.fails(&["topic", "create", "test"]);
    assert!(again.starts_with("streamctl: TOPIC_ALREADY_EXISTS: "), "{again}");

    assert_eq!(h.table(&["topic", "delete", "test"]), "deleted topic test\n");
    assert_eq!(h.json(&["topic", "delete", "other"]), serde_json::json!({"deleted": "other"}));
    let gone = h.fails(&["topic", "describe", "test"]);
    assert!(gone.starts_with("streamctl: UNKNOWN_TOPIC_OR_PARTITION: "), "{gone}");
    assert_eq!(h.table(&["topic", "list"]), "NAME  PARTITIONS  MESSAGES  BYTES\n");
    assert_eq!(h.json(&["topic", "list"]), serde_json::json!([]));
}

#[test]
fn produce_and_consume() {
    let h = Harness::start();
    h.table(&["topic", "create", "test", "--partitions", "2"]);
    // As the design documents write it.
    let produced = h.table(&["produce", "test", "--partition", "0", "--value", "{\"id\":1}"]);
    assert_aligned(&produced);
    let table = rows(&produced);
    assert_eq!(table[0], ["TOPIC", "PARTITION", "OFFSET", "TIMESTAMP"]);
    assert_eq!(table[1][..3], ["test", "0", "0"]);
    assert!(table[1][3].ends_with('Z'), "{produced}");
    let json = h.json(&["produce", "test", "--partition", "0", "--value", "{\"id\":2}", "--key", "k", "-H", "trace=t1"]);
    assert_eq!((json["topic"].as_str(), json["partition"].as_i64(), json["offset"].as_i64()), (Some("test"), Some(0), Some(1)), "{json}");

    // One record per line of standard input.
    let out = h.run_with_stdin(&["produce", "test", "--partition", "1", "--key", "line"], "first\nsecond\nthird\n");
    let table = rows(&success(&out, &["produce from stdin"]));
    assert_eq!(table.len(), 4, "a header and three records: {table:?}");
    assert_eq!(table.iter().skip(1).map(|r| r[2].as_str()).collect::<Vec<_>>(), ["0", "1", "2"]);
    let out = h.run_with_stdin(&["produce", "test", "--partition", "1", "-o", "json"], "fourth\nfifth\n");
    let answers: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout).into_iter().map(|v| v.expect("JSON")).collect();
    assert_eq!(answers.iter().map(|a| a["offset"].as_i64().unwrap()).collect::<Vec<_>>(), [3, 4]);

    // As the design documents write it.
    let consumed = h.table(&["consume", "test", "--partition", "0", "--limit", "10"]);
    assert_aligned(&consumed);
    let table = rows(&consumed);
    assert_eq!(table[0], ["PARTITION", "OFFSET", "TIMESTAMP", "KEY", "HEADERS", "VALUE"]);
    assert_eq!(
        table[1].iter().map(String::as_str).filter(|c| !c.ends_with('Z')).collect::<Vec<_>>(),
        ["0", "0", "null", "-", "{\"id\":1}"]
    );
    assert_eq!(
        table[2].iter().map(String::as_str).filter(|c| !c.ends_with('Z')).collect::<Vec<_>>(),
        ["0", "1", "k", "trace=t1", "{\"id\":2}"]
    );
    let json = h.json(&["consume", "test", "--partition", "1", "--limit", "2"]);
    assert_eq!(json["topic"], "test");
    let values: Vec<&str> = json["messages"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
    assert_eq!(values, ["first", "second"]);
    assert_eq!(json["messages"][0]["key"], "line");
    assert_eq!(json["next_offset"], 2);

    // A start offset, and every partition when none is named.
    let from = rows(&h.table(&["consume", "test", "--partition", "1", "--offset", "3"]));
    assert_eq!(from.iter().skip(1).map(|r| r.last().unwrap().as_str()).collect::<Vec<_>>(), ["fourth", "fifth"]);
    let all = rows(&h.table(&["consume", "test"]));
    assert_eq!(all.len(), 1 + 7, "every record of both partitions");
    assert_eq!(all[0], ["PARTITION", "OFFSET", "TIMESTAMP", "KEY", "HEADERS", "VALUE"]);
    let json = h.json(&["consume", "test"]);
    assert_eq!(json.as_array().map(Vec::len), Some(2), "one document per partition: {json}");
    assert_eq!(json[1]["messages"].as_array().unwrap().len(), 5);
    let limited = h.json(&["consume", "test", "--limit", "3"]);
    let count: usize = limited.as_array().unwrap().iter().map(|p| p["messages"].as_array().unwrap().len()).sum();
    assert_eq!(count, 3, "--limit counts records across partitions");

    // A start time: everything from the first record's timestamp on, nothing from the future.
    let first_ts = json[1]["messages"][0]["timestamp"].as_i64().unwrap();
    let by_time = h.json(&["consume", "test", "--partition", "1", "--timestamp", &first_ts.to_string()]);
    assert_eq!(by_time["messages"].as_array().unwrap().len(), 5);
    let future = h.table(&["consume", "test", "--partition", "1", "--timestamp", "2999-01-01T00:00:00Z"]);
    assert_eq!(rows(&future).len(), 1, "the header alone: {future}");

    let unknown = h.fails(&["consume", "nope", "--partition", "0"]);
    assert!(unknown.starts_with("streamctl: UNKNOWN_TOPIC_OR_PARTITION: "), "{unknown}");
    let unknown = h.fails(&["produce", "test", "--partition", "9", "--value", "x"]);
    assert!(unknown.starts_with("streamctl: UNKNOWN_TOPIC_OR_PARTITION: "), "{unknown}");
}

#[test]
fn consume_follow_prints_new_records_as_they_come() {
    let h = Harness::start();
    h.table(&["topic", "create", "tail", "--partitions", "1"]);
    h.table(&["produce", "tail", "--value", "before"]);
    for format in ["table", "json"] {
        let mut child = streamctl()
            .args(["--api", &h.api, "consume", "tail", "--partition", "0", "--follow", "-o", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("streamctl runs");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut seen = String::new();
        let mut read_until = |needle: &str, seen: &mut String| {
            while !seen.contains(needle) {
                let mut line = String::new();
                assert!(stdout.read_line(&mut line).expect("read") > 0, "streamctl stopped before printing {needle}:\n{seen}");
                seen.push_str(&line);
            }
        };
        read_until("before", &mut seen);
        let value = format!("after-{format}");
        h.table(&["produce", "tail", "--value", &value]);
        read_until(&value, &mut seen);
        // The rest of that page's document: pretty-printed, it ends with a "}" line.
        while format == "json" && !seen.ends_with("\n}\n") {
            assert!(stdout.read_line(&mut seen).expect("read") > 0, "the document ends:\n{seen}");
        }
        assert!(child.try_wait().expect("status").is_none(), "--follow keeps running");
        child.kill().expect("stop streamctl");
        child.wait().expect("reaped");
        if format == "table" {
            assert!(seen.starts_with("PARTITION  OFFSET"), "{seen}");
            assert_eq!(seen.matches("PARTITION").count(), 1, "the header is printed once: {seen}");
        } else {
            let pages: Vec<Value> = serde_json::Deserializer::from_str(&seen).into_iter().map(|v| v.expect("JSON")).collect();
            assert_eq!(pages.last().unwrap()["messages"][0]["value"].as_str(), Some(value.as_str()));
        }
    }
    // With --limit, --follow stops by itself once it has that many.
    let out = h.run(&["consume", "tail", "--partition", "0", "--follow", "--limit", "2"]);
    assert_eq!(rows(&success(&out, &["follow with limit"])).len(), 3);
}

#[test]
fn groups_with_committed_offsets() {
    let h = Harness::start();
    h.table(&["topic", "create", "orders", "--partitions", "2"]);
    for i in 0..5 {
        h.table(&["produce", "orders", "--partition", "0", "--value", &format!("o{i}")]);
    }
    h.table(&["produce", "orders", "--partition", "1", "--value", "p"]);
    let mut kafka = h.kafka();
    kafka.commit("billing", "orders", &[(0, 2), (1, 1)]);
    kafka.commit("audit", "orders", &[(0, 5)]);

    let list = eventually("both groups listed", || {
        let out = h.table(&["group", "list"]);
        (rows(&out).len() == 3).then_some(out)
    });
    assert_aligned(&list);
    let table = rows(&list);
    assert_eq!(table[0], ["GROUP", "STATE", "PROTOCOL-TYPE", "MEMBERS", "COORDINATOR", "LAG"]);
    assert_eq!(table[1][0], "audit");
    assert_eq!(table[2][0], "billing");
    assert_eq!(table[2].last().unwrap(), "3", "billing is 3 behind on partition 0: {list}");
    let json = h.json(&["group", "list"]);
    assert_eq!(json["total"], 2, "{json}");
    assert_eq!(json["groups"][1]["group"], "billing");

    let described = h.run(&["group", "describe", "billing"]);
    let out = success(&described, &["group describe"]);
    assert_eq!(String::from_utf8_lossy(&described.stderr), "Consumer group 'billing' has no active members.\n");
    assert_aligned(&out);
    let table = rows(&out);
    assert_eq!(table[0], ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]);
    assert_eq!(table[1], ["billing", "orders", "0", "2", "5", "3", "-", "-", "-"]);
    assert_eq!(table[2], ["billing", "orders", "1", "1", "1", "0", "-", "-", "-"]);
    let json = h.json(&["group", "describe", "billing"]);
    assert_eq!(json["group"], "billing");
    assert_eq!(json["lag"], 3);
    assert_eq!(json["offsets"].as_array().unwrap().len(), 2);

    // A dry run changes nothing.
    let dry = h.run(&["group", "reset-offsets", "billing", "--topic", "orders", "--to-earliest"]);
    let out = success(&dry, &["reset dry run"]);
    assert!(String::from_utf8_lossy(&dry.stderr).contains("--execute"), "the dry run says so");
    assert_aligned(&out);
    assert_eq!(
        rows(&out),
        [vec!["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], vec!["billing", "orders", "0", "0"], vec!["billing", "orders", "1", "0"]]
    );
    assert_eq!(h.json(&["group", "describe", "billing"])["offsets"][0]["committed_offset"], 2);
    let json = h.json(&["group", "reset-offsets", "billing", "--topic", "orders:0", "--to-offset", "4"]);
    assert_eq!(json["executed"], false);
    assert_eq!(json["offsets"].as_array().unwrap().len(), 1, "only partition 0: {json}");
    assert_eq!(json["offsets"][0]["new_offset"], 4);

    // --execute commits them.
    let out = h.table(&["group", "reset-offsets", "billing", "--topic", "orders", "--to-latest", "--execute"]);
    assert_eq!(rows(&out)[1], ["billing", "orders", "0", "5"]);
    assert_eq!(h.json(&["group", "describe", "billing"])["lag"], 0);
    let json = h.json(&["group", "reset-offsets", "billing", "--topic", "orders:0", "--to-datetime", "1970-01-01T00:00:00", "--execute"]);
    assert_eq!((json["executed"].as_bool(), json["offsets"][0]["new_offset"].as_i64()), (Some(true), Some(0)), "{json}");
    let json = h.json(&["group", "reset-offsets", "billing", "--topic", "orders:0", "--to-timestamp", "32503680000000"]);
    assert_eq!(json["offsets"][0]["new_offset"], 5, "past every record: the end");

    assert_eq!(h.table(&["group", "delete", "billing"]), "deleted group billing\n");
    assert_eq!(h.json(&["group", "delete", "audit"]), serde_json::json!({"deleted": "audit"}));
    let gone = h.fails(&["group", "describe", "billing"]);
    assert!(gone.starts_with("streamctl: GROUP_ID_NOT_FOUND: "), "{gone}");
    assert_eq!(h.json(&["group", "list"])["total"], 0);
}

#[test]
fn groups_with_a_member() {
    let h = Harness::start();
    h.table(&["topic", "create", "events", "--partitions", "2"]);
    h.table(&["produce", "events", "--partition", "0", "--value", "e"]);
    let mut kafka = h.kafka();
    let member = kafka.join("live", "events", &[0, 1]);

    let out = eventually("the group to be Stable", || {
        let out = h.table(&["group", "list"]);
        out.contains("Stable").then_some(out)
    });
    assert_eq!(rows(&out)[1][..4], ["live", "Stable", "consumer", "1"]);
    let described = h.run(&["group", "describe", "live"]);
    let out = success(&described, &["group describe"]);
    assert!(described.stderr.is_empty(), "a group with members gets no note");
    assert_aligned(&out);
    let table = rows(&out);
    assert_eq!(table.len(), 3, "both assigned partitions, nothing committed yet:\n{out}");
    for (row, partition) in table[1..].iter().zip(["0", "1"]) {
        assert_eq!(row[..3], ["live", "events", partition]);
        assert_eq!(row[6], member);
        assert!(row[7].contains("127.0.0.1"), "the client's host: {out}");
        assert_eq!(row[8], "streamctl-tests");
    }
    let json = h.json(&["group", "describe", "live"]);
    assert_eq!(json["members"][0]["member_id"].as_str(), Some(member.as_str()));
    assert_eq!(json["members"][0]["assignments"][0]["partitions"], serde_json::json!([0, 1]));

    let busy = h.fails(&["group", "delete", "live"]);
    assert!(busy.starts_with("streamctl: NON_EMPTY_GROUP: "), "{busy}");
    let busy = h.fails(&["group", "reset-offsets", "live", "--topic", "events", "--to-earliest"]);
    assert!(busy.starts_with("streamctl: NON_EMPTY_GROUP: "), "{busy}");
}

#[test]
fn read_only_agents_refuse_writes() {
    let h = Harness::start_with(&["--http-read-only"]);
    let info = h.table(&["cluster", "info"]);
    assert!(info.contains("READ-ONLY   yes\n"), "{info}");
    assert_eq!(h.json(&["cluster", "info"])["read_only"], true);
    for args in [&["topic", "create", "t"][..], &["produce", "t", "--value", "x"], &["group", "delete", "g"]] {
        let refused = h.fails(args);
        assert!(refused.starts_with("streamctl: CLUSTER_AUTHORIZATION_FAILED: "), "{args:?}: {refused}");
    }
}

#[test]
fn unreachable_agent_is_one_clear_line() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let api = format!("http://127.0.0.1:{port}");
    for (args, env) in [(vec!["--api", api.as_str(), "topic", "list"], None), (vec!["cluster", "info", "-o", "json"], Some(api.as_str()))] {
        let mut cmd = streamctl();
        if let Some(addr) = env {
            cmd.env("STREAMHOUSE_ADDR", addr);
        }
        let out = cmd.args(&args).output().expect("streamctl runs");
        assert_eq!(
            failure(&out, &args),
            format!("streamctl: cannot reach the agent at {api}: connection refused (is it running? set --api or STREAMHOUSE_ADDR)")
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [&["topic"][..], &["consume"], &["group", "reset-offsets", "g", "--topic", "t"], &["-o", "yaml", "topic", "list"]] {
        let out = streamctl().args(args).output().expect("streamctl runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
