//! The web UI's pages as `maud` templates: every interpolated value is escaped by the template
//! engine (labels, payee names and token symbols come from users and contracts).

use super::{Names, enc, graph};
use maud::{DOCTYPE, Markup, html};
use paytrace_app::alerts::{Alert, AlertState};
use paytrace_app::query::TransferView;
use paytrace_tracer::risk::{ExposureKind, Flow, ScreenResult, hops_text};

/// Who is looking at the page (shown in the header; decides which buttons are offered).
#[derive(Clone, Debug)]
pub struct Viewer {
    /// The key's name.
    pub name: String,
    /// `analyst`, `compliance` or `admin`.
    pub role: String,
    /// The role may acknowledge and close alerts.
    pub can_ack: bool,
}

/// A whole page: header with navigation and search, then `body`.
pub fn layout(title: &str, viewer: Option<&Viewer>, query: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · paytrace" }
                link rel="stylesheet" href="/ui/assets/ui.css";
                link rel="icon" href="/ui/assets/icon.svg" type="image/svg+xml";
                script src="/ui/assets/ui.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ui" { "paytrace" }
                    @if let Some(v) = viewer {
                        nav {
                            a href="/ui" { "Search" }
                            a href="/ui/alerts" { "Alerts" }
                            a href="/ui/report" { "Payout report" }
                        }
                        form.search method="get" action="/ui/search" {
                            input #search-top type="search" name="q" value=(query)
                                placeholder="Address, transaction hash or Bitcoin address";
                            button type="submit" { "Search" }
                        }
                        span.small style="color:#cfe" { (v.name) " (" (v.role) ")" }
                        form method="post" action="/ui/logout" { button type="submit" { "Log out" } }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The login page: an API key, kept in an HttpOnly cookie.
pub fn login(error: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        "",
        html! {
            div.login {
                h1 { "Log in" }
                p.small { "Paste an API key (" code { "paytrace keys create" } "). It is kept in a cookie this browser sends only to this server." }
                @if let Some(e) = error { p.error #login-error { (e) } }
                form method="post" action="/ui/login" {
                    label for="key" { "API key" }
                    input #key type="password" name="key" autocomplete="off" required autofocus;
                    button.primary #login-submit type="submit" { "Log in" }
                }
            }
        },
    )
}

/// The start page: the search box.
pub fn home(viewer: &Viewer, error: Option<&str>, query: &str) -> Markup {
    layout(
        "Search",
        Some(viewer),
        query,
        html! {
            h1 { "Search" }
            @if let Some(e) = error { p.error #search-error { (e) } }
            form method="get" action="/ui/search" {
                input #search type="search" name="q" value=(query) size="70" autofocus
                    placeholder="0x… address, transaction hash, or Bitcoin address (1…, 3…, bc1…)";
                " "
                button.primary #search-submit type="submit" { "Search" }
            }
            p.small { "An address opens its page (labels, risk verdict, transfers) and from there its graph; a transaction hash opens the transaction." }
        },
    )
}

/// An error page inside the layout.
pub fn error(viewer: Option<&Viewer>, title: &str, message: &str) -> Markup {
    layout(
        title,
        viewer,
        "",
        html! {
            h1 { (title) }
            p.error { (message) }
        },
    )
}

fn risk(level: &str) -> Markup {
    html! { span class=(format!("risk {level}")) { (level) } }
}

/// What the address page shows.
pub struct AddressPage<'a> {
    /// The address as shown.
    pub shown: String,
    /// The screening (as `paytrace screen` runs it), or why it failed.
    pub screen: Result<&'a ScreenResult, String>,
    /// Every label recorded for the address (as `paytrace labels show --history`), or why
    /// they could not be read.
    pub labels: Result<&'a [paytrace_indexer::labels::Label], String>,
    /// `in` or `out`.
    pub dir: &'a str,
    /// This page of transfers.
    pub transfers: &'a [TransferView],
    /// The cursor of the next page.
    pub next: Option<String>,
    /// Transfers per page.
    pub per_page: usize,
}

/// The address page: labels, risk verdict with reasons and evidence, transfers.
pub fn address(viewer: &Viewer, p: &AddressPage<'_>, names: &Names) -> Markup {
    let a = enc(&p.shown);
    let graph_url = format!("/ui/graph?seed={a}");
    html! {
        h1 { "Address " code #address { (p.shown) } }
        p {
            a.button.primary #open-graph href=(graph_url) { "Open graph" }
            " "
            a.button href=(format!("/ui/graph.graphml?seed={a}")) { "GraphML" }
        }
        @match &p.screen {
            Err(e) => { p.error { "Screening failed: " (e) } }
            Ok(r) => {
                h2 { "Labels" }
                @if r.labels.is_empty() { p.small #labels { "No label valid on " (r.as_of) "." } }
                @else { p #labels { @for l in &r.labels { span.chip { (l) } } } }
                @match &p.labels {
                    Err(e) => { p.error { "Reading the labels failed: " (e) } }
                    Ok(list) if list.is_empty() => {}
                    Ok(list) => {
                        table #label-history {
                            thead { tr { th { "Category" } th { "Entity" } th { "Source" } th { "Valid" } th { "Confidence" } } }
                            tbody { @for l in list.iter() {
                                tr {
                                    td { (l.category.to_string().replace('_', " ")) }
                                    td { (l.entity) @if let Some(n) = &l.name { br; span.small { (n) } } }
                                    td { (l.source) " " span.small { (l.source_version) } }
                                    td {
                                        (l.valid_from.map(|d| d.to_string()).unwrap_or_else(|| "…".into()))
                                        " – "
                                        (l.valid_to.map(|d| d.to_string()).unwrap_or_else(|| "…".into()))
                                        @if let Some(v) = &l.removed_in { br; span.small { "removed in " (v) } }
                                    }
                                    td.num { (l.confidence) }
                                }
                            } }
                        }
                    }
                }
                h2 { "Risk" }
                p #verdict {
                    (risk(r.level.as_str()))
                    " score " (format!("{:.1}", r.score)) ", as of " (r.as_of) ", " (r.hops) " hops"
                    @if let Some(v) = &r.label_set_version { span.small { " (labels " (v) ")" } }
                }
                @if r.reasons.is_empty() {
                    p.small { "No exposure found within " (hops_text(r.hops)) "." }
                } @else {
                    table #reasons {
                        thead { tr { th { "Level" } th { "Score" } th { "Reason" } th { "Addresses" } } }
                        tbody { @for x in &r.reasons {
                            tr {
                                td { (risk(x.level.as_str())) }
                                td.num { (format!("{:.1}", x.score)) }
                                td { (x.text) @if !x.labelled_at_time { br; span.small { "labelled after the transfers" } } }
                                td.small { @for (i, c) in x.addresses.iter().enumerate() {
                                    @if i > 0 { br; }
                                    @let s = names.address(c);
                                    a href=(format!("/ui/address/{}", enc(&s))) { code { (graph::short_address(c, names)) } }
                                } }
                            }
                        } }
                    }
                }
                @if !r.direct.is_empty() || !r.indirect.is_empty() {
                    h2 { "Evidence: exposure" }
                    table #exposure {
                        thead { tr { th { "Kind" } th { "Direction" } th { "Category" } th { "Amount" } th { "Share" } th { "Hops" } th { "Transfers" } th { "Counterparties" } } }
                        tbody { @for e in r.direct.iter().chain(r.indirect.iter()) {
                            tr {
                                td { (match e.kind { ExposureKind::Direct => "direct", ExposureKind::Indirect => "indirect" }) }
                                td { (match e.direction { Flow::Sent => "sent", Flow::Received => "received" }) }
                                td { (e.category.as_str().replace('_', " ")) @if let Some(d) = &e.listed_since { br; span.small { "listed since " (d) } } }
                                td.num { (names.amount_any(&r.address, &e.asset, e.amount)) }
                                td.num { (format!("{:.2}%", e.share * 100.0)) }
                                td.num { (hops_text(e.hops.saturating_add(1))) }
                                td.num { (e.transfers) }
                                td.small { @for (i, c) in e.counterparties.iter().enumerate() {
                                    @if i > 0 { br; }
                                    @let s = names.address(c);
                                    a href=(format!("/ui/address/{}", enc(&s))) { code { (graph::short_address(c, names)) } }
                                } }
                            }
                        } }
                    }
                }
                @if !r.patterns.is_empty() {
                    h2 { "Evidence: patterns" }
                    ul { @for x in &r.patterns { li { (serde_json::to_string(x).unwrap_or_default()) } } }
                }
            }
        }
        h2 { "Transfers" }
        p.tabs {
            a class=(if p.dir == "in" { "on" } else { "" }) href=(format!("/ui/address/{a}?dir=in")) { "Incoming" }
            a class=(if p.dir == "out" { "on" } else { "" }) href=(format!("/ui/address/{a}?dir=out")) { "Outgoing" }
        }
        @if p.transfers.is_empty() {
            p.small { "No transfers." }
        } @else {
            table #transfers {
                thead { tr { th { "Time (UTC)" } th { "Chain" } th { "Block" } th { "Transaction" } th { (if p.dir == "in" { "From" } else { "To" }) } th { "Amount" } } }
                tbody { @for t in p.transfers {
                    @let other = if p.dir == "in" { &t.from } else { &t.to };
                    tr {
                        td { (paytrace_tracer::report::render::datetime(paytrace_indexer::Timestamp(t.time))) }
                        td { (t.chain) }
                        td.num { (t.block) }
                        td { a href=(format!("/ui/tx/{}?chain={}", enc(&t.tx), enc(&t.chain))) { code { (short(&t.tx)) } } }
                        td { a href=(format!("/ui/address/{}", enc(other))) { code { (other) } } }
                        td.num { (t.shown) }
                    }
                } }
            }
        }
        div.pager {
            @if let Some(n) = &p.next {
                a.button #next-page href=(format!("/ui/address/{a}?dir={}&after={}", p.dir, enc(n))) { "Next " (p.per_page) " →" }
            }
            a.button href=(format!("/ui/address/{a}?dir={}", p.dir)) { "First page" }
        }
    }
    .pipe(|body| layout(&format!("Address {}", p.shown), Some(viewer), &p.shown, body))
}

