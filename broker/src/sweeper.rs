//! The sweeper: deletes segment objects that no index row references once they are older than a
//! grace period. Such objects come from flushes whose commit was fenced or failed, and from deleted
//! topics. The grace period (judged from the creation time in the key, not the store's clock) is
//! far longer than any flush takes, so an object whose commit is still on its way is never touched.
//! Several agents sweeping at once is harmless: deletes are idempotent.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
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
