//! Consumer-group lag, measured at scrape time for the groups this agent coordinates (their
//! coordinator is the one agent that reports them, so a sum over agents counts each group once).
//!
//! Lag in records is the high watermark minus the committed offset. Lag in seconds is cheap, not
//! exact: the age, by the store's clock, of the newest record in the flushed run that holds the
//! committed offset (from the segment index, one indexed read per lagging partition). It is a lower
//! bound on the age of the first unconsumed record, short by at most that run's time span (about
//! one --flush-interval-ms of a steady producer); 0 when the group has caught up. Record timestamps
//! are the producers' (CreateTime), so a producer's skewed clock skews it too.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use streamhouse_metadata::{PartitionId, PartitionState};

use crate::context::AgentContext;
use crate::error::Result;

/// Segment-index reads of one scrape in flight at once.
const PARALLEL_READS: usize = 8;

pub(super) struct GroupLag {
    pub group: String,
    pub partitions: Vec<PartitionLag>,
}

pub(super) struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub records: i64,
    pub seconds: f64,
}

pub(super) async fn measure(ctx: &AgentContext) -> Result<Vec<GroupLag>> {
    let mut groups = Vec::new();
    // Read once, and only if some committed partition is led elsewhere.
    let mut stored: Option<HashMap<PartitionId, PartitionState>> = None;
    for handle in ctx.groups.loaded() {
        let group = handle.with(|g| g.id.clone());
        let mut lagging = Vec::new();
        for committed in ctx.metadata.fetch_offsets(&group).await? {
            // A topic deleted since the commit has no lag to speak of; nor has a partition with no
            // offset committed yet (-1), which consumes from its reset policy.
            if committed.offset < 0 {
                continue;
            }
            let Some(topic) = ctx.partitions.topic(&committed.topic) else { continue };
            let id = PartitionId { topic_id: topic.id, partition: committed.partition };
            let high_watermark = match ctx.partitions.led(&id) {
                Some(p) => p.snapshot().high_watermark,
                None => {
                    if stored.is_none() {
                        stored = Some(ctx.metadata.all_partition_states().await?.into_iter().map(|s| (s.id, s)).collect());
                    }
                    match stored.as_ref().and_then(|s| s.get(&id)) {
                        Some(s) => s.high_watermark,
                        None => continue,
                    }
                }
            };
            let records = (high_watermark - committed.offset).max(0);
            lagging.push((id, committed.topic, committed.partition, committed.offset, records));
        }
        let now_ms = ctx.metadata.now_ms();
        let partitions = futures::stream::iter(lagging)
            .map(|(id, topic, partition, offset, records)| async move {
                let seconds = if records == 0 { 0.0 } else { seconds_behind(ctx, id, offset, now_ms).await? };
                Ok::<_, crate::error::BrokerError>(PartitionLag { topic, partition, records, seconds })
            })
            .buffered(PARALLEL_READS)
            .try_collect()
            .await?;
        groups.push(GroupLag { group, partitions });
    }
    Ok(groups)
}

/// See the module doc: the age of the newest record in the run holding `offset`.
async fn seconds_behind(ctx: &AgentContext, id: PartitionId, offset: i64, now_ms: i64) -> Result<f64> {
    let run = ctx.metadata.segments(id, offset, 1).await?;
    Ok(run.first().map_or(0.0, |r| age_seconds(now_ms, r.max_timestamp)))
}

/// Milliseconds between a record's timestamp and now, in seconds; never negative (a producer's clock
/// may run ahead of the store's).
fn age_seconds(now_ms: i64, timestamp_ms: i64) -> f64 {
    (now_ms.saturating_sub(timestamp_ms)).max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_is_never_negative() {
        assert_eq!(age_seconds(10_000, 7_500), 2.5);
        assert_eq!(age_seconds(10_000, 12_000), 0.0, "a record stamped in the future is not behind");
    }
}
