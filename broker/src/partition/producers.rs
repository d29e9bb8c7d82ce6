//! Idempotent-producer checks, as Kafka's `ProducerStateManager` does them: per producer id and
//! partition, the epoch and the sequence numbers of the last five batches. The state is committed in
//! the same metadata transaction as the data it describes, so it survives a restart.
//!
//! A producer that has not written to the partition for --producer-id-expiration-ms is forgotten
//! (Kafka's `removeExpiredProducers`), so producer ids that come and go do not pile up: the flusher
//! drops them here every --producer-id-expiration-check-interval-ms, and the partition's next commit
//! deletes their rows. What a forgotten producer's next batch gets is in [`ProducerTable::check`].

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use streamhouse_metadata::{ProducerBatch, ProducerState};
use streamhouse_protocol::batch::BatchHeader;

/// Kafka keeps the metadata of this many batches per producer (max.in.flight.requests.per.connection).
const RECENT_BATCHES: usize = 5;

/// The last write of a producer with a batch in a flush not yet committed: later than any cutoff, so
/// the state a flush in flight builds on is never expired under it. The commit replaces it with the
/// commit's time.
const IN_FLIGHT: i64 = i64::MAX;

/// The cutoff for [`expired`] at `now_ms` (the metadata store's clock, which commits stamp states by).
pub fn expiry_cutoff_ms(now_ms: i64, expiration: Duration) -> i64 {
    now_ms.saturating_sub(i64::try_from(expiration.as_millis()).unwrap_or(i64::MAX))
}

/// Whether a producer last written at `last_write_ms` has expired by `cutoff_ms` (now minus the
/// expiry): idle for the expiry or longer, as Kafka's `now - lastTimestamp >= expiration`.
pub fn expired(last_write_ms: i64, cutoff_ms: i64) -> bool {
    last_write_ms <= cutoff_ms
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// New data in sequence: write it.
    Append,
    /// A retry of a batch already written: answer with its original base offset, write nothing.
    Duplicate { base_offset: i64 },
}

#[derive(Debug, Clone, Default)]
pub struct ProducerTable {
    states: HashMap<i64, ProducerState>,
}

impl ProducerTable {
    pub fn new(states: HashMap<i64, ProducerState>) -> Self {
        ProducerTable { states }
    }

    /// Decides what to do with a batch; non-idempotent batches are always appended.
    pub fn check(&self, h: &BatchHeader) -> Result<Check, ResponseError> {
        if !h.is_idempotent() {
            return Ok(Check::Append);
        }
        let Some(state) = self.states.get(&h.producer_id) else {
            // No state (a new producer, or one expired): its first batch here must start at sequence
            // 0. Kafka since 2.5 accepts any sequence (KIP-360, KAFKA-8710), at the price of writing
            // again a retry it no longer remembers; we keep UNKNOWN_PRODUCER_ID, which librdkafka and
            // the Java client answer by bumping their epoch (KIP-360 too), so a state missing for any
            // reason costs a retry, never a duplicate (test_cluster_churn.py found one the other way).
            return if h.base_sequence == 0 { Ok(Check::Append) } else { Err(ResponseError::UnknownProducerId) };
        };
        if h.producer_epoch < state.producer_epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        if h.producer_epoch > state.producer_epoch {
            // A bumped epoch restarts the sequence.
            return if h.base_sequence == 0 { Ok(Check::Append) } else { Err(ResponseError::OutOfOrderSequenceNumber) };
        }
        let last_sequence = h.last_sequence();
        if let Some(dup) = state.batches.iter().find(|b| b.first_sequence == h.base_sequence && b.last_sequence == last_sequence) {
            return Ok(Check::Duplicate { base_offset: dup.base_offset });
        }
        match state.batches.last() {
            Some(last) if !follows(last.last_sequence, h.base_sequence) => Err(ResponseError::OutOfOrderSequenceNumber),
            _ => Ok(Check::Append),
        }
    }

    /// Records an appended batch at its assigned offsets, in a flush not committed yet.
    pub fn record(&mut self, h: &BatchHeader, base_offset: i64) {
        if !h.is_idempotent() {
            return;
        }
        let state = self.states.entry(h.producer_id).or_insert_with(|| ProducerState {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            batches: Vec::new(),
            last_write_ms: IN_FLIGHT,
        });
        state.last_write_ms = IN_FLIGHT;
        if state.producer_epoch != h.producer_epoch {
            state.producer_epoch = h.producer_epoch;
            state.batches.clear();
        }
        state.batches.push(ProducerBatch {
            first_sequence: h.base_sequence,
            last_sequence: h.last_sequence(),
            base_offset,
            last_offset: base_offset + i64::from(h.last_offset_delta),
        });
        if state.batches.len() > RECENT_BATCHES {
            state.batches.remove(0);
        }
    }

    /// Marks a producer known here as having a batch in a flush (a retry answered as a duplicate
    /// too), so it is not expired until that flush ends.
    pub fn mark_in_flight(&mut self, producer_id: i64) {
        if let Some(state) = self.states.get_mut(&producer_id) {
            state.last_write_ms = IN_FLIGHT;
        }
    }

