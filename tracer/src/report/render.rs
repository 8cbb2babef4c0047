//! The report as self-contained HTML (inline CSS and SVG, no scripts, no network) and as CSV.
//!
//! The HTML page is a `maud` template: every interpolated value is escaped by the template
//! engine (payee names, labels and token symbols come from users and contracts), only the
//! constant style sheet is inserted as it is.

use super::{
    Report, RiskLevel,
    graph::{FlowGraph, GraphNode, NodeKind, short},
};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use paytrace_indexer::{Address, Amount, Asset, Timestamp};
use std::collections::{BTreeSet, HashMap};

/// A UTC date-time `YYYY-MM-DD HH:MM` of a block time.
pub fn datetime(t: Timestamp) -> String {
    i64::try_from(t.0)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| t.0.to_string())
}

/// The first reasons (already ranked by score), their "as of" day, then a count.
fn short_reasons(risk: &super::Risk) -> String {
    let v = &risk.reasons;
    let mut s = v
        .iter()
        .take(3)
        .map(|r| r.text.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    if v.len() > 3 {
        s.push_str(&format!("; and {} more (JSON report)", v.len() - 3));
    }
    if let Some(d) = &risk.as_of {
        s = format!("as of {d}: {s}");
    }
    s
}

/// Per-asset amounts in token units, `; `-separated.
fn amounts(r: &Report, m: &std::collections::BTreeMap<String, Amount>) -> String {
    r.assets.format_amounts(m)
}

/// The fill colour of a verdict.
fn risk_colour(l: RiskLevel) -> Option<&'static str> {
    match l {
        RiskLevel::Severe => Some("#d62728"),
        RiskLevel::High => Some("#ff7f0e"),
        RiskLevel::Medium => Some("#ffdd57"),
        RiskLevel::Low => Some("#cde8cd"),
        RiskLevel::None => None,
    }
}

/// A short address (`0x5FbD…0aa3`) with the full one as its hover text.
fn addr(a: &Address) -> Markup {
    html! { code title=(a.to_string()) { (short(a)) } }
}

