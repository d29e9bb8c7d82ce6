//! An agent: the stores, the shared context and every long-lived task, with a shutdown story.
//!
//! Shutdown order: stop accepting; let connections finish their in-flight requests (the flusher is
//! still running, so every waiting producer gets its answer); stop the flusher once it has flushed
//! the rest, renewing our leases all along so those last commits hold; then stop renewing and
//! release our leases so another agent can take over at once; the HTTP listeners close last.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use streamhouse_storage::ObjectStore;
use streamhouse_storage::cache::CachedStore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::cluster::Cluster;
use crate::config::Config;
use crate::context::{AgentContext, Shared};
use crate::error::BrokerError;
use crate::partition::table::PartitionTable;
use crate::partition::tail::TailBudget;
use crate::partition::writer::WriteQueue;
use crate::{groups, http, leases, partition, server, sweeper};
use streamhouse_metadata::{AgentInfo, MetadataError, MetadataStore, SystemClock};

/// How long shutdown waits for connections to finish their in-flight requests.
const DRAIN_DEADLINE: Duration = Duration::from_secs(15);

pub struct Agent {
    ctx: AgentContext,
    local_addr: SocketAddr,
    connections: TaskTracker,
    tasks: TaskTracker,
    flusher_stop: CancellationToken,
    flusher: tokio::task::JoinHandle<()>,
    leases_stop: CancellationToken,
    http: TaskTracker,
    http_stop: CancellationToken,
    http_addr: Option<SocketAddr>,
    console_addr: Option<SocketAddr>,
}

impl Agent {
    /// Opens the stores, takes the leases it can and starts serving on `listener`.
    pub async fn start(config: Config, listener: TcpListener) -> Result<Agent, BrokerError> {
        let objects = streamhouse_storage::open(&config.object_store_url()).await?;
        let clock = SystemClock { offset_ms: config.clock_offset_ms };
        let metadata = streamhouse_metadata::open_with_local_clock(&config.metadata_url(), clock).await?;
        Self::start_with_stores(config, listener, objects, metadata).await
    }

