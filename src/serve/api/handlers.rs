//! The `/v1` handlers: each parses its request, calls the application layer and renders the
//! answer with the keys of the matching CLI command's `--json` output.

use super::extract::{JsonBody, Params};
use crate::cmd::time_arg::{parse_day, parse_since, parse_until};
use crate::serve::{
    AppState,
    auth::Caller,
    problem::{ApiResult, Problem},
};
use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use paytrace_app::alerts::{AlertState, AlertStore};
use paytrace_app::{
    address::parse_address,
    chain_view::ChainView,
    keys::Role,
    trace::{LabelRules, PathRequest, TraceRequest},
};
use paytrace_indexer::{Amount, Direction, labels::Date};
use serde::Deserialize;
use std::time::Duration;

/// A JSON answer already rendered (Bitcoin identities rewritten by a [`ChainView`]).
fn json_text(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response()
}

/// Serialises `value` and rewrites it through `view`.
fn viewed<T: serde::Serialize>(value: &T, view: &ChainView) -> ApiResult<Response> {
    let s = serde_json::to_string(value).map_err(|e| Problem::internal(&e.into()))?;
    Ok(json_text(view.rewrite(&s)))
}

fn split_list(s: Option<&str>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

fn time_param(
    field: &str,
    v: Option<&str>,
    f: fn(&str) -> Result<u64, String>,
) -> ApiResult<Option<u64>> {
    v.map(|s| f(s).map_err(|e| Problem::bad_field(field, format!("{field}: {e}"))))
        .transpose()
}

fn day_param(field: &str, v: Option<&str>) -> ApiResult<Option<Date>> {
    v.map(|s| parse_day(s).map_err(|e| Problem::bad_field(field, format!("{field}: {e}"))))
        .transpose()
}

fn amount_param(field: &str, v: Option<&str>) -> ApiResult<Amount> {
    v.map_or(Ok(Amount::ZERO), |s| {
        s.parse::<Amount>()
            .map_err(|e| Problem::bad_field(field, format!("{field}: {s:?}: {e}")))
    })
}

fn address_param(field: &str, v: &str) -> ApiResult<paytrace_indexer::Address> {
    parse_address(field, v).map_err(|e| Problem::bad_field(field, e.to_string()))
}

/// `GET /v1/address/{address}?chain=&limit=`: `paytrace address --json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressQuery {
    chain: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/address/{address}`.
pub async fn address(
    _c: Caller,
    State(state): State<AppState>,
    Path(addr): Path<String>,
    Params(q): Params<AddressQuery>,
) -> ApiResult<Response> {
    let a = address_param("address", &addr)?;
    state
        .blocking(move |s| {
            let out = paytrace_app::query::address(
                s.store(),
                s.config(),
                &a,
                q.chain.as_deref(),
                q.limit,
            )?;
            Ok(Json(out).into_response())
        })
        .await
}

/// Query of `GET /v1/address/{address}/transfers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransfersQuery {
    direction: Option<String>,
    chain: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// Most transfers of one page.
pub const MAX_PAGE: usize = 1_000;

/// `GET /v1/address/{address}/transfers?direction=incoming|outgoing&cursor=&limit=`.
pub async fn transfers(
    _c: Caller,
    State(state): State<AppState>,
    Path(addr): Path<String>,
    Params(q): Params<TransfersQuery>,
) -> ApiResult<Response> {
    let a = address_param("address", &addr)?;
    let dir = match q.direction.as_deref().unwrap_or("incoming") {
        "incoming" | "in" => Direction::Incoming,
        "outgoing" | "out" => Direction::Outgoing,
        d => {
            return Err(Problem::bad_field(
                "direction",
                format!("direction: {d:?}: expected incoming or outgoing"),
            ));
        }
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::bad_field(
            "limit",
            format!("limit: {limit}: expected 1 to {MAX_PAGE}"),
        ));
    }
    state
        .blocking(move |s| {
            let page = paytrace_app::query::transfers_page(
                s.store(),
                s.config(),
                &a,
                dir,
                q.chain.as_deref(),
                q.cursor.as_deref(),
                limit,
            )
            .map_err(|e| {
                if matches!(e, paytrace_app::query::QueryError::BadCursor(_)) {
                    Problem::bad_field("cursor", e.to_string())
                } else {
                    Problem::from(e)
                }
            })?;
            Ok(Json(page).into_response())
        })
        .await
}

/// Query of `GET /v1/trace` (the options of `paytrace trace`; lists comma-separated).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    seed: String,
    #[serde(default)]
    backward: bool,
    model: Option<String>,
    hops: Option<u32>,
    since: Option<String>,
    until: Option<String>,
    min_amount: Option<String>,
    max_nodes: Option<usize>,
    budget_ms: Option<u64>,
    max_paths: Option<usize>,
    chain: Option<String>,
    block: Option<u64>,
    format: Option<String>,
    stop: Option<String>,
    stop_category: Option<String>,
    swap_category: Option<String>,
}

