//! Kafka framing: every request and response is a big-endian `int32` length followed by that many
//! bytes. tokio-util's length-delimited codec does the work; this module only fixes its settings, so
//! the cap on request size lives in one place.
//!
//! A negative length reads as a huge unsigned one and so trips the same cap: the codec never
//! allocates from an unchecked client prefix.

use tokio_util::codec::LengthDelimitedCodec;

/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// A codec for Kafka frames whose bodies may be at most `max_frame_bytes` long.
pub fn codec(max_frame_bytes: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().big_endian().length_field_type::<u32>().max_frame_length(max_frame_bytes).new_codec()
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use tokio_util::codec::{Decoder, Encoder};

    use super::*;

    #[test]
    fn splits_frames_and_waits_for_the_rest() {
        let mut codec = codec(64);
        let mut buf = BytesMut::new();
        buf.put_u32(3);
        buf.put_slice(b"abc");
        buf.put_u32(2);
        buf.put_slice(b"d");
        assert_eq!(codec.decode(&mut buf).ok().flatten().as_deref(), Some(&b"abc"[..]));
        assert!(codec.decode(&mut buf).ok().flatten().is_none(), "second frame is incomplete");
        buf.put_slice(b"e");
        assert_eq!(codec.decode(&mut buf).ok().flatten().as_deref(), Some(&b"de"[..]));
    }

    #[test]
    fn rejects_oversized_and_negative_lengths() {
        for len in [65u32, u32::MAX, 0x8000_0000] {
            let mut codec = codec(64);
            let mut buf = BytesMut::new();
            buf.put_u32(len);
            assert!(codec.decode(&mut buf).is_err(), "length {len} must be refused");
        }
    }

    #[test]
    fn encodes_the_length_prefix() {
        let mut codec = codec(64);
        let mut out = BytesMut::new();
        codec.encode(bytes::Bytes::from_static(b"xyz"), &mut out).ok();
        assert_eq!(&out[..], &[0, 0, 0, 3, b'x', b'y', b'z']);
    }
}
