//! Kafka requests (count, errors by Kafka error name, duration per API) and client connections.

use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};

use super::Registrar;
use crate::handlers::ROUTES;

/// The handles of one routed API, made once so a request costs no label lookup.
struct Api {
    key: ApiKey,
    /// Kafka's name of the API ("Produce", "Fetch"...), the `api` label.
    name: String,
    total: IntCounter,
    duration: Histogram,
}

pub struct Requests {
    apis: Vec<Api>,
    errors: IntCounterVec,
}

impl Requests {
    pub(super) fn new(reg: &Registrar) -> Requests {
        let total = reg.int_counter_vec("streamhouse_requests_total", "Kafka requests answered, by API.", &["api"]);
        let duration = reg.histogram_vec(
            "streamhouse_request_duration_seconds",
            "Time from reading a Kafka request to its answer, by API (a Fetch includes its long poll, a Produce its flush).",
            &["api"],
        );
        let errors = reg.int_counter_vec(
            "streamhouse_request_errors_total",
            "Kafka errors answered, by API and Kafka error name: a whole request that failed, and each failed partition of a Produce or Fetch.",
            &["api", "error"],
        );
        // One series per routed API from the start, at 0, so every API shows up before its first request.
        let apis = ROUTES
            .iter()
            .map(|r| {
                let name = format!("{:?}", r.key);
                Api { key: r.key, total: total.with_label_values(&[&name]), duration: duration.with_label_values(&[&name]), name }
            })
            .collect();
        Requests { apis, errors }
    }

    /// A request of `key` answered (well or not) after starting at `started`.
    pub fn done(&self, key: ApiKey, started: Instant) {
        if let Some(api) = self.api(key) {
            api.total.inc();
            api.duration.observe(started.elapsed().as_secs_f64());
        }
    }

    /// A request of `key`, or one partition of it, answered with `error`. Errors are the rare path:
    /// the label lookup (and the name's formatting) happens only here.
    pub fn failed(&self, key: ApiKey, error: ResponseError) {
        if let Some(api) = self.api(key) {
            self.errors.with_label_values(&[api.name.as_str(), &kafka_error_name(error)]).inc();
        }
    }

    /// A response's error code, if it is one (0 is success).
    pub fn failed_code(&self, key: ApiKey, code: i16) {
        if code != 0 {
            self.failed(key, ResponseError::try_from_code(code).unwrap_or(ResponseError::Unknown(code)));
        }
    }

    /// A linear search: a couple of dozen routes, cheaper than hashing.
    fn api(&self, key: ApiKey) -> Option<&Api> {
        self.apis.iter().find(|a| a.key == key)
    }
}

/// Kafka's own name of an error, as its `Errors` enum and every client log spell it
/// (`NOT_LEADER_OR_FOLLOWER`), from the codec's variant name (`NotLeaderOrFollower`).
pub fn kafka_error_name(error: ResponseError) -> String {
    if let ResponseError::Unknown(_) = error {
        // Keeps the label set bounded whatever code a store or peer hands us.
        return "UNKNOWN".to_string();
    }
    let camel = format!("{error:?}");
    let mut name = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// Client connections: open now, accepted, refused by the connection limits.
pub struct Connections {
    open: IntGauge,
    accepted: IntCounter,
    refused: IntCounter,
}

/// One open connection, counted in `streamhouse_connections` until dropped.
pub struct OpenConnection(IntGauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Connections {
    pub(super) fn new(reg: &Registrar) -> Connections {
        Connections {
            open: reg.int_gauge("streamhouse_connections", "Kafka client connections open now."),
            accepted: reg.int_counter("streamhouse_connections_accepted_total", "Kafka client connections accepted."),
            refused: reg.int_counter(
                "streamhouse_connections_refused_total",
                "Kafka client connections closed at once by --max-connections or --max-connections-per-ip.",
            ),
        }
    }

    pub fn accepted(&self) -> OpenConnection {
        self.accepted.inc();
        self.open.inc();
        OpenConnection(self.open.clone())
    }

    pub fn refused(&self) {
        self.refused.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(kafka_error_name(ResponseError::NotLeaderOrFollower), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(kafka_error_name(ResponseError::KafkaStorageError), "KAFKA_STORAGE_ERROR");
        assert_eq!(kafka_error_name(ResponseError::UnknownTopicOrPartition), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(kafka_error_name(ResponseError::Unknown(-42)), "UNKNOWN");
    }

    #[test]
    fn requests_count_per_api_and_errors_per_name() {
        let m = Metrics::new();
        m.requests.done(ApiKey::Produce, Instant::now());
        m.requests.done(ApiKey::Produce, Instant::now());
        m.requests.failed_code(ApiKey::Produce, 0);
        m.requests.failed_code(ApiKey::Produce, ResponseError::NotLeaderOrFollower.code());
        let produce = m.requests.api(ApiKey::Produce).expect("Produce is routed");
        assert_eq!((produce.total.get(), produce.duration.get_sample_count()), (2, 2));
        assert_eq!(m.requests.errors.with_label_values(&["Produce", "NOT_LEADER_OR_FOLLOWER"]).get(), 1);
    }

    #[test]
    fn a_connection_counts_as_open_until_dropped() {
        let m = Metrics::new();
        let c = m.connections.accepted();
        assert_eq!(m.connections.open.get(), 1);
        drop(c);
        assert_eq!((m.connections.open.get(), m.connections.accepted.get()), (0, 1));
    }
}