/// `GET /v1/trace?seed=...`: `paytrace trace --format json|dot|graphml`, within the
/// server's budgets (more hops or nodes than allowed: 422; the wall-time budget truncates).
pub async fn trace(
    _c: Caller,
    State(state): State<AppState>,
    Params(q): Params<TraceQuery>,
) -> ApiResult<Response> {
    let limits = state.limits().clone();
    let mut req = TraceRequest::new(q.seed.clone());
    req.backward = q.backward;
    if let Some(m) = &q.model {
        req.model = model_param(m)?;
    }
    if let Some(h) = q.hops {
        req.hops = h;
    }
    req.hops = limits.check_hops(req.hops)?;
    req.max_nodes =
        limits.check_nodes(q.max_nodes.unwrap_or(req.max_nodes.min(limits.max_nodes)))?;
    // The trace stops following new addresses (a `truncated` result) before the request's
    // wall-time budget ends it with 422.
    let wall = limits.max_wall.mul_f64(0.8);
    req.budget = Some(
        q.budget_ms
            .map(Duration::from_millis)
            .map_or(wall, |b| b.min(wall)),
    );
    req.since = time_param("since", q.since.as_deref(), parse_since)?;
    req.until = time_param("until", q.until.as_deref(), parse_until)?;
    req.min_amount = amount_param("min_amount", q.min_amount.as_deref())?;
    if let Some(p) = q.max_paths {
        req.max_paths = p;
    }
    req.chain = q.chain.clone();
    req.block = q.block;
    req.rules = LabelRules {
        stop: split_list(q.stop.as_deref()),
        stop_categories: split_list(q.stop_category.as_deref()),
        swap_categories: split_list(q.swap_category.as_deref()),
    };
    let format = q.format.clone().unwrap_or_else(|| "json".to_owned());
    if !matches!(format.as_str(), "json" | "dot" | "graphml") {
        return Err(Problem::bad_field(
            "format",
            format!("format: {format:?}: expected json, dot or graphml"),
        ));
    }
    state
        .blocking(move |s| {
            let r = paytrace_app::trace::trace(s.store(), &req)
                .map_err(|e| trace_problem(e, "seed"))?;
            let view = ChainView::open(s.store(), &paytrace_app::trace::subject(&r))?;
            let (text, ct) = match format.as_str() {
                "dot" => (
                    paytrace_tracer::export::to_dot(&r),
                    "text/vnd.graphviz; charset=utf-8",
                ),
                "graphml" => (
                    paytrace_tracer::export::to_graphml(&r),
                    "application/graphml+xml",
                ),
                _ => (
                    serde_json::to_string(&r).map_err(|e| Problem::internal(&e.into()))?,
                    "application/json",
                ),
            };
            Ok((
                [(header::CONTENT_TYPE, HeaderValue::from_static(ct))],
                view.rewrite(&text),
            )
                .into_response())
        })
        .await
}

