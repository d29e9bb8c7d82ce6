//! Command-line flags and their `STREAMHOUSE_*` environment variables. A bare `streamhouse` runs the
//! embedded default: 127.0.0.1:9092, SQLite and objects under `./data`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(name = "streamhouse", version, about = "A Kafka-compatible streaming broker whose data lives in object storage")]
pub struct Config {
    /// Address to accept Kafka connections on.
    #[arg(long, env = "STREAMHOUSE_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,

    /// host:port that clients are told to connect to (Metadata's broker list); defaults to --listen.
    #[arg(long, env = "STREAMHOUSE_ADVERTISED_ADDRESS")]
    pub advertised_address: Option<String>,

    /// Address of the HTTP API (JSON under /api/v1, /health/live, /health/ready, /metrics), or `off`.
    #[arg(long, env = "STREAMHOUSE_HTTP_LISTEN", default_value = "127.0.0.1:3001")]
    pub http_listen: Listener,

    /// Address of the web console (its pages and the same API, so the pages call it same-origin), or `off`.
    #[arg(long, env = "STREAMHOUSE_CONSOLE_LISTEN", default_value = "127.0.0.1:3002")]
    pub console_listen: Listener,

    /// Refuse every write through the HTTP API and hide the console's write controls.
    #[arg(long, env = "STREAMHOUSE_HTTP_READ_ONLY")]
    pub http_read_only: bool,

    /// Log lines as human-readable text or as one JSON object per line (for log shippers).
    #[arg(long, env = "STREAMHOUSE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// This agent's id, the Kafka node id shown to clients.
    #[arg(long, env = "STREAMHOUSE_AGENT_ID", default_value_t = 0)]
    pub agent_id: i32,

    /// Directory for the embedded metadata database and object store.
    #[arg(long, env = "STREAMHOUSE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Metadata store URL: sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB. Defaults to
    /// sqlite://DATA_DIR/metadata.db. Its password is never logged, and --help does not show it.
    #[arg(long, env = "STREAMHOUSE_METADATA_URL", hide_env_values = true)]
    pub metadata_url: Option<String>,

    /// Object store URL: file://DIR. Defaults to file://DATA_DIR/objects.
    #[arg(long, env = "STREAMHOUSE_OBJECT_STORE_URL")]
    pub object_store_url: Option<String>,

    /// Flush pending batches once they hold this many bytes.
    #[arg(long, env = "STREAMHOUSE_FLUSH_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub flush_bytes: usize,

    /// Flush pending batches once the oldest has waited this long (ms). Producers with acks=1/all
    /// wait at least this long. Default: 1 for file://, 20 for s3:// (fewer, larger objects: each PUT
    /// costs money and each flush is one metadata transaction).
    #[arg(long, env = "STREAMHOUSE_FLUSH_INTERVAL_MS")]
    pub flush_interval_ms: Option<u64>,

    /// Objects being written at once; their commits still happen in order.
    #[arg(long, env = "STREAMHOUSE_MAX_FLUSHES_IN_FLIGHT", default_value_t = 4)]
    pub max_flushes_in_flight: usize,

    /// Create a topic when a client asks for one that does not exist (Kafka's auto.create.topics.enable).
    #[arg(long, env = "STREAMHOUSE_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,

    /// Partition count of auto-created topics and of CreateTopics requests that leave it to the broker.
    #[arg(long, env = "STREAMHOUSE_DEFAULT_PARTITIONS", default_value_t = 1)]
    pub default_partitions: i32,

    /// Bytes of produced batches waiting for a flush, in all: past it connections stop reading
    /// requests until flushes catch up (back-pressure, not unbounded memory).
    #[arg(long, env = "STREAMHOUSE_WRITE_BUFFER_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub write_buffer_bytes: usize,

    /// Most bytes one Fetch response carries, whatever the client asks (Kafka's fetch.max.bytes).
    #[arg(long, env = "STREAMHOUSE_FETCH_MAX_BYTES", default_value_t = 55 * 1024 * 1024)]
    pub fetch_max_bytes: usize,

    /// Most client connections the agent keeps open; more are closed at once (Kafka's max.connections).
    #[arg(long, env = "STREAMHOUSE_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Most connections from one IP address (Kafka's max.connections.per.ip).
    #[arg(long, env = "STREAMHOUSE_MAX_CONNECTIONS_PER_IP", default_value_t = 1_000)]
    pub max_connections_per_ip: usize,

    /// A connection with nothing in flight that sends nothing for this long is closed (Kafka's
    /// connections.max.idle.ms).
    #[arg(long, env = "STREAMHOUSE_CONNECTIONS_MAX_IDLE_MS", default_value_t = 600_000)]
    pub connections_max_idle_ms: u64,

