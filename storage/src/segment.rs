//! The segment object format: one object per flush, holding the record batches of many partitions, each
//! partition's batches as one contiguous run, followed by an index and a CRC-protected footer.
//!
//! The byte layout and the versioning rule are specified in `storage/FORMAT.md`; keep the two in step. Brokers
//! read a run with one ranged GET using the position and length recorded in the metadata store, never parsing
//! the footer; [`parse_footer_and_index`] is for the sweeper, recovery tools and tests.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

use crate::StorageError;

/// First and last bytes of every segment object.
pub const MAGIC: [u8; 5] = *b"SHSEG";
/// The only format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Magic, version u16, flags u16. Runs start right after it.
pub const HEADER_LEN: u64 = 9;
/// topic_id 16, partition 4, base_offset 8, last_offset 8, position 8, length 8, max_timestamp 8.
pub const INDEX_ENTRY_LEN: u64 = 60;
/// index_position u64, index_length u32, crc32c u32, magic.
pub const FOOTER_LEN: u64 = 21;
/// Most runs one object can index: the index length (`4 + 60 * runs`) must fit the footer's u32.
pub const MAX_RUNS: usize = (u32::MAX as usize - 4) / INDEX_ENTRY_LEN as usize;

/// The CRC covers everything before the CRC field: the footer's last 9 bytes are the CRC and the magic.
const CRC_TAIL_LEN: u64 = 4 + MAGIC.len() as u64;
const INDEX_COUNT_LEN: u64 = 4;

/// Where one partition's run lies in the object: what the metadata store records for a ranged GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLocation {
    pub position: u64,
    pub length: u64,
}

impl RunLocation {
    /// The byte range to pass to [`crate::ObjectStore::get_range`].
    pub fn range(&self) -> Range<u64> {
        self.position..self.position + self.length
    }
}

/// One index entry: a run of one partition's batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub topic_id: Uuid,
    pub partition: i32,
    /// Offset of the first record of the first batch in the run.
    pub base_offset: i64,
    /// Offset of the last record of the last batch in the run.
    pub last_offset: i64,
    pub position: u64,
    pub length: u64,
    /// Largest record timestamp in the run, for time-based ListOffsets and retention.
    pub max_timestamp: i64,
}

impl IndexEntry {
    pub fn location(&self) -> RunLocation {
        RunLocation { position: self.position, length: self.length }
    }
}

/// Lays out one segment object in memory, run by run.
#[derive(Debug)]
pub struct SegmentBuilder {
    buf: BytesMut,
    entries: Vec<IndexEntry>,
}

impl Default for SegmentBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SegmentBuilder {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// Reserves room for `data_bytes` of batches up front, so a flusher that knows its pending size copies each
    /// batch exactly once instead of also paying for buffer regrowth.
    pub fn with_capacity(data_bytes: usize) -> Self {
        let mut buf = BytesMut::with_capacity(HEADER_LEN as usize + data_bytes);
        buf.put_slice(&MAGIC);
        buf.put_u16(FORMAT_VERSION);
        buf.put_u16(0); // flags: reserved, always 0 in version 1
        Self { buf, entries: Vec::new() }
    }

    /// Appends one partition's batches, concatenated as given, as a single run. Call once per partition per
    /// flush, so each partition is read back with one ranged GET.
    ///
    /// # Panics
    /// If this would be the run after [`MAX_RUNS`] (about 71 million), which the index cannot describe.
    pub fn append_run(
        &mut self,
        topic_id: Uuid,
        partition: i32,
        base_offset: i64,
        last_offset: i64,
        max_timestamp: i64,
        batches: &[Bytes],
    ) -> RunLocation {
        assert!(self.entries.len() < MAX_RUNS, "a segment object holds at most {MAX_RUNS} runs");
        let position = self.buf.len() as u64;
        for batch in batches {
            self.buf.put_slice(batch);
        }
        let location = RunLocation { position, length: self.buf.len() as u64 - position };
        self.entries.push(IndexEntry { topic_id, partition, base_offset, last_offset, position, length: location.length, max_timestamp });
        location
    }

    /// True when no run has been appended.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of runs appended.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of header and runs so far; the finished object adds `4 + 60 * len() + 21`.
    pub fn data_len(&self) -> usize {
        self.buf.len()
    }

    /// Writes the index and footer and returns the whole object with its index entries. An empty builder
    /// yields a valid object with an empty index, though a flusher has no reason to write one.
    pub fn finish(self) -> (Bytes, Vec<IndexEntry>) {
        let Self { mut buf, entries } = self;
        let index_position = buf.len() as u64;
        let index_length = INDEX_COUNT_LEN + INDEX_ENTRY_LEN * entries.len() as u64;
        buf.reserve((index_length + FOOTER_LEN) as usize);

        // Both casts are lossless: append_run keeps entries.len() <= MAX_RUNS.
        buf.put_u32(entries.len() as u32);
        for e in &entries {
            buf.put_slice(e.topic_id.as_bytes());
            buf.put_i32(e.partition);
            buf.put_i64(e.base_offset);
            buf.put_i64(e.last_offset);
            buf.put_u64(e.position);
            buf.put_u64(e.length);
            buf.put_i64(e.max_timestamp);
        }
        buf.put_u64(index_position);
        buf.put_u32(index_length as u32);
        let crc = crc32c::crc32c(&buf);
        buf.put_u32(crc);
        buf.put_slice(&MAGIC);
        (buf.freeze(), entries)
    }
}

