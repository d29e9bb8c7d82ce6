//! This agent's place in the cluster: its registration (which doubles as its heartbeat), the
//! cached list of live agents that Metadata, FindCoordinator and lease balancing read, and the
//! local lease deadline.
//!
//! Every lease this agent holds is renewed by one statement per renewal round, so one deadline
//! covers them all: `lease_valid` turns false a safety margin before the leases could expire in the
//! store, and from then on this agent refuses writes, so a paused or partitioned agent stops before
//! another can take over (the fenced commit would refuse it anyway; this keeps producers from
//! waiting on a doomed flush).

use std::sync::RwLock;
use std::time::{Duration, Instant};

use streamhouse_metadata::{AgentId, AgentInfo};

pub struct Cluster {
    pub me: AgentInfo,
    live: RwLock<Vec<AgentInfo>>,
    valid_until: RwLock<Option<Instant>>,
}

impl Cluster {
    pub fn new(me: AgentInfo) -> Self {
        Cluster { live: RwLock::new(vec![me.clone()]), me, valid_until: RwLock::new(None) }
    }

    /// Live agents as of the last refresh (always including this one).
    pub fn live(&self) -> Vec<AgentInfo> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn agent(&self, id: AgentId) -> Option<AgentInfo> {
        self.live().into_iter().find(|a| a.id == id)
    }

    pub fn set_live(&self, mut agents: Vec<AgentInfo>) {
        if !agents.iter().any(|a| a.id == self.me.id) {
            agents.push(self.me.clone());
            agents.sort_by_key(|a| a.id);
        }
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = agents;
    }

    /// Records a successful renewal that was sent at `sent`: leases hold until `sent + ttl` in the
    /// store, so we stop writing a third of the ttl earlier.
    pub fn renewed(&self, sent: Instant, ttl: Duration) {
        let until = sent + ttl - ttl / 3;
        *self.valid_until.write().unwrap_or_else(|p| p.into_inner()) = Some(until);
    }

    pub fn lease_valid(&self) -> bool {
        self.valid_until.read().unwrap_or_else(|p| p.into_inner()).is_some_and(|t| Instant::now() < t)
    }
}

/// Rendezvous (highest-random-weight) hashing: a stable preference order of agents for a key, so
/// that when an agent joins or leaves only the keys it wins or held move.
pub fn rank(key: &[u8], agent: AgentId) -> u64 {
    // FNV-1a over the key and the agent id, then a final mix: stable across processes and builds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.iter().chain(agent.to_be_bytes().iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The agent a key prefers among `agents`.
pub fn preferred(key: &[u8], agents: &[AgentInfo]) -> Option<AgentId> {
    agents.iter().max_by_key(|a| (rank(key, a.id), a.id)).map(|a| a.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents(n: i32) -> Vec<AgentInfo> {
        (0..n).map(|id| AgentInfo { id, host: "h".into(), port: 1, zone: None, group: "default".into() }).collect()
    }

    #[test]
    fn a_leaving_agent_moves_only_its_keys() {
        let keys: Vec<Vec<u8>> = (0..200u32).map(|k| k.to_be_bytes().to_vec()).collect();
        let before: Vec<_> = keys.iter().map(|k| preferred(k, &agents(4))).collect();
        let after: Vec<_> = keys.iter().map(|k| preferred(k, &agents(3))).collect();
        for (b, a) in before.iter().zip(&after) {
            if *b != Some(3) {
                assert_eq!(b, a, "keys of agents that stayed do not move");
            }
        }
        assert!(before.iter().filter(|b| **b == Some(3)).count() > 20, "agent 3 won a fair share");
    }

    #[test]
    fn lease_validity_ends_before_the_ttl() {
        let c = Cluster::new(agents(1).remove(0));
        assert!(!c.lease_valid());
        c.renewed(Instant::now(), Duration::from_secs(3));
        assert!(c.lease_valid());
        c.renewed(Instant::now() - Duration::from_secs(2), Duration::from_secs(3));
        assert!(!c.lease_valid(), "2 s after a 3 s renewal is inside the safety margin");
    }
}