/// A trace or path error as a problem naming `field` when the input is at fault.
fn trace_problem(e: paytrace_app::trace::QueryError, field: &str) -> Problem {
    use paytrace_app::trace::QueryError as Q;
    match &e {
        Q::Address(a) => {
            let f = match a {
                paytrace_app::address::AddressArgError::Evm { arg, .. }
                | paytrace_app::address::AddressArgError::WrongNetwork { arg, .. }
                | paytrace_app::address::AddressArgError::Bitcoin { arg, .. } => arg.clone(),
                _ => field.to_owned(),
            };
            Problem::bad_field(f, e.to_string())
        }
        Q::Input { field: f, .. } => Problem::bad_field(f.clone(), e.to_string()),
        _ => Problem::from(e),
    }
}

/// Query of `GET /v1/path` (the options of `paytrace path`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathQuery {
    from: String,
    to: Option<String>,
    to_category: Option<String>,
    hops: Option<u32>,
    k: Option<usize>,
    since: Option<String>,
    until: Option<String>,
    min_amount: Option<String>,
    max_nodes: Option<usize>,
    asset: Option<String>,
    chain: Option<String>,
    stop: Option<String>,
    stop_category: Option<String>,
}

/// `GET /v1/path?from=&to=`: `paytrace path --json`.
pub async fn path(
    _c: Caller,
    State(state): State<AppState>,
    Params(q): Params<PathQuery>,
) -> ApiResult<Response> {
    let limits = state.limits().clone();
    let mut req = PathRequest::new(q.from.clone());
    req.to = q.to.clone();
    req.to_category = q.to_category.clone();
    if let Some(h) = q.hops {
        req.hops = h;
    }
    req.hops = limits.check_hops(req.hops)?;
    if let Some(k) = q.k {
        req.k = k;
    }
    if let Some(n) = q.max_nodes {
        req.max_nodes = limits.check_nodes(n)?;
    }
    req.since = time_param("since", q.since.as_deref(), parse_since)?;
    req.until = time_param("until", q.until.as_deref(), parse_until)?;
    req.min_amount = amount_param("min_amount", q.min_amount.as_deref())?;
    req.asset = q.asset.clone();
    req.chain = q.chain.clone();
    req.rules = LabelRules {
        stop: split_list(q.stop.as_deref()),
        stop_categories: split_list(q.stop_category.as_deref()),
        swap_categories: Vec::new(),
    };
    state
        .blocking(move |s| {
            let (from, r) =
                paytrace_app::trace::path(s.store(), &req).map_err(|e| trace_problem(e, "from"))?;
            viewed(&r, &ChainView::open(s.store(), &from)?)
        })
        .await
}

/// Query of `GET /v1/screen/{address}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenQuery {
    chain: Option<String>,
    as_of: Option<String>,
    hops: Option<u32>,
    #[serde(default)]
    no_patterns: bool,
}

/// The body of `POST /v1/screen`: many addresses with the options of `paytrace screen`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkScreen {
    addresses: Vec<String>,
    chain: Option<String>,
    as_of: Option<String>,
    hops: Option<u32>,
    #[serde(default)]
    no_patterns: bool,
}

fn screen_request(
    chain: Option<String>,
    as_of: Option<&str>,
    hops: Option<u32>,
    no_patterns: bool,
) -> ApiResult<paytrace_app::screen::ScreenRequest> {
    if let Some(h) = hops
        && !(1..=10).contains(&h)
    {
        return Err(Problem::bad_field(
            "hops",
            format!("hops {h}: expected 1 to 10"),
        ));
    }
    Ok(paytrace_app::screen::ScreenRequest {
        chain,
        as_of: day_param("as_of", as_of)?,
        hops,
        no_patterns,
    })
}

/// `GET /v1/screen/{address}`: `paytrace screen ADDRESS --json`.
pub async fn screen_one(
    _c: Caller,
    State(state): State<AppState>,
    Path(addr): Path<String>,
    Params(q): Params<ScreenQuery>,
) -> ApiResult<Response> {
    let a = address_param("address", &addr)?;
    let req = screen_request(q.chain, q.as_of.as_deref(), q.hops, q.no_patterns)?;
    state
        .blocking(move |s| {
            let p = paytrace_app::screen::params(s.store(), s.config(), &req)?;
            let r = paytrace_app::screen::screen_many(s.store(), &[a], &p, 1)?;
            let view = ChainView::new(s.store(), true)?;
            let text = serde_json::to_string(&r[0]).map_err(|e| Problem::internal(&e.into()))?;
            Ok(json_text(view.rewrite_as(
                &text,
                !matches!(a, paytrace_indexer::Address::Evm(_)),
            )))
        })
        .await
}

