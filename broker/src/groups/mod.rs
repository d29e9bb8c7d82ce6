//! Consumer-group coordination. Each group is coordinated by the agent holding its coordinator
//! lease (taken on first use, fenced by epoch like a partition's), so the design holds when several
//! agents share a cluster. The join/sync state machine (`group`) lives in memory; generation,
//! members and assignments are saved to the metadata store whenever they change, so a restarted or
//! new coordinator carries on without a rebalance. Committed offsets go straight to the store.

pub mod group;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use kafka_protocol::error::ResponseError;
use streamhouse_metadata::MetadataErrorKind;
use tracing::{info, warn};

use crate::context::AgentContext;
use crate::error::BrokerError;
use group::Group;

/// How often timers (sessions, rebalance deadlines, initial delays) are checked.
const TICK: Duration = Duration::from_millis(50);
/// How often expired offsets of empty groups are deleted.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Coordinator {
    groups: DashMap<String, Arc<GroupHandle>>,
    /// One loader per group id: concurrent first requests share one lease acquisition, since each
    /// acquisition bumps the coordinator epoch and would fence the others.
    loading: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

/// A group this agent coordinates, under the coordinator epoch its writes are fenced with.
pub struct GroupHandle {
    pub epoch: i32,
    /// When the lease acquisition returned: a renewal sent before then covered the lease.
    taken: Instant,
    state: Mutex<Group>,
    /// Serialises saves so a newer snapshot is never overwritten by an older one.
    saving: tokio::sync::Mutex<()>,
}

impl GroupHandle {
    /// Runs `f` on the group; the lock is never held across an `.await`.
    pub fn with<T>(&self, f: impl FnOnce(&mut Group) -> T) -> T {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }
}

impl Coordinator {
    pub fn loaded(&self) -> Vec<Arc<GroupHandle>> {
        self.groups.iter().map(|g| Arc::clone(&g)).collect()
    }

    pub fn loaded_group(&self, id: &str) -> Option<Arc<GroupHandle>> {
        self.groups.get(id).map(|g| Arc::clone(&g))
    }

    pub fn forget(&self, id: &str) {
        self.groups.remove(id);
    }

    /// After a renewal sent at `sent` extended the leases of `renewed` only: forgets every group
    /// taken before then that is not among them. Its lease expired and another agent may coordinate
    /// it now, so answering its members from memory would split the group's brain.
    pub fn keep_only(&self, renewed: &[String], sent: Instant) {
        self.groups.retain(|id, handle| {
            let keep = handle.taken >= sent || renewed.iter().any(|r| r == id);
            if !keep {
                warn!(group = id, "coordinator lease lost; no longer coordinating this group");
            }
            keep
        });
    }
}

/// Whether the group `id` exists anywhere: loaded here with members or a generation, saved in the
/// store, or holding committed offsets. Requests that only read or delete a group ask this first,
/// so a made-up group name never gets a coordinator lease row.
pub async fn known(ctx: &AgentContext, id: &str) -> Result<bool, BrokerError> {
    let state = match ctx.groups.loaded_group(id) {
        Some(h) => h.with(|g| g.exists()),
        None => ctx.metadata.load_group(id).await?.is_some(),
    };
    Ok(state || !ctx.metadata.fetch_offsets(id).await?.is_empty())
}

/// The group `id` if it exists ([`known`]), else `unknown`: for requests that act only on a group
/// that is there (heartbeats, syncs, leaves, offset reads and deletes), so a made-up name never gets
/// a coordinator lease row.
pub async fn existing(ctx: &AgentContext, id: &str, unknown: ResponseError) -> Result<Arc<GroupHandle>, ResponseError> {
    if !known(ctx, id).await.map_err(|e| e.response_error())? {
        return Err(unknown);
    }
    group(ctx, id).await
}

