//! The accept loop. It takes an already-bound listener and a shutdown token, so `main` passes the
//! configured address and tests pass a listener bound to port 0.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tracing::{error, warn};

use crate::connection;
use crate::context::AgentContext;

/// Accepts until shutdown; connections are tracked so the agent can wait for them to finish.
pub async fn run(ctx: AgentContext, listener: TcpListener, connections: TaskTracker) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = ctx.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((socket, _)) => {
                backoff = Duration::from_millis(10);
                connections.spawn(connection::run(ctx.clone(), socket));
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
