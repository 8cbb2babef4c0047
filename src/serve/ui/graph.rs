//! The graph explorer's drawing: the explorer's graph (`paytrace_app::explore`) as an SVG drawn
//! on the server (every node a `<g class="node">`, every edge a `<g class="edge">` with its
//! amount in token units and its tainted share written on it, colours by category as in the
//! payout report), the details shown when a node or an edge is clicked, and the GraphML
//! export of the same graph.

use super::Names;
use maud::{Markup, PreEscaped, html};
use paytrace_app::explore::{ExploreEdge, ExploreGraph, ExploreNode, NodeClass, SanctionedReach};
use paytrace_indexer::{Address, Amount};
use paytrace_tracer::report::{
    graph::{NodeKind, short},
    render::datetime,
};
use std::fmt::Write as _;

/// What the explorer shows: the query string of a graph page, kept as the user's text so that
/// links reproduce it.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct GraphQuery {
    /// Seed address.
    #[serde(default)]
    pub seed: String,
    /// Addresses whose outflows are drawn, comma-separated.
    #[serde(default)]
    pub out: String,
    /// Addresses whose inflows are drawn, comma-separated.
    #[serde(default, rename = "in")]
    pub inn: String,
    /// Taint model name.
    #[serde(default)]
    pub model: Option<String>,
    /// Trace hops.
    #[serde(default)]
    pub hops: Option<u32>,
    /// The node selected after loading (an address).
    #[serde(default)]
    pub sel: Option<String>,
    /// Only the graph fragment (for the script's click-to-expand).
    #[serde(default)]
    pub fragment: Option<u8>,
}

/// Splits a comma-separated list, skipping blanks.
pub fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Percent-encodes a query value (addresses, model names, comma lists).
pub fn enc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.:,".contains(&b) {
            o.push(char::from(b));
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

impl GraphQuery {
    /// The page URL of this query (`path` is `/ui/graph` or `/ui/graph.graphml`).
    pub fn url(&self, path: &str) -> String {
        let mut u = format!("{path}?seed={}", enc(&self.seed));
        if !self.out.is_empty() {
            let _ = write!(u, "&out={}", enc(&self.out));
        }
        if !self.inn.is_empty() {
            let _ = write!(u, "&in={}", enc(&self.inn));
        }
        if let Some(m) = &self.model {
            let _ = write!(u, "&model={}", enc(m));
        }
        if let Some(h) = self.hops {
            let _ = write!(u, "&hops={h}");
        }
        if let Some(s) = &self.sel {
            let _ = write!(u, "&sel={}", enc(s));
        }
        u
    }

    /// This query with `a` added to (or, `add == false`, removed from) a list.
    fn with(&self, outflows: bool, a: &str, add: bool) -> Self {
        let mut q = self.clone();
        let field = if outflows { &mut q.out } else { &mut q.inn };
        let mut v = list(field);
        v.retain(|x| x != a);
        if add {
            v.push(a.to_owned());
        }
        *field = v.join(",");
        q.sel = Some(a.to_owned());
        q.fragment = None;
        q
    }
}

const COL: i64 = 360;
const ROW: i64 = 66;
const NODE_W: i64 = 190;
const NODE_H: i64 = 44;
const PAD: i64 = 30;

/// The style sheet inside the SVG (so that an exported SVG looks the same on its own).
const SVG_CSS: &str = ".node rect{stroke:#333;stroke-width:1}\
.node{cursor:pointer}.node.seed rect{stroke:#000;stroke-width:3}\
.node text{font-size:11px;pointer-events:none}.node .title{font-weight:bold}\
.edge-line{fill:none;stroke:#667;stroke-opacity:.6}\
.edge-hit{fill:none;stroke:transparent;stroke-width:14;pointer-events:stroke;cursor:pointer}\
.edge-label{font-size:10px;fill:#333;paint-order:stroke;stroke:#fff;stroke-width:3px;pointer-events:none}\
.highlight .edge.on-path .edge-line{stroke:#d62728;stroke-opacity:1}\
.highlight .edge.on-path .edge-label{fill:#b00000;font-weight:bold}\
.highlight .node.on-path rect{stroke:#d62728;stroke-width:3}\
.node.selected rect{stroke:#1f5fa8;stroke-width:4}\
.edge.selected .edge-line{stroke:#1f5fa8;stroke-opacity:1}\
.badge{font-size:10px;fill:#555}";