    /// `start` with stores opened by the caller: tests stack fault-injecting wrappers here.
    pub async fn start_with_stores(
        config: Config,
        listener: TcpListener,
        objects: Arc<dyn ObjectStore>,
        metadata: Arc<dyn MetadataStore>,
    ) -> Result<Agent, BrokerError> {
        let local_addr = listener.local_addr().map_err(streamhouse_protocol::ProtocolError::Io)?;
        let mut config = config;
        if config.advertised_address.is_none() {
            // Port 0 binds a random port: advertise the real one.
            config.advertised_address = Some(local_addr.to_string());
        }
        let advertised = config.advertised().map_err(|e| BrokerError::Metadata(streamhouse_metadata::MetadataError::invalid(e)))?;
        let listeners =
            http::Listeners::bind(config.http_listen.0, config.console_listen.0).await.map_err(streamhouse_protocol::ProtocolError::Io)?;
        refuse_a_live_agent_id(metadata.as_ref(), config.agent_id, config.lease_ttl()).await?;
        let objects = Arc::new(CachedStore::new(objects, config.read_cache_bytes as u64));
        let cluster_id = metadata.cluster_id().await?;
        let flusher_stop = CancellationToken::new();
        let ctx = AgentContext::new(Shared {
            agent_id: config.agent_id,
            cluster_id,
            metadata,
            objects,
            partitions: PartitionTable::default(),
            cluster: Cluster::new(AgentInfo {
                id: config.agent_id,
                host: advertised.0.clone(),
                port: advertised.1,
                zone: config.zone.clone(),
                group: config.agent_group.clone(),
            }),
            writes: WriteQueue::new(config.flush_bytes, config.flush_interval(), config.write_buffer_bytes),
            groups: Default::default(),
            tail_budget: TailBudget::new(config.tail_cache_total_bytes),
            commits: watch::Sender::new(0),
            shutdown: CancellationToken::new(),
            config,
        });
        let mut rounds = leases::Rounds::default();
        leases::renew(&ctx).await?;
        leases::round(&ctx, &mut rounds).await?;
        let tasks = TaskTracker::new();
        let connections = TaskTracker::new();
        let flusher = tokio::spawn(partition::flusher::run(ctx.clone(), flusher_stop.clone()));
        let leases_stop = CancellationToken::new();
        tasks.spawn(leases::run(ctx.clone(), rounds, leases_stop.clone()));
        tasks.spawn(sweeper::run(ctx.clone()));
        tasks.spawn(groups::run(ctx.clone()));
        tasks.spawn(server::run(ctx.clone(), listener, connections.clone()));
        let (http_addr, console_addr) = (listeners.api_addr(), listeners.console_addr());
        let (http, http_stop) = (TaskTracker::new(), CancellationToken::new());
        listeners.serve(&ctx, &http, http_stop.clone());
        Ok(Agent { ctx, local_addr, connections, tasks, flusher_stop, flusher, leases_stop, http, http_stop, http_addr, console_addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the HTTP API listens, unless --http-listen is off.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Where the web console listens, unless --console-listen is off.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console_addr
    }

    pub fn context(&self) -> &AgentContext {
        &self.ctx
    }

    pub async fn shutdown(self) {
        info!("shutting down: finishing in-flight requests");
        self.ctx.shutdown.cancel();
        self.connections.close();
        if tokio::time::timeout(DRAIN_DEADLINE, self.connections.wait()).await.is_err() {
            warn!("connections still busy after {DRAIN_DEADLINE:?}; closing them");
        }
        self.flusher_stop.cancel();
        // Renewals go on until the flusher has committed the rest, so its last commits hold. A store
        // that hangs must not hang the shutdown: past the deadline, the producers still waiting
        // have lost their connections anyway and retry on the next leader.
        let mut flusher = self.flusher;
        match tokio::time::timeout(DRAIN_DEADLINE, &mut flusher).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "the flusher ended abnormally"),
            Err(_) => {
                warn!("the last flush is still waiting on a store after {DRAIN_DEADLINE:?}; leaving it");
                flusher.abort();
            }
        }
        self.leases_stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(DRAIN_DEADLINE, self.tasks.wait()).await.is_err() {
            warn!("background tasks still waiting on a store after {DRAIN_DEADLINE:?}; leaving them");
        }
        let ttl = self.ctx.config.lease_ttl();
        if tokio::time::timeout(ttl, leases::release(&self.ctx)).await.is_err() {
            warn!("releasing the leases took over {ttl:?}; they expire by themselves");
        }
        // Last, so /health/ready said 503 and /metrics answered all through the drain.
        self.http_stop.cancel();
        self.http.close();
        if tokio::time::timeout(DRAIN_DEADLINE, self.http.wait()).await.is_err() {
            warn!("HTTP requests still running after {DRAIN_DEADLINE:?}; leaving them");
        }
        info!("shutdown complete");
    }
}

/// Refuses to start under an agent id another running agent uses: two agents under one id would
/// renew each other's leases. A live registration may also be this agent's previous run that died
/// without deregistering; that one is not renewed any more, which one heartbeat period tells.
async fn refuse_a_live_agent_id(metadata: &dyn MetadataStore, id: i32, ttl: Duration) -> Result<(), BrokerError> {
    let Some(first) = metadata.registration_expiry(id).await? else { return Ok(()) };
    // The expiry was written by the store's clock: judge it by the same one.
    if first <= metadata.now_ms() {
        return Ok(());
    }
    let wait = ttl / 2;
    info!(agent_id = id, ?wait, "agent id registered as live: checking that no other running agent uses it");
    tokio::time::sleep(wait).await;
    if metadata.registration_expiry(id).await? > Some(first) {
        return Err(BrokerError::Metadata(MetadataError::invalid(format!(
            "agent id {id} is in use by another running agent (its registration is being renewed): give this agent its own --agent-id"
        ))));
    }
    Ok(())
}