    /// Most partitions one topic may have (CreateTopics and CreatePartitions beyond it answer
    /// INVALID_PARTITIONS).
    #[arg(long, env = "STREAMHOUSE_MAX_PARTITIONS_PER_TOPIC", default_value_t = 10_000)]
    pub max_partitions_per_topic: i32,

    /// Most partitions in the whole cluster (creations beyond it answer POLICY_VIOLATION).
    #[arg(long, env = "STREAMHOUSE_MAX_PARTITIONS", default_value_t = 100_000)]
    pub max_partitions: i64,

    /// How long a request may take before it is answered with a retriable error (REQUEST_TIMED_OUT,
    /// or COORDINATOR_NOT_AVAILABLE for a group's APIs), unless the request carries its own bound
    /// (Fetch's max_wait_ms, Produce's timeout_ms, JoinGroup's rebalance timeout). Keep it below the
    /// clients' request timeouts (30 s in Java and kafkajs, 60 s in librdkafka).
    #[arg(long, env = "STREAMHOUSE_REQUEST_DEADLINE_MS", default_value_t = 10_000)]
    pub request_deadline_ms: u64,

    /// Largest request frame accepted; a bigger one closes the connection (socket.request.max.bytes).
    #[arg(long, env = "STREAMHOUSE_MAX_REQUEST_BYTES", default_value_t = streamhouse_protocol::frame::DEFAULT_MAX_REQUEST_BYTES)]
    pub max_request_bytes: usize,

    /// Shifts this agent's wall clock by this many ms (negative: behind), to test how a cluster
    /// copes with a machine whose clock is wrong. Test-only, hence hidden.
    #[arg(long, hide = true, default_value_t = 0, allow_hyphen_values = true)]
    pub clock_offset_ms: i64,

    /// How long a partition or group lease lasts without renewal (ms). Leases are renewed every
    /// third of it; a dead agent's partitions move after at most this long.
    #[arg(long, env = "STREAMHOUSE_LEASE_TTL_MS", default_value_t = 3_000)]
    pub lease_ttl_ms: u64,

    /// This agent's availability zone; consumers that set client.rack to it read from it (KIP-392).
    #[arg(long, env = "STREAMHOUSE_ZONE")]
    pub zone: Option<String>,

    /// The agent group this agent belongs to; a topic with config streamhouse.agent.group=NAME is
    /// led only by agents of that group.
    #[arg(long, env = "STREAMHOUSE_AGENT_GROUP", default_value = "default")]
    pub agent_group: String,

    /// How often unreferenced objects are looked for and deleted (seconds; 0 turns the sweeper off).
    #[arg(long, env = "STREAMHOUSE_SWEEP_INTERVAL_SECS", default_value_t = 300)]
    pub sweep_interval_secs: u64,

    /// How old an unreferenced object must be before the sweeper deletes it (seconds). A flush
    /// whose object is half this old by the time it commits is refused (retriable), so keep it far
    /// above the time a flush takes.
    #[arg(long, env = "STREAMHOUSE_SWEEP_GRACE_SECS", default_value_t = 600)]
    pub sweep_grace_secs: u64,

    /// Bytes of recently committed batches kept in memory per partition, to serve tailing consumers.
    #[arg(long, env = "STREAMHOUSE_TAIL_CACHE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub tail_cache_bytes: usize,

    /// Recent batches kept in memory for all partitions together: a partition that pushes past it
    /// gives up its oldest runs.
    #[arg(long, env = "STREAMHOUSE_TAIL_CACHE_TOTAL_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub tail_cache_total_bytes: usize,

    /// Bytes of object ranges cached in memory for consumers reading older data.
    #[arg(long, env = "STREAMHOUSE_READ_CACHE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub read_cache_bytes: usize,

    /// How long a new consumer group waits for more members before its first rebalance completes
    /// (group.initial.rebalance.delay.ms; Kafka's default of 3 s is why first records come late).
    #[arg(long, env = "STREAMHOUSE_GROUP_INITIAL_REBALANCE_DELAY_MS", default_value_t = 100)]
    pub group_initial_rebalance_delay_ms: u64,

    /// Committed offsets of a group with no members are deleted after this long (offsets.retention.minutes).
    #[arg(long, env = "STREAMHOUSE_OFFSETS_RETENTION_MINUTES", default_value_t = 10_080)]
    pub offsets_retention_minutes: u64,

    /// An idempotent producer that has not written to a partition for this long (ms) is forgotten
    /// there, and its next batch is accepted whatever its sequence (Kafka's producer.id.expiration.ms).
    #[arg(long, env = "STREAMHOUSE_PRODUCER_ID_EXPIRATION_MS", default_value_t = 86_400_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub producer_id_expiration_ms: u64,

