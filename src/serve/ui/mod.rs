//! The web UI served by the same binary, every asset embedded (no CDN, works offline): search,
//! address page (labels, risk verdict with reasons and evidence, transfers), the graph explorer
//! (server-rendered SVG, [`graph`]; a small hand-written script, `assets/ui.js`, for pan and
//! zoom, click-to-expand, highlight and export), payout report upload and view, the alerts inbox,
//! and a login page that keeps the API key in an HttpOnly, SameSite=Strict cookie.
//!
//! Handlers only parse the request, call the same application code the command-line tool
//! calls (`paytrace_app`, `paytrace_tracer`, the shared helpers of `crate::cmd`) on the blocking
//! pool, and render a [`pages`] template.

// The page helpers return the answer to send instead (an axum `Response`) as their error,
// once per request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod graph;
pub mod pages;

use super::{AppState, auth::Caller, auth::KEY_COOKIE, problem::Problem};
use axum::{
    Router,
    body::Bytes,
    extract::{Multipart, Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::Markup;
use paytrace_app::alerts::{AlertState, AlertStore};
use paytrace_app::{
    address::{Target, parse_address, parse_target},
    explore::{ExploreParams, explore},
    keys::{AuditEntry, Role},
    query::{Namer, TransferView},
};
use paytrace_indexer::{Address, Amount, Asset, ChainId, Direction, TxHash};
use paytrace_tracer::{FlowSource as _, MemoryLabels, StoreLabels};
use std::collections::BTreeSet;

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");
const ICON: &str = include_str!("assets/icon.svg");

/// Transfers per page on the address page.
const PER_PAGE: usize = 50;

/// Content Security Policy of every UI answer: only this server's own script and style sheet
/// (inline styles for the SVG and the report), no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
frame-ancestors 'none'";

/// The UI's routes, merged at the root next to `/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/assets/ui.css", get(css))
        .route("/ui/assets/ui.js", get(js))
        .route("/ui/assets/icon.svg", get(icon))
        .route("/favicon.ico", get(icon))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/search", get(search))
        .route("/ui/address/{address}", get(address))
        .route("/ui/tx/{hash}", get(transaction))
        .route("/ui/graph", get(graph_page))
        .route("/ui/graph.graphml", get(graph_graphml))
        .route("/ui/report", get(report_form).post(report_run))
        .route("/ui/alerts", get(alerts))
        .route("/ui/alerts/{id}/{action}", post(alert_action))
}

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    graph::enc(s)
}

/// How the UI names things: addresses (Bitcoin scripts as their addresses), chains,
/// transactions (Bitcoin txids without `0x`) and amounts in token units, as the CLI's text
/// output does.
pub struct Names {
    namer: Namer,
    units: paytrace_app::units::Units,
    bitcoin: BTreeSet<ChainId>,
}

impl Names {
    /// Loads the store's chains and token units (with the config's token lists).
    pub fn load(state: &AppState) -> anyhow::Result<Self> {
        let store = state.store();
        let bitcoin = store
            .chains()?
            .into_iter()
            .filter(|c| c.kind == paytrace_indexer::ChainKind::Bitcoin)
            .map(|c| c.id)
            .collect();
        Ok(Self {
            namer: Namer::new(store, state.config())?,
            units: paytrace_app::units::Units::load(store, state.config())?,
            bitcoin,
        })
    }

    /// The readable form of an address.
    pub fn address(&self, a: &Address) -> String {
        self.namer.address(a)
    }

    /// A chain's name.
    pub fn chain(&self, id: ChainId) -> String {
        self.namer.chain(id)
    }

    /// A transaction hash as its chain shows it.
    pub fn tx(&self, chain: ChainId, h: &TxHash) -> String {
        if self.bitcoin.contains(&chain) {
            format!("{:x}", h.0)
        } else {
            h.to_string()
        }
    }

    /// An amount of `asset` on `chain` in token units.
    pub fn amount(&self, chain: ChainId, asset: &Asset, v: Amount) -> String {
        self.namer.amount(chain, asset, v)
    }

    /// An amount about `address` without a chain (screening exposures), in token units.
    pub fn amount_any(&self, address: &Address, asset: &Asset, v: Amount) -> String {
        self.units.book_for(None, address).format(asset, v)
    }

    /// A transfer as the CLI prints it.
    pub fn view(&self, t: &paytrace_indexer::Transfer) -> TransferView {
        self.namer.view(t)
    }
}