/// `POST /v1/screen` with `{"addresses": [...]}`: the results in order, as
/// `{"results": [...]}` (each as `screen --json`); more addresses than `--max-bulk`: 422.
pub async fn screen_bulk(
    _c: Caller,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<BulkScreen>,
) -> ApiResult<Response> {
    let max = state.limits().max_bulk;
    if body.addresses.len() > max {
        return Err(Problem::over_budget(
            "bulk",
            format!(
                "{} addresses is over this server's budget of {max} per request",
                body.addresses.len()
            ),
        ));
    }
    let addresses = body
        .addresses
        .iter()
        .enumerate()
        .map(|(i, a)| address_param(&format!("addresses[{i}]"), a))
        .collect::<ApiResult<Vec<_>>>()?;
    let req = screen_request(
        body.chain,
        body.as_of.as_deref(),
        body.hops,
        body.no_patterns,
    )?;
    state
        .blocking(move |s| {
            let p = paytrace_app::screen::params(s.store(), s.config(), &req)?;
            let results = paytrace_app::screen::screen_many(s.store(), &addresses, &p, 1)?;
            let view = ChainView::new(s.store(), true)?;
            let mut out = String::from("{\"results\":[");
            for (i, (r, a)) in results.iter().zip(&addresses).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let text = serde_json::to_string(r).map_err(|e| Problem::internal(&e.into()))?;
                out.push_str(
                    &view.rewrite_as(&text, !matches!(a, paytrace_indexer::Address::Evm(_))),
                );
            }
            out.push_str("]}");
            Ok(json_text(out))
        })
        .await
}

/// Query of `GET /v1/cluster/{address}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterQuery {
    limit: Option<usize>,
}

/// `GET /v1/cluster/{address}?limit=`: `paytrace cluster show --json`.
pub async fn cluster_show(
    _c: Caller,
    State(state): State<AppState>,
    Path(addr): Path<String>,
    Params(q): Params<ClusterQuery>,
) -> ApiResult<Response> {
    let a = address_param("address", &addr)?;
    let limit = q.limit.unwrap_or(50);
    state
        .blocking(move |s| {
            let out = paytrace_app::cluster_view::show(s.store(), a, limit)?;
            viewed(&out, &ChainView::open(s.store(), &a)?)
        })
        .await
}

/// Query of `GET /v1/cluster-explain`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainQuery {
    a: String,
    b: String,
}

/// `GET /v1/cluster-explain?a=&b=`: `paytrace cluster explain --json`.
pub async fn cluster_explain(
    _c: Caller,
    State(state): State<AppState>,
    Params(q): Params<ExplainQuery>,
) -> ApiResult<Response> {
    let x = address_param("a", &q.a)?;
    let y = address_param("b", &q.b)?;
    state
        .blocking(move |s| {
            let out = paytrace_app::cluster_view::explain(s.store(), x, y)?;
            viewed(&out, &ChainView::open(s.store(), &x)?)
        })
        .await
}

/// Query of `GET /v1/labels/{address}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsShowQuery {
    chain: Option<String>,
    as_of: Option<String>,
    #[serde(default)]
    history: bool,
}

/// `GET /v1/labels/{address}`: `paytrace labels show --json`.
pub async fn labels_show(
    _c: Caller,
    State(state): State<AppState>,
    Path(addr): Path<String>,
    Params(q): Params<LabelsShowQuery>,
) -> ApiResult<Response> {
    let as_of = day_param("as_of", q.as_of.as_deref())?;
    state
        .blocking(move |s| {
            let out = paytrace_app::labels::show(
                s.store(),
                "address",
                &addr,
                q.chain.as_deref(),
                as_of,
                q.history,
            )
            .map_err(|e| {
                if e.is_input() {
                    Problem::bad_field("address", e.to_string())
                } else {
                    Problem::from(e)
                }
            })?;
            Ok(Json(out).into_response())
        })
        .await
}

