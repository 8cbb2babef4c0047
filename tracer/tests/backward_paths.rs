//! Backward traces, path queries and graph exports on hand-built graphs.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use paytrace_indexer::{Amount, Asset};
use paytrace_tracer::*;

const N: Asset = Asset::Native;

fn back(
    ts: Vec<paytrace_indexer::Transfer>,
    target: usize,
    model: Model,
    labels: &MemoryLabels,
) -> TraceResult {
    let k = ts[target].key;
    let g = MemoryGraph::from_transfers(ts);
    let p = TraceParams {
        model,
        ..TraceParams::default()
    };
    trace_backward(&g, labels, &BackSeed::Transfer(k), &p).unwrap()
}

fn src_amount(r: &TraceResult, a: u8) -> Amount {
    r.destination(&addr(a), &N)
        .map(|d| d.amount)
        .unwrap_or_default()
}

fn sources() -> Vec<paytrace_indexer::Transfer> {
    vec![
        tr(1, 0, 3, 2, 30), // S1 -> A
        tr(2, 0, 4, 2, 10), // S2 -> A
        tr(3, 0, 2, 5, 20), // A -> T: the transfer to explain
    ]
}

#[test]
fn backward_haircut_fifo_lifo() {
    let none = MemoryLabels::new();
    // haircut: 20 * 30/40 = 15 from S1, 20 * 10/40 = 5 from S2
    let r = back(sources(), 2, Model::Haircut, &none);
    assert_eq!((src_amount(&r, 3), src_amount(&r, 4)), (amt(15), amt(5)));
    assert_eq!(r.total("origin", &N), amt(20));
    assert_eq!(r.destination(&addr(3), &N).unwrap().hops, 1);
    // FIFO: the oldest lot (S1) pays all 20
    let r = back(sources(), 2, Model::Fifo, &none);
    assert_eq!((src_amount(&r, 3), src_amount(&r, 4)), (amt(20), amt(0)));
    // LIFO: S2's 10 then 10 of S1
    let r = back(sources(), 2, Model::Lifo, &none);
    assert_eq!((src_amount(&r, 3), src_amount(&r, 4)), (amt(10), amt(10)));
}

#[test]
fn backward_stops_at_exchange_and_flags_missing_history() {
    let mut labels = MemoryLabels::new();
    labels.insert(addr(4), "exchange");
    let r = back(sources(), 2, Model::Haircut, &labels);
    assert_eq!(r.total("exchange", &N), amt(5));
    assert_eq!(r.total("origin", &N), amt(15));
    let ex = r.paths.iter().find(|p| p.to == addr(4)).unwrap();
    assert_eq!(ex.hops.len(), 2);
    assert_eq!(ex.hops[1].to, addr(5));
    // A sends 50 with only 40 known: 10 before the index.
    let mut ts = sources();
    ts[2] = tr(3, 0, 2, 5, 50);
    let r = back(ts, 2, Model::Fifo, &MemoryLabels::new());
    assert_eq!(r.total("before_index", &N), amt(10));
    assert_eq!(r.total("origin", &N), amt(40));
    assert!(r.incomplete_history);
}

#[test]
fn backward_two_hops_scales_partial_demand() {
    // S -> B 100 (b1); X -> B 100 (b2); B -> A 50 (b3); A -> T 25 (b4)
    // A's 25 all came from B -> A (demand 25 on it, at B). At B, haircut splits the 50 of
    // B -> A into 25 from S and 25 from X; the demand of 25 scales each: floor(25 * 25 / 50)
    // = 12, and the rounding remainder 1 is unattributed.
    let ts = vec![
        tr(1, 0, 6, 3, 100),
        tr(2, 0, 7, 3, 100),
        tr(3, 0, 3, 2, 50),
        tr(4, 0, 2, 5, 25),
    ];
    let r = back(ts, 3, Model::Haircut, &MemoryLabels::new());
    assert_eq!(src_amount(&r, 6), amt(12));
    assert_eq!(src_amount(&r, 7), amt(12));
    assert_eq!(src_amount(&r, 3), amt(25));
    assert_eq!(r.total("unattributed", &N), amt(1)); // rounding at B
    assert_eq!(r.total("origin", &N), amt(24));
}

#[test]
fn backward_from_an_address_balance() {
    let g = MemoryGraph::from_transfers(sources());
    let p = TraceParams {
        model: Model::Fifo,
        ..TraceParams::default()
    };
    let r = trace_backward(&g, &MemoryLabels::new(), &BackSeed::Address(addr(2)), &p).unwrap();
    // A holds 20: 10 left of S1's lot and S2's 10.
    assert_eq!(r.seed.total["native"], amt(20));
    assert_eq!((src_amount(&r, 3), src_amount(&r, 4)), (amt(10), amt(10)));
}

fn path_graph() -> MemoryGraph {
    MemoryGraph::from_transfers(vec![
        tr(0, 0, 2, 3, 999), // before 1 -> 2: not time-respecting
        tr(1, 0, 1, 2, 10),
        tr(1, 1, 1, 4, 100),
        tr(2, 0, 2, 3, 10),
        tr(3, 0, 4, 3, 50),
        tr(5, 0, 1, 3, 1),
    ])
}