/// An HTML answer with the UI's security headers.
fn html(status: StatusCode, m: Markup) -> Response {
    let mut r = (status, Html(m.into_string())).into_response();
    secure(r.headers_mut());
    r
}

fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A page's caller: without a valid key the browser goes to the login page; other refusals
/// (rate limit) are answered as they are.
fn viewer(c: Result<Caller, Problem>) -> Result<(Caller, pages::Viewer), Response> {
    match c {
        Ok(c) => {
            let v = pages::Viewer {
                name: c.key_id.clone(),
                role: c.role.to_string(),
                can_ack: c.role >= Role::Compliance,
            };
            Ok((c, v))
        }
        Err(p) if p.status == 401 => Err(Redirect::to("/ui/login").into_response()),
        Err(p) => Err(p.into_response()),
    }
}

/// An error page with the status of `p` and its message.
fn error_page(v: Option<&pages::Viewer>, p: &Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    html(status, pages::error(v, &p.title, &p.detail))
}

/// Runs `f` on the blocking pool within the request budget; an error becomes an error page.
async fn run<T, F>(state: &AppState, v: &pages::Viewer, f: F) -> Result<T, Response>
where
    T: Send + 'static,
    F: FnOnce(&AppState) -> Result<T, Problem> + Send + 'static,
{
    state.blocking(f).await.map_err(|p| error_page(Some(v), &p))
}

/// An internal error (store, analysis) as a problem with the CLI's message.
fn internal(e: impl Into<anyhow::Error>) -> Problem {
    Problem::internal(&e.into())
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

fn asset(ty: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn login_form() -> Response {
    html(StatusCode::OK, pages::login(None))
}

/// Decodes one `application/x-www-form-urlencoded` value (`+` is a space).
fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != name {
            continue;
        }
        let mut out = Vec::with_capacity(v.len());
        let b = v.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        return String::from_utf8(out).ok();
    }
    None
}

/// Checks the key and keeps it in the `paytrace_key` cookie: HttpOnly (no script reads it),
/// SameSite=Strict (no other site's page sends it), for the whole server.
async fn login(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(key) = form_value(&body, "key")
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
    else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::login(Some("Enter an API key.")),
        );
    };
    let keys = state.keys().clone();
    let k = key.clone();
    let checked = tokio::task::spawn_blocking(move || keys.verify(&k)).await;
    match checked {
        Ok(Ok(Some(_))) => {
            let mut r = Redirect::to("/ui").into_response();
            let cookie = format!("{KEY_COOKIE}={key}; Path=/; HttpOnly; SameSite=Strict");
            match HeaderValue::from_str(&cookie) {
                Ok(v) => {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                    r
                }
                Err(_) => html(
                    StatusCode::BAD_REQUEST,
                    pages::login(Some("That is not an API key.")),
                ),
            }
        }
        Ok(Ok(None)) => html(
            StatusCode::UNAUTHORIZED,
            pages::login(Some("The API key is not valid (unknown or revoked).")),
        ),
        Ok(Err(e)) => error_page(None, &internal(e)),
        Err(e) => error_page(None, &internal(anyhow::anyhow!("checking the key: {e}"))),
    }
}