/// Query of `GET /v1/labels`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsListQuery {
    category: Option<String>,
    source: Option<String>,
    #[serde(default)]
    all: bool,
    offset: Option<usize>,
    limit: Option<usize>,
}

/// `GET /v1/labels?category=&source=&all=&offset=&limit=`: `paytrace labels list --json`,
/// a page at a time (default 100, at most 1,000).
pub async fn labels_list(
    _c: Caller,
    State(state): State<AppState>,
    Params(q): Params<LabelsListQuery>,
) -> ApiResult<Response> {
    let category = q
        .category
        .as_deref()
        .map(|c| {
            c.parse::<paytrace_indexer::labels::Category>()
                .map_err(|e| Problem::bad_field("category", format!("category: {e}")))
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::bad_field(
            "limit",
            format!("limit: {limit}: expected 1 to {MAX_PAGE}"),
        ));
    }
    state
        .blocking(move |s| {
            let out = paytrace_app::labels::list(
                s.store(),
                category,
                q.source.as_deref(),
                q.all,
                q.offset.unwrap_or(0),
                limit,
            )?;
            Ok(Json(out).into_response())
        })
        .await
}

/// Query of `GET /v1/alerts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    state: Option<String>,
}

/// `GET /v1/alerts?state=new|acknowledged|closed`: the alerts (each as `alerts --json`).
pub async fn alerts_list(
    _c: Caller,
    State(state): State<AppState>,
    Params(q): Params<AlertsQuery>,
) -> ApiResult<Response> {
    let st = q
        .state
        .as_deref()
        .map(|s| {
            s.parse::<AlertState>()
                .map_err(|e| Problem::bad_field("state", format!("state: {e}")))
        })
        .transpose()?;
    state
        .blocking(move |s| {
            let alerts = AlertStore::open(s.store())?.list(st)?;
            Ok(Json(alerts).into_response())
        })
        .await
}

async fn set_alert(c: Caller, state: AppState, id: String, to: AlertState) -> ApiResult<Response> {
    c.require(Role::Compliance)?;
    let id: u64 = id
        .parse()
        .map_err(|_| Problem::bad_field("id", format!("id: {id:?} is not an alert id")))?;
    state
        .blocking(move |s| {
            let a = AlertStore::open(s.store())?.set_state(id, to)?;
            let mut r = Json(a).into_response();
            r.headers_mut()
                .insert("x-audit-target", HeaderValue::from(id));
            Ok(r)
        })
        .await
}

/// `POST /v1/alerts/{id}/ack` (compliance): `paytrace alerts ack ID --json`.
pub async fn alert_ack(
    c: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    set_alert(c, state, id, AlertState::Acknowledged).await
}

/// `POST /v1/alerts/{id}/close` (compliance): `paytrace alerts close ID --json`.
pub async fn alert_close(
    c: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    set_alert(c, state, id, AlertState::Closed).await
}

/// `GET /v1/watchlist`: `paytrace watch list --json` as an array.
pub async fn watch_list(_c: Caller, State(state): State<AppState>) -> ApiResult<Response> {
    state
        .blocking(|s| Ok(Json(AlertStore::open(s.store())?.watchlist()?).into_response()))
        .await
}

/// The body of `PUT /v1/watchlist/{address}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchBody {
    note: Option<String>,
    #[serde(default)]
    payer: bool,
}

fn audited(mut r: Response, target: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(target) {
        r.headers_mut().insert("x-audit-target", v);
    }
    r
}

/// `PUT /v1/watchlist/{address}` (compliance) with `{"note": ..., "payer": bool}`: `paytrace
/// watch add`.
pub async fn watch_add(
    c: Caller,
    State(state): State<AppState>,
    Path(addr): Path<String>,
    JsonBody(body): JsonBody<WatchBody>,
) -> ApiResult<Response> {
    c.require(Role::Compliance)?;
    let a = address_param("address", &addr)?;
    state
        .blocking(move |s| {
            let e = AlertStore::open(s.store())?.watch(a, body.note, body.payer)?;
            Ok(audited(Json(e).into_response(), &a.to_string()))
        })
        .await
}

