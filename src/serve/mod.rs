//! `paytrace serve`: the HTTP API (`/v1`, [`api`]) and the web UI ([`ui`]) over one store
//! opened once for the whole process, with API keys and roles ([`auth`]), errors as RFC 9457
//! problem documents ([`problem`]), per-key rate limits, body size limits, request ids in the
//! logs and a graceful shutdown on SIGTERM or Ctrl-C (requests in flight finish).

pub mod api;
pub mod auth;
pub mod follow;
pub mod ops;
pub mod problem;
pub mod ui;

use crate::cmd::Context;
use anyhow::Context as _;
use axum::{
    Router,
    extract::{FromRequestParts as _, Request, State},
    http::{HeaderName, Method, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use clap::Args;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};
use paytrace_app::keys::{AuditEntry, KeyStore};
use paytrace_config::Config;
use paytrace_indexer::{OpenMode, Store};
use problem::Problem;
use std::{net::SocketAddr, num::NonZeroU32, process::ExitCode, sync::Arc, time::Duration};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

/// `paytrace serve`: answer queries over HTTP.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on. The default binds to this machine only.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Keep indexing this configured chain inside the server (repeatable).
    #[arg(long = "follow", value_name = "CHAIN")]
    pub follow: Vec<String>,
    /// Open the store for reading only: every mutation (alerts, watchlist, labels, keys) is
    /// refused with 409, nothing is written.
    #[arg(long, conflicts_with = "follow")]
    pub read_only: bool,
    /// Largest request body accepted (bytes); larger ones get 413.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most hops a trace or path request may ask for (more: 422).
    #[arg(long, default_value_t = 8)]
    pub max_hops: u32,
    /// Most addresses a trace may reach before it stops (marked `truncated`).
    #[arg(long, default_value_t = 25_000)]
    pub max_nodes: usize,
    /// Wall time budget of one analysis request, in milliseconds (over it: 422).
    #[arg(long, default_value_t = 10_000)]
    pub max_wall_ms: u64,
    /// Most addresses one bulk screening request may carry (more: 422).
    #[arg(long, default_value_t = 1_000)]
    pub max_bulk: usize,
    /// Requests per second allowed per API key (a burst of as many); over it: 429.
    #[arg(long, default_value_t = 200)]
    pub rate_per_second: u32,
    /// Allow cross-origin requests from this origin (repeatable). Without it CORS is off.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origin: Vec<String>,
    /// `/readyz` answers 503 while a follower is more than this many blocks behind its
    /// node's head.
    #[arg(long, default_value_t = 32)]
    pub ready_lag: u64,
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            follow: Vec::new(),
            read_only: false,
            max_body_bytes: 16 * 1024 * 1024,
            max_hops: 8,
            max_nodes: 25_000,
            max_wall_ms: 10_000,
            max_bulk: 1_000,
            rate_per_second: 200,
            cors_origin: Vec::new(),
            ready_lag: 32,
        }
    }
}

/// The per-request budgets and limits handlers apply (`GET /v1/limits`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Limits {
    /// Most hops of a trace or path.
    pub max_hops: u32,
    /// Most addresses a trace reaches.
    pub max_nodes: usize,
    /// Wall time of one analysis request.
    #[serde(rename = "max_wall_ms", serialize_with = "millis")]
    pub max_wall: Duration,
    /// Most addresses of one bulk screening.
    pub max_bulk: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
}

impl Limits {
    /// `hops` within the server's hop budget, or the 422 naming `hops`.
    pub fn check_hops(&self, hops: u32) -> Result<u32, problem::Problem> {
        if hops > self.max_hops {
            return Err(problem::Problem::over_budget(
                "hops",
                format!(
                    "hops {hops} is over this server's budget of {} hops",
                    self.max_hops
                ),
            ));
        }
        Ok(hops)
    }

