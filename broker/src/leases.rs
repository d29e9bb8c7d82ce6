//! Partition leases and their balance across agents.
//!
//! Every third of the lease ttl this agent heartbeats its registration and renews all its leases in
//! one statement, and, in a round of its own, computes the same target assignment every agent
//! computes from the same inputs (`assign`): each agent group's partitions spread over that group's
//! live agents, at most ceil(partitions / agents) each, each partition going to the agent it ranks highest by
//! rendezvous hashing that still has room. So a join or a leave moves few partitions, and twenty
//! agents starting at once end within one partition of a fair share.
//!
//! An agent takes the free or expired partitions targeted at it (the acquisition bumps the epoch, so
//! whatever the previous holder had pending can never commit), and hands off partitions targeted
//! at another live agent: it stops accepting writes for them at once and releases the lease at the
//! first round after its last flush has finished (drain first, then release, so its own last
//! commits are never fenced). A partition nobody takes for three rounds is taken by anyone.
//!
//! At shutdown the rounds stop balancing but keep renewing until the agent has flushed and answered
//! everything (`run`'s `stop`), and only then is every lease released.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use streamhouse_metadata::{AgentId, AgentInfo, PartitionId, PartitionState, Topic};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cluster;
use crate::context::AgentContext;
use crate::error::Result;
use crate::handlers::topic_configs::agent_group_of;
use crate::metrics::LeaseLoss;
use crate::partition::tail::TailCache;
use crate::partition::{Partition, producers};

/// Rounds a partition may stay unowned before any agent takes it.
const ORPHAN_ROUNDS: u32 = 3;

/// What a lease round remembers for the next one.
#[derive(Default)]
pub struct Rounds {
    /// Partitions handed off: writes refused since the last round, lease released in the next.
    draining: Vec<Arc<Partition>>,
    unowned: HashMap<PartitionId, u32>,
}

/// Renews this agent's leases and runs balancing rounds, each every third of the lease ttl, until
/// `stop`. Two loops, not one: a round can wait on row locks (another agent frozen mid-transaction
/// holds the rows it would take over) for up to the store's lock timeout, longer than a lease
/// lives, and renewals queued behind it would let this agent's own healthy leases expire. Once the
/// agent is shutting down the rounds stop; renewals go on, for the last flushes to commit.
pub async fn run(ctx: AgentContext, rounds: Rounds, stop: CancellationToken) {
    tokio::join!(renewals(&ctx, &stop), balancing(&ctx, rounds, &stop));
}

async fn renewals(ctx: &AgentContext, stop: &CancellationToken) {
    let period = ctx.config.lease_ttl() / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.cancelled() => break,
        }
        // A renewal stuck on the store must not hold up the end of a shutdown.
        let done = tokio::select! {
            done = renew(ctx) => done,
            _ = stop.cancelled() => break,
        };
        if let Err(e) = done {
            warn!(error = %e, "lease renewal failed; writes stop if renewals keep failing, retrying");
        }
    }
}

async fn balancing(ctx: &AgentContext, mut rounds: Rounds, stop: &CancellationToken) {
    let period = ctx.config.lease_ttl() / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = ctx.shutdown.cancelled() => break,
            _ = stop.cancelled() => break,
        }
        let done = tokio::select! {
            done = round(ctx, &mut rounds) => done,
            _ = ctx.shutdown.cancelled() => break,
            _ = stop.cancelled() => break,
        };
        if let Err(e) = done {
            warn!(error = %e, "lease round failed; retrying");
        }
    }
}

/// Heartbeats this agent and renews every lease it holds, in one round trip each.
pub async fn renew(ctx: &AgentContext) -> Result<()> {
    let ttl = ctx.config.lease_ttl();
    let sent = Instant::now();
    ctx.metadata.register_agent(&ctx.cluster.me, ttl).await?;
    let renewed = ctx.metadata.renew_leases(ctx.agent_id, ttl).await?;
    ctx.cluster.renewed(sent, ttl);
    ctx.groups.keep_only(&renewed.groups, sent);
    Ok(())
}

/// Gives up every lease and the registration so other agents take over at once. Called after the
/// last flush.
pub async fn release(ctx: &AgentContext) {
    if let Err(e) = ctx.metadata.release_leases(ctx.agent_id).await {
        warn!(error = %e, "could not release leases; they expire after --lease-ttl-ms");
    } else {
        ctx.metrics.lease_lost(LeaseLoss::Shutdown, ctx.partitions.led_partitions().len() as u64);
    }
    if let Err(e) = ctx.metadata.deregister_agent(ctx.agent_id).await {
        warn!(error = %e, "could not deregister; the registration expires after --lease-ttl-ms");
    }
}

