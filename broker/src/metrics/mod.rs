//! The agent's Prometheus metrics: names and labels are the contract the README's Metrics table
//! documents (the Grafana dashboard and the console are built against them), served as the classic text
//! format (0.0.4) that `promtool check metrics` and every Prometheus read.
//!
//! - `requests`: per-API requests, errors by Kafka error name and durations; connections.
//! - `topics`: bytes and records in and out per topic, behind cached per-topic handles.
//! - `object_store`, `metadata_store`: wrappers implementing the store traits that time every call,
//!   stacked under the agent's stores as slatedb stacks its instrumented object store.
//! - `scrape`: the gauges computed when scraped (partitions led, their high watermarks and epochs,
//!   uptime) and `render`, which writes the exposition.
//! - `lag`: consumer-group lag of the groups this agent coordinates, read at scrape time.
//!
//! Each agent has a registry of its own (never the process-global one): tests run several agents in
//! one process. The hot path never formats a label or takes a lock per record: counters move per
//! request, per partition of a response or per flush, through handles created once.

mod lag;
mod metadata_store;
mod object_store;
mod requests;
mod scrape;
mod topics;

use std::time::Instant;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

pub use metadata_store::InstrumentedMetadata;
pub use object_store::{InstrumentedStore, ObjectStoreMetrics};
pub use requests::{Connections, OpenConnection, Requests, kafka_error_name};
pub use scrape::render;
pub use topics::Topics;

