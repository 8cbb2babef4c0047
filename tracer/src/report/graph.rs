//! The flow graph of a report and its layered SVG drawing.
//!
//! Nodes are the provider, the payees and the addresses their value reached; edges aggregate
//! the tainted transfers between two addresses. The layout is a simple layered (Sugiyama-style)
//! one: layers by shortest distance from the provider, a few barycenter sweeps to reduce
//! crossings, then fixed spacing. Colours follow the label category; edge width follows the
//! amount (integer arithmetic, no floats).

use super::convergence::{Convergence, TraceDigest};
use super::{ClusterLookup, TraceError};
use crate::{LabelSource, result::ser_display, source::Category};
use paytrace_indexer::{Address, Amount, Asset};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// What a node is, for its colour.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// The payroll provider.
    Provider,
    /// A payee.
    Payee,
    /// Sanctioned.
    Sanctioned,
    /// Mixer.
    Mixer,
    /// Exchange wallet.
    Exchange,
    /// Exchange deposit address.
    ExchangeDeposit,
    /// Bridge.
    Bridge,
    /// Another labelled address (DeFi, swap, ...).
    Labelled,
    /// An unlabelled wallet.
    Wallet,
}

impl NodeKind {
    fn of(category: Option<&Category>) -> Self {
        match category.map(Category::as_str) {
            Some("sanctioned") => Self::Sanctioned,
            Some("mixer") => Self::Mixer,
            Some("exchange") => Self::Exchange,
            Some("exchange_deposit") => Self::ExchangeDeposit,
            Some("bridge") => Self::Bridge,
            Some("payroll_provider") => Self::Provider,
            Some(_) => Self::Labelled,
            None => Self::Wallet,
        }
    }

    /// Fill colour.
    pub const fn colour(&self) -> &'static str {
        match self {
            Self::Provider => "#1f77b4",
            Self::Payee => "#17becf",
            Self::Sanctioned => "#d62728",
            Self::Mixer => "#9467bd",
            Self::Exchange => "#ff7f0e",
            Self::ExchangeDeposit => "#ffbb78",
            Self::Bridge => "#8c564b",
            Self::Labelled => "#bcbd22",
            Self::Wallet => "#d9d9d9",
        }
    }

    /// Display name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Payee => "payee",
            Self::Sanctioned => "sanctioned",
            Self::Mixer => "mixer",
            Self::Exchange => "exchange",
            Self::ExchangeDeposit => "exchange deposit",
            Self::Bridge => "bridge",
            Self::Labelled => "labelled",
            Self::Wallet => "wallet",
        }
    }
}

/// A node of the flow graph, with its position.
#[derive(Clone, Debug, Serialize)]
pub struct GraphNode {
    /// The address.
    pub address: Address,
    /// Short label (payee name, entity, or abbreviated address).
    pub label: String,
    /// Kind (colour).
    pub kind: NodeKind,
    /// A convergence point (drawn with a red outline).
    pub convergence: bool,
    /// Layer (column).
    pub layer: usize,
    /// Position in the layer (row).
    pub order: usize,
}

/// Aggregated tainted value between two nodes.
#[derive(Clone, Debug, Serialize)]
pub struct GraphEdge {
    /// Index of the sender node.
    pub from: usize,
    /// Index of the receiver node.
    pub to: usize,
    /// Asset.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Tainted value, raw units.
    pub amount: Amount,
    /// Number of transfers.
    pub transfers: usize,
}

/// The flow graph of a report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FlowGraph {
    /// Nodes.
    pub nodes: Vec<GraphNode>,
    /// Edges.
    pub edges: Vec<GraphEdge>,
    /// Nodes left out to keep the picture readable.
    pub omitted_nodes: usize,
}

/// Abbreviates an address: `0x1234…abcd`.
pub fn short(a: &Address) -> String {
    let s = a.to_string();
    match (s.get(..6), s.get(s.len().saturating_sub(4)..)) {
        (Some(h), Some(t)) if s.len() > 12 => format!("{h}…{t}"),
        _ => s,
    }
}

/// Sender, receiver, asset.
type EdgeKey = (Address, Address, Asset);
/// Tainted sum and the distinct transactions (block, hash) of an aggregated edge.
type EdgeSum = (Amount, BTreeSet<(u64, [u8; 32])>);

fn entity(labels: &[String]) -> Option<String> {
    labels.first().map(|l| match l.split_once(" (") {
        Some((e, _)) => e.to_owned(),
        None => l.clone(),
    })
}