async fn logout() -> Response {
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("paytrace_key=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

async fn home(caller: Result<Caller, Problem>) -> Response {
    match viewer(caller) {
        Ok((_, v)) => html(StatusCode::OK, pages::home(&v, None, "")),
        Err(r) => r,
    }
}

#[derive(serde::Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// An address opens its page, a transaction hash its transaction; anything else is the
/// parser's error (the same one the CLI prints).
async fn search(caller: Result<Caller, Problem>, Query(q): Query<SearchQuery>) -> Response {
    let (_, v) = match viewer(caller) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let text = q.q.trim();
    if text.is_empty() {
        return html(StatusCode::OK, pages::home(&v, None, ""));
    }
    match parse_target("search", text) {
        Ok(Target::Address(_)) => {
            Redirect::to(&format!("/ui/address/{}", enc(text))).into_response()
        }
        Ok(Target::Tx { .. }) => {
            let hash = text.split(':').next().unwrap_or(text);
            Redirect::to(&format!("/ui/tx/{}", enc(hash))).into_response()
        }
        Err(e) => html(
            StatusCode::BAD_REQUEST,
            pages::home(&v, Some(&e.to_string()), text),
        ),
    }
}

#[derive(serde::Deserialize)]
struct AddressQuery {
    #[serde(default)]
    dir: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

async fn address(
    State(state): State<AppState>,
    caller: Result<Caller, Problem>,
    Path(text): Path<String>,
    Query(q): Query<AddressQuery>,
) -> Response {
    let (_, v) = match viewer(caller) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let a = match parse_address("address", &text) {
        Ok(a) => a,
        Err(e) => return error_page(Some(&v), &Problem::bad_field("address", e.to_string())),
    };
    let dir = match q.dir.as_deref() {
        None | Some("in") => Direction::Incoming,
        Some("out") => Direction::Outgoing,
        Some(d) => {
            return error_page(
                Some(&v),
                &Problem::bad_field("dir", format!("dir {d:?}: expected in or out")),
            );
        }
    };
    let vv = v.clone();
    let body = run(&state, &v, move |s| {
        let names = Names::load(s).map_err(internal)?;
        let screened = screen(s, &a);
        let tp = paytrace_app::query::transfers_page(
            s.store(),
            s.config(),
            &a,
            dir,
            None,
            q.after.as_deref(),
            PER_PAGE,
        )
        .map_err(|e| {
            if e.is_input() {
                Problem::bad_field("after", e.to_string())
            } else {
                internal(anyhow::Error::from(e).context(format!("reading the transfers of {a}")))
            }
        })?;
        let shown = names.address(&a);
        let labels = paytrace_app::labels::show(s.store(), "address", &shown, None, None, true)
            .map(|o| o.labels);
        let page = pages::AddressPage {
            shown,
            screen: screened.as_ref().map_err(|e| format!("{e:#}")),
            labels: labels.as_deref().map_err(ToString::to_string),
            dir: if dir == Direction::Incoming {
                "in"
            } else {
                "out"
            },
            transfers: &tp.transfers,
            next: tp.next_cursor.clone(),
            per_page: PER_PAGE,
        };
        Ok(pages::address(&vv, &page, &names))
    })
    .await;
    match body {
        Ok(m) => html(StatusCode::OK, m),
        Err(r) => r,
    }
}

/// Screens `a` as `paytrace screen ADDRESS` does (the same application code): as of today,
/// with the config's `[risk]` section, deposit addresses attributed by clustering, token units
/// of the store.
fn screen(s: &AppState, a: &Address) -> anyhow::Result<paytrace_tracer::risk::ScreenResult> {
    let p = paytrace_app::screen::params(
        s.store(),
        s.config(),
        &paytrace_app::screen::ScreenRequest::default(),
    )?;
    paytrace_app::screen::screen_many(s.store(), &[*a], &p, 1)?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("screening {a} gave no result"))
}

#[derive(serde::Deserialize)]
struct TxQuery {
    #[serde(default)]
    chain: Option<String>,
}

async fn transaction(
    State(state): State<AppState>,
    caller: Result<Caller, Problem>,
    Path(text): Path<String>,
    Query(q): Query<TxQuery>,
) -> Response {
    let (_, v) = match viewer(caller) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let hash = match parse_target("transaction", &text) {
        Ok(Target::Tx { hash, .. }) => hash,
        Ok(Target::Address(_)) => {
            return Redirect::to(&format!("/ui/address/{}", enc(&text))).into_response();
        }
        Err(e) => return error_page(Some(&v), &Problem::bad_field("hash", e.to_string())),
    };
    let vv = v.clone();
    let body = run(&state, &v, move |s| {
        let store = s.store();
        let chain = paytrace_app::params::chain_id(store, q.chain.as_deref())
            .map_err(|e| Problem::bad_field("chain", e.to_string()))?;
        let names = Names::load(s).map_err(internal)?;
        let ts = store
            .tx_transfers(&hash, chain, None)
            .map_err(|e| internal(anyhow::anyhow!("reading transaction {text}: {e}")))?;
        let views: Vec<TransferView> = ts.iter().map(|t| names.view(t)).collect();
        Ok(pages::transaction(&vv, &text, &views))
    })
    .await;
    match body {
        Ok(m) => html(StatusCode::OK, m),
        Err(r) => r,
    }
}

/// The explorer's parameters from a page query, within the server's budgets.
fn explore_params(state: &AppState, q: &graph::GraphQuery) -> Result<ExploreParams, Problem> {
    let seed =
        parse_address("seed", &q.seed).map_err(|e| Problem::bad_field("seed", e.to_string()))?;
    let mut p = ExploreParams::new(seed);
    for (field, list, set) in [
        ("out", &q.out, &mut p.expand_out),
        ("in", &q.inn, &mut p.expand_in),
    ] {
        for a in graph::list(list) {
            set.insert(
                parse_address(field, &a).map_err(|e| Problem::bad_field(field, e.to_string()))?,
            );
        }
    }
    if let Some(m) = &q.model {
        p.model =
            paytrace_app::params::parse_model(m).map_err(|e| Problem::bad_field("model", e))?;
    }
    let limits = state.limits();
    if let Some(h) = q.hops {
        if h == 0 || h > limits.max_hops {
            return Err(Problem::over_budget(
                "hops",
                format!(
                    "hops {h}: expected 1 to {} (the server's --max-hops)",
                    limits.max_hops
                ),
            ));
        }
        p.hops = h;
    }
    p.hops = p.hops.min(limits.max_hops);
    p.max_nodes = p.max_nodes.min(limits.max_nodes);
    p.trace_budget = Some(limits.max_wall / 2);
    Ok(p)
}

/// Builds the explorer's graph on the blocking pool.
async fn build_graph(
    state: &AppState,
    v: &pages::Viewer,
    q: graph::GraphQuery,
) -> Result<
    (
        paytrace_app::explore::ExploreGraph,
        graph::GraphQuery,
        Names,
    ),
    Response,
> {
    let p = explore_params(state, &q).map_err(|p| error_page(Some(v), &p))?;
    run(state, v, move |s| {
        let store = s.store();
        let labels = StoreLabels::open(store, None, MemoryLabels::new()).map_err(internal)?;
        let g = explore(store, &labels, &p).map_err(internal)?;
        let names = Names::load(s).map_err(internal)?;
        Ok((g, q, names))
    })
    .await
}

async fn graph_page(
    State(state): State<AppState>,
    caller: Result<Caller, Problem>,
    Query(q): Query<graph::GraphQuery>,
) -> Response {
    let (_, v) = match viewer(caller) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let fragment_only = q.fragment.is_some();
    match build_graph(&state, &v, q).await {
        Ok((g, q, names)) => {
            let f = graph::fragment(&g, &q, &names);
            if fragment_only {
                html(StatusCode::OK, f)
            } else {
                html(
                    StatusCode::OK,
                    pages::graph_page(&v, &names.address(&g.seed), f),
                )
            }
        }
        Err(r) => r,
    }
}

async fn graph_graphml(
    State(state): State<AppState>,
    caller: Result<Caller, Problem>,
    Query(q): Query<graph::GraphQuery>,
) -> Response {
    let (_, v) = match viewer(caller) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match build_graph(&state, &v, q).await {
        Ok((g, _, names)) => {
            let mut r = graph::graphml(&g, &names).into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/graphml+xml; charset=utf-8"),
            );
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"paytrace-graph.graphml\""),
            );
            r
        }
        Err(r) => r,
    }
}

