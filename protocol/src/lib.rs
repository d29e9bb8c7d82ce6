//! StreamHouse's Kafka wire glue, over the `kafka-protocol` codec.
//!
//! - `frame`: the 4-byte length-prefixed framing, with a cap on request size.
//! - `request`: request header and body decoding from `Bytes` (zero-copy), response encoding with the
//!   header version each API needs.
//! - `batch`: a view over a v2 record batch held as `Bytes`: header fields, validation (magic, lengths,
//!   CRC32C) and the two fields a broker rewrites (base offset, partition leader epoch).
//! - `error`: [`ProtocolError`], what can go wrong before a request reaches a handler.

pub mod batch;
pub mod decompress;
pub mod error;
pub mod frame;
pub mod request;

pub use error::ProtocolError;