/// `DELETE /v1/watchlist/{address}` (compliance): `paytrace watch remove --json`.
pub async fn watch_remove(
    c: Caller,
    State(state): State<AppState>,
    Path(addr): Path<String>,
) -> ApiResult<Response> {
    c.require(Role::Compliance)?;
    let a = address_param("address", &addr)?;
    state
        .blocking(move |s| {
            let had = AlertStore::open(s.store())?.unwatch(&a)?;
            Ok(audited(
                Json(serde_json::json!({ "address": a, "removed": had })).into_response(),
                &a.to_string(),
            ))
        })
        .await
}

/// Query of `POST /v1/reports/payouts` (the options of `report payouts --batch`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    format: Option<String>,
    name: Option<String>,
    model: Option<String>,
    hops: Option<u32>,
    min_payees: Option<usize>,
    window_days: Option<u64>,
    chain: Option<String>,
    labels_as_of: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// `POST /v1/reports/payouts?format=json|csv|html` with a batch CSV as the body
/// (`payee,address,chain,asset,amount[,tx_hash,date]`): `paytrace report payouts --batch`.
/// Rows with problems are listed in the report's `issues` (file and line), as the CLI does;
/// a header without a required column is a 400 naming it.
pub async fn report_payouts(
    _c: Caller,
    State(state): State<AppState>,
    Params(q): Params<ReportQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let limits = state.limits().clone();
    let mut req = paytrace_app::report::BatchReportRequest::default();
    if let Some(m) = &q.model {
        req.model = model_param(m)?;
    }
    if let Some(h) = q.hops {
        req.hops = limits.check_hops(h)?;
    }
    if let Some(m) = q.min_payees {
        req.min_payees = m;
    }
    if let Some(w) = q.window_days {
        req.window_days = w;
    }
    req.chain = q.chain.clone();
    req.labels_as_of = day_param("labels_as_of", q.labels_as_of.as_deref())?;
    req.since = time_param("since", q.since.as_deref(), parse_since)?;
    req.until = time_param("until", q.until.as_deref(), parse_until)?;
    let format = q.format.clone().unwrap_or_else(|| "json".to_owned());
    if !matches!(format.as_str(), "json" | "csv" | "html") {
        return Err(Problem::bad_field(
            "format",
            format!("format: {format:?}: expected json, csv or html"),
        ));
    }
    let name = q.name.clone().unwrap_or_else(|| "batch.csv".to_owned());
    state
        .blocking(move |s| {
            let r = paytrace_app::report::batch_report(
                s.store(),
                s.config(),
                &name,
                std::io::Cursor::new(body),
                &req,
            )
            .map_err(|e| match &e {
                paytrace_app::report::ReportError::Batch(b) => {
                    let field = match b {
                        paytrace_tracer::report::batch::BatchError::MissingColumn {
                            column,
                            ..
                        } => (*column).to_owned(),
                        paytrace_tracer::report::batch::BatchError::Header { .. } => {
                            "header".to_owned()
                        }
                    };
                    let mut p = Problem::bad_field(field, e.to_string());
                    p.line = Some(1);
                    p
                }
                _ if e.is_input() => Problem::bad_request(e.to_string()),
                _ => Problem::internal(&e.into()),
            })?;
            let view = ChainView::new(s.store(), false)?;
            let (text, ct) = match format.as_str() {
                "html" => (
                    paytrace_tracer::report::render::to_html(&r),
                    "text/html; charset=utf-8",
                ),
                "csv" => (
                    paytrace_tracer::report::render::to_csv(&r).map_err(|e| {
                        Problem::internal(&anyhow::anyhow!("writing the CSV report: {e}"))
                    })?,
                    "text/csv; charset=utf-8",
                ),
                _ => (
                    serde_json::to_string(&r).map_err(|e| Problem::internal(&e.into()))?,
                    "application/json",
                ),
            };
            Ok((
                [(header::CONTENT_TYPE, HeaderValue::from_static(ct))],
                view.rewrite_as(&text, false),
            )
                .into_response())
        })
        .await
}

