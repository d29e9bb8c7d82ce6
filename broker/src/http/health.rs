//! `/health/live`: the process answers. `/health/ready`: this agent can serve — not shutting down,
//! its registration and leases renewed on time (so the metadata store answered lately), the metadata
//! and object stores answering a probe now. Probes are cached for a second, so a tight probe loop
//! does not become load on the stores.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::Shared;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const PROBE_CACHE: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Cache(Mutex<Option<(Instant, Probes)>>);

#[derive(Clone, Copy, Serialize)]
struct Probes {
    metadata_store: bool,
    object_store: bool,
}

pub async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

pub async fn ready(State(state): State<Shared>) -> (StatusCode, Json<Value>) {
    let ctx = &state.ctx;
    // From the moment SIGTERM arrives: load balancers stop sending before the agent drains.
    let shutting_down = ctx.shutdown.is_cancelled();
    let registration = ctx.cluster.lease_valid();
    let probes = probe(&state).await;
    let ready = !shutting_down && registration && probes.metadata_store && probes.object_store;
    let checks = json!({
        "kafka_listener": !shutting_down,
        "metadata_store": probes.metadata_store,
        "object_store": probes.object_store,
        "registration": registration,
        "shutting_down": shutting_down,
    });
    let (status, word) = if ready { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "not_ready") };
    (status, Json(json!({"status": word, "checks": checks})))
}

async fn probe(state: &Shared) -> Probes {
    let cached = *state.readiness.0.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, probes)) = cached
        && at.elapsed() < PROBE_CACHE
    {
        return probes;
    }
    let ctx = &state.ctx;
    let metadata = tokio::time::timeout(PROBE_TIMEOUT, ctx.metadata.cluster_id());
    // A listing under a prefix nothing uses: one cheap request on S3, one directory read locally.
    let objects = tokio::time::timeout(PROBE_TIMEOUT, ctx.objects.list("streamhouse-readiness-probe/"));
    let (metadata, objects) = tokio::join!(metadata, objects);
    let probes = Probes { metadata_store: matches!(metadata, Ok(Ok(_))), object_store: matches!(objects, Ok(Ok(_))) };
    *state.readiness.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), probes));
    probes
}
