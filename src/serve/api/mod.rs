//! The versioned JSON API, nested under `/v1`. Handlers parse the request, call the
//! application layer (`paytrace-app`) and render; they hold no business logic.

use super::{
    AppState, Limits,
    auth::Caller,
    problem::{ApiResult, Problem},
};
use axum::{
    Json, Router,
    extract::{RawQuery, State},
    routing::{get, post, put},
};

pub mod extract;
pub mod handlers;
pub mod spec;
use paytrace_app::keys::{AuditEntry, Role};
use serde::Serialize;

/// The caller's key and role (`GET /v1/me`): how the web UI checks a key it was given.
#[derive(Debug, Serialize)]
pub struct Me {
    /// The key's id.
    pub key_id: String,
    /// The key's role: `analyst`, `compliance` or `admin`.
    pub role: Role,
}

async fn me(caller: Caller) -> Json<Me> {
    Json(Me {
        key_id: caller.key_id,
        role: caller.role,
    })
}

/// `GET /v1/stats`: what `paytrace stats --json` prints.
async fn stats(
    _caller: Caller,
    State(state): State<AppState>,
) -> ApiResult<Json<paytrace_app::query::StatsOut>> {
    state
        .blocking(|s| Ok(paytrace_app::query::stats(s.store()).map_err(anyhow::Error::from)?))
        .await
        .map(Json)
}

/// `GET /v1/limits`: the budgets this server applies to each request.
async fn limits(_caller: Caller, State(state): State<AppState>) -> Json<Limits> {
    Json(state.limits().clone())
}

/// One query parameter as a number, 400 naming it when it is not one.
pub fn query_number<T: std::str::FromStr>(query: Option<&str>, name: &str) -> ApiResult<Option<T>> {
    for pair in query.unwrap_or("").split('&') {
        if let Some((k, v)) = pair.split_once('=')
            && k == name
        {
            return v.parse().map(Some).map_err(|_| {
                Problem::bad_field(name, format!("{name}: {v:?} is not a valid number"))
            });
        }
    }
    Ok(None)
}

/// `GET /v1/audit?limit=N` (admin): the newest audit entries, oldest first.
async fn audit(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    caller.require(Role::Admin)?;
    let limit = query_number::<usize>(q.as_deref(), "limit")?.unwrap_or(100);
    state
        .blocking(move |s| Ok(s.keys().audit_log(limit).map_err(anyhow::Error::from)?))
        .await
        .map(Json)
}

/// The `/v1` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(spec::openapi))
        .route("/me", get(me))
        .route("/stats", get(stats))
        .route("/limits", get(limits))
        .route("/audit", get(audit))
        .route("/address/{address}", get(handlers::address))
        .route("/address/{address}/transfers", get(handlers::transfers))
        .route("/trace", get(handlers::trace))
        .route("/path", get(handlers::path))
        .route("/screen", post(handlers::screen_bulk))
        .route("/screen/{address}", get(handlers::screen_one))
        .route("/cluster/{address}", get(handlers::cluster_show))
        .route("/cluster-explain", get(handlers::cluster_explain))
        .route("/labels", get(handlers::labels_list))
        .route("/labels/import", post(handlers::labels_import))
        .route("/labels/{address}", get(handlers::labels_show))
        .route("/alerts", get(handlers::alerts_list))
        .route("/alerts/{id}/ack", post(handlers::alert_ack))
        .route("/alerts/{id}/close", post(handlers::alert_close))
        .route("/reports/payouts", post(handlers::report_payouts))
        .route("/watchlist", get(handlers::watch_list))
        .route(
            "/watchlist/{address}",
            put(handlers::watch_add).delete(handlers::watch_remove),
        )
}