/// Checks a whole segment object (magic, version, CRC, index bounds) and returns its index.
pub fn parse_footer_and_index(object: &[u8]) -> Result<Vec<IndexEntry>, StorageError> {
    let len = object.len() as u64;
    let smallest = HEADER_LEN + INDEX_COUNT_LEN + FOOTER_LEN;
    if len < smallest {
        return Err(corrupt(format!("it is {len} bytes, shorter than the smallest segment ({smallest}); truncated?")));
    }

    // Magic and version come first because they alone are fixed for every version; the rest of the layout,
    // including where the CRC lives, depends on the version.
    let mut header = Reader::new(object);
    if header.take::<5>()? != MAGIC {
        return Err(corrupt("it does not start with the magic 'SHSEG'; not a segment object".into()));
    }
    let version = header.u16()?;
    if version != FORMAT_VERSION {
        return Err(corrupt(format!("format version {version} is not supported (this build reads {FORMAT_VERSION}); upgrade the broker")));
    }
    let flags = header.u16()?;
    if flags != 0 {
        return Err(corrupt(format!("reserved flags are {flags:#06x}, version 1 requires 0")));
    }

    let footer_start = (len - FOOTER_LEN) as usize;
    let mut footer = Reader::new(&object[footer_start..]);
    let index_position = footer.u64()?;
    let index_length = u64::from(footer.u32()?);
    let stored_crc = footer.u32()?;
    if footer.take::<5>()? != MAGIC {
        return Err(corrupt("it does not end with the magic 'SHSEG'; truncated or overwritten?".into()));
    }
    let crc = crc32c::crc32c(&object[..(len - CRC_TAIL_LEN) as usize]);
    if crc != stored_crc {
        return Err(corrupt(format!("CRC32C is {crc:#010x} but the footer records {stored_crc:#010x}")));
    }

    // The CRC matched, so anything inconsistent below was written that way: a writer bug, not bit rot.
    let index_end = len - FOOTER_LEN;
    if index_position < HEADER_LEN || index_position.checked_add(index_length) != Some(index_end) {
        return Err(corrupt(format!(
            "index at {index_position} with length {index_length} does not end where the footer starts ({index_end})"
        )));
    }
    let mut index = Reader::new(&object[index_position as usize..index_end as usize]);
    let count = index.u32()?;
    if index_length != INDEX_COUNT_LEN + INDEX_ENTRY_LEN * u64::from(count) {
        return Err(corrupt(format!("index length {index_length} does not match its {count} entries")));
    }
    (0..count)
        .map(|_| {
            let entry = IndexEntry {
                topic_id: Uuid::from_bytes(index.take::<16>()?),
                partition: index.i32()?,
                base_offset: index.i64()?,
                last_offset: index.i64()?,
                position: index.u64()?,
                length: index.u64()?,
                max_timestamp: index.i64()?,
            };
            let in_data = entry.position >= HEADER_LEN && entry.position.checked_add(entry.length).is_some_and(|end| end <= index_position);
            if !in_data {
                return Err(corrupt(format!(
                    "run {}..+{} of partition {} lies outside the data region {HEADER_LEN}..{index_position}",
                    entry.position, entry.length, entry.partition
                )));
            }
            Ok(entry)
        })
        .collect()
}

fn corrupt(detail: String) -> StorageError {
    StorageError::corrupt(format!("segment object is unreadable: {detail}. Stop reading this object and keep it for inspection"))
}

