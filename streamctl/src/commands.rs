//! Each command: its API calls and what it prints. Tables go through `render`; JSON output is the
//! API's answer pretty-printed. Commands that print as they go (`produce` from standard input,
//! `consume --follow`) print one JSON document per answer, a stream `jq` reads as it comes.

use std::io::{BufRead, ErrorKind, IsTerminal, Write};
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::cli::{
    AgentCommand, Cli, ClusterCommand, Command, ConsumeArgs, GroupCommand, LeaseCommand, Output, ProduceArgs, ResetArgs, TopicCommand,
};
use crate::client::{Client, Error, segment};
use crate::format::{StreamTable, Table, list};
use crate::render;

/// Most records the API hands out per call (its `limit` maximum).
const PAGE: u64 = 500;

/// Groups asked for per call of `group list`.
const GROUP_PAGE: u64 = 100;

/// How long `consume --follow` waits after finding nothing new before asking again.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

pub fn run(cli: &Cli) -> Result<(), Error> {
    let api = Client::new(&cli.api)?;
    let out = cli.output;
    match &cli.command {
        Command::Cluster(ClusterCommand::Info) => show(out, &api.get("/api/v1/cluster", &[])?, render::cluster_info),
        Command::Cluster(ClusterCommand::Health) => health(&api, out),
        Command::Agent(AgentCommand::List) => show(out, &api.get("/api/v1/agents", &[])?, |v| render::agents(v, now_ms())),
        Command::Lease(LeaseCommand::List) => show(out, &api.get("/api/v1/leases", &[])?, |v| render::leases(v, now_ms())),
        Command::Topic(t) => topic(&api, out, t),
        Command::Produce(args) => produce(&api, out, args),
        Command::Consume(args) => consume(&api, out, args),
        Command::Group(g) => group(&api, out, g),
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Writes `text` to standard output. A closed pipe (`streamctl consume -f t | head`) ends the
/// program quietly: whoever was reading has what they wanted.
fn emit(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Error::Message(format!("cannot write the output: {e}"))),
    }
}

fn pretty(v: &Value) -> String {
    let mut text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    text.push('\n');
    text
}

/// Prints `answer` as JSON or as `table` renders it.
fn show(out: Output, answer: &Value, table: impl Fn(&Value) -> String) -> Result<(), Error> {
    match out {
        Output::Json => emit(&pretty(answer)),
        Output::Table => emit(&table(answer)),
    }
}

/// `cluster health`: the readiness checks; exits non-zero when the agent is not ready, so scripts
/// and container health checks can use it.
fn health(api: &Client, out: Output) -> Result<(), Error> {
    let answer = api.get_any("/health/ready")?;
    if answer.status != 200 && answer.status != 503 {
        return Err(Error::Message(format!("{}/health/ready answered HTTP {}: {}", api.base(), answer.status, answer.body)));
    }
    show(out, &answer.body, render::health)?;
    if answer.status == 503 {
        let failing: Vec<&str> = answer.body["checks"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, ok)| ok.as_bool() == Some(name.as_str() == "shutting_down"))
            .map(|(name, _)| name.as_str())
            .collect();
        return Err(Error::Message(format!("the agent at {} is not ready (failing: {})", api.base(), failing.join(", "))));
    }
    Ok(())
}

fn topic(api: &Client, out: Output, command: &TopicCommand) -> Result<(), Error> {
    match command {
        TopicCommand::List => show(out, &api.get("/api/v1/topics", &[])?, render::topics),
        TopicCommand::Describe { topic } => show(out, &api.get(&format!("/api/v1/topics/{}", segment(topic)), &[])?, render::topic),
        TopicCommand::Create { topic, partitions, configs } => {
            let mut body = json!({ "name": topic });
            if let Some(p) = partitions {
                body["partitions"] = json!(p);
            }
            if !configs.is_empty() {
                body["config"] = Value::Object(configs.iter().map(|(k, v)| (k.clone(), json!(v))).collect());
            }
            show(out, &api.post("/api/v1/topics", &body)?, |t| render::topic_changed("created", t))
        }
        TopicCommand::Delete { topic } => {
            show(out, &api.delete(&format!("/api/v1/topics/{}", segment(topic)))?, |_| format!("deleted topic {topic}\n"))
        }
        TopicCommand::AddPartitions { topic, partitions } => {
            let path = format!("/api/v1/topics/{}/partitions", segment(topic));
            show(out, &api.post(&path, &json!({ "count": partitions }))?, |t| render::topic_changed("updated", t))
        }
    }
}