/// One round: refresh topics and agents, hand off and take partitions.
pub async fn round(ctx: &AgentContext, rounds: &mut Rounds) -> Result<()> {
    let ttl = ctx.config.lease_ttl();
    let (flushing, drained): (Vec<_>, Vec<_>) = std::mem::take(&mut rounds.draining).into_iter().partition(|p| p.flushing());
    rounds.draining = flushing;
    for p in drained {
        ctx.metadata.release_lease(ctx.agent_id, p.id).await?;
        info!(topic = p.topic, partition = p.id.partition, "handed off partition");
    }
    let agents = ctx.metadata.live_agents().await?;
    ctx.cluster.set_live(agents.clone());
    let topics = refresh_topics(ctx).await?;
    let states = ctx.metadata.all_partition_states().await?;
    // Every round reads every partition's state anyway: a scrape need not read them again.
    let leaderless = states.iter().filter(|s| s.leader.is_none()).count();
    ctx.metrics.leaderless_partitions.set(i64::try_from(leaderless).unwrap_or(i64::MAX));
    let target = assign(&topics, &states, &agents);
    for s in &states {
        let Some(led) = ctx.partitions.led(&s.id) else { continue };
        let ours = s.leader == Some(ctx.agent_id) && s.leader_epoch == led.snapshot().leader_epoch;
        if !ours {
            warn!(topic = led.topic, partition = s.id.partition, "lost the lease of a partition; dropping it");
            ctx.partitions.remove_led(&led);
            ctx.metrics.lease_lost(LeaseLoss::TakenOver, 1);
        } else if let Some(&other) = target.get(&s.id).filter(|a| **a != ctx.agent_id) {
            info!(topic = led.topic, partition = s.id.partition, to = other, "handing off partition");
            ctx.partitions.remove_led(&led);
            ctx.metrics.lease_lost(LeaseLoss::HandedOff, 1);
            rounds.draining.push(led);
        }
    }
    let by_id: HashMap<_, &Topic> = topics.iter().map(|t| (t.id, t)).collect();
    for s in &states {
        // Not one handed off above (or still draining): those are released only once their last flush
        // is done, else the release fences that flush's commit and its producers get NOT_LEADER.
        let draining = rounds.draining.iter().any(|p| p.id == s.id);
        if s.leader == Some(ctx.agent_id) && !ctx.partitions.is_led(&s.id) && !draining && target.get(&s.id) != Some(&ctx.agent_id) {
            // Ours from an earlier run of this agent, but targeted elsewhere now: let it go.
            ctx.metadata.release_lease(ctx.agent_id, s.id).await?;
            continue;
        }
        let taken = s.leader.is_some_and(|l| l != ctx.agent_id || ctx.partitions.is_led(&s.id));
        if taken || draining {
            rounds.unowned.remove(&s.id);
            continue;
        }
        let orphaned = rounds.unowned.entry(s.id).or_default();
        *orphaned += 1;
        let Some(topic) = by_id.get(&s.id.topic_id) else { continue };
        // An orphan may be taken by any agent, but only of the topic's agent group.
        let ours_to_take =
            target.get(&s.id) == Some(&ctx.agent_id) || (*orphaned > ORPHAN_ROUNDS && agent_group_of(topic) == ctx.cluster.me.group);
        if ours_to_take {
            acquire(ctx, &topic.name, s.id, ttl).await?;
        }
    }
    Ok(())
}

/// Reloads the topic list into the partition table; returns it.
async fn refresh_topics(ctx: &AgentContext) -> Result<Vec<Topic>> {
    let topics = ctx.metadata.topics().await?;
    for known in ctx.partitions.topics() {
        if !topics.iter().any(|t| t.id == known.id) {
            ctx.partitions.remove_topic(&known.name);
            ctx.metrics.topics.forget(&known.name);
        }
    }
    for t in &topics {
        ctx.partitions.put_topic(t.clone());
    }
    Ok(topics)
}

/// Records a topic just created or grown and takes the partitions targeted at this agent, so the
/// first produce need not wait for the next round.
pub async fn acquire_topic(ctx: &AgentContext, topic: &Topic) -> Result<()> {
    ctx.partitions.put_topic(topic.clone());
    let agents = ctx.cluster.live();
    let states: Vec<PartitionState> = ctx.metadata.partition_states(topic.id).await?;
    let target = assign(std::slice::from_ref(topic), &states, &agents);
    for s in states {
        if s.leader.is_none() && target.get(&s.id) == Some(&ctx.agent_id) {
            acquire(ctx, &topic.name, s.id, ctx.config.lease_ttl()).await?;
        }
    }
    Ok(())
}

async fn acquire(ctx: &AgentContext, topic: &str, id: PartitionId, ttl: Duration) -> Result<()> {
    let Some(lease) = ctx.metadata.acquire_lease(ctx.agent_id, id, ttl).await? else {
        return Ok(());
    };
    ctx.metrics.lease_acquisitions.inc();
    let mut states = ctx.metadata.producer_states(id).await?;
    // Kafka too skips expired producers when it loads their state; the rows go with the first prune.
    let cutoff_ms = producers::expiry_cutoff_ms(ctx.metadata.now_ms(), ctx.config.producer_id_expiration());
    states.retain(|p| !producers::expired(p.last_write_ms, cutoff_ms));
    info!(topic, partition = id.partition, epoch = lease.leader_epoch, high_watermark = lease.high_watermark, "leading partition");
    ctx.partitions.insert_led(Arc::new(Partition::new(
        id,
        topic.to_string(),
        lease.leader_epoch,
        lease.high_watermark,
        lease.log_start_offset,
        states,
        TailCache::new(ctx.config.tail_cache_bytes, Arc::clone(&ctx.tail_budget)),
    )));
    Ok(())
}