/// `0x1234…abcd` of a long text.
fn short(s: &str) -> String {
    match (s.get(..10), s.get(s.len().saturating_sub(6)..)) {
        (Some(h), Some(t)) if s.len() > 18 => format!("{h}…{t}"),
        _ => s.to_owned(),
    }
}

/// Calls a function on a value (so a template can end in its layout).
trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl Pipe for Markup {}

/// A transaction's transfers.
pub fn transaction(viewer: &Viewer, hash: &str, transfers: &[TransferView]) -> Markup {
    layout(
        &format!("Transaction {hash}"),
        Some(viewer),
        hash,
        html! {
            h1 { "Transaction " code #tx { (hash) } }
            @if transfers.is_empty() {
                p.error { "The store holds no transfer of this transaction." }
            } @else {
                p { (transfers[0].chain) ", block " (transfers[0].block) ", "
                    (paytrace_tracer::report::render::datetime(paytrace_indexer::Timestamp(transfers[0].time))) " UTC" }
                table #tx-transfers {
                    thead { tr { th { "Kind" } th { "Position" } th { "From" } th { "To" } th { "Amount" } } }
                    tbody { @for t in transfers {
                        tr {
                            td { (serde_json::to_value(t.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) }
                            td.num { (t.position) }
                            td { a href=(format!("/ui/address/{}", enc(&t.from))) { code { (t.from) } } }
                            td { a href=(format!("/ui/address/{}", enc(&t.to))) { code { (t.to) } } }
                            td.num { (t.shown) }
                        }
                    } }
                }
            }
        },
    )
}

/// The graph explorer page around the fragment.
pub fn graph_page(viewer: &Viewer, seed: &str, fragment: Markup) -> Markup {
    layout(
        &format!("Graph of {seed}"),
        Some(viewer),
        seed,
        html! {
            h1 { "Graph of " a href=(format!("/ui/address/{}", enc(seed))) { code { (seed) } } }
            p.small { "Money flows left to right. Click a node to expand its outflows or inflows, an edge for its transactions; drag to pan, wheel or +/− to zoom." }
            div #graph-area { (fragment) }
        },
    )
}

/// The payout report upload form.
pub fn report_form(viewer: &Viewer, error: Option<&str>) -> Markup {
    layout(
        "Payout report",
        Some(viewer),
        "",
        html! {
            h1 { "Payout report" }
            p { "Upload a payroll batch CSV (" code { "payee,address,chain,asset,amount,tx_hash,date" } "): each row is matched to its payout on chain, traced, and the report shows where the money went, with the payees' risk verdicts and the addresses several payees' money converged on." }
            @if let Some(e) = error { p.error #report-error { (e) } }
            form method="post" action="/ui/report" enctype="multipart/form-data" {
                p { input #batch type="file" name="batch" accept=".csv,text/csv" required; }
                p.small { "The report runs as " code { "paytrace report payouts --batch FILE" } " does, with the server's configuration." }
                button.primary #report-submit type="submit" { "Run the report" }
            }
        },
    )
}

/// The alerts inbox.
pub fn alerts(
    viewer: &Viewer,
    list: &[Alert],
    state: Option<AlertState>,
    names: &Names,
    flash: Option<&str>,
) -> Markup {
    let tab = |s: Option<AlertState>, label: &str| {
        let href = match s {
            Some(s) => format!("/ui/alerts?state={}", s.as_str()),
            None => "/ui/alerts".to_owned(),
        };
        html! { a class=(if s == state { "on" } else { "" }) href=(href) { (label) } }
    };
    layout(
        "Alerts",
        Some(viewer),
        "",
        html! {
            h1 { "Alerts" }
            @if let Some(f) = flash { p.note #flash { (f) } }
            p.tabs {
                (tab(None, "All"))
                (tab(Some(AlertState::New), "New"))
                (tab(Some(AlertState::Acknowledged), "Acknowledged"))
                (tab(Some(AlertState::Closed), "Closed"))
            }
            @if !viewer.can_ack { p.small { "Acknowledging and closing alerts needs the compliance or admin role." } }
            @if list.is_empty() {
                p.small #no-alerts { "No alerts." }
            } @else {
                table #alerts {
                    thead { tr { th { "#" } th { "Severity" } th { "State" } th { "Subject" } th { "Rule" } th { "What was found" } th { "Raised" } th {} } }
                    tbody { @for x in list {
                        @let subject = names.address(&x.subject);
                        tr.alert data-id=(x.id) data-state=(x.state.as_str()) {
                            td.num { (x.id) }
                            td { (risk(x.severity.as_str())) }
                            td.state { (x.state.as_str()) }
                            td { a href=(format!("/ui/address/{}", enc(&subject))) { code { (graph::short_address(&x.subject, names)) } } br; span.small { (format!("{:?}", x.role).to_lowercase()) " · " a href=(format!("/ui/graph?seed={}", enc(&subject))) { "graph" } } }
                            td { (x.rule) }
                            td { (x.text) }
                            td.small { (x.created_at) @if x.updated_at != x.created_at { br; "updated " (x.updated_at) } }
                            td {
                                @if viewer.can_ack {
                                    @if x.state == AlertState::New {
                                        form method="post" action=(format!("/ui/alerts/{}/ack", x.id)) {
                                            button.ack type="submit" { "Acknowledge" }
                                        }
                                    }
                                    @if x.state != AlertState::Closed {
                                        form method="post" action=(format!("/ui/alerts/{}/close", x.id)) {
                                            button.close type="submit" { "Close" }
                                        }
                                    }
                                }
                            }
                        }
                    } }
                }
            }
        },
    )
}
