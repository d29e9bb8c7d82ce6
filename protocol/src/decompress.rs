//! Decoding the records of a client's batch with a cap on the decompressed size. kafka-protocol's
//! decoders inflate a whole batch into memory, so one produced batch of a few kilobytes could claim
//! gigabytes when the broker decodes it (a decompression bomb). Here gzip, lz4 and zstd are read
//! through a limit, and snappy's block headers, which state their decompressed length, are checked
//! before kafka-protocol decodes them.

use std::io::Read;

use bytes::{Buf, Bytes};
use kafka_protocol::compression::{Decompressor, Snappy};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};

/// The records of one batch at the start of `batch`, refusing a batch that inflates past `cap` bytes.
pub fn decode_records(batch: &mut Bytes, cap: usize) -> anyhow::Result<Vec<Record>> {
    let decompress = |compressed: &mut Bytes, compression: Compression| -> anyhow::Result<Bytes> {
        let whole = compressed.copy_to_bytes(compressed.remaining());
        match compression {
            Compression::None => Ok(whole),
            Compression::Gzip => read_capped(flate2::read::GzDecoder::new(whole.reader()), cap),
            Compression::Lz4 => read_capped(lz4::Decoder::new(whole.reader())?, cap),
            Compression::Zstd => read_capped(zstd::stream::read::Decoder::new(whole.reader())?, cap),
            Compression::Snappy => {
                check_snappy_len(&whole, cap)?;
                Snappy::decompress(&mut whole.clone(), |out: &mut Bytes| Ok(out.clone()))
            }
        }
    };
    Ok(RecordBatchDecoder::decode_with_custom_compression(batch, Some(decompress))?.records)
}

fn read_capped(reader: impl Read, cap: usize) -> anyhow::Result<Bytes> {
    let mut out = Vec::new();
    reader.take(cap as u64 + 1).read_to_end(&mut out)?;
    anyhow::ensure!(out.len() <= cap, "batch decompresses to more than {cap} bytes");
    Ok(Bytes::from(out))
}

/// Snappy as Kafka clients write it: xerial-framed blocks (a 16-byte magic header, then length-prefixed
/// raw blocks) or one raw block. Each raw block starts with its decompressed length.
fn check_snappy_len(compressed: &Bytes, cap: usize) -> anyhow::Result<()> {
    const MAGIC: &[u8] = b"\x82SNAPPY\x00";
    let total = if compressed.starts_with(MAGIC) && compressed.len() >= 16 {
        let mut rest = compressed.slice(16..);
        let mut total = 0usize;
        while rest.remaining() >= 4 {
            let len = rest.get_u32() as usize;
            anyhow::ensure!(len <= rest.remaining(), "truncated snappy block");
            total = total.saturating_add(snap::raw::decompress_len(&rest[..len])?);
            rest.advance(len);
        }
        total
    } else {
        snap::raw::decompress_len(compressed)?
    };
    anyhow::ensure!(total <= cap, "batch decompresses to {total} bytes, more than {cap}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    use super::*;

    fn batch(value_len: usize, compression: Compression) -> Bytes {
        let record = Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1,
            key: None,
            value: Some(Bytes::from(vec![b'a'; value_len])),
            headers: Default::default(),
            delete_horizon: false,
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression };
        let encoded = RecordBatchEncoder::encode(&mut buf, [&record], &options);
        assert!(encoded.is_ok());
        buf.freeze()
    }

    #[test]
    fn every_codec_decodes_within_the_cap_and_refuses_past_it() {
        for compression in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let small = decode_records(&mut batch(100, compression), 10_000);
            assert_eq!(small.ok().map(|r| r.len()), Some(1), "{compression:?}");
            if compression != Compression::None {
                // A megabyte of one repeated byte compresses to almost nothing.
                let bomb = batch(1 << 20, compression);
                assert!(bomb.len() < 64 << 10, "{compression:?} compresses the bomb to {} bytes", bomb.len());
                assert!(decode_records(&mut bomb.clone(), 100_000).is_err(), "{compression:?} bomb refused");
            }
        }
    }
}