    /// How often expired producers are looked for (ms; Kafka's producer.id.expiration.check.interval.ms).
    #[arg(long, env = "STREAMHOUSE_PRODUCER_ID_EXPIRATION_CHECK_INTERVAL_MS", default_value_t = 600_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub producer_id_expiration_check_interval_ms: u64,
}

/// A listening address, or `off` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener(pub Option<SocketAddr>);

impl std::str::FromStr for Listener {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Listener(None));
        }
        s.parse().map(|a| Listener(Some(a))).map_err(|_| format!("'{s}' is neither host:port (an IP address and a port) nor 'off'"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    pub fn metadata_url(&self) -> String {
        self.metadata_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("metadata.db").display()))
    }

    pub fn object_store_url(&self) -> String {
        self.object_store_url.clone().unwrap_or_else(|| format!("file://{}", self.data_dir.join("objects").display()))
    }

    /// The advertised (host, port), from --advertised-address or else --listen.
    pub fn advertised(&self) -> Result<(String, i32), String> {
        let Some(addr) = &self.advertised_address else {
            return Ok((self.listen.ip().to_string(), i32::from(self.listen.port())));
        };
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("--advertised-address '{addr}' must be host:port"))?;
        let port = port.parse::<u16>().map_err(|_| format!("--advertised-address '{addr}' has a bad port"))?;
        Ok((host.trim_matches(['[', ']']).to_string(), i32::from(port)))
    }

    pub fn flush_interval(&self) -> Duration {
        let local = self.object_store_url().starts_with("file://");
        Duration::from_millis(self.flush_interval_ms.unwrap_or(if local { 1 } else { 20 }))
    }

    pub fn request_deadline(&self) -> Duration {
        Duration::from_millis(self.request_deadline_ms.max(1))
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    pub fn group_initial_rebalance_delay(&self) -> Duration {
        Duration::from_millis(self.group_initial_rebalance_delay_ms)
    }

    pub fn offsets_retention(&self) -> Duration {
        Duration::from_secs(self.offsets_retention_minutes.saturating_mul(60))
    }

    pub fn producer_id_expiration(&self) -> Duration {
        Duration::from_millis(self.producer_id_expiration_ms)
    }

    pub fn producer_id_expiration_check_interval(&self) -> Duration {
        Duration::from_millis(self.producer_id_expiration_check_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_command_runs_the_embedded_default() {
        let c = Config::parse_from(["streamhouse"]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:9092");
        assert_eq!(c.metadata_url(), "sqlite://./data/metadata.db");
        assert_eq!(c.object_store_url(), "file://./data/objects");
        assert_eq!(c.advertised(), Ok(("127.0.0.1".to_string(), 9092)));
        assert_eq!(c.http_listen.0.map(|a| a.to_string()).as_deref(), Some("127.0.0.1:3001"));
        assert_eq!(c.console_listen.0.map(|a| a.to_string()).as_deref(), Some("127.0.0.1:3002"));
        assert!(!c.http_read_only);
        assert!(c.auto_create_topics);
        assert_eq!(c.flush_interval(), Duration::from_millis(1));
        let s3 = Config::parse_from(["streamhouse", "--object-store-url", "s3://b/p"]);
        assert_eq!(s3.flush_interval(), Duration::from_millis(20), "object stores get larger flushes");
        assert_eq!(c.producer_id_expiration(), Duration::from_secs(86_400), "Kafka's default: one day");
        assert_eq!(c.producer_id_expiration_check_interval(), Duration::from_secs(600));
        assert!(Config::try_parse_from(["streamhouse", "--producer-id-expiration-ms", "0"]).is_err(), "Kafka's minimum is 1");
    }

    #[test]
    fn listeners_can_be_turned_off() {
        let c = Config::parse_from(["streamhouse", "--http-listen", "off", "--console-listen", "0.0.0.0:8080"]);
        assert_eq!(c.http_listen, Listener(None));
        assert_eq!(c.console_listen.0.map(|a| a.port()), Some(8080));
        assert!(Config::try_parse_from(["streamhouse", "--http-listen", "localhost"]).is_err());
    }

    #[test]
    fn advertised_address_is_parsed() {
        let c = Config::parse_from(["streamhouse", "--advertised-address", "kafka.local:19092"]);
        assert_eq!(c.advertised(), Ok(("kafka.local".to_string(), 19092)));
        let bad = Config::parse_from(["streamhouse", "--advertised-address", "nope"]);
        assert!(bad.advertised().is_err());
    }
}