    /// `nodes` within the server's address budget, or the 422 naming `nodes`.
    pub fn check_nodes(&self, nodes: usize) -> Result<usize, problem::Problem> {
        if nodes > self.max_nodes {
            return Err(problem::Problem::over_budget(
                "nodes",
                format!(
                    "max_nodes {nodes} is over this server's budget of {} addresses",
                    self.max_nodes
                ),
            ));
        }
        Ok(nodes)
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

struct Inner {
    store: Store,
    config: Config,
    keys: KeyStore,
    limits: Limits,
    rate: DefaultKeyedRateLimiter<String>,
    metrics: ops::Metrics,
    followers: Vec<Arc<follow::FollowerStatus>>,
    ready_lag: u64,
}

/// What every handler gets: the one store of the process, the config, the key store and the
/// limits. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// A state over an open `store`.
    pub fn new(
        store: Store,
        config: Config,
        args: &ServeArgs,
        followers: Vec<Arc<follow::FollowerStatus>>,
    ) -> anyhow::Result<Self> {
        let keys = KeyStore::open(&store).context("opening the API key keyspaces")?;
        let per_second = NonZeroU32::new(args.rate_per_second)
            .context("--rate-per-second must be at least 1")?;
        Ok(Self(Arc::new(Inner {
            store,
            config,
            keys,
            limits: Limits {
                max_hops: args.max_hops,
                max_nodes: args.max_nodes,
                max_wall: Duration::from_millis(args.max_wall_ms),
                max_bulk: args.max_bulk,
                max_body_bytes: args.max_body_bytes,
            },
            rate: RateLimiter::keyed(Quota::per_second(per_second)),
            metrics: ops::Metrics::default(),
            followers,
            ready_lag: args.ready_lag,
        })))
    }

    /// The store (opened once for the process).
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &ops::Metrics {
        &self.0.metrics
    }

    /// The followers running in this process.
    pub fn followers(&self) -> &[Arc<follow::FollowerStatus>] {
        &self.0.followers
    }

    /// The most blocks a follower may lag behind its node's head and be ready.
    pub fn ready_lag(&self) -> u64 {
        self.0.ready_lag
    }

    /// The loaded configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The API keys and the audit log.
    pub fn keys(&self) -> &KeyStore {
        &self.0.keys
    }

    /// The request budgets.
    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// 429 when key `id` is over its rate.
    pub fn check_rate(&self, id: &str) -> Result<(), Problem> {
        self.0.rate.check_key(&id.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            Problem::too_many(wait.as_secs().max(1))
        })
    }

    /// Runs `f` (store reads, analysis) on the blocking pool, within the wall-time budget.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> Result<T, Problem> + Send + 'static,
    {
        let me = self.clone();
        let wall = self.0.limits.max_wall;
        let task = tokio::task::spawn_blocking(move || f(&me));
        match tokio::time::timeout(wall, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(Problem::internal(&anyhow::anyhow!(
                "the request's task failed: {e}"
            ))),
            Err(_) => Err(Problem::over_budget(
                "wall_ms",
                format!(
                    "the request ran longer than its wall-time budget of {} ms",
                    wall.as_millis()
                ),
            )),
        }
    }
}

