//! The agent's metrics through real traffic: produce, fetch, a refused produce and a committed
//! offset move the counters and gauges the API spec names, and the exposition, rendered directly and
//! scraped from GET /metrics, is valid Prometheus text format (checked by `promtool check metrics`
//! when it is installed).

mod common;

use std::collections::BTreeMap;

use common::{TestAgent, batch, create, fetch_request, name, produce};
use kafka_protocol::messages::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::protocol::StrBytes;

#[tokio::test]
async fn traffic_moves_the_counters_and_the_exposition_parses() {
    // A long lease: a loaded machine stalling renewals must not turn these counts into NOT_LEADER.
    let agent = TestAgent::start(&["--lease-ttl-ms", "10000"]).await;
    let mut c = agent.client().await;
    create(&mut c, "metered", 1).await;
    assert_eq!(produce(&mut c, "metered", 0, batch(&[b"a", b"b", b"c"], None)).await, (0, 0));
    assert_eq!(produce(&mut c, "metered", 0, batch(&[b"d"], None)).await, (0, 3));
    assert_eq!(produce(&mut c, "metered", 7, batch(&[b"x"], None)).await.0, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    // From offset 1: the first batch (0-2) comes whole, but only its records 1 and 2 are new.
    let r = c.send(11, &fetch_request("metered", 0, 1, 0, 1 << 20)).await;
    let fetched = r.responses[0].partitions[0].records.as_ref().map_or(0, |r| r.len());
    assert!(fetched > 0);
    commit_offset(&mut c, "lagging", "metered", 1).await;

    let text = streamhouse::metrics::render(agent.agent().context()).await;
    let m = Exposition::parse(&text);
    let metered = [("topic", "metered")];
    assert_eq!(m.get("streamhouse_topic_records_in_total", &metered), 4.0);
    assert!(m.get("streamhouse_topic_bytes_in_total", &metered) > 0.0);
    assert_eq!(m.get("streamhouse_topic_records_out_total", &metered), 3.0, "records 1, 2 and 3");
    assert_eq!(m.get("streamhouse_topic_bytes_out_total", &metered), fetched as f64);
    assert_eq!(m.get("streamhouse_requests_total", &[("api", "Produce")]), 3.0);
    assert_eq!(m.get("streamhouse_requests_total", &[("api", "Fetch")]), 1.0);
    assert_eq!(m.get("streamhouse_request_duration_seconds_count", &[("api", "Produce")]), 3.0);
    assert_eq!(m.get("streamhouse_request_errors_total", &[("api", "Produce"), ("error", "UNKNOWN_TOPIC_OR_PARTITION")]), 1.0);
    assert_eq!(m.get("streamhouse_connections", &[]), 1.0);
    assert!(m.get("streamhouse_connections_accepted_total", &[]) >= 1.0);
    assert!(m.get("streamhouse_flush_duration_seconds_count", &[]) >= 1.0);
    assert!(m.get("streamhouse_flush_bytes_sum", &[]) > 0.0);
    assert!(m.get("streamhouse_object_store_requests_total", &[("operation", "put"), ("outcome", "ok")]) >= 1.0);
    assert!(m.get("streamhouse_object_store_request_duration_seconds_count", &[("operation", "put")]) >= 1.0);
    assert!(m.get("streamhouse_metadata_transaction_duration_seconds_count", &[("operation", "commit_flush")]) >= 1.0);
    assert_eq!(m.get("streamhouse_lease_acquisitions_total", &[]), 1.0);
    assert_eq!(m.get("streamhouse_partitions_led", &[]), 1.0);
    let partition = [("topic", "metered"), ("partition", "0")];
    assert_eq!(m.get("streamhouse_partition_high_watermark", &partition), 4.0);
    assert!(m.get("streamhouse_partition_leader_epoch", &partition) >= 0.0);
    let lag = [("group", "lagging"), ("topic", "metered"), ("partition", "0")];
    assert_eq!(m.get("streamhouse_consumer_group_lag", &lag), 3.0);
    assert_eq!(m.get("streamhouse_consumer_group_total_lag", &[("group", "lagging")]), 3.0);
    // The test batches are stamped in 2023: years behind.
    assert!(m.get("streamhouse_consumer_group_lag_seconds", &lag) > 86_400.0);
    assert_eq!(
        m.get("streamhouse_consumer_group_lag_seconds_max", &[("group", "lagging")]),
        m.get("streamhouse_consumer_group_lag_seconds", &lag)
    );
    assert_eq!(m.get("streamhouse_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    assert!(m.get("streamhouse_uptime_seconds", &[]) > 0.0);
    promtool_accepts(&text);

    // The same over HTTP, as Prometheus scrapes it; the first scrape is counted by the second.
    let (content_type, _) = scrape_http(&agent).await;
    assert_eq!(content_type, "text/plain; version=0.0.4");
    let (_, body) = scrape_http(&agent).await;
    let m = Exposition::parse(&body);
    assert_eq!(m.get("streamhouse_requests_total", &[("api", "Produce")]), 3.0);
    assert!(m.get("streamhouse_http_requests_total", &[("route", "/metrics"), ("status", "200")]) >= 1.0);
    promtool_accepts(&body);

    commit_offset(&mut c, "lagging", "metered", 4).await;
    let m = Exposition::parse(&streamhouse::metrics::render(agent.agent().context()).await);
    assert_eq!((m.get("streamhouse_consumer_group_lag", &lag), m.get("streamhouse_consumer_group_lag_seconds", &lag)), (0.0, 0.0));
    agent.stop().await;
}

/// GET /metrics on the agent's HTTP API: (content type, body).
async fn scrape_http(agent: &TestAgent) -> (String, String) {
    let url = format!("{}/metrics", agent.http());
    tokio::task::spawn_blocking(move || {
        let mut response = ureq::get(&url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        (content_type, response.body_mut().read_to_string().expect("a text body"))
    })
    .await
    .expect("the scrape ran")
}

/// A simple consumer's commit (no generation, no member), which makes this agent the group's coordinator.
async fn commit_offset(c: &mut common::RawClient, group: &str, topic: &str, offset: i64) {
    let commit = OffsetCommitRequest::default()
        .with_group_id(StrBytes::from_string(group.to_string()).into())
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(offset)]),
        ]);
    assert_eq!(c.send(8, &commit).await.topics[0].partitions[0].error_code, 0);
}

