//! streamctl's commands and flags.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::format::parse_time;

#[derive(Debug, Parser)]
#[command(
    name = "streamctl",
    version,
    about = "Manage a StreamHouse cluster through an agent's HTTP API",
    after_help = "Examples:\n  streamctl topic create test --partitions 4\n  streamctl produce test --partition 0 --value '{\"id\":1}'\n  streamctl consume test --partition 0 --limit 10\n  streamctl group describe my-group"
)]
pub struct Cli {
    /// The agent's HTTP API address (any agent of the cluster will do).
    #[arg(long, global = true, env = "STREAMHOUSE_ADDR", default_value = "http://127.0.0.1:3001", value_name = "URL")]
    pub api: String,

    /// Output format: aligned tables for people, or the API's JSON for scripts.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The cluster as a whole.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The agents registered in the cluster.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Partition leases: which agent leads which partition, until when.
    #[command(subcommand)]
    Lease(LeaseCommand),
    /// Create, inspect and delete topics.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Write records to a topic: --value, or one record per line of standard input.
    Produce(ProduceArgs),
    /// Read records from a topic's partitions.
    Consume(ConsumeArgs),
    /// Consumer groups: their members, committed offsets and lag.
    #[command(subcommand)]
    Group(GroupCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Cluster id, version, uptime and counts of agents, topics, partitions, messages and groups.
    Info,
    /// Whether the agent is ready to serve, check by check; exits 1 when it is not.
    Health,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Every registered agent, its address and what it leads.
    List,
}

#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Every leased partition, its leader and epoch.
    List,
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Every topic with its partition count, messages and stored bytes.
    List,
    /// A topic's config, partitions (leader, offsets, size) and the groups reading it.
    Describe { topic: String },
    /// Create a topic.
    Create {
        topic: String,
        /// Number of partitions; the agent's default (--default-partitions) when left out.
        #[arg(long)]
        partitions: Option<i32>,
        /// A topic config entry, KEY=VALUE (repeatable), e.g. --config retention.ms=86400000.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// Delete a topic and its data.
    Delete { topic: String },
    /// Raise a topic's partition count to a new total (partitions are never removed).
    AddPartitions {
        topic: String,
        /// The new total number of partitions.
        #[arg(long, visible_alias = "count")]
        partitions: i32,
    },
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// The record's value; without it every line of standard input is one record.
    #[arg(long)]
    pub value: Option<String>,
    /// The records' key.
    #[arg(long)]
    pub key: Option<String>,
    /// The partition to write to; the agent chooses one when left out (by key, if there is one).
    #[arg(long)]
    pub partition: Option<i32>,
    /// A record header, KEY=VALUE (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// The partition to read; every partition of the topic when left out.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Start at this offset (the log start when neither --offset nor --timestamp is given).
    #[arg(long, conflicts_with = "timestamp")]
    pub offset: Option<i64>,
    /// Start at the first record at or after this time: Unix ms or a date like 2026-01-31T14:30:00 (UTC unless a zone follows).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub timestamp: Option<i64>,
    /// Stop after this many records (in all partitions together).
    #[arg(long, short = 'n')]
    pub limit: Option<u64>,
    /// Keep polling for new records until interrupted (Ctrl-C), instead of stopping at the end of the log.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Every consumer group with its state, members, coordinator and total lag.
    List,
    /// A group's committed offsets, lag and the member of each partition (kafka-consumer-groups --describe's columns).
    Describe { group: String },
    /// Delete a group with no members and its committed offsets.
    Delete { group: String },
    /// Move a group's committed offsets on one topic; a dry run showing the new offsets unless --execute.
    ResetOffsets(ResetArgs),
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    pub group: String,
    /// The topic, or TOPIC:P1,P2,... for some of its partitions (as kafka-consumer-groups takes it).
    #[arg(long, value_parser = parse_topic_partitions, value_name = "TOPIC[:PARTITIONS]")]
    pub topic: (String, Option<Vec<i32>>),
    #[command(flatten)]
    pub to: ResetTo,
    /// Commit the new offsets; without it nothing changes.
    #[arg(long)]
    pub execute: bool,
}

/// Exactly one target for the new offsets.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ResetTo {
    /// Each partition's log start.
    #[arg(long)]
    pub to_earliest: bool,
    /// Each partition's end (its high watermark): skip everything not yet read.
    #[arg(long)]
    pub to_latest: bool,
    /// This offset in every partition (kept within each partition's log).
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// The first record at or after this time, e.g. 2026-01-31T14:30:00.000 (UTC unless a zone follows).
    #[arg(long, value_parser = parse_time, value_name = "DATETIME")]
    pub to_datetime: Option<i64>,
    /// The first record at or after this Unix time in ms.
    #[arg(long, value_parser = parse_time, value_name = "MS")]
    pub to_timestamp: Option<i64>,
}

/// "KEY=VALUE" → (KEY, VALUE); the value may itself hold '='.
fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("'{s}' is not KEY=VALUE")),
    }
}

