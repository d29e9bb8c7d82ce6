//! Idempotent-producer checks, as Kafka's `ProducerStateManager` does them: per producer id and
//! partition, the epoch and the sequence numbers of the last five batches. The state is committed in
//! the same metadata transaction as the data it describes, so it survives a restart.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use streamhouse_metadata::{ProducerBatch, ProducerState};
use streamhouse_protocol::batch::BatchHeader;

/// Kafka keeps the metadata of this many batches per producer (max.in.flight.requests.per.connection).
const RECENT_BATCHES: usize = 5;

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
            // No state: the producer's first batch on this partition must start at sequence 0.
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

    /// Records an appended batch at its assigned offsets.
    pub fn record(&mut self, h: &BatchHeader, base_offset: i64) {
        if !h.is_idempotent() {
            return;
        }
        let state = self.states.entry(h.producer_id).or_insert_with(|| ProducerState {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            batches: Vec::new(),
        });
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
        assert_eq!(t.check(&header(9, 0, 3, 1)), Err(ResponseError::UnknownProducerId));
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
