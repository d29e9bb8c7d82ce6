//! `streamhouse-fuzz`: feeds frames to a running agent as fast as it takes them and checks that it
//! survives. Each frame carries a valid size prefix and (mostly) a valid header of a routed API and
//! version, with a body made from a real request of that API (`seeds`) by a random mutation (`mutate`):
//! flipped bits, i32 fields overwritten with hostile counts, truncation, splices, random bytes. Many
//! connections at once; a connection the agent closes is reopened, one that stops reading for a second
//! is dropped (a parked JoinGroup, say). At the end a fresh connection must still get answers to
//! ApiVersions, Metadata, Produce and Fetch.
//!
//! usage: streamhouse-fuzz --addr 127.0.0.1:9092 [--seconds 60] [--frames N] [--connections 16] [--seed S]

mod mutate;
mod seeds;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use clap::Parser;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mutate::Rng;
use seeds::Seed;

#[derive(Parser)]
struct Args {
    /// The agent to fuzz.
    #[arg(long)]
    addr: String,
    /// Stop after this long...
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// ... or after this many frames, whichever comes first.
    #[arg(long, default_value_t = u64::MAX)]
    frames: u64,
    /// Connections sending at once.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Random seed (default: from the clock); the run prints it.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Default)]
struct Counts {
    /// Frames written; a connection the agent closes drops the ones after the frame that closed it.
    frames: AtomicU64,
    /// Frames the agent handled: answers read, plus the frame that made it close each connection.
    handled: AtomicU64,
    bytes: AtomicU64,
    connections: AtomicU64,
    closed_by_agent: AtomicU64,
    stalled: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| Instant::now().elapsed().as_nanos() as u64 ^ u64::from(std::process::id()) << 32);
    let versions = api_versions(&args.addr).await.context("the agent does not answer ApiVersions: is it running at --addr?")?;
    let seeds = Arc::new(seeds::all(&versions, &mut Rng::new(seed), SEED_ROUNDS)?);
    eprintln!("fuzzing {} with {} seed requests over {} APIs, seed {seed}", args.addr, seeds.len(), versions.len());
    let counts = Arc::new(Counts::default());
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.connections {
        let (addr, seeds, counts) = (args.addr.clone(), Arc::clone(&seeds), Arc::clone(&counts));
        let mut rng = Rng::new(seed.wrapping_add((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        let limit = args.frames;
        tasks.push(tokio::spawn(async move { feed(&addr, &seeds, &counts, &mut rng, deadline, limit).await }));
    }
    let progress = {
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                eprintln!("  {} frames handled so far", counts.handled.load(Ordering::Relaxed));
            }
        })
    };
    for t in tasks {
        t.await??;
    }
    progress.abort();
    let elapsed = started.elapsed().as_secs_f64();
    let handled = counts.handled.load(Ordering::Relaxed);
    println!(
        "fuzz: {handled} frames handled by the agent ({} written, {:.1} MB) in {elapsed:.1}s = {:.0} frames/s over {} connections ({} closed by the agent, {} dropped as stalled), seed {seed}",
        counts.frames.load(Ordering::Relaxed),
        counts.bytes.load(Ordering::Relaxed) as f64 / 1e6,
        handled as f64 / elapsed,
        counts.connections.load(Ordering::Relaxed),
        counts.closed_by_agent.load(Ordering::Relaxed),
        counts.stalled.load(Ordering::Relaxed),
    );
    seeds::still_serves(&args.addr).await.context("after the fuzzing the agent no longer serves a well-behaved client")?;
    println!("fuzz: the agent still answers ApiVersions, Metadata, Produce and Fetch");
    Ok(())
}

/// Sets of random-valued requests generated at the start.
const SEED_ROUNDS: usize = 40;

/// Frames a connection may have unanswered: writes wait for answers, so every frame written is
/// one the agent reads (unless it closes the connection first).
const WINDOW: u64 = 64;
/// A connection whose answers stop coming for this long is dropped (a parked JoinGroup, say).
const STALL: Duration = Duration::from_millis(500);

