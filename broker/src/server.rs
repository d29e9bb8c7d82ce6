//! The accept loop. It takes an already-bound listener and a shutdown token, so `main` passes the
//! configured address and tests pass a listener bound to port 0. A connection past
//! --max-connections, or past --max-connections-per-ip from one address, is closed at once, as Kafka
//! does: no client can take every socket or file descriptor the agent has.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, warn};

use crate::connection;
use crate::context::AgentContext;

/// Accepts until shutdown; connections are tracked so the agent can wait for them to finish.
pub async fn run(ctx: AgentContext, listener: TcpListener, connections: TaskTracker) {
    let mut backoff = Duration::from_millis(10);
    let open = Arc::new(OpenConnections::default());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = ctx.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((socket, peer)) => {
                backoff = Duration::from_millis(10);
                match OpenConnections::admit(&open, peer.ip(), ctx.config.max_connections, ctx.config.max_connections_per_ip) {
                    Some(slot) => {
                        let open = ctx.metrics.connections.accepted();
                        let ctx = ctx.clone();
                        connections.spawn(async move {
                            connection::run(ctx, socket, slot).await;
                            drop(open);
                        });
                    }
                    None => {
                        ctx.metrics.connections.refused();
                        debug!(%peer, "connection limit reached: closing the new connection");
                    }
                }
            }
            Err(e) => {
                // Usually EMFILE: wait for connections to close rather than spin.
                warn!(error = %e, "accept failed; backing off {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                if backoff == Duration::from_secs(1) {
                    error!("accept keeps failing: check the open-file limit (ulimit -n)");
                }
            }
        }
    }
}

/// Connections open, in all and per client address.
#[derive(Default)]
pub struct OpenConnections {
    total: AtomicUsize,
    by_ip: DashMap<IpAddr, usize>,
}

impl OpenConnections {
    /// A slot for one more connection from `ip`, if the limits allow it; the slot frees itself when
    /// dropped (when the connection ends).
    fn admit(open: &Arc<Self>, ip: IpAddr, max_total: usize, max_per_ip: usize) -> Option<ConnectionSlot> {
        if open.total.fetch_add(1, Ordering::SeqCst) >= max_total {
            open.total.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let mut per_ip = open.by_ip.entry(ip).or_insert(0);
        if *per_ip >= max_per_ip {
            drop(per_ip);
            open.total.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        *per_ip += 1;
        Some(ConnectionSlot { open: Arc::clone(open), ip })
    }
}

/// One admitted connection; frees its place in the counts when dropped.
pub struct ConnectionSlot {
    open: Arc<OpenConnections>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.open.total.fetch_sub(1, Ordering::SeqCst);
        self.open.by_ip.remove_if_mut(&self.ip, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_total_and_per_ip() {
        let open = Arc::new(OpenConnections::default());
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let first = OpenConnections::admit(&open, a, 3, 2);
        let second = OpenConnections::admit(&open, a, 3, 2);
        assert!(first.is_some() && second.is_some());
        assert!(OpenConnections::admit(&open, a, 3, 2).is_none(), "a third from one address");
        let other = OpenConnections::admit(&open, b, 3, 2);
        assert!(other.is_some());
        assert!(OpenConnections::admit(&open, b, 3, 2).is_none(), "a fourth in all");
        drop(first);
        assert!(OpenConnections::admit(&open, a, 3, 2).is_some(), "a closed connection frees its place");
        drop((second, other));
        assert!(open.by_ip.is_empty());
    }
}