/// The group `id`, taking its coordinator lease and loading its saved state on first use.
/// NOT_COORDINATOR while another agent holds the lease; COORDINATOR_NOT_AVAILABLE if the store
/// cannot be reached (both are retried by clients).
pub async fn group(ctx: &AgentContext, id: &str) -> Result<Arc<GroupHandle>, ResponseError> {
    if id.is_empty() {
        return Err(ResponseError::InvalidGroupId);
    }
    if !ctx.cluster.lease_valid() {
        // Not renewed in time: another agent may hold the group's lease by now.
        return Err(ResponseError::NotCoordinator);
    }
    if let Some(g) = ctx.groups.loaded_group(id) {
        return Ok(g);
    }
    let loader = Arc::clone(ctx.groups.loading.entry(id.to_string()).or_default().value());
    let _single_flight = loader.lock().await;
    if let Some(g) = ctx.groups.loaded_group(id) {
        return Ok(g);
    }
    let loaded = load(ctx, id).await;
    ctx.groups.loading.remove(id);
    loaded
}

async fn load(ctx: &AgentContext, id: &str) -> Result<Arc<GroupHandle>, ResponseError> {
    let unavailable = |e: streamhouse_metadata::MetadataError| {
        warn!(group = id, error = %e, "cannot load group");
        ResponseError::CoordinatorNotAvailable
    };
    let epoch = ctx
        .metadata
        .acquire_group_lease(ctx.agent_id, id, ctx.config.lease_ttl())
        .await
        .map_err(unavailable)?
        .ok_or(ResponseError::NotCoordinator)?;
    // After the acquisition returned: a renewal sent before this instant ran after it committed.
    let taken = Instant::now();
    let delay = ctx.config.group_initial_rebalance_delay();
    let group = match ctx.metadata.load_group(id).await.map_err(unavailable)? {
        Some(saved) => Group::restore(saved, delay, Instant::now()),
        None => Group::new(id, delay),
    };
    info!(group = id, epoch, generation = group.generation, "coordinating group");
    let handle = Arc::new(GroupHandle { epoch, taken, state: Mutex::new(group), saving: tokio::sync::Mutex::new(()) });
    ctx.groups.groups.insert(id.to_string(), Arc::clone(&handle));
    Ok(handle)
}

/// Saves the group if its durable state changed. A fenced save means another agent coordinates
/// the group now: we forget it, and the client is told NOT_COORDINATOR.
pub async fn save(ctx: &AgentContext, handle: &Arc<GroupHandle>) -> Result<(), ResponseError> {
    let _order = handle.saving.lock().await;
    let Some(state) = handle.with(|g| std::mem::take(&mut g.dirty).then(|| g.saved())) else {
        return Ok(());
    };
    match ctx.metadata.save_group(ctx.agent_id, handle.epoch, &state).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == MetadataErrorKind::Fenced => {
            warn!(group = state.group_id, "fenced: another agent coordinates this group now");
            ctx.groups.forget(&state.group_id);
            Err(BrokerError::from(e).response_error())
        }
        Err(e) => {
            warn!(group = state.group_id, error = %e, "saving group state failed; will retry");
            handle.with(|g| g.dirty = true);
            Err(BrokerError::from(e).response_error())
        }
    }
}

/// Drives group timers and offset expiry until shutdown.
pub async fn run(ctx: AgentContext) {
    let mut last_expiry = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = ctx.shutdown.cancelled() => break,
        }
        let now = Instant::now();
        for handle in ctx.groups.loaded() {
            if handle.with(|g| {
                g.tick(now);
                g.dirty
            }) {
                let _ = save(&ctx, &handle).await;
            }
        }
        if now.duration_since(last_expiry) >= EXPIRE_EVERY {
            last_expiry = now;
            expire_offsets(&ctx).await;
        }
    }
    // Parked joins and syncs learn at once that this coordinator is going; then save what changed
    // last so the next coordinator resumes from it.
    for handle in ctx.groups.loaded() {
        handle.with(Group::abandon);
        let _ = save(&ctx, &handle).await;
    }
}

async fn expire_offsets(ctx: &AgentContext) {
    let retention = ctx.config.offsets_retention();
    // The store's clock, which stamped the commits: an agent whose own clock runs ahead must not
    // expire the offsets of others early.
    let cutoff = ctx.metadata.now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    match ctx.metadata.expire_offsets(cutoff).await {
        Ok(0) => {}
        Ok(n) => info!(offsets = n, "expired committed offsets of empty groups"),
        Err(e) => warn!(error = %e, "expiring offsets failed; will retry"),
    }
}
