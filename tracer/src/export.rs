//! The flow graph of a trace result (petgraph) and its DOT (Graphviz) and GraphML (Gephi, yEd)
//! renderings.

use crate::{FlowEdge, Status, TraceResult};
use paytrace_indexer::{Address, Amount};
use petgraph::graph::{DiGraph, NodeIndex};
use std::{collections::HashMap, fmt::Write as _};

/// A node of the flow graph: an address with what the trace found there.
#[derive(Clone, Debug)]
pub struct FlowNode {
    /// The address.
    pub address: Address,
    /// Labels joined for display.
    pub label: String,
    /// Status of the address (payee, followed, exited, ...); `None` for seed senders.
    pub status: Option<Status>,
    /// Tainted amount that reached it, summed over assets (display only).
    pub amount: Amount,
    /// Minimum hops.
    pub hops: Option<u32>,
}

/// Builds the flow graph: one node per address, one edge per tainted transfer.
pub fn flow_graph(r: &TraceResult) -> DiGraph<FlowNode, FlowEdge> {
    let mut g = DiGraph::new();
    let mut ix: HashMap<Address, NodeIndex> = HashMap::new();
    for d in &r.destinations {
        let i = *ix.entry(d.address).or_insert_with(|| {
            g.add_node(FlowNode {
                address: d.address,
                label: d.labels.join(", "),
                status: Some(d.status),
                amount: Amount::ZERO,
                hops: Some(d.hops),
            })
        });
        let n = &mut g[i];
        n.amount = n.amount.checked_add(d.amount).unwrap_or(n.amount);
        n.hops = n.hops.map(|h| h.min(d.hops));
    }
    for e in r.seed.transfers.iter().chain(r.edges.iter()) {
        let mut node = |a: Address, g: &mut DiGraph<FlowNode, FlowEdge>| {
            *ix.entry(a).or_insert_with(|| {
                g.add_node(FlowNode {
                    address: a,
                    label: String::new(),
                    status: None,
                    amount: Amount::ZERO,
                    hops: None,
                })
            })
        };
        let f = node(e.from, &mut g);
        let t = node(e.to, &mut g);
        // Seed transfers also appear as credits of the payee: keep one edge per transfer.
        if g.edges_connecting(f, t)
            .any(|x| x.weight().key == e.key && x.weight().tx_hash == e.tx_hash)
        {
            continue;
        }
        g.add_edge(f, t, e.clone());
    }
    g
}

fn esc_dot(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn esc_xml(s: &str) -> String {
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

fn status_name(s: Option<Status>) -> &'static str {
    match s {
        Some(Status::Payee) => "payee",
        Some(Status::Followed) => "followed",
        Some(Status::Exited) => "exited",
        Some(Status::AtDepthLimit) => "at_depth_limit",
        Some(Status::BelowMinAmount) => "below_min_amount",
        Some(Status::NodeLimit) => "node_limit",
        Some(Status::TimeBudget) => "time_budget",
        Some(Status::Swapped) => "swapped",
        None => "seed_sender",
    }
}

/// Renders the flow graph in Graphviz DOT.
pub fn to_dot(r: &TraceResult) -> String {
    let g = flow_graph(r);
    let mut s = String::new();
    let _ = writeln!(s, "digraph paytrace {{");
    let _ = writeln!(s, "  rankdir=LR;");
    let _ = writeln!(s, "  node [shape=box, fontname=\"monospace\"];");
    for i in g.node_indices() {
        let n = &g[i];
        let color = match n.status {
            Some(Status::Exited) => "red",
            Some(Status::Payee) => "blue",
            Some(
                Status::AtDepthLimit
                | Status::NodeLimit
                | Status::TimeBudget
                | Status::BelowMinAmount,
            ) => "gray",
            _ => "black",
        };
        let mut label = n.address.to_string();
        if !n.label.is_empty() {
            label.push_str("\\n");
            label.push_str(&esc_dot(&n.label));
        }
        let _ = writeln!(
            s,
            "  n{} [label=\"{}\\n{} tainted\", color={color}, status=\"{}\"];",
            i.index(),
            label,
            n.amount,
            status_name(n.status)
        );
    }
    for e in g.edge_indices() {
        let Some((a, b)) = g.edge_endpoints(e) else {
            continue;
        };
        let w = &g[e];
        let _ = writeln!(
            s,
            "  n{} -> n{} [label=\"{} / {} {}\", tx=\"{}\", time={}];",
            a.index(),
            b.index(),
            w.tainted,
            w.amount,
            esc_dot(&w.asset.to_string()),
            w.tx_hash,
            w.time.0
        );
    }
    s.push_str("}\n");
    s
}

/// Renders the flow graph in GraphML (nodes: address, label, status, amount, hops; edges:
/// tx, time, asset, amount, tainted). Amounts are strings of raw units.
pub fn to_graphml(r: &TraceResult) -> String {
    let g = flow_graph(r);
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(
        "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns \
         http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
    );
    for (id, on, name, ty) in [
        ("d0", "node", "address", "string"),
        ("d1", "node", "label", "string"),
        ("d2", "node", "status", "string"),
        ("d3", "node", "amount", "string"),
        ("d4", "node", "hops", "int"),
        ("d5", "edge", "tx", "string"),
        ("d6", "edge", "time", "long"),
        ("d7", "edge", "asset", "string"),
        ("d8", "edge", "amount", "string"),
        ("d9", "edge", "tainted", "string"),
    ] {
        let _ = writeln!(
            s,
            "  <key id=\"{id}\" for=\"{on}\" attr.name=\"{name}\" attr.type=\"{ty}\"/>"
        );
    }
    s.push_str("  <graph id=\"trace\" edgedefault=\"directed\">\n");
    for i in g.node_indices() {
        let n = &g[i];
        let _ = writeln!(s, "    <node id=\"n{}\">", i.index());
        let _ = writeln!(s, "      <data key=\"d0\">{}</data>", n.address);
        let _ = writeln!(s, "      <data key=\"d1\">{}</data>", esc_xml(&n.label));
        let _ = writeln!(s, "      <data key=\"d2\">{}</data>", status_name(n.status));
        let _ = writeln!(s, "      <data key=\"d3\">{}</data>", n.amount);
        if let Some(h) = n.hops {
            let _ = writeln!(s, "      <data key=\"d4\">{h}</data>");
        }
        s.push_str("    </node>\n");
    }
    for e in g.edge_indices() {
        let Some((a, b)) = g.edge_endpoints(e) else {
            continue;
        };
        let w = &g[e];
        let _ = writeln!(
            s,
            "    <edge id=\"e{}\" source=\"n{}\" target=\"n{}\">",
            e.index(),
            a.index(),
            b.index()
        );
        let _ = writeln!(s, "      <data key=\"d5\">{}</data>", w.tx_hash);
        let _ = writeln!(s, "      <data key=\"d6\">{}</data>", w.time.0);
        let _ = writeln!(
            s,
            "      <data key=\"d7\">{}</data>",
            esc_xml(&w.asset.to_string())
        );
        let _ = writeln!(s, "      <data key=\"d8\">{}</data>", w.amount);
        let _ = writeln!(s, "      <data key=\"d9\">{}</data>", w.tainted);
        s.push_str("    </edge>\n");
    }
    s.push_str("  </graph>\n</graphml>\n");
    s
}