async fn report_form(caller: Result<Caller, Problem>) -> Response {
    match viewer(caller) {
        Ok((_, v)) => html(StatusCode::OK, pages::report_form(&v, None)),
        Err(r) => r,
    }
}

/// Runs the payout report of an uploaded batch CSV and answers the report's HTML page (the
/// page `paytrace report payouts --batch FILE --format html` writes).
async fn report_run(
    State(state): State<AppState>,
    caller: Result<Caller, Problem>,
    mut form: Multipart,
) -> Response {
    let (_, v) = match viewer(caller) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut upload: Option<(String, Bytes)> = None;
    loop {
        match form.next_field().await {
            Ok(Some(f)) if f.name() == Some("batch") => {
                let name = f.file_name().unwrap_or("batch.csv").to_owned();
                match f.bytes().await {
                    Ok(b) => upload = Some((name, b)),
                    Err(e) => {
                        return html(
                            StatusCode::BAD_REQUEST,
                            pages::report_form(&v, Some(&format!("reading the upload: {e}"))),
                        );
                    }
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                return html(
                    StatusCode::BAD_REQUEST,
                    pages::report_form(&v, Some(&format!("reading the upload: {e}"))),
                );
            }
        }
    }
    let Some((name, bytes)) = upload.filter(|(_, b)| !b.is_empty()) else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::report_form(&v, Some("Choose a batch CSV file.")),
        );
    };
    let vv = v.clone();
    let out = state
        .blocking(move |s| {
            let store = s.store();
            let r = paytrace_app::report::batch_report(
                store,
                s.config(),
                &name,
                &bytes[..],
                &paytrace_app::report::BatchReportRequest::default(),
            )
            .map_err(|e| {
                if e.is_input() {
                    Problem::bad_field("batch", e.to_string())
                } else {
                    internal(e)
                }
            })?;
            // A file none of whose rows is a payout in the store is refused with its issues
            // (an empty report would read as "nothing found").
            if r.payouts.is_empty() {
                return Err(Problem::bad_field(
                    "batch",
                    format!(
                        "{name}: no row matched a payout in the store ({} row(s) with issues{})",
                        r.issues.len(),
                        r.issues
                            .first()
                            .map(|i| format!("; first: {i}"))
                            .unwrap_or_default()
                    ),
                ));
            }
            let view = paytrace_app::chain_view::ChainView::new(store, false).map_err(internal)?;
            Ok(view.rewrite_as(&paytrace_tracer::report::render::to_html(&r), false))
        })
        .await;
    match out {
        Ok(page) => {
            // The report is a standalone page; a bar leads back to the UI.
            let bar = "<p style=\"font-size:13px\"><a href=\"/ui/report\">← Upload another batch</a> · <a href=\"/ui\">Search</a> · <a href=\"/ui/alerts\">Alerts</a></p>";
            let page = page.replacen("<body>", &format!("<body>{bar}"), 1);
            let mut r = Html(page).into_response();
            secure(r.headers_mut());
            r
        }
        Err(p) => html(
            StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST),
            pages::report_form(&vv, Some(&p.detail)),
        ),
    }
}