impl FlowGraph {
    /// Builds the graph from the payout traces, keeping at most `max_nodes` nodes: providers,
    /// convergence evidence, sanctioned and mixer exits, payees, then the rest by value.
    pub fn build<L: LabelSource, C: ClusterLookup>(
        digests: &[TraceDigest],
        conv: &Convergence,
        providers: &[Address],
        labels: &L,
        _clusters: &C,
        max_nodes: usize,
    ) -> Result<Self, TraceError> {
        // Aggregate edges by (from, to, asset).
        let mut agg: BTreeMap<EdgeKey, EdgeSum> = BTreeMap::new();
        let mut inflow: HashMap<Address, Amount> = HashMap::new();
        for d in digests {
            for e in &d.edges {
                if e.from == e.to {
                    continue;
                }
                let v = agg.entry((e.from, e.to, e.asset)).or_default();
                v.0 = v.0.checked_add(e.tainted)?;
                v.1.insert((e.key.block.0, e.tx_hash.0.0));
                let i = inflow.entry(e.to).or_default();
                *i = i.checked_add(e.tainted)?;
            }
        }
        let payees: BTreeMap<Address, String> = digests
            .iter()
            .map(|d| (d.payee_address, d.payee.clone()))
            .collect();
        let conv_points: BTreeSet<Address> = conv
            .findings
            .iter()
            .chain(&conv.shared_deposits)
            .flat_map(|f| f.addresses.iter().copied())
            .collect();
        let evidence: BTreeSet<Address> = conv
            .findings
            .iter()
            .chain(&conv.shared_deposits)
            .flat_map(|f| f.evidence.iter().flat_map(|h| [h.hop.from, h.hop.to]))
            .collect();
        let mut all: BTreeSet<Address> = BTreeSet::new();
        for (f, t, _) in agg.keys() {
            all.insert(*f);
            all.insert(*t);
        }
        let cat: HashMap<Address, Option<Category>> =
            all.iter().map(|a| (*a, labels.category(a))).collect();
        let prio = |a: &Address| -> u8 {
            if providers.contains(a) {
                0
            } else if conv_points.contains(a) {
                1
            } else if evidence.contains(a) {
                2
            } else if matches!(
                cat.get(a).and_then(|c| c.as_ref()).map(Category::as_str),
                Some("sanctioned" | "mixer")
            ) {
                3
            } else if payees.contains_key(a) {
                4
            } else {
                5
            }
        };
        let mut ranked: Vec<Address> = all.iter().copied().collect();
        ranked.sort_by(|a, b| {
            prio(a).cmp(&prio(b)).then(
                inflow
                    .get(b)
                    .copied()
                    .unwrap_or_default()
                    .cmp(&inflow.get(a).copied().unwrap_or_default()),
            )
        });
        let omitted = ranked.len().saturating_sub(max_nodes);
        ranked.truncate(max_nodes);
        let keep: BTreeSet<Address> = ranked.into_iter().collect();
        let mut nodes = Vec::new();
        let mut index = HashMap::new();
        for a in &keep {
            index.insert(*a, nodes.len());
            let c = cat.get(a).cloned().flatten();
            let (kind, label) = if providers.contains(a) {
                (
                    NodeKind::Provider,
                    entity(&labels.labels(a)).unwrap_or_else(|| "provider".to_owned()),
                )
            } else if let Some(name) = payees.get(a) {
                (NodeKind::Payee, name.clone())
            } else {
                (
                    NodeKind::of(c.as_ref()),
                    entity(&labels.labels(a)).unwrap_or_else(|| short(a)),
                )
            };
            nodes.push(GraphNode {
                address: *a,
                label,
                kind,
                convergence: conv_points.contains(a),
                layer: 0,
                order: 0,
            });
        }
        let mut edges = Vec::new();
        for ((f, t, asset), (amount, txs)) in agg {
            if let (Some(&from), Some(&to)) = (index.get(&f), index.get(&t)) {
                edges.push(GraphEdge {
                    from,
                    to,
                    asset,
                    amount,
                    transfers: txs.len(),
                });
            }
        }
        let mut g = Self {
            nodes,
            edges,
            omitted_nodes: omitted,
        };
        g.layout();
        Ok(g)
    }

    /// Assigns layers (shortest distance from the nodes without inflow) and orders each layer
    /// by barycenter sweeps.
    fn layout(&mut self) {
        let n = self.nodes.len();
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut inc: Vec<Vec<usize>> = vec![Vec::new(); n];
        for e in &self.edges {
            out[e.from].push(e.to);
            inc[e.to].push(e.from);
        }
        let mut layer = vec![usize::MAX; n];
        let mut q = VecDeque::new();
        for i in 0..n {
            if self.nodes[i].kind == NodeKind::Provider || inc[i].is_empty() {
                layer[i] = 0;
                q.push_back(i);
            }
        }
        while let Some(i) = q.pop_front() {
            for &j in &out[i] {
                if layer[j] == usize::MAX {
                    layer[j] = layer[i] + 1;
                    q.push_back(j);
                }
            }
        }
        for l in layer.iter_mut() {
            if *l == usize::MAX {
                *l = 1;
            }
        }
        let layers = layer.iter().copied().max().map_or(0, |m| m + 1);
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layers];
        for i in 0..n {
            rows[layer[i]].push(i);
        }
        // Barycenter sweeps: down using predecessors, up using successors. Positions are
        // scaled by 1000 to stay in integers.
        let mut pos = vec![0usize; n];
        let set_pos = |rows: &Vec<Vec<usize>>, pos: &mut Vec<usize>| {
            for r in rows {
                for (k, &i) in r.iter().enumerate() {
                    pos[i] = k;
                }
            }
        };
        set_pos(&rows, &mut pos);
        for sweep in 0..6 {
            let down = sweep % 2 == 0;
            let order: Vec<usize> = if down {
                (1..layers).collect()
            } else {
                (0..layers.saturating_sub(1)).rev().collect()
            };
            for l in order {
                let mut keyed: Vec<(usize, usize, usize)> = rows[l]
                    .iter()
                    .map(|&i| {
                        let nb: Vec<usize> = if down { &inc[i] } else { &out[i] }
                            .iter()
                            .copied()
                            .filter(|&j| layer[j] + 1 == l || layer[j] == l + 1)
                            .collect();
                        let bary = if nb.is_empty() {
                            pos[i] * 1000
                        } else {
                            nb.iter().map(|&j| pos[j] * 1000).sum::<usize>() / nb.len()
                        };
                        (bary, pos[i], i)
                    })
                    .collect();
                keyed.sort_unstable();
                rows[l] = keyed.into_iter().map(|(_, _, i)| i).collect();
                set_pos(&rows, &mut pos);
            }
        }
        for (l, r) in rows.iter().enumerate() {
            for (k, &i) in r.iter().enumerate() {
                self.nodes[i].layer = l;
                self.nodes[i].order = k;
            }
        }
    }
}