/// The fill colour of a class: the payout report's colours.
fn colour(c: NodeClass) -> &'static str {
    match c {
        NodeClass::Seed => NodeKind::Payee.colour(),
        NodeClass::Sanctioned => NodeKind::Sanctioned.colour(),
        NodeClass::Mixer => NodeKind::Mixer.colour(),
        NodeClass::Exchange => NodeKind::Exchange.colour(),
        NodeClass::ExchangeDeposit => NodeKind::ExchangeDeposit.colour(),
        NodeClass::Bridge => NodeKind::Bridge.colour(),
        NodeClass::Provider => NodeKind::Provider.colour(),
        NodeClass::Labelled => NodeKind::Labelled.colour(),
        NodeClass::Wallet => NodeKind::Wallet.colour(),
    }
}

fn dark(c: NodeClass) -> bool {
    !matches!(
        c,
        NodeClass::Wallet | NodeClass::Seed | NodeClass::ExchangeDeposit | NodeClass::Labelled
    )
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A node's title: its first label's entity, else the short address.
fn title(n: &ExploreNode, names: &Names) -> String {
    n.labels
        .first()
        .map(|l| l.split_once(" (").map_or(l.as_str(), |(e, _)| e).to_owned())
        .unwrap_or_else(|| short_text(&names.address(&n.address)))
}

/// `0x1234…abcd` of an address text.
fn short_text(s: &str) -> String {
    match (s.get(..6), s.get(s.len().saturating_sub(4)..)) {
        (Some(h), Some(t)) if s.len() > 12 => format!("{h}…{t}"),
        _ => s.to_owned(),
    }
}

/// A tainted share in basis points as `12.5%`.
pub fn pct(bps: u32) -> String {
    let whole = bps / 100;
    let frac = bps % 100;
    if frac == 0 {
        format!("{whole}%")
    } else if frac.is_multiple_of(10) {
        format!("{whole}.{}%", frac / 10)
    } else {
        format!("{whole}.{frac:02}%")
    }
}

fn edge_amount(e: &ExploreEdge, names: &Names, v: Amount) -> String {
    names.amount(e.chain, &e.asset, v)
}

/// The drawing's size and each node's top-left corner.
fn geometry(g: &ExploreGraph) -> (i64, i64, Vec<(i64, i64)>) {
    let min_layer = g.nodes.iter().map(|n| n.layer).min().unwrap_or(0);
    let max_layer = g.nodes.iter().map(|n| n.layer).max().unwrap_or(0);
    let rows = g.nodes.iter().map(|n| n.row).max().unwrap_or(0);
    let rows = i64::try_from(rows).unwrap_or(0);
    let width = PAD * 2 + i64::from(max_layer - min_layer) * COL + NODE_W;
    let height = PAD * 2 + rows * ROW + NODE_H + 20;
    let xy = g
        .nodes
        .iter()
        .map(|n| {
            (
                PAD + i64::from(n.layer - min_layer) * COL,
                PAD + 20 + i64::try_from(n.row).unwrap_or(0) * ROW,
            )
        })
        .collect();
    (width, height, xy)
}

/// The graph as an SVG element.
pub fn svg(g: &ExploreGraph, names: &Names) -> Markup {
    let (width, height, xy) = geometry(g);
    let home = format!("0 0 {width} {height}");
    // Edges between the same two nodes (several assets) get their labels staggered.
    let mut seen_pairs: std::collections::HashMap<(usize, usize), i64> =
        std::collections::HashMap::new();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="explore highlight" id="explore-graph"
            viewBox=(home) data-home=(home) preserveAspectRatio="xMidYMid meet"
            font-family="sans-serif" data-nodes=(g.nodes.len()) data-edges=(g.edges.len()) {
            style { (PreEscaped(SVG_CSS)) }
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse"
                    markerWidth="9" markerHeight="9" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" fill="#555" {}
                }
            }
            @for (i, e) in g.edges.iter().enumerate() {
                @let (ax, ay) = xy[e.from];
                @let (bx, by) = xy[e.to];
                @let k = { let c = seen_pairs.entry((e.from.min(e.to), e.from.max(e.to))).or_insert(0); *c += 1; *c - 1 };
                @let (x1, y1) = (ax + NODE_W, ay + NODE_H / 2 + k * 4);
                @let (x2, y2) = (bx, by + NODE_H / 2 + k * 4);
                @let bend = ((x2 - x1).abs() / 2).max(60);
                @let d = format!("M {x1} {y1} C {} {y1}, {} {y2}, {x2} {y2}", x1 + bend, x2 - bend);
                @let bps = e.taint_bps();
                @let w = 1 + i64::from(bps) * 5 / 10_000;
                @let amount = edge_amount(e, names, e.amount);
                @let label = format!("{amount} · taint {}", pct(bps));
                g class=(if e.on_sanctioned_path { "edge on-path" } else { "edge" })
                    data-index=(i) data-from=(names.address(&g.nodes[e.from].address))
                    data-to=(names.address(&g.nodes[e.to].address)) data-taint-bps=(bps) {
                    title { (title(&g.nodes[e.from], names)) " → " (title(&g.nodes[e.to], names)) ": " (label) " (" (e.count) " transfers)" }
                    path class="edge-line" d=(d) stroke-width=(w) marker-end="url(#arrow)" {}
                    path class="edge-hit" d=(d) {}
                    text class="edge-label" x=((x1 + x2) / 2) y=((y1 + y2) / 2 - 16 + k * 24) text-anchor="middle" {
                        tspan { (amount) }
                        tspan x=((x1 + x2) / 2) dy="11" { "taint " (pct(bps)) }
                    }
                }
            }
            @for (i, n) in g.nodes.iter().enumerate() {
                @let (x, y) = xy[i];
                @let ink = if dark(n.class) { "#fff" } else { "#000" };
                @let cls = format!("node {}{}", n.class.as_str(), if n.on_sanctioned_path { " on-path" } else { "" });
                @let shown = names.address(&n.address);
                g class=(cls) data-index=(i) data-address=(shown) data-class=(n.class.as_str()) {
                    title { (shown) @if let Some(c) = &n.category { " (" (c) ")" } }
                    rect x=(x) y=(y) width=(NODE_W) height=(NODE_H) rx="6" fill=(colour(n.class)) {}
                    text class="title" x=(x + 8) y=(y + 17) fill=(ink) { (truncate(&title(n, names), 28)) }
                    text x=(x + 8) y=(y + 33) fill=(ink) {
                        @if !n.labels.is_empty() { (short_text(&shown)) " · " }
                        (n.category.as_deref().unwrap_or(n.class.as_str()).replace('_', " "))
                    }
                    @if n.omitted_out > 0 {
                        text class="badge" x=(x + NODE_W - 4) y=(y - 4) text-anchor="end" { "+" (n.omitted_out) " more out" }
                    }
                    @if n.omitted_in > 0 {
                        text class="badge" x=(x + 4) y=(y - 4) { "+" (n.omitted_in) " more in" }
                    }
                }
            }
        }
    }
}

