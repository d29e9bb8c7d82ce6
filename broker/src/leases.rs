//! Partition leases: this agent takes every partition it can and renews what it holds, one
//! statement per renewal. A lease is acquired with an epoch bump, so whatever an earlier holder (or
//! an earlier run of this agent) had pending can never commit.
//!
//! Balancing across agents (fair share, consistent hashing) comes with multi-agent clusters; with
//! one agent, "every partition it can" is all of them.

use std::sync::Arc;
use std::time::Duration;

use streamhouse_metadata::{PartitionId, Topic};
use tracing::{info, warn};

use crate::context::AgentContext;
use crate::error::Result;
use crate::partition::Partition;

/// Renews and acquires every `ttl / 3`, until shutdown; then releases everything held.
pub async fn run(ctx: AgentContext) {
    let period = ctx.config.lease_ttl() / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = ctx.shutdown.cancelled() => break,
        }
        if let Err(e) = ctx.metadata.renew_leases(ctx.agent_id, ctx.config.lease_ttl()).await {
            warn!(error = %e, "lease renewal failed; will retry");
        }
        if let Err(e) = sync_topics(&ctx).await {
            warn!(error = %e, "refreshing topics and leases failed; will retry");
        }
    }
}

/// Gives up every lease so another agent can take over at once. Called after the last flush.
pub async fn release(ctx: &AgentContext) {
    if let Err(e) = ctx.metadata.release_leases(ctx.agent_id).await {
        warn!(error = %e, "could not release leases; they expire after --lease-ttl-ms");
    }
}

/// Reloads the topic list and takes the lease of every partition not yet led.
pub async fn sync_topics(ctx: &AgentContext) -> Result<()> {
    let topics = ctx.metadata.topics().await?;
    for known in ctx.partitions.topics() {
        if !topics.iter().any(|t| t.id == known.id) {
            ctx.partitions.remove_topic(&known.name);
        }
    }
    for topic in topics {
        acquire_topic(ctx, &topic).await?;
    }
    Ok(())
}

/// Records the topic and takes the leases of its partitions that no one holds.
pub async fn acquire_topic(ctx: &AgentContext, topic: &Topic) -> Result<()> {
    ctx.partitions.put_topic(topic.clone());
    for partition in 0..topic.partitions {
        let id = PartitionId { topic_id: topic.id, partition };
        if ctx.partitions.is_led(&id) {
            continue;
        }
        acquire(ctx, &topic.name, id, ctx.config.lease_ttl()).await?;
    }
    Ok(())
}

async fn acquire(ctx: &AgentContext, topic: &str, id: PartitionId, ttl: Duration) -> Result<()> {
    let Some(lease) = ctx.metadata.acquire_lease(ctx.agent_id, id, ttl).await? else {
        return Ok(());
    };
    let producers = ctx.metadata.producer_states(id).await?;
    info!(topic, partition = id.partition, epoch = lease.leader_epoch, high_watermark = lease.high_watermark, "leading partition");
    ctx.partitions.insert_led(Arc::new(Partition::new(
        id,
        topic.to_string(),
        lease.leader_epoch,
        lease.high_watermark,
        lease.log_start_offset,
        producers,
        ctx.config.tail_cache_bytes,
    )));
    Ok(())
}