/// `promtool check metrics` on the exposition, when promtool is installed (Debian's `prometheus`
/// package, which scripts/test.sh installs).
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("promtool not installed: skipping `promtool check metrics` (apt-get install prometheus)");
        return;
    };
    child.stdin.take().expect("piped stdin").write_all(text.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics refused the exposition:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The samples of a text exposition, parsed strictly enough to catch a malformed line: every sample
/// belongs to a family declared by `# TYPE`, and its value is a number.
struct Exposition {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut typed = Vec::new();
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.push(rest.split(' ').next().expect("a family name").to_string());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value in {line:?}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, labels(rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels in {line:?}")))),
                None => (series, BTreeMap::new()),
            };
            let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).filter(|f| typed.iter().any(|t| t == f));
            assert!(typed.iter().any(|t| t == family.unwrap_or(name)), "{name} has no # TYPE line");
            samples.push((name.to_string(), labels, value));
        }
        Exposition { samples }
    }

    /// The value of the one sample of `name` carrying `labels` (and maybe others).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(found.len(), 1, "{name}{labels:?}: expected one sample, found {found:?}");
        found[0]
    }
}

/// `a="x",b="y"` (values escaped as the format says: \\, \" and \n).
fn labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad label in {text:?}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("dangling escape in {text:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {text:?}"),
            }
        };
        out.insert(key.trim_start_matches(',').to_string(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    out
}

/// The provisioned Grafana dashboard is well formed, uses the provisioned datasource, and queries
/// only metrics the agent exports (names taken from a live agent's exposition after traffic that
/// creates every labelled series).
#[tokio::test]
async fn the_dashboard_queries_only_exported_metrics() {
    // A long lease: a loaded machine stalling renewals must not turn these counts into NOT_LEADER.
    let agent = TestAgent::start(&["--lease-ttl-ms", "10000"]).await;
    let mut c = agent.client().await;
    create(&mut c, "shown", 1).await;
    produce(&mut c, "shown", 0, batch(&[b"a", b"b"], None)).await;
    produce(&mut c, "shown", 3, batch(&[b"x"], None)).await;
    c.send(11, &fetch_request("shown", 0, 0, 0, 1 << 20)).await;
    commit_offset(&mut c, "watched", "shown", 1).await;
    scrape_http(&agent).await;
    let (_, text) = scrape_http(&agent).await;
    agent.stop().await;
    // Family name -> type, from the `# TYPE` lines.
    let families: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_once(' ')).collect();
    let exported = |name: &str| {
        families.contains_key(name)
            || ["_bucket", "_sum", "_count"].iter().any(|s| name.strip_suffix(s).is_some_and(|f| families.get(f) == Some(&"histogram")))
    };

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/grafana/dashboards/streamhouse-overview.json");
    let json = std::fs::read_to_string(path).expect("the dashboard file");
    let dashboard: serde_json::Value = serde_json::from_str(&json).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "streamhouse-overview");
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = std::collections::HashSet::new();
    let mut used = std::collections::BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().expect("every panel has a title");
        assert!(ids.insert(p["id"].as_u64().expect("numeric id")), "panel id of {title} repeated");
        let grid = &p["gridPos"];
        let (x, w) = (grid["x"].as_u64().expect("x"), grid["w"].as_u64().expect("w"));
        assert!(x + w <= 24 && grid["h"].as_u64().is_some_and(|h| h > 0), "{title} does not fit the 24-column grid");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "prometheus", "{title}: the provisioned datasource");
        let targets = p["targets"].as_array().filter(|t| !t.is_empty()).unwrap_or_else(|| panic!("{title} has no query"));
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("{title}: a target without expr"));
            used.extend(metric_names(expr));
        }
    }
    let variables = dashboard["templating"]["list"].as_array().expect("templating list");
    for v in variables {
        used.extend(metric_names(v["definition"].as_str().unwrap_or_default()));
    }
    let unknown: Vec<&String> = used.iter().filter(|n| !exported(n)).collect();
    assert!(unknown.is_empty(), "the dashboard queries metrics the agent does not export: {unknown:?}");
    for needed in ["streamhouse_request_duration_seconds_bucket", "streamhouse_consumer_group_lag", "streamhouse_leaderless_partitions"] {
        assert!(used.contains(needed), "the dashboard should show {needed}");
    }
}

/// Every `streamhouse_...` identifier in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("streamhouse_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}