/// The side panel's details of every node and edge (hidden until selected).
pub fn details(g: &ExploreGraph, q: &GraphQuery, names: &Names) -> Markup {
    let seed_text = names.address(&g.seed);
    html! {
        p.detail-help.small hidden { "Click a node or an edge for its details; drag to pan, wheel to zoom." }
        @for (i, n) in g.nodes.iter().enumerate() {
            @let shown = names.address(&n.address);
            section.detail id=(format!("detail-node-{i}")) hidden {
                h3 { (title(n, names)) }
                p { code.full { (shown) } }
                p {
                    @if n.class == NodeClass::Seed { span.chip { "seed" } }
                    @if let Some(c) = &n.category { span.chip { (c.replace('_', " ")) } }
                    @for l in &n.labels { span.chip { (l) } }
                }
                p {
                    a.button href=(format!("/ui/address/{}", super::enc(&shown))) { "Address page" }
                    " "
                    @if shown != seed_text {
                        a.button href=(GraphQuery { seed: shown.clone(), ..GraphQuery::default() }.url("/ui/graph")) { "Explore from here" }
                    }
                }
                p {
                    @if n.expanded_out {
                        @if n.address != g.seed {
                            a.expand.button href=(q.with(true, &shown, false).url("/ui/graph")) { "Collapse outflows" }
                        }
                    } @else {
                        a.expand.out.button.primary href=(q.with(true, &shown, true).url("/ui/graph")) { "Expand outflows →" }
                    }
                    " "
                    @if n.expanded_in {
                        @if n.address != g.seed {
                            a.expand.button href=(q.with(false, &shown, false).url("/ui/graph")) { "Collapse inflows" }
                        }
                    } @else {
                        a.expand.in.button href=(q.with(false, &shown, true).url("/ui/graph")) { "← Expand inflows" }
                    }
                }
                @if n.omitted_out > 0 || n.omitted_in > 0 {
                    p.small {
                        "Drawn: the largest counterparties by taint, then by transfers. Not drawn: "
                        (n.omitted_out) " receivers, " (n.omitted_in) " senders (the address page lists every transfer)."
                    }
                }
                @if n.partial {
                    p.note { "This address has more transfers than the explorer reads per direction; the drawn edges sum the oldest ones only. The address page lists all." }
                }
            }
        }
        @for (i, e) in g.edges.iter().enumerate() {
            @let from = names.address(&g.nodes[e.from].address);
            @let to = names.address(&g.nodes[e.to].address);
            section.detail id=(format!("detail-edge-{i}")) hidden {
                h3 { (title(&g.nodes[e.from], names)) " → " (title(&g.nodes[e.to], names)) }
                table { tbody {
                    tr { th { "From" } td { code { (from) } } }
                    tr { th { "To" } td { code { (to) } } }
                    tr { th { "Chain" } td { (names.chain(e.chain)) } }
                    tr { th { "Amount" } td.num { (edge_amount(e, names, e.amount)) } }
                    tr { th { "Tainted" } td.num { (edge_amount(e, names, e.tainted)) " (" (pct(e.taint_bps())) ")" } }
                    tr { th { "Transfers" } td.num { (e.count) } }
                } }
                p.small { "Taint: the part of each transfer that a " (g.model) " trace from the seed follows back to the seed's outflows (" (g.hops) " hops)." }
                table.transfers {
                    thead { tr { th { "Time (UTC)" } th { "Transaction" } th { "Amount" } th { "Tainted" } } }
                    tbody { @for t in &e.transfers {
                        @let hash = names.tx(e.chain, &t.tx_hash);
                        tr {
                            td { (datetime(t.time)) }
                            td { a.tx href=(format!("/ui/tx/{}?chain={}", super::enc(&hash), super::enc(&names.chain(e.chain)))) { code { (short_text(&hash)) } } }
                            td.num { (edge_amount(e, names, t.amount)) }
                            td.num { (edge_amount(e, names, t.tainted)) }
                        }
                    } }
                }
                @if e.count > e.transfers.len() {
                    p.small { "The first " (e.transfers.len()) " of " (e.count) " transfers; the address page lists all." }
                }
            }
        }
    }
}