#[derive(serde::Deserialize)]
struct AlertsQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

async fn alerts(
    State(state): State<AppState>,
    caller: Result<Caller, Problem>,
    Query(q): Query<AlertsQuery>,
) -> Response {
    let (_, v) = match viewer(caller) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let filter = match q.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<AlertState>() {
            Ok(st) => Some(st),
            Err(e) => return error_page(Some(&v), &Problem::bad_field("state", e)),
        },
    };
    let vv = v.clone();
    let body = run(&state, &v, move |s| {
        let list = AlertStore::open(s.store())
            .and_then(|a| a.list(filter))
            .map_err(internal)?;
        let names = Names::load(s).map_err(internal)?;
        Ok(pages::alerts(&vv, &list, filter, &names, q.done.as_deref()))
    })
    .await;
    match body {
        Ok(m) => html(StatusCode::OK, m),
        Err(r) => r,
    }
}

/// Acknowledges or closes an alert (compliance role), writes the audit record, and returns
/// to the inbox.
async fn alert_action(
    State(state): State<AppState>,
    caller: Result<Caller, Problem>,
    Path((id, action)): Path<(u64, String)>,
) -> Response {
    let (c, v) = match viewer(caller) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(p) = c.require(Role::Compliance) {
        return error_page(Some(&v), &p);
    }
    let (new_state, done) = match action.as_str() {
        "ack" => (AlertState::Acknowledged, "acknowledged"),
        "close" => (AlertState::Closed, "closed"),
        _ => {
            return error_page(
                Some(&v),
                &Problem::not_found(format!("no alert action {action:?} (ack or close)")),
            );
        }
    };
    let result = run(&state, &v, move |s| {
        let alerts = AlertStore::open(s.store()).map_err(internal)?;
        if alerts.get(id).map_err(internal)?.is_none() {
            return Err(Problem::not_found(format!("no alert {id}")));
        }
        let changed = alerts.set_state(id, new_state).map_err(internal);
        let entry = AuditEntry {
            time: jiff::Timestamp::now().to_string(),
            key_id: c.key_id.clone(),
            role: c.role,
            target: format!("alert {id}"),
            action: format!("POST /ui/alerts/{id}/{action}"),
            status: if changed.is_ok() { 303 } else { 500 },
        };
        s.keys().audit(&entry).map_err(internal)?;
        changed.map(|_| ())
    })
    .await;
    match result {
        Ok(()) => Redirect::to(&format!(
            "/ui/alerts?done={}",
            enc(&format!("Alert {id} {done}."))
        ))
        .into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(
            form_value(b"x=1&key=ptk_a%5Fb+c", "key").as_deref(),
            Some("ptk_a_b c")
        );
        assert_eq!(form_value(b"key=", "key").as_deref(), Some(""));
        assert_eq!(form_value(b"other=1", "key"), None);
        // A truncated or bad escape is no value, never a panic.
        assert_eq!(form_value(b"key=ab%4", "key"), None);
        assert_eq!(form_value(b"key=%zz", "key"), None);
        assert_eq!(form_value(b"key=%", "key"), None);
    }
}
