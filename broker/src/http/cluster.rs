//! The cluster as a whole: a summary, the live agents, the partition leases.
//!
//! Agents' last heartbeat is their registration expiry minus this agent's --lease-ttl-ms: the store
//! keeps only the expiry, and a cluster runs one lease ttl.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use streamhouse_metadata::AgentId;

use super::Shared;
use super::error::ApiResult;

#[derive(Serialize)]
pub struct Summary {
    cluster_id: String,
    agent_id: AgentId,
    version: &'static str,
    uptime_seconds: u64,
    read_only: bool,
    agents: usize,
    topics: usize,
    partitions: usize,
    leaderless_partitions: usize,
    messages: i64,
    bytes: i64,
    groups: usize,
}

pub async fn summary(State(state): State<Shared>) -> ApiResult<Json<Summary>> {
    let ctx = &state.ctx;
    let md = &ctx.metadata;
    let (topics, partitions, agents, groups) = tokio::try_join!(md.topics(), md.partition_overview(), md.live_agents(), md.list_groups())?;
    Ok(Json(Summary {
        cluster_id: ctx.cluster_id.clone(),
        agent_id: ctx.agent_id,
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        read_only: ctx.config.http_read_only,
        agents: agents.len(),
        topics: topics.len(),
        partitions: partitions.len(),
        leaderless_partitions: partitions.iter().filter(|p| p.state.leader.is_none()).count(),
        messages: partitions.iter().map(|p| p.state.high_watermark - p.state.log_start_offset).sum(),
        bytes: partitions.iter().map(|p| p.stored_bytes).sum(),
        groups: groups.len(),
    }))
}

#[derive(Serialize)]
pub struct Agent {
    id: AgentId,
    address: String,
    zone: Option<String>,
    group: String,
    last_heartbeat_ms: Option<i64>,
    registration_expires_ms: Option<i64>,
    partitions_led: usize,
    groups_coordinated: usize,
}

pub async fn agents(State(state): State<Shared>) -> ApiResult<Json<Vec<Agent>>> {
    let ctx = &state.ctx;
    let md = &ctx.metadata;
    let (agents, partitions, coordinators) = tokio::try_join!(md.live_agents(), md.partition_overview(), md.group_coordinators())?;
    let mut led: HashMap<AgentId, usize> = HashMap::new();
    for leader in partitions.iter().filter_map(|p| p.state.leader) {
        *led.entry(leader).or_default() += 1;
    }
    let mut coordinating: HashMap<AgentId, usize> = HashMap::new();
    for (_, agent) in &coordinators {
        *coordinating.entry(*agent).or_default() += 1;
    }
    let ttl_ms = i64::try_from(ctx.config.lease_ttl_ms).unwrap_or(i64::MAX);
    let mut out = Vec::with_capacity(agents.len());
    for a in agents {
        let expires = md.registration_expiry(a.id).await?;
        out.push(Agent {
            address: format!("{}:{}", a.host, a.port),
            zone: a.zone,
            group: a.group,
            last_heartbeat_ms: expires.map(|e| e.saturating_sub(ttl_ms)),
            registration_expires_ms: expires,
            partitions_led: led.get(&a.id).copied().unwrap_or(0),
            groups_coordinated: coordinating.get(&a.id).copied().unwrap_or(0),
            id: a.id,
        });
    }
    Ok(Json(out))
}

#[derive(Serialize)]
pub struct Lease {
    topic: String,
    partition: i32,
    agent_id: AgentId,
    epoch: i32,
    expires_ms: i64,
}

pub async fn leases(State(state): State<Shared>) -> ApiResult<Json<Vec<Lease>>> {
    let md = &state.ctx.metadata;
    let (topics, partitions) = tokio::try_join!(md.topics(), md.partition_overview())?;
    let names: HashMap<_, _> = topics.into_iter().map(|t| (t.id, t.name)).collect();
    let mut out: Vec<Lease> = partitions
        .iter()
        .filter_map(|p| {
            Some(Lease {
                topic: names.get(&p.state.id.topic_id)?.clone(),
                partition: p.state.id.partition,
                agent_id: p.state.leader?,
                epoch: p.state.leader_epoch,
                expires_ms: p.lease_expires_ms,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(Json(out))
}