/// The part of the graph page that click-to-expand replaces: toolbar, notices, drawing and
/// side panel.
pub fn fragment(g: &ExploreGraph, q: &GraphQuery, names: &Names) -> Markup {
    let select = q
        .sel
        .as_deref()
        .and_then(|s| g.nodes.iter().position(|n| names.address(&n.address) == s))
        .unwrap_or(0);
    let path_edges = g.edges.iter().filter(|e| e.on_sanctioned_path).count();
    html! {
        div.toolbar {
            button #zoom-in type="button" title="Zoom in" { "+" }
            button #zoom-out type="button" title="Zoom out" { "−" }
            button #zoom-reset type="button" title="Fit the whole graph" { "Fit" }
            span.sep {}
            label { input #highlight type="checkbox" checked; " Highlight paths to sanctioned addresses" }
            span.sep {}
            button #export-svg type="button" { "Export SVG" }
            a #export-graphml.button href=(q.url("/ui/graph.graphml")) download="paytrace-graph.graphml" { "Export GraphML" }
            span.small { (g.nodes.len()) " nodes, " (g.edges.len()) " edges; " (g.model) " taint, " (g.hops) " hops" }
        }
        @if let Some(t) = g.trace_truncated_by {
            p.note { "The trace from the seed stopped at its limit (" (t) "): tainted shares are lower bounds." }
        }
        @if path_edges > 0 {
            p.sanctioned-reach #sanctioned-path-note { "A path from the seed to a sanctioned address is drawn in red (" (path_edges) " edges)." }
        }
        @for s in &g.sanctioned {
            @let drawn = g.nodes.iter().any(|n| n.address == s.address && n.on_sanctioned_path);
            @if !drawn {
                @let q2 = path_query(q, s, names);
                p.sanctioned-reach {
                    "The trace from the seed reaches the sanctioned address "
                    code { (short_text(&names.address(&s.address))) }
                    @if let Some(l) = s.labels.first() { " (" (l) ")" }
                    " through " (s.via.len()) " sender(s). "
                    a.expand.button href=(q2.url("/ui/graph")) { "Draw the path" }
                }
            }
        }
        div.explorer {
            div.graph-box { (svg(g, names)) }
            aside #panel.panel { (details(g, q, names)) }
        }
        div #graph-error.error hidden {}
        p.legend {
            @for c in NodeClass::ALL {
                span { i style=(format!("background:{}", colour(c))) {} (c.as_str().replace('_', " ")) }
            }
            span { i style="background:#fff;border:3px solid #d62728" {} "path to a sanctioned address" }
        }
        script type="text/plain" #graph-select { (select) }
    }
}

/// `q` with the senders of a sanctioned reach's evidence path expanded (drawing the path).
fn path_query(q: &GraphQuery, s: &SanctionedReach, names: &Names) -> GraphQuery {
    let mut q2 = q.clone();
    let mut v = list(&q2.out);
    for a in &s.via {
        let t = names.address(a);
        if !v.contains(&t) {
            v.push(t);
        }
    }
    q2.out = v.join(",");
    q2.sel = Some(names.address(&s.address));
    q2.fragment = None;
    q2
}

/// The explorer's graph in GraphML (the same keys as `paytrace trace --format graphml` where
/// they apply: nodes address, label, category; edges asset, amount, tainted, transfers, chain;
/// amounts as raw-unit strings).
pub fn graphml(g: &ExploreGraph, names: &Names) -> String {
    fn esc(s: &str) -> String {
        let mut o = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '&' => o.push_str("&amp;"),
                '<' => o.push_str("&lt;"),
                '>' => o.push_str("&gt;"),
                '"' => o.push_str("&quot;"),
                '\'' => o.push_str("&apos;"),
                c => o.push(c),
            }
        }
        o
    }
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(
        "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns \
         http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
    );
    for (id, on, name, ty) in [
        ("d0", "node", "address", "string"),
        ("d1", "node", "label", "string"),
        ("d2", "node", "category", "string"),
        ("d3", "node", "seed", "boolean"),
        ("d4", "node", "on_sanctioned_path", "boolean"),
        ("d5", "edge", "chain", "string"),
        ("d6", "edge", "asset", "string"),
        ("d7", "edge", "amount", "string"),
        ("d8", "edge", "tainted", "string"),
        ("d9", "edge", "transfers", "int"),
        ("d10", "edge", "on_sanctioned_path", "boolean"),
    ] {
        let _ = writeln!(
            s,
            "  <key id=\"{id}\" for=\"{on}\" attr.name=\"{name}\" attr.type=\"{ty}\"/>"
        );
    }
    s.push_str("  <graph id=\"explore\" edgedefault=\"directed\">\n");
    for (i, n) in g.nodes.iter().enumerate() {
        let _ = writeln!(s, "    <node id=\"n{i}\">");
        let _ = writeln!(
            s,
            "      <data key=\"d0\">{}</data>",
            esc(&names.address(&n.address))
        );
        let _ = writeln!(
            s,
            "      <data key=\"d1\">{}</data>",
            esc(&n.labels.join(", "))
        );
        let _ = writeln!(
            s,
            "      <data key=\"d2\">{}</data>",
            esc(n.category.as_deref().unwrap_or(""))
        );
        let _ = writeln!(
            s,
            "      <data key=\"d3\">{}</data>",
            n.class == NodeClass::Seed
        );
        let _ = writeln!(s, "      <data key=\"d4\">{}</data>", n.on_sanctioned_path);
        s.push_str("    </node>\n");
    }
    for (i, e) in g.edges.iter().enumerate() {
        let _ = writeln!(
            s,
            "    <edge id=\"e{i}\" source=\"n{}\" target=\"n{}\">",
            e.from, e.to
        );
        let _ = writeln!(
            s,
            "      <data key=\"d5\">{}</data>",
            esc(&names.chain(e.chain))
        );
        let _ = writeln!(
            s,
            "      <data key=\"d6\">{}</data>",
            esc(&e.asset.to_string())
        );
        let _ = writeln!(s, "      <data key=\"d7\">{}</data>", e.amount);
        let _ = writeln!(s, "      <data key=\"d8\">{}</data>", e.tainted);
        let _ = writeln!(s, "      <data key=\"d9\">{}</data>", e.count);
        let _ = writeln!(s, "      <data key=\"d10\">{}</data>", e.on_sanctioned_path);
        s.push_str("    </edge>\n");
    }
    s.push_str("  </graph>\n</graphml>\n");
    s
}

