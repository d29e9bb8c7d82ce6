//! A view over v2 record batches held as `Bytes` (the produce path never decodes records).
//!
//! Layout of the 61-byte header, all big-endian:
//! `baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 | attributes i16 |
//! lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 | producerId i64 | producerEpoch i16 |
//! baseSequence i32 | recordsCount i32`, then the records. The CRC32C covers everything from
//! `attributes` to the end, so a broker may rewrite `baseOffset` and `partitionLeaderEpoch` (the first
//! 16 bytes) without touching the CRC or the records.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

pub const HEADER_LEN: usize = 61;
/// Bytes before `partitionLeaderEpoch` ends: the part a broker rewrites.
pub const REWRITTEN_PREFIX_LEN: usize = 16;
const CRC_START: usize = 21;
/// Bytes of `baseOffset` and `batchLength`, which `batchLength` does not count.
const LOG_OVERHEAD: usize = 12;

const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Why a batch was refused; each maps to the Kafka error a producer expects.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    /// CORRUPT_MESSAGE: the bytes do not hold whole batches.
    #[error("record batch truncated or with a bad length")]
    Truncated,
    /// UNSUPPORTED_FOR_MESSAGE_FORMAT: only magic v2 exists for Produce v3+.
    #[error("record batch magic {0} is not supported (only v2)")]
    Magic(i8),
    /// CORRUPT_MESSAGE
    #[error("record batch CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    /// INVALID_RECORD: a header field that cannot be right.
    #[error("record batch header is invalid: {0}")]
    Invalid(&'static str),
}

/// The header fields of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `bytes` (which may hold more than one batch).
    pub fn parse(mut bytes: &[u8]) -> Result<Self, BatchError> {
        if bytes.len() < HEADER_LEN {
            return Err(BatchError::Truncated);
        }
        Ok(Self {
            base_offset: bytes.get_i64(),
            batch_length: bytes.get_i32(),
            partition_leader_epoch: bytes.get_i32(),
            magic: bytes.get_i8(),
            crc: bytes.get_u32(),
            attributes: bytes.get_i16(),
            last_offset_delta: bytes.get_i32(),
            base_timestamp: bytes.get_i64(),
            max_timestamp: bytes.get_i64(),
            producer_id: bytes.get_i64(),
            producer_epoch: bytes.get_i16(),
            base_sequence: bytes.get_i32(),
            records_count: bytes.get_i32(),
        })
    }

    /// Total size of the batch on the wire.
    pub fn total_len(&self) -> usize {
        usize::try_from(self.batch_length).map_or(0, |n| n + LOG_OVERHEAD)
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Sequence of the batch's last record; sequences wrap at `i32::MAX` as in Kafka.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        i32::try_from(last % (i64::from(i32::MAX) + 1)).unwrap_or(i32::MAX)
    }

    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0
    }
}

/// One validated batch: its header and its exact bytes (a slice of the request frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    pub header: BatchHeader,
    pub bytes: Bytes,
}

impl RecordBatch {
    /// Splits a Produce `records` field into batches, checking magic, lengths and CRC32C of each.
    pub fn parse_all(mut records: Bytes) -> Result<Vec<RecordBatch>, BatchError> {
        let mut batches = Vec::new();
        while !records.is_empty() {
            let header = BatchHeader::parse(&records)?;
            if header.magic != 2 {
                return Err(BatchError::Magic(header.magic));
            }
            let len = header.total_len();
            if len < HEADER_LEN || len > records.len() {
                return Err(BatchError::Truncated);
            }
            let bytes = records.split_to(len);
            let computed = crc32c::crc32c(&bytes[CRC_START..]);
            if computed != header.crc {
                return Err(BatchError::Crc { stored: header.crc, computed });
            }
            // As Kafka's LogValidator: the offsets a batch takes are its record count. A batch
            // claiming a larger delta would burn offsets (up to 2^31 a batch) and mislead consumers.
            if header.records_count < 1 || i64::from(header.last_offset_delta) + 1 != i64::from(header.records_count) {
                return Err(BatchError::Invalid("record count does not match the batch's offset range"));
            }
            batches.push(RecordBatch { header, bytes });
        }
        if batches.is_empty() {
            return Err(BatchError::Truncated);
        }
        Ok(batches)
    }

    /// The batch's first 16 bytes with the broker-assigned base offset and leader epoch: stored in
    /// front of `self.bytes.slice(REWRITTEN_PREFIX_LEN..)`, it makes the batch as stored without
    /// copying or re-encoding the records.
    pub fn rewritten_prefix(&self, base_offset: i64, leader_epoch: i32) -> Bytes {
        let mut prefix = BytesMut::with_capacity(REWRITTEN_PREFIX_LEN);
        prefix.put_i64(base_offset);
        prefix.put_i32(self.header.batch_length);
        prefix.put_i32(leader_epoch);
        prefix.freeze()
    }
}