/// The target leader of every partition: per agent group, at most ceil(n / agents) partitions per
/// live agent, each to its highest-ranked agent with room.
pub fn assign(topics: &[Topic], states: &[PartitionState], agents: &[AgentInfo]) -> HashMap<PartitionId, AgentId> {
    let groups: HashMap<_, &str> = topics.iter().map(|t| (t.id, agent_group_of(t))).collect();
    let mut by_group: HashMap<&str, Vec<PartitionId>> = HashMap::new();
    for s in states {
        if let Some(g) = groups.get(&s.id.topic_id) {
            by_group.entry(g).or_default().push(s.id);
        }
    }
    let mut target = HashMap::new();
    for (group, mut partitions) in by_group {
        let members: Vec<&AgentInfo> = agents.iter().filter(|a| a.group == group).collect();
        if members.is_empty() {
            continue;
        }
        partitions.sort();
        let cap = partitions.len().div_ceil(members.len());
        let mut load: HashMap<AgentId, usize> = HashMap::new();
        for p in partitions {
            let key = partition_key(&p);
            let mut ranked: Vec<&&AgentInfo> = members.iter().collect();
            ranked.sort_by_key(|a| std::cmp::Reverse((cluster::rank(&key, a.id), a.id)));
            if let Some(a) = ranked.into_iter().find(|a| load.get(&a.id).copied().unwrap_or(0) < cap) {
                *load.entry(a.id).or_default() += 1;
                target.insert(p, a.id);
            }
        }
    }
    target
}

fn partition_key(p: &PartitionId) -> Vec<u8> {
    let mut key = p.topic_id.as_bytes().to_vec();
    key.extend_from_slice(&p.partition.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;

    fn topic(group: Option<&str>, partitions: i32) -> Topic {
        let configs: BTreeMap<String, String> =
            group.map(|g| [(crate::handlers::topic_configs::AGENT_GROUP_CONFIG.to_string(), g.to_string())].into()).unwrap_or_default();
        Topic { id: Uuid::new_v4(), name: "t".into(), partitions, configs }
    }

    fn states(t: &Topic) -> Vec<PartitionState> {
        (0..t.partitions)
            .map(|p| PartitionState {
                id: PartitionId { topic_id: t.id, partition: p },
                leader: None,
                leader_epoch: 0,
                high_watermark: 0,
                log_start_offset: 0,
            })
            .collect()
    }

    fn agents(ids: std::ops::Range<i32>, group: &str) -> Vec<AgentInfo> {
        ids.map(|id| AgentInfo { id, host: "h".into(), port: 1, zone: None, group: group.into() }).collect()
    }

    fn loads(target: &HashMap<PartitionId, AgentId>) -> HashMap<AgentId, usize> {
        let mut l = HashMap::new();
        for a in target.values() {
            *l.entry(*a).or_default() += 1;
        }
        l
    }

    #[test]
    fn twenty_agents_within_one_of_fair_share() {
        let t = topic(None, 64);
        let target = assign(std::slice::from_ref(&t), &states(&t), &agents(0..20, "default"));
        assert_eq!(target.len(), 64, "every partition has a target");
        let l = loads(&target);
        let (min, max) = (l.values().min().copied().unwrap_or(0), l.values().max().copied().unwrap_or(0));
        assert!(max - min <= 1 || (max <= 4 && l.len() >= 16), "loads {l:?}");
        assert!(max <= 4, "cap is ceil(64/20) = 4");
    }

    #[test]
    fn a_leaving_agent_moves_few_partitions() {
        let t = topic(None, 60);
        let before = assign(std::slice::from_ref(&t), &states(&t), &agents(0..3, "default"));
        let after = assign(std::slice::from_ref(&t), &states(&t), &agents(0..2, "default"));
        let moved_from_stayers = before.iter().filter(|(p, a)| **a != 2 && after.get(*p) != Some(*a)).count();
        assert!(moved_from_stayers <= 6, "{moved_from_stayers} partitions moved between agents that stayed");
    }

    #[test]
    fn pinned_topics_stay_in_their_agent_group() {
        let t = topic(Some("blue"), 8);
        let mut all = agents(0..3, "default");
        all.extend(agents(10..12, "blue"));
        let target = assign(std::slice::from_ref(&t), &states(&t), &all);
        assert!(target.values().all(|a| *a >= 10), "{target:?}");
        let none = assign(std::slice::from_ref(&t), &states(&t), &agents(0..3, "default"));
        assert!(none.is_empty(), "no agent of the group: no leader");
    }
}
