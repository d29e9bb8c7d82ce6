//! Table output of each command, from the API's JSON answers. Pure functions of their input (and
//! of `now_ms` where ages are shown), so each is tested on answers written as the spec gives them.

use std::collections::HashMap;

use serde_json::Value;

use crate::format::{Align, Table, bytes, count, duration_secs, fields, int, int_with, list, payload, relative, text, timestamp};

use Align::{Left, Right};

pub fn cluster_info(c: &Value) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    fields(&[
        ("CLUSTER-ID", text(c, "cluster_id")),
        ("AGENT", text(c, "agent_id")),
        ("VERSION", text(c, "version")),
        ("UPTIME", int_with(c, "uptime_seconds", duration_secs)),
        ("READ-ONLY", yes_no(c["read_only"].as_bool().unwrap_or(false))),
        ("AGENTS", int_with(c, "agents", count)),
        ("TOPICS", int_with(c, "topics", count)),
        ("PARTITIONS", int_with(c, "partitions", count)),
        ("LEADERLESS", int_with(c, "leaderless_partitions", count)),
        ("MESSAGES", int_with(c, "messages", count)),
        ("BYTES", int_with(c, "bytes", bytes)),
        ("GROUPS", int_with(c, "groups", count)),
    ])
}

/// `/health/ready`'s answer: the overall status, then each check as "ok" or "FAILING".
pub fn health(h: &Value) -> String {
    let mut out = format!("STATUS  {}\n\n", text(h, "status"));
    let mut t = Table::new(&[("CHECK", Left), ("RESULT", Left)]);
    for (name, value) in h["checks"].as_object().into_iter().flatten() {
        // Every check is good when true except "shutting_down", which is good when false.
        let good = value.as_bool().map(|b| b != (name == "shutting_down")).unwrap_or(false);
        t.row(vec![name.clone(), if good { "ok" } else { "FAILING" }.to_string()]);
    }
    out.push_str(&t.render());
    out
}

pub fn agents(agents: &Value, now_ms: i64) -> String {
    let mut t = Table::new(&[
        ("ID", Right),
        ("ADDRESS", Left),
        ("ZONE", Left),
        ("GROUP", Left),
        ("PARTITIONS-LED", Right),
        ("GROUPS-COORDINATED", Right),
        ("LAST-HEARTBEAT", Left),
        ("REGISTRATION-EXPIRES", Left),
    ]);
    for a in agents.as_array().map_or(&[][..], Vec::as_slice) {
        t.row(vec![
            text(a, "id"),
            text(a, "address"),
            text(a, "zone"),
            text(a, "group"),
            int_with(a, "partitions_led", count),
            int_with(a, "groups_coordinated", count),
            int(a, "last_heartbeat_ms").map_or_else(|| "-".into(), |ms| relative(ms, now_ms)),
            int(a, "registration_expires_ms").map_or_else(|| "-".into(), |ms| relative(ms, now_ms)),
        ]);
    }
    t.render()
}

pub fn leases(leases: &Value, now_ms: i64) -> String {
    let mut t = Table::new(&[("TOPIC", Left), ("PARTITION", Right), ("AGENT", Right), ("EPOCH", Right), ("EXPIRES", Left)]);
    for l in leases.as_array().map_or(&[][..], Vec::as_slice) {
        t.row(vec![
            text(l, "topic"),
            text(l, "partition"),
            text(l, "agent_id"),
            text(l, "epoch"),
            int(l, "expires_ms").map_or_else(|| "-".into(), |ms| relative(ms, now_ms)),
        ]);
    }
    t.render()
}

pub fn topics(topics: &Value) -> String {
    let mut t = Table::new(&[("NAME", Left), ("PARTITIONS", Right), ("MESSAGES", Right), ("BYTES", Right)]);
    for topic in topics.as_array().map_or(&[][..], Vec::as_slice) {
        t.row(vec![
            text(topic, "name"),
            int_with(topic, "partitions", count),
            int_with(topic, "messages", count),
            int_with(topic, "bytes", bytes),
        ]);
    }
    t.render()
}