/// A UTC time with its hover text in ISO 8601.
fn when(t: Timestamp) -> Markup {
    html! { time datetime=(iso_datetime(t)) { (datetime(t)) } }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:8px 0;font-size:13px}\
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}\
code{font-size:12px}code[title]{cursor:help}.risk{padding:1px 6px;border-radius:4px;font-weight:bold}\
.severe{background:#d62728;color:#fff}.high{background:#ff7f0e;color:#fff}\
.medium{background:#ffdd57}.low{background:#e8f4e8}.none{background:#eee}\
.graph{border:1px solid #ddd;padding:8px}.flow-graph{display:block;max-width:100%;height:auto}\
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;border:1px solid #333}\
.small{font-size:12px;color:#555}\
@page{size:A4 landscape;margin:12mm}\
@media print{body{margin:0;font-size:11px;color:#000}h2{break-after:avoid}\
table{font-size:10px;width:100%}tr,.graph{break-inside:avoid}thead{display:table-header-group}\
.graph{border:none;padding:0}.risk,.legend i{-webkit-print-color-adjust:exact;print-color-adjust:exact}\
.flow-graph{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

/// Layout of the SVG flow graph: column and row pitch, node size, padding (the gap between
/// columns holds the amounts written on the edges).
const COL: usize = 310;
const ROW: usize = 58;
const NODE_W: usize = 180;
const NODE_H: usize = 40;
const PAD: usize = 20;

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The flow graph as an inline SVG element (no scripts, no external references): every node is
/// a `<g class="node">` (payees filled by their verdict, short address, the full one in its
/// hover title), every edge a `<path class="edge">` with its amount written on it. The drawing
/// scales down to the page width.
fn svg(g: &FlowGraph, r: &Report) -> Markup {
    let fmt = |a: &Asset, holder: &Address, v: Amount| r.assets.format_at(a, holder, v);
    let verdicts: HashMap<Address, RiskLevel> =
        r.payees.iter().map(|p| (p.address, p.risk.level)).collect();
    let layers = g.nodes.iter().map(|n| n.layer + 1).max().unwrap_or(1);
    let rows = g.nodes.iter().map(|n| n.order + 1).max().unwrap_or(1);
    let width = PAD * 2 + (layers - 1) * COL + NODE_W;
    let height = PAD * 2 + (rows - 1) * ROW + NODE_H;
    let xy = |n: &GraphNode| (PAD + n.layer * COL, PAD + n.order * ROW);
    let max = g.edges.iter().map(|e| e.amount).max().unwrap_or_default();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" id="flow-graph" class="flow-graph"
            width=(width) height=(height) viewBox=(format!("0 0 {width} {height}"))
            preserveAspectRatio="xMinYMin meet" font-family="sans-serif" font-size="11" {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse"
                    markerWidth="9" markerHeight="9" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" fill="#555" {}
                }
            }
            @for e in &g.edges {
                @let (a, b) = (&g.nodes[e.from], &g.nodes[e.to]);
                @let (ax, ay) = xy(a);
                @let (bx, by) = xy(b);
                @let (x1, y1) = (ax + NODE_W, ay + NODE_H / 2);
                @let (x2, y2) = (bx, by + NODE_H / 2);
                // 1..=9 px by share of the largest edge, in integers.
                @let stroke = if max.is_zero() {
                    1
                } else {
                    let w = e.amount.raw().saturating_mul(alloy_primitives::U256::from(8u8)) / max.raw();
                    1 + usize::try_from(w).unwrap_or(8).min(8)
                };
                @let mid = x1.max(x2).saturating_sub(x1.min(x2)) / 2;
                @let (c1, c2) = (x1 + mid.max(30), x2.saturating_sub(mid.max(30)));
                @let amount = fmt(&e.asset, &b.address, e.amount);
                path class="edge" d=(format!("M {x1} {y1} C {c1} {y1}, {c2} {y2}, {x2} {y2}"))
                    fill="none" stroke="#555" stroke-opacity="0.55" stroke-width=(stroke)
                    marker-end="url(#arrow)" {
                    title { (a.label) " → " (b.label) ": " (amount) " (" (e.transfers) " transfer(s))" }
                }
                text class="edge-amount" x=((x1 + x2) / 2) y=((y1 + y2) / 2 - 4) text-anchor="middle"
                    font-size="10" fill="#333" stroke="#fff" stroke-width="3" paint-order="stroke" {
                    (amount)
                }
            }
            @for n in &g.nodes {
                @let (x, y) = xy(n);
                @let verdict = (n.kind == NodeKind::Payee).then(|| verdicts.get(&n.address).copied()).flatten();
                @let fill = verdict.and_then(risk_colour).unwrap_or(n.kind.colour());
                @let dark_fill = match verdict {
                    Some(RiskLevel::Severe | RiskLevel::High) => true,
                    Some(_) => false,
                    None => !matches!(n.kind, NodeKind::Wallet | NodeKind::Payee | NodeKind::ExchangeDeposit | NodeKind::Labelled),
                };
                @let ink = if dark_fill { "#fff" } else { "#000" };
                @let (outline, outline_w) = if n.convergence { ("#b00000", 3) } else { ("#333", 1) };
                @let role = match verdict {
                    Some(v) => format!("payee, {}", v.as_str()),
                    None => n.kind.as_str().to_owned(),
                };
                g class="node" data-kind=(n.kind.as_str()) data-address=(n.address.to_string())
                    data-risk=[verdict.map(|v| v.as_str())] {
                    title { (n.address.to_string()) " (" (role) ")" }
                    rect x=(x) y=(y) width=(NODE_W) height=(NODE_H) rx="6" fill=(fill)
                        stroke=(outline) stroke-width=(outline_w) {}
                    text x=(x + 8) y=(y + 16) fill=(ink) font-weight="bold" { (truncate(&n.label, 26)) }
                    text x=(x + 8) y=(y + 32) fill=(ink) { (short(&n.address)) " · " (role) }
                }
            }
        }
    }
}

/// The report as one self-contained HTML page.
pub fn to_html(r: &Report) -> String {
    let fmt = |a: &Asset, holder: &Address, v: Amount| r.assets.format_at(a, holder, v);
    let fmt_key = |k: &str, v: Amount| r.assets.format_str(k, v);
    let p = &r.parameters;
    let sm = &r.summary;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Payout report: " (r.title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { "Payout report: " (r.title) }
                p.small {
                    "Model " b { (p.model) } ", up to " (p.hops) " hops after the payee; exits at "
                    (p.stop_categories.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "))
                    ". Convergence: at least " (p.convergence.min_payees) " payees within "
                    (p.convergence.max_hops) " hops"
                    @if let Some(w) = p.convergence.window_secs { " and " (w / 86_400) " days" }
                    ". Providers: "
                    @for (i, a) in r.providers.iter().enumerate() {
                        @if i > 0 { ", " }
                        (addr(a))
                    }
                    ". Label set: " (p.label_set_version.as_deref().unwrap_or("none"))
                    ". Checkpoints: "
                    (p.checkpoints.iter().map(|(c, b)| format!("chain {c} block {b}")).collect::<Vec<_>>().join(", "))
                    "."
                }
                h2 #summary { "Summary" }
                table.summary { tbody {
                    tr { th { "Payouts traced" } td.num { (sm.payouts) } }
                    tr { th { "Payees" } td.num { (sm.payees) } }
                    @for (a, v) in &sm.paid {
                        tr { th { "Paid" } td.num { (fmt_key(a, *v)) } }
                    }
                    @for (cat, m) in &sm.totals {
                        @for (a, v) in m {
                            tr { th { "→ " (cat.replace('_', " ")) } td.num { (fmt_key(a, *v)) } }
                        }
                    }
                    tr { th { "Convergence points" } td.num { (r.convergence.len()) } }
                    tr { th { "Shared deposit addresses" } td.num { (r.shared_deposits.len()) } }
                    tr { th { "Payee clusters" } td.num { (r.payee_clusters.len()) } }
                    tr { th { "Batch rows with issues" } td.num { (r.issues.len()) } }
                } }
                @if !sm.flagged_payees.is_empty() {
                    p { b { "Payees whose money reached sanctioned or high-risk categories:" } " " (sm.flagged_payees.join(", ")) }
                }
                h2 #payees { "Per payee" }
                table.payees {
                    thead { tr { th { "Payee" } th { "Address" } th { "Payouts" } th { "Paid" } th { "Where it went" } th { "Risk" } } }
                    tbody { @for x in &r.payees {
                        tr {
                            td { (x.payee) }
                            td { (addr(&x.address)) }
                            td.num { (x.payouts) }
                            td.num { @for (i, (a, v)) in x.paid.iter().enumerate() { @if i > 0 { br; } (fmt_key(a, *v)) } }
                            td {
                                @for (i, (cat, a, v)) in x.totals.iter().flat_map(|(c, m)| m.iter().map(move |(a, v)| (c, a, v))).enumerate() {
                                    @if i > 0 { br; }
                                    (cat.replace('_', " ")) ": " (fmt_key(a, *v))
                                }
                            }
                            td {
                                span class=(format!("risk {}", x.risk.level.as_str())) { (x.risk.level.as_str()) }
                                div.small { (short_reasons(&x.risk)) }
                            }
                        }
                    } }
                }
                h2 #convergence { "Convergence findings" }
                @if r.convergence.is_empty() && r.shared_deposits.is_empty() && r.payee_clusters.is_empty() {
                    p { "No address or cluster received value from several payees." }
                }
                @for (title, list) in [("Addresses and clusters receiving from several payees", &r.convergence), ("Exchange deposit addresses shared by payees", &r.shared_deposits)] {
                    @if !list.is_empty() {
                        h3 { (title) }
                        table.convergence {
                            thead { tr { th { "#" } th { "Address / cluster" } th { "Labels" } th { "Payees" } th { "Tainted amount" } th { "Hops" } th { "Window" } th { "Evidence (transactions)" } } }
                            tbody { @for f in list.iter() {
                                tr {
                                    td { (f.rank) }
                                    td {
                                        @match &f.address { Some(a) => (addr(a)), None => code { (f.key) } }
                                        @for o in &f.onward {
                                            br; "→ "
                                            @match &o.address { Some(a) => (addr(a)), None => code { (o.key) } }
                                            " " (o.labels.join(", ")) " (" (amounts(r, &o.amounts)) ", " (crate::risk::hops_text(o.hops)) ")"
                                        }
                                    }
                                    td { (f.labels.join(", ")) }
                                    td { @for (i, x) in f.payees.iter().enumerate() { @if i > 0 { br; } (x.payee) " (" (amounts(r, &x.amounts)) ")" } }
                                    td.num { (amounts(r, &f.amounts)) }
                                    td.num { (f.hops) }
                                    td { (when(f.first_arrival)) " – " (when(f.last_arrival)) }
                                    td.small {
                                        @let mut seen = BTreeSet::new();
                                        @for h in f.evidence.iter().filter(|h| seen.insert((h.hop.tx_hash, h.hop.from, h.hop.to, h.asset, h.hop.tainted))) {
                                            code title=(h.hop.tx_hash.to_string()) { (short_hash(&h.hop.tx_hash.to_string())) }
                                            " " (addr(&h.hop.from)) " → " (addr(&h.hop.to)) " " (fmt(&h.asset, &h.hop.to, h.hop.tainted))
                                            br;
                                        }
                                    }
                                }
                            } }
                        }
                    }
                }
                @if !r.payee_clusters.is_empty() {
                    h3 { "Payees in one cluster" }
                    table {
                        thead { tr { th { "Cluster" } th { "Payees" } } }
                        tbody { @for c in &r.payee_clusters {
                            tr {
                                td { code { (c.cluster) } }
                                td { @for (i, x) in c.payees.iter().enumerate() { @if i > 0 { br; } (x.payee) " " (addr(&x.address)) } }
                            }
                        } }
                    }
                }
                h2 #graph { "Flow graph" }
                p.legend.small {
                    @for k in [NodeKind::Provider, NodeKind::Payee, NodeKind::Wallet, NodeKind::ExchangeDeposit, NodeKind::Exchange, NodeKind::Sanctioned, NodeKind::Mixer, NodeKind::Bridge, NodeKind::Labelled] {
                        span { i style=(format!("background:{}", k.colour())) {} (k.as_str()) }
                    }
                    @for l in [RiskLevel::Severe, RiskLevel::High, RiskLevel::Medium, RiskLevel::Low] {
                        @if let Some(c) = risk_colour(l) {
                            span { i style=(format!("background:{c}")) {} "payee " (l.as_str()) }
                        }
                    }
                    span { i style="border:3px solid #b00000" {} "convergence point" }
                    @if r.graph.omitted_nodes > 0 {
                        " (" (r.graph.omitted_nodes) " smaller nodes omitted; see the JSON report)"
                    }
                }
                div.graph { (svg(&r.graph, r)) }
                h2 #payouts { "Payouts" }
                table.payouts {
                    thead { tr { th { "Date" } th { "Payee" } th { "Amount" } th { "Transaction" } th { "Destinations (hops)" } th { "Risk" } } }
                    tbody { @for x in &r.payouts {
                        tr {
                            td { (when(x.time)) }
                            td { (x.payee) }
                            td.num { (fmt(&x.asset, &x.address, x.amount)) }
                            td { code title=(x.tx_hash.to_string()) { (short_hash(&x.tx_hash.to_string())) } }
                            td.small {
                                @for (i, d) in x.destinations.iter().enumerate() {
                                    @if i > 0 { br; }
                                    (d.kind.as_str().replace('_', " ")) " " (addr(&d.address))
                                    @if let Some(l) = d.labels.first() { " " (l) }
                                    ": " (fmt(&d.asset, &x.address, d.amount)) " (" (d.hops) ")"
                                }
                            }
                            td { span class=(format!("risk {}", x.risk.level.as_str())) { (x.risk.level.as_str()) } }
                        }
                    } }
                }
                @if !r.issues.is_empty() {
                    h2 #issues { "Batch rows not traced" }
                    table.issues {
                        thead { tr { th { "Line" } th { "Payee" } th { "Problem" } } }
                        tbody { @for i in &r.issues {
                            tr { td.num { (i.line) } td { (i.payee.as_deref().unwrap_or("")) } td { (i.message) } }
                        } }
                    }
                }
                p.small { "Generated by paytrace. Amounts are exact; taint shares follow the model named above (docs/heuristics.md). Hover a shortened address or hash for the full one." }
            }
        }
    };
    let mut out = page.into_string();
    out.push('\n');
    out
}

/// A transaction hash shortened for tables (`0x9ccd03…0c67`); the full one goes in a title.
fn short_hash(h: &str) -> String {
    match (h.get(..8), h.get(h.len().saturating_sub(4)..)) {
        (Some(a), Some(b)) if h.len() > 14 => format!("{a}…{b}"),
        _ => h.to_owned(),
    }
}

/// An ISO 8601 UTC date-time (`2025-03-06T08:23:00Z`) of a block time.
pub fn iso_datetime(t: Timestamp) -> String {
    i64::try_from(t.0)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| t.0.to_string(), |ts| ts.to_string())
}

/// The columns of [`to_csv`].
pub const CSV_HEADER: [&str; 23] = [
    "payee",
    "payee_address",
    "payout_tx",
    "payout_time",
    "asset",
    "token",
    "payout_amount",
    "risk",
    "destination",
    "kind",
    "category",
    "labels",
    "hops",
    "reached",
    "amount",
    "first_arrival_tx",
    "first_arrival_time",
    "decimals",
    "payout_amount_raw",
    "reached_raw",
    "amount_raw",
    "destination_asset",
    "destination_decimals",
];

/// The report as a spreadsheet-ready CSV: UTF-8 with a byte-order mark (so that spreadsheet
/// programs read names as UTF-8) and a header ([`CSV_HEADER`]), one row per payout and
/// destination (a payout without destinations has one row with empty destination fields).
/// Amounts in token units (`asset` is the symbol; raw units, and the contract address, when the
/// asset's decimals are unknown), times in ISO 8601 UTC, raw integer units in the `*_raw`
/// columns.
pub fn to_csv(r: &Report) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::from("\u{feff}".as_bytes()));
    w.write_record(CSV_HEADER)?;
    for p in &r.payouts {
        let info = r.assets.info_at(&p.asset, &p.address);
        let units =
            |a: Amount| info.map_or_else(|| a.to_string(), |i| a.to_decimal_string(i.decimals));
        let asset = info.map_or_else(|| p.asset.to_string(), |i| i.symbol.clone());
        let decimals = info.map(|i| i.decimals.to_string()).unwrap_or_default();
        let head = [
            p.payee.clone(),
            p.address.to_string(),
            p.tx_hash.to_string(),
            iso_datetime(p.time),
            asset,
            super::asset_key(&p.asset, &p.address),
            units(p.amount),
            p.risk.level.as_str().to_owned(),
        ];
        if p.destinations.is_empty() {
            let mut row = head.to_vec();
            row.extend(std::iter::repeat_n(String::new(), 9));
            row.extend([
                decimals.clone(),
                p.amount.to_string(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
            w.write_record(&row)?;
        }
        for d in &p.destinations {
            // A destination past a swap holds another asset than the payout.
            let d_info = r.assets.info_at(&d.asset, &p.address);
            let d_units = |a: Amount| {
                d_info.map_or_else(|| a.to_string(), |i| a.to_decimal_string(i.decimals))
            };
            let mut row = head.to_vec();
            row.extend([
                d.address.to_string(),
                d.kind.as_str().to_owned(),
                d.category
                    .as_ref()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default(),
                d.labels.join("; "),
                d.hops.to_string(),
                d_units(d.reached),
                d_units(d.amount),
                d.first_arrival_tx.to_string(),
                iso_datetime(d.first_arrival),
                decimals.clone(),
                p.amount.to_string(),
                d.reached.to_string(),
                d.amount.to_string(),
                d_info.map_or_else(
                    || super::asset_key(&d.asset, &p.address),
                    |i| i.symbol.clone(),
                ),
                d_info.map(|i| i.decimals.to_string()).unwrap_or_default(),
            ]);
            w.write_record(&row)?;
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    String::from_utf8(bytes)
        .map_err(|e| csv::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}
