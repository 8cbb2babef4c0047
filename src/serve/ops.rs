//! Operations: `/readyz` (the store answers; every follower within `--ready-lag` blocks of its
//! node's head) and `/metrics` in the Prometheus/OpenMetrics text format (requests and latency
//! per route, per chain the indexed height, the node's head and the lag, commits and reorgs
//! of the followers, alerts raised and delivered).

use super::{AppState, follow::FollowerStatus, problem::Problem};
use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use std::time::Instant;

/// Labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// Labels of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// Labels of a per-chain metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChainLabels {
    chain: String,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    indexed: Family<ChainLabels, Gauge>,
    head: Family<ChainLabels, Gauge>,
    lag: Family<ChainLabels, Gauge>,
    commits: Family<ChainLabels, Gauge>,
    reorgs: Family<ChainLabels, Gauge>,
    alerts_raised: Gauge,
    alerts_delivered: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("paytrace");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ])
        });
        let indexed = Family::<ChainLabels, Gauge>::default();
        let head = Family::<ChainLabels, Gauge>::default();
        let lag = Family::<ChainLabels, Gauge>::default();
        let commits = Family::<ChainLabels, Gauge>::default();
        let reorgs = Family::<ChainLabels, Gauge>::default();
        let alerts_raised = Gauge::default();
        let alerts_delivered = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "indexed_height",
            "Last indexed block per chain",
            indexed.clone(),
        );
        registry.register(
            "head_height",
            "The node's head per followed chain",
            head.clone(),
        );
        registry.register(
            "lag_blocks",
            "Blocks between the node's head and the last indexed block, per followed chain",
            lag.clone(),
        );
        registry.register(
            "commits",
            "Ranges committed by the followers since the start, per chain",
            commits.clone(),
        );
        registry.register(
            "reorgs",
            "Reorgs the followers unwound since the start, per chain",
            reorgs.clone(),
        );
        registry.register(
            "alerts_raised",
            "Alerts in the store",
            alerts_raised.clone(),
        );
        registry.register(
            "alerts_delivered",
            "Alerts delivered to at least one webhook",
            alerts_delivered.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            indexed,
            head,
            lag,
            commits,
            reorgs,
            alerts_raised,
            alerts_delivered,
        }
    }
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Counts each request and its latency under its route (the matched pattern, not the path:
/// addresses do not become labels).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let m = state.metrics();
    m.requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status: resp.status().as_u16(),
        })
        .inc();
    m.latency
        .get_or_create(&RouteLabels { route })
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// `GET /metrics`: the metrics, with the store's figures read now.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, Problem> {
    let st = state.clone();
    state
        .blocking(move |s| {
            let m = s.metrics();
            let store = s.store();
            for c in store.chains()? {
                if let Some(b) = store.checkpoint(c.id)? {
                    m.indexed
                        .get_or_create(&ChainLabels { chain: c.name })
                        .set(gauge(b.number.0));
                }
            }
            for f in st.followers() {
                let l = ChainLabels {
                    chain: f.chain.clone(),
                };
                m.commits.get_or_create(&l).set(gauge(f.commits()));
                m.reorgs.get_or_create(&l).set(gauge(f.reorgs()));
                if let Some(h) = f.head() {
                    m.head.get_or_create(&l).set(gauge(h));
                }
                if let Some(lag) = f.lag() {
                    m.lag.get_or_create(&l).set(gauge(lag));
                }
            }
            let alerts = paytrace_tracer::alerts::AlertStore::open(store)?.list(None)?;
            m.alerts_raised
                .set(gauge(u64::try_from(alerts.len()).unwrap_or(u64::MAX)));
            m.alerts_delivered.set(gauge(
                u64::try_from(alerts.iter().filter(|a| !a.delivered_to.is_empty()).count())
                    .unwrap_or(u64::MAX),
            ));
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &m.registry)
                .map_err(|e| Problem::internal(&anyhow::anyhow!("encoding the metrics: {e}")))?;
            Ok((
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                )],
                text,
            )
                .into_response())
        })
        .await
}

/// `GET /readyz`: 200 `{"ready": true, ...}` when the store answers and every follower is
/// running within `--ready-lag` blocks of its node's head; 503 with the reasons otherwise.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let st = state.clone();
    let store_ok = state
        .blocking(|s| s.store().chains().map(|_| ()).map_err(Problem::from))
        .await;
    let max_lag = state.ready_lag();
    let mut reasons = Vec::new();
    if let Err(p) = store_ok {
        reasons.push(format!("the store does not answer: {}", p.detail));
    }
    let followers: Vec<serde_json::Value> = st
        .followers()
        .iter()
        .map(|f: &std::sync::Arc<FollowerStatus>| {
            if let Some(e) = f.failure() {
                reasons.push(format!("follower of {} stopped: {e}", f.chain));
            } else {
                match f.lag() {
                    None => reasons.push(format!(
                        "follower of {} has not reached its node's head yet",
                        f.chain
                    )),
                    Some(l) if l > max_lag => reasons.push(format!(
                        "follower of {} is {l} blocks behind its node's head (at most {max_lag})",
                        f.chain
                    )),
                    Some(_) => {}
                }
            }
            serde_json::json!({
                "chain": f.chain,
                "indexed": f.indexed(),
                "head": f.head(),
                "lag": f.lag(),
            })
        })
        .collect();
    let ready = reasons.is_empty();
    let body = serde_json::json!({
        "ready": ready,
        "reasons": reasons,
        "followers": followers,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