/// `topic describe`: a summary, the config, the partitions and the groups reading the topic.
pub fn topic(topic: &Value) -> String {
    let partitions = list(topic, "partitions");
    let mut out = fields(&[
        ("TOPIC", text(topic, "name")),
        ("ID", text(topic, "id")),
        ("PARTITIONS", count(partitions.len() as i64)),
        ("MESSAGES", int_with(topic, "messages", count)),
        ("BYTES", int_with(topic, "bytes", bytes)),
        ("CONFIG", config(&topic["config"])),
    ]);
    out.push('\n');
    let mut t = Table::new(&[
        ("PARTITION", Right),
        ("LEADER", Right),
        ("EPOCH", Right),
        ("LOG-START-OFFSET", Right),
        ("HIGH-WATERMARK", Right),
        ("MESSAGES", Right),
        ("BYTES", Right),
    ]);
    for p in partitions {
        t.row(vec![
            text(p, "partition"),
            text(p, "leader"),
            text(p, "epoch"),
            text(p, "log_start_offset"),
            text(p, "high_watermark"),
            int_with(p, "messages", count),
            int_with(p, "bytes", bytes),
        ]);
    }
    out.push_str(&t.render());
    let groups = list(topic, "groups");
    if !groups.is_empty() {
        let mut t = Table::new(&[("GROUP", Left), ("LAG", Right)]);
        for g in groups {
            t.row(vec![text(g, "group"), int_with(g, "lag", count)]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    out
}

/// A topic's config on one line, "k=v, k=v" sorted by key; "(defaults)" when empty.
fn config(config: &Value) -> String {
    let Some(map) = config.as_object().filter(|m| !m.is_empty()) else { return "(defaults)".into() };
    let mut entries: Vec<String> =
        map.iter().map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect();
    entries.sort();
    entries.join(", ")
}

/// The one-line confirmation of `topic create`/`add-partitions` (the answer is the topic).
pub fn topic_changed(verb: &str, topic: &Value) -> String {
    let partitions = match &topic["partitions"] {
        Value::Array(a) => a.len() as i64,
        other => other.as_i64().unwrap_or(0),
    };
    format!("{verb} topic {} ({} partition{})\n", text(topic, "name"), count(partitions), if partitions == 1 { "" } else { "s" })
}

pub const PRODUCED_COLUMNS: [(&str, Align); 4] = [("TOPIC", Left), ("PARTITION", Right), ("OFFSET", Right), ("TIMESTAMP", Left)];

/// A row of `produce`'s table from the API's answer.
pub fn produced(p: &Value) -> Vec<String> {
    vec![text(p, "topic"), text(p, "partition"), text(p, "offset"), int_with(p, "timestamp", timestamp)]
}

/// `consume`'s columns; HEADERS only when some record has headers, as most have none.
pub fn record_columns(with_headers: bool) -> Vec<(&'static str, Align)> {
    let mut columns = vec![("PARTITION", Right), ("OFFSET", Right), ("TIMESTAMP", Left), ("KEY", Left), ("VALUE", Left)];
    if with_headers {
        columns.insert(4, ("HEADERS", Left));
    }
    columns
}

/// A row of `consume`'s table for record `m` of `partition`.
pub fn record(partition: i64, m: &Value, with_headers: bool) -> Vec<String> {
    let mut row = vec![
        partition.to_string(),
        text(m, "offset"),
        int_with(m, "timestamp", timestamp),
        payload(&m["key"], &m["key_encoding"]),
        payload(&m["value"], &m["value_encoding"]),
    ];
    if with_headers {
        let headers: Vec<String> =
            list(m, "headers").iter().map(|h| format!("{}={}", text(h, "key"), payload(&h["value"], &h["value_encoding"]))).collect();
        row.insert(4, if headers.is_empty() { "-".into() } else { headers.join(",") });
    }
    row
}

pub fn groups(page: &Value) -> String {
    let mut t = Table::new(&[
        ("GROUP", Left),
        ("STATE", Left),
        ("PROTOCOL-TYPE", Left),
        ("MEMBERS", Right),
        ("COORDINATOR", Right),
        ("LAG", Right),
    ]);
    for g in list(page, "groups") {
        t.row(vec![
            text(g, "group"),
            text(g, "state"),
            text(g, "protocol_type"),
            int_with(g, "members", count),
            text(g, "coordinator"),
            int_with(g, "lag", count),
        ]);
    }
    t.render()
}

/// `group describe` as kafka-consumer-groups --describe prints it: one row per partition with a
/// committed offset or an owner, offsets and lag as plain numbers (scripts parse them).
pub fn group(g: &Value) -> String {
    let name = text(g, "group");
    // member id → (host, client id), and which member owns each assigned partition.
    let mut members: HashMap<&str, (String, String)> = HashMap::new();
    let mut owner: HashMap<(String, i64), String> = HashMap::new();
    for m in list(g, "members") {
        let id = m["member_id"].as_str().unwrap_or("");
        members.insert(id, (text(m, "client_host"), text(m, "client_id")));
        for a in list(m, "assignments") {
            for p in list(a, "partitions") {
                owner.insert((text(a, "topic"), p.as_i64().unwrap_or(-1)), id.to_string());
            }
        }
    }
    // Rows: (topic, partition, current, log end, lag, member)
    let mut rows: Vec<(String, i64, String, String, String, Option<String>)> = Vec::new();
    for o in list(g, "offsets") {
        let key = (text(o, "topic"), int(o, "partition").unwrap_or(-1));
        let member = o["member_id"].as_str().map(str::to_string).or_else(|| owner.get(&key).cloned());
        owner.remove(&key);
        rows.push((key.0, key.1, text(o, "committed_offset"), text(o, "log_end_offset"), text(o, "lag"), member));
    }
    // Assigned partitions with nothing committed yet, shown with "-" as Kafka's tool does.
    for ((topic, partition), member) in owner {
        rows.push((topic, partition, "-".into(), "-".into(), "-".into(), Some(member)));
    }
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut t = Table::new(&[
        ("GROUP", Left),
        ("TOPIC", Left),
        ("PARTITION", Right),
        ("CURRENT-OFFSET", Right),
        ("LOG-END-OFFSET", Right),
        ("LAG", Right),
        ("CONSUMER-ID", Left),
        ("HOST", Left),
        ("CLIENT-ID", Left),
    ]);
    for (topic, partition, current, end, lag, member) in rows {
        let (host, client) = member.as_deref().and_then(|m| members.get(m)).cloned().unwrap_or_else(|| ("-".into(), "-".into()));
        t.row(vec![name.clone(), topic, partition.to_string(), current, end, lag, member.unwrap_or_else(|| "-".into()), host, client]);
    }
    t.render()
}

/// The note kafka-consumer-groups prints for a group nobody is in.
pub fn group_note(g: &Value) -> Option<String> {
    list(g, "members").is_empty().then(|| format!("Consumer group '{}' has no active members.", text(g, "group")))
}

/// `group reset-offsets`: kafka-consumer-groups' columns for the new offsets.
pub fn reset(r: &Value) -> String {
    let mut t = Table::new(&[("GROUP", Left), ("TOPIC", Left), ("PARTITION", Right), ("NEW-OFFSET", Right)]);
    let group = text(r, "group");
    for o in list(r, "offsets") {
        t.row(vec![group.clone(), text(o, "topic"), text(o, "partition"), text(o, "new_offset")]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cluster_info_is_label_value_lines() {
        let c = json!({"cluster_id": "c-1", "agent_id": 0, "version": "0.1.0", "uptime_seconds": 3725, "read_only": false, "agents": 3,
            "topics": 2, "partitions": 8, "leaderless_partitions": 0, "messages": 1234567, "bytes": 2048, "groups": 1});
        let out = cluster_info(&c);
        assert!(out.starts_with("CLUSTER-ID  c-1\nAGENT       0\n"), "{out}");
        assert!(out.contains("UPTIME      1h 02m\n"), "{out}");
        assert!(out.contains("MESSAGES    1,234,567\n"), "{out}");
        assert!(out.contains("BYTES       2.0 KiB\n"), "{out}");
        assert!(out.contains("READ-ONLY   no\n"), "{out}");
    }

    #[test]
    fn health_marks_failing_checks() {
        let h = json!({"status": "not_ready", "checks": {"kafka_listener": true, "metadata_store": false, "shutting_down": false}});
        assert_eq!(
            health(&h),
            "STATUS  not_ready\n\nCHECK           RESULT\nkafka_listener  ok\nmetadata_store  FAILING\nshutting_down   ok\n"
        );
    }

    #[test]
    fn agents_and_leases_show_ages() {
        let a = json!([{"id": 1, "address": "a:9092", "zone": null, "group": "default", "last_heartbeat_ms": 9_000, "registration_expires_ms": 12_000,
            "partitions_led": 1200, "groups_coordinated": 3}]);
        let out = agents(&a, 10_000);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "ID  ADDRESS  ZONE  GROUP    PARTITIONS-LED  GROUPS-COORDINATED  LAST-HEARTBEAT  REGISTRATION-EXPIRES");
        assert_eq!(lines[1], " 1  a:9092   -     default           1,200                   3  1.0s ago        in 2.0s");
        let l = json!([{"topic": "t", "partition": 3, "agent_id": 1, "epoch": 7, "expires_ms": 11_500}]);
        assert_eq!(leases(&l, 10_000), "TOPIC  PARTITION  AGENT  EPOCH  EXPIRES\nt              3      1      7  in 1.5s\n");
        assert_eq!(leases(&json!([]), 0), "TOPIC  PARTITION  AGENT  EPOCH  EXPIRES\n", "no leases: the header alone");
    }

    #[test]
    fn topics_list_and_describe() {
        let list = json!([{"name": "orders", "id": "x", "partitions": 4, "messages": 12345, "bytes": 1_572_864, "config": {}}]);
        assert_eq!(topics(&list), "NAME    PARTITIONS  MESSAGES    BYTES\norders           4    12,345  1.5 MiB\n");
        let t = json!({"name": "orders", "id": "x", "config": {"retention.ms": "1000", "cleanup.policy": "delete"}, "messages": 3, "bytes": 10,
            "partitions": [{"partition": 0, "leader": 1, "epoch": 2, "log_start_offset": 0, "high_watermark": 3, "messages": 3, "bytes": 10},
                           {"partition": 1, "leader": null, "epoch": 0, "log_start_offset": 0, "high_watermark": 0, "messages": 0, "bytes": 0}],
            "groups": [{"group": "g", "lag": 2}]});
        let out = topic(&t);
        assert!(out.contains("PARTITIONS  2\n"), "{out}");
        assert!(out.contains("CONFIG      cleanup.policy=delete, retention.ms=1000\n"), "{out}");
        assert!(out.contains("PARTITION  LEADER  EPOCH  LOG-START-OFFSET  HIGH-WATERMARK  MESSAGES  BYTES\n"), "{out}");
        assert!(out.contains("        1       -      0                 0               0         0    0 B\n"), "{out}");
        assert!(out.ends_with("GROUP  LAG\ng        2\n"), "{out}");
        assert!(
            !topic(&json!({"name": "t", "config": {}, "partitions": [], "groups": []})).contains("GROUP"),
            "no groups table when none read it"
        );
        assert_eq!(topic_changed("created", &json!({"name": "t", "partitions": 4})), "created topic t (4 partitions)\n");
        assert_eq!(topic_changed("updated", &json!({"name": "t", "partitions": [{"partition": 0}]})), "updated topic t (1 partition)\n");
    }

    #[test]
    fn records_show_keys_values_and_headers() {
        let m = json!({"offset": 5, "timestamp": 0, "key": null, "key_encoding": "utf8", "value": "{\"id\":1}", "value_encoding": "utf8",
            "headers": [{"key": "trace", "value": "abc", "value_encoding": "utf8"}]});
        assert_eq!(record(2, &m, false), ["2", "5", "1970-01-01T00:00:00.000Z", "null", "{\"id\":1}"]);
        assert_eq!(record(2, &m, true)[4], "trace=abc");
        assert_eq!(record_columns(true)[4].0, "HEADERS");
        assert_eq!(
            produced(&json!({"topic": "t", "partition": 0, "offset": 9, "timestamp": 1000})),
            ["t", "0", "9", "1970-01-01T00:00:01.000Z"]
        );
    }

    #[test]
    fn group_describe_has_kafka_consumer_groups_columns() {
        let g = json!({"group": "g", "state": "Stable", "protocol_type": "consumer", "protocol": "range", "coordinator": 0, "lag": 3,
            "members": [{"member_id": "m-1", "client_id": "c1", "client_host": "/127.0.0.1",
                         "assignments": [{"topic": "t", "partitions": [0, 1]}]}],
            "offsets": [{"topic": "t", "partition": 0, "committed_offset": 7, "log_end_offset": 10, "lag": 3, "member_id": "m-1"},
                        {"topic": "old", "partition": 0, "committed_offset": 1, "log_end_offset": 1, "lag": 0, "member_id": null}]});
        let out = group(&g);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST        CLIENT-ID");
        assert_eq!(lines[1], "g      old            0               1               1    0  -            -           -");
        assert_eq!(lines[2], "g      t              0               7              10    3  m-1          /127.0.0.1  c1");
        assert_eq!(
            lines[3], "g      t              1               -               -    -  m-1          /127.0.0.1  c1",
            "assigned, nothing committed"
        );
        assert_eq!(group_note(&g), None);
        let empty = json!({"group": "g", "state": "Empty", "members": [], "offsets": []});
        assert_eq!(group_note(&empty).as_deref(), Some("Consumer group 'g' has no active members."));
    }

    #[test]
    fn groups_and_resets() {
        let page = json!({"total": 1, "offset": 0, "limit": 100,
            "groups": [{"group": "g", "state": "Empty", "protocol_type": "consumer", "members": 0, "coordinator": null, "lag": 12000}]});
        assert_eq!(
            groups(&page),
            "GROUP  STATE  PROTOCOL-TYPE  MEMBERS  COORDINATOR     LAG\ng      Empty  consumer             0            -  12,000\n"
        );
        let r =
            json!({"group": "g", "executed": false, "offsets": [{"topic": "t", "partition": 0, "current_offset": null, "new_offset": 4}]});
        assert_eq!(reset(&r), "GROUP  TOPIC  PARTITION  NEW-OFFSET\ng      t              0           4\n");
    }
}
