//! What a scrape computes (the state of the partitions this agent leads, uptime, consumer-group
//! lag) and [`render`], which writes the whole exposition.

use std::time::Duration;

use prometheus::{Encoder, Gauge, GaugeVec, IntGauge, IntGaugeVec, TextEncoder};
use tracing::warn;

use super::Registrar;
use super::lag::{self, GroupLag};
use crate::context::AgentContext;

/// The longest a scrape waits for the lag's store reads: well inside Prometheus' default 10 s
/// scrape timeout, so a slow store costs the lag series, never the whole scrape.
const LAG_DEADLINE: Duration = Duration::from_secs(5);

pub(super) struct Gauges {
    uptime: Gauge,
    partitions_led: IntGauge,
    high_watermark: IntGaugeVec,
    leader_epoch: IntGaugeVec,
    lag: IntGaugeVec,
    lag_sum: IntGaugeVec,
    lag_seconds: GaugeVec,
    lag_seconds_max: GaugeVec,
}

impl Gauges {
    pub(super) fn new(reg: &Registrar) -> Gauges {
        let tp = &["topic", "partition"];
        let gtp = &["group", "topic", "partition"];
        Gauges {
            uptime: reg.gauge("streamhouse_uptime_seconds", "Seconds since this agent started."),
            partitions_led: reg.int_gauge("streamhouse_partitions_led", "Partitions whose lease this agent holds."),
            high_watermark: reg.int_gauge_vec(
                "streamhouse_partition_high_watermark",
                "High watermark (one past the last committed offset) of each partition this agent leads.",
                tp,
            ),
            leader_epoch: reg.int_gauge_vec("streamhouse_partition_leader_epoch", "Leader epoch of each partition this agent leads.", tp),
            lag: reg.int_gauge_vec(
                "streamhouse_consumer_group_lag",
                "Records between a group's committed offset and the high watermark, for groups this agent coordinates.",
                gtp,
            ),
            // Not the spec's `streamhouse_consumer_group_lag_sum`: promtool refuses a `_sum` suffix on
            // anything but a histogram or summary, which a scraper may mistake this for.
            lag_sum: reg.int_gauge_vec(
                "streamhouse_consumer_group_total_lag",
                "A group's lag in records summed over its partitions, for groups this agent coordinates.",
                &["group"],
            ),
            lag_seconds: reg.gauge_vec(
                "streamhouse_consumer_group_lag_seconds",
                "Age of the newest record in the flushed run holding a group's committed offset (0 when caught up), for groups this agent coordinates: a lower bound on how far the group is behind in time.",
                gtp,
            ),
            lag_seconds_max: reg.gauge_vec(
                "streamhouse_consumer_group_lag_seconds_max",
                "A group's largest lag in seconds over its partitions, for groups this agent coordinates.",
                &["group"],
            ),
        }
    }

    /// The partitions led right now: reset first, so a partition no longer led leaves the exposition.
    fn refresh_partitions(&self, ctx: &AgentContext) {
        let led = ctx.partitions.led_partitions();
        self.partitions_led.set(i64::try_from(led.len()).unwrap_or(i64::MAX));
        self.high_watermark.reset();
        self.leader_epoch.reset();
        for p in led {
            let s = p.snapshot();
            let partition = p.id.partition.to_string();
            let labels = [p.topic.as_str(), partition.as_str()];
            self.high_watermark.with_label_values(&labels).set(s.high_watermark);
            self.leader_epoch.with_label_values(&labels).set(i64::from(s.leader_epoch));
        }
    }

    /// Replaces every lag series. `None` (the store could not be read in time) leaves none: no
    /// series is more honest than a stale one, and a dashboard shows the gap.
    fn set_lag(&self, groups: Option<Vec<GroupLag>>) {
        for vec in [&self.lag, &self.lag_sum] {
            vec.reset();
        }
        for vec in [&self.lag_seconds, &self.lag_seconds_max] {
            vec.reset();
        }
        for g in groups.into_iter().flatten() {
            let (mut sum, mut max_seconds) = (0, 0.0f64);
            for p in &g.partitions {
                let partition = p.partition.to_string();
                let labels = [g.group.as_str(), p.topic.as_str(), partition.as_str()];
                self.lag.with_label_values(&labels).set(p.records);
                self.lag_seconds.with_label_values(&labels).set(p.seconds);
                sum += p.records;
                max_seconds = max_seconds.max(p.seconds);
            }
            self.lag_sum.with_label_values(&[&g.group]).set(sum);
            self.lag_seconds_max.with_label_values(&[&g.group]).set(max_seconds);
        }
    }
}

/// The agent's metrics in the Prometheus text format (`text/plain; version=0.0.4`), with the
/// scrape-time gauges refreshed first.
pub async fn render(ctx: &AgentContext) -> String {
    let m = &ctx.metrics;
    let _one_scrape = m.scraping.lock().await;
    m.scrape.uptime.set(m.started.elapsed().as_secs_f64());
    m.scrape.refresh_partitions(ctx);
    let groups = match tokio::time::timeout(LAG_DEADLINE, lag::measure(ctx)).await {
        Ok(Ok(groups)) => Some(groups),
        Ok(Err(e)) => {
            warn!(error = %e, "consumer-group lag not measured: the metadata store failed");
            None
        }
        Err(_) => {
            warn!(deadline = ?LAG_DEADLINE, "consumer-group lag not measured: the metadata store is too slow");
            None
        }
    };
    m.scrape.set_lag(groups);
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut out) {
        warn!(error = %e, "encoding the metrics failed");
    }
    // The encoder writes only UTF-8 (names are ASCII, label values are Rust strings).
    String::from_utf8_lossy(&out).into_owned()
}
