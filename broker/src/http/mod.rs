//! The operator surface: a JSON API, health checks and (on the console listener) the web console.
//!
//! | method | path | module |
//! |---|---|---|
//! | GET | /health/live, /health/ready | `health` |
//! | GET | /metrics (Prometheus text format) | `metrics` |
//! | GET | /api/v1/cluster, /api/v1/agents, /api/v1/leases | `cluster` |
//! | GET, POST | /api/v1/topics | `topics` |
//! | GET, DELETE | /api/v1/topics/{name} | `topics` |
//! | POST | /api/v1/topics/{name}/partitions | `topics` |
//! | GET | /api/v1/topics/{name}/partitions/{partition}/messages | `messages` |
//! | POST | /api/v1/produce | `produce` |
//! | GET | /api/v1/groups, /api/v1/groups/{id} | `groups` |
//! | DELETE | /api/v1/groups/{id} | `groups` |
//! | POST | /api/v1/groups/{id}/reset-offsets | `groups` |
//!
//! Reads come from the metadata store, which every agent shares. Writes and anything only an
//! owner knows (a group's members, a partition's records) are Kafka requests sent to the owning
//! agent (`kafka`), so the API works the same on every agent and answers in Kafka's error names
//! (`error`). `--http-read-only` refuses every method but GET in one place (`refuse_writes`).

mod cluster;
mod console;
mod error;
mod extract;
mod groups;
mod health;
mod kafka;
mod lookup;
mod messages;
mod metrics;
mod produce;
mod topics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use error::{ApiError, ApiResult};

use crate::context::AgentContext;

/// What every HTTP handler holds.
pub struct HttpState {
    pub ctx: AgentContext,
    pub started: Instant,
    /// Round-robin position for produced messages with neither key nor partition.
    pub next_partition: AtomicU32,
    pub readiness: health::Cache,
}

pub type Shared = Arc<HttpState>;

/// The API router: the same on the API and the console listeners.
pub fn api_router(state: Shared) -> Router {
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics::scrape))
        .route("/api/v1/cluster", get(cluster::summary))
        .route("/api/v1/agents", get(cluster::agents))
        .route("/api/v1/leases", get(cluster::leases))
        .route("/api/v1/topics", get(topics::list).post(topics::create))
        .route("/api/v1/topics/{name}", get(topics::describe).delete(topics::delete))
        .route("/api/v1/topics/{name}/partitions", post(topics::add_partitions))
        .route("/api/v1/topics/{name}/partitions/{partition}/messages", get(messages::read))
        .route("/api/v1/produce", post(produce::produce))
        .route("/api/v1/groups", get(groups::list))
        .route("/api/v1/groups/{id}", get(groups::describe).delete(groups::delete))
        .route("/api/v1/groups/{id}/reset-offsets", post(groups::reset_offsets))
        .fallback(no_such_endpoint)
        .layer(middleware::from_fn_with_state(state.clone(), refuse_writes))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::count))
        .with_state(state)
}

async fn refuse_writes(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let read = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if state.ctx.config.http_read_only && !read {
        return ApiError::read_only().into_response();
    }
    next.run(request).await
}

async fn no_such_endpoint(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        code: "NOT_FOUND".to_string(),
        message: format!("no such endpoint: {method} {} (the API lives under /api/v1)", uri.path()),
    }
}

/// The HTTP listeners of one agent, bound before the agent starts so a taken port fails the start.
pub struct Listeners {
    api: Option<TcpListener>,
    console: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(api: Option<SocketAddr>, console: Option<SocketAddr>) -> std::io::Result<Listeners> {
        let bind = async |addr: Option<SocketAddr>, what: &str, flag: &str| -> std::io::Result<Option<TcpListener>> {
            let Some(addr) = addr else { return Ok(None) };
            TcpListener::bind(addr).await.map(Some).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {addr} for the {what}: {e} (pick another {flag}, or 'off')"))
            })
        };
        Ok(Listeners {
            api: bind(api, "HTTP API", "--http-listen").await?,
            console: bind(console, "web console", "--console-listen").await?,
        })
    }

    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `stop`; the agent stops them last, so health and metrics answer while it drains.
    pub fn serve(self, ctx: &AgentContext, tasks: &TaskTracker, stop: CancellationToken) {
        let state = Arc::new(HttpState {
            ctx: ctx.clone(),
            started: Instant::now(),
            next_partition: AtomicU32::new(0),
            readiness: health::Cache::default(),
        });
        if let Some(listener) = self.api {
            info!("HTTP API listening on http://{}", display_addr(&listener));
            tasks.spawn(serve_on(listener, api_router(state.clone()), stop.clone()));
        }
        if let Some(listener) = self.console {
            info!("console listening on http://{}", display_addr(&listener));
            tasks.spawn(serve_on(listener, console::router().merge(api_router(state)), stop));
        }
    }
}

fn display_addr(listener: &TcpListener) -> String {
    listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".to_string())
}

async fn serve_on(listener: TcpListener, router: Router, stop: CancellationToken) {
    if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await {
        warn!(error = %e, "HTTP server stopped");
    }
}

fn topic_name(name: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(kafka_protocol::protocol::StrBytes::from_string(name.to_string()))
}