/// Walks the headers of batches that a broker stored itself (no CRC check): used to trim a run of
/// stored batches to a fetch offset and a byte budget without copying.
pub fn headers(run: &[u8]) -> impl Iterator<Item = (usize, BatchHeader)> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let header = BatchHeader::parse(run.get(pos..)?).ok()?;
        let len = header.total_len();
        if len < HEADER_LEN || pos + len > run.len() {
            return None;
        }
        let at = pos;
        pos += len;
        Some((at, header))
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a syntactically valid v2 batch with `count` records of opaque payload.
    pub fn make_batch(count: i32, producer_id: i64, base_sequence: i32, payload: &[u8]) -> Bytes {
        let mut body = BytesMut::new();
        body.put_i16(0); // attributes
        body.put_i32(count - 1);
        body.put_i64(1_700_000_000_000);
        body.put_i64(1_700_000_000_123);
        body.put_i64(producer_id);
        body.put_i16(0);
        body.put_i32(base_sequence);
        body.put_i32(count);
        body.put_slice(payload);
        let crc = crc32c::crc32c(&body);
        let mut out = BytesMut::new();
        out.put_i64(0);
        out.put_i32((body.len() + 9) as i32);
        out.put_i32(-1);
        out.put_i8(2);
        out.put_u32(crc);
        out.put_slice(&body);
        out.freeze()
    }

    #[test]
    fn parses_concatenated_batches() {
        let mut both = BytesMut::new();
        both.put_slice(&make_batch(3, 7, 0, b"abc"));
        both.put_slice(&make_batch(2, 7, 3, b"de"));
        let batches = RecordBatch::parse_all(both.freeze()).unwrap_or_default();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].header.last_sequence(), 2);
        assert_eq!(batches[1].header.base_sequence, 3);
        assert_eq!(batches[1].header.records_count, 2);
    }

    #[test]
    fn rewritten_prefix_keeps_the_crc_valid() {
        let batch = RecordBatch::parse_all(make_batch(3, -1, -1, b"xyz")).unwrap_or_default().remove(0);
        let mut stored = BytesMut::new();
        stored.put_slice(&batch.rewritten_prefix(1234, 9));
        stored.put_slice(&batch.bytes[REWRITTEN_PREFIX_LEN..]);
        let again = RecordBatch::parse_all(stored.freeze()).unwrap_or_default();
        assert_eq!(again[0].header.base_offset, 1234);
        assert_eq!(again[0].header.partition_leader_epoch, 9);
        assert_eq!(again[0].header.last_offset(), 1236);
    }

    #[test]
    fn refuses_bad_magic_and_empty() {
        let mut b = BytesMut::from(&make_batch(1, -1, -1, b"x")[..]);
        b[16] = 1;
        assert_eq!(RecordBatch::parse_all(b.freeze()), Err(BatchError::Magic(1)));
        assert_eq!(RecordBatch::parse_all(Bytes::new()), Err(BatchError::Truncated));
    }

    #[test]
    fn refuses_a_count_that_does_not_match_the_offset_range() {
        // A batch of 3 records claiming an offset delta of 1000 (it would take 1001 offsets).
        let mut body = BytesMut::from(&make_batch(3, -1, -1, b"abc")[21..]);
        body[2..6].copy_from_slice(&1000i32.to_be_bytes());
        let crc = crc32c::crc32c(&body);
        let mut forged = BytesMut::from(&make_batch(3, -1, -1, b"abc")[..21]);
        forged[17..21].copy_from_slice(&crc.to_be_bytes());
        forged.put_slice(&body);
        assert!(matches!(RecordBatch::parse_all(forged.freeze()), Err(BatchError::Invalid(_))));
        assert!(matches!(RecordBatch::parse_all(make_batch(0, -1, -1, b"")), Err(BatchError::Invalid(_))), "an empty batch");
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut h = BatchHeader::parse(&make_batch(3, 1, 0, b"")).unwrap_or_else(|_| unreachable!());
        h.base_sequence = i32::MAX - 1;
        assert_eq!(h.last_sequence(), 0);
    }

    #[test]
    fn headers_walks_stored_runs() {
        let mut run = BytesMut::new();
        run.put_slice(&make_batch(2, -1, -1, b"ab"));
        run.put_slice(&make_batch(1, -1, -1, b"c"));
        let found: Vec<_> = headers(&run).map(|(at, h)| (at, h.records_count)).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0], (0, 2));
        assert_eq!(found[1].1, 1);
    }

    proptest! {
        #[test]
        fn any_flipped_byte_after_the_prefix_is_caught(pos in 16usize..80, bit in 0u8..8) {
            let batch = make_batch(4, 5, 0, b"some payload bytes");
            let mut bad = BytesMut::from(&batch[..]);
            let pos = pos.min(bad.len() - 1);
            bad[pos] ^= 1 << bit;
            prop_assert!(RecordBatch::parse_all(bad.freeze()).is_err());
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RecordBatch::parse_all(Bytes::from(data.clone()));
            let _ = headers(&data).count();
        }
    }
}