/// Buckets for anything timed against a store or a client, in seconds: half a millisecond (a SQLite
/// read, a cache-warm request) to 30 s (the longest a Fetch long-polls).
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Why this agent stopped leading a partition (`streamhouse_lease_losses_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseLoss {
    /// A flush commit found a newer epoch: another agent took the partition under us.
    Fenced,
    /// A lease round found the lease held by another agent or at another epoch (ours expired).
    TakenOver,
    /// Balancing handed the partition to another agent (planned, drained first).
    HandedOff,
    /// Released at shutdown.
    Shutdown,
}

impl LeaseLoss {
    const ALL: [LeaseLoss; 4] = [LeaseLoss::Fenced, LeaseLoss::TakenOver, LeaseLoss::HandedOff, LeaseLoss::Shutdown];

    fn label(self) -> &'static str {
        match self {
            LeaseLoss::Fenced => "fenced",
            LeaseLoss::TakenOver => "taken_over",
            LeaseLoss::HandedOff => "handed_off",
            LeaseLoss::Shutdown => "shutdown",
        }
    }
}

/// The registry and the handles every instrumented place holds on to.
pub struct Metrics {
    registry: Registry,
    started: Instant,
    pub requests: Requests,
    pub connections: Connections,
    pub topics: Topics,
    /// From taking a flush's appends to its commit (PUT plus metadata transaction).
    pub flush_duration: Histogram,
    /// Size of each flushed segment object.
    pub flush_bytes: Histogram,
    pub lease_acquisitions: IntCounter,
    lease_losses: IntCounterVec,
    /// Partitions of the cluster with no live leader, as of this agent's last lease round.
    pub leaderless_partitions: IntGauge,
    /// Handed to the [`InstrumentedStore`] stacked under the agent's object store.
    pub object_store: ObjectStoreMetrics,
    /// Handed to the [`InstrumentedMetadata`] stacked under the agent's metadata store.
    pub metadata_duration: HistogramVec,
    http_requests: IntCounterVec,
    scrape: scrape::Gauges,
    /// One scrape at a time: a scrape resets and refills the labelled gauges it computes.
    scraping: tokio::sync::Mutex<()>,
}

impl Metrics {
    /// Every metric of the agent, registered in a registry of its own.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let reg = Registrar(&registry);
        let build_info = reg.int_gauge_vec("streamhouse_build_info", "The running agent's version (always 1).", &["version"]);
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let lease_losses = reg.int_counter_vec(
            "streamhouse_lease_losses_total",
            "Partition leases this agent stopped holding, by reason: fenced (a commit found a newer epoch), taken_over (a lease round found another holder), handed_off (rebalancing), shutdown.",
            &["reason"],
        );
        // Every reason from the start, so rate() sees the first loss of each.
        for reason in LeaseLoss::ALL {
            lease_losses.with_label_values(&[reason.label()]);
        }
        Metrics {
            started: Instant::now(),
            requests: Requests::new(&reg),
            connections: Connections::new(&reg),
            topics: Topics::new(&reg),
            flush_duration: reg.histogram(
                "streamhouse_flush_duration_seconds",
                "Time from taking a flush's appends to its commit: the segment PUT plus the metadata transaction.",
                LATENCY_BUCKETS.to_vec(),
            ),
            flush_bytes: reg.histogram(
                "streamhouse_flush_bytes",
                "Size of each committed segment object, in bytes.",
                prometheus::exponential_buckets(1024.0, 4.0, 10).unwrap_or_default(),
            ),
            lease_acquisitions: reg.int_counter("streamhouse_lease_acquisitions_total", "Partition leases this agent acquired."),
            lease_losses,
            leaderless_partitions: reg.int_gauge(
                "streamhouse_leaderless_partitions",
                "Partitions of the cluster whose lease no live agent holds, as of this agent's last lease round.",
            ),
            object_store: ObjectStoreMetrics::new(&reg),
            metadata_duration: reg.histogram_vec(
                "streamhouse_metadata_transaction_duration_seconds",
                "Duration of metadata-store calls (each one transaction or statement), by operation.",
                &["operation"],
            ),
            http_requests: reg.int_counter_vec(
                "streamhouse_http_requests_total",
                "Requests to the agent's HTTP API and console listeners, by route pattern and status code.",
                &["route", "status"],
            ),
            scrape: scrape::Gauges::new(&reg),
            scraping: tokio::sync::Mutex::new(()),
            registry,
        }
    }

    /// One HTTP request answered: not the hot path, so the label lookup per request is fine.
    pub fn http_request(&self, route: &str, status: u16) {
        self.http_requests.with_label_values(&[route, &status.to_string()]).inc();
    }

    pub fn lease_lost(&self, reason: LeaseLoss, partitions: u64) {
        self.lease_losses.with_label_values(&[reason.label()]).inc_by(partitions);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Creates metrics and registers them. The definitions are constants of this module, so a failure
/// is a programming error that `Metrics::new` in any unit test catches: it panics with the name.
struct Registrar<'a>(&'a Registry);

impl Registrar<'_> {
    fn register<C: prometheus::core::Collector + Clone + 'static>(&self, name: &str, made: prometheus::Result<C>) -> C {
        let metric = made.unwrap_or_else(|e| panic!("metric {name} is malformed: {e}"));
        if let Err(e) = self.0.register(Box::new(metric.clone())) {
            panic!("metric {name} cannot be registered: {e}");
        }
        metric
    }

    fn int_counter(&self, name: &str, help: &str) -> IntCounter {
        self.register(name, IntCounter::new(name, help))
    }

    fn int_counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.register(name, IntCounterVec::new(Opts::new(name, help), labels))
    }

    fn int_gauge(&self, name: &str, help: &str) -> IntGauge {
        self.register(name, IntGauge::new(name, help))
    }

    fn int_gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.register(name, IntGaugeVec::new(Opts::new(name, help), labels))
    }

    fn gauge(&self, name: &str, help: &str) -> prometheus::Gauge {
        self.register(name, prometheus::Gauge::new(name, help))
    }

    fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> prometheus::GaugeVec {
        self.register(name, prometheus::GaugeVec::new(Opts::new(name, help), labels))
    }

    fn histogram(&self, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
        self.register(name, Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)))
    }

    fn histogram_vec(&self, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
        self.register(name, HistogramVec::new(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()), labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_of_the_spec_is_registered_once() {
        let m = Metrics::new();
        let names: Vec<String> = m.registry.gather().iter().map(|f| f.name().to_string()).collect();
        // Label vectors with no series yet are absent from a gather; the rest must all be there.
        for name in [
            "streamhouse_build_info",
            "streamhouse_uptime_seconds",
            "streamhouse_requests_total",
            "streamhouse_request_duration_seconds",
            "streamhouse_connections",
            "streamhouse_connections_accepted_total",
            "streamhouse_connections_refused_total",
            "streamhouse_flush_duration_seconds",
            "streamhouse_flush_bytes",
            "streamhouse_lease_acquisitions_total",
            "streamhouse_lease_losses_total",
            "streamhouse_partitions_led",
            "streamhouse_leaderless_partitions",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
        }
    }

    #[test]
    fn lease_losses_count_by_reason() {
        let m = Metrics::new();
        m.lease_lost(LeaseLoss::HandedOff, 3);
        assert_eq!(m.lease_losses.with_label_values(&["handed_off"]).get(), 3);
        assert_eq!(m.lease_losses.with_label_values(&["fenced"]).get(), 0);
    }
}