    /// Takes in the states a commit wrote, as last written at `at_ms`; the others stay as they are
    /// (some may have expired since the flush was planned).
    pub fn committed(&mut self, states: impl IntoIterator<Item = ProducerState>, at_ms: i64) {
        for state in states {
            self.states.insert(state.producer_id, ProducerState { last_write_ms: at_ms, ..state });
        }
    }

    /// Forgets the producers idle since `cutoff_ms` or longer, except those `in_flight` says have a
    /// flush in flight; returns how many went.
    pub fn expire(&mut self, cutoff_ms: i64, in_flight: impl Fn(i64) -> bool) -> usize {
        let before = self.states.len();
        self.states.retain(|id, state| !expired(state.last_write_ms, cutoff_ms) || in_flight(*id));
        before - self.states.len()
    }

    /// Whether `producer_id` has a batch in a flush not yet committed.
    pub fn in_flight(&self, producer_id: i64) -> bool {
        self.states.get(&producer_id).is_some_and(|s| s.last_write_ms == IN_FLIGHT)
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerState> {
        self.states.get(&producer_id)
    }
}

/// Whether `next` is the sequence right after `last`, wrapping at `i32::MAX` as Kafka does.
fn follows(last: i32, next: i32) -> bool {
    if last == i32::MAX { next == 0 } else { next == last + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn in_sequence_appends_and_retries_are_duplicates() {
        let mut t = ProducerTable::default();
        let a = header(1, 0, 0, 5);
        assert_eq!(t.check(&a), Ok(Check::Append));
        t.record(&a, 100);
        let b = header(1, 0, 5, 3);
        assert_eq!(t.check(&b), Ok(Check::Append));
        t.record(&b, 105);
        assert_eq!(t.check(&a), Ok(Check::Duplicate { base_offset: 100 }));
        assert_eq!(t.check(&b), Ok(Check::Duplicate { base_offset: 105 }));
    }

    #[test]
    fn gaps_and_old_epochs_are_refused() {
        let mut t = ProducerTable::default();
        t.record(&header(1, 2, 0, 5), 0);
        assert_eq!(t.check(&header(1, 2, 7, 1)), Err(ResponseError::OutOfOrderSequenceNumber));
        assert_eq!(t.check(&header(1, 1, 5, 1)), Err(ResponseError::InvalidProducerEpoch));
        assert_eq!(t.check(&header(1, 3, 0, 1)), Ok(Check::Append));
        assert_eq!(t.check(&header(1, 3, 4, 1)), Err(ResponseError::OutOfOrderSequenceNumber));
        assert_eq!(t.check(&header(9, 0, 3, 1)), Err(ResponseError::UnknownProducerId), "an unknown producer starts at 0");
    }

    #[test]
    fn idle_producers_expire_unless_in_flight() {
        let mut t = ProducerTable::default();
        for pid in [1, 2, 3] {
            t.record(&header(pid, 0, 0, 5), 0);
        }
        let state = |pid| t.get(pid).cloned().expect("recorded");
        let (one, two, three) = (state(1), state(2), state(3));
        t.committed([one, two], 1_000);
        t.committed([ProducerState { last_write_ms: 0, ..three }], 2_000);
        assert_eq!(t.get(3).map(|s| s.last_write_ms), Some(2_000), "a commit stamps its own time");
        t.mark_in_flight(2);
        assert!(t.in_flight(2) && !t.in_flight(1));

        assert_eq!(t.expire(999, |_| false), 0, "idle for less than the expiry");
        assert_eq!(t.expire(1_000, |id| id == 1), 0, "idle exactly the expiry, but a flush is in flight");
        assert_eq!(t.expire(1_000, |_| false), 1, "idle exactly the expiry: gone, as in Kafka");
        assert!(t.get(1).is_none());
        assert!(t.get(2).is_some(), "its own batch in flight keeps it");
        assert!(t.get(3).is_some());

        // Forgotten: it must start over at 0, and a retry of its first batch is written again.
        assert_eq!(t.check(&header(1, 0, 5, 1)), Err(ResponseError::UnknownProducerId));
        assert_eq!(t.check(&header(1, 0, 0, 5)), Ok(Check::Append));
        // Remembered: the same batches are a gap and a duplicate.
        assert_eq!(t.check(&header(3, 0, 6, 1)), Err(ResponseError::OutOfOrderSequenceNumber));
        assert_eq!(t.check(&header(3, 0, 0, 5)), Ok(Check::Duplicate { base_offset: 0 }));
    }

    #[test]
    fn keeps_only_five_batches() {
        let mut t = ProducerTable::default();
        for i in 0..7 {
            t.record(&header(1, 0, i, 1), i64::from(i));
        }
        assert_eq!(t.get(1).map(|s| s.batches.len()), Some(5));
        assert_eq!(t.check(&header(1, 0, 0, 1)), Err(ResponseError::OutOfOrderSequenceNumber));
        assert_eq!(t.check(&header(1, 0, 6, 1)), Ok(Check::Duplicate { base_offset: 6 }));
        assert_eq!(t.check(&header(1, 0, 7, 1)), Ok(Check::Append));
    }

    #[test]
    fn sequence_wraps() {
        assert!(follows(i32::MAX, 0));
        assert!(!follows(i32::MAX, i32::MAX));
    }
}