/// One sender: connections one after another until the deadline or the frame limit.
async fn feed(addr: &str, seeds: &[Seed], counts: &Arc<Counts>, rng: &mut Rng, deadline: Instant, limit: u64) -> anyhow::Result<()> {
    while Instant::now() < deadline && counts.handled.load(Ordering::Relaxed) < limit {
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => bail!("cannot connect to the agent any more: {e}"),
        };
        counts.connections.fetch_add(1, Ordering::Relaxed);
        let (mut reader, mut writer) = stream.into_split();
        let answered = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(tokio::sync::Notify::new());
        // Answers are counted and thrown away.
        let drain = {
            let (counts, answered, progress) = (Arc::clone(counts), Arc::clone(&answered), Arc::clone(&progress));
            tokio::spawn(async move {
                let mut buf = BytesMut::with_capacity(64 << 10);
                while matches!(reader.read_buf(&mut buf).await, Ok(n) if n > 0) {
                    while buf.len() >= 4 {
                        let len = usize::try_from(i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]])).unwrap_or(0);
                        if buf.len() < 4 + len {
                            break;
                        }
                        buf.advance(4 + len);
                        counts.handled.fetch_add(1, Ordering::Relaxed);
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    progress.notify_one();
                    buf.reserve(64 << 10);
                }
                progress.notify_one();
            })
        };
        let mut written = 0u64;
        let mut batch = BytesMut::new();
        'connection: loop {
            if Instant::now() >= deadline || counts.handled.load(Ordering::Relaxed) >= limit {
                break;
            }
            while written - answered.load(Ordering::Relaxed) >= WINDOW {
                if drain.is_finished() || tokio::time::timeout(STALL, progress.notified()).await.is_err() {
                    break 'connection;
                }
            }
            batch.clear();
            let n = 1 + rng.below(8) as u64;
            for _ in 0..n {
                batch.put_slice(&mutate::frame(seeds, rng));
            }
            match tokio::time::timeout(STALL, writer.write_all(&batch)).await {
                Ok(Ok(())) => {
                    written += n;
                    counts.frames.fetch_add(n, Ordering::Relaxed);
                    counts.bytes.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Ok(Err(_)) | Err(_) => break,
            }
            if drain.is_finished() {
                break;
            }
        }
        drop(writer);
        if drain.is_finished() {
            // The frame that made the agent close the connection was handled too: refused.
            counts.closed_by_agent.fetch_add(1, Ordering::Relaxed);
            counts.handled.fetch_add(1, Ordering::Relaxed);
        } else {
            counts.stalled.fetch_add(1, Ordering::Relaxed);
        }
        drain.abort();
    }
    Ok(())
}

/// The agent's routed APIs and their version ranges.
async fn api_versions(addr: &str) -> anyhow::Result<Vec<(ApiKey, i16, i16)>> {
    let mut s = TcpStream::connect(addr).await?;
    let response: ApiVersionsResponse = exchange(&mut s, 3, &ApiVersionsRequest::default()).await?;
    Ok(response.api_keys.iter().filter_map(|k| ApiKey::try_from(k.api_key).ok().map(|key| (key, k.min_version, k.max_version))).collect())
}

/// Sends one request and decodes its answer.
pub async fn exchange<R: kafka_protocol::protocol::Request>(s: &mut TcpStream, version: i16, request: &R) -> anyhow::Result<R::Response> {
    let key = ApiKey::try_from(R::KEY).map_err(|_| anyhow::anyhow!("unknown key"))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("streamhouse-fuzz")));
    let mut body = BytesMut::new();
    header.encode(&mut body, key.request_header_version(version))?;
    request.encode(&mut body, version)?;
    let mut frame = BytesMut::new();
    frame.put_i32(i32::try_from(body.len())?);
    frame.put_slice(&body);
    tokio::time::timeout(Duration::from_secs(10), async {
        s.write_all(&frame).await?;
        let len = usize::try_from(s.read_i32().await?)?;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await?;
        let mut buf = Bytes::from(buf);
        ResponseHeader::decode(&mut buf, key.response_header_version(version))?;
        let response = R::Response::decode(&mut buf, version)?;
        anyhow::ensure!(!buf.has_remaining(), "trailing bytes in the answer");
        Ok(response)
    })
    .await
    .context("no answer within 10 s")?
}