#[test]
fn shortest_and_most_valuable_paths() {
    let g = path_graph();
    let r = find_paths(
        &g,
        &MemoryLabels::new(),
        &addr(1),
        &PathTarget::Address(addr(3)),
        &PathParams::default(),
    )
    .unwrap();
    let s = r.shortest.unwrap();
    assert_eq!(s.hops.len(), 1);
    assert_eq!(s.value, amt(1));
    let vals: Vec<_> = r.most_valuable.iter().map(|p| p.value).collect();
    assert_eq!(vals, vec![amt(50), amt(10), amt(1)]);
    assert_eq!(r.most_valuable[0].hops[0].to, addr(4));
    assert!(r.exhaustive);
    // Without the direct transfer the shortest is the earliest 2-hop path (via 2, block 2).
    let mut labels = MemoryLabels::new();
    labels.insert(addr(3), "sanctioned");
    let p = PathParams {
        until: Some(paytrace_indexer::Timestamp(40)),
        ..PathParams::default()
    };
    let r = find_paths(
        &g,
        &labels,
        &addr(1),
        &PathTarget::Category(Category::new("sanctioned")),
        &p,
    )
    .unwrap();
    let s = r.shortest.unwrap();
    assert_eq!(
        s.hops.iter().map(|h| h.to).collect::<Vec<_>>(),
        vec![addr(2), addr(3)]
    );
    assert_eq!(r.most_valuable.len(), 2);
}

#[test]
fn dot_and_graphml_exports_are_well_formed() {
    let ts = vec![tr(1, 0, 1, 2, 10), tr(2, 0, 2, 3, 6), tr(3, 0, 3, 50, 6)];
    let mut labels = MemoryLabels::new();
    labels.insert_named(addr(50), "exchange", vec!["Ex <\"&\">".into()]);
    let g = MemoryGraph::from_transfers(ts.clone());
    let r = trace_forward(
        &g,
        &labels,
        &Seed::Transfers(vec![ts[0].key]),
        &TraceParams::default(),
    )
    .unwrap();
    let graph = export::flow_graph(&r);
    assert_eq!(graph.node_count(), 4);
    assert_eq!(graph.edge_count(), 3);

    let dot = export::to_dot(&r);
    assert!(dot.starts_with("digraph paytrace {"));
    assert!(dot.trim_end().ends_with('}'));
    assert_eq!(dot.matches(" -> ").count(), 3);
    // Every quote is balanced on every line (escaped ones excluded).
    for line in dot.lines() {
        let unescaped = line.replace("\\\"", "");
        assert_eq!(unescaped.matches('"').count() % 2, 0, "{line}");
    }
    if let Ok(out) = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(dot.as_bytes())?;
            c.wait_with_output()
        })
    {
        assert!(
            out.status.success(),
            "dot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let xml = export::to_graphml(&r);
    graphml_shape(&xml);
}

/// Checks the GraphML schema's shape: root `graphml` with the namespace, `key`s before one
/// `graph` with `edgedefault`, `node`s and `edge`s with ids, edges referencing declared nodes,
/// `data` keys declared for the right element.
fn graphml_shape(xml: &str) {
    use quick_xml::{Reader, events::Event};
    use std::collections::{HashMap, HashSet};
    let mut r = Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut keys: HashMap<String, String> = HashMap::new();
    let mut nodes = HashSet::new();
    let mut edges = Vec::new();
    let mut saw_graph = false;
    loop {
        let ev = r.read_event().unwrap();
        let (e, empty) = match &ev {
            Event::Start(e) => (e.clone(), false),
            Event::Empty(e) => (e.clone(), true),
            Event::End(_) => {
                stack.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name: String = AsRef::<str>::as_ref(&e.name()).to_owned();
        let attrs: HashMap<String, String> = e
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    AsRef::<str>::as_ref(&a.key).to_owned(),
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .unwrap()
                        .into_owned(),
                )
            })
            .collect();
        let parent = stack.last().map(String::as_str);
        match name.as_str() {
            "graphml" => {
                assert!(parent.is_none());
                assert_eq!(attrs["xmlns"], "http://graphml.graphdrawing.org/xmlns");
            }
            "key" => {
                assert_eq!(parent, Some("graphml"));
                assert!(!saw_graph, "keys come before the graph");
                assert!(["node", "edge"].contains(&attrs["for"].as_str()));
                assert!(attrs.contains_key("attr.name") && attrs.contains_key("attr.type"));
                keys.insert(attrs["id"].clone(), attrs["for"].clone());
            }
            "graph" => {
                assert_eq!(parent, Some("graphml"));
                assert_eq!(attrs["edgedefault"], "directed");
                saw_graph = true;
            }
            "node" => {
                assert_eq!(parent, Some("graph"));
                assert!(nodes.insert(attrs["id"].clone()));
            }
            "edge" => {
                assert_eq!(parent, Some("graph"));
                edges.push((attrs["source"].clone(), attrs["target"].clone()));
            }
            "data" => {
                let p = parent.unwrap();
                assert_eq!(keys.get(&attrs["key"]).map(String::as_str), Some(p));
            }
            other => panic!("unexpected element {other}"),
        }
        if !empty {
            stack.push(name);
        }
    }
    assert!(stack.is_empty());
    assert!(saw_graph);
    assert_eq!(nodes.len(), 4);
    for (s, t) in edges {
        assert!(nodes.contains(&s) && nodes.contains(&t));
    }
}
