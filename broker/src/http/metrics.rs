//! GET /metrics: the agent's Prometheus metrics (`crate::metrics`), and the middleware counting this
//! API's own requests by route and status (`streamhouse_http_requests_total`).

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;

pub async fn scrape(State(state): State<Shared>) -> Response {
    let body = crate::metrics::render(&state.ctx).await;
    // The classic text format (0.0.4), which every Prometheus scrapes and promtool checks.
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response()
}

/// Counts each request under its route's pattern (`/api/v1/topics/{name}`, never the path asked
/// for, which would make the label set unbounded) and its status; "unmatched" for no route.
pub async fn count(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let response = next.run(request).await;
    state.ctx.metrics.http_request(route.as_deref().unwrap_or("unmatched"), response.status().as_u16());
    response
}
