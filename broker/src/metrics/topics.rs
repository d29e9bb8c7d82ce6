//! Bytes and records in (committed by a flush) and out (sent by Fetch), per topic.
//!
//! Counters are bumped once per partition of a flush or of a Fetch response, through handles kept
//! per topic in a `DashMap`: the label is formatted once, when a topic is first seen, never per record.

use dashmap::DashMap;
use prometheus::{IntCounter, IntCounterVec};

use super::Registrar;

/// One topic's handles.
struct Topic {
    bytes_in: IntCounter,
    records_in: IntCounter,
    bytes_out: IntCounter,
    records_out: IntCounter,
}

pub struct Topics {
    bytes_in: IntCounterVec,
    records_in: IntCounterVec,
    bytes_out: IntCounterVec,
    records_out: IntCounterVec,
    by_name: DashMap<String, Topic>,
}

impl Topics {
    pub(super) fn new(reg: &Registrar) -> Topics {
        Topics {
            bytes_in: reg.int_counter_vec(
                "streamhouse_topic_bytes_in_total",
                "Record-batch bytes committed to the topic by this agent's flushes.",
                &["topic"],
            ),
            records_in: reg.int_counter_vec(
                "streamhouse_topic_records_in_total",
                "Records committed to the topic by this agent's flushes (duplicates of idempotent retries excluded).",
                &["topic"],
            ),
            bytes_out: reg.int_counter_vec(
                "streamhouse_topic_bytes_out_total",
                "Record-batch bytes this agent sent to consumers of the topic (Fetch).",
                &["topic"],
            ),
            records_out: reg.int_counter_vec(
                "streamhouse_topic_records_out_total",
                "Records at or past each fetch offset that this agent sent to consumers of the topic (Fetch).",
                &["topic"],
            ),
            by_name: DashMap::new(),
        }
    }

    /// A partition of `topic` committed `bytes` holding `records`.
    pub fn produced(&self, topic: &str, bytes: u64, records: u64) {
        self.with(topic, |t| {
            t.bytes_in.inc_by(bytes);
            t.records_in.inc_by(records);
        });
    }

    /// A Fetch sent `bytes` holding `records` of `topic`.
    pub fn fetched(&self, topic: &str, bytes: u64, records: u64) {
        self.with(topic, |t| {
            t.bytes_out.inc_by(bytes);
            t.records_out.inc_by(records);
        });
    }

    /// Drops a deleted topic's series, so topic churn does not grow the exposition for ever.
    pub fn forget(&self, topic: &str) {
        if self.by_name.remove(topic).is_some() {
            for vec in [&self.bytes_in, &self.records_in, &self.bytes_out, &self.records_out] {
                let _ = vec.remove_label_values(&[topic]);
            }
        }
    }

    fn with(&self, topic: &str, f: impl FnOnce(&Topic)) {
        if let Some(t) = self.by_name.get(topic) {
            return f(&t);
        }
        let t = self.by_name.entry(topic.to_string()).or_insert_with(|| Topic {
            bytes_in: self.bytes_in.with_label_values(&[topic]),
            records_in: self.records_in.with_label_values(&[topic]),
            bytes_out: self.bytes_out.with_label_values(&[topic]),
            records_out: self.records_out.with_label_values(&[topic]),
        });
        f(&t)
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::Metrics;

    #[test]
    fn counts_per_topic_and_forgets_deleted_ones() {
        let m = Metrics::new();
        m.topics.produced("a", 100, 3);
        m.topics.produced("a", 50, 1);
        m.topics.fetched("a", 150, 4);
        m.topics.produced("b", 1, 1);
        let t = &m.topics;
        assert_eq!((t.bytes_in.with_label_values(&["a"]).get(), t.records_in.with_label_values(&["a"]).get()), (150, 4));
        assert_eq!((t.bytes_out.with_label_values(&["a"]).get(), t.records_out.with_label_values(&["a"]).get()), (150, 4));
        t.forget("a");
        assert_eq!(t.bytes_in.with_label_values(&["a"]).get(), 0, "a deleted topic's series start over");
        assert_eq!(t.bytes_in.with_label_values(&["b"]).get(), 1);
    }
}