/// Query of `POST /v1/labels/import` (the options of `labels import`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    format: String,
    name: Option<String>,
    source: Option<String>,
    version: Option<String>,
    category: Option<String>,
    entity: Option<String>,
    chain: Option<String>,
    confidence: Option<u8>,
    max_shrink: Option<u8>,
    #[serde(default)]
    allow_shrink: bool,
}

/// `POST /v1/labels/import?format=...` (admin) with the label file as the body: `paytrace
/// labels import --json`; then the alert rules are evaluated and new alerts delivered, as
/// after a CLI import.
pub async fn labels_import(
    c: Caller,
    State(state): State<AppState>,
    Params(q): Params<ImportQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    use paytrace_indexer::labels::{
        DEFAULT_MAX_SHRINK_PCT, Defaults, Format, ImportOptions, Input, LabelStore, ShrinkGuard,
        import_inputs,
    };
    c.require(Role::Admin)?;
    let format: Format = q
        .format
        .parse()
        .map_err(|e| Problem::bad_field("format", format!("format: {e}")))?;
    let category = q
        .category
        .as_deref()
        .map(|c| {
            c.parse::<paytrace_indexer::labels::Category>()
                .map_err(|e| Problem::bad_field("category", format!("category: {e}")))
        })
        .transpose()?;
    if q.confidence.is_some_and(|c| c > 100) || q.max_shrink.is_some_and(|c| c > 100) {
        return Err(Problem::bad_field(
            if q.confidence.is_some_and(|c| c > 100) {
                "confidence"
            } else {
                "max_shrink"
            },
            "confidence and max_shrink are percentages: 0 to 100",
        ));
    }
    let name = q.name.clone().unwrap_or_else(|| "upload".to_owned());
    let st = state.clone();
    let report = state
        .blocking(move |s| {
            let opts = ImportOptions {
                source: q.source.clone(),
                version: q.version.clone(),
                url: None,
                defaults: Defaults {
                    category,
                    entity: q.entity.clone(),
                    currency: q.chain.clone(),
                    confidence: q.confidence,
                },
                guard: ShrinkGuard {
                    max_shrink_pct: q
                        .max_shrink
                        .or(s.config().labels.max_shrink_pct)
                        .unwrap_or(DEFAULT_MAX_SHRINK_PCT),
                    allow_shrink: q.allow_shrink,
                },
            };
            let labels = LabelStore::open(s.store())
                .map_err(|e| Problem::internal(&anyhow::anyhow!("opening the label store: {e}")))?;
            let input = Input::from_bytes(name.clone(), &body);
            import_inputs(&labels, format, vec![input], &opts)
                .map_err(|e| Problem::bad_request(e.to_string()))
        })
        .await?;
    // New labels: re-screen payees and watched addresses, raise new findings, deliver.
    let evaluated = st
        .blocking(|s| {
            crate::cmd::alerts::evaluate_rules(s.config(), s.store()).map_err(Problem::from)
        })
        .await;
    match evaluated {
        Ok((_, summary)) => {
            tracing::info!(
                screened = summary.screened,
                raised = summary.raised,
                "alert rules evaluated after a label import"
            );
            if !st.config().alerts.webhooks.is_empty()
                && let Err(e) = crate::cmd::alerts::deliver(st.config(), st.store()).await
            {
                tracing::error!(error = %e, "alert delivery after a label import failed; left in the outbox");
            }
        }
        Err(e) => {
            tracing::error!(error = %e.detail, "alert evaluation after a label import failed")
        }
    }
    let target = format!("{} {}", report.source, report.version);
    Ok(audited(Json(report).into_response(), &target))
}

/// The `model` parameter: a taint model name, or the 400 naming `model`.
fn model_param(m: &str) -> Result<paytrace_tracer::Model, Problem> {
    paytrace_app::params::parse_model(m)
        .map_err(|e| Problem::bad_field("model", format!("model: {e}")))
}
