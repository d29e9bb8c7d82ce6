//! The sweeper: deletes segment objects that no index row references once they are older than a
//! grace period. Such objects come from flushes whose commit was fenced or failed, and from deleted
//! topics. Age is the metadata store's clock minus the creation time in the key, which the flusher
//! also took from the store's clock, so no agent's own clock matters; and the flusher refuses to
//! commit an object half the grace period old (`flusher::too_old_to_commit`), so an object whose
//! commit is still on its way is never deleted. Several agents sweeping at once is harmless:
//! deletes are idempotent.

use std::collections::HashSet;
use std::time::Duration;

use streamhouse_storage::paths;
use tracing::{info, warn};

use crate::context::AgentContext;
use crate::error::Result;

pub async fn run(ctx: AgentContext) {
    if ctx.config.sweep_interval_secs == 0 {
        return;
    }
    let every = Duration::from_secs(ctx.config.sweep_interval_secs);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = ctx.shutdown.cancelled() => return,
        }
        match sweep(&ctx).await {
            Ok(0) => {}
            Ok(n) => info!(objects = n, "swept unreferenced objects"),
            Err(e) => warn!(error = %e, "sweep failed; will retry"),
        }
    }
}

/// One pass; returns how many objects were deleted.
pub async fn sweep(ctx: &AgentContext) -> Result<usize> {
    let now_ms = u64::try_from(ctx.metadata.now_ms()).unwrap_or(0);
    let grace_ms = ctx.config.sweep_grace_secs.saturating_mul(1000);
    // List before reading the index: an object committed in between is then referenced.
    let objects = ctx.objects.list(paths::SEGMENTS_PREFIX).await?;
    let referenced: HashSet<String> = ctx.metadata.referenced_objects().await?.into_iter().collect();
    let mut deleted = 0;
    for o in objects {
        let old_enough = paths::segment_created_ms(&o.key).is_some_and(|t| now_ms.saturating_sub(t) >= grace_ms);
        if old_enough && !referenced.contains(&o.key) {
            ctx.objects.delete(&o.key).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
