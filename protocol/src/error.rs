//! Errors met before a request reaches its handler. Each one ends the connection (Kafka does the
//! same for a frame it cannot parse); none of them may take the agent down.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProtocolError {
    #[error("frame of {size} bytes is over the {max}-byte limit (raise --max-request-bytes if this client is legitimate)")]
    FrameTooLarge { size: usize, max: usize },
    #[error("frame ends before its {what}")]
    Truncated { what: &'static str },
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {version} of API key {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
    #[error("cannot decode {what}: {source}")]
    Decode { what: &'static str, source: anyhow::Error },
    #[error("cannot encode {what}: {source}")]
    Encode { what: &'static str, source: anyhow::Error },
    #[error("connection I/O: {0}")]
    Io(#[from] std::io::Error),
}