/// The whole application: `/healthz`, the API under `/v1`, the web UI, and the layers every
/// request passes (request id, trace log, body limit, problem documents for every error).
pub fn router(state: AppState, cors: &[String]) -> anyhow::Result<Router> {
    let max_body = state.limits().max_body_bytes;
    let request_id = HeaderName::from_static("x-request-id");
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .nest("/v1", api::router())
        .merge(ui::router())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), audit))
        .layer(middleware::from_fn_with_state(state.clone(), ops::track))
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(middleware::map_response(problem_for_errors))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    if cors.is_empty() {
        return Ok(app);
    }
    let origins = cors
        .iter()
        .map(|o| {
            o.parse()
                .with_context(|| format!("--cors-origin {o:?} is not a valid origin"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(app.layer(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .allow_credentials(false),
    ))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found(req: Request) -> Problem {
    Problem::not_found(format!(
        "no such route: {} {}",
        req.method(),
        req.uri().path()
    ))
}

/// Every error answer is a problem document: the rejections of axum's extractors and of the
/// body limit come as plain text and are wrapped here with their message.
async fn problem_for_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    // Problem documents, the JSON answers of `/readyz`, and the web UI's HTML error pages stay
    // as they are.
    let keep = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes() == problem::PROBLEM_JSON.as_bytes()
            || v.as_bytes() == b"application/json"
            || v.as_bytes().starts_with(b"text/html")
    });
    if keep {
        return resp;
    }
    let retry = resp.headers().get(header::RETRY_AFTER).cloned();
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let mut out = Problem::new(status, detail).into_response();
    if let Some(r) = retry {
        out.headers_mut().insert(header::RETRY_AFTER, r);
    }
    out
}

/// Requests that are POSTed because they carry a body, but change nothing.
const READ_POSTS: [&str; 2] = ["/v1/screen", "/v1/reports/payouts"];

/// Every mutation (a method other than GET/HEAD/OPTIONS under `/v1`) needs a key and is
/// written to the audit log with the answer's status.
async fn audit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let m = req.method().clone();
    if matches!(m, Method::GET | Method::HEAD | Method::OPTIONS)
        || !req.uri().path().starts_with("/v1/")
        || READ_POSTS.contains(&req.uri().path())
    {
        return next.run(req).await;
    }
    if state.store().is_read_only() {
        return Problem::new(
            axum::http::StatusCode::CONFLICT,
            "the server opened the store for reading only (--read-only): nothing can be changed",
        )
        .into_response();
    }
    let action = format!("{m} {}", req.uri().path());
    let (mut parts, body) = req.into_parts();
    let caller = match auth::Caller::from_request_parts(&mut parts, &state).await {
        Ok(c) => c,
        Err(p) => return p.into_response(),
    };
    let resp = next.run(Request::from_parts(parts, body)).await;
    let entry = AuditEntry {
        time: jiff::Timestamp::now().to_string(),
        key_id: caller.key_id,
        role: caller.role,
        target: resp
            .headers()
            .get("x-audit-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        action,
        status: resp.status().as_u16(),
    };
    let keys = state.keys().clone();
    let written = tokio::task::spawn_blocking(move || keys.audit(&entry)).await;
    match written {
        Ok(Ok(())) => resp,
        // A mutation whose audit record cannot be written is reported, not hidden.
        Ok(Err(e)) => {
            Problem::internal(&anyhow::anyhow!("writing the audit log: {e}")).into_response()
        }
        Err(e) => Problem::internal(&anyhow::anyhow!("writing the audit log: {e}")).into_response(),
    }
}

impl ServeArgs {
    /// Opens the store once, builds the application and serves it until SIGTERM or Ctrl-C.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let mode = if self.read_only {
            OpenMode::Read
        } else {
            OpenMode::Write
        };
        let store = Store::open_with(
            &ctx.data_dir,
            mode,
            Some(paytrace_indexer::QUERY_CACHE_BYTES),
        )
        .with_context(|| format!("opening the store in {}", ctx.data_dir.display()))?;
        self.serve_store(ctx, store, |_| {})?;
        Ok(ExitCode::SUCCESS)
    }

    /// Serves an open `store` (with the followers of `--follow`) until SIGTERM or Ctrl-C;
    /// `ready` gets the bound address once the server listens (`paytrace demo --serve` prints
    /// the UI's URL from it).
    pub fn serve_store(
        &self,
        ctx: &Context,
        store: Store,
        ready: impl FnOnce(SocketAddr),
    ) -> anyhow::Result<()> {
        let store2 = store.clone();
        crate::cmd::index::runtime()?.block_on(async {
            let stop = paytrace_indexer::sync::StopSignal::new();
            let followers = if self.follow.is_empty() {
                follow::Followers::none()
            } else {
                follow::start(ctx, &store, &self.follow, &stop)?
            };
            let state = AppState::new(store, ctx.config.clone(), self, followers.status.clone())?;
            let app = router(state, &self.cors_origin)?;
            let listener = tokio::net::TcpListener::bind(self.listen)
                .await
                .with_context(|| format!("binding {}", self.listen))?;
            let local = listener.local_addr().context("reading the bound address")?;
            tracing::info!(listen = %local, follow = ?self.follow, "serving");
            // Scripts and tests read the bound port from this line (`--listen 127.0.0.1:0`).
            eprintln!("listening on http://{local}");
            ready(local);
            let stop2 = stop.clone();
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    shutdown_signal().await;
                    // The followers finish their current commit and stop too.
                    stop2.stop();
                })
                .await
                .context("serving HTTP");
            stop.stop();
            followers.join().await;
            tracing::info!("stopped");
            served
        })?;
        // Every handle but this one is gone: a store the next read open does not write to.
        store2.persist_for_reopen()?;
        Ok(())
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stop requested; finishing the requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn binds_to_this_machine_by_default() {
        let cli = Cli::try_parse_from(["serve"]).unwrap();
        assert_eq!(cli.serve.listen.to_string(), "127.0.0.1:8080");
        assert!(cli.serve.cors_origin.is_empty());
        assert_eq!(
            cli.serve.listen,
            ServeArgs::default().listen,
            "the Default impl agrees with the flags"
        );
    }
}