/// Big-endian reads that fail with `Corrupt` instead of panicking when the bytes run out.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], StorageError> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or_else(|| corrupt("a field runs past the end of the object".into()))?;
        self.rest = rest;
        Ok(*head)
    }

    fn u16(&mut self) -> Result<u16, StorageError> {
        self.take().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, StorageError> {
        self.take().map(u32::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, StorageError> {
        self.take().map(i32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, StorageError> {
        self.take().map(u64::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, StorageError> {
        self.take().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::StorageErrorKind;

    fn topic(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    /// Three partitions of two topics, with several batches of different sizes per run.
    fn sample() -> (Bytes, Vec<IndexEntry>, Vec<Vec<Bytes>>) {
        let runs: Vec<Vec<Bytes>> = vec![
            vec![Bytes::from_static(b"batch-a1"), Bytes::from_static(b"batch-a2-longer")],
            vec![Bytes::from_static(b"b")],
            vec![Bytes::from(vec![7u8; 300]), Bytes::from_static(b"c2"), Bytes::from_static(b"c3")],
        ];
        let mut builder = SegmentBuilder::new();
        let ids = [(topic(1), 0), (topic(1), 3), (topic(2), 0)];
        for (i, ((topic_id, partition), batches)) in ids.iter().zip(&runs).enumerate() {
            let base = 100 * i as i64;
            builder.append_run(*topic_id, *partition, base, base + 9, 1_700_000_000_000 + i as i64, batches);
        }
        let (object, entries) = builder.finish();
        (object, entries, runs)
    }

    /// Recomputes the CRC after a test edits the object on purpose.
    fn reseal(object: &mut [u8]) {
        let crc_at = object.len() - CRC_TAIL_LEN as usize;
        let crc = crc32c::crc32c(&object[..crc_at]);
        object[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn round_trip_several_partitions() {
        let (object, entries, runs) = sample();
        assert_eq!(parse_footer_and_index(&object).unwrap(), entries);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].position, HEADER_LEN);
        assert_eq!((entries[1].topic_id, entries[1].partition), (topic(1), 3));
        assert_eq!((entries[2].base_offset, entries[2].last_offset), (200, 209));
        assert_eq!(entries[2].max_timestamp, 1_700_000_000_002);
        for (entry, batches) in entries.iter().zip(&runs) {
            let range = entry.location().range();
            let run = &object[range.start as usize..range.end as usize];
            assert_eq!(run, batches.concat().as_slice());
        }
        let index_len = INDEX_COUNT_LEN + 3 * INDEX_ENTRY_LEN;
        let data_end = entries[2].position + entries[2].length;
        assert_eq!(object.len() as u64, data_end + index_len + FOOTER_LEN);
    }

    #[test]
    fn append_run_reports_where_the_run_went() {
        let mut builder = SegmentBuilder::new();
        let first = builder.append_run(topic(1), 0, 0, 0, 0, &[Bytes::from_static(b"abc")]);
        let second = builder.append_run(topic(1), 1, 0, 0, 0, &[Bytes::from_static(b"de")]);
        assert_eq!(first, RunLocation { position: 9, length: 3 });
        assert_eq!(second.range(), 12..14);
        assert_eq!((builder.len(), builder.data_len()), (2, 14));
        let (object, entries) = builder.finish();
        assert_eq!(&object[..5], b"SHSEG");
        assert_eq!(&object[object.len() - 5..], b"SHSEG");
        assert_eq!(entries[1].location(), second);
    }

    #[test]
    fn empty_builder_gives_an_empty_index() {
        let builder = SegmentBuilder::default();
        assert!(builder.is_empty());
        assert_eq!(builder.len(), 0);
        let (object, entries) = builder.finish();
        assert!(entries.is_empty());
        assert_eq!(object.len() as u64, HEADER_LEN + INDEX_COUNT_LEN + FOOTER_LEN);
        assert_eq!(parse_footer_and_index(&object).unwrap(), vec![]);
    }

    #[test]
    fn unknown_version_is_rejected_by_name() {
        let (object, _, _) = sample();
        let mut object = object.to_vec();
        object[5..7].copy_from_slice(&2u16.to_be_bytes());
        reseal(&mut object);
        let err = parse_footer_and_index(&object).unwrap_err();
        assert_eq!(err.kind(), StorageErrorKind::Corrupt);
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn run_outside_data_region_is_rejected_even_with_a_good_crc() {
        let (object, entries, _) = sample();
        let mut object = object.to_vec();
        let index_position = (entries[2].position + entries[2].length) as usize;
        // The last entry's length field: count (4) + two entries + 16 + 4 + 8 + 8 + 8 into the third.
        let length_at = index_position + 4 + 2 * INDEX_ENTRY_LEN as usize + 44;
        object[length_at..length_at + 8].copy_from_slice(&u64::MAX.to_be_bytes());
        reseal(&mut object);
        let err = parse_footer_and_index(&object).unwrap_err();
        assert!(err.to_string().contains("outside the data region"), "{err}");
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let (object, _, _) = sample();
        let mut object = object.to_vec();
        object.extend_from_slice(b"extra");
        assert!(parse_footer_and_index(&object).is_err());
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let (object, _, _) = sample();
        for at in 0..object.len() {
            for bit in 0..8 {
                let mut damaged = object.to_vec();
                damaged[at] ^= 1 << bit;
                assert!(parse_footer_and_index(&damaged).is_err(), "flip of bit {bit} at byte {at} went unnoticed");
            }
        }
    }

    proptest! {
        #[test]
        fn any_corrupted_byte_is_detected(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let (object, _, _) = sample();
            let mut object = object.to_vec();
            let at = at.index(object.len());
            object[at] ^= flip;
            let err = parse_footer_and_index(&object).unwrap_err();
            prop_assert_eq!(err.kind(), StorageErrorKind::Corrupt);
        }

        #[test]
        fn any_truncation_is_detected(keep in any::<prop::sample::Index>()) {
            let (object, _, _) = sample();
            let keep = keep.index(object.len());
            let err = parse_footer_and_index(&object[..keep]).unwrap_err();
            prop_assert_eq!(err.kind(), StorageErrorKind::Corrupt);
        }
    }
}