/// "orders" → all partitions; "orders:0,2" → partitions 0 and 2.
fn parse_topic_partitions(s: &str) -> Result<(String, Option<Vec<i32>>), String> {
    let Some((topic, list)) = s.split_once(':') else { return Ok((s.to_string(), None)) };
    let partitions = list
        .split(',')
        .map(|p| p.trim().parse::<i32>().map_err(|_| format!("'{s}': '{p}' is not a partition number (use TOPIC:0,1,2)")))
        .collect::<Result<Vec<_>, _>>()?;
    if topic.is_empty() {
        return Err(format!("'{s}' has no topic name"));
    }
    Ok((topic.to_string(), Some(partitions)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("streamctl").chain(args.iter().copied()))
    }

    #[test]
    fn the_documented_commands_parse() {
        let cli = parse(&["topic", "create", "test", "--partitions", "4"]).unwrap();
        assert!(matches!(cli.command, Command::Topic(TopicCommand::Create { ref topic, partitions: Some(4), .. }) if topic == "test"));
        let cli = parse(&["produce", "test", "--partition", "0", "--value", "{\"id\":1}"]).unwrap();
        let Command::Produce(p) = cli.command else { panic!("produce") };
        assert_eq!((p.topic.as_str(), p.partition, p.value.as_deref()), ("test", Some(0), Some("{\"id\":1}")));
        let cli = parse(&["consume", "test", "--partition", "0", "--limit", "10"]).unwrap();
        let Command::Consume(c) = cli.command else { panic!("consume") };
        assert_eq!((c.topic.as_str(), c.partition, c.limit, c.follow), ("test", Some(0), Some(10), false));
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = parse(&["topic", "list", "-o", "json", "--api", "http://a:1"]).unwrap();
        assert_eq!((cli.output, cli.api.as_str()), (Output::Json, "http://a:1"));
        let cli = parse(&["--output", "table", "cluster", "info"]).unwrap();
        assert_eq!(cli.output, Output::Table);
        assert!(parse(&["-o", "yaml", "cluster", "info"]).is_err());
    }

    #[test]
    fn configs_and_headers_are_key_values() {
        let cli = parse(&["topic", "create", "t", "--config", "retention.ms=1", "--config", "a=b=c"]).unwrap();
        let Command::Topic(TopicCommand::Create { configs, partitions: None, .. }) = cli.command else { panic!("create") };
        assert_eq!(configs, [("retention.ms".to_string(), "1".to_string()), ("a".to_string(), "b=c".to_string())]);
        assert!(parse(&["topic", "create", "t", "--config", "novalue"]).is_err());
        let cli = parse(&["produce", "t", "-H", "trace=1", "--key", "k"]).unwrap();
        let Command::Produce(p) = cli.command else { panic!("produce") };
        assert_eq!((p.headers.len(), p.key.as_deref(), p.value), (1, Some("k"), None));
    }

    #[test]
    fn consume_takes_one_start() {
        assert!(parse(&["consume", "t", "--offset", "5", "--timestamp", "0"]).is_err());
        let cli = parse(&["consume", "t", "--timestamp", "2023-11-14T22:13:20.123Z", "-f"]).unwrap();
        let Command::Consume(c) = cli.command else { panic!("consume") };
        assert_eq!((c.timestamp, c.follow, c.partition), (Some(1_700_000_000_123), true, None));
        assert!(parse(&["consume", "t", "--timestamp", "soon"]).is_err());
    }

    #[test]
    fn reset_offsets_needs_exactly_one_target() {
        assert!(parse(&["group", "reset-offsets", "g", "--topic", "t"]).is_err(), "no target");
        assert!(parse(&["group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"]).is_err(), "two targets");
        assert!(parse(&["group", "reset-offsets", "g", "--to-earliest"]).is_err(), "no topic");
        let cli = parse(&["group", "reset-offsets", "g", "--topic", "t:0,2", "--to-offset", "7", "--execute"]).unwrap();
        let Command::Group(GroupCommand::ResetOffsets(r)) = cli.command else { panic!("reset") };
        assert_eq!(r.topic, ("t".to_string(), Some(vec![0, 2])));
        assert_eq!((r.to.to_offset, r.execute), (Some(7), true));
        let cli = parse(&["group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "1970-01-01T00:00:01"]).unwrap();
        let Command::Group(GroupCommand::ResetOffsets(r)) = cli.command else { panic!("reset") };
        assert_eq!((r.topic.1, r.to.to_datetime, r.execute), (None, Some(1000), false));
        assert!(parse(&["group", "reset-offsets", "g", "--topic", "t:x", "--to-latest"]).is_err());
    }

    #[test]
    fn add_partitions_takes_the_new_total() {
        for flag in ["--partitions", "--count"] {
            let cli = parse(&["topic", "add-partitions", "t", flag, "6"]).unwrap();
            assert!(matches!(cli.command, Command::Topic(TopicCommand::AddPartitions { partitions: 6, .. })));
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