/// The short form of an address (for titles elsewhere in the UI).
pub fn short_address(a: &Address, names: &Names) -> String {
    match a {
        Address::Evm(_) => short(a),
        _ => short_text(&names.address(a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taint_shares_in_integers() {
        assert_eq!(pct(10_000), "100%");
        assert_eq!(pct(2_537), "25.37%");
        assert_eq!(pct(2_530), "25.3%");
        assert_eq!(pct(5), "0.05%");
        assert_eq!(pct(0), "0%");
    }

    #[test]
    fn links_keep_the_exploration_and_encode_values() {
        let q = GraphQuery {
            seed: "0xab".into(),
            out: "0xcd".into(),
            ..GraphQuery::default()
        };
        assert_eq!(q.url("/ui/graph"), "/ui/graph?seed=0xab&out=0xcd");
        let q2 = q.with(true, "0xef", true);
        assert_eq!(
            q2.url("/ui/graph"),
            "/ui/graph?seed=0xab&out=0xcd,0xef&sel=0xef"
        );
        let q3 = q2.with(true, "0xcd", false).with(false, "0x12", true);
        assert_eq!(
            q3.url("/ui/graph"),
            "/ui/graph?seed=0xab&out=0xef&in=0x12&sel=0x12"
        );
        assert_eq!(enc("a b&c=d<\"'"), "a%20b%26c%3Dd%3C%22%27");
        assert_eq!(list(" a, ,b,"), ["a", "b"]);
    }
}