/// `produce`: one record from --value, else one per line of standard input, each printed as the
/// agent acknowledges it.
fn produce(api: &Client, out: Output, args: &ProduceArgs) -> Result<(), Error> {
    let mut body = json!({ "topic": args.topic });
    if let Some(key) = &args.key {
        body["key"] = json!(key);
    }
    if let Some(p) = args.partition {
        body["partition"] = json!(p);
    }
    if !args.headers.is_empty() {
        body["headers"] = Value::Object(args.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect());
    }
    let mut table = StreamTable::new(&render::PRODUCED_COLUMNS);
    let mut send = |value: &str| -> Result<(), Error> {
        body["value"] = json!(value);
        let answer = api.post("/api/v1/produce", &body)?;
        match out {
            Output::Json => emit(&pretty(&answer)),
            Output::Table => emit(&table.batch(&[render::produced(&answer)])),
        }
    };
    if let Some(value) = &args.value {
        return send(value);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        // Someone typing: say what is expected, as kafka-console-producer's prompt does.
        eprintln!("Type one record value per line; Ctrl-D ends.");
    }
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| Error::Message(format!("cannot read standard input: {e}")))?;
        send(&line)?;
    }
    Ok(())
}

/// Where reading a partition (re)starts.
enum Start {
    Offset(i64),
    Timestamp(i64),
    Beginning,
}

/// A partition being read: where the next call starts, and whether the last call reached the log's end.
struct Cursor {
    partition: i64,
    start: Start,
    caught_up: bool,
}

fn consume(api: &Client, out: Output, args: &ConsumeArgs) -> Result<(), Error> {
    let partitions: Vec<i64> = match args.partition {
        Some(p) => vec![i64::from(p)],
        None => {
            let topic = api.get(&format!("/api/v1/topics/{}", segment(&args.topic)), &[])?;
            list(&topic, "partitions").iter().filter_map(|p| p["partition"].as_i64()).collect()
        }
    };
    let first = || match (args.offset, args.timestamp) {
        (Some(o), _) => Start::Offset(o),
        (None, Some(ts)) => Start::Timestamp(ts),
        (None, None) => Start::Beginning,
    };
    let mut cursors: Vec<Cursor> = partitions.iter().map(|&partition| Cursor { partition, start: first(), caught_up: false }).collect();
    let mut remaining = args.limit.unwrap_or(u64::MAX);
    // Without --follow everything is printed at the end, as one aligned table or one JSON document
    // per partition (the pages' records joined).
    let mut collected: Vec<Value> = Vec::new();
    let mut table = StreamTable::new(&render::record_columns(true));
    while remaining > 0 {
        let mut got_any = false;
        for cursor in cursors.iter_mut().filter(|c| args.follow || !c.caught_up) {
            if remaining == 0 {
                break;
            }
            let limit = remaining.min(PAGE);
            let mut query = vec![("limit", limit.to_string())];
            match cursor.start {
                Start::Offset(o) => query.push(("offset", o.to_string())),
                Start::Timestamp(ts) => query.push(("timestamp", ts.to_string())),
                Start::Beginning => {}
            }
            let path = format!("/api/v1/topics/{}/partitions/{}/messages", segment(&args.topic), cursor.partition);
            let page = api.get(&path, &query)?;
            let records = list(&page, "messages");
            remaining -= (records.len() as u64).min(remaining);
            got_any |= !records.is_empty();
            let next = page["next_offset"].as_i64();
            let high_watermark = page["high_watermark"].as_i64();
            cursor.caught_up = records.is_empty() || matches!((next, high_watermark), (Some(n), Some(h)) if n >= h);
            if let Some(next) = next {
                cursor.start = Start::Offset(next);
            }
            if args.follow {
                if !records.is_empty() {
                    match out {
                        Output::Json => emit(&pretty(&page))?,
                        Output::Table => {
                            let rows: Vec<Vec<String>> = records.iter().map(|m| render::record(cursor.partition, m, true)).collect();
                            emit(&table.batch(&rows))?;
                        }
                    }
                }
            } else {
                merge_page(&mut collected, page);
            }
        }
        if !args.follow && cursors.iter().all(|c| c.caught_up) {
            break;
        }
        if args.follow && !got_any {
            sleep(POLL_INTERVAL);
        }
    }
    if args.follow {
        return Ok(());
    }
    match out {
        Output::Json if collected.len() == 1 => emit(&pretty(&collected[0])),
        Output::Json => emit(&pretty(&Value::Array(collected))),
        Output::Table => {
            let with_headers = collected.iter().flat_map(|p| list(p, "messages")).any(|m| !list(m, "headers").is_empty());
            let mut table = Table::new(&render::record_columns(with_headers));
            for page in &collected {
                let partition = page["partition"].as_i64().unwrap_or(-1);
                for m in list(page, "messages") {
                    table.row(render::record(partition, m, with_headers));
                }
            }
            emit(&table.render())
        }
    }
}

/// Adds a page of one partition's records to what was read of that partition so far: the records
/// appended, the offsets and watermarks taken from the newest page.
fn merge_page(collected: &mut Vec<Value>, mut page: Value) {
    let partition = page["partition"].as_i64();
    let Some(seen) = collected.iter_mut().find(|p| p["partition"].as_i64() == partition) else {
        collected.push(page);
        return;
    };
    let mut records = std::mem::take(&mut seen["messages"]);
    if let (Some(all), Some(new)) = (records.as_array_mut(), page["messages"].as_array_mut()) {
        all.append(new);
    }
    page["messages"] = records;
    *seen = page;
}

fn group(api: &Client, out: Output, command: &GroupCommand) -> Result<(), Error> {
    match command {
        GroupCommand::List => show(out, &all_groups(api)?, render::groups),
        GroupCommand::Describe { group } => {
            let answer = api.get(&format!("/api/v1/groups/{}", segment(group)), &[])?;
            if out == Output::Table
                && let Some(note) = render::group_note(&answer)
            {
                // On stderr, so that standard output is the table alone.
                eprintln!("{note}");
            }
            show(out, &answer, render::group)
        }
        GroupCommand::Delete { group } => {
            show(out, &api.delete(&format!("/api/v1/groups/{}", segment(group)))?, |_| format!("deleted group {group}\n"))
        }
        GroupCommand::ResetOffsets(args) => reset_offsets(api, out, args),
    }
}

/// Every group, page by page; JSON output is the first page's shape with all groups in it.
fn all_groups(api: &Client) -> Result<Value, Error> {
    let mut groups: Vec<Value> = Vec::new();
    let mut first: Option<Value> = None;
    loop {
        let query = [("offset", groups.len().to_string()), ("limit", GROUP_PAGE.to_string())];
        let mut page = api.get("/api/v1/groups", &query)?;
        let got = page["groups"].as_array_mut().map(std::mem::take).unwrap_or_default();
        let total = page["total"].as_u64().unwrap_or(0);
        let done = got.is_empty() || groups.len() + got.len() >= usize::try_from(total).unwrap_or(usize::MAX);
        groups.extend(got);
        first.get_or_insert(page);
        if done {
            break;
        }
    }
    let mut answer = first.unwrap_or_else(|| Value::Object(Map::new()));
    if answer["limit"].as_u64().is_some_and(|l| l < groups.len() as u64) {
        answer["limit"] = json!(groups.len());
    }
    answer["groups"] = Value::Array(groups);
    Ok(answer)
}

fn reset_offsets(api: &Client, out: Output, args: &ResetArgs) -> Result<(), Error> {
    let (topic, partitions) = &args.topic;
    let mut body = json!({ "topic": topic, "execute": args.execute });
    if let Some(p) = partitions {
        body["partitions"] = json!(p);
    }
    let to = &args.to;
    match (to.to_earliest, to.to_latest, to.to_offset, to.to_datetime.or(to.to_timestamp)) {
        (true, ..) => body["to"] = json!("earliest"),
        (_, true, ..) => body["to"] = json!("latest"),
        (_, _, Some(offset), _) => {
            body["to"] = json!("offset");
            body["offset"] = json!(offset);
        }
        (_, _, _, Some(ts)) => {
            body["to"] = json!("timestamp");
            body["timestamp"] = json!(ts);
        }
        // clap's argument group requires exactly one of them.
        _ => unreachable!("reset-offsets without a target"),
    }
    let answer = api.post(&format!("/api/v1/groups/{}/reset-offsets", segment(&args.group)), &body)?;
    show(out, &answer, render::reset)?;
    if out == Output::Table && !args.execute {
        eprintln!("Dry run: nothing was changed. Run again with --execute to commit these offsets.");
    }
    Ok(())
}
